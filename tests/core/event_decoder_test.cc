#include "core/event_decoder.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/time_format.h"

namespace tailbus {
namespace {

// 2026-11-22T01:28:29.123Z
constexpr int64_t kNow = 1'795'310'909'123;
constexpr const char* kNowText = "2026-11-22T01:28:29.123Z";

// The members every valid test event needs, with a given id and time so bodies are exact.
constexpr const char* kBase =
    R"("session_id":"s1","event_type":"tool_call","event_id":"e1","timestamp":"2026-11-22T01:28:29.123Z")";

std::string Event(const std::string& extra_members = "") {
  std::string out = "{";
  out += kBase;
  if (!extra_members.empty()) out += "," + extra_members;
  out += "}";
  return out;
}

DecodeResult Decode(std::string_view json, const DecodeLimits& limits = {}) {
  return DecodeEvents(json, limits, kNow);
}

DecodeResult DecodeLines(std::string_view text, const DecodeLimits& limits = {}) {
  return DecodeNdjson(text, limits, kNow);
}

std::vector<std::string> Messages(const DecodeResult& r) {
  std::vector<std::string> out;
  for (const FieldError& e : r.errors) out.push_back(e.ToString());
  return out;
}

// The body of the one event `json` decodes to, or the errors.
std::string BodyOf(std::string_view json) {
  DecodeResult r = Decode(json);
  if (!r.ok()) return "ERROR: " + r.ToStatus().ToString();
  if (r.events.size() != 1) return "ERROR: " + std::to_string(r.events.size()) + " events";
  return r.events[0].body;
}

// ---------------------------------------------------------------------------------------------
// Rejections: one malformed event, its exact message.

struct RejectCase {
  const char* name;
  std::string json;
  std::string error;
};

std::string Repeat(char c, size_t n) { return std::string(n, c); }

std::vector<RejectCase> RejectCases() {
  const std::string event_type_rule = "must match [A-Za-z0-9_.:-]{1,64}, got ";
  const std::string session_rule = "must be a string of 1-128 printable bytes, got ";
  const std::string optional_rule =
      "must be null or a string of at most 256 bytes without control characters, got ";
  const std::string timestamp_rule =
      "must be an RFC 3339 date-time string or epoch milliseconds in years 0000-9999, got ";
  return {
      {"MissingSessionId", R"({"event_type":"x"})", "events[0].session_id: missing"},
      {"MissingEventType", R"({"session_id":"s"})", "events[0].event_type: missing"},
      {"EmptySessionId", R"({"session_id":"","event_type":"x"})",
       "events[0].session_id: " + session_rule + R"("")"},
      {"SessionIdNotString", R"({"session_id":12,"event_type":"x"})",
       "events[0].session_id: " + session_rule + "12"},
      {"SessionIdNull", R"({"session_id":null,"event_type":"x"})",
       "events[0].session_id: " + session_rule + "null"},
      {"SessionIdTooLongIsQuotedTruncated",
       R"({"session_id":")" + Repeat('a', 129) + R"(","event_type":"x"})",
       "events[0].session_id: " + session_rule + "\"" + Repeat('a', 39) + "\xE2\x80\xA6"},
      {"SessionIdWithControlCharacter", R"({"session_id":"a\u0001b","event_type":"x"})",
       "events[0].session_id: " + session_rule + R"("a\u0001b")"},
      {"SessionIdWithTab", R"({"session_id":"a\tb","event_type":"x"})",
       "events[0].session_id: " + session_rule + R"("a\tb")"},
      {"SessionIdWithDel",
       R"({"session_id":"a)"
       "\x7f"
       R"(b","event_type":"x"})",
       "events[0].session_id: " + session_rule +
           "\"a\x7f"
           "b\""},
      {"SessionIdWithC1Control", R"({"session_id":"a\u0085b","event_type":"x"})",
       "events[0].session_id: " + session_rule +
           "\"a\xC2\x85"
           "b\""},
      {"EventTypeWithSpace", R"({"session_id":"s","event_type":"a b"})",
       "events[0].event_type: " + event_type_rule + R"("a b")"},
      {"EventTypeEmpty", R"({"session_id":"s","event_type":""})",
       "events[0].event_type: " + event_type_rule + R"("")"},
      {"EventTypeTooLong", R"({"session_id":"s","event_type":")" + Repeat('t', 65) + R"("})",
       "events[0].event_type: " + event_type_rule + "\"" + Repeat('t', 39) + "\xE2\x80\xA6"},
      {"EventTypeNonAscii", R"({"session_id":"s","event_type":"caf\u00e9"})",
       "events[0].event_type: " + event_type_rule + "\"caf\xC3\xA9\""},
      {"EventTypeNull", R"({"session_id":"s","event_type":null,"type":"ok"})",
       "events[0].event_type: " + event_type_rule + "null"},
      {"EventTypeNumber", R"({"session_id":"s","event_type":7})",
       "events[0].event_type: " + event_type_rule + "7"},
      {"TypeFallbackIsValidatedUnderItsOwnName", R"({"session_id":"s","type":"a/b"})",
       "events[0].type: " + event_type_rule + R"("a/b")"},
      {"EventIdEmpty", R"({"session_id":"s","event_type":"t","event_id":""})",
       R"(events[0].event_id: must be a string of 1-128 printable bytes, got "")"},
      {"EventIdNumber", R"({"session_id":"s","event_type":"t","event_id":5})",
       "events[0].event_id: must be a string of 1-128 printable bytes, got 5"},
      {"EventIdNull", R"({"session_id":"s","event_type":"t","event_id":null})",
       "events[0].event_id: must be a string of 1-128 printable bytes, got null"},
      {"EventIdTooLong",
       R"({"session_id":"s","event_type":"t","event_id":")" + Repeat('i', 129) + R"("})",
       "events[0].event_id: must be a string of 1-128 printable bytes, got \"" + Repeat('i', 39) +
           "\xE2\x80\xA6"},
      {"TimestampNotRfc3339", R"({"session_id":"s","event_type":"t","timestamp":"yesterday"})",
       "events[0].timestamp: " + timestamp_rule + R"("yesterday")"},
      {"TimestampWithoutZone",
       R"({"session_id":"s","event_type":"t","timestamp":"2026-11-22T01:28:29"})",
       "events[0].timestamp: " + timestamp_rule + R"("2026-11-22T01:28:29")"},
      {"TimestampBoolean", R"({"session_id":"s","event_type":"t","timestamp":true})",
       "events[0].timestamp: " + timestamp_rule + "true"},
      {"TimestampNull", R"({"session_id":"s","event_type":"t","timestamp":null})",
       "events[0].timestamp: " + timestamp_rule + "null"},
      {"TimestampAfterYear9999",
       R"({"session_id":"s","event_type":"t","timestamp":253402300800000})",
       "events[0].timestamp: " + timestamp_rule + "253402300800000"},
      {"TimestampBeforeYear0000",
       R"({"session_id":"s","event_type":"t","timestamp":-62167219200001})",
       "events[0].timestamp: " + timestamp_rule + "-62167219200001"},
      {"TimestampHugeUnsigned",
       R"({"session_id":"s","event_type":"t","timestamp":18446744073709551615})",
       "events[0].timestamp: " + timestamp_rule + "18446744073709551615"},
      {"AgentIdNumber", R"({"session_id":"s","event_type":"t","agent_id":5})",
       "events[0].agent_id: " + optional_rule + "5"},
      {"ToolNameWithNewline", R"({"session_id":"s","event_type":"t","tool_name":"a\nb"})",
       "events[0].tool_name: " + optional_rule + R"("a\nb")"},
      {"StatusBoolean", R"({"session_id":"s","event_type":"t","status":false})",
       "events[0].status: " + optional_rule + "false"},
      {"ModelTooLong",
       R"({"session_id":"s","event_type":"t","model":")" + Repeat('m', 257) + R"("})",
       "events[0].model: " + optional_rule + "\"" + Repeat('m', 39) + "\xE2\x80\xA6"},
      {"FeatureIdArray", R"({"session_id":"s","event_type":"t","feature_id":["f"]})",
       "events[0].feature_id: " + optional_rule + R"(["f"])"},
      {"ParentEventIdObject", R"({"session_id":"s","event_type":"t","parent_event_id":{}})",
       "events[0].parent_event_id: " + optional_rule + "{}"},
      {"CostTokensString", R"({"session_id":"s","event_type":"t","cost_tokens":"12a"})",
       R"(events[0].cost_tokens: must be a non-negative integer, got "12a")"},
      {"CostTokensNegative", R"({"session_id":"s","event_type":"t","cost_tokens":-1})",
       "events[0].cost_tokens: must be a non-negative integer, got -1"},
      {"CostTokensFraction", R"({"session_id":"s","event_type":"t","cost_tokens":1.5})",
       "events[0].cost_tokens: must be a non-negative integer, got 1.5"},
      {"CostTokensIntegralDouble", R"({"session_id":"s","event_type":"t","cost_tokens":12.0})",
       "events[0].cost_tokens: must be a non-negative integer, got 12.0"},
      {"CostTokensExponent", R"({"session_id":"s","event_type":"t","cost_tokens":1e3})",
       "events[0].cost_tokens: must be a non-negative integer, got 1000.0"},
      {"CostTokensNull", R"({"session_id":"s","event_type":"t","cost_tokens":null})",
       "events[0].cost_tokens: must be a non-negative integer, got null"},
      {"CostTokensBeyondInt64",
       R"({"session_id":"s","event_type":"t","cost_tokens":9223372036854775808})",
       "events[0].cost_tokens: must be at most 9223372036854775807, got 9223372036854775808"},
      {"TotalTokensUsedForDerivationMustBeAnInteger",
       R"({"session_id":"s","event_type":"t","total_tokens":"x"})",
       R"(events[0].total_tokens: must be a non-negative integer to derive cost_tokens, got "x")"},
      {"PromptTokensUsedForDerivationMustBeNonNegative",
       R"({"session_id":"s","event_type":"t","prompt_tokens":-1,"completion_tokens":2})",
       "events[0].prompt_tokens: must be a non-negative integer to derive cost_tokens, got -1"},
      {"CompletionTokensUsedForDerivationMustBeAnInteger",
       R"({"session_id":"s","event_type":"t","prompt_tokens":1,"completion_tokens":2.5})",
       "events[0].completion_tokens: must be a non-negative integer to derive cost_tokens, got "
       "2.5"},
      {"PromptPlusCompletionOverflow",
       R"({"session_id":"s","event_type":"t","prompt_tokens":9223372036854775807,"completion_tokens":1})",
       "events[0].cost_tokens: prompt_tokens + completion_tokens exceeds 9223372036854775807"},
      {"DurationNegative", R"({"session_id":"s","event_type":"t","duration_ms":-1})",
       "events[0].duration_ms: must be a finite number >= 0, got -1"},
      {"DurationString", R"({"session_id":"s","event_type":"t","duration_ms":"5"})",
       R"(events[0].duration_ms: must be a finite number >= 0, got "5")"},
      {"ExecutionSecondsUsedForDerivationMustBeANumber",
       R"({"session_id":"s","event_type":"t","execution_duration_seconds":"1s"})",
       R"(events[0].execution_duration_seconds: must be a finite number >= 0 to derive duration_ms, got "1s")"},
      {"ExecutionSecondsNegative",
       R"({"session_id":"s","event_type":"t","execution_duration_seconds":-0.5})",
       "events[0].execution_duration_seconds: must be a finite number >= 0 to derive duration_ms, "
       "got -0.5"},
      {"ExecutionSecondsTooLargeForMilliseconds",
       R"({"session_id":"s","event_type":"t","execution_duration_seconds":1e306})",
       "events[0].duration_ms: execution_duration_seconds * 1000 is not a finite number, got "
       "1e306"},
      {"LongObjectValueIsQuotedTruncated",
       R"({"session_id":{"k":"0123456789012345678901234567890123456789"},"event_type":"t"})",
       "events[0].session_id: " + session_rule + R"({"k":"0123456789012345678901234567890123)" +
           "\xE2\x80\xA6"},  // 40 bytes, then the ellipsis
  };
}

