// Every limit, crossed: total connections, connections per IP, subscribers
// per session, incoming message size, events per publish (WebSocket), and the
// stall timeout for a client that stops reading. Each gives its documented
// error / close code, and the server keeps serving.
#include <gtest/gtest.h>

#include "tests/ws/server_test_support.h"

namespace tailbus::server_test {
namespace {

TEST(ServerLimits, MaxConnections) {
  TestServerOptions opts;
  opts.server.max_connections = 3;
  TestServer server(opts);
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(WsClient::Connect(server.port(), "/ws"));
    ASSERT_TRUE(clients.back());
    ASSERT_TRUE(clients.back()->RecvType("hello"));
  }
  auto extra = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(extra);
  auto err = extra->RecvJson();
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "too_many_connections");
  EXPECT_EQ(extra->WaitClose(), 4429);
  HttpReply http = Http(server.port(), "GET", "/api/status");
  EXPECT_EQ(http.status, 503);
  EXPECT_EQ(Str(http.Json(), "code"), "too_many_connections");
  // A slot frees up when a client leaves.
  clients.pop_back();
  ASSERT_TRUE(WaitUntil([&] { return Http(server.port(), "GET", "/api/status").status == 200; }));
}

TEST(ServerLimits, MaxConnectionsPerIp) {
  TestServerOptions opts;
  opts.server.max_connections_per_ip = 2;
  TestServer server(opts);
  auto a = WsClient::Connect(server.port(), "/ws");
  auto b = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->RecvType("hello"));
  ASSERT_TRUE(b->RecvType("hello"));
  auto c = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(c);
  auto err = c->RecvJson();
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "too_many_connections_per_ip");
  EXPECT_EQ(c->WaitClose(), 4429);
  HttpReply http = Http(server.port(), "GET", "/api/status");
  EXPECT_EQ(http.status, 429);
  EXPECT_EQ(Str(http.Json(), "code"), "too_many_connections_per_ip");
}

TEST(ServerLimits, MaxClientsPerSession) {
  TestServerOptions opts;
  opts.server.max_clients_per_session = 2;
  TestServer server(opts);
  auto a = WsClient::Connect(server.port(), "/ws/events/s1");
  auto b = WsClient::Connect(server.port(), "/ws?session_id=s1");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->RecvType("hello"));
  ASSERT_TRUE(b->RecvType("hello"));
  auto c = WsClient::Connect(server.port(), "/ws/events/s1");
  ASSERT_TRUE(c);
  auto err = c->RecvJson();
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "too_many_subscribers");
  EXPECT_EQ(c->WaitClose(), 4429);
  HttpReply sse = Http(server.port(), "GET", "/api/sessions/s1/stream");
  EXPECT_EQ(sse.status, 429);
  EXPECT_EQ(Str(sse.Json(), "code"), "too_many_subscribers");
  // Another session is not affected; an all-session subscriber neither.
  auto d = WsClient::Connect(server.port(), "/ws/events/s2");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->RecvType("hello"));
  auto e = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->RecvType("hello"));
  // A slot frees up when a subscriber leaves.
  a->Close();
  EXPECT_EQ(a->WaitClose(), 1000);
  ASSERT_TRUE(WaitUntil([&] {
    auto f = WsClient::Connect(server.port(), "/ws/events/s1");
    auto hello = f ? f->RecvJson() : std::nullopt;
    return hello && Str(*hello, "type") == "hello";
  }));
}

TEST(ServerLimits, MessageSize) {
  TestServerOptions opts;
  opts.server.max_message_bytes = 1000;
  TestServer server(opts);
  auto ok = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ok);
  ASSERT_TRUE(ok->RecvType("hello"));
  ASSERT_TRUE(
      ok->SendText(std::string(R"({"type":"ping","pad":")") + std::string(900, 'x') + "\"}"));
  EXPECT_TRUE(ok->RecvType("pong"));

  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  ASSERT_TRUE(ws->SendText(std::string(2000, 'x')));
  auto err = ws->RecvType("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "message_too_big");
  EXPECT_EQ(ws->WaitClose(), 1009);

  // The same in fragments: the total counts.
  auto frag = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(frag);
  ASSERT_TRUE(frag->RecvType("hello"));
  ASSERT_TRUE(frag->SendFrame(1, std::string(600, 'a'), false));
  ASSERT_TRUE(frag->SendFrame(0, std::string(600, 'a'), true));
  auto err2 = frag->RecvType("error");
  ASSERT_TRUE(err2);
  EXPECT_EQ(Str(*err2, "code"), "message_too_big");
  EXPECT_EQ(frag->WaitClose(), 1009);
  EXPECT_EQ(Http(server.port(), "GET", "/api/status").status, 200);
}

