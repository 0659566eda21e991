// RFC 6455 frame headers (ws/ws_frame.h): the three length forms and the
// mask bit, at their boundaries.
#include "ws/ws_frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tailbus::ws {
namespace {

std::vector<int> Header(uint64_t len, bool masked) {
  uint8_t out[kMaxFrameHeaderBytes];
  const size_t n = EncodeFrameHeader(kOpText, len, masked, out);
  return std::vector<int>(out, out + n);
}

TEST(WsFrameTest, EncodesEachLengthFormAtItsBoundaries) {
  EXPECT_EQ(Header(0, false), (std::vector<int>{0x81, 0}));
  EXPECT_EQ(Header(125, false), (std::vector<int>{0x81, 125}));
  EXPECT_EQ(Header(126, false), (std::vector<int>{0x81, 126, 0, 126}));
  EXPECT_EQ(Header(0xffff, false), (std::vector<int>{0x81, 126, 0xff, 0xff}));
  EXPECT_EQ(Header(0x10000, false), (std::vector<int>{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(Header(5, true), (std::vector<int>{0x81, 0x85}));
  EXPECT_EQ(Header(300, true), (std::vector<int>{0x81, 0x80 | 126, 1, 44}));
}

TEST(WsFrameTest, ServerTextFramesConcatenate) {
  std::string out;
  AppendServerTextFrame(out, "{}");
  AppendServerTextFrame(out, std::string(200, 'a'));
  ASSERT_EQ(out.size(), 2u + 2 + 4 + 200);
  EXPECT_EQ(out.substr(0, 4), std::string("\x81\x02{}", 4));
  EXPECT_EQ(out.substr(4, 4), std::string("\x81\x7e\x00\xc8", 4));
}

}  // namespace
}  // namespace tailbus::ws