TEST(EventDecoderTest, RejectsEachMalformedEventWithItsExactMessage) {
  for (const RejectCase& c : RejectCases()) {
    SCOPED_TRACE(c.name);
    DecodeResult r = Decode(c.json);
    EXPECT_TRUE(r.events.empty());
    EXPECT_EQ(r.error_count, 1u);
    ASSERT_EQ(r.errors.size(), 1u) << testing::PrintToString(Messages(r));
    EXPECT_EQ(r.errors[0].ToString(), c.error);
    EXPECT_EQ(r.errors[0].index, std::optional<size_t>(0));
  }
}

TEST(EventDecoderTest, RejectsEachMalformedEventAlsoAsAnNdjsonLine) {
  for (const RejectCase& c : RejectCases()) {
    SCOPED_TRACE(c.name);
    DecodeResult r = DecodeLines(Event() + "\n" + c.json + "\n");
    EXPECT_TRUE(r.events.empty());
    ASSERT_EQ(r.errors.size(), 1u) << testing::PrintToString(Messages(r));
    std::string expected = c.error;
    expected.replace(0, 9, "events[1]");
    EXPECT_EQ(r.errors[0].ToString(), expected);
  }
}

TEST(EventDecoderTest, ErrorFieldsAreSplitIntoIndexFieldAndReason) {
  DecodeResult r = Decode(R"([{"session_id":"s","event_type":"t"},{"event_type":"t"}])");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].index, std::optional<size_t>(1));
  EXPECT_EQ(r.errors[0].field, "session_id");
  EXPECT_EQ(r.errors[0].reason, "missing");
}

TEST(EventDecoderTest, ReportsEveryProblemOfOneEvent) {
  DecodeResult r = Decode(R"({"event_type":"a b","cost_tokens":-1,"agent_id":1})");
  EXPECT_EQ(Messages(r),
            (std::vector<std::string>{
                "events[0].session_id: missing",
                R"(events[0].event_type: must match [A-Za-z0-9_.:-]{1,64}, got "a b")",
                "events[0].agent_id: must be null or a string of at most 256 bytes without "
                "control characters, got 1",
                "events[0].cost_tokens: must be a non-negative integer, got -1",
            }));
  EXPECT_EQ(r.error_count, 4u);
}

TEST(EventDecoderTest, RejectsBatchWithOneBadEvent) {
  const std::string batch = "[" + Event() + "," + R"({"session_id":"s"})" + "," + Event() + "]";
  DecodeResult r = Decode(batch);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(Messages(r), std::vector<std::string>{"events[1].event_type: missing"});
  EXPECT_FALSE(r.ok());
}

TEST(EventDecoderTest, RejectsBatchElementsThatAreNotObjects) {
  DecodeResult r = Decode("[" + Event() + R"(,[1],3,"s",null,true])");
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(Messages(r), (std::vector<std::string>{
                             "events[1]: must be a JSON object, got array",
                             "events[2]: must be a JSON object, got number",
                             "events[3]: must be a JSON object, got string",
                             "events[4]: must be a JSON object, got null",
                             "events[5]: must be a JSON object, got boolean",
                         }));
}

