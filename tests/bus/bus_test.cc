#include "bus/bus.h"

#include <gtest/gtest.h>

#include <future>
#include <random>
#include <thread>

#include "tests/bus/bus_test_util.h"

namespace tailbus {
namespace {

using testing::Events;
using testing::FaultyLogStore;
using testing::MakeEvent;
using testing::TempDir;

std::unique_ptr<Bus> OpenBus(const std::string& path, BusOptions options = {}) {
  auto store = LogStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  auto bus = Bus::Open(std::move(*store), std::move(options));
  EXPECT_TRUE(bus.ok()) << bus.status().ToString();
  return std::move(*bus);
}

// Polls until caught up; returns everything delivered.
std::vector<EventPtr> Drain(Bus& bus, Cursor& cursor, LogReader& reader, size_t batch = 100) {
  std::vector<EventPtr> out;
  for (;;) {
    auto r = cursor.Poll(reader, batch, 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) break;
    out.insert(out.end(), r->events.begin(), r->events.end());
    if (r->caught_up && !cursor.HasPending()) break;
  }
  (void)bus;
  return out;
}

TEST(BusTest, AppendAssignsContiguousOffsetsFromOne) {
  TempDir dir;
  auto bus = OpenBus(dir.File("log.db"));
  auto first = bus->Append(Events(R"([{"session_id":"a","event_type":"x"},
                                      {"session_id":"b","event_type":"y"}])"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, (std::vector<int64_t>{1, 2}));
  auto second = bus->Append({MakeEvent("a", "z")});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, std::vector<int64_t>{3});
  EXPECT_EQ(bus->head(), 3);
}

TEST(BusTest, DeliveredJsonCarriesOffsetAndIngestedAtFirst) {
  TempDir dir;
  auto bus = OpenBus(dir.File("log.db"));
  ASSERT_TRUE(bus->Append({MakeEvent("a", "x", R"("k":[1,2])")}).ok());
  auto reader = bus->NewReader();
  auto cursor = bus->Subscribe(0, Filter());
  auto events = Drain(*bus, *cursor, *reader);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0]->json.starts_with("{\"offset\":1,\"ingested_at\":\"")) << events[0]->json;
  EXPECT_NE(events[0]->json.find(R"("k":[1,2])"), std::string::npos);
}

TEST(BusTest, DuplicateEventIdGetsOriginalOffsetAndIsNotStoredAgain) {
  TempDir dir;
  auto bus = OpenBus(dir.File("log.db"));
  auto a = bus->Append({MakeEvent("s", "x", R"("event_id":"e1")")});
  ASSERT_TRUE(a.ok());
  auto b = bus->Append(Events(R"([{"session_id":"s","event_type":"x","event_id":"e2"},
                                  {"session_id":"s","event_type":"x","event_id":"e1"},
                                  {"session_id":"s","event_type":"x","event_id":"e2"}])"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(bus->head(), 2);
}

TEST(BusTest, IdempotencyWindowSurvivesReopen) {
  TempDir dir;
  {
    auto bus = OpenBus(dir.File("log.db"));
    ASSERT_TRUE(bus->Append({MakeEvent("s", "x", R"("event_id":"retry-me")")}).ok());
  }
  auto bus = OpenBus(dir.File("log.db"));
  auto again = bus->Append({MakeEvent("s", "x", R"("event_id":"retry-me")")});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, std::vector<int64_t>{1});
  EXPECT_EQ(bus->head(), 1);
}

TEST(BusTest, WakeupRunsAfterEveryCommit) {
  TempDir dir;
  auto bus = OpenBus(dir.File("log.db"));
  std::atomic<int> wakes{0};
  std::atomic<int64_t> head_seen{0};
  Bus* raw = bus.get();
  int id = bus->AddWakeup([&] {
    head_seen = raw->head();
    ++wakes;
  });
  ASSERT_TRUE(bus->Append({MakeEvent("s", "x")}).ok());
  EXPECT_GE(wakes.load(), 1);
  EXPECT_EQ(head_seen.load(), 1) << "a woken subscriber must see the new head";
  bus->RemoveWakeup(id);
  int before = wakes.load();
  ASSERT_TRUE(bus->Append({MakeEvent("s", "x")}).ok());
  EXPECT_EQ(wakes.load(), before);
}

