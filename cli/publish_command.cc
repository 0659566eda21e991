// tailbus publish: appends events from flags or NDJSON on stdin, to the
// database file (embedded) or to a server (--url). Prints one offset per line.
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
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
#include "ws/client.h"

namespace tailbus::cli {
namespace {

struct PublishOptions {
  std::string db;
  std::string url;
  std::string ca_file;  // --ca-file: verify an https:// server against these CAs
  std::string token;    // --url: sent as ?token= (a server with --auth-secret-file)
  std::string session;
  std::string type;
  std::vector<std::string> fields;
  std::string json;
  bool read_stdin = false;
  std::string input;  // positional: only "-"
  size_t batch_events = kDefaultBatchEvents;
};

// A usage error (exit 2) or a runtime error (exit 1), with its message.
struct CommandError {
  int code;
  std::string message;
};

void PrintOffsets(const std::vector<int64_t>& offsets) {
  std::string out;
  out.reserve(offsets.size() * 8);
  for (int64_t offset : offsets) fmt::format_to(std::back_inserter(out), "{}\n", offset);
  WriteAll(stdout, out);
  std::fflush(stdout);
}

// Builds one event object from --json, --session, --type and --field.
Result<std::string> BuildEventFromFlags(const PublishOptions& opts) {
  rapidjson::Document doc;
  if (!opts.json.empty()) {
    doc.Parse(opts.json.data(), opts.json.size());
    if (doc.HasParseError()) {
      return Status::InvalidArgument(fmt::format("--json: invalid JSON at byte {}: {}",
                                                 doc.GetErrorOffset(),
                                                 rapidjson::GetParseError_En(doc.GetParseError())));
    }
    if (!doc.IsObject()) return Status::InvalidArgument("--json: must be a JSON object");
  } else {
    doc.SetObject();
  }
  auto& alloc = doc.GetAllocator();
  auto set = [&](const std::string& key, rapidjson::Value value) {
    auto it = doc.FindMember(key.c_str());
    if (it != doc.MemberEnd()) {
      it->value = value;
    } else {
      doc.AddMember(
          rapidjson::Value(key.c_str(), static_cast<rapidjson::SizeType>(key.size()), alloc), value,
          alloc);
    }
  };
  for (const std::string& field : opts.fields) {
    size_t eq = field.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(fmt::format("--field: expected KEY=VALUE, got \"{}\"", field));
    }
    std::string key = field.substr(0, eq);
    std::string text = field.substr(eq + 1);
    rapidjson::Document parsed(&alloc);
    parsed.Parse(text.data(), text.size());
    rapidjson::Value value;
    if (!text.empty() && !parsed.HasParseError()) {
      value.CopyFrom(parsed, alloc);
    } else {
      value.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc);
    }
    set(key, std::move(value));
  }
  if (!opts.session.empty()) {
    set("session_id",
        rapidjson::Value(opts.session.c_str(),
                         static_cast<rapidjson::SizeType>(opts.session.size()), alloc));
  }
  if (!opts.type.empty()) {
    set("event_type", rapidjson::Value(opts.type.c_str(),
                                       static_cast<rapidjson::SizeType>(opts.type.size()), alloc));
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> writer(sb);
  doc.Accept(writer);
  return std::string(sb.GetString(), sb.GetSize());
}

// ------------------------------------------------------------------ --url

std::string EventsEndpoint(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  constexpr std::string_view kPath = "/api/events";
  if (url.size() < kPath.size() ||
      url.compare(url.size() - kPath.size(), kPath.size(), kPath) != 0) {
    url += kPath;
  }
  return url;
}

// Posts NDJSON to the server. `lines` (may be empty for a flags event) maps a
// rejected event's index back to its input line.
Result<std::vector<int64_t>> PostEvents(const PublishOptions& opts, const std::string& body,
                                        const std::vector<InputLine>& lines, size_t first_index) {
  std::string endpoint = EventsEndpoint(opts.url);
  if (!opts.token.empty())
    endpoint += "?token=" + opts.token;  // base64url and '.': nothing to escape
  Result<HttpResponse> response =
      HttpRequest("POST", endpoint, body, "application/x-ndjson", 30'000, opts.ca_file);
  if (!response.ok()) {
    return Status::IoError(fmt::format("cannot publish: {}", response.status().message()));
  }
  rapidjson::Document doc;
  doc.Parse(response->body.data(), response->body.size());
  if (response->status < 200 || response->status >= 300) {
    std::string message;
    if (!doc.HasParseError() && doc.IsObject()) {
      auto details = doc.FindMember("details");
      if (details != doc.MemberEnd() && details->value.IsArray() && !details->value.Empty()) {
        const auto& d = details->value[0];
        if (d.IsObject() && d.HasMember("index") && d["index"].IsUint64() && d.HasMember("field") &&
            d["field"].IsString() && d.HasMember("reason") && d["reason"].IsString()) {
          size_t i = d["index"].GetUint64();
          FieldError e{first_index + i, d["field"].GetString(), d["reason"].GetString()};
          message = i < lines.size()
                        ? fmt::format("line {}: {}", lines[i].line_number, e.ToString())
                        : e.ToString();
          if (details->value.Size() > 1) {
            message += fmt::format(" (and {} more)", details->value.Size() - 1);
          }
        }
      }
      auto error = doc.FindMember("error");
      if (message.empty() && error != doc.MemberEnd() && error->value.IsString()) {
        message = error->value.GetString();
      }
    }
    if (message.empty()) message = response->body.substr(0, 200);
    return Status::InvalidArgument(
        fmt::format("server answered {}: {}", response->status, message));
  }
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("offsets") ||
      !doc["offsets"].IsArray()) {
    return Status::IoError(
        fmt::format("unexpected answer from {}: {}", endpoint, response->body.substr(0, 200)));
  }
  std::vector<int64_t> offsets;
  for (const auto& v : doc["offsets"].GetArray()) {
    if (!v.IsInt64()) return Status::IoError("unexpected answer: offsets must be integers");
    offsets.push_back(v.GetInt64());
  }
  return offsets;
}

// ------------------------------------------------------------------ runs

int PublishOne(const PublishOptions& opts) {
  Result<std::string> event = BuildEventFromFlags(opts);
  if (!event.ok()) return Fail(event.status().message(), kExitUsage);
  if (!opts.url.empty()) {
    Result<std::vector<int64_t>> offsets = PostEvents(opts, *event + "\n", {}, 0);
    if (!offsets.ok()) return Fail(offsets.status().message());
    PrintOffsets(*offsets);
    return kExitOk;
  }
  DecodeResult decoded = DecodeEvents(*event, DecodeLimits{}, NowMillis());
  if (!decoded.ok()) return Fail(decoded.ToStatus().message());
  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/true);
  if (!bus.ok()) return Fail(bus.status().message());
  AppendResult offsets = (*bus)->Append(std::move(decoded.events));
  (*bus)->Close();
  if (!offsets.ok()) return Fail(fmt::format("append failed: {}", offsets.status().message()));
  PrintOffsets(*offsets);
  return kExitOk;
}

