// `tailbus sessions`, `stats`, `demo`, help, version and usage errors.
#include <string>

#include "tests/cli/cli_test_util.h"

namespace tailbus::cli_test {
namespace {

using CommandsTest = CliTest;

TEST(CliUsageTest, VersionPrintsVersion) {
  RunResult r = RunTailbus({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "tailbus " TAILBUS_VERSION "\n");
}

TEST(CliUsageTest, HelpExplainsEveryCommandAndFlag) {
  RunResult r = RunTailbus({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r;
  for (const char* cmd : {"publish", "replay", "sessions", "stats", "export", "import", "demo"}) {
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
  }
  struct Case {
    std::vector<std::string> args;
    std::vector<const char*> flags;
  };
  std::vector<Case> cases = {
      {{"publish", "--help"},
       {"--db", "--session", "--type", "--field", "--json", "--stdin", "--batch-size", "--url"}},
      {{"replay", "--help"},
       {"--db", "--after", "--session", "--filter", "--limit", "--format", "--color"}},
      {{"sessions", "--help"}, {"--db", "--limit", "--offset", "--search", "--format"}},
      {{"sessions", "show", "--help"}, {"--db", "--format"}},
      {{"sessions", "delete", "--help"}, {"--db", "--hard"}},
      {{"stats", "--help"}, {"--db", "--format"}},
      {{"export", "--help"}, {"--db", "--out", "--session", "--after", "--filter"}},
      {{"import", "--help"}, {"--db", "--in", "--batch-size"}},
      {{"demo", "--help"}, {"--db", "--session", "--format", "--color"}},
  };
  for (const Case& c : cases) {
    RunResult h = RunTailbus(c.args);
    EXPECT_EQ(h.exit_code, 0) << c.args[0] << h;
    EXPECT_EQ(h.err, "");
    for (const char* flag : c.flags) {
      EXPECT_NE(h.out.find(flag), std::string::npos) << c.args[0] << " " << flag << "\n" << h.out;
    }
  }
}

TEST(CliUsageTest, UsageErrorExitsTwo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"replay", "--bogus"},
           {"replay", "--limit", "abc"},
           {"replay", "--after", "-3"},
           {"sessions", "show"},
           {"stats", "--format", "yaml"},
           {"publish", "--field"},
       }) {
    RunResult r = RunTailbus(args);
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_EQ(r.out, "") << r;
    EXPECT_ONE_LINE_ERROR(r);
  }
}

TEST_F(CommandsTest, SessionsListNewestActivityFirst) {
  std::string input = R"({"session_id":"alpha","event_type":"m","total_tokens":10})"
                      "\n"
                      R"({"session_id":"beta","event_type":"m"})"
                      "\n"
                      R"({"session_id":"alpha","event_type":"error"})"
                      "\n"
                      R"({"session_id":"gamma","event_type":"m"})"
                      "\n";
  ASSERT_EQ(Run({"publish"}, input).exit_code, 0);

  RunResult r = Run({"sessions", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r;
  EXPECT_STREQ(ParseJson(lines[0])["session_id"].GetString(), "gamma");
  EXPECT_STREQ(ParseJson(lines[1])["session_id"].GetString(), "alpha");
  EXPECT_STREQ(ParseJson(lines[2])["session_id"].GetString(), "beta");
  rapidjson::Document alpha = ParseJson(lines[1]);
  EXPECT_EQ(alpha["event_count"].GetInt64(), 2);
  EXPECT_EQ(alpha["error_count"].GetInt64(), 1);
  EXPECT_EQ(alpha["total_cost_tokens"].GetInt64(), 10);
  EXPECT_EQ(alpha["first_offset"].GetInt64(), 1);
  EXPECT_EQ(alpha["last_offset"].GetInt64(), 3);

  r = Run({"sessions", "--format", "json", "--limit", "1", "--offset", "1"});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(Lines(r.out).size(), 1u);
  EXPECT_STREQ(ParseJson(Lines(r.out)[0])["session_id"].GetString(), "alpha");

  r = Run({"sessions", "--format", "json", "--search", "et"});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(Lines(r.out).size(), 1u);
  EXPECT_STREQ(ParseJson(Lines(r.out)[0])["session_id"].GetString(), "beta");

  r = Run({"sessions"});
  ASSERT_EQ(r.exit_code, 0) << r;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r;
  EXPECT_EQ(lines[0].rfind("SESSION", 0), 0u);
  EXPECT_EQ(lines[1].rfind("gamma", 0), 0u);
}

TEST_F(CommandsTest, SessionsShowAndDelete) {
  ASSERT_EQ(Run({"publish"},
                "{\"session_id\":\"s1\",\"event_type\":\"m\"}\n"
                "{\"session_id\":\"s2\",\"event_type\":\"m\"}\n"
                "{\"session_id\":\"s1\",\"event_type\":\"m\"}\n")
                .exit_code,
            0);
  RunResult r = Run({"sessions", "show", "s1", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  rapidjson::Document s1 = ParseJson(r.out);
  EXPECT_EQ(s1["event_count"].GetInt64(), 2);
  EXPECT_EQ(s1["last_offset"].GetInt64(), 3);

  r = Run({"sessions", "show", "s1"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.out.find("events"), std::string::npos);
  // --db may also come before the sub-command.
  r = RunTailbus({"sessions", "--db", db_, "show", "s1", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r.out)["event_count"].GetInt64(), 2);

  r = Run({"sessions", "show", "nope"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("nope"), std::string::npos);

  // Soft delete: hidden from listings, show and replay.
  r = Run({"sessions", "delete", "s1"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.out.find("deleted session s1"), std::string::npos) << r;
  r = Run({"sessions", "--format", "json"});
  ASSERT_EQ(Lines(r.out).size(), 1u) << r;
  EXPECT_EQ(Run({"sessions", "show", "s1"}).exit_code, 1);
  r = Run({"replay", "--format", "json"});
  ASSERT_EQ(Lines(r.out).size(), 1u) << r;
  EXPECT_EQ(ParseJson(Lines(r.out)[0])["offset"].GetInt64(), 2);

  r = Run({"sessions", "delete", "nope"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);

  // Hard delete removes the rows.
  r = Run({"sessions", "delete", "s2", "--hard"});
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Run({"replay", "--format", "json"});
  EXPECT_EQ(r.out, "") << r;
  r = Run({"stats", "--format", "json"});
  EXPECT_EQ(ParseJson(r.out)["sessions"].GetInt64(), 0);
}

TEST_F(CommandsTest, StatsReportsTheLog) {
  ASSERT_EQ(Run({"publish"},
                "{\"session_id\":\"s1\",\"event_type\":\"m\"}\n"
                "{\"session_id\":\"s2\",\"event_type\":\"m\"}\n")
                .exit_code,
            0);
  RunResult r = Run({"stats", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  rapidjson::Document s = ParseJson(r.out);
  EXPECT_EQ(s["head"].GetInt64(), 2);
  EXPECT_EQ(s["earliest"].GetInt64(), 1);
  EXPECT_EQ(s["events"].GetInt64(), 2);
  EXPECT_EQ(s["sessions"].GetInt64(), 2);
  EXPECT_GT(s["file_bytes"].GetInt64(), 0);
  EXPECT_GT(s["epoch"].GetStringLength(), 0u);
  EXPECT_GT(s["schema_version"].GetInt(), 0);
  EXPECT_STREQ(s["database"].GetString(), db_.c_str());
  EXPECT_EQ(std::string(s["created_at"].GetString()).size(), 24u);

  r = Run({"stats"});
  ASSERT_EQ(r.exit_code, 0) << r;
  for (const char* key : {"head", "earliest", "events", "sessions", "file size", "epoch",
                          "schema version", "created"}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key;
  }
  EXPECT_NE(r.out.find(s["epoch"].GetString()), std::string::npos);
}

TEST_F(CommandsTest, DemoPublishesASampleSessionAndReplaysIt) {
  RunResult r = Run({"demo", "--session", "demo-1"});
  ASSERT_EQ(r.exit_code, 0) << r;
  for (const char* text : {"message", "tool_call", "tool_result", "openai_call", "openai_response",
                           "assistant", "error", "timeout"}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text << "\n" << r.out;
  }
  r = Run({"replay", "--session", "demo-1", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 10u);
  bool tokens = false;
  bool tool_call_id = false;
  for (const std::string& line : lines) {
    rapidjson::Document doc = ParseJson(line);
    if (doc.HasMember("cost_tokens") && doc["cost_tokens"].GetInt64() > 0) tokens = true;
    if (doc.HasMember("tool_call_id")) tool_call_id = true;
  }
  EXPECT_TRUE(tokens);
  EXPECT_TRUE(tool_call_id);

  // A second run with the default session id adds a new session.
  r = Run({"demo", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(Lines(r.out).size(), lines.size());
  r = Run({"sessions", "--format", "json"});
  EXPECT_EQ(Lines(r.out).size(), 2u) << r;
}

}  // namespace
}  // namespace tailbus::cli_test