TEST(BusTest, CursorFiltersAndReadsBothRingAndStorage) {
  TempDir dir;
  BusOptions tiny_ring;
  tiny_ring.hot_ring_bytes = 4096;  // most events are only in storage
  auto bus = OpenBus(dir.File("log.db"), tiny_ring);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(bus->Append({MakeEvent(i % 2 ? "odd" : "even", "t")}).ok());
  }
  auto reader = bus->NewReader();
  auto filter = Filter::Parse(R"({"session_ids":["odd"]})");
  ASSERT_TRUE(filter.ok());
  auto cursor = bus->Subscribe(0, *filter);
  auto events = Drain(*bus, *cursor, *reader, 7);
  ASSERT_EQ(events.size(), 100u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i]->offset, static_cast<int64_t>(2 * i + 2));
    EXPECT_EQ(events[i]->header.session_id, "odd");
  }
}

// What a subscriber gets from storage (cold ring, after a reopen) is what it
// got from the hot ring: the same JSON bytes and header fields, for a whole-log
// cursor and a one-session cursor, across pages of several sizes.
TEST(BusTest, StorageReadsDeliverTheSameEventsAsTheRing) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  std::vector<Event> batch;
  for (int i = 0; i < 300; ++i) {
    std::string extra = R"("tool_name":"grep","total_tokens":)" + std::to_string(i) +
                        R"(,"note":")" + std::string(i * 7 % 500, 'n') + "\"";
    if (i % 3 == 0) extra += R"(,"event_id":"producer-id-)" + std::to_string(i) + "\"";
    if (i % 4 == 0) extra += R"(,"execution_duration_seconds":1.5,"status":"ok")";
    batch.push_back(MakeEvent(i % 5 == 0 ? "one" : "other-" + std::to_string(i % 7), "t", extra));
  }
  const char* filters[] = {"{}", R"({"session_ids":["one"]})"};
  std::vector<std::vector<EventPtr>> hot;
  {
    auto bus = OpenBus(path);
    ASSERT_TRUE(bus->Append(std::move(batch)).ok());
    auto reader = bus->NewReader();
    for (const char* f : filters) {
      auto cursor = bus->Subscribe(0, *Filter::Parse(f));
      hot.push_back(Drain(*bus, *cursor, *reader, 1000));
    }
  }
  ASSERT_EQ(hot[0].size(), 300u);
  ASSERT_EQ(hot[1].size(), 60u);
  auto bus = OpenBus(path);  // a new bus: its ring is empty, every read hits storage
  auto reader = bus->NewReader();
  for (size_t batch_size : {1, 7, 1000}) {
    for (size_t f = 0; f < std::size(filters); ++f) {
      SCOPED_TRACE(::testing::Message() << filters[f] << " batch " << batch_size);
      auto cursor = bus->Subscribe(0, *Filter::Parse(filters[f]));
      std::vector<EventPtr> cold = Drain(*bus, *cursor, *reader, batch_size);
      ASSERT_EQ(cold.size(), hot[f].size());
      for (size_t i = 0; i < cold.size(); ++i) {
        const CommittedEvent& c = *cold[i];
        const CommittedEvent& h = *hot[f][i];
        EXPECT_EQ(c.offset, h.offset);
        EXPECT_EQ(c.ingested_at_ms, h.ingested_at_ms);
        EXPECT_EQ(c.json, h.json);
        EXPECT_EQ(c.header.session_id, h.header.session_id);
        EXPECT_EQ(c.header.event_type, h.header.event_type);
        EXPECT_EQ(c.header.event_id, h.header.event_id);
        EXPECT_EQ(c.header.timestamp_ms, h.header.timestamp_ms);
        EXPECT_EQ(c.header.tool_name, h.header.tool_name);
        EXPECT_EQ(c.header.status, h.header.status);
        EXPECT_EQ(c.header.cost_tokens, h.header.cost_tokens);
        EXPECT_EQ(c.header.duration_ms, h.header.duration_ms);
      }
    }
  }
}

TEST(BusTest, PollRespectsMaxEventsAndMaxBytes) {
  TempDir dir;
  auto bus = OpenBus(dir.File("log.db"));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(bus->Append({MakeEvent("s", "t")}).ok());
  auto reader = bus->NewReader();
  auto cursor = bus->Subscribe(0, Filter());
  auto r = cursor->Poll(*reader, 3, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 3u);
  EXPECT_FALSE(r->caught_up);
  auto one = cursor->Poll(*reader, 100, 1);  // byte cap below one event: still one event
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->events.size(), 1u);
  EXPECT_EQ(one->events[0]->offset, 4);
}

