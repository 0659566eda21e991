// Private to storage/: state shared by a SqliteLogStore and the readers it
// hands out. Readers hold it by shared_ptr, so they may outlive the store.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "storage/log_store.h"

namespace tailbus::sqlite {

// Session keys hidden by a soft delete (or being hard-deleted), seen by every
// reader at once. Copy-on-write: readers take a snapshot pointer once per read;
// the common case (nothing deleted) is one atomic load.
class DeletedSessions {
 public:
  using Set = std::unordered_set<int64_t>;

  bool empty() const { return size_.load(std::memory_order_acquire) == 0; }

  std::shared_ptr<const Set> Snapshot() const {
    std::lock_guard lock(mu_);
    return set_;
  }

  void Add(const std::vector<int64_t>& keys) {
    if (keys.empty()) return;
    std::lock_guard lock(mu_);
    auto next = std::make_shared<Set>(*set_);
    next->insert(keys.begin(), keys.end());
    Publish(std::move(next));
  }

  void Remove(const std::vector<int64_t>& keys) {
    if (keys.empty()) return;
    std::lock_guard lock(mu_);
    auto next = std::make_shared<Set>(*set_);
    for (int64_t k : keys) next->erase(k);
    Publish(std::move(next));
  }

 private:
  void Publish(std::shared_ptr<Set> next) {
    size_.store(next->size(), std::memory_order_release);
    set_ = std::move(next);
  }

  mutable std::mutex mu_;
  std::shared_ptr<const Set> set_ = std::make_shared<const Set>();
  std::atomic<size_t> size_{0};
};

// What a session's buffered events (those after its newest session_segments
// row) add to its sessions row. The writer buffers these instead of rewriting
// the row in every commit (one UPDATE per session per commit was ~30% of the
// append path); see schema.sql's invariants and storage/session_flush_queue.h.
struct SessionDelta {
  int64_t last_offset = 0;  // newest offset (>= the row's)
  int64_t min_time_ms = 0;  // smallest timestamp among the buffered events
  int64_t max_time_ms = 0;  // largest
  int64_t count = 0;        // added to event_count
  int64_t cost = 0;         // added to total_cost_tokens
  int64_t errors = 0;       // added to error_count

  void Merge(const SessionDelta& d) {
    last_offset = std::max(last_offset, d.last_offset);
    min_time_ms = count == 0 ? d.min_time_ms : std::min(min_time_ms, d.min_time_ms);
    max_time_ms = count == 0 ? d.max_time_ms : std::max(max_time_ms, d.max_time_ms);
    count += d.count;
    cost += d.cost;
    errors += d.errors;
  }
  void ApplyTo(SessionSummary& s) const {
    if (count == 0) return;
    s.last_offset = std::max(s.last_offset, last_offset);
    s.first_time_ms = std::min(s.first_time_ms, min_time_ms);
    s.last_time_ms = std::max(s.last_time_ms, max_time_ms);
    s.event_count += count;
    s.total_cost_tokens += cost;
    s.error_count += errors;
  }
};

// The buffered session deltas of this process's writer, by session_key, so
// that in-process readers report exact summaries. Only the writer mutates it,
// always holding `mu`; a reader holds `mu` while it reads sessions rows and
// looks deltas up, and the writer holds it across the COMMIT that writes
// deltas into the rows and the erase that follows, so a reader never counts
// a delta twice or not at all.
//
// `offsets` is the per-session index of the same events (schema.sql,
// session_segments): each buffered session's offsets after its newest
// segment, ascending. Readers of the writer's own process take the sessions they read
// from it, under `mu`, with their snapshot; it is written to session_segments
// and erased in the same steps as `deltas`.
struct PendingSessions {
  mutable std::mutex mu;
  std::unordered_map<int64_t, SessionDelta> deltas;           // guarded by mu
  std::unordered_map<int64_t, std::vector<int64_t>> offsets;  // guarded by mu
};

struct SharedState {
  std::string path;
  StorageOptions options;
  // Immutable after Open.
  std::string epoch;
  int64_t created_at_ms = 0;
  // The file's schema version: SchemaVersion() once a writer opened it; a
  // read-only open of an older file reads it in its own layout.
  int schema_version = 0;

  std::atomic<int64_t> head{0};
  std::atomic<int64_t> earliest{1};
  DeletedSessions deleted;
  PendingSessions pending;
};

// A reader over `shared->path` with its own read-only connection. Never null;
// when the connection cannot be opened every call fails with that error.
std::unique_ptr<LogReader> NewSqliteLogReader(std::shared_ptr<const SharedState> shared);

// "<path>-wal" size in bytes, 0 when absent.
int64_t WalFileBytes(const std::string& path);

// The writer's journal_size_limit: after a WAL restart SQLite truncates a WAL
// file larger than this (a burst that outran the checkpoints does not keep
// its disk space). It sits above what a WAL normally reaches between two
// checkpoints (the threshold, plus frames added while one runs): truncating
// an ordinary WAL freed ~100 MB of blocks inside the commit that restarted
// it, a 40-50 ms stall of every append behind it (strace: ftruncate of a
// 16 KiB-page WAL past 10,000 frames; with this limit the live tail's p99
// fell from 25-44 ms to 4.5-5.4 ms, bench/BENCHMARKS_notes.md).
int64_t WalSizeLimitBytes(int64_t page_size, const StorageOptions& options);

}  // namespace tailbus::sqlite
