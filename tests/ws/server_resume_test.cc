// The delivery guarantee: a subscriber that resumes with after=N receives
// every committed event matching its filter with offset > N, in order,
// exactly once, across history and live, while producers keep appending —
// here with random disconnects (abrupt and clean) and three kinds of
// subscription (everything, a filter, a session endpoint).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <random>
#include <set>

#include "core/filter.h"
#include "tests/ws/server_test_support.h"

namespace tailbus::server_test {
namespace {

constexpr int kProducers = 2;
constexpr int kBatches = 60;      // per producer
constexpr int kBatchEvents = 50;  // 2 x 60 x 50 = 6,000 events
constexpr int kSessions = 7;

struct Subscriber {
  std::string base;  // path and fixed query, e.g. "/ws/events/s3?batch_size=7"
  Filter filter;     // what it should receive (to compute the expected offsets)
  std::vector<int64_t> received;
  int reconnects = 0;
  std::string failure;
};

// Runs one subscriber until it has `want()` events or the deadline passes.
void RunSubscriber(int port, Subscriber& sub, uint32_t seed,
                   const std::atomic<bool>& producers_done, const std::function<size_t()>& want) {
  std::mt19937 rng(seed);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  int64_t last = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    // The first connection starts from the beginning; later ones resume.
    std::string target = sub.base + (sub.base.find('?') == std::string::npos ? "?" : "&") +
                         "after=" + std::to_string(last);
    auto ws = WsClient::Connect(port, target);
    if (!ws) {
      sub.failure = "connect failed";
      return;
    }
    // Disconnect after a random number of frames (a few connections run to the end).
    const int frames_before_drop = std::uniform_int_distribution<int>(1, 40)(rng);
    int frames = 0;
    while (true) {
      if (producers_done.load() && sub.received.size() >= want()) return;
      auto doc = ws->RecvJson(std::chrono::seconds(5));
      if (!doc) break;  // timeout or close: reconnect
      const std::string type = Str(*doc, "type");
      if (type == "reset" || type == "error") {
        sub.failure = "unexpected " + ws->last_text();
        return;
      }
      for (const rapidjson::Value* e : EventsOf(*doc)) {
        const int64_t offset = Int(*e, "offset");
        if (offset <= last) {
          sub.failure = "duplicate or out of order: " + std::to_string(offset) + " after " +
                        std::to_string(last);
          return;
        }
        last = offset;
        sub.received.push_back(offset);
      }
      if (++frames >= frames_before_drop && !producers_done.load()) {
        if (rng() % 2) {
          ::shutdown(ws->socket().fd(), SHUT_RDWR);  // abrupt
        } else {
          ws->Close();  // clean
        }
        ++sub.reconnects;
        break;
      }
    }
  }
  sub.failure = "deadline passed with " + std::to_string(sub.received.size()) + " events";
}

TEST(ServerResume, NoGapNoDuplicateUnderConcurrentPublishingAndDisconnects) {
  TestServer server;
  // Some history before anybody connects.
  std::vector<std::string> history;
  for (int i = 0; i < 500; ++i) {
    history.push_back(Ev("s" + std::to_string(i % kSessions), i % 3 ? "tool_call" : "message"));
  }
  server.Append(history);

  std::vector<Subscriber> subs(3);
  subs[0].base = "/ws?batch_size=13";
  subs[1].base = "/ws?batch_size=1&filter=%7B%22event_types%22%3A%5B%22message%22%5D%7D";
  subs[1].filter = *Filter::Parse(R"({"event_types":["message"]})");
  subs[2].base = "/ws/events/s3?batch_size=50";
  subs[2].filter = Filter().RestrictedToSession("s3");

  std::atomic<bool> producers_done{false};
  std::vector<size_t> expected_counts(subs.size(), SIZE_MAX);
  std::mutex expected_mu;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < subs.size(); ++i) {
    threads.emplace_back([&, i] {
      RunSubscriber(server.port(), subs[i], 1000 + static_cast<uint32_t>(i), producers_done,
                    [&, i] {
                      std::lock_guard lock(expected_mu);
                      return expected_counts[i];
                    });
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937 rng(p);
      for (int b = 0; b < kBatches; ++b) {
        std::string body = "[";
        for (int k = 0; k < kBatchEvents; ++k) {
          if (k > 0) body += ',';
          body += Ev("s" + std::to_string(rng() % kSessions), rng() % 3 ? "tool_call" : "message",
                     "\"producer\":" + std::to_string(p));
        }
        body += "]";
        HttpReply r = Http(server.port(), "POST", "/api/events", body);
        ASSERT_EQ(r.status, 200) << r.body;
      }
    });
  }
  for (auto& t : producers) t.join();

  // Expected offsets per subscriber, from the log itself.
  std::vector<std::vector<int64_t>> expected(subs.size());
  {
    auto reader = server.bus().NewReader();
    for (size_t i = 0; i < subs.size(); ++i) {
      auto cursor = server.bus().Subscribe(0, subs[i].filter);
      while (cursor->HasPending()) {
        auto page = cursor->Poll(*reader, 1000, SIZE_MAX);
        ASSERT_TRUE(page.ok());
        for (const EventPtr& e : page->events) expected[i].push_back(e->offset);
      }
    }
  }
  {
    std::lock_guard lock(expected_mu);
    for (size_t i = 0; i < subs.size(); ++i) expected_counts[i] = expected[i].size();
  }
  producers_done.store(true);
  for (auto& t : threads) t.join();

  EXPECT_EQ(server.bus().head(), 500 + kProducers * kBatches * kBatchEvents);
  for (size_t i = 0; i < subs.size(); ++i) {
    SCOPED_TRACE(subs[i].base);
    EXPECT_TRUE(subs[i].failure.empty()) << subs[i].failure;
    EXPECT_EQ(subs[i].received, expected[i])
        << "received " << subs[i].received.size() << " of " << expected[i].size();
    EXPECT_GT(subs[i].reconnects, 0);
  }
}

}  // namespace
}  // namespace tailbus::server_test
