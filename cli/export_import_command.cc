// tailbus export: writes retained events as NDJSON (the delivered JSON).
// tailbus import: reads such NDJSON back; offsets are re-assigned, event ids
// kept (the decoder drops `offset` and `ingested_at`), and event ids already
// committed inside the dedupe window are not stored again.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace tailbus::cli {
namespace {

struct ExportOptions {
  std::string db;
  std::string out;
  std::string session;
  std::string filter;
  int64_t after = 0;
};

struct ImportOptions {
  std::string db;
  std::string in = "-";
  size_t batch_events = kDefaultBatchEvents;
};

int RunExport(const ExportOptions& opts) {
  Result<Filter> filter = ParseFilterFlag(opts.filter, opts.session);
  if (!filter.ok()) return Fail(filter.status().message(), kExitUsage);
  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/false);
  if (!bus.ok()) return Fail(bus.status().message());

  // Write to a temporary file next to --out and rename it at the end, so a
  // failed export never leaves a truncated file under the requested name.
  bool to_stdout = opts.out.empty() || opts.out == "-";
  std::string tmp_path;
  std::FILE* out = stdout;
  if (to_stdout) {
    if (!isatty(STDOUT_FILENO)) std::setvbuf(stdout, nullptr, _IOFBF, 1 << 20);
  } else {
    tmp_path = fmt::format("{}.tmp-{}", opts.out, getpid());
    out = std::fopen(tmp_path.c_str(), "wb");
    if (out == nullptr) {
      (*bus)->Close();
      return Fail(fmt::format("cannot write {}: {}", opts.out, std::strerror(errno)));
    }
    std::setvbuf(out, nullptr, _IOFBF, 1 << 20);
  }

  int64_t count = 0;
  int64_t first = 0;
  int64_t last = 0;
  Status st = ReadEvents(**bus, opts.after, *filter, 0, [&](const CommittedEvent& e) -> Status {
    if (!WriteAll(out, e.json) || std::fputc('\n', out) == EOF) {
      return Status::IoError(fmt::format("cannot write {}: {}", to_stdout ? "stdout" : opts.out,
                                         std::strerror(errno)));
    }
    if (count == 0) first = e.offset;
    last = e.offset;
    ++count;
    return Status::Ok();
  });
  (*bus)->Close();

  if (to_stdout) {
    if (st.ok() && std::fflush(stdout) != 0) st = Status::IoError("cannot write to stdout");
    if (!st.ok()) return Fail(st.message());
    return kExitOk;
  }
  bool closed = std::fclose(out) == 0;
  if (st.ok() && !closed) {
    st = Status::IoError(fmt::format("cannot write {}: {}", opts.out, std::strerror(errno)));
  }
  std::error_code ec;
  if (st.ok()) {
    std::filesystem::rename(tmp_path, opts.out, ec);
    if (ec) st = Status::IoError(fmt::format("cannot write {}: {}", opts.out, ec.message()));
  }
  if (!st.ok()) {
    std::filesystem::remove(tmp_path, ec);
    return Fail(st.message());
  }
  if (count == 0) {
    PrintError(fmt::format("exported 0 events to {}", opts.out));
  } else {
    PrintError(fmt::format("exported {} event{} (offsets {}..{}) to {}", count,
                           count == 1 ? "" : "s", first, last, opts.out));
  }
  return kExitOk;
}

