// WebSocket client over libwebsockets 4.1: see ws_client.h for the contract.
//
// Structure: a WsClientGroup::Impl owns an lws context and the thread that
// services it. API threads talk to it through Commands (a mutex-protected
// vector, then lws_cancel_service()); the service thread drains the whole
// vector on every LWS_CALLBACK_EVENT_WAIT_CANCELLED (wake-ups merge and also
// arrive spuriously). Each connection's state lives in a WsConnection shared
// by the WsClient and the group (the group holds it while lws knows the wsi).
//
// lws carries the bytes in RAW mode (connect, poll, buffered writes, flow
// control, timers); the upgrade handshake and RFC 6455 framing are done here
// (see "The group" below for why).
#include "ws/ws_client.h"

#include <libwebsockets.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ws/ws_frame.h"

namespace tailbus {

// ---- URLs ---------------------------------------------------------------------

Result<ParsedUrl> ParseUrl(std::string_view url) {
  ParsedUrl out;
  size_t colon = url.find("://");
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("bad URL '" + std::string(url) +
                                   "': expected scheme://host[:port][/path]");
  }
  for (char c : url.substr(0, colon)) {
    out.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (out.scheme == "wss") {
    return Status::Unsupported("bad URL '" + std::string(url) +
                               "': wss:// is not supported by this client (ws:// only)");
  }
  out.tls = out.scheme == "https";
  if (out.scheme != "http" && out.scheme != "ws" && !out.tls) {
    return Status::InvalidArgument("bad URL '" + std::string(url) + "': unknown scheme '" +
                                   out.scheme + "' (expected http://, https:// or ws://)");
  }
  std::string_view rest = url.substr(colon + 3);
  size_t path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path =
      path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  if (authority.empty()) {
    return Status::InvalidArgument("bad URL '" + std::string(url) + "': no host");
  }
  if (authority.find('@') != std::string_view::npos) {
    return Status::InvalidArgument("bad URL '" + std::string(url) +
                                   "': user information is not supported");
  }
  std::string_view host;
  std::string_view port_text;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("bad URL '" + std::string(url) + "': unclosed '['");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Status::InvalidArgument("bad URL '" + std::string(url) + "': junk after ']'");
      }
      port_text = after.substr(1);
    }
  } else {
    size_t c = authority.rfind(':');
    host = authority.substr(0, c);
    if (c != std::string_view::npos) port_text = authority.substr(c + 1);
  }
  if (host.empty()) return Status::InvalidArgument("bad URL '" + std::string(url) + "': no host");
  out.host = std::string(host);
  out.port = out.tls ? 443 : 80;
  if (!port_text.empty() || authority.back() == ':') {
    if (port_text.empty() || port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(),
                     [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return Status::InvalidArgument("bad URL '" + std::string(url) + "': bad port '" +
                                     std::string(port_text) + "'");
    }
    out.port = std::atoi(std::string(port_text).c_str());
    if (out.port < 1 || out.port > 65535) {
      return Status::InvalidArgument("bad URL '" + std::string(url) + "': port out of range");
    }
  }
  if (path.empty()) {
    out.path = "/";
  } else if (path.front() == '?') {
    out.path = "/" + std::string(path);
  } else {
    out.path = std::string(path);
  }
  size_t hash = out.path.find('#');
  if (hash != std::string::npos) out.path.resize(hash);
  for (char ch : out.path) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) {
      return Status::InvalidArgument("bad URL '" + std::string(url) +
                                     "': spaces and control characters must be percent-encoded");
    }
  }
  bool v6 = out.host.find(':') != std::string::npos;
  out.authority = (v6 ? "[" + out.host + "]" : out.host) + ":" + std::to_string(out.port);
  return out;
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace ws_client_internal {
void InitLwsLogging() {
  static std::once_flag once;
  std::call_once(once, [] {
    int level = LLL_ERR;
    if (const char* env = std::getenv("TAILBUS_LWS_LOG"); env != nullptr && *env != '\0') {
      level = std::atoi(env);
    }
    lws_set_log_level(level, nullptr);
  });
}
}  // namespace ws_client_internal

// ---- WebSocket framing (RFC 6455) ------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point DeadlineAfter(int timeout_ms) {
  return Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
}

enum class ConnState { kConnecting, kOpen, kClosing, kClosed };

constexpr size_t kMaxCloseReasonBytes = 123;  // 125-byte control payload minus the code
constexpr size_t kMaxHandshakeBytes = 16 * 1024;
constexpr int kCloseReplyTimeoutSecs = 5;

enum Opcode : uint8_t {
  kOpContinuation = 0x0,
  kOpText = 0x1,
  kOpBinary = 0x2,
  kOpClose = 0x8,
  kOpPing = 0x9,
  kOpPong = 0xA,
};

// SHA-1 (FIPS 180-1), only for Sec-WebSocket-Accept: lws_SHA1 maps to
// OpenSSL's SHA1 in the Debian build, which this module does not link.
std::array<uint8_t, 20> Sha1(std::string_view data) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  std::string msg(data);
  uint64_t bit_len = static_cast<uint64_t>(data.size()) * 8;
  msg.push_back(static_cast<char>(0x80));
  while (msg.size() % 64 != 56) msg.push_back('\0');
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((bit_len >> (i * 8)) & 0xff));
  auto rol = [](uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  for (size_t chunk = 0; chunk < msg.size(); chunk += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + chunk + i * 4);
      w[i] = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    }
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6;
      }
      uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rol(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  std::array<uint8_t, 20> out{};
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 4; ++j) out[i * 4 + j] = static_cast<uint8_t>(h[i] >> (24 - j * 8));
  }
  return out;
}

std::string Base64(const uint8_t* data, size_t len) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = uint32_t{data[i]} << 16;
    if (i + 1 < len) v |= uint32_t{data[i + 1]} << 8;
    if (i + 2 < len) v |= data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < len ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < len ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// Per-thread generator for masking keys and handshake nonces (RFC 6455
// asks for unpredictable values; this client never runs in a browser, where
// the masking matters for cache poisoning).
std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