TEST(ServerLimits, EventsPerPublishOverWebSocket) {
  TestServerOptions opts;
  opts.server.max_events_per_publish = 2;
  TestServer server(opts);
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  ASSERT_TRUE(ws->SendText(R"({"type":"publish","request_id":1,"events":[)" + Ev("s", "a") + "," +
                           Ev("s", "a") + "," + Ev("s", "a") + "]}"));
  auto err = ws->RecvType("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "too_many_events");
  EXPECT_EQ(Int(*err, "request_id"), 1);
  ASSERT_TRUE(ws->SendText(R"({"type":"publish","request_id":2,"events":[)" + Ev("s", "a") + "," +
                           Ev("s", "a") + "]}"));
  EXPECT_TRUE(ws->RecvType("ack"));
  EXPECT_EQ(server.bus().head(), 2);
}

TEST(ServerLimits, InflightPublishesPastTheLimitWaitAndAreAllAcked) {
  TestServerOptions opts;
  opts.server.max_inflight_publishes = 2;
  TestServer server(opts);
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  // 50 publishes in one burst: the server reads at most 2 ahead of their
  // commits (backpressure, not refusal), then every one is acked in order.
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(ws->SendText(R"({"type":"publish","request_id":)" + std::to_string(i) +
                             R"(,"event":)" + Ev("s", "a") + "}"));
  }
  for (int i = 0; i < 50; ++i) {
    auto ack = ws->RecvType("ack");
    ASSERT_TRUE(ack) << i;
    EXPECT_EQ(Int(*ack, "request_id"), i);
  }
  EXPECT_EQ(server.bus().head(), 50);
}

TEST(ServerLimits, StalledReaderIsClosedAndCanResume) {
  TestServerOptions opts;
  opts.server.stall_timeout = std::chrono::milliseconds(300);
  TestServer server(opts);
  // ~12 MB of history: far more than the socket buffers hold.
  const std::string blob(4000, 'b');
  for (int round = 0; round < 6; ++round) {
    std::vector<std::string> events;
    for (int i = 0; i < 500; ++i) events.push_back(Ev("s", "big", "\"blob\":\"" + blob + "\""));
    server.Append(events);
  }
  auto stalled = WsClient::Connect(server.port(), "/ws?after=0&batch_size=100", {}, 4096);
  ASSERT_TRUE(stalled);
  // Never read. The server must give up on it (and count it).
  ASSERT_TRUE(WaitUntil(
      [&] {
        HttpReply m = Http(server.port(), "GET", "/metrics");
        return m.body.find("tailbus_slow_client_closes_total 1\n") != std::string::npos;
      },
      std::chrono::seconds(60)));
  EXPECT_TRUE(stalled->socket().WaitClosed(std::chrono::seconds(30)));
  HttpReply m = Http(server.port(), "GET", "/metrics");
  EXPECT_NE(m.body.find("tailbus_rejected_inputs_total{reason=\"stalled\"} 1"), std::string::npos);
  // A healthy reader of the same history is unaffected.
  auto reader = WsClient::Connect(server.port(), "/ws?after=2990&batch_size=100");
  ASSERT_TRUE(reader);
  ASSERT_TRUE(reader->RecvType("hello"));
  auto batch = reader->RecvJson();
  ASSERT_TRUE(batch);
  EXPECT_EQ(Int(*batch, "first_offset"), 2991);
}

}  // namespace
}  // namespace tailbus::server_test

namespace tailbus::server_test {
namespace {

TEST(ServerKeepalive, PingsIdleClientsAndHangsUpSilentOnes) {
  TestServerOptions opts;
  opts.server.ping_interval_s = 1;
  opts.server.idle_timeout_s = 2;
  TestServer server(opts);
  auto silent = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(silent);
  // Read raw bytes without answering: a PING (opcode 0x89) arrives, then the
  // server hangs up because no PONG came back.
  std::string raw;
  bool closed = false;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    raw += silent->socket().Recv(200ms);
    closed = silent->socket().eof();
  }
  EXPECT_TRUE(closed) << "a client that never answers pings must be hung up";
  EXPECT_NE(raw.find('\x89'), std::string::npos) << "no PING was sent";
}

// A subscriber that only listens (sends nothing) but answers every PING must
// stay connected. Regression: the server used to ping with an empty payload,
// and libwebsockets 4.1 does not report an empty PONG to the protocol, so
// every listening client was hung up at --idle-timeout (found by `make soak`).
TEST(ServerKeepalive, KeepsListeningClientThatAnswersPings) {
  TestServerOptions opts;
  opts.server.ping_interval_s = 1;
  opts.server.idle_timeout_s = 3;
  TestServer server(opts);
  auto listener = WsClient::Connect(server.port(), "/ws?batch_size=1");
  ASSERT_TRUE(listener);
  ASSERT_TRUE(listener->RecvType("hello"));
  // Three idle timeouts of silence from the client, answering pings only.
  const auto until = std::chrono::steady_clock::now() + 9s;
  while (std::chrono::steady_clock::now() < until) {
    WsMessage m = listener->Recv(200ms);  // answers PINGs
    ASSERT_NE(m.kind, WsMessage::kEof) << "hung up although every ping was answered";
    ASSERT_NE(m.kind, WsMessage::kClose) << m.close_code;
  }
  server.Append({Ev("s1", "still_here")});
  auto event = listener->RecvJson();
  ASSERT_TRUE(event) << "the connection no longer delivers";
  EXPECT_EQ(Str(*event, "event_type"), "still_here");
}

TEST(ServerKeepalive, GarbageRequestsDoNotHurtTheServer) {
  TestServer server;
  for (const char* garbage :
       {"HELLO\r\n\r\n", "GET /api/events?after=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"}) {
    auto socket = Socket::Connect(server.port());
    ASSERT_TRUE(socket);
    socket->SendAll(garbage);
    socket->WaitClosed(5s);  // whatever the answer, the server must stay up
    EXPECT_EQ(Http(server.port(), "GET", "/api/status").status, 200) << garbage;
  }
}

}  // namespace
}  // namespace tailbus::server_test
