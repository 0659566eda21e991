// The decoder's two paths (core/event_decoder.h decoder_internal): the one-pass fast path must
// give exactly the reference path's result wherever it gives one, must give up on every
// invalid input (so every error message is the reference path's), and must be the path the
// usual ingest shapes take.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/event_decoder.h"

namespace tailbus {
namespace {

using decoder_internal::BodyWithoutGeneratedId;
using decoder_internal::DecodeEventsFast;
using decoder_internal::DecodeEventsReference;
using decoder_internal::DecodeNdjsonFast;
using decoder_internal::DecodeNdjsonReference;

constexpr int64_t kNow = 1'795'310'909'123;
constexpr const char* kHead = R"("session_id":"s1","event_type":"tool_call","event_id":"e1")";

std::string Ev(const std::string& extra = "") {
  return std::string("{") + kHead + (extra.empty() ? "" : "," + extra) + "}";
}

void ExpectSameResult(const DecodeResult& fast, const DecodeResult& ref, const std::string& what) {
  ASSERT_TRUE(ref.ok()) << what << ": " << ref.ToStatus().ToString();
  ASSERT_TRUE(fast.ok()) << what;
  ASSERT_EQ(fast.events.size(), ref.events.size()) << what;
  for (size_t i = 0; i < ref.events.size(); ++i) {
    const EventHeader& a = fast.events[i].header;
    const EventHeader& b = ref.events[i].header;
    EXPECT_EQ(BodyWithoutGeneratedId(fast.events[i]), BodyWithoutGeneratedId(ref.events[i]))
        << what;
    EXPECT_EQ(a.session_id, b.session_id) << what;
    EXPECT_EQ(a.event_type, b.event_type) << what;
    EXPECT_EQ(a.event_id_generated, b.event_id_generated) << what;
    if (!b.event_id_generated) {
      EXPECT_EQ(a.event_id, b.event_id) << what;
    }
    EXPECT_EQ(a.timestamp_ms, b.timestamp_ms) << what;
    EXPECT_EQ(a.agent_id, b.agent_id) << what;
    EXPECT_EQ(a.tool_name, b.tool_name) << what;
    EXPECT_EQ(a.status, b.status) << what;
    EXPECT_EQ(a.model, b.model) << what;
    EXPECT_EQ(a.feature_id, b.feature_id) << what;
    EXPECT_EQ(a.parent_event_id, b.parent_event_id) << what;
    EXPECT_EQ(a.cost_tokens, b.cost_tokens) << what;
    EXPECT_EQ(a.duration_ms, b.duration_ms) << what;
  }
}

// `json` must be taken by the fast path, with the reference path's result.
void ExpectFastAndSame(const std::string& json, const DecodeLimits& limits = {}) {
  std::optional<DecodeResult> fast = DecodeEventsFast(json, limits, kNow);
  ASSERT_TRUE(fast.has_value()) << "fast path gave up on " << json;
  ExpectSameResult(*fast, DecodeEventsReference(json, limits, kNow), json);
}

// The fast path must give up on `json`, and DecodeEvents must give the reference's answer.
void ExpectGivesUp(const std::string& json, const DecodeLimits& limits = {}) {
  EXPECT_FALSE(DecodeEventsFast(json, limits, kNow).has_value()) << json;
  const DecodeResult got = DecodeEvents(json, limits, kNow);
  const DecodeResult ref = DecodeEventsReference(json, limits, kNow);
  EXPECT_EQ(got.ToStatus().ToString(), ref.ToStatus().ToString()) << json;
  EXPECT_EQ(got.events.size(), ref.events.size()) << json;
}

std::string BenchShapedBatch(int n) {
  std::string batch = "[";
  for (int i = 0; i < n; ++i) {
    std::string e = R"({"session_id":"s)" + std::to_string(i) + R"(","type":"bench","bg":)" +
                    std::to_string(i) + R"(,"bsid":)" + std::to_string(i % 7) +
                    R"(,"bt":1763798400123456789,"pad":")";
    e.append(300 - e.size() - 2, 'x');
    batch += (i ? "," : "") + e + "\"}";
  }
  return batch + "]";
}

TEST(EventDecoderFastPathTest, TakesBenchShapedBatchesWithTheReferenceResult) {
  ExpectFastAndSame(BenchShapedBatch(100));
}

TEST(EventDecoderFastPathTest, AgreesWithTheReferenceOnEveryNormalisation) {
  const std::vector<std::string> inputs = {
      Ev(),
      " \n\t{\r\n \"session_id\" :\"s1\" , \"event_type\": \"t\"\t}\n ",
      "\xEF\xBB\xBF" + Ev(),
      R"({"session_id":"s1","type":"tool_call"})",
      R"({"type":{"not":"validated"},"session_id":"s1","event_type":"x"})",
      Ev(R"("timestamp":"2026-11-22T03:28:29.5+02:00")"),
      Ev(R"("timestamp":1795310909123,"x":1)"),
      Ev(R"("timestamp":1.7953109091239e12)"),
      Ev(R"("timestamp":-1)"),
      R"({"offset":7,"session_id":"s1","ingested_at":"x","event_type":"t"})",
      Ev(R"("offset":{"any":["thing",{"deep":null}]},"ingested_at":null)"),
      Ev(R"("total_tokens":30,"prompt_tokens":10)"),
      Ev(R"("prompt_tokens":10,"completion_tokens":22)"),
      Ev(R"("completion_tokens":22)"),
      Ev(R"("cost_tokens":5,"total_tokens":"junk","prompt_tokens":-3)"),
      Ev(R"("cost_tokens":9223372036854775807)"),
      Ev(R"("cost_tokens":-0)"),
      Ev(R"("execution_duration_seconds":1.234)"),
      Ev(R"("execution_duration_seconds":2)"),
      Ev(R"("execution_duration_seconds":1e300)"),
      Ev(R"("duration_ms":150,"execution_duration_seconds":9)"),
      Ev(R"("duration_ms":0.0)"),
      Ev(R"("agent_id":null,"tool_name":"t","status":"ok","model":"m","feature_id":"","parent_event_id":"p")"),
      Ev("\"agent_id\":\"caf\xC3\xA9\""),
      R"({"z":1,"event_id":"e1","a":2,"session_id":"s1","m":3,"event_type":"t"})",
      Ev(R"("metadata":{"b":[1,{"c":[[],{}]},"x"],"a":{"z":null,"y":true,"n":false}},"t":[])"),
      Ev(R"("msg":"caf\u00e9 \ud83d\ude00 \uD83D\uDE00 \u20AC \u0041")"),
      Ev(R"("path":"a\/b","q":"\"\\\b\f\n\r\t")"),
      Ev(R"("ctl":"\u0000\u0001\u001f\u007f\u001F\u000a\u0008")"),
      Ev("\"utf8\":\"\xF0\x9F\x98\x80\xE2\x82\xAC\xDF\xBF\xED\x9F\xBF\xF4\x8F\xBF\xBF\""),
      Ev(R"("i":-42,"big":18446744073709551615,"bigger":18446744073709551616,"neg":-9223372036854775808,"negbig":-9223372036854775809)"),
      Ev(R"("f":0.1,"g":1.5,"max":1.7976931348623157e308,"tiny":5e-324,"third":0.3333333333333333)"),
      Ev(R"("a":1.50,"b":1E3,"c":-0.0,"d":1e-7,"e":-0,"z":0e999,"y":-0.0E+400,"x":12.5e-1)"),
      Ev(R"("long":123456789012345678901234567890.123)"),
      Ev(R"("deep":[[[[[[[[[[{"a":[[[[1]]]]}]]]]]]]]]])"),
      Ev(R"("many":{"k01":1,"k02":1,"k03":1,"k04":1,"k05":1,"k06":1,"k07":1,"k08":1,"k09":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1,"k17":1,"k18":1,"k19":1,"k20":1})"),
      Ev(R"("same":{"a":1},"other":{"a":1},"arr":[{"a":1},{"a":2}])"),
      "[" + Ev() + ", " + Ev(R"("x":1)") + " ,\n" + R"({"session_id":"s2","type":"b"})" + "]",
  };
  for (const std::string& json : inputs) ExpectFastAndSame(json);
}

TEST(EventDecoderFastPathTest, EscapesAtBlockEdgesOfBulkCopiesAreReescapedLikeTheWriter) {
  // Escapes and multi-byte characters on each side of 16-byte block edges (the bulk scan's).
  for (size_t lead = 12; lead <= 20; ++lead) {
    const std::string text = std::string(lead, 'a') + R"(\n\u00e9\"\ud83d\ude00\u001f\\)" +
                             std::string(lead, 'b') + "\xC3\xA9\\/";
    const std::string json = Ev(R"("text":")" + text + "\"");
    ExpectFastAndSame(json);
    const DecodeResult r = DecodeEvents(json, {}, kNow);
    ASSERT_TRUE(r.ok());
    EXPECT_NE(r.events[0].body.find(std::string(lead, 'a') +
                                    "\\n\xC3\xA9\\\"\xF0\x9F\x98\x80\\u001F\\\\" +
                                    std::string(lead, 'b') + "\xC3\xA9/\""),
              std::string::npos)
        << r.events[0].body;
  }
}

