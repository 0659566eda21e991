// Reading: by offset and by session, filters, pagination, bounds, listings,
// and a reader running against a concurrent writer.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
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
using testing::ReadAllPages;
using testing::TempDir;
using testing::TestEvent;

// 30 events: sessions a, b, c in turn; every third of session a is an error;
// tool_name "grep" on offsets divisible by 5.
std::unique_ptr<LogStore> MakeMixedLog(const TempDir& dir) {
  auto store = OpenOrDie(dir.File("x.db"));
  Batch batch;
  for (int i = 1; i <= 30; ++i) {
    const char* session = i % 3 == 1 ? "a" : i % 3 == 2 ? "b" : "c";
    TestEvent e = Ev(session, (i % 9 == 1) ? "error" : "message", 1000 + i);
    if (i % 5 == 0) e.header.tool_name = "grep";
    e.header.cost_tokens = i;
    batch.Add(std::move(e));
  }
  EXPECT_TRUE(AppendBatch(*store, batch).ok());
  return store;
}

TEST(LogReaderTest, ReadsByOffsetWithFilter) {
  TempDir dir;
  auto store = MakeMixedLog(dir);
  auto reader = store->NewReader();

  auto all = reader->Read(0, Filter(), 100, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->events.size(), 30u);
  EXPECT_EQ(all->next_after, 30);

  auto grep = reader->Read(0, ParseOrDie(R"({"tool_names":["grep"]})"), 100, 100);
  ASSERT_TRUE(grep.ok());
  EXPECT_EQ(Offsets(*grep), (std::vector<int64_t>{5, 10, 15, 20, 25, 30}));

  auto costly = reader->Read(10, ParseOrDie(R"({"cost_threshold_tokens":25})"), 100, 100);
  ASSERT_TRUE(costly.ok());
  EXPECT_EQ(Offsets(*costly), (std::vector<int64_t>{26, 27, 28, 29, 30}));

  auto errors = reader->Read(0, ParseOrDie(R"({"event_types":["error"]})"), 100, 100);
  ASSERT_TRUE(errors.ok());
  EXPECT_EQ(Offsets(*errors), (std::vector<int64_t>{1, 10, 19, 28}));
  for (const EventPtr& e : errors->events) EXPECT_EQ(e->header.session_id, "a");
}

TEST(LogReaderTest, ReadsBySessionMergedByOffset) {
  TempDir dir;
  auto store = MakeMixedLog(dir);
  auto reader = store->NewReader();

  auto one = reader->Read(0, ParseOrDie(R"({"session_id":"b"})"), 100, 100);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(Offsets(*one), (std::vector<int64_t>{2, 5, 8, 11, 14, 17, 20, 23, 26, 29}));
  EXPECT_EQ(one->next_after, 30);  // everything of b up to head was examined

  auto two = reader->Read(3, ParseOrDie(R"({"session_ids":["c","a"]})"), 100, 100);
  ASSERT_TRUE(two.ok());
  std::vector<int64_t> expected;
  for (int64_t o = 4; o <= 30; ++o) {
    if (o % 3 != 2) expected.push_back(o);
  }
  EXPECT_EQ(Offsets(*two), expected);
  for (size_t i = 0; i < two->events.size(); ++i) {
    const int64_t o = two->events[i]->offset;
    EXPECT_EQ(two->events[i]->header.session_id, o % 3 == 1 ? "a" : "c");
  }

  auto filtered =
      reader->Read(0, ParseOrDie(R"({"session_ids":["a","b"],"tool_names":["grep"]})"), 100, 100);
  ASSERT_TRUE(filtered.ok());
  EXPECT_EQ(Offsets(*filtered), (std::vector<int64_t>{5, 10, 20, 25}));

  auto missing = reader->Read(0, ParseOrDie(R"({"session_id":"zzz"})"), 100, 100);
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->events.empty());
  EXPECT_EQ(missing->next_after, 30);
}