TEST(EventDecoderTest, ReportsWholeInputProblemsAsBody) {
  struct Case {
    std::string input;
    std::string error;
  };
  const Case cases[] = {
      {"", "body: empty input"},
      {" \n\t\r ", "body: empty input"},
      {"[]", "body: empty batch"},
      {" [ ] ", "body: empty batch"},
      {R"("event")", "body: must be a JSON object or an array of objects, got string"},
      {"42", "body: must be a JSON object or an array of objects, got number"},
      {"null", "body: must be a JSON object or an array of objects, got null"},
      {"true", "body: must be a JSON object or an array of objects, got boolean"},
      {R"({"a":)", "body: invalid JSON at byte 5: Invalid value."},
      {R"({"a":1)", "body: invalid JSON at byte 6: Missing a comma or '}' after an object member."},
      {R"({"a":1}x)",
       "body: invalid JSON at byte 7: The document root must not be followed by "
       "other values."},
      {R"({"a":1} {"b":2})",
       "body: invalid JSON at byte 8: The document root must not be "
       "followed by other values."},
      {R"([{"a":1},])", "body: invalid JSON at byte 9: Invalid value."},
      {R"({'a':1})", "body: invalid JSON at byte 1: Missing a name for object member."},
      {R"({"a":NaN})", "body: invalid JSON at byte 5: Invalid value."},
      {R"({"a":1e999})", "body: invalid JSON at byte 5: Number too big to be stored in double."},
      {R"({"a":"\ud800"})",
       "body: invalid JSON at byte 6: The surrogate pair in string is invalid."},
      {R"({"a":"\x"})", "body: invalid JSON at byte 6: Invalid escape character in string."},
      {"{\"a\":\"x\ny\"}", "body: invalid JSON at byte 7: Invalid escape character in string."},
      {"abc", "body: invalid JSON at byte 0: Invalid value."},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    DecodeResult r = Decode(c.input);
    EXPECT_TRUE(r.events.empty());
    ASSERT_EQ(r.errors.size(), 1u) << testing::PrintToString(Messages(r));
    EXPECT_EQ(r.errors[0].ToString(), c.error);
    EXPECT_EQ(r.errors[0].index, std::nullopt);
    EXPECT_EQ(r.errors[0].field, "body");
  }
}

TEST(EventDecoderTest, RejectsNulByteOutsideAndInsideStrings) {
  const std::string after_root = Event() + std::string("\0", 1) + "{}";
  EXPECT_EQ(Messages(Decode(after_root)),
            std::vector<std::string>{"body: invalid JSON at byte " +
                                     std::to_string(Event().size()) + ": NUL character"});
  const std::string in_string =
      std::string(R"({"session_id":"a)") + std::string("\0", 1) + R"(b","event_type":"t"})";
  EXPECT_EQ(Messages(Decode(in_string)),
            std::vector<std::string>{"body: invalid JSON at byte 16: NUL character"});
}

TEST(EventDecoderTest, RejectsInvalidUtf8) {
  struct Case {
    const char* name;
    std::string bytes;  // inside a string member value starting at byte 15
  };
  const Case cases[] = {
      {"LoneContinuationByte", "\x80"},      {"OverlongSlash", "\xC0\xAF"},
      {"OverlongThreeByte", "\xE0\x80\xAF"}, {"Utf16Surrogate", "\xED\xA0\x80"},
      {"BeyondU10FFFF", "\xF4\x90\x80\x80"}, {"InvalidLeadByte", "\xFF"},
      {"TruncatedSequence", "\xE2\x82"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string json = R"({"session_id":")" + c.bytes + R"(","event_type":"t"})";
    EXPECT_EQ(Messages(Decode(json)), std::vector<std::string>{"body: invalid UTF-8 at byte 15"});
  }
  // In a member name, too.
  EXPECT_EQ(Messages(Decode(std::string("{\"k\xFF\":1}"))),
            std::vector<std::string>{"body: invalid UTF-8 at byte 3"});
}

TEST(EventDecoderTest, AcceptsValidMultiByteUtf8) {
  const std::string body = BodyOf(Event(R"("msg":"h)"
                                        "\xC3\xA9"
                                        "llo \xE2\x9C\x93 \xF0\x9F\x98\x80\""));
  EXPECT_EQ(body, Event(R"("msg":"h)"
                        "\xC3\xA9"
                        "llo \xE2\x9C\x93 \xF0\x9F\x98\x80\""));
}

TEST(EventDecoderTest, AcceptsUtf8SessionIdBeyondAscii) {
  DecodeResult r = Decode(R"({"session_id":"s\u00e9ance \u2713","event_type":"t"})");
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_EQ(r.events[0].header.session_id,
            "s\xC3\xA9"
            "ance \xE2\x9C\x93");
}

