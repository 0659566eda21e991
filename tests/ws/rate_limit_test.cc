// ws/rate_limit.h without a server: token buckets, per-connection message
// limits with strikes, and the per-IP table's bounded memory.
#include "ws/rate_limit.h"

#include <gtest/gtest.h>

#include <string>

namespace tailbus::ws {
namespace {

constexpr int64_t kSec = 1'000'000;

TEST(TokenBucket, AllowsTheBurstThenRefusesUntilRefilled) {
  const RateLimit limit{.per_second = 1, .burst = 5};
  TokenBucket bucket;
  int64_t now = 100 * kSec;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.TryTake(limit, now)) << i;
  EXPECT_FALSE(bucket.TryTake(limit, now));
  EXPECT_EQ(bucket.MicrosUntilToken(limit, now), kSec);
  EXPECT_FALSE(bucket.TryTake(limit, now + kSec / 2));
  EXPECT_EQ(bucket.MicrosUntilToken(limit, now + kSec / 2), kSec / 2);
  EXPECT_TRUE(bucket.TryTake(limit, now + kSec));
  EXPECT_FALSE(bucket.TryTake(limit, now + kSec));
  // Never more than the burst, however long it was idle.
  now += 3600 * kSec;
  EXPECT_TRUE(bucket.IsFull(limit, now));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.TryTake(limit, now)) << i;
  EXPECT_FALSE(bucket.TryTake(limit, now));
}

TEST(TokenBucket, FractionalRates) {
  const RateLimit limit{.per_second = 0.5, .burst = 1};
  TokenBucket bucket;
  EXPECT_TRUE(bucket.TryTake(limit, 0));
  EXPECT_FALSE(bucket.TryTake(limit, kSec));
  EXPECT_EQ(bucket.MicrosUntilToken(limit, kSec), kSec);
  EXPECT_TRUE(bucket.TryTake(limit, 2 * kSec));
  EXPECT_EQ(limit.RefillMicros(), 2 * kSec);
}

TEST(TokenBucket, DisabledLimitAllowsEverything) {
  const RateLimit off{.per_second = 0, .burst = 1};
  TokenBucket bucket;
  for (int i = 0; i < 10'000; ++i) ASSERT_TRUE(bucket.TryTake(off, 0));
  EXPECT_EQ(bucket.MicrosUntilToken(off, 0), 0);
}

TEST(TokenBucket, ClockGoingBackwardsAddsNothing) {
  const RateLimit limit{.per_second = 1, .burst = 2};
  TokenBucket bucket;
  EXPECT_TRUE(bucket.TryTake(limit, 10 * kSec));
  EXPECT_TRUE(bucket.TryTake(limit, 10 * kSec));
  EXPECT_FALSE(bucket.TryTake(limit, 5 * kSec));
  EXPECT_FALSE(bucket.TryTake(limit, 10 * kSec));
}

TEST(RetryAfterSeconds, RoundsUpToWholeSecondsAtLeastOne) {
  EXPECT_EQ(RetryAfterSeconds(0), 1);
  EXPECT_EQ(RetryAfterSeconds(1), 1);
  EXPECT_EQ(RetryAfterSeconds(kSec), 1);
  EXPECT_EQ(RetryAfterSeconds(kSec + 1), 2);
}

TEST(MessageLimiter, RejectsPastTheBurstAndClosesAfterStrikesInARow) {
  const RateLimit limit{.per_second = 1, .burst = 3};
  MessageLimiter m;
  using V = MessageLimiter::Verdict;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(m.Check(limit, 3, 0), V::kAllow);
  EXPECT_EQ(m.Check(limit, 3, 0), V::kReject);
  EXPECT_EQ(m.Check(limit, 3, 0), V::kReject);
  // A token arrives: accepted, and the strikes start over.
  EXPECT_EQ(m.Check(limit, 3, kSec), V::kAllow);
  EXPECT_EQ(m.strikes(), 0u);
  EXPECT_EQ(m.Check(limit, 3, kSec), V::kReject);
  EXPECT_EQ(m.Check(limit, 3, kSec), V::kReject);
  EXPECT_EQ(m.Check(limit, 3, kSec), V::kClose);
}

TEST(MessageLimiter, ZeroStrikesNeverCloses) {
  const RateLimit limit{.per_second = 1, .burst = 1};
  MessageLimiter m;
  EXPECT_EQ(m.Check(limit, 0, 0), MessageLimiter::Verdict::kAllow);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(m.Check(limit, 0, 0), MessageLimiter::Verdict::kReject);
}

TEST(IpRateLimiter, LimitsEachAddressSeparately) {
  IpRateLimiter limiter(RateLimit{.per_second = 1, .burst = 2}, 100);
  EXPECT_TRUE(limiter.Allow("10.0.0.1", 0));
  EXPECT_TRUE(limiter.Allow("10.0.0.1", 0));
  int64_t retry = 0;
  EXPECT_FALSE(limiter.Allow("10.0.0.1", 0, &retry));
  EXPECT_EQ(retry, kSec);
  EXPECT_TRUE(limiter.Allow("10.0.0.2", 0));
  EXPECT_TRUE(limiter.Allow("10.0.0.1", kSec));
}

TEST(IpRateLimiter, AFloodOfDistinctAddressesKeepsTheTableBounded) {
  IpRateLimiter limiter(RateLimit{.per_second = 1, .burst = 2}, 100);
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(limiter.Allow("ip-" + std::to_string(i), 0));
    ASSERT_LE(limiter.size(), 100u);
  }
  EXPECT_EQ(limiter.size(), 100u);
  EXPECT_EQ(limiter.evictions(), 100'000u - 100u);
}

TEST(IpRateLimiter, EvictsTheLeastRecentlyUsedAddress) {
  IpRateLimiter limiter(RateLimit{.per_second = 1, .burst = 1}, 2);
  EXPECT_TRUE(limiter.Allow("a", 0));
  EXPECT_TRUE(limiter.Allow("b", 0));
  EXPECT_FALSE(limiter.Allow("a", 0));  // "a" is now the most recently used
  EXPECT_TRUE(limiter.Allow("c", 0));   // evicts "b"
  EXPECT_FALSE(limiter.Allow("a", 0));  // still tracked, still empty
  EXPECT_TRUE(limiter.Allow("b", 0));   // forgotten: a fresh bucket
}

TEST(IpRateLimiter, SweepDropsRefilledAddressesOnly) {
  IpRateLimiter limiter(RateLimit{.per_second = 1, .burst = 2}, 100);
  EXPECT_TRUE(limiter.Allow("old", 0));
  EXPECT_TRUE(limiter.Allow("new", 5 * kSec));
  limiter.Sweep(5 * kSec);  // "old" has refilled; "new" has not
  EXPECT_EQ(limiter.size(), 1u);
  limiter.Sweep(10 * kSec);
  EXPECT_EQ(limiter.size(), 0u);
}

TEST(IpRateLimiter, DisabledLimitTracksNothing) {
  IpRateLimiter limiter(RateLimit{.per_second = 0, .burst = 1}, 10);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(limiter.Allow("x", 0));
  EXPECT_EQ(limiter.size(), 0u);
}

}  // namespace
}  // namespace tailbus::ws