// The guarantee: producers append concurrently while subscribers start at
// random offsets (inside and outside the hot ring, across ring eviction);
// every subscriber sees exactly the committed matching events after its start,
// in offset order, with no gap and no duplicate.
TEST(BusTest, ConcurrentProducersAndSubscribersSeeExactlyCommittedEvents) {
  TempDir dir;
  BusOptions options;
  options.hot_ring_bytes = 64 * 1024;  // small: forces eviction and storage catch-up
  options.max_group_events = 64;
  auto bus = OpenBus(dir.File("log.db"), options);

  constexpr int kProducers = 4, kBatches = 60, kBatchSize = 25, kSubscribers = 6;
  constexpr int64_t kTotal = int64_t{kProducers} * kBatches * kBatchSize;
  const char* filters[] = {"{}",
                           R"({"session_ids":["s3"]})",
                           R"({"event_types":["error"]})",
                           R"({"any":[{"session_ids":["s1"]},{"event_types":["error"]}]})",
                           "{}",
                           R"({"session_ids":["s0","s2"]})"};

  std::atomic<bool> producers_done{false};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<Event> batch;
        for (int i = 0; i < kBatchSize; ++i) {
          int n = (p * kBatches + b) * kBatchSize + i;
          batch.push_back(MakeEvent("s" + std::to_string(n % 5), n % 7 == 0 ? "error" : "step"));
        }
        auto r = bus->Append(std::move(batch));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
      }
    });
  }

  struct Seen {
    int64_t start;
    Filter filter;
    std::vector<int64_t> offsets;
  };
  std::vector<Seen> seen(kSubscribers);
  std::vector<std::thread> subscribers;
  for (int s = 0; s < kSubscribers; ++s) {
    subscribers.emplace_back([&, s] {
      std::mt19937 rng(s);
      // Start somewhere in what is committed so far: old (storage) or recent (ring).
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 50));
      int64_t head = bus->head();
      seen[s].start = s % 2 ? head : static_cast<int64_t>(rng() % (head + 1));
      seen[s].filter = *Filter::Parse(filters[s]);
      auto reader = bus->NewReader();
      auto cursor = bus->Subscribe(seen[s].start, seen[s].filter);
      for (;;) {
        bool done = producers_done.load();
        auto r = cursor->Poll(*reader, 1 + rng() % 50, 1 << 20);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        for (auto& e : r->events) seen[s].offsets.push_back(e->offset);
        if (done && r->caught_up && cursor->position() >= kTotal) break;
        if (r->events.empty()) std::this_thread::yield();
      }
    });
  }
  for (auto& t : producers) t.join();
  producers_done = true;
  for (auto& t : subscribers) t.join();
  ASSERT_EQ(bus->head(), kTotal);

  // What storage holds is the truth to compare with.
  auto reader = bus->NewReader();
  auto all_cursor = bus->Subscribe(0, Filter());
  std::vector<EventPtr> all = Drain(*bus, *all_cursor, *reader, 500);
  ASSERT_EQ(static_cast<int64_t>(all.size()), kTotal);
  for (int64_t i = 0; i < kTotal; ++i) ASSERT_EQ(all[i]->offset, i + 1) << "offsets are gap-free";
  for (const Seen& s : seen) {
    std::vector<int64_t> expected;
    for (const EventPtr& e : all) {
      if (e->offset > s.start && s.filter.Matches(e->fields())) expected.push_back(e->offset);
    }
    EXPECT_EQ(s.offsets, expected)
        << "subscriber from " << s.start << " with " << s.filter.ToJson();
  }
}

std::unique_ptr<Bus> OpenFaultyBus(const std::string& path, FaultyLogStore** faulty,
                                   BusOptions options = {}) {
  auto real = LogStore::Open(path);
  EXPECT_TRUE(real.ok()) << real.status().ToString();
  auto store = std::make_unique<FaultyLogStore>(std::move(*real));
  *faulty = store.get();
  auto bus = Bus::Open(std::move(store), std::move(options));
  EXPECT_TRUE(bus.ok());
  return std::move(*bus);
}

TEST(BusTest, FailedCommitFailsAppendCleanlyAndBurnsNoOffset) {
  TempDir dir;
  FaultyLogStore* faulty = nullptr;
  auto bus = OpenFaultyBus(dir.File("log.db"), &faulty);
  ASSERT_TRUE(bus->Append({MakeEvent("s", "x", R"("event_id":"a")")}).ok());

  for (Status fault :
       {Status::DiskFull("database or disk is full"), Status::IoError("disk I/O error")}) {
    faulty->FailNext(1, fault);
    auto failed = bus->Append({MakeEvent("s", "x", R"("event_id":"b")")});
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), fault.code());
    EXPECT_EQ(bus->head(), 1);
  }

  // The same event, retried once the fault clears, gets the next offset: no gap,
  // and the failed attempts left no trace in the idempotency window.
  auto retried = bus->Append({MakeEvent("s", "x", R"("event_id":"b")")});
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_EQ(*retried, std::vector<int64_t>{2});
  auto reader = bus->NewReader();
  auto cursor = bus->Subscribe(0, Filter());
  auto events = Drain(*bus, *cursor, *reader);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]->header.event_id, "a");
  EXPECT_EQ(events[1]->header.event_id, "b");
}