int PublishStdin(const PublishOptions& opts) {
  if (isatty(STDIN_FILENO)) {
    PrintError("reading NDJSON events from stdin, one per line (Ctrl-D to finish)");
  }
  std::unique_ptr<Bus> bus;
  std::unique_ptr<BatchAppender> appender;
  if (opts.url.empty()) {
    Result<std::unique_ptr<Bus>> opened = OpenBus(opts.db, /*create_if_missing=*/true);
    if (!opened.ok()) return Fail(opened.status().message());
    bus = std::move(opened).value();
    appender = std::make_unique<BatchAppender>(*bus, PrintOffsets);
  }

  LineReader reader(STDIN_FILENO);
  std::vector<InputLine> batch;
  size_t next_index = 0;  // index of batch[0] among all events of the input
  std::optional<CommandError> error;

  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    if (appender) {
      Result<std::vector<Event>> events = DecodeLines(batch, next_index);
      if (!events.ok()) {
        error = CommandError{kExitError, events.status().message()};
        return false;
      }
      Status st = appender->Submit(std::move(events).value());
      if (!st.ok()) {
        error = CommandError{kExitError, fmt::format("append failed: {}", st.message())};
        return false;
      }
    } else {
      std::string body;
      for (const InputLine& l : batch) {
        body += l.text;
        body += '\n';
      }
      Result<std::vector<int64_t>> offsets = PostEvents(opts, body, batch, next_index);
      if (!offsets.ok()) {
        error = CommandError{kExitError, offsets.status().message()};
        return false;
      }
      PrintOffsets(*offsets);
    }
    next_index += batch.size();
    batch.clear();
    return true;
  };

  while (true) {
    std::optional<std::string> line = reader.Next();
    if (!line.has_value()) break;
    if (!IsBlankLine(*line)) batch.push_back({reader.line_number(), std::move(*line)});
    bool producer_paused = !reader.ReadyWithoutBlocking();
    if (batch.size() >= opts.batch_events || producer_paused) {
      if (!flush()) break;
      // Acknowledge what was sent before waiting for more input.
      if (producer_paused && appender) {
        Status st = appender->Finish();
        if (!st.ok()) {
          error = CommandError{kExitError, fmt::format("append failed: {}", st.message())};
          break;
        }
      }
    }
  }
  if (!error && !reader.status().ok()) error = CommandError{kExitError, reader.status().message()};
  if (!error) flush();
  if (appender) {
    Status st = appender->Finish();
    if (!st.ok() && !error) {
      error = CommandError{kExitError, fmt::format("append failed: {}", st.message())};
    }
    appender.reset();
  }
  if (bus) bus->Close();
  if (error) return Fail(error->message, error->code);
  return kExitOk;
}

