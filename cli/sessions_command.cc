// tailbus sessions: list sessions (newest activity first), show one, delete one.
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "core/time_format.h"

namespace tailbus::cli {
namespace {

struct ListOptions {
  std::string db;
  size_t limit = 50;
  size_t offset = 0;
  std::string search;
  OutputFormat format = OutputFormat::kPretty;
};

struct ShowOptions {
  std::string db;
  std::string session;
  OutputFormat format = OutputFormat::kPretty;
};

struct DeleteOptions {
  std::string db;
  std::string session;
  bool hard = false;
};

std::string SessionJson(const SessionSummary& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("session_id");
  w.String(s.session_id.data(), static_cast<rapidjson::SizeType>(s.session_id.size()));
  w.Key("event_count");
  w.Int64(s.event_count);
  w.Key("error_count");
  w.Int64(s.error_count);
  w.Key("total_cost_tokens");
  w.Int64(s.total_cost_tokens);
  w.Key("first_offset");
  w.Int64(s.first_offset);
  w.Key("last_offset");
  w.Int64(s.last_offset);
  std::string first = FormatRfc3339Millis(s.first_time_ms);
  std::string last = FormatRfc3339Millis(s.last_time_ms);
  w.Key("first_time");
  w.String(first.data(), static_cast<rapidjson::SizeType>(first.size()));
  w.Key("last_time");
  w.String(last.data(), static_cast<rapidjson::SizeType>(last.size()));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

int RunList(const ListOptions& opts) {
  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/false);
  if (!bus.ok()) return Fail(bus.status().message());
  std::unique_ptr<LogReader> reader = (*bus)->NewReader();
  Result<std::vector<SessionSummary>> sessions =
      reader->ListSessions(opts.limit, opts.offset, opts.search);
  reader.reset();
  (*bus)->Close();
  if (!sessions.ok()) return Fail(sessions.status().message());

  std::string out;
  if (opts.format == OutputFormat::kJson) {
    for (const SessionSummary& s : *sessions) {
      out += SessionJson(s);
      out += '\n';
    }
  } else if (sessions->empty()) {
    out = opts.search.empty() && opts.offset == 0 ? "no sessions\n" : "no sessions match\n";
  } else {
    size_t id_width = 7;  // "SESSION"
    for (const SessionSummary& s : *sessions) {
      id_width = std::max(id_width, std::min<size_t>(s.session_id.size(), 40));
    }
    out +=
        fmt::format("{}  {:>7}  {:>6}  {:>9}  {:>17}  {:<24}  {}\n", FitColumn("SESSION", id_width),
                    "EVENTS", "ERRORS", "COST", "OFFSETS", "FIRST EVENT (UTC)", "LAST EVENT (UTC)");
    for (const SessionSummary& s : *sessions) {
      out += fmt::format("{}  {:>7}  {:>6}  {:>9}  {:>17}  {:<24}  {}\n",
                         FitColumn(s.session_id, id_width), s.event_count, s.error_count,
                         s.total_cost_tokens, fmt::format("{}..{}", s.first_offset, s.last_offset),
                         FormatRfc3339Millis(s.first_time_ms), FormatRfc3339Millis(s.last_time_ms));
    }
  }
  WriteAll(stdout, out);
  if (std::fflush(stdout) != 0) return Fail("cannot write to stdout");
  return kExitOk;
}

int RunShow(const ShowOptions& opts) {
  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/false);
  if (!bus.ok()) return Fail(bus.status().message());
  std::unique_ptr<LogReader> reader = (*bus)->NewReader();
  Result<SessionSummary> s = reader->GetSession(opts.session);
  reader.reset();
  (*bus)->Close();
  if (!s.ok()) {
    if (s.status().code() == StatusCode::kNotFound) {
      return Fail(fmt::format("no session \"{}\" in {}", opts.session, opts.db));
    }
    return Fail(s.status().message());
  }
  std::string out;
  if (opts.format == OutputFormat::kJson) {
    out = SessionJson(*s) + "\n";
  } else {
    out += fmt::format("{:<13}{}\n", "session", s->session_id);
    out += fmt::format("{:<13}{}\n", "events", s->event_count);
    out += fmt::format("{:<13}{}\n", "errors", s->error_count);
    out += fmt::format("{:<13}{}\n", "cost tokens", s->total_cost_tokens);
    out += fmt::format("{:<13}{} .. {}\n", "offsets", s->first_offset, s->last_offset);
    out += fmt::format("{:<13}{}\n", "first event", FormatRfc3339Millis(s->first_time_ms));
    out += fmt::format("{:<13}{}\n", "last event", FormatRfc3339Millis(s->last_time_ms));
  }
  WriteAll(stdout, out);
  if (std::fflush(stdout) != 0) return Fail("cannot write to stdout");
  return kExitOk;
}

int RunDelete(const DeleteOptions& opts) {
  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/false);
  if (!bus.ok()) return Fail(bus.status().message());
  std::unique_ptr<LogReader> reader = (*bus)->NewReader();
  Result<SessionSummary> existing = reader->GetSession(opts.session);
  reader.reset();
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
    (*bus)->Close();
    return Fail(existing.status().message());
  }
  // A soft-deleted session is no longer visible, but its rows can still be removed.
  if (!existing.ok() && !opts.hard) {
    (*bus)->Close();
    return Fail(fmt::format("no session \"{}\" in {}", opts.session, opts.db));
  }
  Status st = (*bus)->DeleteSession(opts.session, opts.hard);
  (*bus)->Close();
  if (!st.ok()) {
    if (st.code() == StatusCode::kNotFound) {
      return Fail(fmt::format("no session \"{}\" in {}", opts.session, opts.db));
    }
    return Fail(fmt::format("cannot delete session \"{}\": {}", opts.session, st.message()));
  }
  if (opts.hard) {
    fmt::print("deleted session {} (hard: its events were removed from the log)\n", opts.session);
  } else {
    fmt::print("deleted session {} (soft: hidden from listings and reads; --hard removes it)\n",
               opts.session);
  }
  if (std::fflush(stdout) != 0) return Fail("cannot write to stdout");
  return kExitOk;
}

}  // namespace

