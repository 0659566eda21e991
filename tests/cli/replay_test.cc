// `tailbus replay` and `tailbus export`/`import` against real database files.
#include <set>
#include <string>

#include "tests/cli/cli_test_util.h"

namespace tailbus::cli_test {
namespace {

class ReplayTest : public CliTest {
 protected:
  // 6 events over sessions a and b, with tools, statuses, costs and durations.
  void Seed() {
    std::string input =
        R"({"session_id":"a","event_type":"message","content":"hello"})"
        "\n"
        R"({"session_id":"b","event_type":"tool_call","tool_name":"search","status":"started"})"
        "\n"
        R"({"session_id":"a","event_type":"tool_result","tool_name":"search","status":"ok","duration_ms":184})"
        "\n"
        R"({"session_id":"b","event_type":"openai_response","model":"gpt-4o","total_tokens":876,"duration_ms":1240})"
        "\n"
        R"({"session_id":"a","event_type":"error","error":"boom"})"
        "\n"
        R"({"session_id":"b","event_type":"tool_result","tool_name":"lookup","status":"timeout"})"
        "\n";
    RunResult r = Run({"publish"}, input);
    ASSERT_EQ(r.exit_code, 0) << r;
    ASSERT_EQ(r.out, "1\n2\n3\n4\n5\n6\n");
  }

