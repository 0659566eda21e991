// Pure functions of the server: query/path parsing, frame building, the wire
// code table (and that docs/PROTOCOL.md lists every code), metrics rendering.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <sstream>

#include "core/event.h"
#include "ws/frames.h"
#include "ws/metrics.h"
#include "ws/query.h"
#include "ws/wire.h"

namespace tailbus::ws {
namespace {

TEST(QueryArgs, ParsesNamesValuesAndFlags) {
  auto args = QueryArgs::Parse({"after=12", "filter={\"a\":1}", "strict", ""});
  ASSERT_TRUE(args.ok()) << args.status().ToString();
  EXPECT_EQ(args->Get("after"), "12");
  EXPECT_EQ(args->Get("filter"), "{\"a\":1}");
  EXPECT_EQ(args->Get("strict"), "");
  EXPECT_FALSE(args->Get("missing"));
  // A value may contain '=' (lws already split arguments on '&').
  auto eq = QueryArgs::Parse({"q=a=b"});
  ASSERT_TRUE(eq.ok());
  EXPECT_EQ(eq->Get("q"), "a=b");
}

TEST(QueryArgs, RejectsDuplicatesAndEmptyNames) {
  auto dup = QueryArgs::Parse({"after=1", "after=2"});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "after: given more than once");
  EXPECT_FALSE(QueryArgs::Parse({"=5"}).ok());
}

TEST(QueryArgs, TypedGetters) {
  auto args = QueryArgs::Parse(
      {"a=5", "b=-1", "c=x", "d=99999999999999999999", "t=true", "f=0", "s=", "bad=maybe"});
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(*args->GetInt("a", 0, 10).value(), 5);
  EXPECT_FALSE(args->GetInt("missing", 0, 10).value().has_value());
  auto neg = args->GetInt("b", 0, 10);
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.status().message(), "b: must be an integer in [0, 10], got \"-1\"");
  EXPECT_FALSE(args->GetInt("c", 0, 10).ok());
  EXPECT_FALSE(args->GetInt("d", 0, INT64_MAX).ok());  // overflow
  EXPECT_TRUE(*args->GetBool("t").value());
  EXPECT_FALSE(*args->GetBool("f").value());
  EXPECT_TRUE(*args->GetBool("s").value());  // `?strict` alone means true
  EXPECT_FALSE(args->GetBool("bad").ok());
}

TEST(ParseInt64, StrictDigits) {
  EXPECT_EQ(ParseInt64("0"), 0);
  EXPECT_EQ(ParseInt64("-7"), -7);
  EXPECT_EQ(ParseInt64("9223372036854775807"), INT64_MAX);
  EXPECT_FALSE(ParseInt64(""));
  EXPECT_FALSE(ParseInt64("1 "));
  EXPECT_FALSE(ParseInt64("+1"));
  EXPECT_FALSE(ParseInt64("0x10"));
  EXPECT_FALSE(ParseInt64("9223372036854775808"));
}

TEST(SplitPath, Segments) {
  EXPECT_EQ(SplitPath("/"), std::vector<std::string_view>{});
  EXPECT_EQ(SplitPath("/ws"), std::vector<std::string_view>{"ws"});
  EXPECT_EQ(SplitPath("/api/sessions/a b/events/"),
            (std::vector<std::string_view>{"api", "sessions", "a b", "events"}));
}

TEST(ValidateSessionId, Rules) {
  EXPECT_TRUE(ValidateSessionId("s-1 é").ok());
  EXPECT_FALSE(ValidateSessionId("").ok());
  EXPECT_FALSE(ValidateSessionId(std::string(129, 'a')).ok());
  EXPECT_TRUE(ValidateSessionId(std::string(128, 'a')).ok());
  EXPECT_FALSE(ValidateSessionId(std::string("a\nb")).ok());
}

TEST(ParseListenAddress, Forms) {
  auto v4 = ParseListenAddress("127.0.0.1:8080");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  EXPECT_TRUE(v4->loopback);
  EXPECT_FALSE(v4->ipv6);
  auto any = ParseListenAddress(":9000");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "0.0.0.0");
  EXPECT_FALSE(any->loopback);
  auto local = ParseListenAddress("localhost:0");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->host, "127.0.0.1");
  EXPECT_EQ(local->port, 0);
  auto v6 = ParseListenAddress("[::1]:1");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->ipv6);
  EXPECT_TRUE(v6->loopback);
  EXPECT_FALSE(ParseListenAddress("127.0.0.1").ok());
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:70000").ok());
  EXPECT_FALSE(ParseListenAddress("example.com:80").ok());
  EXPECT_FALSE(ParseListenAddress("[::1:80").ok());
}

