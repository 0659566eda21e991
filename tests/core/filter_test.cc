#include "core/filter.h"

#include <gtest/gtest.h>

namespace tailbus {
namespace {

struct Fields {
  std::string session_id = "s1", event_type = "tool_call", agent_id = "agent", tool_name = "search",
              status = "ok", model = "gpt-4o", feature_id = "f1";
  std::optional<int64_t> cost;
  std::optional<double> duration;
  EventFields view() const {
    return {session_id, event_type, agent_id, tool_name, status, model, feature_id, cost, duration};
  }
};

Filter MustParse(std::string_view json) {
  auto f = Filter::Parse(json);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : Filter();
}

TEST(FilterTest, EmptyObjectMatchesEverything) {
  Filter f = MustParse("{}");
  EXPECT_TRUE(f.MatchesEverything());
  EXPECT_TRUE(f.Matches(Fields().view()));
  EXPECT_EQ(f.ToJson(), "{}");
}

TEST(FilterTest, EachListFieldMatchesMembership) {
  const char* keys[] = {"event_types", "session_ids", "agent_ids",  "tool_names",
                        "statuses",    "models",      "feature_ids"};
  Fields e;
  std::string values[] = {e.event_type, e.session_id, e.agent_id,  e.tool_name,
                          e.status,     e.model,      e.feature_id};
  for (size_t i = 0; i < 7; ++i) {
    SCOPED_TRACE(keys[i]);
    EXPECT_TRUE(MustParse(std::string("{\"") + keys[i] + "\":[\"zzz\",\"" + values[i] + "\"]}")
                    .Matches(e.view()));
    EXPECT_FALSE(MustParse(std::string("{\"") + keys[i] + "\":[\"zzz\"]}").Matches(e.view()));
    EXPECT_FALSE(MustParse(std::string("{\"") + keys[i] + "\":[]}").Matches(e.view()))
        << "an empty list matches nothing";
  }
}

TEST(FilterTest, SingularSessionIdIsAccepted) {
  Filter f = MustParse(R"({"session_id":"s1"})");
  EXPECT_TRUE(f.Matches(Fields().view()));
  EXPECT_EQ(f.session_ids(), std::vector<std::string>{"s1"});
  EXPECT_EQ(f.ToJson(), R"({"session_ids":["s1"]})");
}

TEST(FilterTest, CostThresholdIsStrictlyGreater) {
  Filter f = MustParse(R"({"cost_threshold_tokens":100})");
  Fields e;
  EXPECT_FALSE(f.Matches(e.view())) << "absent cost never exceeds a threshold";
  e.cost = 100;
  EXPECT_FALSE(f.Matches(e.view()));
  e.cost = 101;
  EXPECT_TRUE(f.Matches(e.view()));
}

TEST(FilterTest, MinDurationIsInclusive) {
  Filter f = MustParse(R"({"min_duration_ms":250.5})");
  Fields e;
  EXPECT_FALSE(f.Matches(e.view()));
  e.duration = 250.5;
  EXPECT_TRUE(f.Matches(e.view()));
  e.duration = 250.4;
  EXPECT_FALSE(f.Matches(e.view()));
}

TEST(FilterTest, FieldsCombineWithAnd) {
  Filter f = MustParse(R"({"event_types":["tool_call"],"tool_names":["calc"]})");
  Fields e;
  EXPECT_FALSE(f.Matches(e.view()));
  e.tool_name = "calc";
  EXPECT_TRUE(f.Matches(e.view()));
}

TEST(FilterTest, AnyIsAnOrOfSubFilters) {
  Filter errors =
      MustParse(R"({"any":[{"event_types":["error"]},{"statuses":["error","failed","timeout"]}]})");
  Fields e;
  EXPECT_FALSE(errors.Matches(e.view()));
  e.status = "timeout";
  EXPECT_TRUE(errors.Matches(e.view()));
  e.status = "ok";
  e.event_type = "error";
  EXPECT_TRUE(errors.Matches(e.view()));
}

TEST(FilterTest, CanonicalJsonSortsDeduplicatesAndRoundTrips) {
  Filter f = MustParse(
      R"({"statuses":["b","a","b"],"any":[{"models":["m"]}],"cost_threshold_tokens":5,"event_types":["x"]})");
  EXPECT_EQ(
      f.ToJson(),
      R"({"event_types":["x"],"statuses":["a","b"],"cost_threshold_tokens":5,"any":[{"models":["m"]}]})");
  EXPECT_EQ(MustParse(f.ToJson()), f);
}

TEST(FilterTest, RestrictedToSessionCannotBeWidened) {
  Fields other;
  other.session_id = "s2";
  Filter open = MustParse("{}").RestrictedToSession("s1");
  EXPECT_TRUE(open.Matches(Fields().view()));
  EXPECT_FALSE(open.Matches(other.view()));

  Filter wider = MustParse(R"({"session_ids":["s1","s2"]})").RestrictedToSession("s1");
  EXPECT_FALSE(wider.Matches(other.view()));
  EXPECT_TRUE(wider.Matches(Fields().view()));

  Filter disjoint = MustParse(R"({"session_ids":["s2"]})").RestrictedToSession("s1");
  EXPECT_FALSE(disjoint.Matches(other.view()));
  EXPECT_FALSE(disjoint.Matches(Fields().view()));
  EXPECT_EQ(MustParse(disjoint.ToJson()), disjoint);
}

struct BadFilter {
  const char* json;
  const char* message;
};

class FilterRejects : public ::testing::TestWithParam<BadFilter> {};

TEST_P(FilterRejects, WithMessageNamingTheKey) {
  auto f = Filter::Parse(GetParam().json);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Table, FilterRejects,
    ::testing::Values(
        BadFilter{"[]", "filter: must be a JSON object, got array"},
        BadFilter{"{", "filter: invalid JSON at byte 1: Missing a name for object member."},
        BadFilter{R"({"colour":["red"]})",
                  "filter.colour: unknown key (allowed: event_types, session_ids, session_id, "
                  "agent_ids, tool_names, statuses, models, feature_ids, cost_threshold_tokens, "
                  "min_duration_ms, any)"},
        BadFilter{R"({"event_types":"error"})",
                  "filter.event_types: must be an array of strings, got string"},
        BadFilter{R"({"tool_names":["a",3]})", "filter.tool_names[1]: must be a string, got 3"},
        BadFilter{R"({"session_id":["a"]})", "filter.session_id: must be a string, got array"},
        BadFilter{R"({"cost_threshold_tokens":"12a"})",
                  "filter.cost_threshold_tokens: must be a non-negative integer, got \"12a\""},
        BadFilter{R"({"cost_threshold_tokens":-1})",
                  "filter.cost_threshold_tokens: must be a non-negative integer, got -1"},
        BadFilter{R"({"cost_threshold_tokens":1.5})",
                  "filter.cost_threshold_tokens: must be a non-negative integer, got 1.5"},
        BadFilter{R"({"min_duration_ms":true})",
                  "filter.min_duration_ms: must be a non-negative number, got true"},
        BadFilter{R"({"any":[]})", "filter.any: must not be empty (leave it out to match all)"},
        BadFilter{R"({"any":{}})", "filter.any: must be an array of filters, got object"},
        BadFilter{R"({"any":[{"x":1}]})",
                  "filter.any[0].x: unknown key (allowed: event_types, session_ids, session_id, "
                  "agent_ids, tool_names, statuses, models, feature_ids, cost_threshold_tokens, "
                  "min_duration_ms, any)"},
        BadFilter{R"({"any":[{"any":[{"any":[{"any":[{"any":[{}]}]}]}]}]})",
                  "filter.any[0].any[0].any[0].any[0].any: nested deeper than 4 levels of any"},
        BadFilter{R"({"models":["a"],"models":["b"]})", "filter.models: duplicate key"},
        BadFilter{"{\"models\":[\"\xff\"]}",
                  "filter: invalid JSON at byte 12: Invalid encoding in string."}));

TEST(FilterTest, RejectsOversizedListAndText) {
  std::string big = R"({"models":[)";
  for (int i = 0; i < 1001; ++i) big += (i ? ",\"m\"" : "\"m\"");
  big += "]}";
  auto f = Filter::Parse(big);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "filter.models: has 1001 values, the limit is 1000");