// XORs `len` bytes at `p` with the 4-byte `mask`, starting at mask index `pos`.
void ApplyMask(char* p, size_t len, const uint8_t mask[4], size_t pos) {
  uint8_t rotated[4];
  for (int i = 0; i < 4; ++i) rotated[i] = mask[(pos + i) & 3];
  uint64_t m8;
  uint32_t m4;
  std::memcpy(&m4, rotated, 4);
  m8 = (uint64_t{m4} << 32) | m4;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    v ^= m8;
    std::memcpy(p + i, &v, 8);
  }
  for (; i < len; ++i) p[i] = static_cast<char>(p[i] ^ rotated[i & 3]);
}

// A complete client frame (masked), preceded by LWS_PRE bytes of headroom.
std::string BuildFrame(uint8_t opcode, std::string_view payload) {
  uint8_t header[ws::kMaxFrameHeaderBytes + 4];
  size_t n = ws::EncodeFrameHeader(opcode, payload.size(), /*masked=*/true, header);
  uint64_t r = Rng()();
  uint8_t mask[4];
  std::memcpy(mask, &r, 4);
  std::memcpy(header + n, mask, 4);
  n += 4;
  std::string frame(LWS_PRE + n + payload.size(), '\0');
  std::memcpy(frame.data() + LWS_PRE, header, n);
  if (!payload.empty()) {
    std::memcpy(frame.data() + LWS_PRE + n, payload.data(), payload.size());
    ApplyMask(frame.data() + LWS_PRE + n, payload.size(), mask, 0);
  }
  return frame;
}

std::string ClosePayload(int code, std::string_view reason) {
  std::string p;
  p.push_back(static_cast<char>((code >> 8) & 0xff));
  p.push_back(static_cast<char>(code & 0xff));
  p.append(reason.substr(0, kMaxCloseReasonBytes));
  return p;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

struct OutFrame {
  std::string bytes;   // LWS_PRE headroom + the whole frame
  size_t payload = 0;  // payload bytes, for outbox_bytes()
};

}  // namespace

// ---- Connection state -------------------------------------------------------------

class WsConnection {
 public:
  WsConnection(ParsedUrl url, WsClientOptions options)
      : url_(std::move(url)), options_(std::move(options)) {
    uint8_t nonce[16];
    for (int i = 0; i < 16; i += 8) {
      uint64_t r = Rng()();
      std::memcpy(nonce + i, &r, 8);
    }
    key_ = Base64(nonce, sizeof nonce);
    std::array<uint8_t, 20> digest = Sha1(key_ + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    expected_accept_ = Base64(digest.data(), digest.size());
  }

  // Immutable after construction.
  const ParsedUrl url_;
  const WsClientOptions options_;
  std::string key_;
  std::string expected_accept_;

  // ---- Service thread only.
  lws* wsi_ = nullptr;
  bool detached_ = false;        // no on_message calls any more
  bool handshake_sent_ = false;  // the upgrade request was written
  bool upgraded_ = false;        // the 101 response was accepted
  std::string hs_buf_;           // the upgrade response so far
  // Frame parser.
  uint8_t hdr_[14] = {};
  size_t hdr_len_ = 0;
  size_t hdr_need_ = 2;
  bool in_payload_ = false;
  uint64_t payload_left_ = 0;
  uint8_t opcode_ = 0;
  bool fin_ = false;
  bool masked_ = false;
  uint8_t mask_[4] = {};
  size_t mask_pos_ = 0;
  bool in_message_ = false;  // a fragmented message is being assembled
  std::string rx_partial_;   // the message being assembled
  std::string ctrl_;         // the control frame payload being read
  // Control frames to send ahead of data (pong, close reply); then, when
  // close_after_write_, the connection is dropped.
  std::deque<std::string> ctrl_out_;
  bool close_sent_ = false;         // a close frame went out (ours or the reply)
  bool close_after_write_ = false;  // drop the TCP connection once ctrl_out_ is written
  bool failed_ = false;             // protocol error: ignore further input
  Clock::time_point last_rx_ = Clock::now();
  Clock::time_point last_ping_ = Clock::now();

  // ---- Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ConnState state_ = ConnState::kConnecting;
  bool was_open_ = false;
  bool detach_done_ = false;
  std::deque<std::string> inbox_;
  size_t inbox_bytes_ = 0;
  std::deque<OutFrame> outbox_;
  size_t outbox_bytes_ = 0;
  bool close_requested_ = false;
  int close_code_ = 1000;
  std::string close_reason_;
  bool rx_paused_ = false;
  bool resume_posted_ = false;
  WsCloseInfo info_;

  // Marks the connection ended (idempotent); called with mu_ held.
  void MarkClosedLocked(std::string_view error) {
    if (state_ == ConnState::kClosed) return;
    state_ = ConnState::kClosed;
    if (!info_.received_close_frame && info_.error.empty()) {
      info_.error = std::string(error);
    }
    cv_.notify_all();
  }
};

// ---- The group ------------------------------------------------------------------
//
// libwebsockets carries the bytes (connect, poll, buffered writes, flow
// control) in RAW mode; the WebSocket handshake and framing are done here.
// lws 4.1's own client parser handles received payload one byte per function
// call (~170 MB/s on this machine kind, 85% of the client's CPU when
// catching up); a block parser keeps up with the server's catch-up rate.

namespace {

enum class CommandKind { kConnect, kKick, kAbort, kResumeRx, kDetach };

struct Command {
  CommandKind kind;
  std::shared_ptr<WsConnection> conn;
};

}  // namespace

class WsClientGroup::Impl {
 public:
  explicit Impl(const WsClientGroupOptions& options) : options_(options) {}