  std::vector<int64_t> ReplayOffsets(std::vector<std::string> args) {
    args.insert(args.begin(), "replay");
    args.push_back("--format");
    args.push_back("json");
    RunResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r;
    std::vector<int64_t> offsets;
    for (const std::string& line : Lines(r.out)) {
      rapidjson::Document doc = ParseJson(line);
      if (doc.IsObject() && doc.HasMember("offset")) offsets.push_back(doc["offset"].GetInt64());
    }
    return offsets;
  }
};

TEST_F(ReplayTest, JsonIsTheDeliveredJson) {
  Seed();
  RunResult r = Run({"replay", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 6u);
  for (size_t i = 0; i < lines.size(); ++i) {
    rapidjson::Document doc = ParseJson(lines[i]);
    EXPECT_EQ(doc["offset"].GetInt64(), static_cast<int64_t>(i + 1));
    EXPECT_TRUE(doc.HasMember("ingested_at"));
    EXPECT_TRUE(doc.HasMember("event_id"));
    EXPECT_TRUE(doc.HasMember("timestamp"));
    // The delivered text starts with the offset, as the bus encodes it.
    EXPECT_EQ(lines[i].rfind("{\"offset\":" + std::to_string(i + 1) + ",", 0), 0u) << lines[i];
  }
  // Not a terminal: the default format is json.
  RunResult plain = Run({"replay"});
  EXPECT_EQ(plain.out, r.out);
}

TEST_F(ReplayTest, AfterLimitSessionAndFilter) {
  Seed();
  EXPECT_EQ(ReplayOffsets({}), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(ReplayOffsets({"--after", "4"}), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(ReplayOffsets({"--after", "6"}), (std::vector<int64_t>{}));
  EXPECT_EQ(ReplayOffsets({"--limit", "2"}), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ReplayOffsets({"--after", "1", "--limit", "3"}), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(ReplayOffsets({"--session", "a"}), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(ReplayOffsets({"--session", "a", "--after", "1", "--limit", "1"}),
            (std::vector<int64_t>{3}));
  EXPECT_EQ(ReplayOffsets({"--filter", R"({"tool_names":["search"]})"}),
            (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ReplayOffsets(
                {"--filter", R"({"any":[{"event_types":["error"]},{"statuses":["timeout"]}]})"}),
            (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(ReplayOffsets({"--filter", R"({"cost_threshold_tokens":100})"}),
            (std::vector<int64_t>{4}));
  EXPECT_EQ(ReplayOffsets({"--filter", R"({"min_duration_ms":200})"}), (std::vector<int64_t>{4}));
  // --session narrows the filter; it cannot be widened by it.
  EXPECT_EQ(ReplayOffsets({"--session", "a", "--filter", R"({"session_ids":["b"]})"}),
            (std::vector<int64_t>{}));
  EXPECT_EQ(ReplayOffsets({"--session", "b", "--filter", R"({"tool_names":["lookup"]})"}),
            (std::vector<int64_t>{6}));
}

TEST_F(ReplayTest, ManyEventsArePagedInOrder) {
  std::string input;
  const int kEvents = 3'500;
  for (int i = 0; i < kEvents; ++i) {
    input += "{\"session_id\":\"s" + std::to_string(i % 3) + "\",\"event_type\":\"tick\"}\n";
  }
  ASSERT_EQ(Run({"publish"}, input).exit_code, 0);
  std::vector<int64_t> all = ReplayOffsets({});
  ASSERT_EQ(all.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(all[i], i + 1);
  std::vector<int64_t> one = ReplayOffsets({"--session", "s1", "--after", "100"});
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(one.front(), 101);  // s1 holds offsets 2, 5, 8, …, 101, 104, …
  for (size_t i = 1; i < one.size(); ++i) EXPECT_EQ(one[i], one[i - 1] + 3);
  EXPECT_EQ(ReplayOffsets({"--limit", "1500"}).size(), 1500u);
}

TEST_F(ReplayTest, PrettyHasAlignedColumns) {
  Seed();
  RunResult r = Run({"replay", "--format", "pretty"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 7u) << r;  // header + 6 events
  for (const char* column :
       {"OFFSET", "TIME", "SESSION", "TYPE", "TOOL", "STATUS", "COST", "DURATION"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  size_t type_col = lines[0].find("TYPE");
  size_t tool_col = lines[0].find("TOOL");
  EXPECT_EQ(lines[2].substr(type_col, 9), "tool_call");
  EXPECT_EQ(lines[2].substr(tool_col, 6), "search");
  EXPECT_EQ(lines[4].substr(type_col, 15), "openai_response");
  EXPECT_NE(lines[4].find("876"), std::string::npos);
  EXPECT_NE(lines[4].find("1.24 s"), std::string::npos);
  EXPECT_NE(lines[5].find("boom"), std::string::npos);  // detail column
  // Not a terminal: no colour unless asked.
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
}

TEST_F(ReplayTest, PrettyColourIsControlledByColorAndNoColor) {
  Seed();
  RunResult r = Run({"replay", "--format", "pretty", "--color", "always"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.out.find("\x1b[31m"), std::string::npos);  // error / timeout in red
  r = Run({"replay", "--format", "pretty", "--color", "never"});
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  r = Run({"replay", "--format", "pretty"}, {}, {"NO_COLOR=1"});
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
}

TEST_F(ReplayTest, OnATerminalTheDefaultIsPrettyAndColoured) {
  // script(1) (util-linux, Essential in Debian) gives the command a pseudo-terminal.
  if (!std::filesystem::exists("/usr/bin/script")) GTEST_SKIP() << "no /usr/bin/script";
  Seed();
  auto on_tty = [&](const std::string& env) {
    std::string cmd = "env -u NO_COLOR -u TAILBUS_DB TERM=xterm " + env +
                      " /usr/bin/script -qec '" TAILBUS_BINARY " replay --db " + db_ +
                      "' /dev/null";
    std::string out;
    FILE* pipe = popen(cmd.c_str(), "r");
    EXPECT_NE(pipe, nullptr);
    if (pipe == nullptr) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    EXPECT_EQ(pclose(pipe), 0) << out;
    return out;
  };
  std::string out = on_tty("");
  EXPECT_NE(out.find("OFFSET"), std::string::npos) << out;
  EXPECT_NE(out.find("\x1b["), std::string::npos) << out;
  out = on_tty("NO_COLOR=1");
  EXPECT_NE(out.find("OFFSET"), std::string::npos) << out;
  EXPECT_EQ(out.find("\x1b["), std::string::npos) << out;
}

TEST_F(ReplayTest, BadFilterExitsTwo) {
  Seed();
  RunResult r = Run({"replay", "--filter", R"({"nope":1})"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r;

  r = Run({"replay", "--filter", "{not json"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);

  r = Run({"replay", "--format", "xml"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);
}

TEST_F(ReplayTest, MissingDatabaseExitsOneAndCreatesNothing) {
  RunResult r = Run({"replay"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find(db_), std::string::npos) << r;
  EXPECT_FALSE(std::filesystem::exists(db_));
}

TEST_F(ReplayTest, GarbageDatabaseFailsCleanly) {
  std::filesystem::create_directories(std::filesystem::path(db_).parent_path());
  std::string garbage(64 * 1024, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 7919) % 251);
  WriteFile(db_, garbage);
  for (const char* cmd : {"replay", "stats", "sessions"}) {
    RunResult r = Run({cmd});
    EXPECT_EQ(r.exit_code, 1) << cmd << r;
    EXPECT_ONE_LINE_ERROR(r);
  }
  RunResult r = Run({"publish", "--session", "s", "--type", "t"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_EQ(ReadFile(db_), garbage) << "a garbage file must never be overwritten";
}

TEST_F(ReplayTest, ExportThenImportKeepsEventIds) {
  Seed();
  std::string file = (dir_ / "export.ndjson").string();
  RunResult r = Run({"export", "--out", file});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("exported 6 events"), std::string::npos) << r;
  std::vector<std::string> exported = Lines(ReadFile(file));
  ASSERT_EQ(exported.size(), 6u);

  // Stdout export is byte-identical to the file.
  r = Run({"export"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, ReadFile(file));

  // Into a second database that already holds one event: offsets re-assigned.
  std::string copy = (dir_ / "copy.db").string();
  ASSERT_EQ(RunTailbus({"publish", "--db", copy, "--session", "z", "--type", "t"}).exit_code, 0);
  r = RunTailbus({"import", "--db", copy, "--in", file});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "");
  ASSERT_EQ(Lines(r.err).size(), 1u) << r;
  EXPECT_NE(r.err.find("imported 6 events"), std::string::npos) << r;
  EXPECT_NE(r.err.find("6 appended (offsets 2..7)"), std::string::npos) << r;

  r = RunTailbus({"replay", "--db", copy, "--after", "1", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> imported = Lines(r.out);
  ASSERT_EQ(imported.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    rapidjson::Document a = ParseJson(exported[i]);
    rapidjson::Document b = ParseJson(imported[i]);
    EXPECT_STREQ(a["event_id"].GetString(), b["event_id"].GetString());
    EXPECT_STREQ(a["session_id"].GetString(), b["session_id"].GetString());
    EXPECT_STREQ(a["event_type"].GetString(), b["event_type"].GetString());
    EXPECT_STREQ(a["timestamp"].GetString(), b["timestamp"].GetString());
    EXPECT_EQ(a["offset"].GetInt64() + 1, b["offset"].GetInt64());
  }

  // From stdin too.
  std::string third = (dir_ / "third.db").string();
  r = RunTailbus({"import", "--db", third}, ReadFile(file));
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.err.find("6 appended (offsets 1..6)"), std::string::npos) << r;
}

TEST_F(ReplayTest, ReimportInsideTheDedupeWindowAppendsNothing) {
  Seed();
  std::string file = (dir_ / "export.ndjson").string();
  ASSERT_EQ(Run({"export", "--out", file}).exit_code, 0);
  RunResult r = Run({"import", "--in", file});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(Lines(r.err).size(), 1u) << r;
  EXPECT_NE(r.err.find("nothing new appended"), std::string::npos) << r;
  EXPECT_NE(r.err.find("6 already in the log"), std::string::npos) << r;
  r = Run({"stats", "--format", "json"});
  EXPECT_EQ(ParseJson(r.out)["events"].GetInt64(), 6);
}

TEST_F(ReplayTest, ExportSelectsBySessionAfterAndFilter) {
  Seed();
  RunResult r = Run({"export", "--session", "b", "--after", "2"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(ParseJson(lines[0])["offset"].GetInt64(), 4);
  EXPECT_EQ(ParseJson(lines[1])["offset"].GetInt64(), 6);
  r = Run({"export", "--filter", R"({"event_types":["error"]})"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(Lines(r.out).size(), 1u);
  r = Run({"export", "--filter", "[]"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);
}

TEST_F(ReplayTest, ImportRejectsBadLineAndNamesIt) {
  Seed();
  std::string file = (dir_ / "bad.ndjson").string();
  WriteFile(file, "{\"session_id\":\"x\",\"event_type\":\"m\"}\n{\"session_id\":\"x\"}\n");
  RunResult r = Run({"import", "--in", file});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("line 2: events[1].event_type"), std::string::npos) << r;
  r = Run({"stats", "--format", "json"});
  EXPECT_EQ(ParseJson(r.out)["events"].GetInt64(), 6);

  r = Run({"import", "--in", (dir_ / "missing.ndjson").string()});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_ONE_LINE_ERROR(r);
}

}  // namespace
}  // namespace tailbus::cli_test
