// tailbus replay: prints the committed events after an offset, as NDJSON (the
// delivered JSON, byte for byte) or as aligned, coloured columns.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace tailbus::cli {
namespace {

struct ReplayOptions {
  std::string db;
  int64_t after = 0;
  std::string session;
  std::string filter;
  size_t limit = 0;
  OutputFormat format = OutputFormat::kAuto;
  ColorMode color = ColorMode::kAuto;
};

int RunReplay(const ReplayOptions& opts) {
  Result<Filter> filter = ParseFilterFlag(opts.filter, opts.session);
  if (!filter.ok()) return Fail(filter.status().message(), kExitUsage);
  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/false);
  if (!bus.ok()) return Fail(bus.status().message());

  OutputFormat format = ResolveFormat(opts.format, STDOUT_FILENO);
  if (!isatty(STDOUT_FILENO)) std::setvbuf(stdout, nullptr, _IOFBF, 1 << 20);
  PrettyPrinter printer(stdout, (*bus)->head(), UseColor(opts.color, STDOUT_FILENO));
  size_t printed = 0;
  Status st = ReadEvents(**bus, opts.after, *filter, opts.limit,
                         [&](const CommittedEvent& event) -> Status {
                           if (format == OutputFormat::kPretty) {
                             if (printed == 0) printer.PrintHeader();
                             printer.Print(event);
                           } else {
                             std::string line;
                             line.reserve(event.json.size() + 1);
                             line += event.json;
                             line += '\n';
                             if (!WriteAll(stdout, line)) {
                               return Status::IoError("cannot write to stdout");
                             }
                           }
                           ++printed;
                           return Status::Ok();
                         });
  (*bus)->Close();
  if (!st.ok()) return Fail(st.message());
  if (printed == 0 && format == OutputFormat::kPretty) {
    fmt::print("no matching events after offset {}\n", opts.after);
  }
  if (std::fflush(stdout) != 0) return Fail("cannot write to stdout");
  return kExitOk;
}

}  // namespace

void RegisterReplayCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<ReplayOptions>();
  CLI::App* cmd =
      app.add_subcommand("replay", "Print the committed events after an offset, oldest first");
  cmd->footer(
      "Examples:\n"
      "  tailbus replay --session s1 --format pretty\n"
      "  tailbus replay --after 1200 --limit 50\n"
      "  tailbus replay --filter '{\"any\":[{\"event_types\":[\"error\"]},"
      "{\"statuses\":[\"error\",\"failed\",\"timeout\"]}]}'\n"
      "Filter keys: event_types, session_ids (or session_id), agent_ids, tool_names, statuses,\n"
      "models, feature_ids (lists of strings), cost_threshold_tokens (cost_tokens > it),\n"
      "min_duration_ms (duration_ms >= it), any (list of filters, OR). Keys combine with AND.");
  AddDbOption(cmd, &opts->db);
  cmd->add_option("--after", opts->after,
                  "Print events with an offset greater than N (0: from the beginning)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--session", opts->session, "Only this session's events")->type_name("ID");
  cmd->add_option("--filter", opts->filter,
                  "Only events matching this JSON filter (see below); combined with --session")
      ->type_name("JSON");
  cmd->add_option("--limit", opts->limit, "Print at most N events (default: all)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  AddFormatOption(cmd, &opts->format, /*allow_auto=*/true);
  AddColorOption(cmd, &opts->color);
  cmd->callback([opts, &action] { action = [opts] { return RunReplay(*opts); }; });
}

}  // namespace tailbus::cli
