#include "cli/cli_common.h"

#include <fmt/format.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "core/time_format.h"

namespace tailbus::cli {
namespace {

// A Status with the same code and `prefix` in front of its message.
Status WithContext(const Status& status, std::string_view prefix) {
  std::string msg = fmt::format("{}: {}", prefix, status.message());
  switch (status.code()) {
    case StatusCode::kOk:
      return Status::Ok();
    case StatusCode::kInvalidArgument:
      return Status::InvalidArgument(std::move(msg));
    case StatusCode::kNotFound:
      return Status::NotFound(std::move(msg));
    case StatusCode::kCorruption:
      return Status::Corruption(std::move(msg));
    case StatusCode::kIoError:
      return Status::IoError(std::move(msg));
    case StatusCode::kBusy:
      return Status::Busy(std::move(msg));
    case StatusCode::kDiskFull:
      return Status::DiskFull(std::move(msg));
    case StatusCode::kUnsupported:
      return Status::Unsupported(std::move(msg));
    case StatusCode::kEvicted:
      return Status::Evicted(std::move(msg));
    case StatusCode::kResourceExhausted:
      return Status::ResourceExhausted(std::move(msg));
    case StatusCode::kUnavailable:
      return Status::Unavailable(std::move(msg));
  }
  return Status::IoError(std::move(msg));
}

// Number of UTF-8 code points (display columns, approximately).
size_t DisplayWidth(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// The first `n` code points of `text`.
std::string_view TakeCodePoints(std::string_view text, size_t n) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (seen == n) return text.substr(0, i);
      ++seen;
    }
  }
  return text;
}

constexpr const char* kReset = "\x1b[0m";
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kDim = "\x1b[2m";
constexpr const char* kRed = "\x1b[31m";
constexpr const char* kBoldRed = "\x1b[1;31m";
constexpr const char* kGreen = "\x1b[32m";
constexpr const char* kYellow = "\x1b[33m";
constexpr const char* kBlue = "\x1b[34m";
constexpr const char* kMagenta = "\x1b[35m";
constexpr const char* kCyan = "\x1b[36m";

bool IsErrorStatus(std::string_view status) {
  return status == "error" || status == "failed" || status == "timeout";
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool Contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

const char* TypeColor(const EventHeader& h) {
  std::string_view t = h.event_type;
  if (t == "error" || Contains(t, "fail") || IsErrorStatus(h.status)) return kRed;
  if (StartsWith(t, "tool")) return kCyan;
  if (StartsWith(t, "openai") || StartsWith(t, "llm") || StartsWith(t, "model")) return kMagenta;
  if (t == "message" || t == "user" || t == "user_message") return kGreen;
  if (t == "assistant" || t == "token" || Contains(t, "chunk") || Contains(t, "stream")) {
    return kBlue;
  }
  return nullptr;
}

const char* StatusColor(std::string_view status) {
  if (IsErrorStatus(status)) return kBoldRed;
  if (status == "ok" || status == "success" || status == "succeeded" || status == "completed" ||
      status == "connected" || status == "done") {
    return kGreen;
  }
  if (status == "running" || status == "pending" || status == "started" ||
      status == "in_progress" || status == "reconnecting" || status == "streaming") {
    return kYellow;
  }
  return nullptr;
}

std::string Paint(std::string text, const char* color, bool enabled) {
  if (!enabled || color == nullptr) return text;
  return fmt::format("{}{}{}", color, text, kReset);
}

// Column widths of the pretty format (display columns).
constexpr size_t kTimeWidth = 24;
constexpr size_t kSessionWidth = 24;
constexpr size_t kTypeWidth = 16;
constexpr size_t kToolWidth = 14;
constexpr size_t kStatusWidth = 9;
constexpr size_t kCostWidth = 7;
constexpr size_t kDurationWidth = 9;
constexpr size_t kDetailChars = 60;

}  // namespace

