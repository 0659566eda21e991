// Appending: round trips, offset rules, failures that must store nothing.
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
using testing::OpenOrDie;
using testing::RawDb;
using testing::TempDir;
using testing::TestEvent;

TEST(LogStoreAppendTest, RoundTripsEveryColumn) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  TestEvent full = Ev("sess-1", "tool_call", 1'700'000'000'123);
  full.ingested_at_ms = 1'700'000'000'456;
  EventHeader& h = full.header;
  h.event_id = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
  h.agent_id = "agent-7";
  h.tool_name = "search";
  h.status = "ok";
  h.model = "gpt-x";
  h.feature_id = "feat-9";
  h.parent_event_id = "parent-1";
  h.cost_tokens = 1234;
  h.duration_ms = 56.25;
  full.json = "{\"offset\":1,\"ingested_at\":\"x\",\"unicode\":\"h\xc3\xa9llo \xe2\x9c\x93\"}";
  TestEvent bare = Ev("sess-2", "message", 5);  // every optional field absent
  bare.ingested_at_ms = 1'700'000'000'457;
  bare.header.event_id = "e2";
  bare.json = "{}";
  Batch batch;
  batch.Add(full).Add(bare);
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  EXPECT_EQ(store->head(), 2);

  auto page = store->NewReader()->Read(0, Filter(), 10, 10);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->events.size(), 2u);
  const CommittedEvent& a = *page->events[0];
  EXPECT_EQ(a.offset, 1);
  EXPECT_EQ(a.ingested_at_ms, 1'700'000'000'456);
  EXPECT_EQ(a.header.session_id, "sess-1");
  EXPECT_EQ(a.header.event_type, "tool_call");
  EXPECT_EQ(a.header.event_id, h.event_id);
  EXPECT_EQ(a.header.timestamp_ms, 1'700'000'000'123);
  EXPECT_EQ(a.header.agent_id, "agent-7");
  EXPECT_EQ(a.header.tool_name, "search");
  EXPECT_EQ(a.header.status, "ok");
  EXPECT_EQ(a.header.model, "gpt-x");
  EXPECT_EQ(a.header.feature_id, "feat-9");
  EXPECT_EQ(a.header.parent_event_id, "parent-1");
  EXPECT_EQ(a.header.cost_tokens, std::optional<int64_t>(1234));
  EXPECT_EQ(a.header.duration_ms, std::optional<double>(56.25));
  EXPECT_EQ(a.json, full.json);

  const CommittedEvent& b = *page->events[1];
  EXPECT_EQ(b.offset, 2);
  EXPECT_EQ(b.header.session_id, "sess-2");
  EXPECT_EQ(b.header.timestamp_ms, 5);
  EXPECT_TRUE(b.header.agent_id.empty());
  EXPECT_TRUE(b.header.tool_name.empty());
  EXPECT_TRUE(b.header.status.empty());
  EXPECT_TRUE(b.header.model.empty());
  EXPECT_TRUE(b.header.feature_id.empty());
  EXPECT_TRUE(b.header.parent_event_id.empty());
  EXPECT_FALSE(b.header.cost_tokens.has_value());
  EXPECT_FALSE(b.header.duration_ms.has_value());
  EXPECT_EQ(b.json, "{}");

  // The header column follows schema.sql's "header encoding v1" byte for byte:
  // flags 0, timestamp 5, "message", "e2", six absent strings.
  RawDb raw(dir.File("x.db"));
  EXPECT_EQ(raw.Query("SELECT hex(header) FROM events WHERE log_offset = 2"),
            "00"
            "0500000000000000"
            "076D657373616765"
            "026532"
            "000000000000");
  EXPECT_EQ(raw.Query("SELECT body FROM events WHERE log_offset = 2"), "{}");
}

TEST(LogStoreAppendTest, MalformedHeaderReadsAsCorruption) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 3, 1).ok());
  {
    RawDb raw(dir.File("x.db"));
    raw.Exec("UPDATE events SET header = x'0102' WHERE log_offset = 2");
  }
  auto page = store->NewReader()->Read(0, Filter(), 10, 10);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kCorruption);
  EXPECT_NE(page.status().message().find("offset 2"), std::string::npos);
}

TEST(LogStoreAppendTest, OffsetsNonContiguousRejected) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 3, 1).ok());
  Batch batch;
  batch.Add(Ev("a")).Add(Ev("b")).Add(Ev("c"));

  std::vector<AppendRecord> wrong_start = batch.Records(5);
  Status st = store->Append(wrong_start);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("contiguous"), std::string::npos) << st.message();

  std::vector<AppendRecord> gap = batch.Records(4);
  gap[2].offset = 7;
  EXPECT_EQ(store->Append(gap).code(), StatusCode::kInvalidArgument);

  std::vector<AppendRecord> dup = batch.Records(4);
  dup[1].offset = 4;
  EXPECT_EQ(store->Append(dup).code(), StatusCode::kInvalidArgument);

  std::vector<AppendRecord> replay = batch.Records(1);  // already committed offsets
  EXPECT_EQ(store->Append(replay).code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(store->head(), 3);
  auto stats = store->NewReader()->Stats();
  EXPECT_EQ(stats->event_count, 3);
  EXPECT_EQ(stats->session_count, 1);

  std::vector<AppendRecord> good = batch.Records(4);
  EXPECT_TRUE(store->Append(good).ok());
  EXPECT_EQ(store->head(), 6);
}

