// tailbus stats: the log's head, earliest retained offset, counts, size,
// epoch, schema version and creation time.
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "core/time_format.h"

namespace tailbus::cli {
namespace {

struct StatsOptions {
  std::string db;
  OutputFormat format = OutputFormat::kPretty;
};

std::string StatsJson(const std::string& path, const LogStats& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&w](const std::string& v) {
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  w.Key("database");
  str(path);
  w.Key("head");
  w.Int64(s.head);
  w.Key("earliest");
  w.Int64(s.earliest);
  w.Key("events");
  w.Int64(s.event_count);
  w.Key("sessions");
  w.Int64(s.session_count);
  w.Key("file_bytes");
  w.Int64(s.file_bytes);
  w.Key("epoch");
  str(s.epoch);
  w.Key("schema_version");
  w.Int(s.schema_version);
  w.Key("created_at");
  str(FormatRfc3339Millis(s.created_at_ms));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

int RunStats(const StatsOptions& opts) {
  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/false);
  if (!bus.ok()) return Fail(bus.status().message());
  std::unique_ptr<LogReader> reader = (*bus)->NewReader();
  Result<LogStats> stats = reader->Stats();
  reader.reset();
  (*bus)->Close();
  if (!stats.ok()) return Fail(stats.status().message());
  const LogStats& s = *stats;
  std::string out;
  if (opts.format == OutputFormat::kJson) {
    out = StatsJson(opts.db, s);
  } else {
    out += fmt::format("{:<16}{}\n", "database", opts.db);
    out += fmt::format("{:<16}{}\n", "head", s.head);
    out += fmt::format("{:<16}{}\n", "earliest", s.earliest);
    out += fmt::format("{:<16}{}\n", "events", s.event_count);
    out += fmt::format("{:<16}{}\n", "sessions", s.session_count);
    out +=
        fmt::format("{:<16}{} ({} bytes)\n", "file size", FormatBytes(s.file_bytes), s.file_bytes);
    out += fmt::format("{:<16}{}\n", "epoch", s.epoch);
    out += fmt::format("{:<16}{}\n", "schema version", s.schema_version);
    out += fmt::format("{:<16}{}\n", "created", FormatRfc3339Millis(s.created_at_ms));
  }
  WriteAll(stdout, out);
  if (std::fflush(stdout) != 0) return Fail("cannot write to stdout");
  return kExitOk;
}

}  // namespace

void RegisterStatsCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<StatsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stats",
      "Show the log's head (last offset), earliest retained offset, event and session counts, "
      "file size (database + WAL), epoch, schema version and creation time");
  AddDbOption(cmd, &opts->db);
  AddFormatOption(cmd, &opts->format, /*allow_auto=*/false);
  cmd->callback([opts, &action] { action = [opts] { return RunStats(*opts); }; });
}

}  // namespace tailbus::cli