TEST(EventDecoderTest, AcceptsLeadingUtf8ByteOrderMark) {
  DecodeResult r = Decode("\xEF\xBB\xBF" + Event());
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_EQ(r.events[0].body, Event());
  DecodeResult lines = DecodeLines("\xEF\xBB\xBF" + Event() + "\n" + Event());
  ASSERT_TRUE(lines.ok()) << lines.ToStatus().ToString();
  EXPECT_EQ(lines.events.size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Normalisation: input -> exact body.

struct NormaliseCase {
  const char* name;
  std::string input;
  std::string body;
};

std::vector<NormaliseCase> NormaliseCases() {
  const std::string ts = R"("timestamp":"2026-11-22T01:28:29.123Z")";
  const std::string head = R"({"session_id":"s1","event_type":"tool_call","event_id":"e1",)";
  return {
      {"CompleteEventIsKeptAsIs", Event(), Event()},
      {"WhitespaceIsRemoved",
       " {\n  \"session_id\" : \"s1\",\t\"event_type\":\"tool_call\" ,\"event_id\":\"e1\",\r\n"
       "\"timestamp\":\"2026-11-22T01:28:29.123Z\" }\n",
       Event()},
      {"TypeBecomesEventTypeAppended",
       R"({"session_id":"s1","type":"tool_call","event_id":"e1",)" + ts + "}",
       R"({"session_id":"s1","type":"tool_call","event_id":"e1",)" + ts +
           R"(,"event_type":"tool_call"})"},
      {"EventTypeWinsOverTypeAndBothAreKept",
       R"({"type":{"not":"validated"},"session_id":"s1","event_type":"tool_call","event_id":"e1",)" +
           ts + "}",
       R"({"type":{"not":"validated"},"session_id":"s1","event_type":"tool_call","event_id":"e1",)" +
           ts + "}"},
      {"TimestampAbsentIsAppendedAsNow", R"({"session_id":"s1","event_type":"t","event_id":"e1"})",
       R"({"session_id":"s1","event_type":"t","event_id":"e1",)" + ts + "}"},
      {"TimestampWithOffsetIsReplacedInPlaceAsUtcMillis",
       R"({"timestamp":"2026-11-22T03:28:29.5+02:00","session_id":"s1","event_type":"t","event_id":"e1"})",
       R"({"timestamp":"2026-11-22T01:28:29.500Z","session_id":"s1","event_type":"t","event_id":"e1"})"},
      {"TimestampWithoutFractionGetsMillis", head + R"("timestamp":"2026-11-22t01:28:29z"})",
       head + R"("timestamp":"2026-11-22T01:28:29.000Z"})"},
      {"TimestampEpochMillisIsReplacedInPlace", head + R"("timestamp":1795310909123,"x":1})",
       head + ts + R"(,"x":1})"},
      {"TimestampEpochMillisAsDoubleIsFloored", head + R"("timestamp":1.7953109091239e12})",
       head + ts + "}"},
      {"TimestampNegativeEpochMillis", head + R"("timestamp":-1})",
       head + R"("timestamp":"1969-12-31T23:59:59.999Z"})"},
      {"OffsetAndIngestedAtAreRemoved",
       R"({"offset":7,"session_id":"s1","ingested_at":"2026-01-01T00:00:00.000Z","event_type":"tool_call","event_id":"e1",)" +
           ts + R"(})",
       Event()},
      {"OffsetAndIngestedAtOfAnyTypeAreRemoved",
       Event(R"("offset":{"any":"thing"},"ingested_at":null)"), Event()},
      {"CostTokensFromTotalTokens", Event(R"("total_tokens":30,"prompt_tokens":10)"),
       Event(R"("total_tokens":30,"prompt_tokens":10,"cost_tokens":30)")},
      {"CostTokensFromPromptPlusCompletion", Event(R"("prompt_tokens":10,"completion_tokens":22)"),
       Event(R"("prompt_tokens":10,"completion_tokens":22,"cost_tokens":32)")},
      {"CostTokensFromPromptAlone", Event(R"("prompt_tokens":8)"),
       Event(R"("prompt_tokens":8,"cost_tokens":8)")},
      {"GivenCostTokensWinAndSourcesAreNotValidated",
       Event(R"("cost_tokens":5,"total_tokens":"junk","prompt_tokens":-3)"),
       Event(R"("cost_tokens":5,"total_tokens":"junk","prompt_tokens":-3)")},
      {"TotalTokensWinOverPromptAndCompletion", Event(R"("total_tokens":7,"prompt_tokens":"junk")"),
       Event(R"("total_tokens":7,"prompt_tokens":"junk","cost_tokens":7)")},
      {"CostTokensMaxInt64", Event(R"("cost_tokens":9223372036854775807)"),
       Event(R"("cost_tokens":9223372036854775807)")},
      {"DurationFromExecutionSeconds", Event(R"("execution_duration_seconds":1.234)"),
       Event(R"("execution_duration_seconds":1.234,"duration_ms":1234.0)")},
      {"DurationFromFractionalExecutionSeconds", Event(R"("execution_duration_seconds":0.0015)"),
       Event(R"("execution_duration_seconds":0.0015,"duration_ms":1.5)")},
      {"DurationFromIntegerExecutionSeconds", Event(R"("execution_duration_seconds":2)"),
       Event(R"("execution_duration_seconds":2,"duration_ms":2000.0)")},
      {"GivenDurationIsKeptAsWritten", Event(R"("duration_ms":150,"execution_duration_seconds":9)"),
       Event(R"("duration_ms":150,"execution_duration_seconds":9)")},
      {"NullOptionalStringsAreKeptAsNull",
       Event(
           R"("agent_id":null,"tool_name":null,"status":null,"model":null,"feature_id":null,"parent_event_id":null)"),
       Event(
           R"("agent_id":null,"tool_name":null,"status":null,"model":null,"feature_id":null,"parent_event_id":null)")},
      {"MemberOrderIsKept",
       R"({"z":1,"event_id":"e1","a":2,"session_id":"s1","m":3,"event_type":"t",)" + ts + "}",
       R"({"z":1,"event_id":"e1","a":2,"session_id":"s1","m":3,"event_type":"t",)" + ts + "}"},
      {"NestedObjectsAndArraysAreKept",
       Event(R"("metadata":{"b":[1,{"c":[[],{}]},"x"],"a":{"z":null,"y":true}},"tags":[])"),
       Event(R"("metadata":{"b":[1,{"c":[[],{}]},"x"],"a":{"z":null,"y":true}},"tags":[])")},
      {"UnicodeEscapesAreWrittenAsUtf8", Event(R"("msg":"caf\u00e9 \ud83d\ude00")"),
       Event("\"msg\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"")},
      {"SlashEscapeIsUnescaped", Event(R"("path":"a\/b")"), Event(R"("path":"a/b")")},
      {"ControlCharactersStayEscaped", Event(R"("text":"a\nb\u0001\"\\")"),
       Event(R"("text":"a\nb\u0001\"\\")")},
      {"NumbersRoundTrip",
       Event(
           R"("i":-42,"big":18446744073709551615,"f":0.1,"g":1.5,"max":1.7976931348623157e308,"tiny":5e-324,"third":0.3333333333333333)"),
       Event(
           R"("i":-42,"big":18446744073709551615,"f":0.1,"g":1.5,"max":1.7976931348623157e308,"tiny":5e-324,"third":0.3333333333333333)")},
      {"NumberSpellingIsRapidJsonCanonical", Event(R"("a":1.50,"b":1E3,"c":-0.0,"d":1e-7)"),
       Event(R"("a":1.5,"b":1000.0,"c":-0.0,"d":1e-7)")},
      {"EmptyStringOptionalFieldIsAllowed", Event(R"("agent_id":"")"), Event(R"("agent_id":"")")},
      {"SessionIdOf128BytesIsAllowed",
       R"({"session_id":")" + Repeat('s', 128) + R"(","event_type":"t","event_id":"e1",)" + ts +
           "}",
       R"({"session_id":")" + Repeat('s', 128) + R"(","event_type":"t","event_id":"e1",)" + ts +
           "}"},
      {"EventTypeOfAllAllowedCharacters",
       R"({"session_id":"s1","event_type":"Az09_.:-","event_id":"e1",)" + ts + "}",
       R"({"session_id":"s1","event_type":"Az09_.:-","event_id":"e1",)" + ts + "}"},
  };
}

TEST(EventDecoderTest, NormalisesEachCaseToItsExactBody) {
  for (const NormaliseCase& c : NormaliseCases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(BodyOf(c.input), c.body);
  }
}

TEST(EventDecoderTest, FillsTheHeaderWithNormalisedValues) {
  DecodeResult r = Decode(
      R"({"session_id":"s1","type":"llm.call","event_id":"e1","timestamp":"2026-11-22T03:28:29.5+02:00",)"
      R"("agent_id":"a","tool_name":"tn","status":"ok","model":"m","feature_id":"f","parent_event_id":"p",)"
      R"("prompt_tokens":3,"completion_tokens":4,"execution_duration_seconds":0.25})");
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  ASSERT_EQ(r.events.size(), 1u);
  const EventHeader& h = r.events[0].header;
  EXPECT_EQ(h.session_id, "s1");
  EXPECT_EQ(h.event_type, "llm.call");
  EXPECT_EQ(h.event_id, "e1");
  EXPECT_EQ(h.timestamp_ms, kNow - 123 + 500);
  EXPECT_EQ(h.agent_id, "a");
  EXPECT_EQ(h.tool_name, "tn");
  EXPECT_EQ(h.status, "ok");
  EXPECT_EQ(h.model, "m");
  EXPECT_EQ(h.feature_id, "f");
  EXPECT_EQ(h.parent_event_id, "p");
  EXPECT_EQ(h.cost_tokens, 7);
  EXPECT_EQ(h.duration_ms, 250.0);
}

TEST(EventDecoderTest, AbsentAndNullOptionalFieldsLeaveTheHeaderEmpty) {
  DecodeResult r = Decode(Event(R"("agent_id":null,"model":null)"));
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  const EventHeader& h = r.events[0].header;
  EXPECT_EQ(h.agent_id, "");
  EXPECT_EQ(h.model, "");
  EXPECT_EQ(h.tool_name, "");
  EXPECT_EQ(h.cost_tokens, std::nullopt);
  EXPECT_EQ(h.duration_ms, std::nullopt);
}

TEST(EventDecoderTest, HeaderTakesGivenCostAndDuration) {
  DecodeResult r = Decode(Event(R"("cost_tokens":0,"duration_ms":12.5)"));
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_EQ(r.events[0].header.cost_tokens, 0);
  EXPECT_EQ(r.events[0].header.duration_ms, 12.5);
  EXPECT_EQ(r.events[0].header.timestamp_ms, kNow);
}

TEST(EventDecoderTest, GeneratesAnEventIdWhenAbsent) {
  DecodeResult r =
      Decode(R"([{"session_id":"s","event_type":"t"},{"session_id":"s","event_type":"t"}])");
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  ASSERT_EQ(r.events.size(), 2u);
  const std::string& id0 = r.events[0].header.event_id;
  const std::string& id1 = r.events[1].header.event_id;
  EXPECT_EQ(id0.size(), 26u);
  EXPECT_LT(id0, id1);  // time-ordered, in input order
  EXPECT_EQ(r.events[0].body, R"({"session_id":"s","event_type":"t","event_id":")" + id0 +
                                  R"(","timestamp":")" + kNowText + R"("})");
  EXPECT_EQ(r.events[0].header.timestamp_ms, kNow);
}

TEST(EventDecoderTest, AppendedMembersComeInAFixedOrderAfterTheProducersMembers) {
  DecodeResult r =
      Decode(R"({"type":"t","session_id":"s","total_tokens":2,"execution_duration_seconds":1})");
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  const std::string& id = r.events[0].header.event_id;
  EXPECT_EQ(r.events[0].body,
            R"({"type":"t","session_id":"s","total_tokens":2,"execution_duration_seconds":1,)"
            R"("event_type":"t","event_id":")" +
                id + R"(","timestamp":")" + kNowText +
                R"(","cost_tokens":2,"duration_ms":1000.0})");
}

TEST(EventDecoderTest, DecodedBodyDecodesAgainToTheSameBody) {
  // An export (with offset and ingested_at) can be imported again.
  for (const NormaliseCase& c : NormaliseCases()) {
    SCOPED_TRACE(c.name);
    const std::string once = BodyOf(c.input);
    EXPECT_EQ(BodyOf(once), once);
  }
}

TEST(EventDecoderTest, BatchKeepsInputOrder) {
  std::string batch = "[";
  for (int i = 0; i < 50; ++i) {
    if (i > 0) batch += ",";
    batch += R"({"session_id":"s","event_type":"t","event_id":"id)" + std::to_string(i) + R"("})";
  }
  batch += "]";
  DecodeResult r = Decode(batch);
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  ASSERT_EQ(r.events.size(), 50u);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(r.events[static_cast<size_t>(i)].header.event_id, "id" + std::to_string(i));
}

// ---------------------------------------------------------------------------------------------
// Duplicate keys.

TEST(EventDecoderTest, RejectsDuplicateTopLevelKey) {
  EXPECT_EQ(Messages(Decode(R"({"session_id":"a","event_type":"t","session_id":"b"})")),
            std::vector<std::string>{"events[0].session_id: duplicate key"});
}

TEST(EventDecoderTest, RejectsDuplicateNestedKeyNamingItsPath) {
  EXPECT_EQ(Messages(Decode(Event(R"("metadata":{"x":1,"y":{"x":1},"x":2})"))),
            std::vector<std::string>{"events[0].metadata.x: duplicate key"});
  EXPECT_EQ(Messages(Decode(Event(R"("items":[{"k":1},{"k":1,"k":2}])"))),
            std::vector<std::string>{"events[0].items[1].k: duplicate key"});
  EXPECT_EQ(Messages(Decode(Event(R"("a":[[{"b":{"c":{"d":0,"d":0}}}]])"))),
            std::vector<std::string>{"events[0].a[0][0].b.c.d: duplicate key"});
}

TEST(EventDecoderTest, DuplicateOffsetIsADuplicateKeyEvenThoughItIsDropped) {
  EXPECT_EQ(Messages(Decode(Event(R"("offset":1,"offset":2)"))),
            std::vector<std::string>{"events[0].offset: duplicate key"});
}

TEST(EventDecoderTest, DuplicateKeysCompareDecodedNames) {
  EXPECT_EQ(Messages(Decode(Event(R"("ab":1,"a\u0062":2)"))),
            std::vector<std::string>{"events[0].ab: duplicate key"});
}

TEST(EventDecoderTest, DuplicateKeyWithUnusualNameIsQuotedInThePath) {
  EXPECT_EQ(Messages(Decode(Event(R"("a b":1,"a b":2)"))),
            std::vector<std::string>{R"(events[0]["a b"]: duplicate key)"});
  EXPECT_EQ(Messages(Decode(Event(R"("m":{"x.y":1,"x.y":2})"))),
            std::vector<std::string>{R"(events[0].m["x.y"]: duplicate key)"});
  EXPECT_EQ(Messages(Decode(Event(R"("":1,"":2)"))),
            std::vector<std::string>{R"(events[0][""]: duplicate key)"});
}

TEST(EventDecoderTest, ReportsEachDuplicatedNameOnceInDocumentOrder) {
  EXPECT_EQ(Messages(Decode(Event(R"("b":1,"a":1,"b":2,"a":2,"b":3)"))),
            (std::vector<std::string>{"events[0].b: duplicate key", "events[0].a: duplicate key"}));
}

TEST(EventDecoderTest, DuplicatesInObjectsWithManyMembersAreFoundInDocumentOrder) {
  std::string members;
  for (int i = 0; i < 100; ++i) members += R"("k)" + std::to_string(i) + R"(":0,)";
  members += R"("k70":1,"k5":1,"k70":2,"k99":1)";
  EXPECT_EQ(Messages(Decode(Event(members))),
            (std::vector<std::string>{"events[0].k70: duplicate key", "events[0].k5: duplicate key",
                                      "events[0].k99: duplicate key"}));
}

std::string ManyMembers(int n) {
  std::string members;
  members.reserve(static_cast<size_t>(n) * 16);
  for (int i = 0; i < n; ++i) members += R"("key_)" + std::to_string(i) + R"(":0,)";
  members += R"("last":0)";
  return Event(members);
}

TEST(EventDecoderTest, DuplicateCheckScalesAsNLogNForObjectsWithManyMembers) {
  // A pairwise check makes 8x the members cost 64x the time; sorting about 9x.
  DecodeLimits limits;
  limits.max_event_bytes = 64 << 20;
  const std::string small = ManyMembers(5'000);
  const std::string large = ManyMembers(40'000);
  auto fastest = [&](const std::string& json) {
    auto best = std::chrono::steady_clock::duration::max();
    for (int run = 0; run < 2; ++run) {
      const auto start = std::chrono::steady_clock::now();
      EXPECT_TRUE(Decode(json, limits).ok());
      best = std::min(best, std::chrono::steady_clock::now() - start);
    }
    return std::chrono::duration<double>(best).count();
  };
  const double small_s = fastest(small);
  const double large_s = fastest(large);
  EXPECT_LT(large_s, 24 * small_s) << small_s << " s vs " << large_s << " s";
}

TEST(EventDecoderTest, FindsTheOneDuplicateAmongManyMembers) {
  DecodeLimits limits;
  limits.max_event_bytes = 64 << 20;
  std::string json = ManyMembers(50'000);
  json.insert(json.size() - 1, R"(,"key_12345":1)");
  EXPECT_EQ(Messages(Decode(json, limits)),
            std::vector<std::string>{"events[0].key_12345: duplicate key"});
}

// ---------------------------------------------------------------------------------------------
// Limits.

std::string EventOfBodySize(size_t size) {
  const std::string prefix = std::string("{") + kBase + R"(,"pad":")";
  const std::string suffix = R"("})";
  return prefix + std::string(size - prefix.size() - suffix.size(), 'p') + suffix;
}

TEST(EventDecoderTest, AcceptsEventAtTheSizeLimit) {
  const std::string json = EventOfBodySize(256 * 1024 - 96);
  DecodeResult r = Decode(json);
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_EQ(r.events[0].body.size() + 96, 256u * 1024);
}

TEST(EventDecoderTest, RejectsEventOneByteOverTheSizeLimit) {
  DecodeResult r = Decode("[" + Event() + "," + EventOfBodySize(256 * 1024 - 95) + "]");
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(Messages(r), std::vector<std::string>{
                             "events[1]: too large: 262049 bytes after normalisation (+96 for "
                             "offset and ingested_at) exceeds the limit of 262144 bytes"});
}

TEST(EventDecoderTest, SizeLimitAppliesToTheNormalisedBody) {
  DecodeLimits limits;
  limits.max_event_bytes = Event().size() + 96;
  EXPECT_TRUE(Decode(Event(), limits).ok());
  // Whitespace does not count; removed members do not count.
  EXPECT_TRUE(Decode("{ " + std::string(kBase) + R"(,  "offset": 123456789 })", limits).ok());
  // Appended members do.
  DecodeResult r = Decode(std::string("{") + kBase + R"(,"total_tokens":1})", limits);
  EXPECT_EQ(Messages(r),
            std::vector<std::string>{"events[0]: too large: 132 bytes after normalisation (+96 "
                                     "for offset and ingested_at) exceeds the limit of 195 bytes"});
}

std::string Nested(size_t arrays) { return std::string(arrays, '[') + std::string(arrays, ']'); }

TEST(EventDecoderTest, AcceptsNestingDepth64) {
  // The event object is depth 1, so 63 nested arrays reach depth 64.
  DecodeResult r = Decode(Event(R"("a":)" + Nested(63)));
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_EQ(r.events[0].body, Event(R"("a":)" + Nested(63)));
  EXPECT_TRUE(Decode("[" + Event(R"("a":)" + Nested(63)) + "]").ok());
  EXPECT_TRUE(DecodeLines(Event(R"("a":)" + Nested(63))).ok());
}

TEST(EventDecoderTest, RejectsNestingDepth65NamingTheMember) {
  const std::string deep = Event(R"("a":)" + Nested(64));
  EXPECT_EQ(Messages(Decode(deep)),
            std::vector<std::string>{"events[0].a: nesting depth exceeds the limit of 64"});
  EXPECT_EQ(Messages(Decode("[" + Event() + "," + deep + "," + deep + "]")),
            (std::vector<std::string>{"events[1].a: nesting depth exceeds the limit of 64",
                                      "events[2].a: nesting depth exceeds the limit of 64"}));
  EXPECT_EQ(Messages(DecodeLines(Event() + "\n" + deep + "\n")),
            std::vector<std::string>{"events[1].a: nesting depth exceeds the limit of 64"});
}

TEST(EventDecoderTest, NestedObjectsCountTowardsDepth) {
  std::string value = "1";
  for (int i = 0; i < 64; ++i) value = R"({"k":)" + value + "}";
  EXPECT_EQ(
      Messages(Decode(Event(R"("meta data":)" + value))),
      std::vector<std::string>{R"(events[0]["meta data"]: nesting depth exceeds the limit of 64)"});
}

TEST(EventDecoderTest, BracketsInsideStringsDoNotCountTowardsDepth) {
  const std::string text = R"("text":"[[[[{{{{\"[[[[)" + std::string(200, '[') + R"(\\")";
  DecodeResult r = Decode(Event(text + R"(,"a":)" + Nested(63)));
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
}

TEST(EventDecoderTest, CustomDepthLimitIsApplied) {
  DecodeLimits limits;
  limits.max_depth = 2;
  EXPECT_TRUE(Decode(Event(R"("a":[1])"), limits).ok());
  EXPECT_EQ(Messages(Decode(Event(R"("a":[1],"b":{"c":[]})"), limits)),
            std::vector<std::string>{"events[0].b: nesting depth exceeds the limit of 2"});
}

TEST(EventDecoderTest, RejectsTenMegabytesOfOpenBracketsWithoutCrashing) {
  // The depth check runs before any recursive parsing, so this neither
  // overflows the stack nor builds a 10 MB DOM (speed is the benchmark's job).
  const std::string hostile(10 << 20, '[');
  DecodeResult r = Decode(hostile);
  EXPECT_EQ(Messages(r),
            std::vector<std::string>{"events[0]: nesting depth exceeds the limit of 64"});
  DecodeResult lines = DecodeLines(hostile);
  EXPECT_EQ(Messages(lines),
            std::vector<std::string>{"events[0]: nesting depth exceeds the limit of 64"});
  std::string objects;
  objects.reserve(10 << 20);
  while (objects.size() < (10u << 20)) objects += R"({"a":)";
  EXPECT_EQ(Messages(Decode(objects)),
            std::vector<std::string>{"events[0].a: nesting depth exceeds the limit of 64"});
}

TEST(EventDecoderTest, ClosedDeepNestingIsRejectedToo) {
  const std::string hostile = "[" + Nested(1 << 20) + "]";
  EXPECT_EQ(Messages(Decode(hostile)),
            std::vector<std::string>{"events[0]: nesting depth exceeds the limit of 64"});
}

std::string BatchOf(size_t n) {
  std::string batch = "[";
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) batch += ',';
    batch += R"({"session_id":"s","event_type":"t","event_id":"e"})";
  }
  batch += "]";
  return batch;
}

TEST(EventDecoderTest, AcceptsBatchOf10000Events) {
  DecodeResult r = Decode(BatchOf(10'000));
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_EQ(r.events.size(), 10'000u);
}

TEST(EventDecoderTest, RejectsBatchOf10001Events) {
  DecodeResult r = Decode(BatchOf(10'001));
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(Messages(r),
            std::vector<std::string>{"body: batch of 10001 events exceeds the limit of 10000"});
}

TEST(EventDecoderTest, BatchCountIgnoresCommasInsideEvents) {
  DecodeLimits limits;
  limits.max_batch_events = 2;
  EXPECT_TRUE(
      Decode("[" + Event(R"("a":[1,2,3],"b":"x,y")") + " , " + Event() + " ]", limits).ok());
  EXPECT_EQ(Messages(Decode("[" + Event() + "," + Event() + "," + Event() + "]", limits)),
            std::vector<std::string>{"body: batch of 3 events exceeds the limit of 2"});
}

TEST(EventDecoderTest, ReportsAtMostMaxReportedErrorsButCountsAll) {
  std::string batch = "[";
  for (int i = 0; i < 150; ++i) batch += std::string(i ? "," : "") + "{}";
  batch += "]";
  DecodeResult r = Decode(batch);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.errors.size(), 100u);
  EXPECT_EQ(r.error_count, 300u);  // session_id and event_type missing in each
  EXPECT_EQ(r.errors[0].ToString(), "events[0].session_id: missing");
  EXPECT_EQ(r.errors[99].ToString(), "events[49].event_type: missing");
  const Status st = r.ToStatus();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "events[0].session_id: missing (and 299 more errors)");
}

TEST(EventDecoderTest, ZeroMaxReportedErrorsStillReportsOneSoTheResultIsNotOk) {
  DecodeLimits limits;
  limits.max_reported_errors = 0;
  DecodeResult r = Decode("{}", limits);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.error_count, 2u);
}

TEST(EventDecoderTest, ToStatusIsOkForAValidBatch) {
  DecodeResult r = Decode(Event());
  EXPECT_TRUE(r.ToStatus().ok());
  DecodeResult one = Decode(R"({"session_id":"s"})");
  EXPECT_EQ(one.ToStatus().ToString(), "InvalidArgument: events[0].event_type: missing");
  DecodeResult two = Decode("{}");
  EXPECT_EQ(two.ToStatus().message(), "events[0].session_id: missing (and 1 more error)");
}

TEST(EventDecoderTest, FieldErrorToStringForms) {
  EXPECT_EQ((FieldError{3, "session_id", "missing"}.ToString()), "events[3].session_id: missing");
  EXPECT_EQ((FieldError{2, "", "must be a JSON object, got array"}.ToString()),
            "events[2]: must be a JSON object, got array");
  EXPECT_EQ((FieldError{0, R"(["a b"])", "duplicate key"}.ToString()),
            R"(events[0]["a b"]: duplicate key)");
  EXPECT_EQ((FieldError{std::nullopt, "body", "empty input"}.ToString()), "body: empty input");
}

// ---------------------------------------------------------------------------------------------
// NDJSON.

TEST(EventDecoderTest, NdjsonDecodesOneEventPerLine) {
  const std::string text =
      Event(R"("n":0)") + "\n" + Event(R"("n":1)") + "\r\n" + Event(R"("n":2)");
  DecodeResult r = DecodeLines(text);
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  ASSERT_EQ(r.events.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.events[static_cast<size_t>(i)].body, Event(R"("n":)" + std::to_string(i)));
  }
}

TEST(EventDecoderTest, NdjsonSkipsBlankLinesWhenNumberingEvents) {
  const std::string text = "\n  \t\r\n" + Event() + "\n\n\r\n" + R"({"session_id":"s"})" + "\n \n";
  DecodeResult r = DecodeLines(text);
  EXPECT_EQ(Messages(r), std::vector<std::string>{"events[1].event_type: missing"});
}

TEST(EventDecoderTest, NdjsonInvalidLineNamesItsEventAndByteInTheWholeInput) {
  const std::string first = Event() + "\n\n";
  const std::string text = first + R"({"session_id":"s",})" + "\n" + Event() + "\n";
  DecodeResult r = DecodeLines(text);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(Messages(r), std::vector<std::string>{"events[1]: invalid JSON at byte " +
                                                  std::to_string(first.size() + 18) +
                                                  ": Missing a name for object member."});
}

TEST(EventDecoderTest, NdjsonReportsEveryBadLine) {
  const std::string text = "{\n" + Event() + "\n[1]\n\"x\"\n" + Event() + "\n{}";
  EXPECT_EQ(Messages(DecodeLines(text)),
            (std::vector<std::string>{
                "events[0]: invalid JSON at byte 1: Missing a name for object member.",
                "events[2]: must be a JSON object, got array",
                "events[3]: must be a JSON object, got string",
                "events[5].session_id: missing",
                "events[5].event_type: missing",
            }));
}

TEST(EventDecoderTest, NdjsonRejectsTwoObjectsOnOneLine) {
  const std::string text = Event() + " " + Event();
  EXPECT_EQ(Messages(DecodeLines(text)),
            std::vector<std::string>{"events[0]: invalid JSON at byte " +
                                     std::to_string(Event().size() + 1) +
                                     ": The document root must not be followed by other values."});
}

TEST(EventDecoderTest, NdjsonRejectsInvalidUtf8AndNulPerLine) {
  const std::string line1 = std::string(R"({"session_id":"a)") + "\xFF" + R"(","event_type":"t"})";
  const std::string line2 = std::string(R"({"session_id":"a)") + std::string("\0", 1) + "\"}";
  const std::string text = Event() + "\n" + line1 + "\n" + line2;
  const size_t line1_at = Event().size() + 1;
  const size_t line2_at = line1_at + line1.size() + 1;
  EXPECT_EQ(
      Messages(DecodeLines(text)),
      (std::vector<std::string>{
          "events[1]: invalid UTF-8 at byte " + std::to_string(line1_at + 16),
          "events[2]: invalid JSON at byte " + std::to_string(line2_at + 16) + ": NUL character",
      }));
}

TEST(EventDecoderTest, NdjsonEmptyInputIsRejected) {
  EXPECT_EQ(Messages(DecodeLines("")), std::vector<std::string>{"body: empty input"});
  EXPECT_EQ(Messages(DecodeLines("\n\r\n  \n")), std::vector<std::string>{"body: empty input"});
}

TEST(EventDecoderTest, NdjsonBatchLimitCountsNonBlankLines) {
  std::string ok;
  for (int i = 0; i < 10'000; ++i) ok += Event() + "\n\n";
  DecodeResult r = DecodeLines(ok);
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_EQ(r.events.size(), 10'000u);
  EXPECT_EQ(Messages(DecodeLines(ok + Event())),
            std::vector<std::string>{"body: batch of 10001 events exceeds the limit of 10000"});
}

TEST(EventDecoderTest, NdjsonLinesMayBeLargerThanTheInlinePool) {
  // Each line needs more DOM memory than the decoder keeps on the stack; the pool is
  // recycled between lines.
  std::string big_array;
  for (int i = 0; i < 3000; ++i) big_array += std::string(i ? "," : "") + R"({"k":"value"})";
  std::string text;
  for (int i = 0; i < 20; ++i) text += Event(R"("items":[)" + big_array + "]") + "\n";
  DecodeResult r = DecodeLines(text);
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  ASSERT_EQ(r.events.size(), 20u);
  EXPECT_EQ(r.events[19].body, Event(R"("items":[)" + big_array + "]"));
}

// ---------------------------------------------------------------------------------------------
// Equivalence with plain RapidJSON (the decoder's fast paths must not change results).

// What DecodeEvents must report for an input RapidJSON rejects when parsing with encoding
// validation, or "" when RapidJSON accepts it.
std::string ReferenceParseError(const std::string& input) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseFullPrecisionFlag |
            rapidjson::kParseIterativeFlag>(input.c_str());  // the inputs hold no NUL
  if (!doc.HasParseError()) return "";
  if (doc.GetParseError() == rapidjson::kParseErrorStringInvalidEncoding) {
    return "body: invalid UTF-8 at byte " + std::to_string(doc.GetErrorOffset());
  }
  return "body: invalid JSON at byte " + std::to_string(doc.GetErrorOffset()) + ": " +
         rapidjson::GetParseError_En(doc.GetParseError());
}

TEST(EventDecoderTest, MutatedInputsGetTheErrorsOfAnEncodingValidatingRapidJsonParse) {
  const std::string seeds[] = {
      Event(R"("msg":"caf\u00e9 \"quoted\" \\ \n","tags":["a","b\u00ff"],"n":{"x":[1,2.5,-3e2]})"),
      "[" +
          Event("\"\xC3\xA9\":\"\xE2\x9C\x93\xF0\x9F\x98\x80 long enough to span sixteen bytes\"") +
          "," + Event() + "]",
  };
  const unsigned char interesting[] = {'"',  '\\', '{',  '}',  '[',  ']',  ',',  ':',
                                       'u',  '0',  0x80, 0xBF, 0xC0, 0xC2, 0xE0, 0xED,
                                       0xF0, 0xF4, 0xF5, 0xFF, 0x1F, ' '};
  std::mt19937 rng(20261122);
  int compared_errors = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::string input = seeds[static_cast<size_t>(round) % 2];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !input.empty(); ++e) {
      const size_t pos = rng() % input.size();
      const char byte =
          static_cast<char>(rng() % 2 ? interesting[rng() % sizeof(interesting)] : 1 + rng() % 255);
      switch (rng() % 3) {
        case 0:
          input[pos] = byte;
          break;
        case 1:
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(pos), byte);
          break;
        default:
          input.erase(pos, 1);
          break;
      }
    }
    if (input.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    if (input.rfind("\xEF\xBB\xBF", 0) == 0) continue;  // the decoder skips a BOM
    const std::string expected = ReferenceParseError(input);
    const DecodeResult r = Decode(input);
    std::vector<std::string> body_errors;
    for (const FieldError& e : r.errors) {
      if (!e.index.has_value()) body_errors.push_back(e.ToString());
    }
    if (expected.empty()) {
      if (!body_errors.empty() &&
          body_errors[0].rfind("body: must be a JSON object or an array of objects", 0) == 0) {
        continue;
      }
      ASSERT_TRUE(body_errors.empty())
          << testing::PrintToString(input) << " -> " << testing::PrintToString(body_errors);
    } else {
      ++compared_errors;
      ASSERT_EQ(body_errors, std::vector<std::string>{expected}) << testing::PrintToString(input);
    }
  }
  EXPECT_GT(compared_errors, 5'000);
}

std::string RapidJsonCompact(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  EXPECT_FALSE(doc.HasParseError()) << json;
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> writer(out);
  doc.Accept(writer);
  return std::string(out.GetString(), out.GetSize());
}

TEST(EventDecoderTest, BodyStringsAreEscapedExactlyAsRapidJsonWriterDoes) {
  // Every ASCII byte, escaped or raw, at every offset around the 16-byte blocks.
  std::string all;
  for (int c = 1; c < 0x80; ++c) {
    char escaped[8];
    std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
    all += escaped;
  }
  all += "\\u0000 \xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80";
  for (size_t prefix = 0; prefix < 40; ++prefix) {
    SCOPED_TRACE(prefix);
    const std::string input = Event(R"("s":")" + std::string(prefix, 'x') + all + R"(")");
    EXPECT_EQ(BodyOf(input), RapidJsonCompact(input));
  }
}

TEST(EventDecoderTest, ControlCharacterIsFoundAtAnyOffsetOfALongString) {
  for (size_t at = 0; at < 60; ++at) {
    SCOPED_TRACE(at);
    for (const char* control : {"\\u0001", "\\u001f", "\\u007f", "\\u0080", "\\u009f"}) {
      const std::string id = std::string(at, 'a') + control + std::string(60 - at, 'b');
      EXPECT_FALSE(Decode(R"({"event_type":"t","session_id":")" + id + R"("})").ok()) << control;
    }
    // U+00A0 (0xC2 0xA0) and U+00FF are printable.
    for (const char* printable : {"\\u00a0", "\\u00ff", "\\u0100", "~"}) {
      const std::string id = std::string(at, 'a') + printable + std::string(60 - at, 'b');
      EXPECT_TRUE(Decode(R"({"event_type":"t","session_id":")" + id + R"("})").ok()) << printable;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Purity and thread safety.

TEST(EventDecoderTest, IsDeterministicForGivenIdsAndTime) {
  const std::string batch = "[" + Event(R"("a":1)") + "," + Event(R"("b":[1,2])") + "]";
  DecodeResult a = Decode(batch);
  DecodeResult b = Decode(batch);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a.events.size(), b.events.size());
  for (size_t i = 0; i < a.events.size(); ++i) EXPECT_EQ(a.events[i].body, b.events[i].body);
}

TEST(EventDecoderTest, DecodesConcurrentlyFromManyThreads) {
  std::string batch = "[";
  for (int i = 0; i < 200; ++i) {
    batch += std::string(i ? "," : "") + R"({"session_id":"s","type":"t","n":)" +
             std::to_string(i) + "}";
  }
  batch += "]";
  constexpr int kThreads = 4;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        DecodeResult r = DecodeEvents(batch, {}, NowMillis());
        ASSERT_TRUE(r.ok());
        ASSERT_EQ(r.events.size(), 200u);
        for (const auto& e : r.events) ids[static_cast<size_t>(t)].push_back(e.header.event_id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : ids) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * 10 * 200));
}

}  // namespace
}  // namespace tailbus

namespace tailbus {
namespace {

TEST(EventDecoderIdTest, MarksGeneratedIdsSoTheBusSkipsIdempotencyForThem) {
  DecodeResult r = DecodeEvents(
      R"([{"session_id":"s","event_type":"x"},{"session_id":"s","event_type":"x","event_id":"mine"}])",
      DecodeLimits{}, 1'700'000'000'000);
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_TRUE(r.events[0].header.event_id_generated);
  EXPECT_FALSE(r.events[1].header.event_id_generated);
  EXPECT_EQ(r.events[1].header.event_id, "mine");
}

// event_decoder_fuzz: RapidJSON 1.1.0 read "0e308" with full precision as a
// garbage negative number that changed from run to run (UBSan: clz(0) in
// DiyFp::Normalize): a metadata zero was stored as -6e-269, and a zero
// duration_ms refused as negative (core/json_numbers.h).
TEST(EventDecoderTest, ZeroWithLargeExponentIsStoredAsZero) {
  for (const char* zero : {"0e308", "-0.0E+400", "0.000e999"}) {
    const std::string z(zero);
    DecodeResult r = Decode(Event(R"("duration_ms":)" + z + R"(,"metadata":{"x":[)" + z + "]}"));
    ASSERT_TRUE(r.ok()) << zero << ": " << r.ToStatus().ToString();
    const std::string sign = z[0] == '-' ? "-" : "";
    EXPECT_EQ(r.events[0].body,
              Event(R"("duration_ms":)" + sign + R"(0.0,"metadata":{"x":[)" + sign + "0.0]}"))
        << zero;
    ASSERT_TRUE(r.events[0].header.duration_ms);
    EXPECT_EQ(*r.events[0].header.duration_ms, 0.0);
  }
  DecodeResult lines = DecodeLines(Event(R"("x":0e308)") + "\n" + Event(R"("y":"0e308")"));
  ASSERT_TRUE(lines.ok()) << lines.ToStatus().ToString();
  EXPECT_EQ(lines.events[0].body, Event(R"("x":0.0)"));
  EXPECT_EQ(lines.events[1].body, Event(R"("y":"0e308")"));
}

// event_decoder_fuzz: RapidJSON decodes a lone low surrogate escape
// ("\ude00") into the bytes ED B8 80, which are not UTF-8; the event was
// stored with them and every WebSocket client receiving it failed with 1007.
TEST(EventDecoderTest, LoneLowSurrogateEscapeIsRejected) {
  const std::string bad = Event(R"("u":"\u00e9^ud83d\ude00")");
  DecodeResult r = Decode(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Messages(r), std::vector<std::string>{"body: invalid JSON at byte " +
                                                  std::to_string(bad.find("\\ude00")) +
                                                  ": a \\u escape of a lone surrogate (not a "
                                                  "character)"});
  EXPECT_FALSE(DecodeLines(bad).ok());
  // A pair is a character; an escaped backslash before "uDC00" is not an escape.
  EXPECT_TRUE(Decode(Event(R"("u":"\ud83d\ude00","v":"\\udc00")")).ok());
}

// filter_fuzz / event_decoder_fuzz: a number beyond a double's range whose
// exponent alone is in range ("1234e308") was read by RapidJSON with an
// out-of-bounds index into its table of powers (UBSan) instead of refused.
TEST(EventDecoderTest, NumberBeyondDoubleWithSmallExponentIsRefused) {
  for (const char* number : {"1234e308", "-123e307", "0.00012e313", "1e309"}) {
    const std::string text = Event(std::string(R"("x":)") + number);
    DecodeResult r = Decode(text);
    ASSERT_FALSE(r.ok()) << number;
    EXPECT_EQ(Messages(r), std::vector<std::string>{"body: invalid JSON at byte " +
                                                    std::to_string(text.find(number)) +
                                                    ": Number too big to be stored in double."})
        << number;
  }
  EXPECT_TRUE(Decode(Event(R"("x":1.5e308,"y":123e300,"z":0.01e310)")).ok());
  // A syntax error before the number is reported as such.
  EXPECT_NE(Messages(Decode(R"({"a" 1,"x":1234e308})"))[0].find("byte 5"), std::string::npos);
}

// event_decoder_fuzz: "1.8e308" (just beyond a double, exponent in range)
// was read by RapidJSON as infinity, which its writer skips: the event was
// accepted and stored with the invalid body `"x":,`.
TEST(EventDecoderTest, NumberJustBeyondDoubleIsRejectedNotStoredAsInvalidJson) {
  for (const char* number : {"1.8e308", "-18e307", "1.7976931348623159e308"}) {
    DecodeResult r = Decode(Event(std::string(R"("meta":{"x":[)") + number + "]}"));
    ASSERT_FALSE(r.ok()) << number;
    EXPECT_EQ(Messages(r),
              std::vector<std::string>{"events[0].meta: has a number beyond the range of a double"})
        << number;
  }
  DecodeResult max = Decode(Event(R"("x":1.7976931348623157e308)"));
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max.events[0].body, Event(R"("x":1.7976931348623157e308)"));
}

// event_decoder_fuzz: RapidJSON 1.1.0's full-precision reading returned
// garbage for a mantissa of 20+ digits with a fraction and for "0." followed
// by more than 22 zeros (-2.5e263, -2.1e-196). Numbers are now converted by
// std::from_chars (core/json_parse.h): stored as the nearest double.
TEST(EventDecoderTest, LongMantissasAndManyZerosAreReadExactly) {
  const std::string tiny = "0." + std::string(27, '0') + "1";
  DecodeResult r =
      Decode(Event(R"("big":18446744073709551615.551615,"zero":0.)" + std::string(30, '0') +
                   R"(,"tiny":)" + tiny + R"(,"digits":3.14159265358979323846264338327950288)"));
  ASSERT_TRUE(r.ok()) << r.ToStatus().ToString();
  EXPECT_EQ(r.events[0].body, Event(R"("big":18446744073709553000.0,"zero":0.0,"tiny":1e-28,)"
                                    R"("digits":3.141592653589793)"));
  // Integers keep their exact 64-bit value; larger ones become doubles.
  EXPECT_EQ(BodyOf(Event(R"("u":18446744073709551615,"i":-9223372036854775808,)"
                         R"("d":18446744073709551616)")),
            Event(R"("u":18446744073709551615,"i":-9223372036854775808,)"
                  R"("d":18446744073709553000.0)"));
}

}  // namespace
}  // namespace tailbus
