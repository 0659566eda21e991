// WsClient and HttpRequest against a small scripted peer (Python's
// `websockets` and `http.server`, Debian packages), so the client's framing,
// fragment reassembly, close handling, back-pressure and HTTP details are
// pinned down independently of the tailbus server.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/ws/client_test_support.h"
#include "ws/client.h"
#include "ws/ws_client.h"

namespace tailbus {
namespace {

using client_test::Child;
using client_test::TempDir;
using client_test::WaitUntil;

// The peer. WebSocket commands (text frames): "close:<code>:<reason>",
// "big:<n>" (one n-byte message), "frag:<k>:<n>" (one message in k fragments
// of n bytes), "burst:<n>" (n numbered messages), "drop" (TCP abort, no close
// frame), "headers" (the request headers as JSON), "ping" (the peer pings
// and reports the pong), "mute" (the peer stops reading and answering);
// anything else is echoed.
// HTTP: every method answers JSON describing the request; /slow sleeps 5 s;
// /nolength answers without Content-Length and closes.
constexpr char kPeerScript[] = R"PY(
import asyncio, json, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
import websockets

class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path == "/slow":
            time.sleep(5)
        out = json.dumps({"method": self.command, "path": self.path,
                          "content_type": self.headers.get("Content-Type"),
                          "content_length": self.headers.get("Content-Length"),
                          "body": body.decode("utf-8", "replace")}).encode()
        if self.path == "/nolength":
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until-close")
            self.close_connection = True
            return
        status = 201 if self.command == "POST" else 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2])
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_DELETE = handle_any

async def ws_handler(ws, path=None):
    if ws.path.startswith("/reject"):
        return
    await ws.send(json.dumps({"type": "hello", "path": ws.path}))
    async for msg in ws:
        if isinstance(msg, bytes):
            await ws.send(msg)
        elif msg.startswith("close:"):
            _, code, reason = msg.split(":", 2)
            await ws.close(int(code), reason)
            return
        elif msg.startswith("big:"):
            await ws.send("x" * int(msg[4:]))
        elif msg.startswith("frag:"):
            _, k, n = msg.split(":")
            await ws.send(("%d" % i) * int(n) for i in range(int(k)))
        elif msg.startswith("burst:"):
            for i in range(int(msg[6:])):
                await ws.send(str(i))
        elif msg == "drop":
            ws.transport.abort()
            return
        elif msg == "headers":
            await ws.send(json.dumps(dict(ws.request_headers.raw_items())))
        elif msg == "ping":
            waiter = await ws.ping(b"are you there")
            await asyncio.wait_for(waiter, 5)
            await ws.send("pong received")
        elif msg == "mute":
            ws.transport.pause_reading()
            await asyncio.sleep(30)
            return
        else:
            await ws.send(msg)

async def process_request(path, headers):
    if path.startswith("/reject"):
        return (403, [("Content-Type", "text/plain")], b"no\n")
    return None

async def main():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    async with websockets.serve(ws_handler, "127.0.0.1", 0, max_size=None,
                                process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        print("PORTS %d %d" % (port, httpd.server_address[1]), flush=True)
        await asyncio.Future()

asyncio.run(main())
)PY";

class Peer {
 public:
  bool Start() {
    std::string script = dir_.File("peer.py");
    std::ofstream(script) << kPeerScript;
    if (!child_.Start({client_test::kPython, script}, dir_.File("peer.out"),
                      dir_.File("peer.err"))) {
      return false;
    }
    return WaitUntil([&] {
             std::string out = child_.Stdout();
             return std::sscanf(out.c_str(), "PORTS %d %d", &ws_port_, &http_port_) == 2 ||
                    !child_.running();
           }) &&
           ws_port_ > 0;
  }
  std::string ws(const std::string& path = "/") const {
    return "ws://127.0.0.1:" + std::to_string(ws_port_) + path;
  }
  std::string http(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(http_port_) + path;
  }
  std::string log() const { return child_.Stderr(); }

 private:
  TempDir dir_;
  Child child_;
  int ws_port_ = 0;
  int http_port_ = 0;
};

class ClientWsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    peer_ = new Peer();
    ASSERT_TRUE(peer_->Start()) << "python peer did not start: " << peer_->log();
  }
  static void TearDownTestSuite() {
    delete peer_;
    peer_ = nullptr;
  }
  static Peer* peer_;
};
Peer* ClientWsTest::peer_ = nullptr;

std::string MustReceive(WsClient& c, int timeout_ms = 10'000) {
  Result<std::string> m = c.Receive(timeout_ms);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : std::string();
}

TEST_F(ClientWsTest, ParseUrl) {
  Result<ParsedUrl> u = ParseUrl("ws://127.0.0.1:8080/ws?after=5&filter=%7B%7D");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->scheme, "ws");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/ws?after=5&filter=%7B%7D");
  EXPECT_EQ(u->authority, "127.0.0.1:8080");

  u = ParseUrl("HTTP://[::1]:9/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->authority, "[::1]:9");

  u = ParseUrl("ws://localhost");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");

  u = ParseUrl("ws://h:1?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->path, "/?x=1");

  EXPECT_EQ(ParseUrl("wss://h/").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(ParseUrl("ftp://h/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUrl("ws://:80/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUrl("ws://h:99999/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUrl("ws://h:12a/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUrl("ws://h/a b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUrl("127.0.0.1:80").status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(UrlEncode("{\"a\":[1, 2]}/é~"), "%7B%22a%22%3A%5B1%2C%202%5D%7D%2F%C3%A9~");
}

TEST_F(ClientWsTest, EchoAndQueryPath) {
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws("/ws?after=0&x=%7B%7D"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  WsClient& client = **c;
  EXPECT_TRUE(client.is_open());
  EXPECT_EQ(MustReceive(client), R"({"type": "hello", "path": "/ws?after=0&x=%7B%7D"})");
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(client.Send("m" + std::to_string(i)).ok());
  ASSERT_TRUE(client.Flush(10'000).ok());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(MustReceive(client), "m" + std::to_string(i));
  ASSERT_TRUE(client.Send("").ok());
  EXPECT_EQ(MustReceive(client), "");
  Result<std::string> none = client.Receive(0);
  EXPECT_EQ(none.status().code(), StatusCode::kBusy);
  EXPECT_TRUE(client.Close(1000, "bye").ok());
  EXPECT_FALSE(client.is_open());
  std::optional<WsCloseInfo> info = client.close_info();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->code, 1000);
  EXPECT_EQ(client.Send("late").code(), StatusCode::kUnavailable);
  EXPECT_EQ(client.Receive(100).status().code(), StatusCode::kUnavailable);
}

TEST_F(ClientWsTest, LargeAndFragmentedMessagesAreReassembled) {
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  WsClient& client = **c;
  MustReceive(client);  // hello
  // Much larger than the 16 KiB receive buffer: arrives in many pieces.
  ASSERT_TRUE(client.Send("big:3000000").ok());
  std::string big = MustReceive(client, 20'000);
  EXPECT_EQ(big.size(), 3'000'000u);
  EXPECT_EQ(big.find_first_not_of('x'), std::string::npos);
  // One message sent as 5 WebSocket fragments of 70,000 bytes.
  ASSERT_TRUE(client.Send("frag:5:70000").ok());
  std::string frag = MustReceive(client, 20'000);
  ASSERT_EQ(frag.size(), 5u * 70'000u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(frag[static_cast<size_t>(i) * 70'000], static_cast<char>('0' + i));
  }
  // A large outgoing frame (lws writes it in pieces).
  std::string out(2'000'000, 'y');
  out.front() = 'e';
  ASSERT_TRUE(client.Send(out).ok());
  EXPECT_EQ(MustReceive(client, 20'000), out);
}

TEST_F(ClientWsTest, ServerCloseCodeAndReasonAreObserved) {
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  WsClient& client = **c;
  MustReceive(client);
  ASSERT_TRUE(client.Send("burst:3").ok());
  ASSERT_TRUE(client.Send("close:4408:stalled for a while").ok());
  // Messages that arrived before the close are still delivered, in order.
  EXPECT_EQ(MustReceive(client), "0");
  EXPECT_EQ(MustReceive(client), "1");
  EXPECT_EQ(MustReceive(client), "2");
  Result<std::string> end = client.Receive(10'000);
  ASSERT_EQ(end.status().code(), StatusCode::kUnavailable) << end.status().ToString();
  EXPECT_NE(end.status().message().find("4408"), std::string::npos) << end.status().message();
  std::optional<WsCloseInfo> info = client.close_info();
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->received_close_frame);
  EXPECT_EQ(info->code, 4408);
  EXPECT_EQ(info->reason, "stalled for a while");
  EXPECT_FALSE(client.is_open());
}

TEST_F(ClientWsTest, CloseCodesAreReportedAsSent) {
  // 1012 included: libwebsockets' own client parser would report it as 1002.
  for (int code : {1001, 1011, 1012, 4429}) {
    Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    MustReceive(**c);
    ASSERT_TRUE((*c)->Send("close:" + std::to_string(code) + ":why").ok());
    EXPECT_EQ((*c)->Receive(10'000).status().code(), StatusCode::kUnavailable);
    ASSERT_TRUE((*c)->close_info().has_value());
    EXPECT_EQ((*c)->close_info()->code, code);
    EXPECT_EQ((*c)->close_info()->reason, "why");
  }
}

TEST_F(ClientWsTest, AnswersServerPings) {
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  MustReceive(**c);
  ASSERT_TRUE((*c)->Send("ping").ok());
  EXPECT_EQ(MustReceive(**c), "pong received");
}

TEST_F(ClientWsTest, KeepalivePingsAndIdleHangup) {
  WsClientOptions options;
  options.ping_interval_seconds = 1;
  options.idle_hangup_seconds = 2;
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws(), options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  MustReceive(**c);
  // Idle for longer than the hang-up time: the peer's pongs keep it open.
  EXPECT_EQ((*c)->Receive(3'500).status().code(), StatusCode::kBusy);
  EXPECT_TRUE((*c)->is_open());
  // A peer that stops answering is dropped.
  ASSERT_TRUE((*c)->Send("mute").ok());
  Result<std::string> end = (*c)->Receive(20'000);
  ASSERT_EQ(end.status().code(), StatusCode::kUnavailable) << end.status().ToString();
  EXPECT_NE((*c)->close_info()->error.find("nothing received"), std::string::npos)
      << (*c)->close_info()->error;
}

TEST_F(ClientWsTest, OversizedMessageClosesWith1009) {
  WsClientOptions options;
  options.max_message_bytes = 1000;
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws(), options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  MustReceive(**c);
  ASSERT_TRUE((*c)->Send("big:999").ok());
  EXPECT_EQ(MustReceive(**c).size(), 999u);
  ASSERT_TRUE((*c)->Send("big:5000").ok());
  Result<std::string> end = (*c)->Receive(10'000);
  ASSERT_EQ(end.status().code(), StatusCode::kUnavailable) << end.status().ToString();
  EXPECT_NE((*c)->close_info()->error.find("max_message_bytes"), std::string::npos)
      << (*c)->close_info()->error;
}

TEST_F(ClientWsTest, DroppedConnectionWithoutCloseFrame) {
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  MustReceive(**c);
  ASSERT_TRUE((*c)->Send("drop").ok());
  EXPECT_EQ((*c)->Receive(10'000).status().code(), StatusCode::kUnavailable);
  std::optional<WsCloseInfo> info = (*c)->close_info();
  ASSERT_TRUE(info.has_value());
  EXPECT_FALSE(info->received_close_frame);
  EXPECT_EQ(info->code, 1006);
  EXPECT_FALSE(info->error.empty());
}

TEST_F(ClientWsTest, AbortDropsTheConnection) {
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  MustReceive(**c);
  (*c)->Abort();
  EXPECT_EQ((*c)->Receive(10'000).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*c)->close_info()->code, 1006);
}

TEST_F(ClientWsTest, ExtraHeadersAreSent) {
  WsClientOptions options;
  options.headers = {"Origin: http://example.test", "X-Test: 42"};
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws(), options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  MustReceive(**c);
  ASSERT_TRUE((*c)->Send("headers").ok());
  std::string headers = MustReceive(**c);
  EXPECT_NE(headers.find("\"Origin\": \"http://example.test\""), std::string::npos) << headers;
  EXPECT_NE(headers.find("\"X-Test\": \"42\""), std::string::npos) << headers;
}

TEST_F(ClientWsTest, ConnectFailures) {
  // Nothing listens on a just-freed port.
  int port = client_test::FreePort();
  Result<std::unique_ptr<WsClient>> c =
      WsClient::Connect("ws://127.0.0.1:" + std::to_string(port) + "/ws");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kIoError);

  // The upgrade is refused with an HTTP status (the plain HTTP peer answers 404).
  std::string http_404 = peer_->http("/status/404");
  c = WsClient::Connect("ws" + http_404.substr(4));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kIoError);
  EXPECT_NE(c.status().message().find("404"), std::string::npos) << c.status().message();

  EXPECT_EQ(WsClient::Connect("http://127.0.0.1:1/").status().code(), StatusCode::kInvalidArgument);
  std::string long_url = peer_->ws("/ws?filter=" + std::string(kMaxClientPathBytes, 'a'));
  EXPECT_EQ(WsClient::Connect(long_url).status().code(), StatusCode::kInvalidArgument);
}

// A listener that never accepts: TCP connects (the kernel completes the
// handshake) but no upgrade or HTTP answer ever comes.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::listen(fd_, 8) == 0) {
      socklen_t len = sizeof addr;
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    }
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(ClientWsTest, ConnectAndRequestTimeouts) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  std::string ws_url = "ws://127.0.0.1:" + std::to_string(silent.port()) + "/ws";
  WsClientOptions options;
  options.connect_timeout_ms = 300;
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(ws_url, options);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kIoError);
  EXPECT_NE(c.status().message().find("timed out"), std::string::npos) << c.status().message();

  Result<std::shared_ptr<WsClientGroup>> group = WsClientGroup::Create();
  ASSERT_TRUE(group.ok());
  c = WsClient::StartConnect(*group, ws_url);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->WaitConnected(100).code(), StatusCode::kBusy);
  EXPECT_EQ((*c)->WaitConnected(0).code(), StatusCode::kBusy);
  (*c)->Abort();
  EXPECT_EQ((*c)->WaitConnected(10'000).code(), StatusCode::kIoError);
  EXPECT_TRUE((*c)->close_info().has_value());
  EXPECT_TRUE(WaitUntil([&] { return (*group)->connection_count() == 0; }));

  Result<HttpResponse> r = HttpRequest(
      "GET", "http://127.0.0.1:" + std::to_string(silent.port()) + "/api/status", {}, {}, 300);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();
}

TEST_F(ClientWsTest, SharedGroupManyConnections) {
  WsClientGroupOptions group_options;
  group_options.rx_buffer_size = 4096;  // big messages span several reads
  Result<std::shared_ptr<WsClientGroup>> group = WsClientGroup::Create(group_options);
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  constexpr int kClients = 200;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    Result<std::unique_ptr<WsClient>> c =
        WsClient::StartConnect(*group, peer_->ws("/c" + std::to_string(i)));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    clients.push_back(std::move(c).value());
  }
  for (auto& c : clients) ASSERT_TRUE(c->WaitConnected(20'000).ok());
  EXPECT_EQ((*group)->connection_count(), static_cast<size_t>(kClients));
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(MustReceive(*clients[i]),
              R"({"type": "hello", "path": "/c)" + std::to_string(i) + R"("})");
    ASSERT_TRUE(clients[i]->Send("n" + std::to_string(i)).ok());
  }
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(MustReceive(*clients[i]), "n" + std::to_string(i));
  clients.clear();  // closes each
  EXPECT_TRUE(WaitUntil([&] { return (*group)->connection_count() == 0; }));
}

TEST_F(ClientWsTest, OnMessageCallbackRunsOnTheServiceThread) {
  Result<std::shared_ptr<WsClientGroup>> group = WsClientGroup::Create();
  ASSERT_TRUE(group.ok());
  std::atomic<int> count{0};
  std::atomic<bool> wrong_thread{false};
  std::thread::id caller = std::this_thread::get_id();
  WsClientOptions options;
  options.on_message = [&](std::string_view) {
    if (std::this_thread::get_id() == caller) wrong_thread = true;
    ++count;
  };
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(*group, peer_->ws(), options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE((*c)->Send("burst:50").ok());
  EXPECT_TRUE(WaitUntil([&] { return count.load() == 51; }));  // hello + 50
  EXPECT_FALSE(wrong_thread.load());
  EXPECT_EQ((*c)->inbox_bytes(), 0u);
  c.value().reset();  // detaches: no callback after this
  int seen = count.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(count.load(), seen);
}

TEST_F(ClientWsTest, FullInboxPausesReadingWithoutLosingMessages) {
  WsClientOptions options;
  options.max_inbox_bytes = 64 * 1024;
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws(), options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  WsClient& client = **c;
  MustReceive(client);
  constexpr int kMessages = 20'000;
  ASSERT_TRUE(client.Send("burst:" + std::to_string(kMessages)).ok());
  // Let the peer fill the socket while nobody reads; the inbox stays bounded.
  EXPECT_TRUE(WaitUntil([&] { return client.inbox_bytes() > options.max_inbox_bytes; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_LT(client.inbox_bytes(), options.max_inbox_bytes + 256 * 1024);
  for (int i = 0; i < kMessages; ++i) {
    std::string m = MustReceive(client);
    ASSERT_EQ(m, std::to_string(i));
  }
}

TEST_F(ClientWsTest, DestructorClosesPolitely) {
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(peer_->ws());
  ASSERT_TRUE(c.ok());
  MustReceive(**c);
  c.value().reset();
  SUCCEED();
}

// ---- HttpRequest --------------------------------------------------------------

TEST_F(ClientWsTest, HttpGetAndPost) {
  Result<HttpResponse> r = HttpRequest("GET", peer_->http("/api/x?a=1"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json; charset=utf-8");
  EXPECT_NE(r->body.find(R"("method": "GET")"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(R"("path": "/api/x?a=1")"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(R"("content_length": null)"), std::string::npos) << r->body;

  r = HttpRequest("POST", peer_->http("/api/events"), R"({"session_id":"s","event_type":"t"})",
                  "application/json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_NE(r->body.find(R"("content_length": "35")"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(R"("content_type": "application/json")"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(R"(\"session_id\")"), std::string::npos) << r->body;

  // An empty POST still says Content-Length: 0.
  r = HttpRequest("POST", peer_->http("/empty"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->body.find(R"("content_length": "0")"), std::string::npos) << r->body;

  r = HttpRequest("delete", peer_->http("/api/sessions/s?hard=true"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->body.find(R"("method": "DELETE")"), std::string::npos) << r->body;

  r = HttpRequest("GET", peer_->http("/status/404"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 404);
}

TEST_F(ClientWsTest, HttpLargeBody) {
  std::string body(5 * 1024 * 1024, 'b');
  Result<HttpResponse> r = HttpRequest("POST", peer_->http("/big"), body, "text/plain");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_NE(r->body.find(R"("content_length": "5242880")"), std::string::npos);
  EXPECT_GT(r->body.size(), body.size());
}

TEST_F(ClientWsTest, HttpBodyUntilClose) {
  Result<HttpResponse> r = HttpRequest("GET", peer_->http("/nolength"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "until-close");
}

TEST_F(ClientWsTest, HttpFailures) {
  int port = client_test::FreePort();
  Result<HttpResponse> r = HttpRequest("GET", "http://127.0.0.1:" + std::to_string(port) + "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);

  r = HttpRequest("GET", peer_->http("/slow"), {}, {}, 300);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();

  EXPECT_EQ(HttpRequest("GET", "ws://127.0.0.1:1/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpRequest("GET", "nonsense").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClientWsTest, HttpRequestsFromManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        Result<HttpResponse> r =
            HttpRequest("POST", peer_->http("/t"), "thread " + std::to_string(t), "text/plain");
        if (r.ok() && r->status == 201) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 100);
}

}  // namespace
}  // namespace tailbus