TEST(EventDecoderFastPathTest, KeyThatAppearsTwiceAtAnyLevelIsReportedByTheReference) {
  for (const auto& [json, message] : std::vector<std::pair<std::string, std::string>>{
           {Ev(R"("x":1,"x":2)"), "events[0].x: duplicate key"},
           {Ev(R"("n":{"a":1,"b":{"c":[{"d":1,"d":2}]}})"), "events[0].n.b.c[0].d: duplicate key"},
           {Ev(R"("event_id":"e2")"), "events[0].event_id: duplicate key"},
           {Ev(R"("offset":1,"offset":2)"), "events[0].offset: duplicate key"},
       }) {
    EXPECT_FALSE(DecodeEventsFast(json, {}, kNow).has_value()) << json;
    EXPECT_EQ(DecodeEvents(json, {}, kNow).ToStatus().message(), message) << json;
  }
}

TEST(EventDecoderFastPathTest, IntegersAtTheEdgesOf64BitsAreStoredAsTheReferenceStoresThem) {
  const std::string json =
      Ev(R"("a":9999999999999999999,"b":18446744073709551615,"c":18446744073709551616,)"
         R"("d":-9223372036854775808,"e":-9223372036854775809,"f":-0,"g":0,)"
         R"("cost_tokens":9223372036854775807)");
  ExpectFastAndSame(json);
  const DecodeResult r = DecodeEvents(json, {}, kNow);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r.events[0].body.find(
                R"("a":9999999999999999999,"b":18446744073709551615,"c":18446744073709553000.0,)"
                R"("d":-9223372036854775808,"e":-9223372036854776000.0,"f":0,"g":0,)"),
            std::string::npos)
      << r.events[0].body;
  // One beyond int64 is still a valid number, but not a valid cost.
  ExpectGivesUp(Ev(R"("cost_tokens":9223372036854775808)"));
  EXPECT_EQ(DecodeEvents(Ev(R"("cost_tokens":9223372036854775808)"), {}, kNow).ToStatus().message(),
            "events[0].cost_tokens: must be at most 9223372036854775807, got 9223372036854775808");
}

