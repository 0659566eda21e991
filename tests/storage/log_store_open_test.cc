// Opening and creating logs: what is created, and every kind of existing file
// that must be refused without being touched.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "storage/log_store.h"
#include "tests/storage/storage_test_util.h"

namespace tailbus {
namespace {

using testing::AppendMany;
using testing::OpenOrDie;
using testing::RawDb;
using testing::ReadFileBytes;
using testing::TempDir;
using testing::WriteFileBytes;

TEST(SchemaTest, CompiledInSchemaSetsSchemaVersion) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  std::string sql(SchemaSql());
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), SchemaVersion());
  EXPECT_EQ(SchemaVersion(), 5);
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST(SchemaTest, EveryColumnIsDocumented) {
  // schema.sql is the specification: every column line carries a comment.
  std::string sql(SchemaSql());
  size_t pos = 0;
  bool in_table = false;
  while (pos < sql.size()) {
    size_t end = sql.find('\n', pos);
    if (end == std::string::npos) end = sql.size();
    std::string line = sql.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("CREATE TABLE", 0) == 0) {
      in_table = true;
      continue;
    }
    if (line.rfind(")", 0) == 0) in_table = false;
    if (in_table && line.find_first_not_of(' ') != std::string::npos &&
        line.find("--") == std::string::npos) {
      ADD_FAILURE() << "undocumented column line: " << line;
    }
  }
}

TEST(LogStoreOpenTest, CreatesDirectoryAndFileWithMetaAndWal) {
  TempDir dir;
  const std::string path = dir.File("a/b/log.db");
  {
    auto store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->head(), 0);
    EXPECT_EQ(store->earliest(), 1);
    EXPECT_EQ(store->epoch().size(), 32u);
    EXPECT_EQ(store->epoch().find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(store->path(), path);
    auto stats = store->NewReader()->Stats();
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->schema_version, SchemaVersion());
    EXPECT_EQ(stats->epoch, store->epoch());
    EXPECT_GT(stats->created_at_ms, 1'600'000'000'000);
    EXPECT_EQ(stats->head, 0);
    EXPECT_EQ(stats->earliest, 1);
    EXPECT_GT(stats->file_bytes, 0);
  }
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Query("PRAGMA page_size"), "16384");
  EXPECT_EQ(raw.Query("PRAGMA user_version"), std::to_string(SchemaVersion()));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key='application'"), "tailbus");
  EXPECT_EQ(raw.Query("PRAGMA integrity_check"), "ok");
}

TEST(LogStoreOpenTest, HonoursPageSizeForNewFiles) {
  TempDir dir;
  StorageOptions options;
  options.page_size = 4096;
  { ASSERT_NE(OpenOrDie(dir.File("x.db"), options), nullptr); }
  RawDb raw(dir.File("x.db"));
  EXPECT_EQ(raw.Query("PRAGMA page_size"), "4096");
}

TEST(LogStoreOpenTest, MissingFileWithoutCreateIsNotFound) {
  TempDir dir;
  StorageOptions options;
  options.create_if_missing = false;
  auto store = LogStore::Open(dir.File("none.db"), options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir.File("none.db")));
}

TEST(LogStoreOpenTest, ReopenKeepsEpochHeadAndCreationTime) {
  TempDir dir;
  std::string epoch;
  int64_t created = 0;
  {
    auto store = OpenOrDie(dir.File("x.db"));
    ASSERT_TRUE(AppendMany(*store, 10, 3).ok());
    epoch = store->epoch();
    created = store->NewReader()->Stats()->created_at_ms;
  }
  auto store = OpenOrDie(dir.File("x.db"));
  EXPECT_EQ(store->epoch(), epoch);
  EXPECT_EQ(store->head(), 10);
  EXPECT_EQ(store->earliest(), 1);
  EXPECT_EQ(store->NewReader()->Stats()->created_at_ms, created);
  ASSERT_TRUE(AppendMany(*store, 5, 3).ok());
  EXPECT_EQ(store->head(), 15);
}

TEST(LogStoreOpenTest, OpenRefusesTruncatedFile) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(AppendMany(*store, 2000, 50).ok());
  }
  // Closing the last connection checkpoints the WAL into the file and removes it.
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 4u * 16384);
  std::filesystem::resize_file(path, 3 * 16384);
  const std::string before = ReadFileBytes(path);

  auto store = LogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption);
  EXPECT_NE(store.status().message().find("truncated"), std::string::npos)
      << store.status().message();
  EXPECT_NE(store.status().message().find(path), std::string::npos);
  EXPECT_EQ(store.status().message().find('\n'), std::string::npos);
  EXPECT_EQ(ReadFileBytes(path), before);  // never repaired or overwritten
}

TEST(LogStoreOpenTest, OpenRefusesFileCutMidPage) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  { ASSERT_NE(OpenOrDie(path), nullptr); }
  std::filesystem::resize_file(path, 16384 + 100);
  auto store = LogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption);
  EXPECT_NE(store.status().message().find("truncated"), std::string::npos);
}