  Status Start() {
    ws_client_internal::InitLwsLogging();
    protocols_[0] = {};
    protocols_[0].name = "tailbus-ws-client";
    protocols_[0].callback = &Impl::Callback;
    protocols_[0].rx_buffer_size = options_.rx_buffer_size;
    protocols_[0].tx_packet_size = options_.tx_packet_size;
    protocols_[1] = {};

    lws_context_creation_info info;
    std::memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols_;
    info.user = this;
    info.timeout_secs = 30;  // lws' own connect timeout; callers wait less
    // RAW_RX hands over what one read returned, up to this size.
    info.pt_serv_buf_size =
        static_cast<unsigned int>(std::max<size_t>(options_.rx_buffer_size, 4096));
    if (options_.max_connections != 0) {
      // Small fd tables: lws then finds a socket by scanning them, which is
      // cheap for the few connections such a context holds.
      info.fd_limit_per_thread = static_cast<unsigned int>(options_.max_connections + 4);
    }
    ctx_ = lws_create_context(&info);
    if (ctx_ == nullptr) return Status::IoError("cannot create a libwebsockets client context");
    thread_ = std::thread([this] { Run(); });
    service_thread_id_ = thread_.get_id();
    return Status::Ok();
  }

  ~Impl() {
    if (thread_.joinable()) {
      {
        // Under the lock: the service thread destroys the context only after
        // setting stopped_ under the same lock.
        std::lock_guard<std::mutex> lock(cmd_mu_);
        stop_ = true;
        if (!stopped_) lws_cancel_service(ctx_);
      }
      thread_.join();
    }
  }

  // Queues a command for the service thread. False when the service loop has
  // ended (the command will never run).
  bool Post(CommandKind kind, std::shared_ptr<WsConnection> conn) {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    if (stopped_ || stop_) return false;
    commands_.push_back(Command{kind, std::move(conn)});
    lws_cancel_service(ctx_);  // under the lock, see ~Impl()
    return true;
  }

  bool OnServiceThread() const { return std::this_thread::get_id() == service_thread_id_; }

