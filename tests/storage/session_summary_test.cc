// Session summaries are buffered by the writer (schema.sql: meta
// 'sessions_through'): what readers of the same store see, what another
// process sees, and what a crash leaves behind.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "storage/log_store.h"
#include "storage_test_util.h"

namespace tailbus::testing {
namespace {

// Summaries are written only by Flush(), deletes, retention and close.
StorageOptions Buffering() {
  StorageOptions o;
  o.session_flush_events = int64_t{1} << 40;
  o.session_flush_interval_ms = int64_t{1} << 40;
  return o;
}

StorageOptions ReadOnly() {
  StorageOptions o;
  o.read_only = true;
  return o;
}

TestEvent Costly(std::string session, std::string type, int64_t cost, int64_t ts) {
  TestEvent e = Ev(std::move(session), std::move(type), ts);
  e.header.cost_tokens = cost;
  return e;
}

// Appends s's events: a message (cost 5), an error (cost 7), at times t and t+1.
Status AppendPair(LogStore& store, const std::string& s, int64_t t) {
  Batch b;
  b.Add(Costly(s, "message", 5, t)).Add(Costly(s, "error", 7, t + 1));
  return AppendBatch(store, b);
}

void ExpectSummary(const SessionSummary& s, int64_t count, int64_t cost, int64_t errors,
                   int64_t last_offset) {
  EXPECT_EQ(s.event_count, count) << s.session_id;
  EXPECT_EQ(s.total_cost_tokens, cost) << s.session_id;
  EXPECT_EQ(s.error_count, errors) << s.session_id;
  EXPECT_EQ(s.last_offset, last_offset) << s.session_id;
}

TEST(SessionSummaryTest, ReadersOfTheStoreSeeExactSummariesWhileTheyAreBuffered) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  auto store = OpenOrDie(path, Buffering());
  ASSERT_TRUE(AppendPair(*store, "a", 100).ok());
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(AppendPair(*store, "a", 200).ok());  // offsets 3, 4: buffered
  ASSERT_TRUE(AppendPair(*store, "b", 300).ok());  // a new session: buffered too

  auto reader = store->NewReader();
  auto a = reader->GetSession("a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ExpectSummary(*a, 4, 24, 2, 4);
  EXPECT_EQ(a->first_time_ms, 100);
  EXPECT_EQ(a->last_time_ms, 201);
  auto b = reader->GetSession("b");
  ASSERT_TRUE(b.ok());
  ExpectSummary(*b, 2, 12, 1, 6);
  EXPECT_EQ(b->first_offset, 5);

  // The file itself lags (another process would see this) ...
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT event_count FROM sessions WHERE session_id = 'a'"), "2");
  EXPECT_EQ(raw.Query("SELECT event_count FROM sessions WHERE session_id = 'b'"), "0");
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "2");
  // ... until the summaries are written.
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(raw.Query("SELECT event_count FROM sessions WHERE session_id = 'a'"), "4");
  EXPECT_EQ(raw.Query("SELECT total_cost_tokens FROM sessions WHERE session_id = 'b'"), "12");
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "6");
  ExpectSummary(*reader->GetSession("a"), 4, 24, 2, 4);  // not counted twice
  ExpectSummary(*reader->GetSession("b"), 2, 12, 1, 6);
}

TEST(SessionSummaryTest, WritesEverySessionOnceSessionFlushEventsAreBuffered) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  StorageOptions o = Buffering();
  o.session_flush_events = 10;
  auto store = OpenOrDie(path, o);
  ASSERT_TRUE(AppendMany(*store, 6, 2).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "0");
  ASSERT_TRUE(AppendMany(*store, 4, 2).ok());  // the 10th event: written with this commit
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "10");
  EXPECT_EQ(raw.Query("SELECT sum(event_count) FROM sessions"), "10");
}

TEST(SessionSummaryTest, CloseWritesBufferedSummaries) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  {
    auto store = OpenOrDie(path, Buffering());
    ASSERT_TRUE(AppendPair(*store, "a", 100).ok());
  }
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT event_count || ',' || total_cost_tokens || ',' || error_count "
                      "FROM sessions WHERE session_id = 'a'"),
            "2,12,1");
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "2");
}

