// Session deletes (soft and hard) and retention (count, age, bytes).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/log_store.h"
#include "tests/storage/storage_test_util.h"

namespace tailbus {
namespace {

using testing::AppendBatch;
using testing::AppendMany;
using testing::Batch;
using testing::Ev;
using testing::Offsets;
using testing::OpenOrDie;
using testing::ParseOrDie;
using testing::RawDb;
using testing::TempDir;
using testing::TestEvent;

std::vector<std::string> SessionIds(LogReader& reader) {
  std::vector<std::string> out;
  auto list = reader.ListSessions(1000, 0);
  EXPECT_TRUE(list.ok());
  if (list.ok()) {
    for (const SessionSummary& s : *list) out.push_back(s.session_id);
  }
  return out;
}

TEST(DeleteSessionTest, SoftDeleteHidesFromEveryReaderAtOnce) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path);
  Batch batch;
  for (const char* s : {"keep", "gone", "keep", "gone", "keep"}) batch.Add(Ev(s));
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  auto reader = store->NewReader();
  // Warm the reader (its session caches) before the delete.
  ASSERT_EQ(reader->Read(0, Filter(), 100, 100)->events.size(), 5u);
  ASSERT_EQ(reader->Read(0, ParseOrDie(R"({"session_id":"gone"})"), 100, 100)->events.size(), 2u);

  ASSERT_TRUE(store->DeleteSession("gone", /*hard=*/false).ok());

  EXPECT_EQ(Offsets(*reader->Read(0, Filter(), 100, 100)), (std::vector<int64_t>{1, 3, 5}));
  auto by_session = reader->Read(0, ParseOrDie(R"({"session_id":"gone"})"), 100, 100);
  ASSERT_TRUE(by_session.ok());
  EXPECT_TRUE(by_session->events.empty());
  EXPECT_EQ(by_session->next_after, 5);
  EXPECT_EQ(reader->GetSession("gone").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(SessionIds(*reader), (std::vector<std::string>{"keep"}));
  EXPECT_EQ(reader->Stats()->session_count, 1);
  // Already hidden: a second soft delete finds nothing.
  EXPECT_EQ(store->DeleteSession("gone", false).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteSession("never", false).code(), StatusCode::kNotFound);

  // Still hidden after reopening (the set is loaded at open).
  reader.reset();
  store.reset();
  store = OpenOrDie(path);
  reader = store->NewReader();
  EXPECT_EQ(Offsets(*reader->Read(0, Filter(), 100, 100)), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(store->head(), 5);
}

TEST(DeleteSessionTest, LaterEventWithSameIdStartsNewVisibleSession) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 4, 1).ok());  // s0 x4
  ASSERT_TRUE(store->DeleteSession("s0", false).ok());
  Batch batch;
  batch.Add(Ev("s0", "restart", 77));
  ASSERT_TRUE(AppendBatch(*store, batch).ok());

  auto reader = store->NewReader();
  auto s = reader->GetSession("s0");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->first_offset, 5);
  EXPECT_EQ(s->last_offset, 5);
  EXPECT_EQ(s->event_count, 1);
  EXPECT_EQ(Offsets(*reader->Read(0, Filter(), 100, 100)), (std::vector<int64_t>{5}));
  EXPECT_EQ(Offsets(*reader->Read(0, ParseOrDie(R"({"session_id":"s0"})"), 100, 100)),
            (std::vector<int64_t>{5}));
  EXPECT_EQ(SessionIds(*reader), (std::vector<std::string>{"s0"}));
  RawDb raw(dir.File("x.db"));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM sessions WHERE session_id = 's0'"), "2");
}

TEST(DeleteSessionTest, HardDeleteRemovesRowsOfVisibleAndSoftDeletedSessions) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path);
  Batch first;
  first.Add(Ev("x")).Add(Ev("other")).Add(Ev("x"));
  ASSERT_TRUE(AppendBatch(*store, first).ok());
  ASSERT_TRUE(store->DeleteSession("x", false).ok());
  Batch second;
  second.Add(Ev("x")).Add(Ev("other"));
  ASSERT_TRUE(AppendBatch(*store, second).ok());  // x again: a new session

  ASSERT_TRUE(store->DeleteSession("x", /*hard=*/true).ok());
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Query("SELECT count(*) FROM sessions WHERE session_id = 'x'"), "0");
    EXPECT_EQ(raw.Query("SELECT count(*) FROM events"), "2");
    EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'event_count'"), "2");
    EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'retained_bytes'"),
              raw.Query("SELECT sum(length(CAST(body AS BLOB))) FROM events"));
  }
  auto reader = store->NewReader();
  EXPECT_EQ(Offsets(*reader->Read(0, Filter(), 100, 100)), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(reader->Stats()->event_count, 2);
  EXPECT_EQ(store->DeleteSession("x", true).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->head(), 5);
  // The id can be used again.
  Batch third;
  third.Add(Ev("x"));
  ASSERT_TRUE(AppendBatch(*store, third).ok());
  EXPECT_EQ(reader->GetSession("x")->first_offset, 6);
}