TEST(LogReaderTest, ReadsManySessionIdsThroughTheOffsetScan) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 400, 40).ok());  // s0..s39
  std::string json = R"({"session_ids":[)";
  for (int i = 0; i < 20; ++i) json += (i ? ",\"s" : "\"s") + std::to_string(i * 2) + "\"";
  json += "]}";
  auto page = store->NewReader()->Read(0, ParseOrDie(json), 1000, 1000);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->events.size(), 200u);
  for (const EventPtr& e : page->events) EXPECT_EQ((e->offset - 1) % 2, 0);
}

TEST(LogReaderTest, DeliveryReadsCarryTheStoredJsonAndSessionOnly) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  Batch batch;
  for (int i = 0; i < 30; ++i) {
    TestEvent e = Ev("s" + std::to_string(i % 3), i % 2 ? "tool_call" : "message");
    e.header.tool_name = "search";
    e.header.event_id = "event-id-longer-than-the-small-string-" + std::to_string(i);
    batch.Add(std::move(e));
  }
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  auto reader = store->NewReader();
  for (const char* filter : {"{}", R"({"session_id":"s1"})", R"({"event_types":["tool_call"]})",
                             R"({"session_ids":["s0","s2"],"tool_names":["search"]})"}) {
    SCOPED_TRACE(filter);
    const Filter f = ParseOrDie(filter);
    auto full = reader->Read(0, f, 100, 100, ReadDetail::kFull);
    auto delivery = reader->Read(0, f, 100, 100, ReadDetail::kDelivery);
    ASSERT_TRUE(full.ok() && delivery.ok());
    ASSERT_EQ(Offsets(*delivery), Offsets(*full));
    ASSERT_FALSE(full->events.empty());
    EXPECT_EQ(delivery->next_after, full->next_after);
    for (size_t i = 0; i < full->events.size(); ++i) {
      const CommittedEvent& a = *full->events[i];
      const CommittedEvent& b = *delivery->events[i];
      EXPECT_EQ(std::string_view(b.json), std::string_view(a.json));
      EXPECT_EQ(b.ingested_at_ms, a.ingested_at_ms);
      EXPECT_EQ(b.header.session_id, a.header.session_id);
      EXPECT_EQ(a.header.tool_name, "search");
      EXPECT_EQ(b.header.event_type, "");  // not filled in
      EXPECT_EQ(b.header.event_id, "");
    }
  }
}

TEST(LogReaderTest, PaginatesWithNextAfter) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 2500, 7).ok());
  auto reader = store->NewReader();
  for (const char* filter : {"{}", R"({"session_id":"s3"})", R"({"session_ids":["s1","s6"]})"}) {
    SCOPED_TRACE(filter);
    Filter f = ParseOrDie(filter);
    int pages = 0;
    const std::vector<int64_t> seen =
        Offsets(ReadAllPages(*reader, 0, store->head(), f, 100, 100'000, &pages));
    const int64_t after = store->head();
    auto expected = reader->Read(0, f, 100'000, 100'000);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(seen, Offsets(*expected));
    EXPECT_GE(pages, static_cast<int>(seen.size() / 100));
    // At head: nothing new, next_after stays put.
    auto tail = reader->Read(after, f, 100, 100);
    ASSERT_TRUE(tail.ok());
    EXPECT_TRUE(tail->events.empty());
    EXPECT_EQ(tail->next_after, after);
  }
}

TEST(LogReaderTest, MaxScanBoundsSparseFilter) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  Batch batch;
  for (int i = 1; i <= 1000; ++i) batch.Add(Ev("s", i == 950 ? "rare" : "common"));
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  auto reader = store->NewReader();
  Filter rare = ParseOrDie(R"({"event_types":["rare"]})");
  int64_t after = 0;
  int calls = 0;
  std::vector<int64_t> found;
  while (after < 1000) {
    auto page = reader->Read(after, rare, 10, 100);
    ASSERT_TRUE(page.ok());
    EXPECT_LE(page->next_after - after, 100);  // examined at most max_scan rows
    for (const EventPtr& e : page->events) found.push_back(e->offset);
    after = page->next_after;
    ++calls;
  }
  EXPECT_EQ(found, (std::vector<int64_t>{950}));
  EXPECT_EQ(calls, 10);

  // The session path honours max_scan too.
  Filter rare_in_s = ParseOrDie(R"({"session_id":"s","event_types":["rare"]})");
  auto page = reader->Read(0, rare_in_s, 10, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->events.empty());
  EXPECT_EQ(page->next_after, 100);
}