void PrintError(std::string_view message) {
  std::string line = "tailbus: ";
  line.reserve(line.size() + message.size() + 1);
  for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
  while (!line.empty() && line.back() == ' ') line.pop_back();
  line += '\n';
  std::fflush(stdout);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

int Fail(std::string_view message, int code) {
  PrintError(message);
  return code;
}

CLI::Option* AddDbOption(CLI::App* cmd, std::string* db_path) {
  *db_path = kDefaultDbPath;
  return cmd->add_option("--db", *db_path, "Database file")
      ->envname(kDbEnvVar)
      ->type_name("PATH")
      ->capture_default_str();
}

Result<std::unique_ptr<Bus>> OpenBus(const std::string& path, bool create_if_missing) {
  std::error_code ec;
  if (!create_if_missing) {
    if (!std::filesystem::exists(path, ec)) {
      return Status::NotFound(
          fmt::format("no database at {} (publish, import or demo create one)", path));
    }
  } else {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return Status::IoError(
            fmt::format("cannot create directory {}: {}", parent.string(), ec.message()));
      }
    }
  }
  StorageOptions options;
  options.create_if_missing = create_if_missing;
  Result<std::unique_ptr<LogStore>> store = LogStore::Open(path, options);
  if (!store.ok()) {
    return WithContext(store.status(), fmt::format("cannot open database {}", path));
  }
  Result<std::unique_ptr<Bus>> bus = Bus::Open(std::move(store).value());
  if (!bus.ok()) return WithContext(bus.status(), fmt::format("cannot open database {}", path));
  return bus;
}

Result<Filter> ParseFilterFlag(const std::string& filter_json, const std::string& session) {
  Filter filter;
  if (!filter_json.empty()) {
    Result<Filter> parsed = Filter::Parse(filter_json, "filter");
    if (!parsed.ok()) return WithContext(parsed.status(), "invalid --filter");
    filter = std::move(parsed).value();
  }
  if (!session.empty()) filter = filter.RestrictedToSession(session);
  return filter;
}

void AddColorOption(CLI::App* cmd, ColorMode* mode) {
  *mode = ColorMode::kAuto;
  cmd->add_option_function<std::string>(
         "--color",
         [mode](const std::string& v) {
           *mode = v == "always" ? ColorMode::kAlways
                                 : (v == "never" ? ColorMode::kNever : ColorMode::kAuto);
         },
         "Colour the pretty output: auto (when stdout is a terminal and NO_COLOR is not set), "
         "always, never (default: auto)")
      ->type_name("WHEN")
      ->check(CLI::IsMember({"auto", "always", "never"}));
}

bool UseColor(ColorMode mode, int fd) {
  switch (mode) {
    case ColorMode::kAlways:
      return true;
    case ColorMode::kNever:
      return false;
    case ColorMode::kAuto:
      break;
  }
  if (!isatty(fd)) return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && no_color[0] != '\0') return false;
  const char* term = std::getenv("TERM");
  if (term != nullptr && std::strcmp(term, "dumb") == 0) return false;
  return true;
}

