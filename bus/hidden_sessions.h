// Sessions deleted while their events may still sit in the hot ring.
// Events of session S with offset <= hidden_through(S) are hidden; a later
// event with the same id starts a new session and is visible.
//
// Thread-safety: internally synchronised; the common case (nothing ever
// deleted) is one relaxed atomic load.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tailbus {

class HiddenSessions {
 public:
  void Hide(std::string_view session_id, int64_t through_offset) {
    std::lock_guard lock(mu_);
    int64_t& through = through_[std::string(session_id)];
    if (through_offset > through) through = through_offset;
    any_.store(true, std::memory_order_release);
  }

  bool IsHidden(std::string_view session_id, int64_t offset) const {
    if (!any_.load(std::memory_order_acquire)) return false;
    std::lock_guard lock(mu_);
    auto it = through_.find(std::string(session_id));
    return it != through_.end() && offset <= it->second;
  }

 private:
  std::atomic<bool> any_{false};
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> through_;
};

}  // namespace tailbus
