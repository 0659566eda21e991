// Helpers shared by the `tailbus` sub-commands: the --db option, opening the
// log, one-line errors and exit codes, colour detection, NDJSON line reading,
// batched appends and the pretty (column) printing of events.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus.h"
#include "core/event.h"
#include "core/event_decoder.h"
#include "core/filter.h"
#include "core/status.h"
#include "storage/log_store.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace tailbus::cli {

// Process exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // runtime error: the database, the input, the server
inline constexpr int kExitUsage = 2;  // usage error: bad flags, bad --filter

inline constexpr const char* kDefaultDbPath = "./data/tailbus.db";
inline constexpr const char* kDbEnvVar = "TAILBUS_DB";

// Default events per Bus::Append for publish/import, and the decoder's cap.
inline constexpr size_t kDefaultBatchEvents = 1'000;
inline constexpr size_t kMaxBatchEvents = 10'000;

// Prints "tailbus: <message>" on ONE line of stderr (newlines in the message
// become spaces).
void PrintError(std::string_view message);

// PrintError(message) and returns `code`, for `return Fail(...)`.
int Fail(std::string_view message, int code = kExitError);

// Adds `--db PATH` (default ./data/tailbus.db, env TAILBUS_DB) to `cmd`.
CLI::Option* AddDbOption(CLI::App* cmd, std::string* db_path);

// Opens the log at `path` (LogStore::Open) and the bus over it (Bus::Open).
// With create_if_missing false, a missing file is a NotFound naming the path.
// Error messages name the path: "cannot open database ./x.db: …".
Result<std::unique_ptr<Bus>> OpenBus(const std::string& path, bool create_if_missing);

// Parses the --filter flag (empty text: match everything) and narrows it to
// `session` when that is not empty. Errors carry the parser's message.
Result<Filter> ParseFilterFlag(const std::string& filter_json, const std::string& session);

// --color auto|always|never.
enum class ColorMode { kAuto, kAlways, kNever };
void AddColorOption(CLI::App* cmd, ColorMode* mode);
// kAuto: colour when `fd` is a terminal, NO_COLOR is unset or empty and TERM
// is not "dumb".
bool UseColor(ColorMode mode, int fd);

// Output formats. kAuto is only a flag default: pretty on a terminal, else json.
enum class OutputFormat { kAuto, kJson, kPretty };
// Adds `--format json|pretty`. `allow_auto` documents the terminal-dependent default.
void AddFormatOption(CLI::App* cmd, OutputFormat* format, bool allow_auto);
OutputFormat ResolveFormat(OutputFormat format, int fd);

// Writes all of `data` to `out`; false on a write error.
bool WriteAll(std::FILE* out, std::string_view data);

// Reads newline-terminated lines from a file descriptor without blocking the
// caller more than needed: HasBufferedLine()/InputReady() let publish flush a
// partial batch when the producer pauses, so live pipes are not delayed.
class LineReader {
 public:
  // Lines longer than this are an error (no newline in a huge input).
  static constexpr size_t kMaxLineBytes = 16 * 1024 * 1024;

  explicit LineReader(int fd) : fd_(fd) {}

  // The next line without its '\n' (and a trailing '\r'). nullopt at end of
  // input, or on error (then status() is not OK).
  std::optional<std::string> Next();
  // 1-based number of the line Next() returned last.
  size_t line_number() const { return line_number_; }
  // True when Next() can return without waiting for the producer.
  bool ReadyWithoutBlocking();
  const Status& status() const { return status_; }

 private:
  bool Fill();  // reads more; false at EOF or error

  int fd_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  size_t line_number_ = 0;
  Status status_;
};

// A line of NDJSON input with its 1-based line number.
struct InputLine {
  size_t line_number = 0;
  std::string text;
};

// Reads the committed events after `after` that match `filter` the way every
// reader does (bus.Subscribe + Cursor::Poll with a LogReader), page by page,
// handing each to `fn`, until caught up or `limit` events were handed over
// (0: no limit). Stops at the first non-OK Status `fn` returns. Evicted
// offsets fail with a message naming the earliest retained offset.
Status ReadEvents(const Bus& bus, int64_t after, const Filter& filter, size_t limit,
                  const std::function<Status(const CommittedEvent&)>& fn);

// True when `line` holds only spaces, tabs and '\r'.
bool IsBlankLine(std::string_view line);

// Decodes a batch of NDJSON lines. On failure returns InvalidArgument with ONE
// line naming the input line, the event (by its index in the whole input,
// `first_index` being the index of lines[0]) and the decoder's reason:
//   "line 4: events[3].session_id: missing (and 2 more errors)".
Result<std::vector<Event>> DecodeLines(const std::vector<InputLine>& lines, size_t first_index);

// Appends batches through Bus::AppendAsync keeping a few in flight (so the
// writer can group them into one commit), and hands each batch's offsets to
// `on_offsets` in submission order.
class BatchAppender {
 public:
  using OffsetsFn = std::function<void(const std::vector<int64_t>&)>;
  BatchAppender(Bus& bus, OffsetsFn on_offsets, size_t max_in_flight = 4)
      : bus_(bus), on_offsets_(std::move(on_offsets)), max_in_flight_(max_in_flight) {}
  ~BatchAppender();

  // Queues a batch; may wait for an older batch to commit first. Returns the
  // first append error seen so far (then nothing more is submitted).
  Status Submit(std::vector<Event> events);
  // Waits for every submitted batch. Returns the first error, if any.
  Status Finish();

 private:
  Status DrainOne();

  Bus& bus_;
  OffsetsFn on_offsets_;
  size_t max_in_flight_;
  std::deque<std::future<AppendResult>> in_flight_;
  Status first_error_;
};

// Human-friendly byte count: "512 B", "1.5 KiB", "12.0 MiB".
std::string FormatBytes(int64_t bytes);
// "812 ms", "1.25 s" (empty when absent).
std::string FormatDurationMs(std::optional<double> ms);

// Pretty printing of committed events as aligned columns:
//   OFFSET  TIME  SESSION  TYPE  TOOL  STATUS  COST  DURATION  DETAIL
class PrettyPrinter {
 public:
  // `max_offset` sizes the offset column; `color` adds ANSI colours.
  PrettyPrinter(std::FILE* out, int64_t max_offset, bool color);
  void PrintHeader();
  void Print(const CommittedEvent& event);

 private:
  std::FILE* out_;
  int offset_width_;
  bool color_;
};

// A short single-line excerpt of the event's payload for the DETAIL column
// (content, delta, message, error, result, arguments, …), at most `max_chars`.
std::string EventDetail(std::string_view json, size_t max_chars);

// Pads or truncates (with "…") `text` to exactly `width` display columns
// (counting UTF-8 code points).
std::string FitColumn(std::string_view text, size_t width, bool right_align = false);

}  // namespace tailbus::cli
