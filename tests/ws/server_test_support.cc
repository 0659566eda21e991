#include "tests/ws/server_test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <random>

#include "core/event_decoder.h"
#include "core/time_format.h"

namespace tailbus::server_test {

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

// ---- TestServer ----------------------------------------------------------------------

TestServer::TestServer(TestServerOptions options) {
  auto store = LogStore::Open((dir_.path() / "t.db").string(), options.storage);
  if (!store.ok()) std::abort();
  auto bus = Bus::Open(std::move(store).value(), options.bus);
  if (!bus.ok()) std::abort();
  bus_ = std::move(bus).value();
  options.server.listen = "127.0.0.1:0";
  // ctest runs the server tests once more with the poll() loop.
  if (const char* loop = std::getenv("TAILBUS_TEST_EVENT_LOOP"); loop != nullptr && *loop) {
    options.server.event_loop = loop;
  }
  auto server = ws::Server::Create(*bus_, options.server);
  if (!server.ok()) {
    std::fprintf(stderr, "Server::Create: %s\n", server.status().ToString().c_str());
    std::abort();
  }
  server_ = std::move(server).value();
  port_ = server_->port();
  thread_ = std::thread([this] {
    Status st = server_->Run();
    if (!st.ok()) std::fprintf(stderr, "Server::Run: %s\n", st.ToString().c_str());
  });
}

TestServer::~TestServer() { Stop(); }

void TestServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  server_->RequestStop();
  if (thread_.joinable()) thread_.join();
  bus_->Close();
}

std::vector<int64_t> TestServer::Append(const std::vector<std::string>& json_events) {
  std::string array = "[";
  for (size_t i = 0; i < json_events.size(); ++i) {
    if (i > 0) array += ',';
    array += json_events[i];
  }
  array += ']';
  DecodeResult decoded = DecodeEvents(array, DecodeLimits{}, NowMillis());
  if (!decoded.ok()) {
    std::fprintf(stderr, "bad test events: %s\n", decoded.ToStatus().ToString().c_str());
    std::abort();
  }
  AppendResult r = bus_->Append(std::move(decoded.events));
  if (!r.ok()) {
    std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
    std::abort();
  }
  return r.value();
}

std::string Ev(std::string_view session, std::string_view type, std::string_view extra) {
  std::string out = "{\"session_id\":\"";
  out += session;
  out += "\",\"event_type\":\"";
  out += type;
  out += '"';
  if (!extra.empty()) {
    out += ',';
    out += extra;
  }
  out += '}';
  return out;
}

// ---- Socket -------------------------------------------------------------------------

std::unique_ptr<Socket> Socket::Connect(int port, int rcvbuf) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<Socket>(new Socket(fd));
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

bool Socket::SendAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string Socket::Recv(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r <= 0) return {};
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) {
    eof_ = true;
    return {};
  }
  return std::string(buf, static_cast<size_t>(n));
}

bool Socket::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    Recv(std::min<std::chrono::milliseconds>(left, 200ms));
  }
  return true;
}

// ---- HTTP ---------------------------------------------------------------------------

rapidjson::Document HttpReply::Json() const {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  return doc;
}