  size_t connection_count() const { return live_count_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(cmd_mu_);
        if (stop_) break;
      }
      if (lws_service(ctx_, 0) < 0) break;
    }
    std::vector<Command> orphans;
    {
      std::lock_guard<std::mutex> lock(cmd_mu_);
      stopped_ = true;
      orphans.swap(commands_);
    }
    // Closes every wsi: RAW_CLOSE / CONNECTION_ERROR callbacks run here.
    lws_context_destroy(ctx_);
    ctx_ = nullptr;
    for (auto& [raw, conn] : live_) {
      std::lock_guard<std::mutex> lock(conn->mu_);
      conn->MarkClosedLocked("the client group was destroyed");
    }
    live_.clear();
    for (Command& cmd : orphans) {
      std::lock_guard<std::mutex> lock(cmd.conn->mu_);
      if (cmd.kind == CommandKind::kDetach) cmd.conn->detach_done_ = true;
      cmd.conn->MarkClosedLocked("the client group was destroyed");
      cmd.conn->cv_.notify_all();
    }
    live_count_.store(0);
  }

  void DrainCommands() {
    std::vector<Command> batch;
    {
      std::lock_guard<std::mutex> lock(cmd_mu_);
      batch.swap(commands_);
    }
    for (Command& cmd : batch) {
      WsConnection* conn = cmd.conn.get();
      switch (cmd.kind) {
        case CommandKind::kConnect:
          DoConnect(cmd.conn);
          break;
        case CommandKind::kKick:
          if (conn->wsi_ != nullptr) lws_callback_on_writable(conn->wsi_);
          break;
        case CommandKind::kAbort:
          if (conn->wsi_ != nullptr) {
            lws_set_timeout(conn->wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
          } else {
            std::lock_guard<std::mutex> lock(conn->mu_);
            conn->MarkClosedLocked("aborted");
          }
          break;
        case CommandKind::kResumeRx: {
          bool resume = false;
          {
            std::lock_guard<std::mutex> lock(conn->mu_);
            conn->resume_posted_ = false;
            if (conn->rx_paused_ && conn->inbox_bytes_ <= conn->options_.max_inbox_bytes / 2) {
              conn->rx_paused_ = false;
              resume = true;
            }
          }
          if (resume && conn->wsi_ != nullptr) lws_rx_flow_control(conn->wsi_, 1);
          break;
        }
        case CommandKind::kDetach: {
          conn->detached_ = true;
          std::lock_guard<std::mutex> lock(conn->mu_);
          conn->detach_done_ = true;
          conn->cv_.notify_all();
          break;
        }
      }
    }
  }

  void DoConnect(const std::shared_ptr<WsConnection>& conn) {
    {
      std::lock_guard<std::mutex> lock(conn->mu_);
      if (conn->state_ != ConnState::kConnecting || conn->close_requested_) {
        conn->MarkClosedLocked("closed before the connection started");
        return;
      }
    }
    live_[conn.get()] = conn;
    live_count_.store(live_.size(), std::memory_order_relaxed);

    lws_client_connect_info i;
    std::memset(&i, 0, sizeof i);
    i.context = ctx_;
    i.address = conn->url_.host.c_str();
    i.port = conn->url_.port;
    i.path = conn->url_.path.c_str();
    i.host = conn->url_.authority.c_str();
    i.method = "RAW";
    i.protocol = protocols_[0].name;  // RAW binds to the protocol of this name
    i.local_protocol_name = protocols_[0].name;
    i.opaque_user_data = conn.get();
    lws* wsi = lws_client_connect_via_info(&i);
    if (wsi == nullptr) {
      {
        std::lock_guard<std::mutex> lock(conn->mu_);
        conn->MarkClosedLocked("cannot connect to " + conn->url_.authority +
                               " (connection refused or address not resolvable)");
      }
      Forget(conn.get(), nullptr);
      return;
    }
    // A failure reported through CONNECTION_ERROR during the call has
    // already forgotten the connection: never keep a stale wsi.
    if (live_.count(conn.get()) != 0) conn->wsi_ = wsi;
  }

  // The connection's wsi is gone (or going): unlink it from the wsi, so later
  // callbacks for that wsi (WSI_DESTROY) cannot reach it, and drop the group's
  // reference. Last use of `conn`: it may be destroyed here.
  void Forget(WsConnection* conn, lws* wsi) {
    if (wsi != nullptr) lws_set_opaque_user_data(wsi, nullptr);
    conn->wsi_ = nullptr;
    live_.erase(conn);
    live_count_.store(live_.size(), std::memory_order_relaxed);
  }

  // Ends the connection after writing a close frame with `code` (protocol
  // errors, oversized messages). Returns 0 (the close happens from WRITEABLE).
  int FailWith(WsConnection* conn, lws* wsi, int code, const std::string& why) {
    conn->failed_ = true;
    {
      std::lock_guard<std::mutex> lock(conn->mu_);
      if (conn->info_.error.empty()) conn->info_.error = why;
    }
    if (!conn->close_sent_) {
      conn->ctrl_out_.push_back(BuildFrame(kOpClose, ClosePayload(code, why)));
      conn->close_sent_ = true;
    }
    conn->close_after_write_ = true;
    lws_callback_on_writable(wsi);
    return 0;
  }

  void Deliver(WsConnection* conn, lws* wsi, std::string message) {
    if (conn->options_.on_message) {
      if (!conn->detached_) conn->options_.on_message(message);
      return;
    }
    bool pause = false;
    {
      std::lock_guard<std::mutex> lock(conn->mu_);
      conn->inbox_bytes_ += message.size();
      conn->inbox_.push_back(std::move(message));
      if (conn->inbox_bytes_ > conn->options_.max_inbox_bytes && !conn->rx_paused_) {
        conn->rx_paused_ = true;
        pause = true;
      }
      conn->cv_.notify_all();
    }
    if (pause) lws_rx_flow_control(wsi, 0);
  }

  // The upgrade response: returns the number of bytes of `data` it used, or
  // -1 after failing the connection.
  long OnHandshakeBytes(WsConnection* conn, lws* wsi, const char* data, size_t len) {
    size_t before = conn->hs_buf_.size();
    conn->hs_buf_.append(data, len);
    size_t end = conn->hs_buf_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (conn->hs_buf_.size() > kMaxHandshakeBytes) {
        SetError(conn, "the upgrade response headers are too large");
        return -1;
      }
      return static_cast<long>(len);
    }
    std::string_view head(conn->hs_buf_.data(), end);
    size_t used = end + 4 - before;
    // Status line: HTTP/1.1 101 Switching Protocols
    size_t eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    int status = 0;
    if (status_line.substr(0, 5) == "HTTP/" && status_line.size() >= 12) {
      status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
    }
    {
      std::lock_guard<std::mutex> lock(conn->mu_);
      conn->info_.http_status = status;
    }
    if (status != 101) {
      SetError(conn, status == 0 ? "not an HTTP response to the upgrade request"
                                 : "the server answered HTTP " + std::to_string(status) +
                                       " instead of upgrading to WebSocket");
      return -1;
    }
    bool upgrade = false;
    bool connection = false;
    bool accept_ok = false;
    size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
    while (pos < head.size()) {
      size_t next = head.find("\r\n", pos);
      if (next == std::string_view::npos) next = head.size();
      std::string_view line = head.substr(pos, next - pos);
      pos = next + 2;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name = Lower(Trim(line.substr(0, colon)));
      std::string_view value = Trim(line.substr(colon + 1));
      if (name == "upgrade") upgrade = Lower(value) == "websocket";
      if (name == "connection") connection = Lower(value).find("upgrade") != std::string::npos;
      if (name == "sec-websocket-accept") accept_ok = value == conn->expected_accept_;
      if (name == "sec-websocket-extensions" && !value.empty()) {
        SetError(conn, "the server chose an extension that was not offered");
        return -1;
      }
    }
    if (!upgrade || !connection || !accept_ok) {
      SetError(conn, !accept_ok ? "the upgrade response has a wrong Sec-WebSocket-Accept"
                                : "the upgrade response lacks Upgrade/Connection headers");
      return -1;
    }
    conn->upgraded_ = true;
    conn->hs_buf_.clear();
    conn->hs_buf_.shrink_to_fit();
    bool want_write = false;
    {
      std::lock_guard<std::mutex> lock(conn->mu_);
      conn->was_open_ = true;
      if (conn->state_ == ConnState::kConnecting) conn->state_ = ConnState::kOpen;
      want_write = !conn->outbox_.empty() || conn->close_requested_;
      conn->cv_.notify_all();
    }
    if (want_write) lws_callback_on_writable(wsi);
    ArmTimer(conn, wsi);
    return static_cast<long>(used);
  }

  static void SetError(WsConnection* conn, const std::string& why) {
    std::lock_guard<std::mutex> lock(conn->mu_);
    if (conn->info_.error.empty()) conn->info_.error = why;
  }

  // Feeds received bytes through the frame parser. Returns -1 to drop the
  // connection now.
  int OnFrameBytes(WsConnection* conn, lws* wsi, const char* p, size_t n) {
    while (n > 0 && !conn->failed_) {
      if (!conn->in_payload_) {
        size_t take = std::min(n, conn->hdr_need_ - conn->hdr_len_);
        std::memcpy(conn->hdr_ + conn->hdr_len_, p, take);
        conn->hdr_len_ += take;
        p += take;
        n -= take;
        if (conn->hdr_len_ < conn->hdr_need_) break;
        if (conn->hdr_need_ == 2) {
          uint8_t len7 = conn->hdr_[1] & 0x7f;
          size_t extra = (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((conn->hdr_[1] & 0x80) ? 4 : 0);
          if (extra > 0) {
            conn->hdr_need_ = 2 + extra;
            continue;
          }
        }
        if (int r = StartFrame(conn, wsi); r != 0) return r;
        continue;
      }
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, conn->payload_left_));
      bool control = (conn->opcode_ & 0x8) != 0;
      std::string& dest = control ? conn->ctrl_ : conn->rx_partial_;
      size_t old = dest.size();
      dest.append(p, take);
      if (conn->masked_) {
        ApplyMask(dest.data() + old, take, conn->mask_, conn->mask_pos_);
        conn->mask_pos_ += take;
      }
      p += take;
      n -= take;
      conn->payload_left_ -= take;
      if (conn->payload_left_ == 0) {
        conn->in_payload_ = false;
        if (int r = FinishFrame(conn, wsi); r != 0) return r;
      }
    }
    return 0;
  }

  int StartFrame(WsConnection* conn, lws* wsi) {
    const uint8_t* h = conn->hdr_;
    conn->fin_ = (h[0] & 0x80) != 0;
    conn->opcode_ = h[0] & 0x0f;
    conn->masked_ = (h[1] & 0x80) != 0;
    uint64_t len = h[1] & 0x7f;
    size_t at = 2;
    if (len == 126) {
      len = (uint64_t{h[2]} << 8) | h[3];
      at = 4;
    } else if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | h[2 + i];
      at = 10;
    }
    if (conn->masked_) std::memcpy(conn->mask_, h + at, 4);
    conn->mask_pos_ = 0;
    conn->hdr_len_ = 0;
    conn->hdr_need_ = 2;
    if ((h[0] & 0x70) != 0) return FailWith(conn, wsi, 1002, "reserved bits set in a frame");
    bool control = (conn->opcode_ & 0x8) != 0;
    if (control) {
      if (!conn->fin_ || len > 125) return FailWith(conn, wsi, 1002, "bad control frame");
      if (conn->opcode_ != kOpClose && conn->opcode_ != kOpPing && conn->opcode_ != kOpPong) {
        return FailWith(conn, wsi, 1002, "unknown opcode");
      }
      conn->ctrl_.clear();
    } else {
      if (conn->opcode_ == kOpContinuation) {
        if (!conn->in_message_) return FailWith(conn, wsi, 1002, "unexpected continuation frame");
      } else if (conn->opcode_ == kOpText || conn->opcode_ == kOpBinary) {
        if (conn->in_message_) return FailWith(conn, wsi, 1002, "expected a continuation frame");
        conn->rx_partial_.clear();
        conn->in_message_ = true;
      } else {
        return FailWith(conn, wsi, 1002, "unknown opcode");
      }
      if (len > conn->options_.max_message_bytes ||
          conn->rx_partial_.size() + len > conn->options_.max_message_bytes) {
        return FailWith(conn, wsi, 1009, "received a message larger than max_message_bytes");
      }
      if (conn->opcode_ != kOpContinuation) conn->rx_partial_.reserve(static_cast<size_t>(len));
    }
    conn->payload_left_ = len;
    conn->in_payload_ = len > 0;
    if (len == 0) return FinishFrame(conn, wsi);
    return 0;
  }

  int FinishFrame(WsConnection* conn, lws* wsi) {
    switch (conn->opcode_) {
      case kOpContinuation:
      case kOpText:
      case kOpBinary:
        if (conn->fin_) {
          conn->in_message_ = false;
          std::string message;
          message.swap(conn->rx_partial_);
          Deliver(conn, wsi, std::move(message));
        }
        return 0;
      case kOpPing:
        if (!conn->close_sent_) {
          conn->ctrl_out_.push_back(BuildFrame(kOpPong, conn->ctrl_));
          lws_callback_on_writable(wsi);
        }
        return 0;
      case kOpPong:
        return 0;
      case kOpClose: {
        {
          std::lock_guard<std::mutex> lock(conn->mu_);
          conn->info_.received_close_frame = true;
          if (conn->ctrl_.size() >= 2) {
            conn->info_.code =
                (static_cast<uint8_t>(conn->ctrl_[0]) << 8) | static_cast<uint8_t>(conn->ctrl_[1]);
            conn->info_.reason = conn->ctrl_.substr(2);
          } else {
            conn->info_.code = 1005;
          }
          if (conn->state_ != ConnState::kClosed) conn->state_ = ConnState::kClosing;
          conn->cv_.notify_all();
        }
        if (conn->close_sent_) return -1;  // the reply to our close: done
        // Echo the code, then drop the connection.
        std::string echo = conn->ctrl_.size() >= 2 ? conn->ctrl_.substr(0, 2) : std::string();
        conn->ctrl_out_.push_back(BuildFrame(kOpClose, echo));
        conn->close_sent_ = true;
        conn->close_after_write_ = true;
        conn->failed_ = true;  // nothing after a close frame is data
        lws_callback_on_writable(wsi);
        return 0;
      }
      default:
        return 0;
    }
  }

  // One write per WRITEABLE: the upgrade request, a control frame, a data
  // frame or our close frame, in that priority. Returns -1 to close.
  int OnWriteable(WsConnection* conn, lws* wsi) {
    if (!conn->handshake_sent_) {
      conn->handshake_sent_ = true;
      std::string req(LWS_PRE, '\0');
      req += "GET " + conn->url_.path + " HTTP/1.1\r\nHost: " + conn->url_.authority +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + conn->key_ +
             "\r\nSec-WebSocket-Version: 13\r\n";
      for (const std::string& line : conn->options_.headers) {
        if (line.find_first_of("\r\n") == std::string::npos &&
            line.find(':') != std::string::npos) {
          req += line + "\r\n";
        }
      }
      req += "\r\n";
      return Write(conn, wsi, req) ? 0 : -1;
    }
    if (!conn->ctrl_out_.empty()) {
      std::string frame = std::move(conn->ctrl_out_.front());
      conn->ctrl_out_.pop_front();
      if (!Write(conn, wsi, frame)) return -1;
      if (conn->ctrl_out_.empty() && conn->close_after_write_) {
        // Wait for lws to drain what it buffered, then close.
        return lws_partial_buffered(wsi) ? (lws_callback_on_writable(wsi), 0) : -1;
      }
      lws_callback_on_writable(wsi);
      return 0;
    }
    if (conn->close_after_write_) return -1;
    if (!conn->upgraded_ || conn->close_sent_) return 0;
    OutFrame frame;
    bool more = false;
    bool send_close = false;
    std::string close_payload;
    {
      std::lock_guard<std::mutex> lock(conn->mu_);
      if (!conn->outbox_.empty()) {
        frame = std::move(conn->outbox_.front());
        conn->outbox_.pop_front();
        conn->outbox_bytes_ -= frame.payload;
        more = !conn->outbox_.empty() || conn->close_requested_;
        if (conn->outbox_.empty()) conn->cv_.notify_all();  // Flush()
      } else if (conn->close_requested_) {
        send_close = true;
        close_payload = ClosePayload(conn->close_code_, conn->close_reason_);
      }
    }
    if (!frame.bytes.empty()) {
      if (!Write(conn, wsi, frame.bytes)) return -1;
      if (more) lws_callback_on_writable(wsi);
      return 0;
    }
    if (send_close) {
      conn->close_sent_ = true;
      std::string close_frame = BuildFrame(kOpClose, close_payload);
      if (!Write(conn, wsi, close_frame)) return -1;
      // Wait (bounded) for the server's close frame.
      lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, kCloseReplyTimeoutSecs);
    }
    return 0;
  }

  static bool Write(WsConnection* conn, lws* wsi, std::string& frame) {
    size_t len = frame.size() - LWS_PRE;
    auto* data = reinterpret_cast<unsigned char*>(frame.data()) + LWS_PRE;
    int n = lws_write(wsi, data, len, LWS_WRITE_RAW);
    if (n < 0 || static_cast<size_t>(n) < len) {
      SetError(conn, "write failed");
      return false;
    }
    return true;
  }

  // Keepalive: a WebSocket ping once ping_interval_seconds pass without
  // input; the connection is dropped once idle_hangup_seconds pass without
  // input. The timer is set for exactly the next of those two moments.
  void ArmTimer(WsConnection* conn, lws* wsi) {
    if (conn->options_.ping_interval_seconds == 0) return;
    conn->last_ping_ = Clock::time_point{};
    ScheduleKeepalive(conn, wsi, Clock::now());
  }

  static std::chrono::seconds HangupAfter(const WsClientOptions& o) {
    return std::chrono::seconds(o.idle_hangup_seconds > o.ping_interval_seconds
                                    ? o.idle_hangup_seconds
                                    : o.ping_interval_seconds * 2);
  }

  void ScheduleKeepalive(WsConnection* conn, lws* wsi, Clock::time_point now) {
    const WsClientOptions& o = conn->options_;
    bool pinged = conn->last_ping_ > conn->last_rx_;  // since the last input
    Clock::time_point next = pinged
                                 ? conn->last_rx_ + HangupAfter(o)
                                 : conn->last_rx_ + std::chrono::seconds(o.ping_interval_seconds);
    auto wait = std::chrono::duration_cast<std::chrono::microseconds>(next - now).count();
    lws_set_timer_usecs(wsi, static_cast<lws_usec_t>(std::max<int64_t>(wait, 10'000)));
  }

  int OnTimer(WsConnection* conn, lws* wsi) {
    const WsClientOptions& o = conn->options_;
    if (o.ping_interval_seconds == 0 || conn->close_sent_) return 0;
    auto now = Clock::now();
    auto idle = now - conn->last_rx_;
    if (idle >= HangupAfter(o)) {
      SetError(conn, "nothing received for " + std::to_string(HangupAfter(o).count()) + " s");
      return -1;
    }
    if (idle >= std::chrono::seconds(o.ping_interval_seconds) &&
        conn->last_ping_ <= conn->last_rx_) {
      conn->last_ping_ = now;
      conn->ctrl_out_.push_back(BuildFrame(kOpPing, {}));
      lws_callback_on_writable(wsi);
    }
    ScheduleKeepalive(conn, wsi, now);
    return 0;
  }

  static int Callback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* in, size_t len) {
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
      auto* self = static_cast<Impl*>(lws_context_user(lws_get_context(wsi)));
      if (self != nullptr) self->DrainCommands();
      return 0;
    }
    switch (reason) {
      case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      case LWS_CALLBACK_RAW_CONNECTED:
      case LWS_CALLBACK_RAW_RX:
      case LWS_CALLBACK_RAW_WRITEABLE:
      case LWS_CALLBACK_RAW_CLOSE:
      case LWS_CALLBACK_TIMER:
      case LWS_CALLBACK_WSI_DESTROY:
        break;
      default:
        return 0;
    }
    if (wsi == nullptr) return 0;
    auto* self = static_cast<Impl*>(lws_context_user(lws_get_context(wsi)));
    auto* conn = static_cast<WsConnection*>(lws_get_opaque_user_data(wsi));
    if (self == nullptr || conn == nullptr) return 0;
    return self->OnConnectionEvent(conn, wsi, reason, in, len);
  }

  int OnConnectionEvent(WsConnection* conn, lws* wsi, lws_callback_reasons reason, void* in,
                        size_t len) {
    switch (reason) {
      case LWS_CALLBACK_RAW_CONNECTED:
        conn->wsi_ = wsi;
        lws_callback_on_writable(wsi);  // the upgrade request
        return 0;
      case LWS_CALLBACK_RAW_RX: {
        if (conn->failed_ || len == 0) return 0;
        conn->last_rx_ = Clock::now();
        const char* p = static_cast<const char*>(in);
        if (!conn->upgraded_) {
          long used = OnHandshakeBytes(conn, wsi, p, len);
          if (used < 0) return -1;
          p += used;
          len -= static_cast<size_t>(used);
          if (!conn->upgraded_) return 0;
        }
        return OnFrameBytes(conn, wsi, p, len);
      }
      case LWS_CALLBACK_RAW_WRITEABLE:
        return OnWriteable(conn, wsi);
      case LWS_CALLBACK_TIMER:
        return OnTimer(conn, wsi);
      case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        std::string why = in != nullptr && len > 0 ? std::string(static_cast<const char*>(in), len)
                                                   : std::string("connection failed");
        {
          std::lock_guard<std::mutex> lock(conn->mu_);
          conn->MarkClosedLocked(why);
        }
        Forget(conn, wsi);
        return 0;
      }
      case LWS_CALLBACK_RAW_CLOSE:
      case LWS_CALLBACK_WSI_DESTROY: {  // the last word on any wsi
        {
          std::lock_guard<std::mutex> lock(conn->mu_);
          if (!conn->info_.received_close_frame && conn->close_sent_ && conn->close_requested_) {
            // We closed and the server did not answer in time: report ours.
            conn->info_.code = conn->close_code_;
            conn->info_.reason = conn->close_reason_;
          }
          conn->MarkClosedLocked(conn->upgraded_ ? "connection closed without a close frame"
                                                 : "connection closed during the upgrade");
        }
        Forget(conn, wsi);
        return 0;
      }
      default:
        return 0;
    }
  }

  WsClientGroupOptions options_;
  lws_protocols protocols_[2];
  lws_context* ctx_ = nullptr;
  std::thread thread_;
  std::thread::id service_thread_id_;

  std::mutex cmd_mu_;
  std::vector<Command> commands_;  // guarded by cmd_mu_
  bool stop_ = false;              // guarded by cmd_mu_
  bool stopped_ = false;           // guarded by cmd_mu_

  // Service thread only: every connection lws knows about.
  std::unordered_map<WsConnection*, std::shared_ptr<WsConnection>> live_;
  std::atomic<size_t> live_count_{0};
};

