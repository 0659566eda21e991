// The hot ring: recently committed events, indexed by offset, within a byte
// budget. The writer pushes, any thread reads.
//
// Thread-safety: internally synchronised (one mutex). Readers hold it only
// while they copy out shared pointers, and each read examines a bounded
// number of entries, so the writer never waits long.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "bus/hidden_sessions.h"
#include "core/event.h"
#include "core/filter.h"

namespace tailbus {

struct RingQuery {
  int64_t after = 0;        // return events with offset > after
  size_t max_events = 0;    // most events to return
  size_t max_bytes = 0;     // about this many JSON bytes (at least one event)
  size_t max_examined = 0;  // most entries to look at (bounds sparse filters)
};

struct RingAnswer {
  // False when `after + 1` is older than the ring's first offset: read storage.
  bool covered = false;
  // The last offset examined (>= query.after). Valid when covered.
  int64_t next_after = 0;
};

class HotRing {
 public:
  explicit HotRing(size_t byte_budget) : byte_budget_(byte_budget) {}
  HotRing(const HotRing&) = delete;
  HotRing& operator=(const HotRing&) = delete;

  // Appends committed events. Their offsets must continue the ring's last
  // offset (or start it). Evicts the oldest entries beyond the byte budget,
  // always keeping the newest event.
  void Push(const std::vector<EventPtr>& events);

  // Appends matching, non-hidden events to `out`.
  RingAnswer Collect(const RingQuery& query, const Filter& filter, const HiddenSessions& hidden,
                     std::vector<EventPtr>* out) const;

  // First offset held (0 when empty).
  int64_t first_offset() const;
  size_t size() const;
  size_t bytes() const;

 private:
  const size_t byte_budget_;
  mutable std::mutex mu_;
  std::deque<EventPtr> events_;  // events_[i]->offset == first_offset_ + i
  int64_t first_offset_ = 0;
  size_t bytes_ = 0;
};

}  // namespace tailbus
