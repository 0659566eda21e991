// The pure request parsers the fuzz targets cover (fuzz/ws_frames_fuzz.cc,
// fuzz/http_query_fuzz.cc): client WebSocket messages (ws/client_message.h),
// routes (ws/route.h) and the query/session-id rules added for hostile input.
// Each regression case is named after the input that broke something.
#include "ws/client_message.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/event_decoder.h"
#include "ws/query.h"
#include "ws/route.h"

namespace tailbus::ws {
namespace {

using Kind = ClientMessage::Kind;

std::string Repeat(std::string_view s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST(ClientMessage, PlainAndJsonPing) {
  EXPECT_EQ(ParseClientMessage("ping", std::nullopt, 10).kind, Kind::kPlainPing);
  ClientMessage m = ParseClientMessage(R"({"type":"ping","request_id":[1,"a"]})", std::nullopt, 10);
  EXPECT_EQ(m.kind, Kind::kPing);
  EXPECT_EQ(m.request_id_json, R"([1,"a"])");
}

TEST(ClientMessage, PublishCarriesTheEventsAsJson) {
  ClientMessage one = ParseClientMessage(
      R"({"type":"publish","request_id":"r1","event":{"session_id":"s","type":"a"}})", std::nullopt,
      10);
  ASSERT_EQ(one.kind, Kind::kPublish);
  EXPECT_EQ(one.events(), R"({"session_id":"s","type":"a"})");
  EXPECT_EQ(one.request_id_json, "\"r1\"");
  ClientMessage many =
      ParseClientMessage(R"({"type":"publish","events":[{},{}]})", std::nullopt, 10);
  ASSERT_EQ(many.kind, Kind::kPublish);
  EXPECT_EQ(many.events(), "[{},{}]");
}

// RapidJSON's own conversion reads this as 1.2345678901234566e29; the HTTP
// path (core/json_parse.h) reads the nearest double, 1.2345678901234568e29.
// A WebSocket publish must store exactly what an HTTP POST stores.
TEST(ClientMessage, PublishReadsNumbersExactlyLikeHttp) {
  const std::string event =
      R"({"session_id":"s","type":"a","x":123456789012345678901234567890.0,"y":0.1})";
  const std::string frame = R"({"type":"publish","event":)" + event + "}";
  ClientMessage m = ParseClientMessage(frame, std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kPublish);
  // Read back with strtod (correctly rounded), not with RapidJSON.
  const size_t x = m.events().find(R"("x":)");
  ASSERT_NE(x, std::string::npos) << m.events();
  EXPECT_EQ(std::strtod(std::string(m.events()).c_str() + x + 4, nullptr),
            std::strtod("123456789012345678901234567890.0", nullptr))
      << m.events();
  EXPECT_NE(m.events().find(R"("y":0.1)"), std::string::npos) << m.events();
}

TEST(ClientMessage, PublishOverTheEventLimitIsTooManyEvents) {
  ClientMessage m =
      ParseClientMessage(R"({"type":"publish","events":[{},{},{}]})", std::nullopt, 2);
  ASSERT_EQ(m.kind, Kind::kError);
  EXPECT_EQ(m.error_code, "too_many_events");
  EXPECT_NE(m.error_message.find("limit of 2"), std::string::npos);
}

TEST(ClientMessage, ChatMessageGetsTheBoundSessionAndLosesRequestId) {
  ClientMessage m = ParseClientMessage(R"({"type":"message","content":"hi","request_id":5})",
                                       std::string("chat-1"), 10);
  ASSERT_EQ(m.kind, Kind::kChatMessage);
  EXPECT_EQ(m.request_id_json, "5");
  EXPECT_EQ(m.events(), R"({"type":"message","content":"hi","session_id":"chat-1"})");
}

TEST(ClientMessage, SubscribeMembersAndErrorsNamingThem) {
  ClientMessage m = ParseClientMessage(
      R"({"type":"subscribe","filter":{"event_types":["a"]},"after":3,"batch_size":5,"poll_interval":7,"strict":true})",
      std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kSubscribe);
  EXPECT_EQ(m.subscribe.filter_json, R"({"event_types":["a"]})");
  EXPECT_EQ(m.subscribe.after, 3);
  EXPECT_EQ(m.subscribe.batch_size, 5);
  EXPECT_EQ(m.subscribe.batch_window_ms, 7);
  EXPECT_EQ(m.subscribe.strict, true);

  ClientMessage bad = ParseClientMessage(R"({"type":"subscribe","after":-1})", std::nullopt, 10);
  ASSERT_EQ(bad.kind, Kind::kError);
  EXPECT_EQ(bad.error_code, "bad_message");
  EXPECT_EQ(bad.error_message, "subscribe.after: must be an integer >= 0");
  ClientMessage both = ParseClientMessage(
      R"({"type":"subscribe","batch_window_ms":1,"poll_interval":2,"request_id":"x"})",
      std::nullopt, 10);
  ASSERT_EQ(both.kind, Kind::kError);
  EXPECT_EQ(both.error_message,
            "subscribe.poll_interval: give batch_window_ms or poll_interval, not both");
  EXPECT_EQ(both.request_id_json, "\"x\"");
}

// --- The publish fast path (ScanPublish): one pass, the events handed on as the frame's text.

// The decoded events of a publish, as the server stores them (bodies; ids and times given).
std::vector<std::string> Bodies(std::string_view events_json) {
  DecodeResult r = DecodeEvents(events_json, DecodeLimits{}, 1'795'310'909'123);
  std::vector<std::string> out;
  if (!r.ok()) return {"ERROR: " + r.ToStatus().ToString()};
  for (const Event& e : r.events) out.push_back(e.body);
  return out;
}

TEST(ClientMessage, PublishHandsOnTheEventsAsTheFramesOwnText) {
  const std::string events =
      R"([ {"session_id":"s","type":"a","event_id":"e","timestamp":1, "x" : 1.50 },)"
      R"({"session_id":"s","type":"b","event_id":"f","timestamp":2,"m":"\u00e9\/"} ])";
  const std::string frame =
      R"({"type":"publish", "request_id" : {"b":[1, 2.50, "\u0041"]},"events":)" + events + "}";
  ClientMessage m = ParseClientMessage(frame, std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kPublish) << m.error_message;
  // A view into the frame itself: no copy.
  EXPECT_EQ(m.events(), events);
  EXPECT_GE(m.events().data(), frame.data());
  EXPECT_LE(m.events().data() + m.events().size(), frame.data() + frame.size());
  EXPECT_EQ(m.request_id_json, R"({"b":[1,2.5,"A"]})");  // re-serialised, as before
  // Stored exactly as the canonical (re-serialised) text would be.
  EXPECT_EQ(Bodies(m.events()),
            Bodies(R"([{"session_id":"s","type":"a","event_id":"e","timestamp":1,"x":1.5},)"
                   R"({"session_id":"s","type":"b","event_id":"f","timestamp":2,"m":"\u00e9/"}])"));
}

TEST(ClientMessage, PublishWithEventsAndEventUsesEventsWhereverItIs) {
  for (const std::string& frame : {
           std::string(R"({"type":"publish","event":{"x":1},"events":[{"y":2}]})"),
           std::string(R"({"type":"publish","events":[{"y":2}],"event":{"x":1}})"),
       }) {
    ClientMessage m = ParseClientMessage(frame, std::nullopt, 10);
    ASSERT_EQ(m.kind, Kind::kPublish) << frame;
    EXPECT_EQ(m.events(), R"([{"y":2}])") << frame;
  }
  ClientMessage object = ParseClientMessage(
      R"({"type":"publish","event":{"x":1},"events":{"y":2}})", std::nullopt, 10);
  ASSERT_EQ(object.kind, Kind::kPublish);
  EXPECT_EQ(object.events(), R"({"y":2})");
}

TEST(ClientMessage, PublishWithADuplicatedMemberTakesTheFirstAsBefore) {
  ClientMessage m = ParseClientMessage(
      R"({"type":"publish","events":[{"a":1}],"events":[{"b":2}],"request_id":1,"request_id":2})",
      std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kPublish);
  EXPECT_EQ(m.events(), R"([{"a":1}])");
  EXPECT_EQ(m.request_id_json, "1");
}

TEST(ClientMessage, PublishFrameInvalidAfterItsEventsIsBadJsonNamingTheByte) {
  const std::string frame = R"({"type":"publish","events":[{"session_id":"s","type":"a"}],})";
  ClientMessage m = ParseClientMessage(frame, std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kError);
  EXPECT_EQ(m.error_code, "bad_json");
  EXPECT_EQ(m.error_message, "invalid JSON at byte 59: Missing a name for object member.");
}

TEST(ClientMessage, PublishWithInvalidUtf8InAnEventKeepsItsDecoderError) {
  // Given up by the fast path: the DOM path re-serialises, the decoder names the byte in that.
  const std::string frame =
      "{\"type\":\"publish\",\"event\":{\"session_id\":\"s\",\"type\":"
      "\"a\",\"x\":\"\xC0\xAF\"}}";
  ClientMessage m = ParseClientMessage(frame, std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kPublish);
  EXPECT_EQ(m.events(), "{\"session_id\":\"s\",\"type\":\"a\",\"x\":\"\xC0\xAF\"}");
  EXPECT_EQ(Bodies(m.events()), std::vector<std::string>{"ERROR: InvalidArgument: body: "
                                                         "invalid UTF-8 at byte 34"});
}

TEST(ClientMessage, PublishWithAnEscapedTypeIsStillAPublish) {
  ClientMessage m =
      ParseClientMessage(R"({"type":"publ\u0069sh","events":[{"a":1}]})", std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kPublish);
  EXPECT_EQ(m.events(), R"([{"a":1}])");
}

TEST(ClientMessage, PublishAtTheEventLimitPassesAndOneMoreIsTooManyEvents) {
  EXPECT_EQ(ParseClientMessage(R"({"type":"publish","events":[{},{}]})", std::nullopt, 2).kind,
            Kind::kPublish);
  ClientMessage m =
      ParseClientMessage(R"({"type":"publish","events":[{},{},{"a":[1,2,3]}]})", std::nullopt, 2);
  ASSERT_EQ(m.kind, Kind::kError);
  EXPECT_EQ(m.error_code, "too_many_events");
  EXPECT_EQ(m.error_message, "a publish of 3 events exceeds the limit of 2");
}

TEST(ClientMessage, ScanPublishLeavesEverythingButWellFormedPublishesToTheDomPath) {
  namespace internal = client_message_internal;
  EXPECT_TRUE(internal::ScanPublish(R"({"type":"publish","events":[{}]})", 10).has_value());
  for (const std::string& text : std::vector<std::string>{
           "ping",
           R"({"type":"ping"})",
           R"({"type":"message","content":"hi"})",
           R"({"type":"subscribe"})",
           R"({"type":"publish"})",
           R"({"type":"publish","events":{"a":1}})",
           R"({"type":"publish","event":[{}]})",
           R"({"type":"publish","events":[{}]} x)",
           R"({"type":"publish","events":[{}],"type":"publish"})",
           R"({"type":"publish","events":[{}],"request_id":1e400})",
           R"({"type":"publish","events":[{},{},{}]})",
           "\xEF\xBB\xBF{\"type\":\"publish\",\"events\":[{}]}",
       }) {
    EXPECT_FALSE(internal::ScanPublish(text, 2).has_value()) << text;
  }
}

TEST(ClientMessage, BadJsonNamesTheByte) {
  ClientMessage m = ParseClientMessage(R"({"type":"publish",)", std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kError);
  EXPECT_EQ(m.error_code, "bad_json");
  EXPECT_NE(m.error_message.find("invalid JSON at byte"), std::string::npos) << m.error_message;
}

// Found by reasoning about ws_frames_fuzz's input space, reproduced by
// ServerHostile.MalformedWebSocketMessages* (DeeplyNestedMessage): the server
// parsed messages with RapidJSON's recursive parser and re-serialised them
// recursively, so 1 MB of '[' overflowed the network thread's stack.
TEST(ClientMessage, MessageNestedDeeperThanTheLimitIsBadJsonWithoutRecursion) {
  for (const std::string& text :
       {R"({"type":"publish","event":{"m":)" + Repeat("[", 500'000) + Repeat("]", 500'000) + "}}",
        Repeat("[", 1'000'000), R"({"type":"ping","request_id":)" + Repeat("{\"a\":", 200'000)}) {
    ClientMessage m = ParseClientMessage(text, std::nullopt, 10);
    ASSERT_EQ(m.kind, Kind::kError);
    EXPECT_EQ(m.error_code, "bad_json");
    EXPECT_EQ(m.error_message, "nesting depth exceeds the limit of 128");
  }
  // At the limit it is parsed (and the event decoder judges the event's depth).
  const std::string at_limit =
      R"({"type":"publish","event":)" + Repeat("[", 127) + Repeat("]", 127) + "}";
  EXPECT_EQ(ParseClientMessage(at_limit, std::nullopt, 10).kind, Kind::kPublish);
}

// An unknown type is quoted in the error, shortened to 64 bytes; cutting
// inside a multi-byte character would make the error frame invalid UTF-8,
// which browsers answer by failing the connection (1007).
TEST(ClientMessage, UnknownTypeIsQuotedWithoutSplittingACharacter) {
  const std::string type = std::string(63, 'x') + "\xc3\xa9\xc3\xa9";  // 'é' across byte 64
  ClientMessage m = ParseClientMessage("{\"type\":\"" + type + "\"}", std::nullopt, 10);
  ASSERT_EQ(m.kind, Kind::kError);
  EXPECT_EQ(m.error_code, "unknown_type");
  EXPECT_NE(m.error_message.find("\"" + std::string(63, 'x') + "\""), std::string::npos)
      << m.error_message;
}

TEST(ClientMessage, NestingDepthSkipsStringsAndEscapes) {
  EXPECT_EQ(JsonNestingDepth(R"({"a":"[[[[\"[[","b":[{}]})", 100), 3u);
  EXPECT_EQ(JsonNestingDepth("]]]][", 100), 1u);
  EXPECT_EQ(JsonNestingDepth(Repeat("[", 1000), 5), 6u);  // stops counting past the limit
}

TEST(Route, MatchesEndpointsAndSessions) {
  EXPECT_EQ(MatchRoute("/").kind, Route::kIndex);
  EXPECT_EQ(MatchRoute("/api/events").kind, Route::kEvents);
  Route r = MatchRoute("/api/sessions/abc/events");
  EXPECT_EQ(r.kind, Route::kSessionEvents);
  EXPECT_EQ(r.session, "abc");
  EXPECT_STREQ(MatchRoute("/api/sessions/abc").allow, "GET, DELETE, OPTIONS");
  EXPECT_EQ(MatchRoute("/api/sessions/abc/other").kind, Route::kNone);
  EXPECT_EQ(MatchRoute("/etc/passwd").kind, Route::kNone);
  EXPECT_EQ(MatchRoute("/..\\..\\etc\\passwd").kind, Route::kNone);
}

// ServerHostile EightyQueryArguments: any number of unknown arguments was
// accepted (and checked for duplicates pairwise).
TEST(QueryArgs, MoreThanSixtyFourArgumentsAreRefused) {
  std::vector<std::string> args;
  for (int i = 0; i < 64; ++i) args.push_back("a" + std::to_string(i) + "=1");
  EXPECT_TRUE(QueryArgs::Parse(args).ok());
  args.push_back("one_more=1");
  Result<QueryArgs> r = QueryArgs::Parse(args);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "more than 64 query arguments");
}

// An argument's value is quoted in the error, shortened to 40 bytes; the cut
// must not split a character (the message goes out in a WebSocket error frame
// before the 4400 close).
TEST(QueryArgs, QuotedValueIsCutAtACharacterBoundary) {
  Result<QueryArgs> args = QueryArgs::Parse({"after=" + std::string(39, '9') + "\xc3\xa9\xc3\xa9"});
  ASSERT_TRUE(args.ok());
  Result<std::optional<int64_t>> after = args->GetInt("after", 0, 10);
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.status().message().find("\"" + std::string(39, '9') + "\xe2\x80\xa6\""),
            std::string::npos)
      << after.status().message();
}

// ServerHostile SessionIdInvalidUtf8: /api/sessions/%ff%fe was looked up, and
// /ws?session_id=%ff%fe put the bytes in a text frame (the hello's filter).
TEST(ValidateSessionId, SessionIdThatIsNotUtf8IsRefused) {
  EXPECT_EQ(ValidateSessionId("\xff\xfe").message(), "session_id: must be valid UTF-8");
  EXPECT_FALSE(ValidateSessionId("a\xc0\xaf").ok());         // overlong '/'
  EXPECT_FALSE(ValidateSessionId("\xed\xa0\x80").ok());      // surrogate
  EXPECT_FALSE(ValidateSessionId("\xf4\x90\x80\x80").ok());  // above U+10FFFF
  EXPECT_FALSE(ValidateSessionId("ab\xe2\x82").ok());        // truncated
  EXPECT_TRUE(ValidateSessionId("caf\xc3\xa9-\xf0\x9f\x98\x80").ok());
}

}  // namespace
}  // namespace tailbus::ws