WsClientGroup::WsClientGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WsClientGroup::~WsClientGroup() = default;

Result<std::shared_ptr<WsClientGroup>> WsClientGroup::Create(const WsClientGroupOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  TAILBUS_RETURN_IF_ERROR(impl->Start());
  return std::shared_ptr<WsClientGroup>(new WsClientGroup(std::move(impl)));
}

size_t WsClientGroup::connection_count() const { return impl_->connection_count(); }

// ---- WsClient -------------------------------------------------------------------

namespace {

std::string DescribeClose(const WsCloseInfo& info) {
  std::string text;
  if (info.received_close_frame) {
    text = "closed by the server with code " + std::to_string(info.code);
    if (!info.reason.empty()) text += " (" + info.reason + ")";
  } else if (!info.error.empty()) {
    text = info.error;
  } else {
    text = "closed with code " + std::to_string(info.code);
  }
  return text;
}

}  // namespace

WsClient::WsClient(std::shared_ptr<WsClientGroup> group, std::shared_ptr<WsConnection> conn)
    : group_(std::move(group)), conn_(std::move(conn)) {}

Result<std::unique_ptr<WsClient>> WsClient::StartConnect(std::shared_ptr<WsClientGroup> group,
                                                         std::string_view url,
                                                         const WsClientOptions& options) {
  if (!group) return Status::InvalidArgument("WsClient::StartConnect: no group");
  Result<ParsedUrl> parsed = ParseUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (parsed->scheme != "ws") {
    return Status::InvalidArgument("bad URL '" + std::string(url) + "': expected ws://");
  }
  if (parsed->path.size() > kMaxClientPathBytes) {
    return Status::InvalidArgument("URL path and query too long (" +
                                   std::to_string(parsed->path.size()) + " bytes; at most " +
                                   std::to_string(kMaxClientPathBytes) + ")");
  }
  for (const std::string& h : options.headers) {
    if (h.find_first_of("\r\n") != std::string::npos || h.find(':') == std::string::npos) {
      return Status::InvalidArgument("bad header line '" + h + "': expected \"Name: value\"");
    }
  }
  auto conn = std::make_shared<WsConnection>(std::move(parsed).value(), options);
  if (!group->impl()->Post(CommandKind::kConnect, conn)) {
    return Status::Unavailable("the WebSocket client group has stopped");
  }
  return std::unique_ptr<WsClient>(new WsClient(std::move(group), std::move(conn)));
}

