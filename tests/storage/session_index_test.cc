// The per-session index (schema version 4: session_segments, one row per
// session per summary flush, plus the writer's buffered offsets): reads and
// hard deletes of sessions whose events span many flushes, and the migration
// of version 1 and version 3 files.
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
using testing::CopyLogFiles;
using testing::Ev;
using testing::Offsets;
using testing::OpenOrDie;
using testing::ParseOrDie;
using testing::RawDb;
using testing::ReadAllPages;
using testing::TempDir;

// Flushes every 1,000 events (and not by time), so a log of a few thousand
// events has many segment rows and a buffered tail.
StorageOptions FlushEvery1000() {
  StorageOptions o;
  o.session_flush_events = 1000;
  o.session_flush_interval_ms = int64_t{1} << 40;
  return o;
}

std::vector<int64_t> Range(int64_t first, int64_t last) {
  std::vector<int64_t> out;
  for (int64_t o = first; o <= last; ++o) out.push_back(o);
  return out;
}

// Session "a": offsets 1..10, then 5,000 events of sessions s0..s9 (five
// flushes), then 5 more of "a" at the head, still buffered by the writer.
int64_t MakeSpanningLog(LogStore& store) {
  Batch first;
  for (int i = 0; i < 10; ++i) first.Add(Ev("a"));
  EXPECT_TRUE(AppendBatch(store, first).ok());
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(AppendMany(store, 100, 10).ok());
  Batch last;
  for (int i = 0; i < 5; ++i) last.Add(Ev("a"));
  EXPECT_TRUE(AppendBatch(store, last).ok());
  EXPECT_EQ(store.head(), 5015);
  return store.head();
}

TEST(SessionIndexTest, ReadsOneSessionAcrossSegmentsAndTheBufferedTail) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path, FlushEvery1000());
  const int64_t head = MakeSpanningLog(*store);
  {
    RawDb raw(path);
    // Listed: a's first ten in one row; its last five only in the buffer.
    EXPECT_EQ(raw.Query("SELECT count(*) FROM session_segments WHERE session_key = 1"), "1");
    EXPECT_NE(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"),
              std::to_string(head));
  }
  auto reader = store->NewReader();
  const Filter a = ParseOrDie(R"({"session_ids":["a"]})");

  std::vector<int64_t> want = Range(1, 10);
  for (int64_t o : Range(head - 4, head)) want.push_back(o);
  auto all = reader->Read(0, a, 100, 4096);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Offsets(*all), want);
  EXPECT_EQ(all->next_after, head);

  // From inside the session, paginated across the listed and buffered parts.
  auto tail = reader->Read(7, a, 4, 4096);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(Offsets(*tail), (std::vector<int64_t>{8, 9, 10, head - 4}));
  EXPECT_EQ(tail->next_after, head - 4);
  auto rest = reader->Read(tail->next_after, a, 100, 4096);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(Offsets(*rest), Range(head - 3, head));

  // Two sessions merged by offset: a's first ten, then s3's (offset 11 + 3 + 10k).
  auto merged = reader->Read(0, ParseOrDie(R"({"session_ids":["s3","a"]})"), 13, 4096);
  ASSERT_TRUE(merged.ok());
  std::vector<int64_t> merged_want = Range(1, 10);
  for (int64_t o : {14, 24, 34}) merged_want.push_back(o);
  EXPECT_EQ(Offsets(*merged), merged_want);

  // A session starting mid-segment: every one of its events after the offset.
  auto s7 = reader->Read(2000, ParseOrDie(R"({"session_ids":["s7"]})"), 100'000, 100'000);
  ASSERT_TRUE(s7.ok());
  std::vector<int64_t> s7_want;
  for (int64_t o = 11 + 7; o <= head - 5; o += 10) {
    if (o > 2000) s7_want.push_back(o);
  }
  EXPECT_EQ(Offsets(*s7), s7_want);
}

TEST(SessionIndexTest, MaxScanCapsAMergedReadAtTheShortestSession) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"), FlushEvery1000());
  MakeSpanningLog(*store);
  auto reader = store->NewReader();
  // s1 and s2 alternate; at most 3 examined: s1's 12, 22, 32 and s2's 13, 23
  // (s2's third, 33, comes after the cap at 32 and waits for the next page).
  auto page = reader->Read(0, ParseOrDie(R"({"session_ids":["s1","s2"]})"), 100, 3);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(Offsets(*page), (std::vector<int64_t>{12, 13, 22}));
  EXPECT_EQ(page->next_after, 22);
  auto next = reader->Read(page->next_after, ParseOrDie(R"({"session_ids":["s1","s2"]})"), 100, 3);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(Offsets(*next), (std::vector<int64_t>{23, 32, 33}));
}

