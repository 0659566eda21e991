#include "bus/hot_ring.h"

#include <cassert>

namespace tailbus {

void HotRing::Push(const std::vector<EventPtr>& events) {
  if (events.empty()) return;
  std::lock_guard lock(mu_);
  if (events_.empty()) first_offset_ = events.front()->offset;
  for (const EventPtr& e : events) {
    assert(e->offset == first_offset_ + static_cast<int64_t>(events_.size()));
    bytes_ += e->ApproximateBytes();
    events_.push_back(e);
  }
  while (bytes_ > byte_budget_ && events_.size() > 1) {
    bytes_ -= events_.front()->ApproximateBytes();
    events_.pop_front();
    ++first_offset_;
  }
}

RingAnswer HotRing::Collect(const RingQuery& q, const Filter& filter, const HiddenSessions& hidden,
                            std::vector<EventPtr>* out) const {
  std::lock_guard lock(mu_);
  RingAnswer answer;
  answer.next_after = q.after;
  if (events_.empty()) {
    answer.covered = false;
    return answer;
  }
  if (q.after + 1 < first_offset_) return answer;  // older than the ring: storage
  answer.covered = true;
  const int64_t last = first_offset_ + static_cast<int64_t>(events_.size()) - 1;
  size_t taken = 0, bytes = 0, examined = 0;
  for (int64_t off = q.after + 1; off <= last && examined < q.max_examined; ++off, ++examined) {
    const EventPtr& e = events_[static_cast<size_t>(off - first_offset_)];
    if (filter.Matches(e->fields()) && !hidden.IsHidden(e->header.session_id, e->offset)) {
      if (taken > 0 && bytes + e->json.size() > q.max_bytes) break;
      out->push_back(e);
      bytes += e->json.size();
      ++taken;
    }
    answer.next_after = off;
    if (taken >= q.max_events) break;
  }
  return answer;
}

int64_t HotRing::first_offset() const {
  std::lock_guard lock(mu_);
  return events_.empty() ? 0 : first_offset_;
}

size_t HotRing::size() const {
  std::lock_guard lock(mu_);
  return events_.size();
}

size_t HotRing::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace tailbus
