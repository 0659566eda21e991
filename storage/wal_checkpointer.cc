// Invariants:
// - Every checkpoint call (background pass, inline, TRUNCATE) holds
//   checkpoint_mu_, so the two connections never race for SQLite's checkpoint
//   lock and the writer's inline checkpoint is never refused Busy by ours.
// - The hook runs after a commit (SQLite calls it once the transaction is
//   durable and the write lock is released), on the writer's thread; an inline
//   checkpoint there therefore sees no concurrent writer and copies every
//   frame no reader still needs, so the next commit restarts the WAL.
// - The checkpoint connection never writes rows; it only copies WAL frames.
#include "storage/wal_checkpointer.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace tailbus::sqlite {

namespace {
// Nice value of the checkpoint thread (0 is normal; 19 the lowest priority).
constexpr int kCheckpointNice = 10;
}  // namespace

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(
    const std::string& path, sqlite3* writer, const WalCheckpointerOptions& options) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return ToStatus(rc, db.get(), path + ": opening the checkpoint connection");
  // busy_timeout 0: PASSIVE never waits anyway, and an idle TRUNCATE that finds
  // the writer or a reader busy gives up at once instead of holding writers off.
  sqlite3_busy_timeout(db.get(), 0);
  TAILBUS_RETURN_IF_ERROR(Exec(
      db.get(), options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
      path + ": configuring the checkpoint connection"));
  std::unique_ptr<WalCheckpointer> c(new WalCheckpointer(writer, std::move(db), options));
  sqlite3_wal_autocheckpoint(writer, 0);
  sqlite3_wal_hook(writer, &WalCheckpointer::Hook, c.get());
  c->thread_ = std::thread([p = c.get()] { p->Run(); });
  return c;
}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_hook(writer_, nullptr, nullptr);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

int64_t WalCheckpointer::background_passes() const {
  std::lock_guard lock(mu_);
  return background_passes_;
}

int64_t WalCheckpointer::inline_checkpoints() const {
  std::lock_guard lock(mu_);
  return inline_checkpoints_;
}

int WalCheckpointer::Hook(void* self, sqlite3* /*db*/, const char* /*schema*/, int frames) {
  static_cast<WalCheckpointer*>(self)->OnCommit(frames);
  return SQLITE_OK;  // a failed checkpoint is retried later; the commit stands
}

void WalCheckpointer::OnCommit(int frames) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    ++commits_;
    dirty_ = true;
    if (frames >= options_.checkpoint_pages && !requested_) {
      requested_ = true;
      wake = true;
    }
  }
  if (wake) cv_.notify_one();
  if (options_.max_wal_pages > 0 && frames > options_.max_wal_pages) {
    std::lock_guard ck(checkpoint_mu_);
    sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    std::lock_guard lock(mu_);
    ++inline_checkpoints_;
  }
}

void WalCheckpointer::Run() {
  // Checkpoints are background copying: on a CPU shared with the network and
  // writer threads they must yield to live delivery, not take turns with it.
  // (Linux: nice applies to the calling thread; failure only loses the hint.)
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kCheckpointNice);
  sqlite3* db = db_.get();
  std::unique_lock lock(mu_);
  int64_t commits_seen = commits_;
  while (!stop_) {
    cv_.wait_for(lock, options_.idle, [&] { return stop_ || requested_; });
    if (stop_) break;
    if (requested_) {
      requested_ = false;
      lock.unlock();
      // Copy what is there; while the writer keeps adding frames, go again (a
      // few passes at most here; the next commit over the threshold asks again).
      for (int pass = 0; pass < 4; ++pass) {
        int log = 0, copied = 0;
        int rc;
        {
          std::lock_guard ck(checkpoint_mu_);
          rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        }
        {
          std::lock_guard count(mu_);
          ++background_passes_;
        }
        if (rc != SQLITE_OK || copied >= log) break;
      }
      lock.lock();
      commits_seen = commits_;
      continue;
    }
    // Woken by the timeout: idle when no commit arrived since the last look.
    if (commits_ != commits_seen) {
      commits_seen = commits_;
      continue;
    }
    if (!dirty_) continue;
    lock.unlock();
    int rc;
    {
      std::lock_guard ck(checkpoint_mu_);
      rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    }
    lock.lock();
    // Busy (a reader on an old snapshot, or the writer got in first): next time.
    if (rc == SQLITE_OK && commits_ == commits_seen) dirty_ = false;
  }
}

}  // namespace tailbus::sqlite
