// Private to storage/: which buffered session summaries the next append writes.
//
// The writer buffers each session's summary delta and offsets in memory
// (PendingSessions) and writes them into its sessions row and a
// session_segments row later. Writing every buffered session at once cost
// 6-10 ms per 1,000 sessions inside one append commit, once a second, and
// every event queued behind that commit waited for it: that stall was most of
// the live tail's p99 (measured: 8 ms flush commits among 0.1 ms ones). The
// queue spreads the work over the commits that follow:
//   * a session enters at the back when its first buffered event commits and
//     leaves from the front when its buffer is written, so the queue is in
//     order of first buffered offset, and the front's first offset - 1 is the
//     low watermark the file records (meta 'sessions_through': every event at
//     or before it is written);
//   * an append writes a prefix of the queue: the sessions whose buffer has
//     waited `interval_ms`, at most `per_commit` of them, but all of those once
//     the front has waited 2 x `interval_ms` (a writer that falls behind, or
//     interval 0, catches up in one commit), and every queued session once
//     `max_events` are buffered (a sustained writer: written a few at a time,
//     each commit rewrote whole session and segment pages for a few rows).
//
// An append stages its sessions (Stage) before it chooses the prefix, so that
// a session first buffered by this very append can be written by it, and
// after its commit either Commit()s the prefix or Unstage()s a failed append.
//
// Threading: the writer's alone; not synchronised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

namespace tailbus::sqlite {

struct SessionFlushPolicy {
  // A session's buffer is due this long after its first event committed.
  int64_t interval_ms = 1'000;
  // Once this many events are buffered, every queued session is written.
  int64_t max_events = 100'000;
  // Due sessions written by one append while none is overdue (2 x interval).
  size_t per_commit = 64;
};

class SessionFlushQueue {
 public:
  explicit SessionFlushQueue(SessionFlushPolicy policy) : policy_(policy) {}
  SessionFlushQueue(const SessionFlushQueue&) = delete;
  SessionFlushQueue& operator=(const SessionFlushQueue&) = delete;

  // Adds `events` buffered events of session `key`, the first of them at
  // `first_offset`, committing at `now_ms`. Returns whether the session was
  // queued by this call (at the back); pass that to Unstage.
  bool Stage(int64_t key, int64_t first_offset, int64_t events, int64_t now_ms);
  // Undoes Stage calls of a failed append, most recent first.
  void Unstage(int64_t key, int64_t events, bool queued);

  // How many sessions from the front the append committing at `now_ms`
  // writes (after its Stage calls).
  size_t DuePrefix(int64_t now_ms) const;
  // The key of the i-th session from the front (i < size()).
  int64_t key_at(size_t i) const { return queue_[i].key; }
  // meta 'sessions_through' once the first `n` sessions are written: every
  // event at or before it is written; `head` when nothing stays buffered.
  int64_t WrittenThroughAfter(size_t n, int64_t head) const;
  // The first `n` sessions were written (their append committed).
  void Commit(size_t n);
  // Everything was written (a full flush).
  void Clear();

  size_t size() const { return queue_.size(); }
  int64_t buffered_events() const { return buffered_events_; }

 private:
  struct Entry {
    int64_t key;
    int64_t first_offset;
    int64_t since_ms;  // when its first buffered event committed
  };

  SessionFlushPolicy policy_;
  std::deque<Entry> queue_;
  std::unordered_map<int64_t, int64_t> events_;  // buffered events by queued key
  int64_t buffered_events_ = 0;
};

}  // namespace tailbus::sqlite
