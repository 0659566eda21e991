// Token buckets. Invariants: a bucket's token count is computed lazily from
// (tokens_, last_us_) and never exceeds the burst; time going backwards (it
// cannot with a steady clock, but tests may pass anything) adds no tokens.
// IpRateLimiter: index_ and lru_ hold the same entries; index_ keys are views
// of the strings inside lru_ nodes (std::list nodes never move).
#include "ws/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace tailbus::ws {

int64_t RateLimit::RefillMicros() const {
  if (!enabled()) return 0;
  return static_cast<int64_t>(std::ceil(burst / per_second * 1e6));
}

double TokenBucket::Tokens(const RateLimit& limit, int64_t now_us) const {
  if (!started_) return limit.burst;
  const int64_t elapsed = std::max<int64_t>(0, now_us - last_us_);
  return std::min(limit.burst, tokens_ + static_cast<double>(elapsed) * limit.per_second / 1e6);
}

bool TokenBucket::TryTake(const RateLimit& limit, int64_t now_us) {
  if (!limit.enabled()) return true;
  const double tokens = Tokens(limit, now_us);
  started_ = true;
  last_us_ = std::max(last_us_, now_us);
  if (tokens < 1.0) {
    tokens_ = tokens;
    return false;
  }
  tokens_ = tokens - 1.0;
  return true;
}

int64_t TokenBucket::MicrosUntilToken(const RateLimit& limit, int64_t now_us) const {
  if (!limit.enabled()) return 0;
  const double missing = 1.0 - Tokens(limit, now_us);
  if (missing <= 0) return 0;
  return static_cast<int64_t>(std::ceil(missing / limit.per_second * 1e6));
}

bool TokenBucket::IsFull(const RateLimit& limit, int64_t now_us) const {
  return !limit.enabled() || Tokens(limit, now_us) >= limit.burst;
}

int64_t RetryAfterSeconds(int64_t micros) {
  return std::max<int64_t>(1, (micros + 999'999) / 1'000'000);
}

MessageLimiter::Verdict MessageLimiter::Check(const RateLimit& limit, uint32_t max_strikes,
                                              int64_t now_us) {
  if (bucket_.TryTake(limit, now_us)) {
    strikes_ = 0;
    return Verdict::kAllow;
  }
  ++strikes_;
  return (max_strikes > 0 && strikes_ >= max_strikes) ? Verdict::kClose : Verdict::kReject;
}

IpRateLimiter::IpRateLimiter(RateLimit limit, size_t max_entries)
    : limit_(limit), max_entries_(std::max<size_t>(1, max_entries)) {}

bool IpRateLimiter::Allow(std::string_view ip, int64_t now_us, int64_t* retry_after_us) {
  if (!limit_.enabled()) return true;
  List::iterator it;
  if (auto found = index_.find(ip); found != index_.end()) {
    it = found->second;
    lru_.splice(lru_.begin(), lru_, it);  // most recently used first
  } else {
    if (index_.size() >= max_entries_) {
      index_.erase(lru_.back().ip);
      lru_.pop_back();
      ++evictions_;
    }
    lru_.push_front(Entry{std::string(ip), TokenBucket{}});
    it = lru_.begin();
    index_.emplace(it->ip, it);
  }
  if (it->bucket.TryTake(limit_, now_us)) return true;
  if (retry_after_us != nullptr) *retry_after_us = it->bucket.MicrosUntilToken(limit_, now_us);
  return false;
}

void IpRateLimiter::Sweep(int64_t now_us) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->bucket.IsFull(limit_, now_us)) {
      index_.erase(it->ip);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace tailbus::ws