TEST(SessionSummaryTest, ReopenAfterCrashRebuildsBufferedSummariesFromTheEvents) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  const std::string crashed = dir.File("crashed.db");
  auto store = OpenOrDie(path, Buffering());
  ASSERT_TRUE(AppendPair(*store, "a", 100).ok());
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(AppendPair(*store, "a", 200).ok());
  ASSERT_TRUE(AppendPair(*store, "b", 300).ok());
  CopyLogFiles(path, crashed);  // the summaries of offsets 3..6 exist only in memory

  {  // A read-only open computes them in memory and leaves the file alone.
    auto ro = OpenOrDie(crashed, ReadOnly());
    ASSERT_NE(ro, nullptr);
    auto reader = ro->NewReader();
    ExpectSummary(*reader->GetSession("a"), 4, 24, 2, 4);
    ExpectSummary(*reader->GetSession("b"), 2, 12, 1, 6);
  }
  {
    RawDb raw(crashed);
    EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "2");
  }
  {  // A writable open writes them.
    auto reopened = OpenOrDie(crashed, Buffering());
    ASSERT_NE(reopened, nullptr);
    RawDb raw(crashed);
    EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "6");
    EXPECT_EQ(raw.Query("SELECT event_count || ',' || total_cost_tokens || ',' || error_count "
                        "|| ',' || last_offset FROM sessions WHERE session_id = 'a'"),
              "4,24,2,4");
    EXPECT_EQ(raw.Query("SELECT event_count || ',' || total_cost_tokens || ',' || error_count "
                        "|| ',' || last_offset FROM sessions WHERE session_id = 'b'"),
              "2,12,1,6");
    ExpectSummary(*reopened->NewReader()->GetSession("a"), 4, 24, 2, 4);
  }
}

TEST(SessionSummaryTest, ListSessionsPutsBufferedActivityFirstAndPagesAcrossIt) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("log.db"), Buffering());
  for (const char* s : {"s-old", "s-mid", "s-new", "t-other"}) {
    ASSERT_TRUE(AppendPair(*store, s, 100).ok());
  }
  ASSERT_TRUE(store->Flush().ok());
  // Rows say t-other, s-new, s-mid, s-old; buffered activity moves s-old, then s-mid, on top.
  ASSERT_TRUE(AppendPair(*store, "s-old", 200).ok());
  ASSERT_TRUE(AppendPair(*store, "s-mid", 300).ok());
  auto reader = store->NewReader();
  auto ids = [&](size_t limit, size_t offset, std::string_view contains) {
    std::vector<std::string> out;
    auto list = reader->ListSessions(limit, offset, contains);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    if (list.ok()) {
      for (const SessionSummary& s : *list) out.push_back(s.session_id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(10, 0, ""), (V{"s-mid", "s-old", "t-other", "s-new"}));
  EXPECT_EQ(ids(1, 1, ""), (V{"s-old"}));
  EXPECT_EQ(ids(2, 1, ""), (V{"s-old", "t-other"}));
  EXPECT_EQ(ids(10, 3, ""), (V{"s-new"}));
  EXPECT_EQ(ids(10, 1, "s-"), (V{"s-old", "s-new"}));
  EXPECT_EQ(ids(10, 0, "old"), (V{"s-old"}));
  auto list = reader->ListSessions(10, 0);
  ASSERT_TRUE(list.ok());
  ExpectSummary((*list)[0], 4, 24, 2, 12);
  ExpectSummary((*list)[2], 2, 12, 1, 8);
  // A soft-deleted session leaves the listing (the delete writes the summaries first).
  ASSERT_TRUE(store->DeleteSession("s-old", false).ok());
  EXPECT_EQ(ids(10, 0, ""), (V{"s-mid", "t-other", "s-new"}));
}

// A log where session x has events at offsets 1..2 (summarised) and after
// two full chunks of y's events (buffered: x's row still says last_offset 2).
std::unique_ptr<LogStore> LogWithLateBufferedEvents(const std::string& path, int64_t* x_late) {
  auto store = OpenOrDie(path, Buffering());
  EXPECT_TRUE(AppendPair(*store, "x", 100).ok());
  EXPECT_TRUE(AppendMany(*store, 70'000, 1).ok());  // session s0, chunks 0..2
  EXPECT_TRUE(store->Flush().ok());
  EXPECT_TRUE(AppendMany(*store, 30'000, 1).ok());
  *x_late = store->head() + 1;
  EXPECT_TRUE(AppendPair(*store, "x", 200).ok());
  return store;
}

TEST(SessionSummaryTest, ReadingOneSessionFindsEventsItsRowDoesNotShowYet) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  int64_t late = 0;
  auto store = LogWithLateBufferedEvents(path, &late);
  const Filter x = ParseOrDie(R"({"session_ids":["x"]})");
  const std::vector<int64_t> want{1, 2, late, late + 1};
  EXPECT_EQ(Offsets(*store->NewReader()->Read(0, x, 100, 100)), want);
  EXPECT_EQ(Offsets(*store->NewReader()->Read(2, x, 100, 100)),
            (std::vector<int64_t>{late, late + 1}));
  // Another process reads the file alone, with no buffered summaries at hand.
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT last_offset FROM sessions WHERE session_id = 'x'"), "2");
  // Its tail after sessions_through is listed nowhere: read by offset, a page
  // of at most max_scan examined rows at a time.
  auto other = OpenOrDie(path, ReadOnly());
  int pages = 0;
  EXPECT_EQ(Offsets(ReadAllPages(*other->NewReader(), 0, other->head(), x, 100, 100, &pages)),
            want);
  EXPECT_GT(pages, 100);  // the 30,000 unlisted rows, 100 per page
}

TEST(SessionSummaryTest, HardDeleteRemovesEventsItsRowDidNotShowYet) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  int64_t late = 0;
  auto store = LogWithLateBufferedEvents(path, &late);
  ASSERT_TRUE(store->DeleteSession("x", true).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM events WHERE log_offset IN (1, 2, " +
                      std::to_string(late) + ", " + std::to_string(late + 1) + ")"),
            "0");
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'event_count'"), "100000");
}

TEST(SessionSummaryTest, RetentionKeepsASessionWhoseNewestEventsAreBuffered) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("log.db"), Buffering());
  ASSERT_TRUE(AppendPair(*store, "a", 100).ok());
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(AppendPair(*store, "a", 200).ok());  // a's row still says last_offset 2
  RetentionPolicy keep_two;
  keep_two.max_events = 2;
  auto deleted = store->RunRetentionStep(keep_two, 0, 100);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, 2);
  auto a = store->NewReader()->GetSession("a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ExpectSummary(*a, 4, 24, 2, 4);
}

}  // namespace
}  // namespace tailbus::testing