TEST(SplitList, TrimsAndDropsEmpty) {
  EXPECT_EQ(SplitList(" a, b,,c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(SplitList("").empty());
}

// ---- frames ------------------------------------------------------------------------

EventPtr Committed(int64_t offset, std::string body) {
  auto e = std::make_shared<CommittedEvent>();
  e->offset = offset;
  e->json = EncodeCommittedJson(body, offset, 1'700'000'000'000);
  return e;
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  EXPECT_FALSE(doc.HasParseError()) << text;
  return doc;
}

TEST(Frames, HasTopLevelMemberIgnoresNestedKeysAndStrings) {
  EXPECT_TRUE(HasTopLevelMember(R"({"a":1,"type":"x"})", "type"));
  EXPECT_TRUE(HasTopLevelMember(R"({ "type" : 1 })", "type"));
  EXPECT_FALSE(HasTopLevelMember(R"({"a":{"type":1}})", "type"));
  EXPECT_FALSE(HasTopLevelMember(R"({"a":"type","b":["type"]})", "type"));
  EXPECT_FALSE(HasTopLevelMember(R"({"a":"\"type\":"})", "type"));
  EXPECT_FALSE(HasTopLevelMember(R"({"types":1})", "type"));
  EXPECT_FALSE(HasTopLevelMember(R"({"ty\"pe":1})", "type"));
}

TEST(Frames, EventFrameAddsTypeUnlessTheEventHasOne) {
  std::string plain;
  AppendEventFrame(&plain, *Committed(3, R"({"event_type":"tool_call","timestamp":"t"})"));
  EXPECT_EQ(plain.rfind(R"({"type":"event","offset":3,)", 0), 0u) << plain;
  auto doc = Parse(plain);
  EXPECT_EQ(std::string(doc["event_type"].GetString()), "tool_call");
  EXPECT_EQ(doc.MemberCount(), 5u);  // type, offset, ingested_at, event_type, timestamp

  std::string chat;
  AppendEventFrame(&chat, *Committed(4, R"({"type":"assistant","event_type":"assistant"})"));
  auto c = Parse(chat);
  EXPECT_EQ(std::string(c["type"].GetString()), "assistant");
  // No duplicate key: exactly one "type".
  size_t types = 0;
  for (auto m = c.MemberBegin(); m != c.MemberEnd(); ++m) {
    types += std::string(m->name.GetString()) == "type";
  }
  EXPECT_EQ(types, 1u);
}

TEST(Frames, BatchFrameSplicesEventsVerbatim) {
  std::vector<EventPtr> events = {Committed(7, R"({"event_type":"a","x":"é\n"})"),
                                  Committed(9, R"({"event_type":"b"})")};
  std::string out;
  AppendBatchFrame(&out, events, 1'700'000'000'123);
  auto doc = Parse(out);
  EXPECT_EQ(std::string(doc["type"].GetString()), "batch");
  EXPECT_EQ(doc["count"].GetInt(), 2);
  EXPECT_EQ(std::string(doc["timestamp"].GetString()), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(doc["first_offset"].GetInt(), 7);
  EXPECT_EQ(doc["last_offset"].GetInt(), 9);
  ASSERT_EQ(doc["events"].Size(), 2u);
  EXPECT_NE(out.find(events[0]->json), std::string::npos);  // the bytes, unchanged
}

TEST(Frames, ControlFramesAreValidJson) {
  HelloInfo hello;
  hello.epoch = "ep\"och";
  hello.head = 10;
  hello.earliest = 2;
  hello.session_id = "s1";
  hello.filter_json = R"({"event_types":["a"]})";
  hello.after = 5;
  hello.batch_size = 50;
  auto h = Parse(HelloFrame(hello));
  EXPECT_EQ(std::string(h["type"].GetString()), "hello");
  EXPECT_EQ(std::string(h["epoch"].GetString()), "ep\"och");
  EXPECT_EQ(std::string(h["session_id"].GetString()), "s1");
  EXPECT_TRUE(h["filter"].IsObject());
  EXPECT_EQ(h["after"].GetInt(), 5);
  EXPECT_EQ(std::string(h["server"].GetString()), "tailbus/" TAILBUS_VERSION);
  HelloInfo live;
  auto l = Parse(HelloFrame(live));
  EXPECT_TRUE(l["session_id"].IsNull());
  EXPECT_TRUE(l["after"].IsNull());

  EXPECT_EQ(Parse(CaughtUpFrame(4))["offset"].GetInt(), 4);
  auto r = Parse(ResetFrame("offset_evicted", "e", 3));
  EXPECT_EQ(std::string(r["reason"].GetString()), "offset_evicted");
  int64_t offsets[] = {1, 2};
  auto a = Parse(AckFrame("\"r1\"", offsets));
  EXPECT_EQ(std::string(a["request_id"].GetString()), "r1");
  EXPECT_EQ(a["offsets"].Size(), 2u);
  EXPECT_TRUE(Parse(AckFrame("", offsets))["request_id"].IsNull());
  FieldError fe{3, "session_id", "missing"};
  auto e = Parse(ErrorFrame("invalid_event", "bad \x01", "7", std::span(&fe, 1)));
  EXPECT_EQ(e["request_id"].GetInt(), 7);
  EXPECT_EQ(e["details"][0]["index"].GetInt(), 3);
  auto body = Parse(HttpErrorBody("not_found", "x", {}, "\"earliest\":4"));
  EXPECT_EQ(body["earliest"].GetInt(), 4);
  EXPECT_TRUE(body["details"].IsArray());
  EXPECT_EQ(std::string(Parse(ConnectedFrame("r9"))["receipt_id"].GetString()), "r9");
}

TEST(Frames, SseRecords) {
  std::string out;
  AppendSseEvent(&out, *Committed(12, R"({"event_type":"a"})"));
  EXPECT_EQ(out.rfind("id: 12\ndata: {\"offset\":12,", 0), 0u);
  EXPECT_EQ(out.substr(out.size() - 2), "\n\n");
  EXPECT_EQ(SseRecord("hello", "{}"), "event: hello\ndata: {}\n\n");
}

// ---- wire codes ------------------------------------------------------------------------

std::string ReadProtocolDoc() {
  std::ifstream in(std::string(TAILBUS_SOURCE_DIR) + "/docs/PROTOCOL.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Wire, EveryCodeIsDocumentedInProtocolMd) {
  const std::string doc = ReadProtocolDoc();
  ASSERT_FALSE(doc.empty()) << "docs/PROTOCOL.md is missing";
  for (const wire::ErrorCodeInfo& info : wire::AllErrorCodes()) {
    EXPECT_NE(doc.find("`" + std::string(info.code) + "`"), std::string::npos)
        << "error code " << info.code << " is not in docs/PROTOCOL.md";
  }
  for (const wire::CloseCodeInfo& info : wire::AllCloseCodes()) {
    EXPECT_NE(doc.find("| " + std::to_string(info.code) + " |"), std::string::npos)
        << "close code " << info.code << " is not in docs/PROTOCOL.md's table";
  }
}

TEST(Wire, StatusMapping) {
  EXPECT_EQ(wire::ErrorForStatus(Status::DiskFull("x")), wire::kUnavailable);
  EXPECT_EQ(wire::ErrorForStatus(Status::IoError("x")), wire::kUnavailable);
  EXPECT_EQ(wire::ErrorForStatus(Status::Unavailable("x")), wire::kUnavailable);
  EXPECT_EQ(wire::ErrorForStatus(Status::ResourceExhausted("x")), wire::kOverloaded);
  EXPECT_EQ(wire::HttpStatusFor(wire::kUnavailable), 503);
  EXPECT_EQ(wire::HttpStatusFor(wire::kBodyTooLarge), 413);
  EXPECT_EQ(wire::HttpStatusFor(wire::kLengthRequired), 411);
  EXPECT_EQ(wire::HttpStatusFor("no-such-code"), 500);
}

// ---- metrics -----------------------------------------------------------------------

TEST(Metrics, PrometheusAndWebSocketJson) {
  Metrics m;
  m.appended_events = 3;
  m.CountRejected("bad_json");
  m.CountRejected("bad_json");
  m.commit_latency.Observe(0.0004);
  m.commit_latency.Observe(0.2);
  m.AttachSession("s1", 1000).total_events_sent = 5;
  Gauges g;
  g.subscribers = 1;
  const std::string text = m.Prometheus(g);
  EXPECT_NE(text.find("tailbus_appended_events_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("tailbus_rejected_inputs_total{reason=\"bad_json\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("tailbus_commit_latency_seconds_bucket{le=\"0.0005\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("tailbus_commit_latency_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("tailbus_commit_latency_seconds_count 2\n"), std::string::npos);

  auto doc = Parse(m.WebSocketMetricsJson(g, 3000));
  EXPECT_EQ(doc["active_sessions"].GetInt(), 1);
  EXPECT_EQ(doc["total_connected_clients"].GetInt(), 1);
  EXPECT_EQ(doc["sessions"]["s1"]["connected_clients"].GetInt(), 1);
  EXPECT_EQ(doc["sessions"]["s1"]["total_events_sent"].GetInt(), 5);
  EXPECT_DOUBLE_EQ(doc["sessions"]["s1"]["uptime_seconds"].GetDouble(), 2.0);
  m.DetachSession("s1");
  EXPECT_EQ(Parse(m.WebSocketMetricsJson(g, 3000))["active_sessions"].GetInt(), 0);
}

}  // namespace
}  // namespace tailbus::ws
