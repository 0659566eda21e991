// tailbus tail: follows a tailbus server over WebSocket and prints each event
// once, as NDJSON (the event's JSON exactly as the server delivered it) or as
// aligned columns. When the connection drops it reconnects with exponential
// backoff and jitter and resumes after the last offset it printed
// (`after=<offset>&epoch=<epoch>`), so nothing is missed and nothing is
// printed twice. Exits 0 on SIGINT/SIGTERM.
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "core/event_decoder.h"
#include "core/time_format.h"
#include "ws/ws_client.h"

namespace tailbus::cli {
namespace {

// Backoff between reconnection attempts: attempt n (0-based) waits a random
// time in [d/2, d] with d = min(kMaxBackoff, kFirstBackoff * 2^n).
constexpr int kFirstBackoffMs = 500;  // so the first retry comes after 0.25-0.5 s
constexpr int kMaxBackoffMs = 30'000;
constexpr int kConnectTimeoutMs = 10'000;
constexpr int kPollMs = 100;  // how often blocking waits look at the stop flag

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) { g_stop.store(true); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return early
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed stdout (`tailbus tail | head`) is a write error, not a signal.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

struct TailOptions {
  std::string url = "ws://127.0.0.1:8080";
  std::string session;
  std::string filter;
  std::optional<int64_t> after;
  int batch_size = 0;  // 0: the server's default
  std::string token;   // sent as "Authorization: Bearer …" (never logged)
  OutputFormat format = OutputFormat::kAuto;
  ColorMode color = ColorMode::kAuto;
};

void Note(std::string_view message) {
  std::string line = fmt::format("tailbus tail: {}\n", message);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

// Sleeps `ms` in short slices; false when a stop signal arrived.
bool SleepUnlessStopped(int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!g_stop.load()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    auto slice = std::min<std::chrono::steady_clock::duration>(deadline - now,
                                                               std::chrono::milliseconds(kPollMs));
    std::this_thread::sleep_for(slice);
  }
  return false;
}

// The raw text of each element of the top-level array member `name` of the
// JSON object `json` (which must be valid JSON: the DOM parse checked it).
// Events are spliced into frames verbatim, so this recovers each event's
// JSON exactly as it was delivered, without re-serialising.
bool RawArrayElements(std::string_view json, std::string_view name,
                      std::vector<std::string_view>* out) {
  out->clear();
  size_t i = 0;
  int depth = 0;
  const size_t n = json.size();
  auto skip_string = [&](size_t start) {  // returns the index after the closing quote
    size_t k = start + 1;
    while (k < n && json[k] != '"') k += json[k] == '\\' ? 2 : 1;
    return k + 1;
  };
  auto skip_ws = [&](size_t k) {
    while (k < n && (json[k] == ' ' || json[k] == '\t' || json[k] == '\n' || json[k] == '\r')) {
      ++k;
    }
    return k;
  };
  while (i < n) {
    char c = json[i];
    if (c == '"') {
      size_t end = skip_string(i);
      if (depth == 1) {
        size_t after = skip_ws(end);
        if (after < n && json[after] == ':' &&
            json.substr(i + 1, end > i + 1 ? end - i - 2 : 0) == name) {
          size_t v = skip_ws(after + 1);
          if (v >= n || json[v] != '[') return false;
          // Split the array at depth-1 commas.
          size_t k = skip_ws(v + 1);
          if (k < n && json[k] == ']') return true;
          size_t elem_start = k;
          int d = 0;
          while (k < n) {
            char ch = json[k];
            if (ch == '"') {
              k = skip_string(k);
              continue;
            }
            if (ch == '{' || ch == '[') {
              ++d;
            } else if (ch == '}' || ch == ']') {
              if (d == 0) {  // the array's own ']'
                std::string_view elem = json.substr(elem_start, k - elem_start);
                while (!elem.empty() && (elem.back() == ' ' || elem.back() == '\n' ||
                                         elem.back() == '\r' || elem.back() == '\t')) {
                  elem.remove_suffix(1);
                }
                out->push_back(elem);
                return true;
              }
              --d;
            } else if (ch == ',' && d == 0) {
              std::string_view elem = json.substr(elem_start, k - elem_start);
              while (!elem.empty() && (elem.back() == ' ' || elem.back() == '\n' ||
                                       elem.back() == '\r' || elem.back() == '\t')) {
                elem.remove_suffix(1);
              }
              out->push_back(elem);
              elem_start = skip_ws(k + 1);
              k = elem_start;
              continue;
            }
            ++k;
          }
          return false;
        }
      }
      i = end;
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    ++i;
  }
  return false;
}

std::optional<int64_t> Int64Member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return std::nullopt;
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsInt64()) return std::nullopt;
  return it->value.GetInt64();
}

std::string StringMember(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// What ended a connection, and whether trying again makes sense.
struct Disconnect {
  bool fatal = false;
  std::string why;
};

class Tail {
 public:
  explicit Tail(const TailOptions& opts) : opts_(opts), rng_(std::random_device{}()) {}

  int Run() {
    Result<Filter> filter = ParseFilterFlag(opts_.filter, "");
    if (!filter.ok()) return Fail(filter.status().message(), kExitUsage);
    if (!filter->MatchesEverything()) filter_json_ = filter->ToJson();
    Result<ParsedUrl> base = ParseUrl(opts_.url);
    if (!base.ok()) return Fail("--url: " + base.status().message(), kExitUsage);
    if (base->tls) {
      return Fail("--url: TLS (https://, wss://) is not supported by tail yet", kExitUsage);
    }
    base_ = *base;  // http://host:port is taken to mean the same server's ws://
    if (opts_.after.has_value()) position_ = *opts_.after;
    format_ = ResolveFormat(opts_.format, STDOUT_FILENO);
    color_ = UseColor(opts_.color, STDOUT_FILENO);

    WsClientGroupOptions group_options;
    group_options.max_connections = 2;
    Result<std::shared_ptr<WsClientGroup>> group = WsClientGroup::Create(group_options);
    if (!group.ok()) return Fail(group.status().message());
    group_ = *group;

    InstallSignalHandlers();
    int attempt = 0;
    bool connected_before = false;
    while (!g_stop.load()) {
      std::string url = StreamUrl();
      if (base_.path.size() > kMaxClientPathBytes || url.size() > kMaxClientPathBytes + 300) {
        return Fail("the stream URL is too long (a very large --filter?)", kExitUsage);
      }
      Disconnect end = Follow(url, connected_before);
      if (g_stop.load()) break;
      if (end.fatal) return Fail(end.why);
      if (output_failed_) return kExitOk;  // stdout closed: nothing left to do
      if (hello_seen_) attempt = 0;
      int delay = BackoffMs(attempt);
      Note(fmt::format("{}; reconnecting in {:.1f} s (attempt {}){}", end.why, delay / 1000.0,
                       attempt + 1, ResumeText()));
      ++attempt;
      if (!SleepUnlessStopped(delay)) break;
    }
    std::fflush(stdout);
    return kExitOk;
  }

 private:
  std::string ResumeText() const {
    if (!position_.has_value()) return ", live from the head";
    return fmt::format(", resuming after offset {}{}", *position_,
                       epoch_.empty() ? "" : " (epoch " + epoch_ + ")");
  }

  int BackoffMs(int attempt) {
    double d = kFirstBackoffMs * std::pow(2.0, std::min(attempt, 20));
    d = std::min<double>(d, kMaxBackoffMs);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return static_cast<int>(d * jitter(rng_));
  }

  // ws://host:port/ws[/events/ID]?filter=…&after=…&epoch=…&batch_size=…
  std::string StreamUrl() const {
    std::string path = base_.path;
    std::vector<std::string> params;
    if (path == "/") {
      path = opts_.session.empty() ? "/ws" : "/ws/events/" + UrlEncode(opts_.session);
    } else if (!opts_.session.empty()) {
      params.push_back("session_id=" + UrlEncode(opts_.session));
    }
    if (!filter_json_.empty()) params.push_back("filter=" + UrlEncode(filter_json_));
    if (position_.has_value()) {
      params.push_back(fmt::format("after={}", *position_));
      if (!epoch_.empty()) params.push_back("epoch=" + UrlEncode(epoch_));
    }
    if (opts_.batch_size > 0) params.push_back(fmt::format("batch_size={}", opts_.batch_size));
    std::string url = "ws://" + base_.authority + path;
    char sep = path.find('?') == std::string::npos ? '?' : '&';
    for (const std::string& p : params) {
      url += sep;
      url += p;
      sep = '&';
    }
    return url;
  }

  // One connection: connect, print frames until it ends.
  Disconnect Follow(const std::string& url, bool& connected_before) {
    hello_seen_ = false;
    WsClientOptions options;
    options.ping_interval_seconds = 20;
    options.idle_hangup_seconds = 50;
    if (!opts_.token.empty()) options.headers.push_back("Authorization: Bearer " + opts_.token);
    Result<std::unique_ptr<WsClient>> started = WsClient::StartConnect(group_, url, options);
    if (!started.ok()) return {true, started.status().message()};
    WsClient& client = **started;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kConnectTimeoutMs);
    Status connected = Status::Busy("");
    while (!g_stop.load() && connected.code() == StatusCode::kBusy) {
      connected = client.WaitConnected(kPollMs);
      if (connected.code() == StatusCode::kBusy && std::chrono::steady_clock::now() >= deadline) {
        client.Abort();
        connected = Status::IoError(fmt::format("cannot connect to {}: timed out after {} s", url,
                                                kConnectTimeoutMs / 1000));
      }
    }
    if (g_stop.load()) return {};
    if (!connected.ok()) {
      std::optional<WsCloseInfo> info = client.close_info();
      int http = info.has_value() ? info->http_status : 0;
      // The server understood the request and refused it: retrying will not help.
      bool fatal = http == 400 || http == 401 || http == 403 || http == 404 || http == 405;
      return {fatal, connected.message()};
    }
    if (connected_before) Note(fmt::format("reconnected to {}{}", url, ResumeText()));
    connected_before = true;
    current_url_ = url;

    while (!g_stop.load()) {
      Result<std::string> frame = client.Receive(kPollMs);
      if (frame.ok()) {
        if (!HandleFrame(*frame)) {
          (void)client.Close(1000, "output closed", 1'000);
          return {};
        }
        continue;
      }
      if (frame.status().code() == StatusCode::kBusy) continue;
      break;  // closed
    }
    if (g_stop.load()) {
      (void)client.Close(1000, {}, 1'000);
      return {};
    }
    std::optional<WsCloseInfo> info = client.close_info();
    Disconnect end;
    if (info.has_value() && info->received_close_frame) {
      end.why = fmt::format("the server closed the connection ({}{})", info->code,
                            info->reason.empty() ? "" : ": " + info->reason);
      // Bad request, origin not allowed, no valid token, token without the
      // right, no such endpoint, policy: a retry would be refused the same way.
      int c = info->code;
      end.fatal =
          c == 4400 || c == 4003 || c == 4401 || c == 4403 || c == 4404 || c == 1008 || c == 1003;
    } else {
      end.why = "connection lost (" +
                (info.has_value() && !info->error.empty() ? info->error : std::string("closed")) +
                ")";
    }
    return end;
  }

  // False when stdout can no longer be written.
  bool HandleFrame(const std::string& text) {
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      Note("ignoring a frame that is not a JSON object");
      return true;
    }
    // Event frames carry `event_type`; control frames never do.
    if (doc.HasMember("event_type")) {
      static constexpr std::string_view kPrefix = R"({"type":"event",)";
      std::optional<int64_t> offset = Int64Member(doc, "offset");
      if (!offset.has_value()) {
        Note("ignoring an event frame without an offset");
        return true;
      }
      std::string json;
      if (std::string_view(text).substr(0, kPrefix.size()) == kPrefix) {
        json = "{" + text.substr(kPrefix.size());
      } else {
        json = text;
      }
      std::string out;
      AppendEvent(*offset, json, &out);
      return Flush(out);
    }
    std::string type = StringMember(doc, "type");
    if (type == "batch") {
      auto events = doc.FindMember("events");
      if (events == doc.MemberEnd() || !events->value.IsArray()) {
        Note("ignoring a batch frame without an events array");
        return true;
      }
      std::vector<std::string_view> raw;
      bool raw_ok = RawArrayElements(text, "events", &raw) && raw.size() == events->value.Size();
      std::string out;
      for (rapidjson::SizeType i = 0; i < events->value.Size(); ++i) {
        const rapidjson::Value& e = events->value[i];
        std::optional<int64_t> offset = Int64Member(e, "offset");
        if (!offset.has_value()) continue;
        if (raw_ok) {
          AppendEvent(*offset, raw[i], &out);
        } else {
          AppendEvent(*offset, Serialize(e), &out);
        }
      }
      return Flush(out);
    }
    if (type == "hello") {
      OnHello(StringMember(doc, "epoch"), Int64Member(doc, "head").value_or(0));
      return true;
    }
    if (type == "caught_up") {
      std::optional<int64_t> offset = Int64Member(doc, "offset");
      // Every matching event up to `offset` has been delivered: resuming
      // from there is exact and skips re-scanning.
      if (offset.has_value() && (!position_.has_value() || *offset > *position_)) {
        position_ = *offset;
      }
      if (!caught_up_noted_) {
        Note(fmt::format("caught up at offset {}; following live events", offset.value_or(0)));
        caught_up_noted_ = true;
      }
      return true;
    }
    if (type == "reset") {
      std::string reason = StringMember(doc, "reason");
      std::string epoch = StringMember(doc, "epoch");
      int64_t earliest = Int64Member(doc, "earliest").value_or(0);
      int64_t from = std::max<int64_t>(earliest, 1);
      Note(fmt::format(
          "warning: the server cannot resume this stream where it stopped ({}); continuing "
          "from offset {} of epoch {}{}",
          reason.empty() ? "reset" : reason, from, epoch.empty() ? "?" : epoch,
          reason == "epoch_mismatch" ? " (the database was replaced: offsets restart)"
                                     : " (older events were removed by retention)"));
      position_ = from - 1;
      if (!epoch.empty()) epoch_ = epoch;
      return true;
    }
    if (type == "error") {
      Note(fmt::format("server error {}: {}", StringMember(doc, "code"),
                       StringMember(doc, "error")));
      return true;
    }
    return true;  // ack, pong, connected, future frame types
  }

  void OnHello(const std::string& epoch, int64_t head) {
    hello_seen_ = true;
    if (!first_hello_noted_) {
      first_hello_noted_ = true;
      Note(fmt::format("connected to {} (epoch {}, head {}); {}", current_url_, epoch, head,
                       position_.has_value() ? fmt::format("replaying after offset {}", *position_)
                                             : std::string("following live events")));
    }
    if (!position_.has_value()) {
      // Live only: events after the head the server started us at. Keep that
      // position so a reconnect misses nothing committed in between.
      position_ = head;
      epoch_ = epoch;
    } else if (epoch_.empty()) {
      epoch_ = epoch;  // --after N: taken to be in the server's epoch
    }
    // A different epoch is answered by a `reset` frame, which moves us.
    if (format_ == OutputFormat::kPretty && !printer_) {
      printer_ = std::make_unique<PrettyPrinter>(stdout, std::max<int64_t>(head, 999'999), color_);
      printer_->PrintHeader();
    }
  }

  static std::string Serialize(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
    v.Accept(writer);
    return std::string(buf.GetString(), buf.GetSize());
  }

  // Appends one event's output unless its offset was printed already.
  void AppendEvent(int64_t offset, std::string_view json, std::string* out) {
    if (position_.has_value() && offset <= *position_) return;  // never twice
    position_ = offset;
    if (format_ != OutputFormat::kPretty) {
      out->append(json);
      out->push_back('\n');
      return;
    }
    if (!printer_) {
      printer_ = std::make_unique<PrettyPrinter>(stdout, 999'999, color_);
      printer_->PrintHeader();
    }
    DecodeResult decoded = DecodeEvents(json, DecodeLimits{}, NowMillis());
    if (!decoded.ok() || decoded.events.size() != 1) {
      out->append(json);
      out->push_back('\n');
      return;
    }
    // PrettyPrinter writes to stdout itself: flush what is pending first to
    // keep the order.
    Flush(*out);
    out->clear();
    CommittedEvent event;
    event.offset = offset;
    event.header = std::move(decoded.events[0].header);
    event.json = std::string(json);
    printer_->Print(event);
  }

  bool Flush(const std::string& out) {
    if (output_failed_) return false;
    if ((!out.empty() && !WriteAll(stdout, out)) || std::fflush(stdout) != 0) {
      output_failed_ = true;
      return false;
    }
    return true;
  }

  const TailOptions& opts_;
  std::mt19937 rng_;
  ParsedUrl base_;
  std::string filter_json_;
  std::shared_ptr<WsClientGroup> group_;
  OutputFormat format_ = OutputFormat::kJson;
  bool color_ = false;
  std::unique_ptr<PrettyPrinter> printer_;

  // The resume point: the last offset printed (or known to be covered), and
  // the epoch it belongs to. Empty: live from the head.
  std::optional<int64_t> position_;
  std::string epoch_;
  bool hello_seen_ = false;
  bool first_hello_noted_ = false;
  std::string current_url_;
  bool caught_up_noted_ = false;
  bool output_failed_ = false;
};

}  // namespace

void RegisterTailCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<TailOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tail", "Follow a tailbus server's events over WebSocket, reconnecting and resuming");
  cmd->footer(
      "Events are printed once each, in offset order. When the connection drops, tail\n"
      "reconnects with exponential backoff and jitter (first retry within 1 s, at most 30 s\n"
      "apart) and resumes after the last offset it printed; it says so on stderr.\n"
      "Examples:\n"
      "  tailbus tail                                   # live events, all sessions\n"
      "  tailbus tail --after 0 --format json           # everything retained, then live\n"
      "  tailbus tail --session s1 --filter '{\"event_types\":[\"tool_call\"]}'\n"
      "Exit codes: 0 on Ctrl-C, 1 when the server refuses the stream, 2 for bad flags.");
  cmd->add_option("--url", opts->url, "Server WebSocket URL")
      ->type_name("URL")
      ->envname("TAILBUS_URL")
      ->capture_default_str();
  cmd->add_option("--session", opts->session, "Only this session's events (/ws/events/ID)")
      ->type_name("ID");
  cmd->add_option("--filter", opts->filter, "Only events matching this JSON filter")
      ->type_name("JSON");
  cmd->add_option("--after", opts->after,
                  "Start after offset N (0: everything retained); default: live from now")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch-size", opts->batch_size,
                  "Most events per frame the server sends (1-1000; default: the server's)")
      ->type_name("N")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--token", opts->token,
                  "Access token for a server with --auth-secret-file (see 'tailbus token')")
      ->type_name("TOKEN")
      ->envname("TAILBUS_TOKEN");
  AddFormatOption(cmd, &opts->format, /*allow_auto=*/true);
  AddColorOption(cmd, &opts->color);
  cmd->callback([opts, &action] {
    action = [opts] {
      Tail tail(*opts);
      return tail.Run();
    };
  });
}

}  // namespace tailbus::cli
