// The `tailbus` sub-commands. Each Register*Command() adds one sub-command to
// `app` with its flags and help text. When the command line selects it, its
// CLI11 callback stores what to run in `action`; main() runs `action` after
// parsing succeeded and exits with the code it returns (see cli_common.h:
// 0 ok, 1 runtime error, 2 usage error).
//
// Contract for every command:
// - no exception escapes the action (CLI11's parse errors are caught in main);
// - errors are printed as ONE line on stderr via PrintError(): "tailbus: …";
// - a command that opens the log closes the bus before returning.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace tailbus::cli {

// What the selected sub-command does once its flags are parsed. Returns the
// process exit code.
using CommandAction = std::function<int()>;

// Embedded mode (cli/*_command.cc in this folder).
void RegisterPublishCommand(CLI::App& app, CommandAction& action);   // publish_command.cc
void RegisterReplayCommand(CLI::App& app, CommandAction& action);    // replay_command.cc
void RegisterSessionsCommand(CLI::App& app, CommandAction& action);  // sessions_command.cc
void RegisterStatsCommand(CLI::App& app, CommandAction& action);     // stats_command.cc
void RegisterExportCommand(CLI::App& app, CommandAction& action);    // export_import_command.cc
void RegisterImportCommand(CLI::App& app, CommandAction& action);    // export_import_command.cc
void RegisterDemoCommand(CLI::App& app, CommandAction& action);      // demo_command.cc
void RegisterTokenCommand(CLI::App& app, CommandAction& action);     // token_command.cc

// Server mode (written separately).
void RegisterServeCommand(CLI::App& app, CommandAction& action);  // serve_command.cc
void RegisterTailCommand(CLI::App& app, CommandAction& action);   // tail_command.cc

}  // namespace tailbus::cli