// Every field of a read event equals what was appended, byte for byte, with
// JSON sizes from empty to larger than one of the page's text chunks (64 KiB),
// over pages that split the log at every size.
TEST(LogReaderTest, ReadEventsEqualWhatWasAppendedFieldByField) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  Batch batch;
  const size_t json_sizes[] = {2, 100, 4000, 5000, 70'000, 300, 65'536, 10};
  for (int i = 0; i < 40; ++i) {
    TestEvent e = Ev(i % 2 ? "session-with-a-rather-long-id-" + std::to_string(i % 4) : "s",
                     i % 3 ? "tool_result" : "message", 1'700'000'000'000 + i);
    e.header.event_id = "01HV" + std::string(22, static_cast<char>('A' + i % 26));
    if (i % 4 == 0) e.header.agent_id = "agent-" + std::to_string(i);
    if (i % 5 == 0) e.header.tool_name = "grep";
    if (i % 6 == 0) e.header.status = "ok";
    if (i % 7 == 0) e.header.model = "a-model-name-longer-than-sso";
    if (i % 8 == 0) e.header.feature_id = "f";
    if (i % 9 == 0) e.header.parent_event_id = "parent-" + std::to_string(i);
    if (i % 2 == 0) e.header.cost_tokens = i * 11;
    if (i % 3 == 0) e.header.duration_ms = i * 0.25;
    e.ingested_at_ms = 1'700'000'000'500 + i;
    const size_t size = json_sizes[i % std::size(json_sizes)];
    e.json = size == 2
                 ? "{}"
                 : "{\"p\":\"" + std::string(size - 8, static_cast<char>('a' + i % 26)) + "\"}";
    batch.Add(std::move(e));
  }
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  auto reader = store->NewReader();

  for (size_t limit : {1, 3, 7, 40}) {
    for (const char* filter : {"{}", R"({"session_id":"s"})", R"({"event_types":["message"]})"}) {
      SCOPED_TRACE(::testing::Message() << "limit " << limit << " filter " << filter);
      const Filter f = ParseOrDie(filter);
      const std::vector<EventPtr> read = ReadAllPages(*reader, 0, store->head(), f, limit, 1000);
      size_t n = 0;
      int64_t offset = 1;
      for (const TestEvent& want : batch.events()) {
        if (!f.Matches(want.header.fields())) {
          ++offset;
          continue;
        }
        ASSERT_LT(n, read.size());
        const CommittedEvent& got = *read[n++];
        EXPECT_EQ(got.offset, offset++);
        EXPECT_EQ(got.ingested_at_ms, want.ingested_at_ms);
        EXPECT_EQ(got.json.view(), want.json);
        const EventHeader& g = got.header;
        const EventHeader& w = want.header;
        EXPECT_EQ(g.session_id, w.session_id);
        EXPECT_EQ(g.event_type, w.event_type);
        EXPECT_EQ(g.event_id, w.event_id);
        EXPECT_EQ(g.timestamp_ms, w.timestamp_ms);
        EXPECT_EQ(g.agent_id, w.agent_id);
        EXPECT_EQ(g.tool_name, w.tool_name);
        EXPECT_EQ(g.status, w.status);
        EXPECT_EQ(g.model, w.model);
        EXPECT_EQ(g.feature_id, w.feature_id);
        EXPECT_EQ(g.parent_event_id, w.parent_event_id);
        EXPECT_EQ(g.cost_tokens, w.cost_tokens);
        EXPECT_EQ(g.duration_ms, w.duration_ms);
      }
      EXPECT_EQ(n, read.size());
    }
  }
}