HttpReply ReadHttpReply(Socket& socket, std::chrono::milliseconds timeout, std::string* leftover) {
  HttpReply reply;
  std::string data;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t head_end = std::string::npos;
  auto left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
  };
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (left().count() <= 0 || socket.eof()) return reply;
    data += socket.Recv(std::min<std::chrono::milliseconds>(left(), 200ms));
  }
  std::string head = data.substr(0, head_end);
  std::string rest = data.substr(head_end + 4);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12) return reply;
  int status = std::atoi(status_line.c_str() + 9);
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t v = colon + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      reply.headers[name] = line.substr(v);
    }
    pos = end + 2;
  }
  if (status == 101 || status == 100 || status == 204) {
    reply.status = status;
    if (leftover) *leftover = rest;
    return reply;
  }
  auto cl = reply.headers.find("content-length");
  if (cl != reply.headers.end()) {
    const size_t want = static_cast<size_t>(std::atoll(cl->second.c_str()));
    while (rest.size() < want) {
      if (left().count() <= 0 || socket.eof()) return reply;
      rest += socket.Recv(std::min<std::chrono::milliseconds>(left(), 200ms));
    }
    reply.body = rest.substr(0, want);
    if (leftover) *leftover = rest.substr(want);
  } else {
    while (!socket.eof()) {  // until the server closes
      if (left().count() <= 0) return reply;
      rest += socket.Recv(std::min<std::chrono::milliseconds>(left(), 200ms));
    }
    reply.body = rest;
  }
  reply.status = status;
  return reply;
}

HttpReply RawHttp(int port, std::string_view request, std::chrono::milliseconds timeout) {
  auto socket = Socket::Connect(port);
  if (!socket || !socket->SendAll(request)) return {};
  HttpReply reply = ReadHttpReply(*socket, timeout);
  if (reply.status == 100) reply = ReadHttpReply(*socket, timeout);
  reply.closed = socket->WaitClosed(2s);
  return reply;
}

HttpReply Http(int port, std::string_view method, std::string_view target, std::string_view body,
               const std::vector<std::pair<std::string, std::string>>& headers,
               std::chrono::milliseconds timeout) {
  std::string req = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n";
  req += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  bool has_connection = false;
  bool has_length = false;
  for (const auto& [name, value] : headers) {
    req += name + ": " + value + "\r\n";
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    has_connection |= lower == "connection";
    has_length |= lower == "content-length" || lower == "transfer-encoding";
  }
  if (!has_connection) req += "Connection: close\r\n";
  if (!has_length && (method == "POST" || method == "PUT" || !body.empty())) {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req += body;
  auto socket = Socket::Connect(port);
  if (!socket || !socket->SendAll(req)) return {};
  HttpReply reply = ReadHttpReply(*socket, timeout);
  return reply;
}

// ---- WebSocket ------------------------------------------------------------------------

std::unique_ptr<WsClient> WsClient::Connect(
    int port, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, int rcvbuf, int* status) {
  auto socket = Socket::Connect(port, rcvbuf);
  if (!socket) return nullptr;
  std::string req = "GET " + std::string(target) + " HTTP/1.1\r\n";
  req += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  req += "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  req += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
  req += "\r\n";
  if (!socket->SendAll(req)) return nullptr;
  std::string leftover;
  HttpReply reply = ReadHttpReply(*socket, kWait, &leftover);
  if (status) *status = reply.status;
  if (reply.status != 101) return nullptr;
  auto client = std::unique_ptr<WsClient>(new WsClient());
  client->socket_ = std::move(socket);
  client->buffer_ = std::move(leftover);
  return client;
}

bool WsClient::SendFrame(int opcode, std::string_view payload, bool fin) {
  std::string frame;
  frame.push_back(static_cast<char>((fin ? 0x80 : 0) | (opcode & 0x0f)));
  const size_t n = payload.size();
  if (n < 126) {
    frame.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(n >> 8));
    frame.push_back(static_cast<char>(n & 0xff));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) frame.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  frame.append(reinterpret_cast<const char*>(mask), 4);
  const size_t start = frame.size();
  frame.append(payload);
  for (size_t i = 0; i < n; ++i)
    frame[start + i] = static_cast<char>(frame[start + i] ^ mask[i & 3]);
  return socket_->SendAll(frame);
}

bool WsClient::SendText(std::string_view text) { return SendFrame(1, text); }