  auto huge = Filter::Parse(std::string(70 * 1024, ' '));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().message(), "filter: is 71680 bytes, the limit is 65536");
}

TEST(FilterTest, PathPrefixNamesTheCaller) {
  auto f = Filter::Parse(R"({"x":1})", "subscribe.filter");
  ASSERT_FALSE(f.ok());
  EXPECT_TRUE(f.status().message().starts_with("subscribe.filter.x: unknown key"));
}

// filter_fuzz: RapidJSON 1.1.0 read "0e308" with full precision as a garbage
// negative number (UBSan: clz(0) in DiyFp::Normalize), so a zero threshold
// was refused or became a random value (core/json_numbers.h).
TEST(FilterTest, ZeroWithLargeExponentIsZero) {
  for (const char* zero : {"0e308", "0.0E+308", "0.000e999", "0e-400"}) {
    Result<Filter> f = Filter::Parse(std::string(R"({"min_duration_ms":)") + zero + "}");
    ASSERT_TRUE(f.ok()) << zero << ": " << f.status().ToString();
    EXPECT_EQ(f->ToJson(), R"({"min_duration_ms":0.0})") << zero;
  }
  Result<Filter> text = Filter::Parse(R"({"event_types":["0e308"]})");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->ToJson(), R"({"event_types":["0e308"]})");  // strings are never touched
}

// filter_fuzz: "18003…3e308" (130 digits) was read by RapidJSON with an
// out-of-bounds index into its table of powers (UBSan) instead of refused.
TEST(FilterTest, NumberBeyondDoubleWithSmallExponentIsRefused) {
  const std::string text = R"({"min_duration_ms":)" + std::string(130, '3') + "e308}";
  Result<Filter> f = Filter::Parse(text);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "filter: invalid JSON at byte 19: Number too big to be stored in double.");
}

// RapidJSON decodes "\udc00" into bytes that are not UTF-8, even with
// kParseValidateEncodingFlag; the canonical JSON then carried them into the
// hello frame (a WebSocket text frame, which must be UTF-8).
TEST(FilterTest, LoneSurrogateEscapeInAListIsRefused) {
  Result<Filter> f = Filter::Parse(R"({"session_ids":["ok","\udc00"]})");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "filter.session_ids[1]: must be a string of characters (a \\u escape of a lone "
            "surrogate is not one)");
  EXPECT_TRUE(Filter::Parse(R"({"session_ids":["\ud83d\ude00"]})").ok());
}

}  // namespace
}  // namespace tailbus
