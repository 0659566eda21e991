#include "bus/idempotency_window.h"

namespace tailbus {

std::optional<int64_t> IdempotencyWindow::Find(std::string_view event_id) const {
  if (max_ids_ == 0) return std::nullopt;
  // Heterogeneous lookup needs C++20 transparent hashing; one key copy is cheap next to
  // the SQLite insert this check guards.
  auto it = offsets_.find(std::string(event_id));
  if (it == offsets_.end()) return std::nullopt;
  return it->second;
}

void IdempotencyWindow::Insert(std::string event_id, int64_t offset, int64_t ingested_at_ms) {
  if (max_ids_ == 0) return;
  auto [it, inserted] = offsets_.try_emplace(event_id, offset);
  if (!inserted) return;
  order_.push_back({ingested_at_ms, std::move(event_id)});
  while (order_.size() > max_ids_) {
    offsets_.erase(order_.front().event_id);
    order_.pop_front();
  }
}

void IdempotencyWindow::Expire(int64_t now_ms) {
  while (!order_.empty() && order_.front().ingested_at_ms < now_ms - window_ms_) {
    offsets_.erase(order_.front().event_id);
    order_.pop_front();
  }
}

}  // namespace tailbus