TEST(BusTest, BusyCommitIsRetriedTransparently) {
  TempDir dir;
  FaultyLogStore* faulty = nullptr;
  auto bus = OpenFaultyBus(dir.File("log.db"), &faulty);
  faulty->FailNext(2, Status::Busy("database is locked"));
  auto r = bus->Append({MakeEvent("s", "x")});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, std::vector<int64_t>{1});
  EXPECT_EQ(faulty->append_calls(), 3);
}

TEST(BusTest, FullQueueRefusesAppendsWithoutQueueing) {
  TempDir dir;
  FaultyLogStore* faulty = nullptr;
  BusOptions options;
  options.max_queued_events = 10;
  auto bus = OpenFaultyBus(dir.File("log.db"), &faulty, options);
  faulty->SetGate(false);  // the writer stalls inside its first commit
  std::promise<AppendResult> first;
  bus->AppendAsync({MakeEvent("s", "x")}, [&](AppendResult r) { first.set_value(std::move(r)); });
  while (faulty->append_calls() == 0) std::this_thread::yield();
  std::vector<std::promise<AppendResult>> queued(10);
  for (auto& p : queued) {
    bus->AppendAsync({MakeEvent("s", "x")}, [&p](AppendResult r) { p.set_value(std::move(r)); });
  }
  auto refused = bus->Append({MakeEvent("s", "x")});  // completes at once: queue full
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  faulty->SetGate(true);
  EXPECT_TRUE(first.get_future().get().ok());
  for (auto& p : queued) EXPECT_TRUE(p.get_future().get().ok());
  EXPECT_EQ(bus->head(), 11);
}

TEST(BusTest, CloseCommitsQueuedAppendsThenRefusesNewOnes) {
  TempDir dir;
  auto bus = OpenBus(dir.File("log.db"));
  std::atomic<int> acked{0};
  for (int i = 0; i < 100; ++i) {
    bus->AppendAsync({MakeEvent("s", "x")}, [&](AppendResult r) {
      if (r.ok()) ++acked;
    });
  }
  bus->Close();
  EXPECT_EQ(acked.load(), 100);
  EXPECT_EQ(bus->head(), 100);
  auto late = bus->Append({MakeEvent("s", "x")});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
}

TEST(BusTest, ResumeAfterEvictionReportsEvicted) {
  TempDir dir;
  BusOptions options;
  options.retention.max_events = 10;
  options.retention_interval = std::chrono::milliseconds(1);
  auto bus = OpenBus(dir.File("log.db"), options);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(bus->Append({MakeEvent("s", "x")}).ok());
  // Retention runs on the writer between commits; one more commit lets it run.
  for (int i = 0; i < 200 && bus->earliest() < 21; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(bus->earliest(), 21);
  auto reader = bus->NewReader();
  auto cursor = bus->Subscribe(5, Filter());
  auto r = cursor->Poll(*reader, 100, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kEvicted);
  cursor->Reset(bus->earliest() - 1);
  auto events = Drain(*bus, *cursor, *reader);
  ASSERT_EQ(events.size(), 10u);
  EXPECT_EQ(events.front()->offset, 21);
}

TEST(BusTest, DeletedSessionIsHiddenFromRingAndStorage) {
  TempDir dir;
  auto bus = OpenBus(dir.File("log.db"));
  ASSERT_TRUE(bus->Append({MakeEvent("gone", "x"), MakeEvent("kept", "x")}).ok());
  ASSERT_TRUE(bus->DeleteSession("gone", /*hard=*/false).ok());
  ASSERT_TRUE(bus->Append({MakeEvent("gone", "y")}).ok());  // a new session, visible
  auto reader = bus->NewReader();
  auto cursor = bus->Subscribe(0, Filter());
  auto events = Drain(*bus, *cursor, *reader);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]->header.session_id, "kept");
  EXPECT_EQ(events[1]->header.session_id, "gone");
  EXPECT_EQ(events[1]->header.event_type, "y");
  EXPECT_EQ(bus->DeleteSession("never-existed", false).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tailbus
