// The hot ring: recently committed events, indexed by offset and by session,
// within a byte budget. The writer pushes, any thread reads.
//
// The session index exists for live tails of one session: without it, a
// subscriber woken for its session's new event scanned every event committed
// since its last read (at 10k events/s over 1,000 sessions, ~1,000 entries per
// delivered event; that scan was a third of the server's CPU in the fan-out
// benchmark). With it, a read costs O(log n + events of those sessions).
//
// Thread-safety: internally synchronised (one mutex). Readers hold it only
// while they copy out shared pointers, and each read examines a bounded
// number of entries, so the writer never waits long.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/hidden_sessions.h"
#include "core/event.h"
#include "core/filter.h"
#include "core/string_hash.h"

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

  // Appends matching, non-hidden events to `out`. A filter naming at most
  // kMaxIndexedSessions sessions (top-level session_ids) reads the session
  // index and examines only those sessions' events.
  RingAnswer Collect(const RingQuery& query, const Filter& filter, const HiddenSessions& hidden,
                     std::vector<EventPtr>* out) const;

  static constexpr size_t kMaxIndexedSessions = 16;

  // First offset held (0 when empty).
  int64_t first_offset() const;
  size_t size() const;
  size_t bytes() const;

 private:
  // Ascending offsets of one session's events in the ring. Pops from the
  // front as the ring evicts; the vector is compacted when half of it is dead.
  struct SessionOffsets {
    std::vector<int64_t> offsets;
    size_t begin = 0;  // offsets[begin..] are in the ring
    void PopFront();
    bool empty() const { return begin == offsets.size(); }
  };

  // Offsets > after of the indexed sessions, in order, through `take`
  // (which returns false to stop). Returns false if stopped by `take`.
  template <typename Take>
  bool ForEachSessionOffset(const std::vector<std::string>& ids, int64_t after, Take take) const;
  bool Accept(const EventPtr& e, const Filter& filter, const HiddenSessions& hidden) const;

  const size_t byte_budget_;
  mutable std::mutex mu_;
  std::deque<EventPtr> events_;  // events_[i]->offset == first_offset_ + i
  int64_t first_offset_ = 0;
  size_t bytes_ = 0;
  // Every session with an event in the ring -> its offsets (guarded by mu_).
  std::unordered_map<std::string, SessionOffsets, StringHash, std::equal_to<>> by_session_;
};

}  // namespace tailbus