TEST(LogStoreAppendTest, EmptyBatchIsNoop) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  EXPECT_TRUE(store->Append({}).ok());
  EXPECT_EQ(store->head(), 0);
}

TEST(LogStoreAppendTest, AppendRollsBackWholeBatchOnDiskFull) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  StorageOptions small;
  small.page_size = 4096;
  small.max_page_count = 40;  // 160 KiB
  Batch first;
  for (int i = 0; i < 50; ++i) first.Add(Ev("s" + std::to_string(i % 5)));
  Batch big;
  for (int i = 0; i < 2000; ++i) {
    TestEvent e = Ev("big" + std::to_string(i % 7));
    e.json = "{\"pad\":\"" + std::string(300, 'x') + "\"}";
    big.Add(std::move(e));
  }
  std::string epoch;
  {
    auto store = OpenOrDie(path, small);
    ASSERT_NE(store, nullptr);
    epoch = store->epoch();
    ASSERT_TRUE(AppendBatch(*store, first).ok());
    auto reader = store->NewReader();
    Status st = AppendBatch(*store, big);
    ASSERT_EQ(st.code(), StatusCode::kDiskFull) << st.ToString();
    EXPECT_NE(st.message().find("full"), std::string::npos) << st.message();
    EXPECT_EQ(store->head(), 50);
    auto page = reader->Read(0, Filter(), 10'000, 10'000);
    ASSERT_TRUE(page.ok());
    EXPECT_EQ(page->events.size(), 50u);
    EXPECT_EQ(page->next_after, 50);
    auto stats = reader->Stats();
    EXPECT_EQ(stats->event_count, 50);
    EXPECT_EQ(stats->session_count, 5);  // no session row of the failed batch
    auto listed = reader->ListSessions(100, 0);
    ASSERT_TRUE(listed.ok());
    for (const SessionSummary& s : *listed)
      EXPECT_EQ(s.session_id.rfind("big", 0), std::string::npos);
    // Retrying while still full fails the same way, storing nothing.
    EXPECT_EQ(AppendBatch(*store, big).code(), StatusCode::kDiskFull);
    EXPECT_EQ(store->head(), 50);
    EXPECT_EQ(reader->GetSession("big1").status().code(), StatusCode::kNotFound);
    // The store stays usable: a small batch still fits, and a session first
    // seen in the failed batch starts cleanly.
    Batch small_batch;
    small_batch.Add(Ev("big1")).Add(Ev("s0"));
    ASSERT_TRUE(AppendBatch(*store, small_batch).ok());
    EXPECT_EQ(store->head(), 52);
    auto big1 = reader->GetSession("big1");
    ASSERT_TRUE(big1.ok()) << big1.status().ToString();
    EXPECT_EQ(big1->first_offset, 51);
    EXPECT_EQ(big1->event_count, 1);
  }
  StorageOptions larger = small;
  larger.max_page_count = 100'000;
  auto store = OpenOrDie(path, larger);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->epoch(), epoch);
  EXPECT_EQ(store->head(), 52);
  Status st = AppendBatch(*store, big);  // the same batch, retried
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(store->head(), 2052);
  auto stats = store->NewReader()->Stats();
  EXPECT_EQ(stats->event_count, 2052);
  EXPECT_EQ(store->NewReader()->GetSession("big1")->event_count, 1 + 286);  // 2000/7 rounded up
  store.reset();
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM events"), "2052");
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'head'"), "2052");
}

TEST(LogStoreAppendTest, AppendFailsWithBusyAndSucceedsOnRetry) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  StorageOptions options;
  options.busy_timeout_ms = 50;
  auto store = OpenOrDie(path, options);
  ASSERT_TRUE(AppendMany(*store, 3, 1).ok());
  Batch batch;
  batch.Add(Ev("a")).Add(Ev("b"));
  {
    RawDb other(path);
    other.Exec("BEGIN IMMEDIATE");  // another writer holds the write lock
    Status st = AppendBatch(*store, batch);
    EXPECT_EQ(st.code(), StatusCode::kBusy) << st.ToString();
    EXPECT_EQ(store->head(), 3);
    other.Exec("ROLLBACK");
  }
  Status st = AppendBatch(*store, batch);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(store->head(), 5);
}