// Read events share one block per page: any one of them keeps its JSON and
// header valid after the page, the rest of the page, the reader and the store
// are gone (ASan would flag a read of freed memory).
TEST(LogReaderTest, EventOutlivesItsPageReaderAndStore) {
  TempDir dir;
  EventPtr kept;
  {
    auto store = OpenOrDie(dir.File("x.db"));
    ASSERT_TRUE(AppendMany(*store, 500, 5).ok());
    auto reader = store->NewReader();
    auto page = reader->Read(0, Filter(), 500, 500);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->events.size(), 500u);
    kept = page->events[321];
  }
  EXPECT_EQ(kept->offset, 322);
  EXPECT_EQ(kept->header.session_id, "s1");
  EXPECT_EQ(kept->header.event_id, "ev-322");
  EXPECT_EQ(kept->json,
            R"({"offset":322,"session_id":"s1","event_type":"message","event_id":"ev-322"})");
}

// A copy of a read event owns its bytes: it stays valid once every event of the
// page (and so the page's block) is released.
TEST(LogReaderTest, CopyOfReadEventOwnsItsJson) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 3, 1).ok());
  CommittedEvent copy;
  {
    auto page = store->NewReader()->Read(0, Filter(), 10, 10);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->events.size(), 3u);
    copy = *page->events[1];
    EXPECT_GE(copy.json.OwnedBytes(), copy.json.size());
  }
  EXPECT_EQ(copy.offset, 2);
  EXPECT_EQ(copy.json,
            R"({"offset":2,"session_id":"s0","event_type":"message","event_id":"ev-2"})");
}

// A one-session filter with another criterion still matches every row (the
// session-only shortcut must not apply), across pages and index chunks.
TEST(LogReaderTest, SessionFilterWithAnotherCriterionMatchesEachRow) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  Batch batch;
  for (int i = 1; i <= 300; ++i) {
    TestEvent e = Ev(i % 3 == 0 ? "a" : "b", i % 4 == 0 ? "error" : "message");
    batch.Add(std::move(e));
  }
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  auto reader = store->NewReader();
  for (size_t limit : {1, 5, 1000}) {
    SCOPED_TRACE(limit);
    std::vector<int64_t> seen;
    int64_t after = 0;
    while (after < store->head()) {
      auto page = reader->Read(after, ParseOrDie(R"({"session_id":"a","event_types":["error"]})"),
                               limit, 1000);
      ASSERT_TRUE(page.ok());
      for (const EventPtr& e : page->events) {
        EXPECT_EQ(e->header.session_id, "a");
        EXPECT_EQ(e->header.event_type, "error");
        seen.push_back(e->offset);
      }
      after = page->next_after;
    }
    std::vector<int64_t> want;
    for (int64_t o = 12; o <= 300; o += 12) want.push_back(o);
    EXPECT_EQ(seen, want);
  }
}

// One session across many index chunks (2^15 offsets each), read in pages that
// end mid-chunk (by limit and by max_scan): the pages join up exactly, with no
// gap and no duplicate.
TEST(LogReaderTest, SessionPagesEndingMidChunkResumeExactly) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  const int n = 3 * (1 << 15) + 100;
  ASSERT_TRUE(AppendMany(*store, n, 7).ok());  // s3 at offsets 4, 11, 18, …
  auto reader = store->NewReader();
  std::vector<int64_t> want;
  for (int64_t o = 4; o <= n; o += 7) want.push_back(o);
  const Filter s3 = ParseOrDie(R"({"session_id":"s3"})");
  for (auto [limit, max_scan] : {std::pair<size_t, size_t>{13, 4096}, {1000, 50}, {n, n}}) {
    SCOPED_TRACE(::testing::Message() << "limit " << limit << " max_scan " << max_scan);
    EXPECT_EQ(Offsets(ReadAllPages(*reader, 0, store->head(), s3, limit, max_scan)), want);
  }
}

TEST(LogReaderTest, LimitStopsAtLastReturnedEvent) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 50, 5).ok());
  auto page = store->NewReader()->Read(10, Filter(), 7, 1000);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Offsets(*page), (std::vector<int64_t>{11, 12, 13, 14, 15, 16, 17}));
  EXPECT_EQ(page->next_after, 17);
}