WsMessage WsClient::Recv(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // Parse one frame from the buffer if complete.
    if (buffer_.size() >= 2) {
      const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data());
      const bool fin = (b[0] & 0x80) != 0;
      const int opcode = b[0] & 0x0f;
      uint64_t len = b[1] & 0x7f;
      size_t hdr = 2;
      bool complete = true;
      if (len == 126) {
        if (buffer_.size() < 4) {
          complete = false;
        } else {
          len = (uint64_t{b[2]} << 8) | b[3];
          hdr = 4;
        }
      } else if (len == 127) {
        if (buffer_.size() < 10) {
          complete = false;
        } else {
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
          hdr = 10;
        }
      }
      if (complete && buffer_.size() >= hdr + len) {
        std::string payload = buffer_.substr(hdr, static_cast<size_t>(len));
        buffer_.erase(0, hdr + static_cast<size_t>(len));
        if (opcode == 9) {  // ping -> pong
          SendFrame(10, payload);
          continue;
        }
        if (opcode == 10) continue;
        if (opcode == 8) {
          WsMessage m;
          m.kind = WsMessage::kClose;
          if (payload.size() >= 2) {
            m.close_code = (static_cast<unsigned char>(payload[0]) << 8) |
                           static_cast<unsigned char>(payload[1]);
            m.data = payload.substr(2);
          }
          return m;
        }
        partial_ += payload;
        if (!fin) continue;
        WsMessage m;
        m.kind = opcode == 2 ? WsMessage::kBinary : WsMessage::kText;
        m.data = std::move(partial_);
        partial_.clear();
        if (m.kind == WsMessage::kText) last_text_ = m.data;
        return m;
      }
    }
    if (socket_->eof()) return {WsMessage::kEof, {}, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {WsMessage::kTimeout, {}, 0};
    buffer_ += socket_->Recv(std::min<std::chrono::milliseconds>(left, 200ms));
  }
}

std::optional<rapidjson::Document> WsClient::RecvJson(std::chrono::milliseconds timeout) {
  WsMessage m = Recv(timeout);
  if (m.kind != WsMessage::kText) return std::nullopt;
  rapidjson::Document doc;
  doc.Parse(m.data.data(), m.data.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  return doc;
}

std::optional<rapidjson::Document> WsClient::RecvType(std::string_view type,
                                                      std::chrono::milliseconds timeout,
                                                      std::vector<std::string>* skipped) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto doc = RecvJson(left);
    if (!doc) return std::nullopt;
    if (Has(*doc, "type") && Str(*doc, "type") == type) return doc;
    if (skipped) skipped->push_back(last_text_);
  }
}

int WsClient::WaitClose(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return 0;
    WsMessage m = Recv(left);
    if (m.kind == WsMessage::kClose) return m.close_code;
    if (m.kind == WsMessage::kEof || m.kind == WsMessage::kTimeout) return 0;
  }
}

void WsClient::Close(int code) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xff));
  SendFrame(8, payload);
}

// ---- JSON helpers ----------------------------------------------------------------------

std::string Str(const rapidjson::Value& v, const char* member) {
  if (!v.IsObject()) return {};
  auto it = v.FindMember(member);
  if (it == v.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

int64_t Int(const rapidjson::Value& v, const char* member) {
  if (!v.IsObject()) return -1;
  auto it = v.FindMember(member);
  if (it == v.MemberEnd() || !it->value.IsInt64()) return -1;
  return it->value.GetInt64();
}

bool Has(const rapidjson::Value& v, const char* member) {
  return v.IsObject() && v.HasMember(member);
}

std::vector<const rapidjson::Value*> EventsOf(const rapidjson::Value& frame) {
  std::vector<const rapidjson::Value*> out;
  if (!frame.IsObject()) return out;
  if (Str(frame, "type") == "batch") {
    auto it = frame.FindMember("events");
    if (it != frame.MemberEnd() && it->value.IsArray()) {
      for (const auto& e : it->value.GetArray()) out.push_back(&e);
    }
  } else if (Has(frame, "event_type")) {
    out.push_back(&frame);
  }
  return out;
}

}  // namespace tailbus::server_test