void RegisterSessionsCommand(CLI::App& app, CommandAction& action) {
  auto list = std::make_shared<ListOptions>();
  auto show = std::make_shared<ShowOptions>();
  auto del = std::make_shared<DeleteOptions>();

  CLI::App* cmd = app.add_subcommand(
      "sessions",
      "List sessions, newest activity first (with 'show ID': one session; with 'delete ID': "
      "delete one)");
  cmd->require_subcommand(0, 1);
  cmd->footer(
      "Examples:\n"
      "  tailbus sessions --limit 20 --search agent\n"
      "  tailbus sessions show s1\n"
      "  tailbus sessions delete s1 --hard");
  CLI::Option* list_db = AddDbOption(cmd, &list->db);
  cmd->add_option("--limit", list->limit, "List at most N sessions")
      ->type_name("N")
      ->check(CLI::Range(size_t{1}, size_t{100'000}))
      ->capture_default_str();
  cmd->add_option("--offset", list->offset, "Skip the first N sessions (pagination)")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--search", list->search, "Only sessions whose id contains TEXT")
      ->type_name("TEXT");
  AddFormatOption(cmd, &list->format, /*allow_auto=*/false);

  CLI::App* show_cmd = cmd->add_subcommand(
      "show",
      "Show one session's summary: events, errors, cost tokens, offsets, first and last "
      "event time (its events: tailbus replay --session ID)");
  CLI::Option* show_db = AddDbOption(show_cmd, &show->db);
  show_cmd->add_option("session", show->session, "The session id")->type_name("ID")->required();
  AddFormatOption(show_cmd, &show->format, /*allow_auto=*/false);
  // `tailbus sessions --db P show ID` uses P too.
  show_cmd->callback([show, list, show_db, list_db, &action] {
    if (show_db->count() == 0 && list_db->count() > 0) show->db = list->db;
    action = [show] { return RunShow(*show); };
  });

  CLI::App* delete_cmd = cmd->add_subcommand(
      "delete",
      "Delete a session. Soft (default): hidden from listings and reads at once; events with "
      "the same id later start a new session. --hard removes its events from the log");
  CLI::Option* delete_db = AddDbOption(delete_cmd, &del->db);
  delete_cmd->add_option("session", del->session, "The session id")->type_name("ID")->required();
  delete_cmd->add_flag("--hard", del->hard, "Remove the session's events from the log file");
  delete_cmd->callback([del, list, delete_db, list_db, &action] {
    if (delete_db->count() == 0 && list_db->count() > 0) del->db = list->db;
    action = [del] { return RunDelete(*del); };
  });

  cmd->callback([cmd, list, &action] {
    if (cmd->get_subcommands().empty()) action = [list] { return RunList(*list); };
  });
}

}  // namespace tailbus::cli