TEST(LogStoreAppendTest, SessionRowsAggregateWithinAndAcrossBatches) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  Batch one;
  TestEvent e1 = Ev("s", "message", 500);
  e1.header.cost_tokens = 10;
  TestEvent e2 = Ev("t", "message", 100);
  TestEvent e3 = Ev("s", "error", 300);  // error by type
  TestEvent e4 = Ev("s", "tool_call", 900);
  e4.header.status = "timeout";  // error by status
  e4.header.cost_tokens = 5;
  one.Add(e1).Add(e2).Add(e3).Add(e4);
  ASSERT_TRUE(AppendBatch(*store, one).ok());
  Batch two;
  TestEvent e5 = Ev("s", "message", 50);
  e5.header.status = "failed";
  TestEvent e6 = Ev("s", "message", 700);
  e6.header.status = "ok";
  e6.header.cost_tokens = 1;
  two.Add(e5).Add(e6);
  ASSERT_TRUE(AppendBatch(*store, two).ok());

  auto reader = store->NewReader();
  auto s = reader->GetSession("s");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->session_id, "s");
  EXPECT_EQ(s->first_offset, 1);
  EXPECT_EQ(s->last_offset, 6);
  EXPECT_EQ(s->first_time_ms, 50);
  EXPECT_EQ(s->last_time_ms, 900);
  EXPECT_EQ(s->event_count, 5);
  EXPECT_EQ(s->total_cost_tokens, 16);
  EXPECT_EQ(s->error_count, 3);
  auto t = reader->GetSession("t");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->first_offset, 2);
  EXPECT_EQ(t->last_offset, 2);
  EXPECT_EQ(t->event_count, 1);
  EXPECT_EQ(t->error_count, 0);
  EXPECT_EQ(reader->GetSession("nope").status().code(), StatusCode::kNotFound);

  // One session row per session, however many batches.
  RawDb raw(dir.File("x.db"));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM sessions"), "2");
}

TEST(LogStoreAppendTest, RecentEventIdsNewestWindowOldestFirst) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  Batch batch;
  for (int i = 0; i < 10; ++i) {
    TestEvent e = Ev("s");
    e.ingested_at_ms = 1000 + i * 10;  // 1000, 1010, … 1090
    e.header.event_id = "id" + std::to_string(i + 1);
    batch.Add(std::move(e));
  }
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  auto ids = store->RecentEventIds(1050, 100);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 5u);
  EXPECT_EQ((*ids)[0], std::make_pair(std::string("id6"), int64_t{6}));
  EXPECT_EQ((*ids)[4], std::make_pair(std::string("id10"), int64_t{10}));
  auto capped = store->RecentEventIds(0, 3);
  ASSERT_TRUE(capped.ok());
  ASSERT_EQ(capped->size(), 3u);
  EXPECT_EQ((*capped)[0].second, 8);
  EXPECT_EQ((*capped)[2].second, 10);
  EXPECT_TRUE(store->RecentEventIds(5000, 10)->empty());
}

TEST(LogStoreAppendTest, HeadIsNeverReusedAfterNewestRowsAreDeleted) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  {
    auto store = OpenOrDie(path);
    Batch batch;
    batch.Add(Ev("keep")).Add(Ev("gone")).Add(Ev("gone"));
    ASSERT_TRUE(AppendBatch(*store, batch).ok());
    ASSERT_TRUE(store->DeleteSession("gone", /*hard=*/true).ok());
    EXPECT_EQ(store->head(), 3);
  }
  auto store = OpenOrDie(path);
  EXPECT_EQ(store->head(), 3);
  ASSERT_TRUE(AppendMany(*store, 100, 3).ok());  // offsets 4..103 after the gap
  EXPECT_EQ(store->head(), 103);
  auto page = store->NewReader()->Read(1, Filter(), 1000, 1000);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 100u);
  for (size_t i = 0; i < page->events.size(); ++i) {
    EXPECT_EQ(page->events[i]->offset, static_cast<int64_t>(4 + i));
  }
}

TEST(LogStoreAppendTest, ManySessionsManyBatchesStayConsistent) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path);
  for (int b = 0; b < 20; ++b) ASSERT_TRUE(AppendMany(*store, 500, 37).ok());
  EXPECT_EQ(store->head(), 10'000);
  auto stats = store->NewReader()->Stats();
  EXPECT_EQ(stats->event_count, 10'000);
  EXPECT_EQ(stats->session_count, 37);
  store.reset();
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT sum(event_count) FROM sessions"), "10000");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM events e JOIN sessions s USING (session_key) "
                      "WHERE s.session_id = 's5'"),
            raw.Query("SELECT event_count FROM sessions WHERE session_id = 's5'"));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'retained_bytes'"),
            raw.Query("SELECT sum(length(CAST(body AS BLOB))) FROM events"));
  EXPECT_EQ(raw.Query("PRAGMA integrity_check"), "ok");
}

}  // namespace
}  // namespace tailbus
