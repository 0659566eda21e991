// The abuse limits of docs/SECURITY.md, each crossed against a real server on
// loopback with real sockets: connection rate per IP, connections per IP that
// never finish their headers, the header timeout (slowloris), publish rate
// (WebSocket and HTTP keep-alive) and subscribe rate. Limits are tiny bursts
// with rates so low that no token comes back during a test, so every
// assertion is about behaviour, not timing.
#include <gtest/gtest.h>

#include <thread>

#include "tests/ws/server_test_support.h"

namespace tailbus::server_test {
namespace {

// A rate at which no token is refilled within a test (one per ~3 hours).
constexpr double kNoRefill = 1e-4;

std::string Publish(int rid, std::string_view session = "s") {
  return R"({"type":"publish","request_id":)" + std::to_string(rid) + R"(,"event":)" +
         Ev(session, "a") + "}";
}

std::string PostRequest(int port, std::string_view body) {
  return "POST /api/events HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

TEST(ServerAbuse, ConnectionRatePerIpRefusesPastTheBurst) {
  TestServerOptions opts;
  opts.server.connection_rate_per_ip = kNoRefill;
  opts.server.connection_burst_per_ip = 5;
  TestServer server(opts);
  for (int i = 0; i < 4; ++i) {
    HttpReply ok = Http(server.port(), "GET", "/api/status");
    ASSERT_EQ(ok.status, 200) << i;
  }
  auto ws = WsClient::Connect(server.port(), "/ws");  // the 5th: still in the burst
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));

  HttpReply refused = Http(server.port(), "GET", "/api/status");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(Str(refused.Json(), "code"), "connection_rate_limited");
  ASSERT_TRUE(refused.headers.count("retry-after"));
  EXPECT_GE(std::stoll(refused.headers["retry-after"]), 1);

  auto ws2 = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws2);
  auto err = ws2->RecvJson();
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "connection_rate_limited");
  EXPECT_EQ(ws2->WaitClose(), 4429);

  // Connections already open are not affected.
  ASSERT_TRUE(ws->SendText(R"({"type":"ping"})"));
  EXPECT_TRUE(ws->RecvType("pong"));
}

TEST(ServerAbuse, ConnectionRateRefillsOverTime) {
  TestServerOptions opts;
  opts.server.connection_rate_per_ip = 0.2;  // a token every 5 s
  opts.server.connection_burst_per_ip = 1;
  TestServer server(opts);
  ASSERT_EQ(Http(server.port(), "GET", "/api/status").status, 200);
  HttpReply refused = Http(server.port(), "GET", "/api/status");  // well within 5 s
  ASSERT_EQ(refused.status, 429);
  EXPECT_EQ(refused.headers["retry-after"], "5");
  // The bucket refills: a later connection passes again.
  EXPECT_TRUE(WaitUntil([&] { return Http(server.port(), "GET", "/api/status").status == 200; }));
}

TEST(ServerAbuse, PendingConnectionsPerIpAreCapped) {
  TestServerOptions opts;
  opts.server.max_pending_per_ip = 3;
  TestServer server(opts);
  // Three connections that send half a request line and stop.
  std::vector<std::unique_ptr<Socket>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(Socket::Connect(server.port()));
    ASSERT_TRUE(idle.back());
    ASSERT_TRUE(idle.back()->SendAll("GET /api/sta"));
  }
  // The fourth is closed at once, without an answer.
  auto fourth = Socket::Connect(server.port());
  ASSERT_TRUE(fourth);
  ASSERT_TRUE(fourth->WaitClosed(kWait));
  // A finished request frees its slot: a WebSocket (headers done) does not count.
  // (Connection: close: an idle keep-alive connection waits for its next
  // request head, so it counts as pending again.)
  ASSERT_TRUE(idle[0]->SendAll("tus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  HttpReply reply = ReadHttpReply(*idle[0], kWait);
  EXPECT_EQ(reply.status, 200);
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  EXPECT_TRUE(ws->RecvType("hello"));
  auto ws2 = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws2);
  EXPECT_TRUE(ws2->RecvType("hello"));
  // Closing the idle ones frees their slots too.
  idle.clear();
  EXPECT_TRUE(WaitUntil([&] { return Http(server.port(), "GET", "/api/status").status == 200; }));
}

TEST(ServerAbuse, SlowlorisIsClosedAfterTheHeaderTimeout) {
  TestServerOptions opts;
  opts.server.header_timeout = std::chrono::milliseconds(1000);
  TestServer server(opts);
  auto slow = Socket::Connect(server.port());
  ASSERT_TRUE(slow);
  // One byte of a never-ending header every 200 ms; lws' own timeouts are set
  // past the header timeout, so the close comes from it. Give up after 60 s
  // (the timeout is 1 s: only a missing limit gets near that).
  const std::string head = "GET /api/status HTTP/1.1\r\nX-Slow: ";
  ASSERT_TRUE(slow->SendAll(head));
  bool closed = false;
  for (int i = 0; i < 300 && !closed; ++i) {
    if (!slow->SendAll("a")) break;  // reset by the server
    slow->Recv(200ms);
    closed = slow->eof();
  }
  EXPECT_TRUE(closed || slow->WaitClosed(kWait));
  EXPECT_TRUE(slow->eof());
  // A client that finishes in time is served.
  EXPECT_EQ(Http(server.port(), "GET", "/api/status").status, 200);
}