TEST(SessionIndexTest, AnotherProcessReadsTheUnlistedTailByOffset) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path, FlushEvery1000());
  const int64_t head = MakeSpanningLog(*store);
  StorageOptions ro;
  ro.read_only = true;
  auto other = OpenOrDie(path, ro);
  std::vector<int64_t> want = Range(1, 10);
  for (int64_t o : Range(head - 4, head)) want.push_back(o);
  auto page = other->NewReader()->Read(0, ParseOrDie(R"({"session_ids":["a"]})"), 100, 100'000);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(Offsets(*page), want);
  EXPECT_EQ(page->next_after, head);
}

TEST(SessionIndexTest, BusySessionIsListedInRowsOfAtMost1024Offsets) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path);  // flushes at close only: one flush of 5,000 offsets
  Batch batch;
  for (int i = 0; i < 5000; ++i) batch.Add(Ev("busy"));
  ASSERT_TRUE(AppendBatch(*store, batch).ok());
  ASSERT_TRUE(AppendMany(*store, 10, 2).ok());
  ASSERT_TRUE(store->Flush().ok());
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Query("SELECT count(*) || ',' || max(last_offset - first_offset + 1) FROM "
                        "session_segments WHERE session_key = 1"),
              "5,1024");
  }
  const Filter busy = ParseOrDie(R"({"session_ids":["busy"]})");
  auto reader = store->NewReader();
  // From inside the third row, across the row boundaries, in pages.
  int pages = 0;
  EXPECT_EQ(Offsets(ReadAllPages(*reader, 2100, store->head(), busy, 700, 10'000, &pages)),
            Range(2101, 5000));
  EXPECT_EQ(pages, 5);
  EXPECT_EQ(Offsets(*reader->Read(1023, busy, 3, 100)), (std::vector<int64_t>{1024, 1025, 1026}));
  ASSERT_TRUE(store->DeleteSession("busy", /*hard=*/true).ok());
  EXPECT_TRUE(reader->Read(0, busy, 10, 10'000)->events.empty());
  EXPECT_EQ(store->NewReader()->Stats()->event_count, 10);
}

// A spanning log whose session_segments `tamper` (SQL) altered, reopened:
// reading session a must fail with Corruption naming `what`, and the other
// sessions must still read.
void ExpectSessionAReadIsCorruption(const std::string& tamper, const std::string& what) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  {
    auto store = OpenOrDie(path, FlushEvery1000());
    MakeSpanningLog(*store);
  }
  RawDb(path).Exec(tamper);
  auto store = OpenOrDie(path);
  auto page = store->NewReader()->Read(0, ParseOrDie(R"({"session_ids":["a"]})"), 100, 100);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kCorruption);
  EXPECT_NE(page.status().message().find(what), std::string::npos) << page.status().message();
  EXPECT_TRUE(store->NewReader()->Read(0, ParseOrDie(R"({"session_ids":["s1"]})"), 5, 100).ok());
}

TEST(SessionIndexTest, OffsetListedForTheWrongSessionIsCorruption) {
  // Session a (key 1) claims offset 12, which is s1's.
  ExpectSessionAReadIsCorruption(
      "UPDATE session_segments SET first_offset = 12, last_offset = 12, offsets = x'' "
      "WHERE session_key = 1 AND first_offset = 1",
      "offset 12 is listed for a session");
}

TEST(SessionIndexTest, MalformedSegmentIsCorruptionNotACrash) {
  // A zero distance (and a truncated varint) where a's offsets should be.
  ExpectSessionAReadIsCorruption(
      "UPDATE session_segments SET offsets = x'0080' WHERE session_key = 1",
      "segment at offset 1 is malformed");
}

TEST(SessionIndexTest, HardDeleteRemovesSessionRowsInEverySegment) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path, FlushEvery1000());
  const int64_t head = MakeSpanningLog(*store);
  ASSERT_TRUE(store->DeleteSession("s4", /*hard=*/true).ok());
  ASSERT_TRUE(store->DeleteSession("a", /*hard=*/true).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM events WHERE session_key NOT IN "
                      "(SELECT session_key FROM sessions)"),
            "0");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM session_segments WHERE session_key NOT IN "
                      "(SELECT session_key FROM sessions)"),
            "0");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM events"), std::to_string(head - 15 - 500));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'event_count'"),
            std::to_string(head - 15 - 500));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'retained_bytes'"),
            raw.Query("SELECT sum(length(CAST(body AS BLOB))) FROM events"));
}