TEST(EventDecoderFastPathTest, GivesUpOnEveryInvalidInputSoErrorsAreTheReferences) {
  const std::vector<std::string> inputs = {
      "",
      "   ",
      "[]",
      "[1]",
      "null",
      "{}",
      R"({"event_type":"t"})",
      R"({"session_id":"","event_type":"t"})",
      R"({"session_id":"s","event_type":"bad type"})",
      R"({"session_id":"s","event_type":"t"} x)",
      R"({"session_id":"s","event_type":"t"}{})",
      R"({"session_id":"s","event_type":"t",})",
      R"({"session_id":"s","event_type":"t","a":01})",
      R"({"session_id":"s","event_type":"t","a":1.})",
      R"({"session_id":"s","event_type":"t","a":-})",
      R"({"session_id":"s","event_type":"t","a":.5})",
      R"({"session_id":"s","event_type":"t","a":1e})",
      R"({"session_id":"s","event_type":"t","a":tru})",
      R"({"session_id":"s","event_type":"t","a":"\x"})",
      R"({"session_id":"s","event_type":"t","a":"\u12"})",
      R"({"session_id":"s","event_type":"t","a":"\udc00"})",
      R"({"session_id":"s","event_type":"t","a":"\ud800"})",
      R"({"session_id":"s","event_type":"t","a":"\ud800\u0041"})",
      "{\"session_id\":\"s\",\"event_type\":\"t\",\"a\":\"\x01\"}",
      std::string("{\"session_id\":\"s\",\"event_type\":\"t\",\"a\":\"\0\"}", 40),
      "{\"session_id\":\"s\",\"event_type\":\"t\",\"a\":\"\xC0\xAF\"}",
      "{\"session_id\":\"s\",\"event_type\":\"t\",\"a\":\"\xED\xA0\x80\"}",
      "{\"session_id\":\"s\",\"event_type\":\"t\",\"a\":\"\xF4\x90\x80\x80\"}",
      "{\"session_id\":\"s\",\"event_type\":\"t\",\"a\":\"\xE2\x82\"}",
      R"({"session_id":"s","event_type":"t","a":1e400})",
      R"({"session_id":"s","event_type":"t","a":1e-400})",
      R"({"session_id":"s","event_type":"t","a":1.8e308})",
      R"({"session_id":"s","event_type":"t","a":1,"a":2})",
      R"({"session_id":"s","event_type":"t","n":{"a":1,"a":2}})",
      R"({"session_id":"s","event_type":"t","n":[{"b":1,"c":{"d":1,"d":1}}]})",
      R"({"session_id":"s","event_type":"t","offset":1,"offset":2})",
      R"({"session_id":"s","session_id":"s","event_type":"t"})",
      R"({"session_id":"s","event_type":"t","cost_tokens":-1})",
      R"({"session_id":"s","event_type":"t","cost_tokens":1.5})",
      R"({"session_id":"s","event_type":"t","timestamp":"yesterday"})",
      R"({"session_id":"s","event_type":"t","prompt_tokens":9223372036854775807,"completion_tokens":1})",
      R"({"session_id":"s","event_type":"t","agent_id":{}})",
      R"([{"session_id":"s","event_type":"t"},{"session_id":"s"}])",
      R"([{"session_id":"s","event_type":"t"},])",
      R"([{"session_id":"s","event_type":"t"})",
      R"({"session_id":"s","event_type":"t","a":[1,2)",
      R"({"session_id":"s","event_type":"t","a":"unterminated)",
  };
  for (const std::string& json : inputs) ExpectGivesUp(json);
}