void AddFormatOption(CLI::App* cmd, OutputFormat* format, bool allow_auto) {
  *format = allow_auto ? OutputFormat::kAuto : OutputFormat::kPretty;
  cmd->add_option_function<std::string>(
         "--format",
         [format](const std::string& v) {
           *format = v == "json" ? OutputFormat::kJson : OutputFormat::kPretty;
         },
         allow_auto ? "Output format: json (NDJSON, one object per line) or pretty (aligned "
                      "columns) (default: pretty when stdout is a terminal, else json)"
                    : "Output format: pretty (aligned columns) or json (default: pretty)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"json", "pretty"}));
}

OutputFormat ResolveFormat(OutputFormat format, int fd) {
  if (format != OutputFormat::kAuto) return format;
  return isatty(fd) ? OutputFormat::kPretty : OutputFormat::kJson;
}

bool WriteAll(std::FILE* out, std::string_view data) {
  return std::fwrite(data.data(), 1, data.size(), out) == data.size();
}

// ---------------------------------------------------------------- LineReader

bool LineReader::Fill() {
  if (eof_) return false;
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  constexpr size_t kChunk = 256 * 1024;
  size_t old = buf_.size();
  buf_.resize(old + kChunk);
  while (true) {
    ssize_t n = ::read(fd_, buf_.data() + old, kChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      buf_.resize(old);
      status_ = Status::IoError(fmt::format("cannot read input: {}", std::strerror(errno)));
      eof_ = true;
      return false;
    }
    buf_.resize(old + static_cast<size_t>(n));
    if (n == 0) eof_ = true;
    return n > 0;
  }
}

std::optional<std::string> LineReader::Next() {
  size_t scan_from = pos_;
  while (true) {
    size_t nl = buf_.find('\n', scan_from);
    if (nl != std::string::npos) {
      std::string line = buf_.substr(pos_, nl - pos_);
      pos_ = nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      ++line_number_;
      return line;
    }
    scan_from = buf_.size();
    if (buf_.size() - pos_ > kMaxLineBytes) {
      status_ = Status::InvalidArgument(
          fmt::format("line {}: longer than {} bytes", line_number_ + 1, kMaxLineBytes));
      return std::nullopt;
    }
    size_t before = pos_;
    if (!Fill()) {
      if (!status_.ok()) return std::nullopt;
      if (pos_ < buf_.size()) {  // last line without a newline
        std::string line = buf_.substr(pos_);
        pos_ = buf_.size();
        if (!line.empty() && line.back() == '\r') line.pop_back();
        ++line_number_;
        return line;
      }
      return std::nullopt;
    }
    // Fill() may have compacted the buffer.
    scan_from = scan_from - before + pos_;
  }
}

bool LineReader::ReadyWithoutBlocking() {
  if (eof_) return true;
  if (buf_.find('\n', pos_) != std::string::npos) return true;
  pollfd p{fd_, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n != 0;
}

Status ReadEvents(const Bus& bus, int64_t after, const Filter& filter, size_t limit,
                  const std::function<Status(const CommittedEvent&)>& fn) {
  constexpr size_t kPageEvents = 1'000;
  constexpr size_t kPageBytes = 4 * 1024 * 1024;
  std::unique_ptr<LogReader> reader = bus.NewReader();
  std::unique_ptr<Cursor> cursor = bus.Subscribe(after, filter);
  size_t delivered = 0;
  while (limit == 0 || delivered < limit) {
    size_t want = kPageEvents;
    if (limit != 0) want = std::min(want, limit - delivered);
    int64_t before = cursor->position();
    Result<PollResult> page = cursor->Poll(*reader, want, kPageBytes);
    if (!page.ok()) {
      if (page.status().code() == StatusCode::kEvicted) {
        int64_t earliest = bus.earliest();
        return Status::Evicted(fmt::format(
            "offset {} was removed by retention; the earliest retained offset is {} (use "
            "--after {})",
            before + 1, earliest, earliest - 1));
      }
      return WithContext(page.status(), "read failed");
    }
    for (const EventPtr& event : page->events) {
      TAILBUS_RETURN_IF_ERROR(fn(*event));
      if (++delivered == limit) break;
    }
    if (page->caught_up) break;
    // Defensive: a poll that neither delivered nor advanced would loop forever.
    if (page->events.empty() && cursor->position() == before) break;
  }
  return Status::Ok();
}

bool IsBlankLine(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

Result<std::vector<Event>> DecodeLines(const std::vector<InputLine>& lines, size_t first_index) {
  std::string text;
  size_t total = 0;
  for (const InputLine& l : lines) total += l.text.size() + 1;
  text.reserve(total);
  for (const InputLine& l : lines) {
    text += l.text;
    text += '\n';
  }
  DecodeLimits limits;
  DecodeResult decoded = DecodeNdjson(text, limits, NowMillis());
  if (decoded.ok()) return std::move(decoded.events);

  // The decoder's message, with the event's index in the whole input and its line.
  auto located = [&](const FieldError& e, size_t i) {
    FieldError global = e;
    global.index = first_index + i;
    return fmt::format("line {}: {}", lines[i].line_number, global.ToString());
  };
  const FieldError& first = decoded.errors.front();
  std::string message;
  if (first.index.has_value() && *first.index < lines.size()) {
    message = located(first, *first.index);
  } else {
    // An error about the whole batch: find the first line that fails alone.
    for (size_t i = 0; i < lines.size() && message.empty(); ++i) {
      DecodeResult one = DecodeNdjson(lines[i].text, limits, NowMillis());
      if (!one.ok()) {
        const FieldError& e = one.errors.front();
        message = e.index.has_value()
                      ? located(e, i)
                      : fmt::format("line {}: {}", lines[i].line_number, e.ToString());
      }
    }
    if (message.empty()) message = first.ToString();
  }
  if (decoded.error_count > 1) {
    size_t more = decoded.error_count - 1;
    message += fmt::format(" (and {} more error{})", more, more == 1 ? "" : "s");
  }
  return Status::InvalidArgument(std::move(message));
}

// ------------------------------------------------------------- BatchAppender

BatchAppender::~BatchAppender() {
  for (auto& f : in_flight_) f.wait();
}

Status BatchAppender::Submit(std::vector<Event> events) {
  if (!first_error_.ok()) return first_error_;
  while (in_flight_.size() >= max_in_flight_) {
    TAILBUS_RETURN_IF_ERROR(DrainOne());
  }
  auto promise = std::make_shared<std::promise<AppendResult>>();
  in_flight_.push_back(promise->get_future());
  bus_.AppendAsync(std::move(events),
                   [promise](AppendResult result) { promise->set_value(std::move(result)); });
  return first_error_;
}

Status BatchAppender::DrainOne() {
  std::future<AppendResult> f = std::move(in_flight_.front());
  in_flight_.pop_front();
  AppendResult result = f.get();
  if (result.ok()) {
    on_offsets_(result.value());
  } else if (first_error_.ok()) {
    first_error_ = result.status();
  }
  return first_error_;
}

Status BatchAppender::Finish() {
  while (!in_flight_.empty()) {
    Status ignored = DrainOne();  // keep draining: later batches may have committed
    (void)ignored;
  }
  return first_error_;
}

// ------------------------------------------------------------------ printing

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string FormatDurationMs(std::optional<double> ms) {
  if (!ms.has_value()) return "";
  if (*ms < 1000.0) {
    return *ms == static_cast<double>(static_cast<int64_t>(*ms))
               ? fmt::format("{} ms", static_cast<int64_t>(*ms))
               : fmt::format("{:.1f} ms", *ms);
  }
  return fmt::format("{:.2f} s", *ms / 1000.0);
}

std::string FitColumn(std::string_view text, size_t width, bool right_align) {
  size_t w = DisplayWidth(text);
  if (w > width) {
    if (width == 0) return "";
    std::string out(TakeCodePoints(text, width - 1));
    out += "\xE2\x80\xA6";  // …
    return out;
  }
  std::string pad(width - w, ' ');
  return right_align ? pad + std::string(text) : std::string(text) + pad;
}

std::string EventDetail(std::string_view json, size_t max_chars) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return "";
  static constexpr std::array<const char*, 12> kKeys = {
      "content", "delta",          "text",          "message",   "error",    "result",
      "output",  "output_summary", "input_summary", "arguments", "progress", "model"};
  std::string raw;
  for (const char* key : kKeys) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || it->value.IsNull()) continue;
    if (it->value.IsString()) {
      raw.assign(it->value.GetString(), it->value.GetStringLength());
    } else {
      rapidjson::StringBuffer sb;
      rapidjson::Writer<rapidjson::StringBuffer> writer(sb);
      it->value.Accept(writer);
      raw.assign(sb.GetString(), sb.GetSize());
    }
    if (std::string_view(key) == "progress") raw += "%";
    break;
  }
  // One line: control characters become spaces, runs of spaces collapse.
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    char d = (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
    if (d == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += d;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (DisplayWidth(out) > max_chars) {
    std::string cut(TakeCodePoints(out, max_chars - 1));
    cut += "\xE2\x80\xA6";
    return cut;
  }
  return out;
}

PrettyPrinter::PrettyPrinter(std::FILE* out, int64_t max_offset, bool color)
    : out_(out), offset_width_(6), color_(color) {
  int digits = static_cast<int>(fmt::formatted_size("{}", max_offset));
  if (digits > offset_width_) offset_width_ = digits;
}

void PrettyPrinter::PrintHeader() {
  std::string line =
      fmt::format("{:>{}}  {}  {}  {}  {}  {}  {}  {}  {}", "OFFSET", offset_width_,
                  FitColumn("TIME (UTC)", kTimeWidth), FitColumn("SESSION", kSessionWidth),
                  FitColumn("TYPE", kTypeWidth), FitColumn("TOOL", kToolWidth),
                  FitColumn("STATUS", kStatusWidth), FitColumn("COST", kCostWidth, true),
                  FitColumn("DURATION", kDurationWidth, true), "DETAIL");
  if (color_) line = fmt::format("{}{}{}", kBold, line, kReset);
  line += '\n';
  WriteAll(out_, line);
}

void PrettyPrinter::Print(const CommittedEvent& event) {
  const EventHeader& h = event.header;
  std::string time = FormatRfc3339Millis(h.timestamp_ms);
  std::string cost = h.cost_tokens.has_value() ? fmt::format("{}", *h.cost_tokens) : "";
  std::string detail = EventDetail(event.json, kDetailChars);
  std::string line = fmt::format(
      "{:>{}}  {}  {}  {}  {}  {}  {}  {}  {}", event.offset, offset_width_,
      Paint(FitColumn(time, kTimeWidth), kDim, color_), FitColumn(h.session_id, kSessionWidth),
      Paint(FitColumn(h.event_type, kTypeWidth), TypeColor(h), color_),
      FitColumn(h.tool_name, kToolWidth),
      Paint(FitColumn(h.status, kStatusWidth), StatusColor(h.status), color_),
      FitColumn(cost, kCostWidth, true),
      FitColumn(FormatDurationMs(h.duration_ms), kDurationWidth, true), detail);
  // Trailing padding of empty last columns is noise.
  while (!line.empty() && line.back() == ' ') line.pop_back();
  line += '\n';
  WriteAll(out_, line);
}

}  // namespace tailbus::cli
