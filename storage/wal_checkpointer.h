// Private to storage/: WAL checkpoints on a thread of their own.
//
// With SQLite's automatic checkpoint, the commit that crosses the threshold
// copies every WAL page into the database file and fsyncs it before COMMIT
// returns: that commit (and every append queued behind it) stalled for
// hundreds of milliseconds. A WalCheckpointer takes the writer's automatic
// checkpoint away (a wal hook instead) and runs checkpoints on its own thread
// with its own connection:
//   * PASSIVE once the WAL holds `checkpoint_pages` frames, repeated while
//     frames remain un-copied (it never blocks the writer or readers);
//   * the WAL is bounded: when a commit leaves more than `max_wal_pages` frames
//     (checkpoints falling behind a sustained writer never see the WAL fully
//     copied, so SQLite never restarts it), the WRITER checkpoints inline
//     before its commit returns, after waiting for a background pass to end;
//   * TRUNCATE once no commit happened for `idle` (the WAL file goes back to 0
//     bytes), trying once without waiting for anyone.
// Checkpointing from another connection is ordinary SQLite: crash safety is
// SQLite's (a checkpoint interrupted at any moment is redone from the WAL).
//
// Threading: OnCommit is called by SQLite on the writer's thread (wal hook).
// Construction and destruction on the writer's owner thread; the destructor
// stops and joins the thread. Must be destroyed before the writer connection
// closes (it unregisters its hook there).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "storage/sqlite_util.h"

namespace tailbus::sqlite {

struct WalCheckpointerOptions {
  // Start a background PASSIVE checkpoint when the WAL holds this many frames.
  int64_t checkpoint_pages = 10'000;
  // A commit leaving more frames than this checkpoints inline (bounds the WAL).
  int64_t max_wal_pages = 40'000;
  // No commit for this long: TRUNCATE the WAL.
  std::chrono::milliseconds idle = std::chrono::seconds(1);
  // synchronous= of the checkpoint connection (what a checkpoint fsyncs).
  bool synchronous_full = false;
};

class WalCheckpointer {
 public:
  // Opens the checkpoint connection to `path` and hooks `writer` (the open
  // write connection of the same file; not owned, must outlive this object).
  static Result<std::unique_ptr<WalCheckpointer>> Start(const std::string& path, sqlite3* writer,
                                                        const WalCheckpointerOptions& options);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Background checkpoint passes that ran, and inline ones the writer ran
  // (observability and tests).
  int64_t background_passes() const;
  int64_t inline_checkpoints() const;

 private:
  WalCheckpointer(sqlite3* writer, DbPtr db, const WalCheckpointerOptions& options)
      : writer_(writer), db_(std::move(db)), options_(options) {}
  static int Hook(void* self, sqlite3* db, const char* schema, int frames);
  void OnCommit(int frames);
  void Run();

  sqlite3* const writer_;
  DbPtr db_;  // the checkpoint connection (used by the thread, and at shutdown)
  const WalCheckpointerOptions options_;

  // Held across every checkpoint call, on either connection: the writer's
  // inline checkpoint waits for a background pass instead of failing Busy.
  std::mutex checkpoint_mu_;

  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool stop_ = false;
  bool requested_ = false;  // frames >= checkpoint_pages at the last commit
  bool dirty_ = false;      // the WAL may hold frames (a commit since the last TRUNCATE)
  int64_t commits_ = 0;
  int64_t background_passes_ = 0;
  int64_t inline_checkpoints_ = 0;

  std::thread thread_;  // last: started once everything above exists
};

}  // namespace tailbus::sqlite
