// The per-session index (schema version 2: events_by_session_chunk, one range
// per chunk of 2^15 offsets): reads and hard deletes of sessions whose events
// span several chunks, and the migration of version-1 files.
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

constexpr int64_t kChunk = int64_t{1} << 15;  // offsets per index chunk (schema.sql)

std::vector<int64_t> Range(int64_t first, int64_t last) {
  std::vector<int64_t> out;
  for (int64_t o = first; o <= last; ++o) out.push_back(o);
  return out;
}

// Session "a": offsets 1..10 (chunk 0) and, after 2.2 chunks of sessions
// s0..s9 (which fill chunk 1 entirely), 5 more at the head (chunk 2).
int64_t MakeSpanningLog(LogStore& store) {
  Batch first;
  for (int i = 0; i < 10; ++i) first.Add(Ev("a"));
  EXPECT_TRUE(AppendBatch(store, first).ok());
  EXPECT_TRUE(AppendMany(store, static_cast<int>(2 * kChunk), 10).ok());
  Batch last;
  for (int i = 0; i < 5; ++i) last.Add(Ev("a"));
  EXPECT_TRUE(AppendBatch(store, last).ok());
  EXPECT_GE(store.head(), 2 * kChunk + 15);
  return store.head();
}

TEST(SessionIndexTest, ReadsOneSessionAcrossIndexChunks) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("x.db"));
  const int64_t head = MakeSpanningLog(*store);
  auto reader = store->NewReader();
  const Filter a = ParseOrDie(R"({"session_ids":["a"]})");

  std::vector<int64_t> want = Range(1, 10);
  for (int64_t o : Range(head - 4, head)) want.push_back(o);
  auto all = reader->Read(0, a, 100, 4096);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Offsets(*all), want);
  EXPECT_EQ(all->next_after, head);

  // From inside the session, and paginated across the empty chunk.
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

  // A session only in later chunks: every one of its events, in order.
  auto s7 = reader->Read(kChunk, ParseOrDie(R"({"session_ids":["s7"]})"), 100'000, 100'000);
  ASSERT_TRUE(s7.ok());
  std::vector<int64_t> s7_want;
  for (int64_t o = 11 + 7; o <= head - 5; o += 10) {
    if (o > kChunk) s7_want.push_back(o);
  }
  EXPECT_EQ(Offsets(*s7), s7_want);
}

TEST(SessionIndexTest, HardDeleteRemovesSessionRowsInEveryChunk) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path);
  const int64_t head = MakeSpanningLog(*store);
  ASSERT_TRUE(store->DeleteSession("a", /*hard=*/true).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM events WHERE session_key NOT IN "
                      "(SELECT session_key FROM sessions)"),
            "0");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM events"), std::to_string(head - 15));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'event_count'"),
            std::to_string(head - 15));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'retained_bytes'"),
            raw.Query("SELECT sum(length(CAST(body AS BLOB))) FROM events"));
}

// Turns a file written by this build back into schema version 1's layout.
void DowngradeToVersion1(const std::string& path) {
  RawDb raw(path);
  raw.Exec(
      "BEGIN; DROP INDEX events_by_session_chunk; DELETE FROM meta WHERE key = 'sessions_through'; "
      "CREATE INDEX events_by_session ON events(session_key); PRAGMA user_version = 1; COMMIT;");
}

std::string IndexSql(RawDb& raw, const std::string& name) {
  return raw.Query("SELECT sql FROM sqlite_schema WHERE name = '" + name + "'");
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
    EXPECT_EQ(IndexSql(raw, "events_by_session"), "");
    auto fresh = OpenOrDie(dir.File("fresh.db"));
    RawDb fresh_raw(dir.File("fresh.db"));
    EXPECT_EQ(IndexSql(raw, "events_by_session_chunk"),
              IndexSql(fresh_raw, "events_by_session_chunk"));
    EXPECT_NE(IndexSql(raw, "events_by_session_chunk"), "");
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
  EXPECT_NE(IndexSql(raw, "events_by_session"), "");
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
