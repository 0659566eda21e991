// Remembers recently committed event ids so a producer's retry gets the
// original offset back instead of a second copy. Bounded by age and count.
//
// Thread-safety: none; owned by the bus writer thread.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tailbus {

class IdempotencyWindow {
 public:
  IdempotencyWindow(int64_t window_ms, size_t max_ids);
  IdempotencyWindow(const IdempotencyWindow&) = delete;
  IdempotencyWindow& operator=(const IdempotencyWindow&) = delete;

  std::optional<int64_t> Find(std::string_view event_id) const;
  // Records a committed id (ids arrive in non-decreasing time).
  void Insert(std::string_view event_id, int64_t offset, int64_t ingested_at_ms);
  // Forgets ids older than the window or beyond the count.
  void Expire(int64_t now_ms);
  size_t size() const { return offsets_.size(); }

 private:
  struct Entry {
    int64_t ingested_at_ms;
    std::string event_id;
  };
  void PopOldest();

  const int64_t window_ms_;
  const size_t max_ids_;
  // Each id is stored once, in order_ (a deque never moves its elements on
  // push_back/pop_front); the map's keys are views of those strings.
  std::deque<Entry> order_;                                // oldest first
  std::unordered_map<std::string_view, int64_t> offsets_;  // event id -> offset
};

}  // namespace tailbus
