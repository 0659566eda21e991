#include "core/event_id.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace tailbus {
namespace {

constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// Decodes the 48-bit time prefix of a ULID.
int64_t UlidMillis(const std::string& id) {
  int64_t t = 0;
  for (size_t i = 0; i < 10; ++i) t = t * 32 + static_cast<int64_t>(kCrockford.find(id[i]));
  return t;
}

TEST(EventIdTest, IsTwentySixCrockfordBase32Characters) {
  const std::string id = NewEventId(1'795'310'909'123);
  ASSERT_EQ(id.size(), 26u);
  for (char c : id) EXPECT_NE(kCrockford.find(c), std::string_view::npos) << id;
  EXPECT_LE(id[0], '7');  // 48-bit time in 50 bits: the first character carries 3 bits
}

// The generator is process-wide, so each test below works in its own stretch of time,
// far (more than the 10 s hold-back window) from the others and from real time.
constexpr int64_t kHour = 3'600'000;

TEST(EventIdTest, EncodesTheMillisecondTimeInTheFirstTenCharacters) {
  const int64_t ms = 100 * kHour;
  EXPECT_EQ(UlidMillis(NewEventId(ms)), ms);
  EXPECT_EQ(UlidMillis(NewEventId(ms + 1)), ms + 1);
  EXPECT_EQ(UlidMillis(NewEventId(ms + 12'345)), ms + 12'345);
}

TEST(EventIdTest, LargestUlidTimeEncodesAsSevenThenZs) {
  EXPECT_EQ(NewEventId((int64_t{1} << 48) - 1).substr(0, 10), "7ZZZZZZZZZ");
  EXPECT_EQ(NewEventId(int64_t{1} << 50).substr(0, 10), "7ZZZZZZZZZ");  // clamped
}

TEST(EventIdTest, NegativeTimeEncodesAsZero) {
  EXPECT_EQ(NewEventId(-5).substr(0, 10), "0000000000");
}

TEST(EventIdTest, SortedInGenerationOrderWithinOneMillisecond) {
  std::vector<std::string> ids;
  for (int i = 0; i < 10'000; ++i) ids.push_back(NewEventId(200 * kHour));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  EXPECT_EQ(UlidMillis(ids.back()), 200 * kHour);
}

TEST(EventIdTest, SortedInGenerationOrderWhenTheClockStepsBackALittle) {
  const int64_t ms = 300 * kHour;
  const std::string a = NewEventId(ms);
  const std::string b = NewEventId(ms - 5'000);
  const std::string c = NewEventId(ms - 1);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(UlidMillis(b), ms);  // held at the last time
  EXPECT_EQ(UlidMillis(c), ms);
}

TEST(EventIdTest, ALargeStepBackIsTakenAsTheNewTime) {
  const int64_t ms = 400 * kHour;
  const std::string a = NewEventId(ms);
  const std::string b = NewEventId(ms - kHour);
  EXPECT_EQ(UlidMillis(b), ms - kHour);
  EXPECT_GT(a, b);
}

TEST(EventIdTest, UniqueAcrossThreadsAndSortedWithinEachThread) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20'000;
  const int64_t base = 500 * kHour;
  std::vector<std::vector<std::string>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto& ids = per_thread[static_cast<size_t>(t)];
      ids.reserve(kPerThread);
      // Many ids share each millisecond; time advances every 1000 ids.
      for (int i = 0; i < kPerThread; ++i) ids.push_back(NewEventId(base + i / 1000));
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& ids : per_thread) {
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(EventIdTest, RandomHexIdIsThirtyTwoLowerHexCharactersAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = RandomHexId();
    ASSERT_EQ(id.size(), 32u);
    for (char c : id) ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace tailbus
