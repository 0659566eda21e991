// Graceful shutdown with clients connected: WebSocket clients get close code
// 1001, SSE streams and idle HTTP connections are closed, Run() returns, and
// every publish either was acked (and is in the log) or is not in the log.
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "tests/ws/server_test_support.h"

namespace tailbus::server_test {
namespace {

TEST(ServerShutdown, ClosesClientsWith1001AndAcksWhatItAppended) {
  auto server = std::make_unique<TestServer>();
  const int port = server->port();
  auto a = WsClient::Connect(port, "/ws");
  auto b = WsClient::Connect(port, "/ws/events/s1?after=0");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->RecvType("hello"));
  ASSERT_TRUE(b->RecvType("hello"));
  auto idle_http = Socket::Connect(port);
  ASSERT_TRUE(idle_http);
  ASSERT_TRUE(idle_http->SendAll("GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(ReadHttpReply(*idle_http, kWait).status, 200);  // kept alive, then idle
  auto sse = Socket::Connect(port);
  ASSERT_TRUE(sse);
  ASSERT_TRUE(sse->SendAll("GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n"));

  // A publisher keeps publishing while the server stops.
  auto pub = WsClient::Connect(port, "/ws?batch_size=1");
  ASSERT_TRUE(pub);
  ASSERT_TRUE(pub->RecvType("hello"));
  std::atomic<bool> stop_sending{false};
  std::atomic<int> sent{0};
  std::thread sender([&] {
    for (int i = 0; i < 100000 && !stop_sending.load(); ++i) {
      const std::string msg = R"({"type":"publish","request_id":)" + std::to_string(i) +
                              R"(,"event":{"session_id":"s1","event_type":"p","event_id":"id-)" +
                              std::to_string(i) + R"("}})";
      if (!pub->SendText(msg)) break;
      sent.store(i + 1);
      if (i == 50) std::this_thread::sleep_for(1ms);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return sent.load() > 100; }));

  std::thread stopper([&] { server->Stop(); });  // RequestStop + wait for Run
  EXPECT_EQ(a->WaitClose(), 1001);
  stopper.join();
  stop_sending.store(true);
  sender.join();
  EXPECT_TRUE(server->stopped());

  // b received events then 1001 (WaitClose reads through them).
  EXPECT_EQ(b->WaitClose(), 1001);
  EXPECT_TRUE(idle_http->WaitClosed(kWait));
  EXPECT_TRUE(sse->WaitClosed(kWait));

  // Acks seen by the publisher must match what the log holds.
  std::set<std::string> acked;
  while (true) {
    WsMessage m = pub->Recv(kWait);
    if (m.kind != WsMessage::kText) {
      EXPECT_EQ(m.kind, WsMessage::kClose);
      EXPECT_EQ(m.close_code, 1001);
      break;
    }
    rapidjson::Document doc;
    doc.Parse(m.data.c_str());
    if (Str(doc, "type") == "ack") acked.insert("id-" + std::to_string(Int(doc, "request_id")));
  }
  std::set<std::string> stored;
  {
    auto reader = server->bus().NewReader();
    auto page = reader->Read(0, Filter(), 1'000'000, 1'000'000);
    ASSERT_TRUE(page.ok());
    for (const EventPtr& e : page->events) stored.insert(e->header.event_id);
  }
  EXPECT_FALSE(acked.empty());
  EXPECT_EQ(acked, stored);
}

TEST(ServerShutdown, StopBeforeAnyClientAndNewConnectionsAreRefused) {
  TestServer server;
  const int port = server.port();
  server.Stop();
  EXPECT_TRUE(server.stopped());
  auto socket = Socket::Connect(port);
  if (socket) {  // the port may still accept briefly: nothing is served
    socket->SendAll("GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(socket->WaitClosed(kWait));
  }
}

}  // namespace
}  // namespace tailbus::server_test
