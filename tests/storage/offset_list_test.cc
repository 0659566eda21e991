// The session_segments.offsets encoding (storage/offset_list.h): round trips,
// the window a reader asks for, and every malformed blob rejected.
#include "storage/offset_list.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace tailbus::sqlite {
namespace {

constexpr int64_t kAll = std::numeric_limits<int64_t>::max();
constexpr size_t kNoMax = std::numeric_limits<size_t>::max();

std::string Encode(const std::vector<int64_t>& offsets) {
  std::string blob;
  EncodeOffsetList(offsets, blob);
  return blob;
}

std::vector<int64_t> DecodeOrDie(const std::vector<int64_t>& offsets, int64_t after,
                                 int64_t through, size_t max) {
  std::vector<int64_t> out;
  EXPECT_TRUE(
      DecodeOffsetList(offsets.front(), offsets.back(), Encode(offsets), after, through, max, out));
  return out;
}

TEST(OffsetListTest, RoundTripsSmallAndLargeDistances) {
  const std::vector<int64_t> offsets{1, 2, 130, 131, 20'000, 5'000'000'000, kAll - 1};
  EXPECT_EQ(DecodeOrDie(offsets, 0, kAll, kNoMax), offsets);
  EXPECT_EQ(DecodeOrDie({42}, 0, kAll, kNoMax), std::vector<int64_t>{42});
  EXPECT_EQ(Encode({42}), "");
  EXPECT_EQ(Encode({1, 2, 3}), std::string("\x01\x01", 2));
  EXPECT_EQ(Encode({1, 129}), std::string("\x80\x01", 2));  // distance 128: two bytes
}

TEST(OffsetListTest, KeepsOnlyTheWindowAskedFor) {
  const std::vector<int64_t> offsets{10, 20, 30, 40, 50};
  EXPECT_EQ(DecodeOrDie(offsets, 20, kAll, kNoMax), (std::vector<int64_t>{30, 40, 50}));
  EXPECT_EQ(DecodeOrDie(offsets, 25, 40, kNoMax), (std::vector<int64_t>{30, 40}));
  EXPECT_EQ(DecodeOrDie(offsets, 0, 9, kNoMax), std::vector<int64_t>{});
  EXPECT_EQ(DecodeOrDie(offsets, 50, kAll, kNoMax), std::vector<int64_t>{});
  EXPECT_EQ(DecodeOrDie(offsets, 0, kAll, 2), (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(DecodeOrDie(offsets, 15, kAll, 1), (std::vector<int64_t>{20}));
}

TEST(OffsetListTest, AppendsAfterWhatTheVectorHolds) {
  std::vector<int64_t> out{1, 2};
  ASSERT_TRUE(DecodeOffsetList(5, 6, Encode({5, 6}), 0, kAll, kNoMax, out));
  EXPECT_EQ(out, (std::vector<int64_t>{1, 2, 5, 6}));
}

TEST(OffsetListTest, RejectsMalformedBlobs) {
  std::vector<int64_t> out;
  auto rejects = [&](int64_t first, int64_t last, const std::string& blob) {
    out.clear();
    return !DecodeOffsetList(first, last, blob, 0, kAll, kNoMax, out);
  };
  EXPECT_TRUE(rejects(10, 10, std::string("\x00", 1)));    // zero distance
  EXPECT_TRUE(rejects(10, 20, "\x85"));                    // truncated varint
  EXPECT_TRUE(rejects(10, 20, "\x05"));                    // ends at 15, row says 20
  EXPECT_TRUE(rejects(10, 12, "\x05"));                    // past last_offset
  EXPECT_TRUE(rejects(10, 9, ""));                         // first after last
  EXPECT_TRUE(rejects(1, kAll, std::string(10, '\xff')));  // overlong varint
  EXPECT_FALSE(rejects(10, 15, "\x05"));
}

}  // namespace
}  // namespace tailbus::sqlite
