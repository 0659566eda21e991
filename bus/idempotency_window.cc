#include "bus/idempotency_window.h"

#include <algorithm>

namespace tailbus {

IdempotencyWindow::IdempotencyWindow(int64_t window_ms, size_t max_ids)
    : window_ms_(window_ms), max_ids_(max_ids) {
  offsets_.reserve(std::min<size_t>(max_ids_, 1 << 20));
}

std::optional<int64_t> IdempotencyWindow::Find(std::string_view event_id) const {
  auto it = offsets_.find(event_id);
  if (it == offsets_.end()) return std::nullopt;
  return it->second;
}

void IdempotencyWindow::Insert(std::string_view event_id, int64_t offset, int64_t ingested_at_ms) {
  if (max_ids_ == 0 || offsets_.contains(event_id)) return;
  order_.push_back({ingested_at_ms, std::string(event_id)});
  offsets_.emplace(order_.back().event_id, offset);
  while (order_.size() > max_ids_) PopOldest();
}

void IdempotencyWindow::Expire(int64_t now_ms) {
  while (!order_.empty() && order_.front().ingested_at_ms < now_ms - window_ms_) PopOldest();
}

void IdempotencyWindow::PopOldest() {
  offsets_.erase(order_.front().event_id);  // erase before the string it views dies
  order_.pop_front();
}

}  // namespace tailbus
