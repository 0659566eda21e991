// `tailbus publish` against a real database file.
#include <string>

#include "tests/cli/cli_test_util.h"
#include "tests/cli/fake_http_server.h"

namespace tailbus::cli_test {
namespace {

using PublishTest = CliTest;

TEST_F(PublishTest, PublishFromFlagsPrintsOffset) {
  RunResult r = Run({"publish", "--session", "s1", "--type", "message", "--field", "content=hi"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_EQ(r.err, "");

  r = Run({"publish", "--session", "s1", "--type", "message"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "2\n");
}

TEST_F(PublishTest, FieldValuesAreJsonWhenTheyParseElseStrings) {
  RunResult r = Run({"publish", "--session", "s1", "--type", "openai_response", "--field",
                     "prompt_tokens=12", "--field", "ok=true", "--field", "name=gpt-4o", "--field",
                     "code=12a", "--field", R"(meta={"a":[1,2]})", "--field", "empty="});
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Run({"replay", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  rapidjson::Document doc = ParseJson(Lines(r.out).at(0));
  ASSERT_TRUE(doc.IsObject());
  EXPECT_TRUE(doc["prompt_tokens"].IsInt());
  EXPECT_EQ(doc["prompt_tokens"].GetInt(), 12);
  EXPECT_TRUE(doc["ok"].IsTrue());
  EXPECT_STREQ(doc["name"].GetString(), "gpt-4o");
  EXPECT_STREQ(doc["code"].GetString(), "12a");
  EXPECT_EQ(doc["meta"]["a"][1].GetInt(), 2);
  EXPECT_STREQ(doc["empty"].GetString(), "");
  EXPECT_STREQ(doc["event_type"].GetString(), "openai_response");
  EXPECT_STREQ(doc["session_id"].GetString(), "s1");
  // cost_tokens is derived from prompt_tokens + completion_tokens only when both
  // exist; here only the producer's fields are checked.
  EXPECT_EQ(doc["offset"].GetInt64(), 1);
}

TEST_F(PublishTest, JsonFlagIsOverriddenBySessionAndType) {
  RunResult r = Run(
      {"publish", "--json", R"({"session_id":"a","type":"x","content":"c"})", "--session", "b"});
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Run({"replay", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  rapidjson::Document doc = ParseJson(Lines(r.out).at(0));
  EXPECT_STREQ(doc["session_id"].GetString(), "b");
  EXPECT_STREQ(doc["event_type"].GetString(), "x");
  EXPECT_STREQ(doc["content"].GetString(), "c");
}

TEST_F(PublishTest, PublishNdjsonFromStdinPrintsOneOffsetPerLine) {
  std::string input =
      "{\"session_id\":\"s1\",\"event_type\":\"message\"}\n"
      "\n"
      "{\"session_id\":\"s2\",\"type\":\"tool_call\",\"tool_name\":\"search\"}\n"
      "{\"session_id\":\"s1\",\"event_type\":\"error\"}";  // no final newline
  RunResult r = Run({"publish"}, input);
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "1\n2\n3\n");

  // "-" and --stdin say the same explicitly.
  r = Run({"publish", "-"}, "{\"session_id\":\"s3\",\"event_type\":\"m\"}\n");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "4\n");
  r = Run({"publish", "--stdin"}, "{\"session_id\":\"s3\",\"event_type\":\"m\"}\n");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "5\n");
}

TEST_F(PublishTest, LargeStdinIsBatchedAndEveryOffsetPrinted) {
  std::string input;
  const int kEvents = 2'503;
  for (int i = 0; i < kEvents; ++i) {
    input += "{\"session_id\":\"s" + std::to_string(i % 7) +
             "\",\"event_type\":\"tick\",\"i\":" + std::to_string(i) + "}\n";
  }
  RunResult r = Run({"publish", "--batch-size", "500"}, input);
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<int64_t> offsets = Offsets(r.out);
  ASSERT_EQ(offsets.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(offsets[i], i + 1);
}

TEST_F(PublishTest, PublishRejectsBadLineAndAppendsNothing) {
  // Seed one event so the database exists and the head is known.
  ASSERT_EQ(Run({"publish", "--session", "s0", "--type", "m"}).exit_code, 0);
  std::string input =
      "{\"session_id\":\"s1\",\"event_type\":\"message\"}\n"
      "{\"session_id\":\"s1\",\"event_type\":\"message\"}\n"
      "\n"
      "{\"event_type\":\"message\"}\n"
      "{\"session_id\":\"s1\",\"event_type\":\"message\"}\n";
  RunResult r = Run({"publish"}, input);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_ONE_LINE_ERROR(r);
  // Line 4 of the input, the third event (index 2), field session_id.
  EXPECT_NE(r.err.find("line 4"), std::string::npos) << r;
  EXPECT_NE(r.err.find("events[2].session_id: missing"), std::string::npos) << r;

  r = Run({"stats", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  rapidjson::Document stats = ParseJson(r.out);
  EXPECT_EQ(stats["head"].GetInt64(), 1);
  EXPECT_EQ(stats["events"].GetInt64(), 1);
}

TEST_F(PublishTest, MalformedJsonLineNamesTheLine) {
  RunResult r = Run({"publish"}, "{\"session_id\":\"s1\",\"event_type\":\"m\"}\n{not json\n");
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("line 2: events[1]: invalid JSON"), std::string::npos) << r;
}

TEST_F(PublishTest, BadEventFromFlagsExitsOneWithDecoderMessage) {
  RunResult r = Run({"publish", "--type", "message"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("events[0].session_id: missing"), std::string::npos) << r;

  r = Run({"publish", "--session", "s1", "--type", "message", "--field", "cost_tokens=\"12a\""});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("events[0].cost_tokens"), std::string::npos) << r;
}

TEST_F(PublishTest, MalformedFlagsAreUsageErrors) {
  RunResult r = Run({"publish", "--session", "s1", "--field", "novalue"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("--field"), std::string::npos) << r;

  r = Run({"publish", "--json", "{oops"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("--json"), std::string::npos) << r;

  r = Run({"publish", "--json", "[1,2]"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);

  r = Run({"publish", "--stdin", "--session", "s1"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);

  r = Run({"publish", "--batch-size", "0"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);

  r = Run({"publish", "--url", "ftp://x", "--session", "s", "--type", "t"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);
}

TEST_F(PublishTest, SameEventIdTwiceGetsTheOriginalOffset) {
  const std::string event = R"({"session_id":"s1","event_type":"m","event_id":"evt-1"})";
  RunResult r = Run({"publish", "--json", event});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "1\n");
  r = Run({"publish", "--session", "s1", "--type", "m"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "2\n");
  // A new process: the idempotency window is seeded from the log.
  r = Run({"publish", "--json", event});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "1\n");
  r = Run({"replay"});
  EXPECT_EQ(Lines(r.out).size(), 2u) << r;
}

TEST_F(PublishTest, DbFromEnvironment) {
  std::string other = (dir_ / "env.db").string();
  RunResult r =
      RunTailbus({"publish", "--session", "s", "--type", "t"}, {}, {"TAILBUS_DB=" + other});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(std::filesystem::exists(other));
  // An explicit --db wins over the environment.
  r = RunTailbus({"stats", "--db", db_}, {}, {"TAILBUS_DB=" + other});
  EXPECT_EQ(r.exit_code, 1) << r;  // db_ was never created
}

TEST_F(PublishTest, UnreachableServerExitsOne) {
  // Port 1 on loopback: nothing listens there.
  RunResult r = Run({"publish", "--url", "http://127.0.0.1:1", "--session", "s", "--type", "t"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_FALSE(std::filesystem::exists(db_)) << "--url must not touch the database file";
}

TEST_F(PublishTest, PublishToUrlPostsNdjsonAndPrintsTheServersOffsets) {
  FakeHttpServer server([](const FakeRequest& req) {
    size_t events = Lines(req.body).size();
    std::string offsets;
    for (size_t i = 0; i < events; ++i) offsets += (i ? "," : "") + std::to_string(41 + i);
    return FakeResponse{200, "{\"offsets\":[" + offsets +
                                 "],\"first\":41,\"last\":" + std::to_string(40 + events) + "}"};
  });
  std::string input =
      "{\"session_id\":\"a\",\"type\":\"m\"}\n\n{\"session_id\":\"b\",\"type\":\"m\"}\n";
  RunResult r = Run({"publish", "--url", server.url()}, input);
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "41\n42\n");
  EXPECT_EQ(r.err, "");
  std::vector<FakeRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/api/events");
  EXPECT_EQ(requests[0].content_type, "application/x-ndjson");
  EXPECT_EQ(requests[0].body,
            "{\"session_id\":\"a\",\"type\":\"m\"}\n{\"session_id\":\"b\",\"type\":\"m\"}\n");

  // One event from flags; a URL that already names the endpoint is kept.
  r = Run({"publish", "--url", server.url() + "/api/events/", "--session", "s", "--type", "t"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "41\n");
  requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].path, "/api/events");
  rapidjson::Document sent = ParseJson(Lines(requests[1].body).at(0));
  EXPECT_STREQ(sent["session_id"].GetString(), "s");
  EXPECT_STREQ(sent["event_type"].GetString(), "t");
  EXPECT_FALSE(std::filesystem::exists(db_)) << "--url must not touch the database file";
}

TEST_F(PublishTest, PublishToUrlPrintsTheServersErrorAndExitsOne) {
  FakeHttpServer server([](const FakeRequest&) {
    return FakeResponse{400, R"({"error":"events[1].session_id: missing","details":[{"index":1,)"
                             R"("field":"session_id","reason":"missing"}]})"};
  });
  std::string input = "{\"session_id\":\"a\",\"type\":\"m\"}\n\n{\"type\":\"m\"}\n";
  RunResult r = Run({"publish", "--url", server.url()}, input);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("400"), std::string::npos) << r;
  EXPECT_NE(r.err.find("line 3: events[1].session_id: missing"), std::string::npos) << r;

  FakeHttpServer down([](const FakeRequest&) {
    return FakeResponse{503, R"({"error":"the log cannot write: disk full"})"};
  });
  r = Run({"publish", "--url", down.url(), "--session", "s", "--type", "t"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("server answered 503: the log cannot write: disk full"), std::string::npos)
      << r;
}

}  // namespace
}  // namespace tailbus::cli_test