TEST(RetentionTest, ByCountIsBoundedPerStepAndEvicts) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 100, 4).ok());
  RetentionPolicy policy;
  policy.max_events = 30;
  auto step = store->RunRetentionStep(policy, 0, 50);
  ASSERT_TRUE(step.ok()) << step.status().ToString();
  EXPECT_EQ(*step, 50);
  EXPECT_EQ(store->earliest(), 51);
  step = store->RunRetentionStep(policy, 0, 50);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(*step, 20);
  EXPECT_EQ(store->earliest(), 71);
  EXPECT_EQ(*store->RunRetentionStep(policy, 0, 50), 0);

  auto reader = store->NewReader();
  auto evicted = reader->Read(0, Filter(), 10, 10);
  ASSERT_FALSE(evicted.ok());
  EXPECT_EQ(evicted.status().code(), StatusCode::kEvicted);
  EXPECT_EQ(evicted.status().message(), "offset 1 was evicted; the earliest retained offset is 71");
  EXPECT_EQ(reader->Read(69, Filter(), 10, 10).status().code(), StatusCode::kEvicted);
  auto at_earliest = reader->Read(70, Filter(), 1000, 1000);
  ASSERT_TRUE(at_earliest.ok()) << at_earliest.status().ToString();
  EXPECT_EQ(at_earliest->events.size(), 30u);
  EXPECT_EQ(at_earliest->events.front()->offset, 71);
  auto by_session = reader->Read(0, ParseOrDie(R"({"session_id":"s1"})"), 10, 10);
  EXPECT_EQ(by_session.status().code(), StatusCode::kEvicted);
  auto stats = reader->Stats();
  EXPECT_EQ(stats->earliest, 71);
  EXPECT_EQ(stats->event_count, 30);
}

TEST(RetentionTest, ByAgeDeletesOlderIngestTimes) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 10, 2, /*ingested_at_ms=*/1000).ok());
  ASSERT_TRUE(AppendMany(*store, 10, 2, /*ingested_at_ms=*/5000).ok());
  RetentionPolicy policy;
  policy.max_age_ms = 2000;
  EXPECT_EQ(*store->RunRetentionStep(policy, /*now_ms=*/2500, 100), 0);
  EXPECT_EQ(*store->RunRetentionStep(policy, /*now_ms=*/6000, 100), 10);
  EXPECT_EQ(store->earliest(), 11);
  EXPECT_EQ(*store->RunRetentionStep(policy, 6000, 100), 0);
  EXPECT_EQ(*store->RunRetentionStep(policy, 8000, 100), 10);
  EXPECT_EQ(store->earliest(), 21);  // empty: head + 1
  EXPECT_EQ(store->head(), 20);
}

TEST(RetentionTest, ByBytesKeepsTotalUnderLimit) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  Batch batch;
  for (int i = 0; i < 10; ++i) {
    TestEvent e = Ev("s");
    e.json = std::string(100, 'x');  // 100 bytes each: 1000 in all
    batch.Add(std::move(e));
  }
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  RetentionPolicy policy;
  policy.max_bytes = 450;
  EXPECT_EQ(*store->RunRetentionStep(policy, 0, 100), 6);  // 400 bytes left
  EXPECT_EQ(store->earliest(), 7);
  EXPECT_EQ(*store->RunRetentionStep(policy, 0, 100), 0);
  RawDb raw(dir.File("x.db"));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'retained_bytes'"), "400");
}

TEST(RetentionTest, RemovesSessionsWithNoRetainedEvents) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path);
  Batch batch;
  for (const char* s : {"old", "hidden", "old", "both", "hidden", "both", "new"}) {
    batch.Add(Ev(s));
  }
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  ASSERT_TRUE(store->DeleteSession("hidden", false).ok());
  RetentionPolicy policy;
  policy.max_events = 3;  // keep offsets 5..7
  EXPECT_EQ(*store->RunRetentionStep(policy, 0, 100), 4);
  auto reader = store->NewReader();
  EXPECT_EQ(SessionIds(*reader), (std::vector<std::string>{"new", "both"}));
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT group_concat(session_id) FROM (SELECT session_id FROM sessions "
                      "ORDER BY session_id)"),
            "both,hidden,new");  // hidden still has offset 5
  EXPECT_EQ(Offsets(*reader->Read(4, Filter(), 10, 10)), (std::vector<int64_t>{6, 7}));
  // Writing to an evicted session's id starts it afresh.
  Batch again;
  again.Add(Ev("old"));
  ASSERT_TRUE(AppendBatch(*store, again).ok());
  EXPECT_EQ(reader->GetSession("old")->first_offset, 8);
  EXPECT_EQ(reader->GetSession("old")->event_count, 1);
}

TEST(RetentionTest, EvictingEverythingPersistsHeadAndEarliest) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(AppendMany(*store, 25, 3).ok());
    RetentionPolicy policy;
    policy.max_age_ms = 1;
    EXPECT_EQ(*store->RunRetentionStep(policy, 1'000'000, 1000), 25);
    EXPECT_EQ(store->earliest(), 26);
    auto stats = store->NewReader()->Stats();
    EXPECT_EQ(stats->event_count, 0);
    EXPECT_EQ(stats->session_count, 0);
  }
  auto store = OpenOrDie(path);
  EXPECT_EQ(store->head(), 25);
  EXPECT_EQ(store->earliest(), 26);
  auto reader = store->NewReader();
  EXPECT_EQ(reader->Read(24, Filter(), 10, 10).status().code(), StatusCode::kEvicted);
  auto empty = reader->Read(25, Filter(), 10, 10);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->events.empty());
  ASSERT_TRUE(AppendMany(*store, 2, 1).ok());
  EXPECT_EQ(Offsets(*reader->Read(25, Filter(), 10, 10)), (std::vector<int64_t>{26, 27}));
}

TEST(RetentionTest, NoPolicyOrZeroRowsDoesNothing) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 10, 1).ok());
  EXPECT_EQ(*store->RunRetentionStep(RetentionPolicy{}, 0, 100), 0);
  RetentionPolicy policy;
  policy.max_events = 1;
  EXPECT_EQ(*store->RunRetentionStep(policy, 0, 0), 0);
  EXPECT_EQ(store->earliest(), 1);
}

}  // namespace
}  // namespace tailbus
