// Token buckets for the server's abuse limits (docs/SECURITY.md "Abuse
// limits"): new connections per second per client IP, publishes and
// subscribe changes per second per connection.
//
// Threading: none of these types lock. The server owns them on its network
// thread; tests use them directly. Time is passed in (steady-clock
// microseconds), so the classes never read a clock and are deterministic to
// test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tailbus::ws {

// A rate with a burst: `burst` tokens at most, refilled at `per_second`.
// per_second <= 0 disables the limit (everything is allowed).
struct RateLimit {
  // Tokens added per second (fractions allowed: 0.5 is one every 2 s).
  double per_second = 0;
  // Bucket size: how many may pass at once after a quiet period (>= 1).
  double burst = 1;

  bool enabled() const { return per_second > 0; }
  // Microseconds a drained bucket needs to refill completely.
  int64_t RefillMicros() const;
};

// One bucket. Starts full. Copyable (it is just two numbers).
class TokenBucket {
 public:
  // Takes one token if there is one. Always true when the limit is disabled.
  bool TryTake(const RateLimit& limit, int64_t now_us);
  // Microseconds until one token is available (0: now).
  int64_t MicrosUntilToken(const RateLimit& limit, int64_t now_us) const;
  // True when the bucket has refilled completely (it is as good as new).
  bool IsFull(const RateLimit& limit, int64_t now_us) const;

 private:
  double Tokens(const RateLimit& limit, int64_t now_us) const;

  bool started_ = false;  // false: full (never used)
  double tokens_ = 0;     // at last_us_
  int64_t last_us_ = 0;
};

// Whole seconds to put in Retry-After for a wait of `micros` (at least 1).
int64_t RetryAfterSeconds(int64_t micros);

// A per-connection message limit that tolerates a burst, rejects messages
// past it, and tells the caller to close the connection when the client keeps
// sending after being told: `max_strikes` rejections in a row (an accepted
// message resets the count).
class MessageLimiter {
 public:
  enum class Verdict { kAllow, kReject, kClose };
  Verdict Check(const RateLimit& limit, uint32_t max_strikes, int64_t now_us);
  int64_t MicrosUntilToken(const RateLimit& limit, int64_t now_us) const {
    return bucket_.MicrosUntilToken(limit, now_us);
  }
  uint32_t strikes() const { return strikes_; }

 private:
  TokenBucket bucket_;
  uint32_t strikes_ = 0;
};

// A token bucket per client IP with bounded memory. At most `max_entries`
// addresses are tracked: a new address past that evicts the least recently
// used one (which then starts again with a full bucket, the only precision
// lost). Sweep() drops addresses whose bucket has refilled, since a full
// bucket is the same as no entry. A flood of distinct addresses therefore
// costs O(max_entries) memory, never more.
class IpRateLimiter {
 public:
  IpRateLimiter(RateLimit limit, size_t max_entries);
  IpRateLimiter(const IpRateLimiter&) = delete;
  IpRateLimiter& operator=(const IpRateLimiter&) = delete;

  // Takes one token for `ip`. On false, `*retry_after_us` (if given) is how
  // long until the next token.
  bool Allow(std::string_view ip, int64_t now_us, int64_t* retry_after_us = nullptr);
  // Drops the entries that have refilled completely. Call about once a second.
  void Sweep(int64_t now_us);

  size_t size() const { return index_.size(); }
  uint64_t evictions() const { return evictions_; }
  const RateLimit& limit() const { return limit_; }

 private:
  struct Entry {
    std::string ip;
    TokenBucket bucket;
  };
  using List = std::list<Entry>;  // most recently used first

  RateLimit limit_;
  size_t max_entries_;
  List lru_;
  std::unordered_map<std::string_view, List::iterator> index_;  // keys view lru_ nodes
  uint64_t evictions_ = 0;
};

}  // namespace tailbus::ws