Result<std::unique_ptr<WsClient>> WsClient::Connect(std::shared_ptr<WsClientGroup> group,
                                                    std::string_view url,
                                                    const WsClientOptions& options) {
  Result<std::unique_ptr<WsClient>> client = StartConnect(std::move(group), url, options);
  if (!client.ok()) return client;
  Status st = (*client)->WaitConnected(options.connect_timeout_ms);
  if (st.code() == StatusCode::kBusy) {
    (*client)->AbandonConnect(options.connect_timeout_ms);
    return Status::IoError("cannot connect to " + std::string(url) + ": timed out after " +
                           std::to_string(options.connect_timeout_ms) + " ms");
  }
  TAILBUS_RETURN_IF_ERROR(st);
  return client;
}

Result<std::unique_ptr<WsClient>> WsClient::Connect(std::string_view url,
                                                    const WsClientOptions& options) {
  WsClientGroupOptions group_options;
  group_options.max_connections = 1;
  Result<std::shared_ptr<WsClientGroup>> group = WsClientGroup::Create(group_options);
  if (!group.ok()) return group.status();
  Result<std::unique_ptr<WsClient>> client = Connect(std::move(group).value(), url, options);
  if (client.ok()) (*client)->owns_group_ = true;
  return client;
}

Status WsClient::WaitConnected(int timeout_ms) {
  std::unique_lock<std::mutex> lock(conn_->mu_);
  conn_->cv_.wait_until(lock, DeadlineAfter(timeout_ms),
                        [&] { return conn_->state_ != ConnState::kConnecting; });
  if (conn_->was_open_) return Status::Ok();
  std::string target = "ws://" + conn_->url_.authority + conn_->url_.path;
  if (conn_->state_ == ConnState::kClosed) {
    return Status::IoError("cannot connect to " + target + ": " + DescribeClose(conn_->info_));
  }
  return Status::Busy("still connecting to " + target + " after " + std::to_string(timeout_ms) +
                      " ms");
}

