// WAL checkpoints on the background thread (storage/wal_checkpointer.h): the
// WAL stays bounded under sustained appends, is truncated when idle, and a log
// killed mid-append (checkpoints running) recovers whole.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "storage/log_store.h"
#include "storage/sqlite_log_internal.h"
#include "tests/storage/storage_test_util.h"

namespace tailbus {
namespace {

using testing::AppendMany;
using testing::OpenOrDie;
using testing::RawDb;
using testing::TempDir;

int64_t WalBytes(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path + "-wal", ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

StorageOptions SmallWal() {
  StorageOptions o;
  o.page_size = 4096;
  o.wal_autocheckpoint_pages = 50;
  o.wal_max_pages = 200;
  return o;
}

// Every offset 1..head present once, and the meta counters and (written)
// session summaries agree with the rows.
void ExpectWholeLog(const std::string& path, int64_t head) {
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM events"), std::to_string(head));
  EXPECT_EQ(raw.Query("SELECT coalesce(max(log_offset), 0) FROM events"), std::to_string(head));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'head'"), std::to_string(head));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'event_count'"), std::to_string(head));
  EXPECT_EQ(raw.Query("SELECT value FROM meta WHERE key = 'retained_bytes'"),
            raw.Query("SELECT coalesce(sum(length(CAST(body AS BLOB))), 0) FROM events"));
  EXPECT_EQ(raw.Query("SELECT coalesce(sum(event_count), 0) FROM sessions"), std::to_string(head));
  EXPECT_EQ(raw.Query("PRAGMA integrity_check"), "ok");
}

TEST(WalCheckpointTest, WalStaysBoundedUnderSustainedAppends) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  const StorageOptions o = SmallWal();
  auto store = OpenOrDie(path, o);
  ASSERT_NE(store, nullptr);
  int64_t max_wal = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(AppendMany(*store, 200, 50).ok());
    max_wal = std::max(max_wal, WalBytes(path));
  }
  // 100 commits of ~20 frames each: unbounded, the WAL would pass 2,000 frames
  // (8 MiB). Bounded: wal_max_pages plus the few commits before a restart.
  const int64_t frame = o.page_size + 24;
  EXPECT_LT(max_wal, (o.wal_max_pages + 400) * frame) << "WAL grew to " << max_wal << " bytes";
  EXPECT_GT(max_wal, 0);
  ASSERT_TRUE(store->Flush().ok());  // session summaries are buffered
  ExpectWholeLog(path, store->head());
}

TEST(WalCheckpointTest, TruncatesTheWalWhenIdle) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  auto store = OpenOrDie(path, SmallWal());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(AppendMany(*store, 500, 10).ok());
  ASSERT_GT(WalBytes(path), 0);
  // The checkpointer truncates after 1 s without commits; allow a loaded
  // machine plenty of time (the loop ends as soon as it happened).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (WalBytes(path) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(WalBytes(path), 0);
  // Appends after the truncate go on from the same head.
  ASSERT_TRUE(AppendMany(*store, 10, 10).ok());
  EXPECT_EQ(store->head(), 510);
  ASSERT_TRUE(store->Flush().ok());
  ExpectWholeLog(path, 510);
}

TEST(WalCheckpointTest, LogKilledWhileAppendingAndCheckpointingRecovers) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child appends until killed; it reports once checkpoints must have run.
    close(ready[0]);
    auto opened = LogStore::Open(path, SmallWal());
    if (!opened.ok()) _exit(2);
    LogStore& store = **opened;
    for (int i = 0;; ++i) {
      if (!AppendMany(store, 100, 37).ok()) _exit(3);
      if (i == 50) {
        char c = 1;
        if (write(ready[1], &c, 1) != 1) _exit(4);
      }
    }
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);

  auto store = OpenOrDie(path, SmallWal());
  ASSERT_NE(store, nullptr);
  const int64_t head = store->head();
  EXPECT_GE(head, 51 * 100);
  EXPECT_EQ(head % 100, 0);  // whole batches only
  ExpectWholeLog(path, head);
  ASSERT_TRUE(AppendMany(*store, 100, 37).ok());
  EXPECT_EQ(store->head(), head + 100);
}

TEST(WalCheckpointTest, WalRestartDoesNotTruncateAWalOfOneCheckpointsFrames) {
  // journal_size_limit must leave room for the frames one checkpoint threshold
  // holds, and more that arrive while it runs: a WAL truncated at every
  // restart stalled the commit doing it for 40-50 ms.
  StorageOptions o;
  for (int64_t page_size : {4096, 16384, 65536}) {
    const int64_t one_checkpoint = o.wal_autocheckpoint_pages * (page_size + 24);
    EXPECT_GE(sqlite::WalSizeLimitBytes(page_size, o), 2 * one_checkpoint) << page_size;
  }
  o.wal_autocheckpoint_pages = 10;  // small WALs keep the 64 MiB floor
  EXPECT_EQ(sqlite::WalSizeLimitBytes(4096, o), int64_t{64} << 20);
}

}  // namespace
}  // namespace tailbus