namespace tailbus::testing {
namespace {

// s0 at 1, 2, 3, then 600 ms later s1 at 4 and s0 at 5, 6, 7. With a 500 ms
// interval, that append writes s0 (due: buffered 600 ms) and not s1 (just
// buffered): s0 is written past sessions_through (3), and is newer than s1.
std::unique_ptr<LogStore> OpenWithS0WrittenPastTheWatermark(const std::string& path) {
  StorageOptions o = Buffering();
  o.session_flush_interval_ms = 500;
  auto store = OpenOrDie(path, o);
  EXPECT_TRUE(AppendMany(*store, 3, 1).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  Batch b;
  b.Add(Ev("s1")).Add(Ev("s0")).Add(Ev("s0")).Add(Ev("s0"));
  EXPECT_TRUE(AppendBatch(*store, b).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "3");
  EXPECT_EQ(raw.Query("SELECT event_count FROM sessions WHERE session_id = 's0'"), "6");
  EXPECT_EQ(raw.Query("SELECT event_count FROM sessions WHERE session_id = 's1'"), "0");
  return store;
}

void ExpectBothSessionsExact(LogStore& store) {
  auto reader = store.NewReader();
  EXPECT_EQ(reader->GetSession("s0")->event_count, 6);
  EXPECT_EQ(reader->GetSession("s0")->last_offset, 7);
  EXPECT_EQ(reader->GetSession("s1")->event_count, 1);
  EXPECT_EQ(reader->GetSession("s1")->last_offset, 4);
  const Filter s0 = ParseOrDie(R"({"session_ids":["s0"]})");
  const Filter s1 = ParseOrDie(R"({"session_ids":["s1"]})");
  EXPECT_EQ(Offsets(ReadAllPages(*reader, 0, 7, s0, 2, 100)),
            (std::vector<int64_t>{1, 2, 3, 5, 6, 7}));
  EXPECT_EQ(Offsets(ReadAllPages(*reader, 0, 7, s1, 2, 100)), (std::vector<int64_t>{4}));
}

TEST(SessionSummaryTest, SessionsWrittenPastTheWatermarkReadExactlyInTheWritersProcess) {
  TempDir dir;
  auto store = OpenWithS0WrittenPastTheWatermark(dir.File("log.db"));
  ExpectBothSessionsExact(*store);
}

TEST(SessionSummaryTest, CrashAfterSomeSessionsWereWrittenCountsEachEventOnce) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  auto store = OpenWithS0WrittenPastTheWatermark(path);
  CopyLogFiles(path, dir.File("ro.db"));
  CopyLogFiles(path, dir.File("rw.db"));
  {  // Another process: s0's segment past sessions_through is not read twice.
    auto ro = OpenOrDie(dir.File("ro.db"), ReadOnly());
    ExpectBothSessionsExact(*ro);
  }
  auto reopened = OpenOrDie(dir.File("rw.db"), Buffering());
  ExpectBothSessionsExact(*reopened);
  RawDb raw(dir.File("rw.db"));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "7");
  EXPECT_EQ(raw.Query("SELECT group_concat(event_count) FROM sessions ORDER BY session_key"),
            "6,1");
}

TEST(SessionSummaryTest, ListSessionsOrdersWrittenAndBufferedSessionsByActivity) {
  TempDir dir;
  auto store = OpenWithS0WrittenPastTheWatermark(dir.File("log.db"));
  auto reader = store->NewReader();
  // s0 (written, last 7) is newer than s1 (buffered, last 4).
  auto all = reader->ListSessions(10, 0, "");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].session_id, "s0");
  EXPECT_EQ((*all)[1].session_id, "s1");
  EXPECT_EQ((*all)[1].event_count, 1);
  auto second = reader->ListSessions(1, 1, "");
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].session_id, "s1");
}

}  // namespace
}  // namespace tailbus::testing