int RunPublish(const PublishOptions& opts) {
  if (!opts.input.empty() && opts.input != "-") {
    return Fail(
        fmt::format("unexpected argument \"{}\" (only \"-\", read stdin, is accepted)", opts.input),
        kExitUsage);
  }
  if (!opts.url.empty() && opts.url.rfind("http://", 0) != 0 &&
      opts.url.rfind("https://", 0) != 0) {
    return Fail(fmt::format("--url: expected http://HOST:PORT, got \"{}\"", opts.url), kExitUsage);
  }
  bool event_flags =
      !opts.session.empty() || !opts.type.empty() || !opts.json.empty() || !opts.fields.empty();
  bool from_stdin = opts.read_stdin || opts.input == "-";
  if (from_stdin && event_flags) {
    return Fail("--stdin/- cannot be combined with --session, --type, --field or --json",
                kExitUsage);
  }
  return event_flags ? PublishOne(opts) : PublishStdin(opts);
}

}  // namespace

void RegisterPublishCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<PublishOptions>();
  CLI::App* cmd = app.add_subcommand(
      "publish",
      "Append events and print their offsets, one per line. One event from flags, or NDJSON "
      "(one JSON object per line) from stdin when no event flag is given");
  cmd->footer(
      "Examples:\n"
      "  tailbus publish --session s1 --type tool_call --field tool_name=search "
      "--field cost_tokens=12\n"
      "  tailbus publish --json '{\"session_id\":\"s1\",\"type\":\"message\",\"content\":\"hi\"}'\n"
      "  tailbus publish < events.ndjson\n"
      "  tailbus publish --url http://127.0.0.1:8080 < events.ndjson\n"
      "A batch with a bad event is rejected whole (nothing of it is appended); the error names\n"
      "the input line and the event's field. Batches before it stay appended.");
  AddDbOption(cmd, &opts->db);
  cmd->add_option("--session", opts->session, "The event's session_id")->type_name("ID");
  cmd->add_option("--type", opts->type, "The event's event_type (e.g. message, tool_call, error)")
      ->type_name("TYPE");
  cmd->add_option("--field", opts->fields,
                  "Add a member KEY=VALUE; VALUE is parsed as JSON when it parses (12, true, "
                  "{\"a\":1}), else taken as a string. Repeatable")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  cmd->add_option("--json", opts->json,
                  "The event as one JSON object; --session, --type and --field override its "
                  "members")
      ->type_name("OBJECT");
  cmd->add_flag("--stdin", opts->read_stdin,
                "Read NDJSON events from stdin (the default when no event flag is given)");
  cmd->add_option("input", opts->input, "'-' reads NDJSON from stdin, like --stdin")
      ->type_name("-");
  cmd->add_option("--batch-size", opts->batch_events,
                  "Events per append (per HTTP request with --url) when reading stdin")
      ->type_name("N")
      ->check(CLI::Range(size_t{1}, kMaxBatchEvents))
      ->capture_default_str();
  cmd->add_option("--url", opts->url,
                  "Publish to a running server (POST /api/events) instead of the database file")
      ->type_name("http://HOST:PORT");
  cmd->add_option("--ca-file", opts->ca_file,
                  "PEM file of the CA(s) to verify an https:// --url against (default: the "
                  "system's)")
      ->type_name("FILE")
      ->envname("TAILBUS_CA_FILE")
      ->check(CLI::ExistingFile);
  cmd->add_option("--token", opts->token,
                  "With --url: access token for a server with --auth-secret-file (see 'tailbus "
                  "token')")
      ->type_name("TOKEN")
      ->envname("TAILBUS_TOKEN");
  cmd->callback([opts, &action] { action = [opts] { return RunPublish(*opts); }; });
}

}  // namespace tailbus::cli
