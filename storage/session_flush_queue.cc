// Invariants:
// - A key is in events_ iff it is in queue_, exactly once; buffered_events_ is
//   the sum of events_.
// - queue_ is ascending in first_offset and in since_ms (both are taken when a
//   session is queued, and sessions are only queued at the back).
#include "storage/session_flush_queue.h"

#include <algorithm>
#include <cassert>

namespace tailbus::sqlite {

bool SessionFlushQueue::Stage(int64_t key, int64_t first_offset, int64_t events, int64_t now_ms) {
  buffered_events_ += events;
  auto [it, inserted] = events_.try_emplace(key, 0);
  it->second += events;
  if (inserted) queue_.push_back(Entry{key, first_offset, now_ms});
  return inserted;
}

void SessionFlushQueue::Unstage(int64_t key, int64_t events, bool queued) {
  buffered_events_ -= events;
  if (queued) {
    assert(!queue_.empty() && queue_.back().key == key);
    queue_.pop_back();
    events_.erase(key);
  } else {
    events_[key] -= events;
  }
}

size_t SessionFlushQueue::DuePrefix(int64_t now_ms) const {
  if (queue_.empty()) return 0;
  // Ages, not deadlines: no overflow whatever the interval.
  auto waited = [&](size_t i) { return now_ms - queue_[i].since_ms; };
  const bool overdue = waited(0) / 2 >= policy_.interval_ms;
  size_t n = 0;
  while (n < queue_.size() && waited(n) >= policy_.interval_ms &&
         (overdue || n < policy_.per_commit)) {
    ++n;
  }
  // At the memory bound: every session. (Writing only as many as bring the
  // count back under it made a sustained writer write a few sessions per
  // commit, each commit rewriting whole session and segment pages for them:
  // Bus::Append fell from 0.92x to 0.54x of its plain-SQLite ceiling.)
  if (buffered_events_ >= policy_.max_events) return queue_.size();
  return n;
}

int64_t SessionFlushQueue::WrittenThroughAfter(size_t n, int64_t head) const {
  return n < queue_.size() ? queue_[n].first_offset - 1 : head;
}

void SessionFlushQueue::Commit(size_t n) {
  n = std::min(n, queue_.size());
  for (size_t i = 0; i < n; ++i) {
    auto it = events_.find(queue_.front().key);
    buffered_events_ -= it->second;
    events_.erase(it);
    queue_.pop_front();
  }
}

void SessionFlushQueue::Clear() {
  queue_.clear();
  events_.clear();
  buffered_events_ = 0;
}

}  // namespace tailbus::sqlite
