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

  // Two publishers: `flood` keeps sending while the server stops; `burst`
  // sends a burst and then only reads.
  auto flood = WsClient::Connect(port, "/ws?batch_size=1");
  auto burst = WsClient::Connect(port, "/ws/events/none");
  ASSERT_TRUE(flood && burst);
  ASSERT_TRUE(flood->RecvType("hello"));
  ASSERT_TRUE(burst->RecvType("hello"));
  auto publish = [](WsClient& ws, const std::string& prefix, int i) {
    return ws.SendText(R"({"type":"publish","request_id":)" + std::to_string(i) +
                       R"(,"event":{"session_id":"s1","event_type":"p","event_id":")" + prefix +
                       std::to_string(i) + R"("}})");
  };
  std::atomic<bool> stop_sending{false};
  std::atomic<int> sent{0};
  std::thread sender([&] {
    for (int i = 0; i < 100000 && !stop_sending.load(); ++i) {
      if (!publish(*flood, "flood-", i)) break;
      sent.store(i + 1);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return sent.load() > 100; }));
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(publish(*burst, "burst-", i));
  auto first_ack = burst->RecvType("ack");  // the burst is being appended
  ASSERT_TRUE(first_ack);

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

  auto acks = [](WsClient& ws, const std::string& prefix, int* close_code) {
    std::set<std::string> acked;
    while (true) {
      WsMessage m = ws.Recv(kWait);
      if (m.kind != WsMessage::kText) {
        *close_code = m.kind == WsMessage::kClose ? m.close_code : 0;
        return acked;
      }
      rapidjson::Document doc;
      doc.Parse(m.data.c_str());
      if (Str(doc, "type") == "ack") acked.insert(prefix + std::to_string(Int(doc, "request_id")));
    }
  };
  int burst_close = 0;
  int flood_close = 0;
  std::set<std::string> burst_acked = acks(*burst, "burst-", &burst_close);
  burst_acked.insert("burst-" + std::to_string(Int(*first_ack, "request_id")));
  const std::set<std::string> flood_acked = acks(*flood, "flood-", &flood_close);
  std::set<std::string> burst_stored;
  std::set<std::string> flood_stored;
  {
    auto reader = server->bus().NewReader();
    auto page = reader->Read(0, Filter(), 1'000'000, 1'000'000);
    ASSERT_TRUE(page.ok());
    for (const EventPtr& e : page->events) {
      const std::string& id = e->header.event_id;
      (id.rfind("burst-", 0) == 0 ? burst_stored : flood_stored).insert(id);
    }
  }
  // Whatever the server appended for a client that only reads was acked
  // before its 1001, and nothing was acked that is not in the log.
  EXPECT_EQ(burst_close, 1001);
  EXPECT_EQ(burst_acked, burst_stored);
  // A client that keeps sending while the server closes may lose the tail of
  // what it was sent (TCP resets a connection closed with unread input), but
  // an ack still always means the event is in the log.
  for (const std::string& id : flood_acked) EXPECT_EQ(flood_stored.count(id), 1u) << id;
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