int RunImport(const ImportOptions& opts) {
  bool from_stdin = opts.in.empty() || opts.in == "-";
  std::string source = from_stdin ? "stdin" : opts.in;
  int fd = STDIN_FILENO;
  if (!from_stdin) {
    fd = ::open(opts.in.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(fmt::format("cannot read {}: {}", opts.in, std::strerror(errno)));
  } else if (isatty(STDIN_FILENO)) {
    PrintError("reading NDJSON events from stdin (Ctrl-D to finish)");
  }

  Result<std::unique_ptr<Bus>> opened = OpenBus(opts.db, /*create_if_missing=*/true);
  if (!opened.ok()) {
    if (fd != STDIN_FILENO) ::close(fd);
    return Fail(opened.status().message());
  }
  Bus& bus = **opened;
  const int64_t head_before = bus.head();

  int64_t read_events = 0;  // events given to the bus and acknowledged
  int64_t appended = 0;     // newly stored
  int64_t already = 0;      // offset <= head before the import: stored earlier
  int64_t repeated = 0;     // an event id repeated inside this input
  int64_t max_new = head_before;
  int64_t first_new = 0;
  auto on_offsets = [&](const std::vector<int64_t>& offsets) {
    for (int64_t off : offsets) {
      ++read_events;
      if (off > max_new) {
        if (appended == 0) first_new = off;
        ++appended;
        max_new = off;
      } else if (off <= head_before) {
        ++already;
      } else {
        ++repeated;
      }
    }
  };

  std::string error;
  {
    BatchAppender appender(bus, on_offsets);
    LineReader reader(fd);
    std::vector<InputLine> batch;
    size_t next_index = 0;
    auto flush = [&]() -> bool {
      if (batch.empty()) return true;
      Result<std::vector<Event>> events = DecodeLines(batch, next_index);
      if (!events.ok()) {
        error = events.status().message();
        return false;
      }
      Status st = appender.Submit(std::move(events).value());
      if (!st.ok()) {
        error = fmt::format("append failed: {}", st.message());
        return false;
      }
      next_index += batch.size();
      batch.clear();
      return true;
    };
    while (true) {
      std::optional<std::string> line = reader.Next();
      if (!line.has_value()) break;
      if (IsBlankLine(*line)) continue;
      batch.push_back({reader.line_number(), std::move(*line)});
      if (batch.size() >= opts.batch_events && !flush()) break;
    }
    if (error.empty() && !reader.status().ok()) error = reader.status().message();
    if (error.empty()) flush();
    Status st = appender.Finish();
    if (!st.ok() && error.empty()) error = fmt::format("append failed: {}", st.message());
  }
  bus.Close();
  if (fd != STDIN_FILENO) ::close(fd);

  if (!error.empty()) {
    if (read_events > 0) {
      error += fmt::format(" ({} event{} before it were imported)", read_events,
                           read_events == 1 ? "" : "s");
    }
    return Fail(error);
  }

  std::string summary = fmt::format("imported {} event{} from {}: ", read_events,
                                    read_events == 1 ? "" : "s", source);
  if (appended > 0) {
    summary += fmt::format("{} appended (offsets {}..{})", appended, first_new, max_new);
  } else {
    summary += "nothing new appended";
  }
  if (already > 0) {
    summary += fmt::format(
        ", {} already in the log (same event_id inside the dedupe window, not stored again)",
        already);
  }
  if (repeated > 0) {
    summary += fmt::format(", {} repeated an event_id earlier in the input", repeated);
  }
  PrintError(summary);
  return kExitOk;
}

}  // namespace

void RegisterExportCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Write every retained event (or those selected by --session, --after, --filter) as NDJSON, "
      "one delivered event object per line, oldest first");
  cmd->footer(
      "Example:\n"
      "  tailbus export --out backup.ndjson && tailbus import --db copy.db --in backup.ndjson");
  AddDbOption(cmd, &opts->db);
  cmd->add_option("--out", opts->out,
                  "Write to FILE (atomically: a temporary file renamed at the end) instead of "
                  "stdout")
      ->type_name("FILE");
  cmd->add_option("--session", opts->session, "Only this session's events")->type_name("ID");
  cmd->add_option("--after", opts->after, "Only events with an offset greater than N")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--filter", opts->filter,
                  "Only events matching this JSON filter (grammar: tailbus replay --help)")
      ->type_name("JSON");
  cmd->callback([opts, &action] { action = [opts] { return RunExport(*opts); }; });
}

void RegisterImportCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<ImportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "import",
      "Append NDJSON events (e.g. from 'tailbus export'): offsets are re-assigned, event ids "
      "kept. Prints a one-line summary on stderr");
  cmd->footer(
      "An event whose event_id the log committed inside the dedupe window (10 minutes) gets\n"
      "its original offset back and is not stored again, so re-importing the same file at\n"
      "once appends nothing; the summary says how many events were already present.");
  AddDbOption(cmd, &opts->db);
  cmd->add_option("--in", opts->in, "Read from FILE ('-': stdin)")
      ->type_name("FILE")
      ->capture_default_str();
  cmd->add_option("--batch-size", opts->batch_events, "Events per append")
      ->type_name("N")
      ->check(CLI::Range(size_t{1}, kMaxBatchEvents))
      ->capture_default_str();
  cmd->callback([opts, &action] { action = [opts] { return RunImport(*opts); }; });
}

}  // namespace tailbus::cli
