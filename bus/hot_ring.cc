#include "bus/hot_ring.h"

#include <algorithm>
#include <cassert>

// Invariants (under mu_): events_[i]->offset == first_offset_ + i; bytes_ is
// the sum of ApproximateBytes() over events_; by_session_ holds exactly the
// sessions of events_, each with the ascending offsets of its events there.

namespace tailbus {

void HotRing::SessionOffsets::PopFront() {
  ++begin;
  if (begin >= 32 && begin * 2 >= offsets.size()) {
    offsets.erase(offsets.begin(), offsets.begin() + static_cast<ptrdiff_t>(begin));
    begin = 0;
  }
}

void HotRing::Push(const std::vector<EventPtr>& events) {
  if (events.empty()) return;
  std::lock_guard lock(mu_);
  if (events_.empty()) first_offset_ = events.front()->offset;
  for (const EventPtr& e : events) {
    assert(e->offset == first_offset_ + static_cast<int64_t>(events_.size()));
    bytes_ += e->ApproximateBytes();
    events_.push_back(e);
    auto it = by_session_.find(std::string_view(e->header.session_id));
    if (it == by_session_.end())
      it = by_session_.emplace(e->header.session_id, SessionOffsets{}).first;
    it->second.offsets.push_back(e->offset);
  }
  while (bytes_ > byte_budget_ && events_.size() > 1) {
    const EventPtr& oldest = events_.front();
    auto it = by_session_.find(std::string_view(oldest->header.session_id));
    assert(it != by_session_.end() && it->second.offsets[it->second.begin] == oldest->offset);
    it->second.PopFront();
    if (it->second.empty()) by_session_.erase(it);
    bytes_ -= oldest->ApproximateBytes();
    events_.pop_front();
    ++first_offset_;
  }
}

bool HotRing::Accept(const EventPtr& e, const Filter& filter, const HiddenSessions& hidden) const {
  return filter.Matches(e->fields()) && !hidden.IsHidden(e->header.session_id, e->offset);
}

template <typename Take>
bool HotRing::ForEachSessionOffset(const std::vector<std::string>& ids, int64_t after,
                                   Take take) const {
  // One ordered stream per named session, merged by offset (a handful of
  // sessions at most: a linear pick is cheapest).
  struct Stream {
    const int64_t* next;
    const int64_t* end;
  };
  Stream streams[kMaxIndexedSessions];
  size_t n = 0;
  for (const std::string& id : ids) {
    auto it = by_session_.find(std::string_view(id));
    if (it == by_session_.end()) continue;
    const std::vector<int64_t>& v = it->second.offsets;
    const int64_t* begin = v.data() + it->second.begin;
    const int64_t* end = v.data() + v.size();
    const int64_t* from = std::upper_bound(begin, end, after);
    if (from != end) streams[n++] = {from, end};
  }
  while (n > 0) {
    size_t best = 0;
    for (size_t i = 1; i < n; ++i) {
      if (*streams[i].next < *streams[best].next) best = i;
    }
    if (!take(*streams[best].next)) return false;
    if (++streams[best].next == streams[best].end) streams[best] = streams[--n];
  }
  return true;
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
  // Examines the event at `off`; false once a limit is reached.
  auto examine = [&](int64_t off) {
    if (examined >= q.max_examined) return false;
    ++examined;
    const EventPtr& e = events_[static_cast<size_t>(off - first_offset_)];
    if (Accept(e, filter, hidden)) {
      if (taken > 0 && bytes + e->json.size() > q.max_bytes) return false;
      out->push_back(e);
      bytes += e->json.size();
      ++taken;
    }
    answer.next_after = off;
    return taken < q.max_events;
  };

  const std::vector<std::string>& ids = filter.session_ids();
  if (!ids.empty() && ids.size() <= kMaxIndexedSessions) {
    // Events of other sessions cannot match (session_ids is ANDed with the
    // rest of the filter), so running out of indexed offsets means every
    // event up to the last one was examined.
    if (ForEachSessionOffset(ids, q.after, examine)) answer.next_after = last;
    return answer;
  }
  for (int64_t off = q.after + 1; off <= last; ++off) {
    if (!examine(off)) break;
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