TEST(SessionIndexTest, RetentionDropsSegmentsOnlyOnceAllTheirOffsetsAreEvicted) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path, FlushEvery1000());
  const int64_t head = MakeSpanningLog(*store);
  RetentionPolicy keep_last;
  keep_last.max_events = 2500;
  while (true) {
    auto removed = store->RunRetentionStep(keep_last, 0, 1000);
    ASSERT_TRUE(removed.ok()) << removed.status().ToString();
    if (*removed == 0) break;
  }
  const int64_t earliest = store->earliest();
  ASSERT_EQ(earliest, head - 2500 + 1);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM session_segments WHERE last_offset < " +
                      std::to_string(earliest)),
            "0");
  // Every session still reads exactly its retained events, the evicted
  // offsets of straddling segments skipped.
  auto reader = store->NewReader();
  auto s5 = reader->Read(earliest - 1, ParseOrDie(R"({"session_ids":["s5"]})"), 10'000, 10'000);
  ASSERT_TRUE(s5.ok()) << s5.status().ToString();
  std::vector<int64_t> want;
  for (int64_t o = 11 + 5; o <= head - 5; o += 10) {
    if (o >= earliest) want.push_back(o);
  }
  EXPECT_EQ(Offsets(*s5), want);
}

// Turns a file written by this build back into schema version 1's layout.
void DowngradeToVersion1(const std::string& path) {
  RawDb raw(path);
  raw.Exec(
      "BEGIN; DROP TABLE session_segments; DELETE FROM meta WHERE key = 'sessions_through'; "
      "CREATE INDEX events_by_session ON events(session_key); PRAGMA user_version = 1; COMMIT;");
}

// ... and back into version 3's, with sessions_through at `through`.
void DowngradeToVersion3(const std::string& path) {
  RawDb raw(path);
  raw.Exec(
      "BEGIN; DROP TABLE session_segments; "
      "CREATE INDEX events_by_session_chunk ON events(log_offset >> 15, session_key); "
      "PRAGMA user_version = 3; COMMIT;");
}

std::string SchemaSqlOf(RawDb& raw, const std::string& name) {
  return raw.Query("SELECT sql FROM sqlite_schema WHERE name = '" + name + "'");
}

// The migrated file's schema text is a new file's, word for word.
void ExpectSchemaLikeNewFile(RawDb& raw, TempDir& dir) {
  auto fresh = OpenOrDie(dir.File("fresh.db"));
  RawDb fresh_raw(dir.File("fresh.db"));
  EXPECT_EQ(raw.Query("SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema "
                      "ORDER BY name)"),
            fresh_raw.Query("SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema "
                            "ORDER BY name)"));
  for (const char* name : {"session_segments", "session_segments_by_end"}) {
    EXPECT_NE(SchemaSqlOf(raw, name), "") << name;
    EXPECT_EQ(SchemaSqlOf(raw, name), SchemaSqlOf(fresh_raw, name)) << name;
  }
}

TEST(SessionIndexTest, MigratesVersion1FileWhenOpenedForWriting) {
  TempDir dir;
  const std::string path = dir.File("old.db");
  std::string epoch;
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(AppendMany(*store, 50, 5).ok());
    epoch = store->epoch();
  }
  DowngradeToVersion1(path);

  auto store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->epoch(), epoch);
  EXPECT_EQ(store->head(), 50);
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SchemaVersion()));
    EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "50");
    EXPECT_EQ(SchemaSqlOf(raw, "events_by_session"), "");
    ExpectSchemaLikeNewFile(raw, dir);
  }
  auto reader = store->NewReader();
  const Filter s2 = ParseOrDie(R"({"session_ids":["s2"]})");
  std::vector<int64_t> want;
  for (int64_t o = 3; o <= 50; o += 5) want.push_back(o);
  EXPECT_EQ(Offsets(*reader->Read(0, s2, 100, 100)), want);
  EXPECT_EQ(reader->Stats()->schema_version, SchemaVersion());
  // Appends and hard deletes work on the migrated file.
  ASSERT_TRUE(AppendMany(*store, 5, 5).ok());
  want.push_back(53);
  EXPECT_EQ(Offsets(*reader->Read(0, s2, 100, 100)), want);
  ASSERT_TRUE(store->DeleteSession("s2", true).ok());
  EXPECT_TRUE(reader->Read(0, s2, 100, 100)->events.empty());
  EXPECT_EQ(reader->Stats()->event_count, 44);
}

