// The events.header encoding (schema.sql, "header encoding v1").
#include "storage/header_codec.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace tailbus::sqlite {
namespace {

TEST(HeaderCodecTest, RoundTripsEveryField) {
  EventHeader h;
  h.session_id = "ignored: not part of the header";
  h.event_type = "tool_call";
  h.event_id = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
  h.timestamp_ms = -12345;
  h.agent_id = "agent";
  h.tool_name = std::string(300, 't');  // a length needing two LEB128 bytes
  h.status = "ok";
  h.model = "m";
  h.feature_id = "f";
  h.parent_event_id = "p";
  h.cost_tokens = std::numeric_limits<int64_t>::max();
  h.duration_ms = 0.125;
  std::string blob = "prefix";  // encoding appends
  EncodeHeader(h, blob);
  HeaderView v;
  ASSERT_TRUE(DecodeHeader(blob.data() + 6, blob.size() - 6, v));
  EXPECT_EQ(v.timestamp_ms, -12345);
  EXPECT_EQ(v.cost_tokens, h.cost_tokens);
  EXPECT_EQ(v.duration_ms, h.duration_ms);
  EXPECT_EQ(v.event_type, h.event_type);
  EXPECT_EQ(v.event_id, h.event_id);
  EXPECT_EQ(v.agent_id, h.agent_id);
  EXPECT_EQ(v.tool_name, h.tool_name);
  EXPECT_EQ(v.status, h.status);
  EXPECT_EQ(v.model, h.model);
  EXPECT_EQ(v.feature_id, h.feature_id);
  EXPECT_EQ(v.parent_event_id, h.parent_event_id);
}

TEST(HeaderCodecTest, AbsentFieldsStayAbsent) {
  EventHeader h;
  h.event_type = "x";
  h.event_id = "y";
  h.duration_ms = 0.0;  // present even though zero
  std::string blob;
  EncodeHeader(h, blob);
  HeaderView v;
  v.cost_tokens = 7;  // stale values are cleared
  ASSERT_TRUE(DecodeHeader(blob.data(), blob.size(), v));
  EXPECT_FALSE(v.cost_tokens.has_value());
  EXPECT_EQ(v.duration_ms, std::optional<double>(0.0));
  EXPECT_TRUE(v.agent_id.empty());
  EXPECT_TRUE(v.parent_event_id.empty());
}

// Lengths on both sides of one LEB128 byte (127/128) and far beyond it.
TEST(HeaderCodecTest, RoundTripsLongStrings) {
  for (size_t n : {0, 1, 127, 128, 300, 16'384, 70'000}) {
    SCOPED_TRACE(n);
    EventHeader h;
    h.event_type = "t";
    h.event_id = std::string(n, 'i');
    h.agent_id = std::string(n / 2, 'a');
    h.parent_event_id = std::string(n, 'p');
    std::string blob;
    EncodeHeader(h, blob);
    HeaderView v;
    ASSERT_TRUE(DecodeHeader(blob.data(), blob.size(), v));
    EXPECT_EQ(v.event_type, "t");
    EXPECT_EQ(v.event_id, h.event_id);
    EXPECT_EQ(v.agent_id, h.agent_id);
    EXPECT_EQ(v.parent_event_id, h.parent_event_id);
    EXPECT_TRUE(v.model.empty());
  }
}

// A one-byte length that claims more bytes than remain is rejected.
TEST(HeaderCodecTest, RejectsLengthPastTheEnd) {
  EventHeader h;
  h.event_type = "abc";
  h.event_id = "y";
  std::string blob;
  EncodeHeader(h, blob);
  HeaderView v;
  ASSERT_TRUE(DecodeHeader(blob.data(), blob.size(), v));
  blob[9] = 0x7f;  // event_type's length byte (after flags and timestamp)
  EXPECT_FALSE(DecodeHeader(blob.data(), blob.size(), v));
}

TEST(HeaderCodecTest, RejectsTruncatedTrailingAndUnknownFlags) {
  EventHeader h;
  h.event_type = "x";
  h.event_id = "y";
  h.cost_tokens = 3;
  std::string blob;
  EncodeHeader(h, blob);
  HeaderView v;
  for (size_t n = 0; n < blob.size(); ++n) {
    EXPECT_FALSE(DecodeHeader(blob.data(), n, v)) << "truncated to " << n;
  }
  std::string trailing = blob + "z";
  EXPECT_FALSE(DecodeHeader(trailing.data(), trailing.size(), v));
  std::string flags = blob;
  flags[0] = static_cast<char>(0x04);
  EXPECT_FALSE(DecodeHeader(flags.data(), flags.size(), v));
  EXPECT_FALSE(DecodeHeader(nullptr, 0, v));
}

}  // namespace
}  // namespace tailbus::sqlite