TEST(LogReaderTest, NegativeAfterIsInvalid) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  EXPECT_EQ(store->NewReader()->Read(-1, Filter(), 10, 10).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(LogReaderTest, ListSessionsNewestActivityFirst) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  Batch batch;
  for (const char* s : {"alpha", "beta", "gamma", "alpha", "delta", "beta"}) batch.Add(Ev(s));
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  auto reader = store->NewReader();
  auto all = reader->ListSessions(10, 0);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> ids;
  for (const SessionSummary& s : *all) ids.push_back(s.session_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"beta", "delta", "alpha", "gamma"}));
  EXPECT_EQ((*all)[0].last_offset, 6);
  EXPECT_EQ((*all)[0].first_offset, 2);
  EXPECT_EQ((*all)[0].event_count, 2);

  auto paged = reader->ListSessions(2, 1);
  ASSERT_TRUE(paged.ok());
  ASSERT_EQ(paged->size(), 2u);
  EXPECT_EQ((*paged)[0].session_id, "delta");
  EXPECT_EQ((*paged)[1].session_id, "alpha");

  auto contains = reader->ListSessions(10, 0, "ta");
  ASSERT_TRUE(contains.ok());
  ids.clear();
  for (const SessionSummary& s : *contains) ids.push_back(s.session_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"beta", "delta"}));
}

TEST(LogReaderTest, StatsCountEventsAndSessions) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 120, 12).ok());
  auto stats = store->NewReader()->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->head, 120);
  EXPECT_EQ(stats->earliest, 1);
  EXPECT_EQ(stats->event_count, 120);
  EXPECT_EQ(stats->session_count, 12);
  EXPECT_GT(stats->file_bytes, 16384);
  EXPECT_EQ(stats->epoch, store->epoch());
  EXPECT_EQ(stats->schema_version, SchemaVersion());
}

TEST(LogReaderTest, ReaderOutlivesStore) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  ASSERT_TRUE(AppendMany(*store, 10, 2).ok());
  auto reader = store->NewReader();
  store.reset();
  auto page = reader->Read(0, Filter(), 100, 100);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->events.size(), 10u);
}

TEST(LogReaderTest, ReaderConcurrentWithWriterSeesWholeTransactions) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  constexpr int kBatch = 100;
  constexpr int kBatches = 200;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int b = 0; b < kBatches; ++b) {
      if (!AppendMany(*store, kBatch, 13).ok()) failures.fetch_add(1);
    }
    done.store(true);
  });
  auto check_reader = [&](const char* filter_json) {
    auto reader = store->NewReader();
    Filter filter = ParseOrDie(filter_json);
    const bool by_session = !filter.session_ids().empty();
    int64_t after = 0;
    int64_t total = 0;
    int reads = 0;
    while (true) {
      const bool finished = done.load();
      auto page = reader->Read(after, filter, 1'000'000, 1'000'000);
      if (!page.ok()) {
        ADD_FAILURE() << page.status().ToString();
        failures.fetch_add(1);
        return;
      }
      ++reads;
      int64_t expect = after + 1;
      for (const EventPtr& e : page->events) {
        if (by_session) {
          if (e->offset <= after || e->header.session_id != "s4") failures.fetch_add(1);
        } else if (e->offset != expect) {
          failures.fetch_add(1);  // a page is contiguous in offsets
        }
        expect = e->offset + 1;
      }
      total += static_cast<int64_t>(page->events.size());
      // Whole transactions only: each page ends at a batch boundary.
      if (page->next_after % kBatch != 0) failures.fetch_add(1);
      after = page->next_after;
      if (finished && after == int64_t{kBatch} * kBatches) break;
    }
    if (!by_session) {
      EXPECT_EQ(total, int64_t{kBatch} * kBatches);
    }
    EXPECT_GT(reads, 1);
  };
  std::thread reader_all([&] { check_reader("{}"); });
  std::thread reader_session([&] { check_reader(R"({"session_id":"s4"})"); });
  writer.join();
  reader_all.join();
  reader_session.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace tailbus
