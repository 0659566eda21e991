// tailbus: the command-line tool and composition root.
//
// Parses the command line with CLI11; the selected sub-command's callback
// stores its action (commands.h), which runs after parsing succeeded. Exit
// codes: 0 ok, 1 runtime error, 2 usage error. CLI11 reports parse errors by
// throwing: they are caught here and nowhere else.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace tailbus::cli {
namespace {

// "tailbus sessions show" for the deepest sub-command the parser reached.
std::string CommandPath(CLI::App& app) {
  std::string path = "tailbus";
  CLI::App* current = &app;
  while (true) {
    auto subs = current->get_subcommands();
    if (subs.empty()) break;
    current = subs.front();
    path += " " + current->get_name();
  }
  return path;
}

int HandleParseError(CLI::App& app, const CLI::ParseError& e) {
  // --help, --help-all and --version are "errors" that exit 0 and print to stdout.
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
  return Fail(fmt::format("{} (see '{} --help')", e.what(), CommandPath(app)), kExitUsage);
}

int Main(int argc, char** argv) {
  CLI::App app{
      "tailbus: an event bus for AI-agent telemetry with a durable SQLite replay log.\n"
      "Events are appended to a log with gap-free offsets and can be replayed, filtered\n"
      "and exported. publish, replay, sessions, stats, export, import and demo open the\n"
      "database file directly (embedded mode); serve runs the network server.",
      "tailbus"};
  app.set_version_flag("--version", "tailbus " TAILBUS_VERSION, "Print the version and exit");
  app.require_subcommand(0, 1);
  app.footer(
      "Every command takes --db PATH (default ./data/tailbus.db, or $TAILBUS_DB).\n"
      "Run 'tailbus COMMAND --help' for a command's flags.\n"
      "Exit codes: 0 ok, 1 runtime error, 2 usage error.");
  app.get_formatter()->column_width(34);

  CommandAction action;

  // Embedded mode.
  RegisterPublishCommand(app, action);
  RegisterReplayCommand(app, action);
  RegisterSessionsCommand(app, action);
  RegisterStatsCommand(app, action);
  RegisterExportCommand(app, action);
  RegisterImportCommand(app, action);
  RegisterDemoCommand(app, action);
  RegisterTokenCommand(app, action);

  // Server mode: serve_command.cc and tail_command.cc register here, one line each.
  // (signatures in commands.h)
  RegisterServeCommand(app, action);
  RegisterTailCommand(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return HandleParseError(app, e);
  }
  if (!action) {
    return Fail("a command is required (see 'tailbus --help')", kExitUsage);
  }
  return action();
}

}  // namespace
}  // namespace tailbus::cli

int main(int argc, char** argv) {
  try {
    return tailbus::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    return tailbus::cli::Fail(std::string("internal error: ") + e.what());
  } catch (...) {
    return tailbus::cli::Fail("internal error: unknown exception");
  }
}