TEST(LogStoreOpenTest, OpenRefusesGarbageFile) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  std::string garbage(8192, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 7919) % 251);
  WriteFileBytes(path, garbage);
  auto store = LogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption);
  EXPECT_NE(store.status().message().find("not a SQLite database"), std::string::npos)
      << store.status().message();
  EXPECT_EQ(ReadFileBytes(path), garbage);
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST(LogStoreOpenTest, OpenRefusesTooShortFile) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  WriteFileBytes(path, "SQLite format 3");
  auto store = LogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadFileBytes(path), "SQLite format 3");
}

TEST(LogStoreOpenTest, ZeroByteFileIsInitialisedAsNewLog) {
  // A 0-byte file holds no data (SQLite writes page 1 as soon as a database
  // enters WAL mode), so initialising it loses nothing.
  TempDir dir;
  const std::string path = dir.File("x.db");
  WriteFileBytes(path, "");
  auto store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->head(), 0);
  EXPECT_TRUE(AppendMany(*store, 3, 1).ok());
}

TEST(LogStoreOpenTest, OpenRefusesForeignSqliteDatabase) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  {
    RawDb raw(path, /*create=*/true);
    raw.Exec(
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, total REAL); INSERT INTO orders "
        "VALUES (1, 9.5)");
  }
  const std::string before = ReadFileBytes(path);
  auto store = LogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption);
  EXPECT_NE(store.status().message().find("not a tailbus log"), std::string::npos)
      << store.status().message();
  EXPECT_EQ(ReadFileBytes(path), before);
}

TEST(LogStoreOpenTest, OpenRefusesForeignDatabaseWithMetaTable) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  {
    RawDb raw(path, /*create=*/true);
    raw.Exec(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES "
        "('application', 'other')");
  }
  auto store = LogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption);
}

TEST(LogStoreOpenTest, OpenRefusesNewerSchemaVersion) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  { ASSERT_NE(OpenOrDie(path), nullptr); }
  {
    RawDb raw(path);
    raw.Exec("PRAGMA user_version = 7");
  }
  const std::string before = ReadFileBytes(path);
  auto store = LogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(store.status().message(),
            path +
                ": database schema version 7 is newer than this build supports (5); "
                "refusing to open");
  EXPECT_EQ(ReadFileBytes(path), before);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "7");
}

TEST(LogStoreOpenTest, EmptySqliteFileWithoutSchemaIsInitialised) {
  // An interrupted creation leaves a SQLite header and no schema object: no data.
  TempDir dir;
  const std::string path = dir.File("x.db");
  {
    RawDb raw(path, /*create=*/true);
    raw.Exec("PRAGMA page_size=4096; PRAGMA journal_mode=WAL");
  }
  auto store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(AppendMany(*store, 2, 1).ok());
}

TEST(LogStoreOpenTest, ReadOnlyStoreRefusesWrites) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto writer = OpenOrDie(path);
  ASSERT_TRUE(AppendMany(*writer, 4, 2).ok());
  StorageOptions options;
  options.read_only = true;
  auto ro = OpenOrDie(path, options);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->head(), 4);
  EXPECT_EQ(ro->epoch(), writer->epoch());
  EXPECT_EQ(AppendMany(*ro, 1, 1).code(), StatusCode::kInvalidArgument);
  auto page = ro->NewReader()->Read(0, Filter(), 100, 100);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->events.size(), 4u);
}

TEST(LogStoreOpenTest, ReadOnlyOpenOfMissingFileIsNotFound) {
  TempDir dir;
  StorageOptions options;
  options.read_only = true;
  auto store = LogStore::Open(dir.File("none.db"), options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir.File("none.db")));
}

TEST(LogStoreOpenTest, SynchronousFullWorks) {
  TempDir dir;
  StorageOptions options;
  options.synchronous = Synchronous::kFull;
  auto store = OpenOrDie(dir.File("x.db"), options);
  ASSERT_TRUE(AppendMany(*store, 100, 10).ok());
  EXPECT_EQ(store->head(), 100);
}

}  // namespace
}  // namespace tailbus

namespace tailbus {
namespace {

TEST(LogStoreWriterLockTest, SecondWriterIsRefusedWhileFirstIsOpen) {
  char tmpl[] = "/tmp/tailbus-lock-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  const std::string path = dir + "/log.db";
  {
    auto first = LogStore::Open(path);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    auto second = LogStore::Open(path);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kBusy);
    EXPECT_EQ(second.status().message(),
              path +
                  ": another process is writing this log; stop it, or publish through its "
                  "server (tailbus publish --url)");
    StorageOptions read_only;
    read_only.read_only = true;
    EXPECT_TRUE(LogStore::Open(path, read_only).ok()) << "readers are not locked out";
  }
  EXPECT_TRUE(LogStore::Open(path).ok()) << "the lock goes with the first store";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tailbus
