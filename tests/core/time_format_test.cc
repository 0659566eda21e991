#include "core/time_format.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

namespace tailbus {
namespace {

constexpr int64_t kMinMs = -62167219200000;  // 0000-01-01T00:00:00.000Z
constexpr int64_t kMaxMs = 253402300799999;  // 9999-12-31T23:59:59.999Z

TEST(TimeFormatTest, FormatsEpochZero) {
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
}

TEST(TimeFormatTest, FormatsKnownInstantsWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339Millis(1'795'310'909'123), "2026-11-22T01:28:29.123Z");
  EXPECT_EQ(FormatRfc3339Millis(951'782'400'000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(1'709'164'800'001), "2024-02-29T00:00:00.001Z");
  EXPECT_EQ(FormatRfc3339Millis(4'102'444'799'999), "2099-12-31T23:59:59.999Z");
}

TEST(TimeFormatTest, FormatsInstantsBefore1970) {
  EXPECT_EQ(FormatRfc3339Millis(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(-86'400'000), "1969-12-31T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-2'208'988'800'000), "1900-01-01T00:00:00.000Z");
}

TEST(TimeFormatTest, FormatsRangeEdges) {
  EXPECT_EQ(FormatRfc3339Millis(kMinMs), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(kMaxMs), "9999-12-31T23:59:59.999Z");
}

TEST(TimeFormatTest, FormatClampsOutsideFourDigitYears) {
  EXPECT_EQ(FormatRfc3339Millis(kMinMs - 1), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(kMaxMs + 1), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(INT64_MIN), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(INT64_MAX), "9999-12-31T23:59:59.999Z");
}

TEST(TimeFormatTest, ParsesCanonicalForm) {
  EXPECT_EQ(ParseRfc3339Millis("2026-11-22T01:28:29.123Z"), 1'795'310'909'123);
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T00:00:00Z"), 0);
}

TEST(TimeFormatTest, ParsesLowerCaseAndSpaceSeparators) {
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01t00:00:01z"), 1000);
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01 00:00:01Z"), 1000);
}

TEST(TimeFormatTest, AppliesNumericOffsets) {
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T02:00:00+02:00"), 0);
  EXPECT_EQ(ParseRfc3339Millis("1969-12-31T19:00:00-05:00"), 0);
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T05:30:00.5+05:30"), 500);
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T00:00:00-00:00"), 0);
  EXPECT_EQ(ParseRfc3339Millis("2000-01-01T00:00:00+23:59"), 946'684'800'000 - 86'340'000);
}

TEST(TimeFormatTest, FractionOfAnyLengthIsTruncatedToMillis) {
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T00:00:00.5Z"), 500);
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T00:00:00.05Z"), 50);
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T00:00:00.123Z"), 123);
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T00:00:00.123999Z"), 123);
  EXPECT_EQ(ParseRfc3339Millis("1970-01-01T00:00:00.999999999999999999999Z"), 999);
  EXPECT_EQ(ParseRfc3339Millis("1969-12-31T23:59:59.9999Z"), -1);
}

TEST(TimeFormatTest, LeapSecondClampsToEndOfMinute) {
  EXPECT_EQ(ParseRfc3339Millis("2016-12-31T23:59:60Z"),
            ParseRfc3339Millis("2016-12-31T23:59:59.999Z"));
  EXPECT_EQ(ParseRfc3339Millis("2016-12-31T23:59:60.5Z"),
            ParseRfc3339Millis("2016-12-31T23:59:59.999Z"));
}

TEST(TimeFormatTest, AcceptsLeapDays) {
  EXPECT_TRUE(ParseRfc3339Millis("2024-02-29T00:00:00Z").has_value());
  EXPECT_TRUE(ParseRfc3339Millis("2000-02-29T00:00:00Z").has_value());
  EXPECT_TRUE(ParseRfc3339Millis("0000-02-29T00:00:00Z").has_value());
  EXPECT_TRUE(ParseRfc3339Millis("2023-04-30T00:00:00Z").has_value());
}

TEST(TimeFormatTest, AcceptsYearRangeEdges) {
  EXPECT_EQ(ParseRfc3339Millis("0000-01-01T00:00:00Z"), kMinMs);
  EXPECT_EQ(ParseRfc3339Millis("9999-12-31T23:59:59.999Z"), kMaxMs);
  EXPECT_EQ(ParseRfc3339Millis("9999-12-31T23:59:59.999+00:00"), kMaxMs);
}

TEST(TimeFormatTest, RejectsMalformedAndOutOfRange) {
  const char* bad[] = {
      "",
      "2026",
      "2026-11-22",
      "2026-11-22T01:48:29",        // no zone
      "2026-11-22T01:48Z",          // no seconds
      "2026-11-22T01:48:29.Z",      // empty fraction
      "2026-11-22T01:48:29,5Z",     // comma fraction
      "2026-11-22X01:48:29Z",       // bad separator
      "2026-11-22T01:48:29ZZ",      // trailing garbage
      "2026-11-22T01:48:29Z ",      // trailing space
      " 2026-11-22T01:48:29Z",      // leading space
      "26-11-22T01:48:29Z",         // two-digit year
      "+2026-11-22T01:48:29Z",      // signed year
      "2026-1-22T01:48:29Z",        // one-digit month
      "2026-00-22T01:48:29Z",       // month 0
      "2026-13-22T01:48:29Z",       // month 13
      "2026-11-00T01:48:29Z",       // day 0
      "2026-11-31T01:48:29Z",       // November has 30 days
      "2023-02-29T00:00:00Z",       // not a leap year
      "1900-02-29T00:00:00Z",       // century, not a leap year
      "2026-11-22T24:00:00Z",       // hour 24
      "2026-11-22T01:60:00Z",       // minute 60
      "2026-11-22T01:48:61Z",       // second 61
      "2026-11-22T01:48:29+2:00",   // one-digit offset hour
      "2026-11-22T01:48:29+0200",   // offset without colon
      "2026-11-22T01:48:29+24:00",  // offset hour 24
      "2026-11-22T01:48:29+02:60",  // offset minute 60
      "2026-11-22T01:48:29+02",     // offset without minutes
      "0000-01-01T00:00:00+00:01",  // before year 0000 in UTC
      "9999-12-31T23:59:59-00:01",  // after year 9999 in UTC
      "2026-11-22T01:48:29.12a3Z",  // non-digit in fraction
      "２０２６-11-22T01:48:29Z",   // non-ASCII digits
  };
  for (const char* text : bad) {
    EXPECT_FALSE(ParseRfc3339Millis(text).has_value()) << text;
  }
}

TEST(TimeFormatTest, RejectsEmbeddedNul) {
  EXPECT_FALSE(ParseRfc3339Millis(std::string_view("1970-01-01T00:00:00Z\0", 21)).has_value());
}

TEST(TimeFormatTest, FormatThenParseRoundTripsEveryMillisecondEdgeAndRandomInstants) {
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int64_t> dist(kMinMs, kMaxMs);
  for (int i = 0; i < 200'000; ++i) {
    const int64_t ms = dist(rng);
    const std::string text = FormatRfc3339Millis(ms);
    ASSERT_EQ(ParseRfc3339Millis(text), ms) << text;
  }
  for (int64_t ms : {kMinMs, kMinMs + 1, int64_t{-1}, int64_t{0}, int64_t{1}, kMaxMs - 1, kMaxMs}) {
    EXPECT_EQ(ParseRfc3339Millis(FormatRfc3339Millis(ms)), ms) << ms;
  }
}

TEST(TimeFormatTest, EveryDayOfFourHundredYearsRoundTripsAndIsIncreasing) {
  // One full Gregorian cycle, crossing 1970 and 2000.
  constexpr int64_t kDay = 86'400'000;
  const int64_t start = *ParseRfc3339Millis("1800-01-01T00:00:00Z");
  std::string previous;
  for (int64_t d = 0; d < 146'097; ++d) {
    const int64_t ms = start + d * kDay + 43'200'000;
    const std::string text = FormatRfc3339Millis(ms);
    ASSERT_EQ(ParseRfc3339Millis(text), ms) << text;
    ASSERT_LT(previous, text);
    previous = text;
  }
  EXPECT_EQ(previous, "2199-12-31T12:00:00.000Z");
}

TEST(TimeFormatTest, NowMillisIsCloseToSystemClock) {
  const int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t now = NowMillis();
  const int64_t after = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

}  // namespace
}  // namespace tailbus
