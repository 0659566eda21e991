#include "tests/reliability/log_audit.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <memory>
#include <unordered_set>

#include "ws/client.h"
#include "ws/ws_client.h"

namespace tailbus::reliability {
namespace {

constexpr size_t kMaxProblems = 40;  // enough to diagnose; keeps a failure readable

std::string StrMember(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return {};
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

int64_t IntMember(const rapidjson::Value& v, const char* name, int64_t fallback = -1) {
  if (!v.IsObject()) return fallback;
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsInt64()) return fallback;
  return it->value.GetInt64();
}

}  // namespace

// ---- Ledger ------------------------------------------------------------------

void Ledger::Record(const std::string& event_id, int64_t offset) {
  std::lock_guard lock(mu_);
  auto [id_it, id_new] = by_id_.emplace(event_id, offset);
  if (!id_new && id_it->second != offset) {
    problems_.push_back(fmt::format("event_id {} acknowledged at offset {} and again at {}",
                                    event_id, id_it->second, offset));
  }
  auto [off_it, off_new] = by_offset_.emplace(offset, event_id);
  if (!off_new && off_it->second != event_id) {
    problems_.push_back(
        fmt::format("offset {} acknowledged for both {} and {}", offset, off_it->second, event_id));
  }
}

void Ledger::AddProblem(std::string problem) {
  std::lock_guard lock(mu_);
  if (problems_.size() < kMaxProblems) problems_.push_back(std::move(problem));
}

std::map<int64_t, std::string> Ledger::Snapshot() const {
  std::lock_guard lock(mu_);
  return by_offset_;
}

size_t Ledger::size() const {
  std::lock_guard lock(mu_);
  return by_offset_.size();
}

std::vector<std::string> Ledger::Problems() const {
  std::lock_guard lock(mu_);
  return problems_;
}

// ---- reading and auditing the log ------------------------------------------------

// Every event of GET base_url + path (a history page endpoint) up to the head
// of its first page, page after page.
Result<LogContents> ReadPages(const std::string& base_url, const std::string& path) {
  LogContents log;
  int64_t after = 0;
  bool first = true;
  while (true) {
    auto r = HttpRequest("GET", fmt::format("{}{}?after={}&limit=1000", base_url, path, after), {},
                         "application/json", 30'000);
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      return Status::IoError(
          fmt::format("GET {}?after={}: {} {}", path, after, r->status, r->body));
    }
    rapidjson::Document page;
    page.Parse(r->body.data(), r->body.size());
    if (page.HasParseError() || !page.IsObject() || !page.HasMember("events") ||
        !page["events"].IsArray()) {
      return Status::IoError(fmt::format("GET {}: not a page: {}", path, r->body.substr(0, 200)));
    }
    if (first) {
      log.head = IntMember(page, "head");
      log.earliest = IntMember(page, "earliest");
      log.epoch = StrMember(page, "epoch");
      first = false;
    }
    for (const rapidjson::Value& e : page["events"].GetArray()) {
      log.events.push_back(
          {IntMember(e, "offset"), StrMember(e, "event_id"), StrMember(e, "session_id")});
    }
    const int64_t next = IntMember(page, "next_after");
    const bool more = page.HasMember("has_more") && page["has_more"].IsTrue();
    if (next <= after && more) return Status::IoError("GET " + path + ": next_after did not move");
    after = next;
    if (!more || after >= log.head) break;
  }
  return log;
}

Result<LogContents> ReadLog(const std::string& base_url) {
  return ReadPages(base_url, "/api/events");
}

std::vector<std::string> AuditLog(const LogContents& log,
                                  const std::map<int64_t, std::string>& acked,
                                  const std::map<int64_t, std::string>& seen) {
  std::vector<std::string> problems;
  auto problem = [&](std::string text) {
    if (problems.size() < kMaxProblems) problems.push_back(std::move(text));
  };
  if (log.earliest != 1) problem(fmt::format("earliest is {}, expected 1", log.earliest));
  std::unordered_map<int64_t, const LoggedEvent*> by_offset;
  std::unordered_set<std::string> ids;
  int64_t expected = 1;
  for (const LoggedEvent& e : log.events) {
    if (e.offset > log.head) break;  // appended after the first page: not audited this time
    if (e.offset != expected) {
      problem(fmt::format("offsets not contiguous: {} follows {}", e.offset, expected - 1));
    }
    expected = e.offset + 1;
    if (e.event_id.empty()) problem(fmt::format("offset {} has no event_id", e.offset));
    if (!ids.insert(e.event_id).second) {
      problem(fmt::format("event_id {} appears twice (again at offset {})", e.event_id, e.offset));
    }
    by_offset[e.offset] = &e;
  }
  if (expected != log.head + 1) {
    problem(fmt::format("the log ends at offset {} but head is {}", expected - 1, log.head));
  }
  auto check = [&](const std::map<int64_t, std::string>& want, const char* who) {
    for (const auto& [offset, id] : want) {
      if (offset > log.head) {
        problem(fmt::format("{} offset {} ({}) is beyond the head {}: lost", who, offset, id,
                            log.head));
        continue;
      }
      auto it = by_offset.find(offset);
      if (it == by_offset.end()) {
        problem(fmt::format("{} offset {} ({}) is missing", who, offset, id));
      } else if (it->second->event_id != id) {
        problem(fmt::format("{} offset {} holds {} instead of {}", who, offset,
                            it->second->event_id, id));
      }
    }
  };
  check(acked, "acknowledged");
  check(seen, "delivered");
  return problems;
}

Result<std::vector<std::string>> AuditSessions(const std::string& base_url,
                                               const LogContents& log) {
  struct Expected {
    int64_t count = 0, first = 0, last = 0;
    std::vector<int64_t> offsets;
  };
  std::map<std::string, Expected> want;
  for (const LoggedEvent& e : log.events) {
    Expected& x = want[e.session_id];
    if (x.count++ == 0) x.first = e.offset;
    x.last = e.offset;
    x.offsets.push_back(e.offset);
  }
  auto r =
      HttpRequest("GET", base_url + "/api/sessions?limit=1000", {}, "application/json", 30'000);
  if (!r.ok()) return r.status();
  rapidjson::Document doc;
  doc.Parse(r->body.data(), r->body.size());
  if (r->status != 200 || doc.HasParseError() || !doc.IsObject() || !doc.HasMember("sessions") ||
      !doc["sessions"].IsArray()) {
    return Status::IoError(
        fmt::format("GET /api/sessions: {} {}", r->status, r->body.substr(0, 200)));
  }
  std::vector<std::string> problems;
  auto problem = [&](std::string text) {
    if (problems.size() < kMaxProblems) problems.push_back(std::move(text));
  };
  size_t listed = 0;
  for (const rapidjson::Value& s : doc["sessions"].GetArray()) {
    ++listed;
    const std::string id = StrMember(s, "session_id");
    auto it = want.find(id);
    if (it == want.end()) {
      problem(fmt::format("session {} is listed but has no events", id));
      continue;
    }
    const Expected& x = it->second;
    const int64_t count = IntMember(s, "event_count");
    const int64_t first = IntMember(s, "first_offset");
    const int64_t last = IntMember(s, "last_offset");
    if (count != x.count || first != x.first || last != x.last) {
      problem(fmt::format(
          "session {}: reported {} events at offsets {}..{}, the log holds {} at {}..{}", id, count,
          first, last, x.count, x.first, x.last));
    }
  }
  if (listed != want.size()) {
    problem(fmt::format("{} sessions listed, the log has events of {}", listed, want.size()));
  }
  // Each session's own history (the per-session index, rebuilt after every
  // crash) lists exactly its events in the log.
  for (const auto& [id, x] : want) {
    auto events = ReadPages(base_url, "/api/sessions/" + id + "/events");
    if (!events.ok()) return events.status();
    std::vector<int64_t> got;
    for (const LoggedEvent& e : events->events) got.push_back(e.offset);
    if (got != x.offsets) {
      problem(fmt::format("session {}: its history holds {} events, the log {}", id, got.size(),
                          x.offsets.size()));
    }
  }
  return problems;
}

std::string JoinProblems(const std::vector<std::string>& problems) {
  std::string out;
  for (const std::string& p : problems) out += "  " + p + "\n";
  return out;
}

// ---- ResumingSubscriber --------------------------------------------------------------

ResumingSubscriber::ResumingSubscriber(const std::atomic<int>& port, std::string filter_json,
                                       bool contiguous)
    : port_(port), filter_json_(std::move(filter_json)), contiguous_(contiguous) {
  thread_ = std::thread([this] { Run(); });
}

ResumingSubscriber::~ResumingSubscriber() { Stop(); }

void ResumingSubscriber::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::map<int64_t, std::string> ResumingSubscriber::Seen() const {
  std::lock_guard lock(mu_);
  return seen_;
}

std::vector<std::string> ResumingSubscriber::Problems() const {
  std::lock_guard lock(mu_);
  return problems_;
}

void ResumingSubscriber::Problem(std::string text) {
  std::lock_guard lock(mu_);
  if (problems_.size() < kMaxProblems) problems_.push_back(std::move(text));
}

void ResumingSubscriber::Run() {
  while (!stop_.load()) {
    const int port = port_.load();
    if (port == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    const int64_t after = last_.load();
    std::string url = fmt::format("ws://127.0.0.1:{}/ws?after={}&batch_size=200", port, after);
    if (!epoch_.empty()) url += "&epoch=" + epoch_;
    if (!filter_json_.empty()) url += "&filter=" + UrlEncode(filter_json_);
    WsClientOptions options;
    options.connect_timeout_ms = 5'000;
    auto client = WsClient::Connect(url, options);
    if (!client.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    connections_.fetch_add(1);
    bool hello = false;
    while (!stop_.load()) {
      auto msg = (*client)->Receive(100);
      if (!msg.ok()) {
        if (msg.status().code() == StatusCode::kBusy) continue;
        break;  // closed: the server went away; reconnect and resume
      }
      rapidjson::Document frame;
      frame.Parse(msg->data(), msg->size());
      if (frame.HasParseError() || !frame.IsObject()) {
        Problem("not a JSON object: " + msg->substr(0, 200));
        continue;
      }
      const std::string type = StrMember(frame, "type");
      if (type == "hello") {
        hello = true;
        const std::string epoch = StrMember(frame, "epoch");
        if (!epoch_.empty() && epoch != epoch_) {
          Problem(fmt::format("the epoch changed from {} to {}", epoch_, epoch));
        }
        epoch_ = epoch;
        if (IntMember(frame, "after") != after) {
          Problem(fmt::format("hello says after={} but the client asked for {}: {}",
                              IntMember(frame, "after"), after, *msg));
        }
        continue;
      }
      if (!hello) Problem("a frame before hello: " + msg->substr(0, 200));
      if (type == "batch") {
        std::lock_guard lock(mu_);
        for (const rapidjson::Value& e : frame["events"].GetArray()) {
          const int64_t offset = IntMember(e, "offset");
          const int64_t last = last_.load();
          if (offset <= last) {
            problems_.push_back(
                fmt::format("duplicate or out of order: offset {} after {}", offset, last));
          } else if (contiguous_ && offset != last + 1) {
            problems_.push_back(fmt::format("gap: offset {} after {}", offset, last));
          }
          seen_[offset] = StrMember(e, "event_id");
          last_.store(std::max(last, offset));
        }
      } else if (type == "caught_up") {
        continue;
      } else {
        // reset, error, single-event frames: none is expected here.
        Problem("unexpected frame: " + msg->substr(0, 300));
      }
    }
  }
}

}  // namespace tailbus::reliability