TEST(EventDecoderFastPathTest, GivesUpOnRareValidShapesWhichTheReferenceDecodes) {
  // Escaped member names and escaped indexed strings, and double literals longer than
  // RapidJSON reads without an overflow check: valid, but left to the reference path.
  for (const std::string& json : std::vector<std::string>{
           R"({"session\u005fid":"s","event_type":"t"})",
           R"({"session_id":"s\u0031","event_type":"t"})",
           Ev(R"("n":{"\u0061":1})"),
           Ev(R"("x":0.00000000000000000000000000000000000000001)"),
       }) {
    EXPECT_FALSE(DecodeEventsFast(json, {}, kNow).has_value()) << json;
    const DecodeResult got = DecodeEvents(json, {}, kNow);
    ASSERT_TRUE(got.ok()) << json << ": " << got.ToStatus().ToString();
  }
}

TEST(EventDecoderFastPathTest, LimitsAreTheReferencesAtTheirEdges) {
  DecodeLimits limits;
  limits.max_depth = 3;
  ExpectFastAndSame(Ev(R"("a":{"b":[1]})"), limits);  // depth 3
  ExpectGivesUp(Ev(R"("a":{"b":[[1]]})"), limits);    // depth 4
  limits.max_depth = 0;
  ExpectGivesUp(Ev(), limits);

  limits = {};
  limits.max_batch_events = 2;
  ExpectFastAndSame("[" + Ev() + "," + Ev() + "]", limits);
  ExpectGivesUp("[" + Ev() + "," + Ev() + "," + Ev() + "]", limits);

  // The normalised body plus the commit overhead must fit max_event_bytes.
  const std::string event = R"({"session_id":"s","event_type":"t","event_id":"e","timestamp":1})";
  const DecodeResult ok = DecodeEventsReference(event, {}, kNow);
  ASSERT_TRUE(ok.ok());
  limits = {};
  limits.max_event_bytes = ok.events[0].body.size() + 96;
  ExpectFastAndSame(event, limits);
  limits.max_event_bytes -= 1;
  ExpectGivesUp(event, limits);
}

TEST(EventDecoderFastPathTest, NdjsonAgreesWithTheReferenceAndGivesUpOnBadLines) {
  const std::string good = "\xEF\xBB\xBF" + Ev() + "\r\n\n  \n" + Ev(R"("x":[1,"\n"])") + "\n" +
                           R"({"session_id":"s2","type":"b"})";
  std::optional<DecodeResult> fast = DecodeNdjsonFast(good, {}, kNow);
  ASSERT_TRUE(fast.has_value());
  ExpectSameResult(*fast, DecodeNdjsonReference(good, {}, kNow), good);

  for (const std::string& text :
       std::vector<std::string>{"\n \n", Ev() + "\n" + "[" + Ev() + "]", Ev() + " " + Ev(),
                                Ev() + "\n{\"session_id\":1}"}) {
    EXPECT_FALSE(DecodeNdjsonFast(text, {}, kNow).has_value()) << text;
    EXPECT_EQ(DecodeNdjson(text, {}, kNow).ToStatus().ToString(),
              DecodeNdjsonReference(text, {}, kNow).ToStatus().ToString());
  }
}

}  // namespace
}  // namespace tailbus
