// `tailbus serve` on a database it must not use: a truncated file, garbage, a
// tailbus log of a newer schema (in the file, or only in its WAL), a foreign
// SQLite database. Each time the server refuses to start with ONE line on
// stderr naming the file and the reason, exits nonzero, and leaves the
// directory as it was: the database and any WAL byte-for-byte (a WAL is never
// checkpointed into a refused file), and no -wal, -shm or -lock file added or
// removed. (storage/ refuses these in LogStore::Open; this pins
// the promise at the level users see it.)
#include <algorithm>
#include <filesystem>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "tests/cli/cli_test_util.h"
#include "tests/reliability/serve_process.h"

namespace tailbus::reliability {
namespace {

namespace fs = std::filesystem;
using cli_test::CliTest;
using cli_test::Lines;
using cli_test::ReadFile;
using cli_test::RunResult;
using cli_test::RunTailbus;
using cli_test::WriteFile;

// Every file of a directory (name -> contents).
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    files[entry.path().filename().string()] = ReadFile(entry.path());
  }
  return files;
}

std::vector<std::string> Names(const std::map<std::string, std::string>& files) {
  std::vector<std::string> names;
  for (const auto& [name, data] : files) names.push_back(name);
  return names;
}

class ServeBadDatabaseTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    fs::create_directories(fs::path(db_).parent_path());
  }

  // A real tailbus log with `events` events, written by `tailbus publish`.
  // Closing it checkpoints the WAL into the file and removes the WAL.
  void MakeLog(int events) {
    std::string ndjson;
    for (int i = 0; i < events; ++i) {
      ndjson += R"({"session_id":"s)" + std::to_string(i % 7) +
                R"(","type":"tool_call","tool_name":"search","content":")" + std::string(200, 'x') +
                "\"}\n";
    }
    RunResult r = RunTailbus({"publish", "--db", db_, "-"}, ndjson);
    ASSERT_EQ(r.exit_code, 0) << r;
    ASSERT_FALSE(fs::exists(db_ + "-wal"));
  }

  void Sqlite(const std::vector<std::string>& commands) {
    std::vector<std::string> argv = {"sqlite3", "-bail", db_};
    argv.insert(argv.end(), commands.begin(), commands.end());
    CommandResult r = RunCommand(argv);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // Runs `tailbus serve` on the database and checks the refusal; returns its
  // one stderr line.
  std::string ExpectRefusal() {
    const fs::path dir = fs::path(db_).parent_path();
    const auto before = Snapshot(dir);
    RunResult r = RunTailbus({"serve", "--db", db_, "--listen", "127.0.0.1:0"});
    EXPECT_NE(r.exit_code, 0) << r;
    EXPECT_EQ(r.exit_code, 1) << r;  // a runtime error, not a usage error or a crash
    std::vector<std::string> lines = Lines(r.err);
    EXPECT_EQ(lines.size(), 1u) << r;
    EXPECT_EQ(r.err.rfind("tailbus: ", 0), 0u) << r;
    EXPECT_NE(r.err.find(db_), std::string::npos) << "the line names the file: " << r;
    EXPECT_NE(r.err.find("refusing to open"), std::string::npos) << r;
    EXPECT_EQ(r.err.find("serving"), std::string::npos) << r;
    const auto after = Snapshot(dir);
    EXPECT_EQ(Names(after), Names(before)) << "files appeared or vanished";
    for (const auto& [name, data] : before) {
      auto it = after.find(name);
      if (it == after.end()) continue;
      // The -shm is SQLite's shared-memory index of the WAL, rebuilt from the
      // WAL by whoever opens it: no data, and an open may rewrite it.
      if (name.ends_with("-shm")) continue;
      EXPECT_TRUE(it->second == data)
          << name << " changed (" << data.size() << " -> " << it->second.size() << " bytes)";
    }
    return lines.empty() ? std::string() : lines.front();
  }
};

TEST_F(ServeBadDatabaseTest, RefusesDatabaseTruncatedAtPageBoundary) {
  ASSERT_NO_FATAL_FAILURE(MakeLog(2000));
  const auto size = fs::file_size(db_);
  ASSERT_GT(size, 8u * 16384);
  fs::resize_file(db_, (size / 2) / 16384 * 16384);
  std::string line = ExpectRefusal();
  EXPECT_NE(line.find("truncated"), std::string::npos) << line;
}

TEST_F(ServeBadDatabaseTest, RefusesDatabaseCutMidPage) {
  ASSERT_NO_FATAL_FAILURE(MakeLog(2000));
  fs::resize_file(db_, fs::file_size(db_) - 1000);
  std::string line = ExpectRefusal();
  EXPECT_NE(line.find("truncated"), std::string::npos) << line;
}

TEST_F(ServeBadDatabaseTest, RefusesGarbageFile) {
  std::string garbage(64 * 1024, '\0');
  uint32_t x = 12345;
  for (char& c : garbage) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  WriteFile(db_, garbage);
  std::string line = ExpectRefusal();
  EXPECT_NE(line.find("not a SQLite database"), std::string::npos) << line;
}

TEST_F(ServeBadDatabaseTest, RefusesNewerSchemaVersion) {
  ASSERT_NO_FATAL_FAILURE(MakeLog(50));
  ASSERT_NO_FATAL_FAILURE(Sqlite({"PRAGMA user_version = 99;"}));
  ASSERT_FALSE(fs::exists(db_ + "-wal"));
  std::string line = ExpectRefusal();
  EXPECT_NE(line.find("schema version 99 is newer than this build supports"), std::string::npos)
      << line;
}

// The newer version's last commit still sits in the WAL (it was not
// checkpointed): refusing must not checkpoint it into the file either.
TEST_F(ServeBadDatabaseTest, RefusesNewerSchemaVersionHeldInWal) {
  ASSERT_NO_FATAL_FAILURE(MakeLog(50));
  ASSERT_NO_FATAL_FAILURE(Sqlite({".dbconfig no_ckpt_on_close on", "PRAGMA user_version = 99;",
                                  "INSERT INTO meta(key, value) VALUES ('from_v2', 'x');"}));
  ASSERT_TRUE(fs::exists(db_ + "-wal"));
  ASSERT_GT(fs::file_size(db_ + "-wal"), 32u) << "the WAL holds the commit";
  std::string line = ExpectRefusal();
  EXPECT_NE(line.find("schema version 99 is newer than this build supports"), std::string::npos)
      << line;
}

TEST_F(ServeBadDatabaseTest, RefusesForeignSqliteDatabase) {
  ASSERT_NO_FATAL_FAILURE(Sqlite(
      {"CREATE TABLE orders(id INTEGER PRIMARY KEY, total REAL); INSERT INTO orders VALUES (1, "
       "9.5);"}));
  std::string line = ExpectRefusal();
  EXPECT_NE(line.find("not a tailbus log"), std::string::npos) << line;
}

TEST_F(ServeBadDatabaseTest, RefusesForeignSqliteDatabaseInWalMode) {
  ASSERT_NO_FATAL_FAILURE(
      Sqlite({"PRAGMA journal_mode=WAL;",
              "CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES ('hi');"}));
  std::string line = ExpectRefusal();
  EXPECT_NE(line.find("not a tailbus log"), std::string::npos) << line;
}

}  // namespace
}  // namespace tailbus::reliability
