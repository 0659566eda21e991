// tailbus demo: publishes a realistic agent session (a user message, model
// calls with token counts, tool calls and results, a tool timeout and an
// error, streamed assistant chunks) and replays it.
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "core/event_decoder.h"
#include "core/time_format.h"

namespace tailbus::cli {
namespace {

struct DemoOptions {
  std::string db;
  std::string session;
  OutputFormat format = OutputFormat::kPretty;
  ColorMode color = ColorMode::kAuto;
};

// One sample event: milliseconds after the session's start, and its JSON
// without session_id, agent_id and timestamp (added per run).
struct SampleEvent {
  int64_t at_ms;
  const char* json;
};

// clang-format off
constexpr SampleEvent kSample[] = {
    {0, R"({"type":"connection","status":"connected","client":"web","user_agent":"Mozilla/5.0"})"},
    {420, R"({"type":"message","role":"user","content":"What is the patient's diagnosis? Summarise the latest lab results."})"},
    {455, R"({"type":"openai_call","model":"gpt-4o","prompt_tokens":812,"feature_id":"diagnosis-summary","temperature":0.2})"},
    {1695, R"({"type":"openai_response","model":"gpt-4o","status":"ok","prompt_tokens":812,"completion_tokens":64,"total_tokens":876,"duration_ms":1240,"feature_id":"diagnosis-summary","finish_reason":"tool_calls"})"},
    {1702, R"({"type":"tool_call","tool_call_id":"call_01","tool_name":"search_records","status":"started","arguments":{"patient_id":"P-1042","query":"latest lab results","limit":3}})"},
    {1886, R"({"type":"tool_result","tool_call_id":"call_01","tool_name":"search_records","status":"ok","duration_ms":184,"result":{"records":3,"latest":{"panel":"CBC","date":"2026-11-20","haemoglobin_g_dl":9.8,"ferritin_ng_ml":8}}})"},
    {1890, R"({"type":"tool_call","tool_call_id":"call_02","tool_name":"lookup_icd10","status":"started","arguments":{"code":"D50.9"}})"},
    {6891, R"({"type":"tool_result","tool_call_id":"call_02","tool_name":"lookup_icd10","status":"timeout","duration_ms":5001,"error":"ICD-10 service did not answer within 5 s"})"},
    {6893, R"({"type":"error","status":"error","tool_name":"lookup_icd10","error":"tool lookup_icd10 timed out; continuing without the code description","recoverable":true})"},
    {6910, R"({"type":"openai_call","model":"gpt-4o","prompt_tokens":1460,"feature_id":"diagnosis-summary","temperature":0.2})"},
    {7350, R"({"type":"assistant","streaming":true,"chunk_index":0,"content":"Based on the CBC panel of 20 November, "})"},
    {7610, R"({"type":"assistant","streaming":true,"chunk_index":1,"content":"the patient has iron-deficiency anaemia "})"},
    {7900, R"({"type":"assistant","streaming":true,"chunk_index":2,"content":"(haemoglobin 9.8 g/dL, ferritin 8 ng/mL). "})"},
    {8240, R"({"type":"assistant","streaming":true,"chunk_index":3,"content":"ICD-10 code D50.9 is on record; its description could not be fetched."})"},
    {9720, R"({"type":"openai_response","model":"gpt-4o","status":"ok","prompt_tokens":1460,"completion_tokens":182,"total_tokens":1642,"duration_ms":2810,"feature_id":"diagnosis-summary","finish_reason":"stop"})"},
    {9725, R"({"type":"assistant","streaming":false,"status":"completed","content":"Based on the CBC panel of 20 November, the patient has iron-deficiency anaemia (haemoglobin 9.8 g/dL, ferritin 8 ng/mL). ICD-10 code D50.9 is on record; its description could not be fetched."})"},
};
// clang-format on

// "demo-20261122-014829-123" from the current time.
std::string DefaultSessionId(int64_t now_ms) {
  std::string t = FormatRfc3339Millis(now_ms);  // 2026-11-22T01:48:29.123Z
  std::string digits;
  for (char c : t.substr(0, 19)) {
    if (c >= '0' && c <= '9') digits += c;
  }
  return fmt::format("demo-{}-{}-{}", digits.substr(0, 8), digits.substr(8), t.substr(20, 3));
}

// The sample as NDJSON for `session`, starting at `start_ms`.
std::string SampleNdjson(const std::string& session, int64_t start_ms) {
  std::string out;
  for (const SampleEvent& sample : kSample) {
    rapidjson::Document doc;
    doc.Parse(sample.json);
    auto& a = doc.GetAllocator();
    rapidjson::Value sid(session.c_str(), static_cast<rapidjson::SizeType>(session.size()), a);
    doc.AddMember("session_id", sid, a);
    doc.AddMember("agent_id", "clinical-assistant", a);
    doc.AddMember("timestamp", rapidjson::Value(static_cast<int64_t>(start_ms + sample.at_ms)), a);
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    doc.Accept(w);
    out.append(sb.GetString(), sb.GetSize());
    out += '\n';
  }
  return out;
}

int RunDemo(const DemoOptions& opts) {
  const int64_t now = NowMillis();
  const std::string session = opts.session.empty() ? DefaultSessionId(now) : opts.session;
  DecodeResult decoded = DecodeNdjson(
      SampleNdjson(session, now - kSample[std::size(kSample) - 1].at_ms), DecodeLimits{}, now);
  if (!decoded.ok()) return Fail(decoded.ToStatus().message(), kExitUsage);

  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/true);
  if (!bus.ok()) return Fail(bus.status().message());
  const int64_t head_before = (*bus)->head();
  AppendResult offsets = (*bus)->Append(std::move(decoded.events));
  if (!offsets.ok()) {
    (*bus)->Close();
    return Fail(fmt::format("append failed: {}", offsets.status().message()));
  }

  Result<Filter> filter = ParseFilterFlag("", session);
  if (!filter.ok()) {
    (*bus)->Close();
    return Fail(filter.status().message());
  }
  PrettyPrinter printer(stdout, (*bus)->head(), UseColor(opts.color, STDOUT_FILENO));
  if (opts.format == OutputFormat::kPretty) printer.PrintHeader();
  Status st = ReadEvents(**bus, head_before, *filter, 0, [&](const CommittedEvent& e) -> Status {
    if (opts.format == OutputFormat::kPretty) {
      printer.Print(e);
    } else {
      WriteAll(stdout, e.json);
      WriteAll(stdout, "\n");
    }
    return Status::Ok();
  });
  (*bus)->Close();
  if (!st.ok()) return Fail(st.message());
  if (opts.format == OutputFormat::kPretty) {
    fmt::print(
        "\npublished {} events to session {} in {} (offsets {}..{})\n"
        "next: tailbus replay --db {} --session {} --format json\n"
        "      tailbus sessions --db {}\n",
        offsets->size(), session, opts.db, offsets->front(), offsets->back(), opts.db, session,
        opts.db);
  }
  if (std::fflush(stdout) != 0) return Fail("cannot write to stdout");
  return kExitOk;
}

}  // namespace

void RegisterDemoCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Publish a sample agent session (user message, model calls with token counts, tool "
      "calls and results, a timeout, an error, streamed assistant chunks), then replay it");
  AddDbOption(cmd, &opts->db);
  cmd->add_option("--session", opts->session,
                  "Session id to publish under (default: demo-<date>-<time>-<ms>)")
      ->type_name("ID");
  AddFormatOption(cmd, &opts->format, /*allow_auto=*/false);
  AddColorOption(cmd, &opts->color);
  cmd->callback([opts, &action] { action = [opts] { return RunDemo(*opts); }; });
}

}  // namespace tailbus::cli