WsClient::~WsClient() {
  WsClientGroup::Impl* group = group_->impl();
  const bool on_service_thread = group->OnServiceThread();
  // A private group dies with this client: close politely first. Clients of a
  // shared group close in the background (thousands of them would otherwise
  // take a round trip each).
  (void)Close(1000, {}, owns_group_ && !on_service_thread ? 1'000 : 0);
  if (!conn_->options_.on_message) return;
  // No on_message call may follow the destructor.
  if (on_service_thread) {
    conn_->detached_ = true;
  } else if (group->Post(CommandKind::kDetach, conn_)) {
    std::unique_lock<std::mutex> lock(conn_->mu_);
    conn_->cv_.wait_for(lock, std::chrono::seconds(10), [&] { return conn_->detach_done_; });
  }
}

Status WsClient::Send(std::string_view text) {
  // Framed and masked here, on the caller's thread.
  OutFrame frame{BuildFrame(kOpText, text), text.size()};
  bool kick = false;
  {
    std::lock_guard<std::mutex> lock(conn_->mu_);
    if (conn_->state_ == ConnState::kClosing || conn_->state_ == ConnState::kClosed ||
        conn_->close_requested_) {
      return Status::Unavailable(
          "cannot send: the connection is " +
          std::string(conn_->state_ == ConnState::kClosed ? "closed" : "closing"));
    }
    kick = conn_->outbox_.empty() && conn_->state_ == ConnState::kOpen;
    conn_->outbox_.push_back(std::move(frame));
    conn_->outbox_bytes_ += text.size();
  }
  if (kick && !group_->impl()->Post(CommandKind::kKick, conn_)) {
    return Status::Unavailable("cannot send: the client group has stopped");
  }
  return Status::Ok();
}

Status WsClient::Flush(int timeout_ms) {
  std::unique_lock<std::mutex> lock(conn_->mu_);
  conn_->cv_.wait_until(lock, DeadlineAfter(timeout_ms), [&] {
    return conn_->outbox_.empty() || conn_->state_ == ConnState::kClosed;
  });
  if (conn_->outbox_.empty()) return Status::Ok();
  if (conn_->state_ == ConnState::kClosed) {
    return Status::Unavailable("connection closed with frames unsent: " +
                               DescribeClose(conn_->info_));
  }
  return Status::Busy(std::to_string(conn_->outbox_.size()) + " frames still queued after " +
                      std::to_string(timeout_ms) + " ms");
}

Result<std::string> WsClient::Receive(int timeout_ms) {
  std::string message;
  bool post_resume = false;
  {
    std::unique_lock<std::mutex> lock(conn_->mu_);
    conn_->cv_.wait_until(lock, DeadlineAfter(timeout_ms), [&] {
      return !conn_->inbox_.empty() || conn_->state_ == ConnState::kClosed;
    });
    if (conn_->inbox_.empty()) {
      if (conn_->state_ == ConnState::kClosed) {
        return Status::Unavailable(DescribeClose(conn_->info_));
      }
      return Status::Busy("no message within " + std::to_string(timeout_ms) + " ms");
    }
    message = std::move(conn_->inbox_.front());
    conn_->inbox_.pop_front();
    conn_->inbox_bytes_ -= message.size();
    if (conn_->rx_paused_ && !conn_->resume_posted_ &&
        conn_->inbox_bytes_ <= conn_->options_.max_inbox_bytes / 2) {
      conn_->resume_posted_ = true;
      post_resume = true;
    }
  }
  if (post_resume) group_->impl()->Post(CommandKind::kResumeRx, conn_);
  return message;
}

Status WsClient::Close(int code, std::string_view reason, int timeout_ms) {
  bool kick = false;
  bool abort = false;
  {
    std::lock_guard<std::mutex> lock(conn_->mu_);
    if (conn_->state_ == ConnState::kClosed) return Status::Ok();
    if (!conn_->close_requested_) {
      conn_->close_requested_ = true;
      conn_->close_code_ = code;
      conn_->close_reason_ = std::string(reason.substr(0, kMaxCloseReasonBytes));
      abort = !conn_->was_open_;  // nothing to say to a server we never reached
      conn_->state_ = ConnState::kClosing;
      kick = true;
    }
  }
  if (kick && !group_->impl()->Post(abort ? CommandKind::kAbort : CommandKind::kKick, conn_)) {
    std::lock_guard<std::mutex> lock(conn_->mu_);
    conn_->MarkClosedLocked("the client group has stopped");
    return Status::Ok();
  }
  std::unique_lock<std::mutex> lock(conn_->mu_);
  if (timeout_ms > 0) {
    conn_->cv_.wait_until(lock, DeadlineAfter(timeout_ms),
                          [&] { return conn_->state_ == ConnState::kClosed; });
  }
  if (conn_->state_ == ConnState::kClosed) return Status::Ok();
  return Status::Busy("the connection did not close within " + std::to_string(timeout_ms) + " ms");
}

void WsClient::AbandonConnect(int timeout_ms) {
  {
    std::lock_guard<std::mutex> lock(conn_->mu_);
    if (conn_->state_ == ConnState::kClosed) return;
    conn_->info_.error = "timed out after " + std::to_string(timeout_ms) + " ms";
    conn_->close_requested_ = true;
  }
  if (!group_->impl()->Post(CommandKind::kAbort, conn_)) {
    std::lock_guard<std::mutex> lock(conn_->mu_);
    conn_->MarkClosedLocked("aborted");
  }
}

void WsClient::Abort() {
  {
    std::lock_guard<std::mutex> lock(conn_->mu_);
    if (conn_->state_ == ConnState::kClosed) return;
    if (conn_->info_.error.empty()) conn_->info_.error = "aborted by the client";
  }
  if (!group_->impl()->Post(CommandKind::kAbort, conn_)) {
    std::lock_guard<std::mutex> lock(conn_->mu_);
    conn_->MarkClosedLocked("aborted by the client");
  }
}

bool WsClient::is_open() const {
  std::lock_guard<std::mutex> lock(conn_->mu_);
  return conn_->state_ == ConnState::kOpen;
}

std::optional<WsCloseInfo> WsClient::close_info() const {
  std::lock_guard<std::mutex> lock(conn_->mu_);
  if (conn_->state_ != ConnState::kClosed) return std::nullopt;
  return conn_->info_;
}

size_t WsClient::inbox_bytes() const {
  std::lock_guard<std::mutex> lock(conn_->mu_);
  return conn_->inbox_bytes_;
}

size_t WsClient::outbox_bytes() const {
  std::lock_guard<std::mutex> lock(conn_->mu_);
  return conn_->outbox_bytes_;
}

}  // namespace tailbus