namespace tailbus::testing {
namespace {

TEST(SessionSummaryTest, AppendFailingWhileWritingSessionsLeavesTheBufferAsItWas) {
  TempDir dir;
  const std::string path = dir.File("log.db");
  StorageOptions o = Buffering();
  o.session_flush_events = 10;
  auto store = OpenOrDie(path, o);
  auto reader = store->NewReader();
  ASSERT_TRUE(AppendMany(*store, 3, 3).ok());  // s0, s1, s2 at 1, 2, 3: buffered
  RawDb raw(path);
  // A real write failure after the batch's sessions were queued: 8 events of
  // a new session bring the buffer to 11, so the append writes every session,
  // and the segment insert fails.
  raw.Exec(
      "CREATE TRIGGER fail_segments BEFORE INSERT ON session_segments "
      "BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
  Batch big;
  for (int i = 0; i < 8; ++i) big.Add(Ev("s9"));
  Status st = AppendBatch(*store, big);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("injected fault"), std::string::npos) << st.ToString();
  EXPECT_EQ(store->head(), 3);
  EXPECT_EQ(reader->GetSession("s9").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "0");
  raw.Exec("DROP TRIGGER fail_segments");

  // The failed batch left nothing buffered: 4 events are below the bound, so
  // this append writes no session.
  Batch one;
  one.Add(Ev("s0"));
  ASSERT_TRUE(AppendBatch(*store, one).ok());
  EXPECT_EQ(store->head(), 4);
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "0");
  EXPECT_EQ(raw.Query("SELECT sum(event_count) FROM sessions"), "0");
  EXPECT_EQ(reader->GetSession("s0")->event_count, 2);
  const Filter s0 = ParseOrDie(R"({"session_ids":["s0"]})");
  EXPECT_EQ(Offsets(ReadAllPages(*reader, 0, 4, s0, 10, 100)), (std::vector<int64_t>{1, 4}));
  // Written, each event once.
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "4");
  EXPECT_EQ(raw.Query("SELECT sum(event_count) FROM sessions"), "4");
  EXPECT_EQ(reader->GetSession("s0")->event_count, 2);
}

}  // namespace
}  // namespace tailbus::testing