TEST(ServerAbuse, SlowlorisOnAKeepAliveConnectionIsClosedToo) {
  TestServerOptions opts;
  opts.server.header_timeout = std::chrono::milliseconds(1000);
  TestServer server(opts);
  auto conn = Socket::Connect(server.port());
  ASSERT_TRUE(conn);
  // A first request answered; the connection stays open (keep-alive).
  ASSERT_TRUE(conn->SendAll("GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string leftover;
  ASSERT_EQ(ReadHttpReply(*conn, kWait, &leftover).status, 200);
  // The second request's head trickles in: the header timeout applies again
  // (libwebsockets 4.1.6 alone keeps such a connection open indefinitely).
  ASSERT_TRUE(conn->SendAll("GET /api/status HTTP/1.1\r\nX-Slow: "));
  bool closed = false;
  for (int i = 0; i < 300 && !closed; ++i) {
    if (!conn->SendAll("a")) break;
    conn->Recv(200ms);
    closed = conn->eof();
  }
  EXPECT_TRUE(closed || conn->WaitClosed(kWait));
  EXPECT_TRUE(conn->eof());
}

TEST(ServerAbuse, PipelinedKeepAliveRequestsAreNotTimedOut) {
  TestServerOptions opts;
  opts.server.header_timeout = std::chrono::milliseconds(500);
  TestServer server(opts);
  auto conn = Socket::Connect(server.port());
  ASSERT_TRUE(conn);
  const std::string get = "GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(conn->SendAll(get + get + get));
  std::string received;
  auto count = [&] {
    size_t n = 0;
    for (size_t pos = 0; (pos = received.find("HTTP/1.1 200", pos)) != std::string::npos; ++pos)
      ++n;
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (count() < 3 && !conn->eof() && std::chrono::steady_clock::now() < deadline) {
    received += conn->Recv(200ms);
  }
  EXPECT_EQ(count(), 3u) << received;
}

TEST(ServerAbuse, HeaderTimeoutDoesNotApplyOnceHeadersAreComplete) {
  TestServerOptions opts;
  opts.server.header_timeout = std::chrono::milliseconds(500);
  TestServer server(opts);
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  // Outlive the header timeout several times over (housekeeping runs each second).
  std::this_thread::sleep_for(2500ms);
  ASSERT_TRUE(ws->SendText(R"({"type":"ping"})"));
  EXPECT_TRUE(ws->RecvType("pong"));
}

TEST(ServerAbuse, WebSocketPublishRateRejectsWithRequestIdAndAppendsNothing) {
  TestServerOptions opts;
  opts.server.publish_rate = kNoRefill;
  opts.server.publish_burst = 5;
  opts.server.rate_limit_strikes = 0;  // never close
  TestServer server(opts);
  auto ws = WsClient::Connect(server.port(), "/ws/events/s");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(ws->SendText(Publish(i)));
    auto ack = ws->RecvType("ack");
    ASSERT_TRUE(ack) << i;
    EXPECT_EQ(Int(*ack, "request_id"), i);
  }
  for (int i = 6; i <= 10; ++i) {
    ASSERT_TRUE(ws->SendText(Publish(i)));
    auto err = ws->RecvType("error");
    ASSERT_TRUE(err) << i;
    EXPECT_EQ(Str(*err, "code"), "rate_limited");
    EXPECT_EQ(Int(*err, "request_id"), i);
  }
  // "message" (chat clients) counts against the same limit.
  ASSERT_TRUE(ws->SendText(R"({"type":"message","request_id":11,"content":"hi"})"));
  auto err = ws->RecvType("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "rate_limited");
  // The connection stays usable for everything else.
  ASSERT_TRUE(ws->SendText(R"({"type":"ping"})"));
  EXPECT_TRUE(ws->RecvType("pong"));
  EXPECT_EQ(server.bus().head(), 5);
  // The limit is per connection: another connection has its own burst.
  auto other = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->RecvType("hello"));
  ASSERT_TRUE(other->SendText(Publish(1)));
  EXPECT_TRUE(other->RecvType("ack"));
  EXPECT_EQ(server.bus().head(), 6);
}

TEST(ServerAbuse, SustainedPublishAbuseClosesWith1008) {
  TestServerOptions opts;
  opts.server.publish_rate = kNoRefill;
  opts.server.publish_burst = 2;
  opts.server.rate_limit_strikes = 3;
  TestServer server(opts);
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  for (int i = 1; i <= 2; ++i) {
    ASSERT_TRUE(ws->SendText(Publish(i)));
    ASSERT_TRUE(ws->RecvType("ack"));
  }
  for (int i = 3; i <= 5; ++i) {
    ASSERT_TRUE(ws->SendText(Publish(i)));
    auto err = ws->RecvType("error");
    ASSERT_TRUE(err) << i;
    EXPECT_EQ(Str(*err, "code"), "rate_limited");
  }
  EXPECT_EQ(ws->WaitClose(), 1008);
  EXPECT_EQ(server.bus().head(), 2);
  EXPECT_EQ(Http(server.port(), "GET", "/api/status").status, 200);
}

TEST(ServerAbuse, HttpPublishRateOnKeepAliveAnswers429WithRetryAfter) {
  TestServerOptions opts;
  opts.server.publish_rate = kNoRefill;
  opts.server.publish_burst = 5;
  TestServer server(opts);
  auto conn = Socket::Connect(server.port());
  ASSERT_TRUE(conn);
  const std::string body = "[" + Ev("s", "a") + "]";
  std::string leftover;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(conn->SendAll(PostRequest(server.port(), body)));
    HttpReply ok = ReadHttpReply(*conn, kWait, &leftover);
    ASSERT_EQ(ok.status, 200) << i << " " << ok.body;
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(conn->SendAll(PostRequest(server.port(), body)));
    HttpReply limited = ReadHttpReply(*conn, kWait, &leftover);
    ASSERT_EQ(limited.status, 429) << limited.body;
    EXPECT_EQ(Str(limited.Json(), "code"), "rate_limited");
    ASSERT_TRUE(limited.headers.count("retry-after"));
    EXPECT_GE(std::stoll(limited.headers["retry-after"]), 1);
  }
  // Keep-alive survived: a GET on the same connection is answered.
  ASSERT_TRUE(conn->SendAll("GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(ReadHttpReply(*conn, kWait, &leftover).status, 200);
  EXPECT_EQ(server.bus().head(), 5);
}

TEST(ServerAbuse, SubscribeRateRejectsThenClosesOnSustainedAbuse) {
  TestServerOptions opts;
  opts.server.subscribe_rate = kNoRefill;
  opts.server.subscribe_burst = 2;
  opts.server.rate_limit_strikes = 3;
  TestServer server(opts);
  server.Append({Ev("s1", "a"), Ev("s2", "b")});
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  for (int i = 1; i <= 2; ++i) {
    ASSERT_TRUE(ws->SendText(R"({"type":"subscribe","request_id":)" + std::to_string(i) +
                             R"(,"session_id":"s1","after":0})"));
    ASSERT_TRUE(ws->RecvType("hello")) << i;
  }
  ASSERT_TRUE(ws->SendText(R"({"type":"subscribe","request_id":3,"session_id":"s2","after":0})"));
  auto err = ws->RecvType("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "subscribe_rate_limited");
  EXPECT_EQ(Int(*err, "request_id"), 3);
  // The previous subscription (s1) stays: a new s1 event arrives, s2 does not.
  server.Append({Ev("s2", "x"), Ev("s1", "y")});
  bool saw_y = false;
  for (int i = 0; i < 10 && !saw_y; ++i) {
    auto frame = ws->RecvJson();
    ASSERT_TRUE(frame);
    for (const rapidjson::Value* e : EventsOf(*frame)) {
      EXPECT_EQ(Str(*e, "session_id"), "s1");
      saw_y = saw_y || Str(*e, "event_type") == "y";
    }
  }
  EXPECT_TRUE(saw_y);
  for (int i = 4; i <= 5; ++i) {
    ASSERT_TRUE(ws->SendText(R"({"type":"subscribe","request_id":)" + std::to_string(i) + "}"));
    auto e = ws->RecvType("error");
    ASSERT_TRUE(e);
    EXPECT_EQ(Str(*e, "code"), "subscribe_rate_limited");
  }
  EXPECT_EQ(ws->WaitClose(), 1008);
}

TEST(ServerAbuse, LimitsCanBeTurnedOff) {
  TestServerOptions opts;
  opts.server.publish_rate = 0;
  opts.server.publish_burst = 1;
  opts.server.connection_rate_per_ip = 0;
  opts.server.connection_burst_per_ip = 1;
  TestServer server(opts);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Http(server.port(), "GET", "/api/status").status, 200);
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  for (int i = 1; i <= 50; ++i) ASSERT_TRUE(ws->SendText(Publish(i)));
  for (int i = 1; i <= 50; ++i) ASSERT_TRUE(ws->RecvType("ack")) << i;
  EXPECT_EQ(server.bus().head(), 50);
}

}  // namespace
}  // namespace tailbus::server_test