// 3,000 events over 7 sessions, all written at 2,000, copied to `path` as a
// crash leaves them: sessions_through 2,000 and the rest in no segment (as
// versions 3 and 4 wrote them: every session at once). Returns s3's offsets.
std::vector<int64_t> CrashCopyWrittenAt2000(TempDir& dir, const std::string& path,
                                            const Filter& s3) {
  StorageOptions o = FlushEvery1000();
  o.session_flush_events = int64_t{1} << 40;
  auto store = OpenOrDie(dir.File("live.db"), o);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(AppendMany(*store, 100, 7).ok());
  EXPECT_TRUE(store->Flush().ok());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(AppendMany(*store, 100, 7).ok());
  std::vector<int64_t> offsets = Offsets(*store->NewReader()->Read(0, s3, 10'000, 10'000));
  EXPECT_EQ(offsets.size(), 420u);
  CopyLogFiles(dir.File("live.db"), path);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "2000");
  return offsets;
}

TEST(SessionIndexTest, MigratesVersion3FileListingOffsetsAndRecoveringItsBufferedTail) {
  TempDir dir;
  const std::string path = dir.File("old.db");
  const Filter s3 = ParseOrDie(R"({"session_ids":["s3"]})");
  const std::vector<int64_t> want = CrashCopyWrittenAt2000(dir, path, s3);
  DowngradeToVersion3(path);

  auto store = OpenOrDie(path, FlushEvery1000());
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SchemaVersion()));
    EXPECT_EQ(SchemaSqlOf(raw, "events_by_session_chunk"), "");
    ExpectSchemaLikeNewFile(raw, dir);
    // The open listed the recovered tail too.
    EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "3000");
    EXPECT_EQ(raw.Query("SELECT max(last_offset) FROM session_segments"), "3000");
  }
  EXPECT_EQ(Offsets(*store->NewReader()->Read(0, s3, 10'000, 10'000)), want);
}

TEST(SessionIndexTest, MigratesVersion4FileLeftByACrashByItsVersionAlone) {
  // Version 4 wrote every buffered session at once, so its crash state is
  // one this build recovers as it is: only user_version changes.
  TempDir dir;
  const std::string path = dir.File("old.db");
  const Filter s3 = ParseOrDie(R"({"session_ids":["s3"]})");
  const std::vector<int64_t> want = CrashCopyWrittenAt2000(dir, path, s3);
  {
    RawDb raw(path);
    raw.Exec("PRAGMA user_version = 4");
  }
  auto store = OpenOrDie(path, FlushEvery1000());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SchemaVersion()));
  ExpectSchemaLikeNewFile(raw, dir);
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'sessions_through'"), "3000");
  EXPECT_EQ(raw.Query("SELECT sum(event_count) FROM sessions"), "3000");
  EXPECT_EQ(Offsets(*store->NewReader()->Read(0, s3, 10'000, 10'000)), want);
  EXPECT_EQ(store->NewReader()->GetSession("s3")->event_count, 420);
}

TEST(SessionIndexTest, ReadOnlyOpenReadsVersion1FileWithoutChangingIt) {
  TempDir dir;
  const std::string path = dir.File("old.db");
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(AppendMany(*store, 50, 5).ok());
  }
  DowngradeToVersion1(path);
  {
    StorageOptions ro;
    ro.read_only = true;
    auto store = OpenOrDie(path, ro);
    ASSERT_NE(store, nullptr);
    auto reader = store->NewReader();
    std::vector<int64_t> want;
    for (int64_t o = 4; o <= 50; o += 5) want.push_back(o);
    EXPECT_EQ(Offsets(*reader->Read(0, ParseOrDie(R"({"session_ids":["s3"]})"), 100, 100)), want);
    EXPECT_EQ(reader->Stats()->schema_version, 1);
  }
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "1");
  EXPECT_NE(SchemaSqlOf(raw, "events_by_session"), "");
}

TEST(SessionIndexTest, RefusesSchemaVersionOlderThanAnyItMigrates) {
  TempDir dir;
  const std::string path = dir.File("old.db");
  { OpenOrDie(path); }
  {
    RawDb raw(path);
    raw.Exec("PRAGMA user_version = 0");  // schema present, version unknown: not ours to guess
  }
  auto store = LogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(store.status().message().find("older than any this build can migrate"),
            std::string::npos)
      << store.status().message();
}

}  // namespace
}  // namespace tailbus
