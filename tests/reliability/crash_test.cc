// Crash safety of the real `tailbus serve`: producers publish continuously
// (HTTP POST /api/events batches and WebSocket publish frames, every event with
// its own event_id) and record every acknowledged offset; subscribers tail the
// log over WebSocket and resume from their last offset whenever their
// connection drops. The server is killed with SIGKILL at random moments and
// restarted on the same database (on a new ephemeral port). After every kill:
//   - `PRAGMA integrity_check` (the sqlite3 tool, on a copy of what the crash
//     left) is "ok";
//   - once restarted, the whole log read back over GET /api/events has
//     contiguous offsets from 1 to head, no event_id twice, every acknowledged
//     event at its offset with its id, and every event a subscriber was sent
//     (only committed events are sent, so they must have survived too);
//   - at the end, every session's summary (GET /api/sessions) counts exactly
//     its events in the log.
// Producers re-send an unacknowledged batch with the same event ids after a
// crash until it is acknowledged: a batch that had committed before the kill
// must come back with its original offsets (the dedupe window is rebuilt from
// the log), never stored twice. Subscribers check no gap and no duplicate
// across every reconnection.
//
// The kill delays come from a seeded generator; the seed is printed, and
// TAILBUS_CRASH_SEED=<seed> replays the same schedule.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/reliability/log_audit.h"
#include "tests/reliability/serve_process.h"
#include "tests/test_util/temp_dir.h"
#include "ws/client.h"
#include "ws/ws_client.h"

namespace tailbus::reliability {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kKills = 24;
constexpr int kHttpProducers = 2;
constexpr int kWsProducers = 2;
constexpr int kSessions = 8;
// Producers pause up to this long between batches: continuous traffic, but a
// log small enough to read back whole after every restart.
constexpr auto kMaxPause = 60ms;

uint64_t SeedFromEnvironment() {
  if (const char* s = std::getenv("TAILBUS_CRASH_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 10);
  }
  return std::random_device{}();
}

// What every producer shares.
struct Traffic {
  std::atomic<int> port{0};  // 0 while the server is down
  std::atomic<bool> stop{false};
  Ledger ledger;
  std::atomic<int64_t> batches_acked{0};
  std::atomic<int64_t> resends{0};  // batches sent again after a failure
};

// One batch of 1-8 events, each with an id unique to this run.
struct Batch {
  std::vector<std::string> ids;
  std::string json;  // the events as a JSON array
};

Batch MakeBatch(std::mt19937_64& rng, const std::string& producer, int64_t* seq) {
  Batch b;
  const int n = 1 + static_cast<int>(rng() % 8);
  b.json = "[";
  for (int i = 0; i < n; ++i) {
    std::string id = fmt::format("{}-{}", producer, (*seq)++);
    if (i > 0) b.json += ',';
    b.json +=
        fmt::format(R"({{"session_id":"s{}","type":"crash_probe","event_id":"{}","content":"{}"}})",
                    rng() % kSessions, id, std::string(rng() % 300, 'x'));
    b.ids.push_back(std::move(id));
  }
  b.json += "]";
  return b;
}

// Offsets of an ack ({"offsets":[…]}), or empty when malformed.
std::vector<int64_t> OffsetsOf(const rapidjson::Value& v) {
  std::vector<int64_t> out;
  if (!v.IsObject() || !v.HasMember("offsets") || !v["offsets"].IsArray()) return out;
  for (const auto& o : v["offsets"].GetArray()) out.push_back(o.IsInt64() ? o.GetInt64() : -1);
  return out;
}

void RecordAck(Traffic& t, const Batch& b, const std::vector<int64_t>& offsets,
               const std::string& raw) {
  if (offsets.size() != b.ids.size()) {
    t.ledger.AddProblem(fmt::format("ack for {} events carries {} offsets: {}", b.ids.size(),
                                    offsets.size(), raw.substr(0, 200)));
    return;
  }
  for (size_t i = 0; i < offsets.size(); ++i) t.ledger.Record(b.ids[i], offsets[i]);
  t.batches_acked.fetch_add(1);
}

void Pause(std::mt19937_64& rng) {
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % (kMaxPause.count() * 1000)));
}

// POST /api/events, one batch at a time; an unacknowledged batch is re-sent
// (same ids) until acknowledged.
void HttpProducer(Traffic& t, int index, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int64_t seq = 0;
  const std::string name = fmt::format("http{}", index);
  while (!t.stop.load()) {
    Batch b = MakeBatch(rng, name, &seq);
    bool sent_before = false;
    while (!t.stop.load()) {
      const int port = t.port.load();
      if (port == 0) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (sent_before) t.resends.fetch_add(1);
      sent_before = true;
      auto r = HttpRequest("POST", fmt::format("http://127.0.0.1:{}/api/events", port), b.json,
                           "application/json", 10'000);
      if (!r.ok()) {  // the server died under the request, or is not up yet
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (r->status == 200) {
        rapidjson::Document d;
        d.Parse(r->body.data(), r->body.size());
        RecordAck(t, b, d.HasParseError() ? std::vector<int64_t>{} : OffsetsOf(d), r->body);
        break;
      }
      if (r->status != 503) {
        t.ledger.AddProblem(fmt::format("POST /api/events answered {}: {}", r->status, r->body));
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    Pause(rng);
  }
}

// {"type":"publish"} on a WebSocket that subscribes to nothing; one publish
// in flight; on a dropped connection or timeout, reconnects and re-sends.
void WsProducer(Traffic& t, int index, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int64_t seq = 0;
  int64_t request_id = 0;
  const std::string name = fmt::format("ws{}", index);
  const std::string nothing = UrlEncode(R"({"event_types":["no_such_type"]})");
  std::unique_ptr<WsClient> client;
  while (!t.stop.load()) {
    Batch b = MakeBatch(rng, name, &seq);
    bool sent_before = false;
    while (!t.stop.load()) {
      if (!client || !client->is_open()) {
        client.reset();
        const int port = t.port.load();
        if (port == 0) {
          std::this_thread::sleep_for(5ms);
          continue;
        }
        WsClientOptions options;
        options.connect_timeout_ms = 5'000;
        auto c = WsClient::Connect(fmt::format("ws://127.0.0.1:{}/ws?filter={}", port, nothing),
                                   options);
        if (!c.ok()) {
          std::this_thread::sleep_for(5ms);
          continue;
        }
        client = std::move(*c);
      }
      if (sent_before) t.resends.fetch_add(1);
      sent_before = true;
      const int64_t id = ++request_id;
      if (!client
               ->Send(
                   fmt::format(R"({{"type":"publish","request_id":{},"events":{}}})", id, b.json))
               .ok()) {
        continue;
      }
      bool acked = false, retry = false;
      const auto deadline = Clock::now() + 10s;
      while (!acked && !retry && !t.stop.load()) {
        auto msg = client->Receive(100);
        if (!msg.ok()) {
          if (msg.status().code() != StatusCode::kBusy || Clock::now() > deadline) {
            client.reset();  // closed, or no answer in time: reconnect and re-send
            retry = true;
          }
          continue;
        }
        rapidjson::Document d;
        d.Parse(msg->data(), msg->size());
        if (d.HasParseError() || !d.IsObject() || !d.HasMember("type")) continue;
        const std::string type = d["type"].GetString();
        const bool ours = d.HasMember("request_id") && d["request_id"].IsInt64() &&
                          d["request_id"].GetInt64() == id;
        if (type == "ack" && ours) {
          RecordAck(t, b, OffsetsOf(d), *msg);
          acked = true;
        } else if (type == "error" && ours) {
          const std::string code =
              d.HasMember("code") && d["code"].IsString() ? d["code"].GetString() : "";
          if (code != "unavailable" && code != "overloaded") {
            t.ledger.AddProblem("publish refused: " + *msg);
            acked = true;  // give up on this batch
          } else {
            std::this_thread::sleep_for(5ms);
            retry = true;
          }
        }
      }
      if (acked) break;
    }
    Pause(rng);
  }
}

TEST(CrashTest, SigkillAtRandomMomentsLosesNoAcknowledgedEvent) {
  const uint64_t seed = SeedFromEnvironment();
  std::printf("crash test seed %llu (replay: TAILBUS_CRASH_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("TAILBUS_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);

  TempDir dir("tailbus-crash");
  ASSERT_FALSE(dir.path().empty());
  ServeSpec spec;
  spec.db = (dir.path() / "crash.db").string();
  spec.log = dir.path() / "serve.log";

  auto started = ServeProcess::Start(spec);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<ServeProcess> server = std::move(*started);

  Traffic traffic;
  traffic.port.store(server->port());
  std::vector<std::thread> producers;
  for (int i = 0; i < kHttpProducers; ++i) {
    producers.emplace_back(HttpProducer, std::ref(traffic), i, rng());
  }
  for (int i = 0; i < kWsProducers; ++i) {
    producers.emplace_back(WsProducer, std::ref(traffic), i, rng());
  }
  ResumingSubscriber all(traffic.port, "", /*contiguous=*/true);
  ResumingSubscriber one_session(traffic.port, R"({"session_ids":["s3"]})", /*contiguous=*/false);

  auto stop_all = [&] {
    traffic.stop.store(true);
    for (std::thread& p : producers) p.join();
    producers.clear();
    all.Stop();
    one_session.Stop();
  };

  auto audit = [&](const std::string& when) -> bool {
    // Snapshots first: everything in them was acknowledged (or delivered)
    // before the log is read, so all of it must be in what is read.
    auto acked = traffic.ledger.Snapshot();
    auto seen = all.Seen();
    auto log = ReadLog(server->url());
    EXPECT_TRUE(log.ok()) << when << ": " << log.status().ToString() << "\n" << server->Log();
    if (!log.ok()) return false;
    auto problems = AuditLog(*log, acked, seen);
    EXPECT_TRUE(problems.empty()) << when << ": the log (head " << log->head << ", " << acked.size()
                                  << " acknowledged) is wrong:\n"
                                  << JoinProblems(problems);
    return problems.empty();
  };

  int64_t acked_at_kill = 0;
  for (int kill = 1; kill <= kKills; ++kill) {
    SCOPED_TRACE("kill " + std::to_string(kill));
    // Let this instance acknowledge something, then kill it at a random moment.
    // Both subscribers resume on this instance before it is killed.
    const auto resumed_by = Clock::now() + 30s;
    while ((all.connections() < kill || one_session.connections() < kill) &&
           Clock::now() < resumed_by) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_GE(all.connections(), kill) << "the subscriber did not reconnect";
    ASSERT_GE(one_session.connections(), kill) << "the session subscriber did not reconnect";
    const int64_t before = traffic.batches_acked.load();
    const auto wait_until = Clock::now() + 30s;
    while (traffic.batches_acked.load() == before && Clock::now() < wait_until) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_GT(traffic.batches_acked.load(), before) << "no append was acknowledged within 30 s\n"
                                                    << server->Log();
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 700));
    traffic.port.store(0);
    server->Kill();
    ASSERT_EQ(server->exit_code(), 128 + SIGKILL) << server->Log();
    acked_at_kill = static_cast<int64_t>(traffic.ledger.size());

    const std::string check = IntegrityCheck(spec.db, dir.path() / "check");
    ASSERT_EQ(check, "ok") << "after kill " << kill;

    auto restarted = ServeProcess::Start(spec);
    ASSERT_TRUE(restarted.ok()) << "restart after kill " << kill << ": "
                                << restarted.status().ToString();
    server = std::move(*restarted);
    traffic.port.store(server->port());
    if (!audit(fmt::format("after kill {}", kill))) break;
    std::printf("kill %d: %zu events acknowledged so far, all intact\n", kill,
                traffic.ledger.size());
    std::fflush(stdout);
    ASSERT_TRUE(traffic.ledger.Problems().empty()) << JoinProblems(traffic.ledger.Problems());
  }

  // Calm down: stop publishing, let the subscribers catch up with the head.
  traffic.stop.store(true);
  for (std::thread& p : producers) p.join();
  producers.clear();
  auto status = HttpRequest("GET", server->url() + "/api/status");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  rapidjson::Document st;
  st.Parse(status->body.data(), status->body.size());
  ASSERT_TRUE(st.IsObject() && st.HasMember("head")) << status->body;
  const int64_t head = st["head"].GetInt64();
  const auto deadline = Clock::now() + 60s;
  while (all.last() < head && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(all.last(), head) << "the resuming subscriber did not reach the head";
  // The session subscriber's last offset is its session's last event.
  std::this_thread::sleep_for(200ms);

  const bool log_ok = audit("at the end");
  auto log = ReadLog(server->url());
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  // Session summaries are written in bulk, and rebuilt from the events after
  // each kill: they must still count every event exactly once.
  auto session_problems = AuditSessions(server->url(), *log);
  ASSERT_TRUE(session_problems.ok()) << session_problems.status().ToString();
  EXPECT_TRUE(session_problems->empty()) << "session summaries disagree with the log:\n"
                                         << JoinProblems(*session_problems);
  std::vector<int64_t> s3_in_log;
  for (const LoggedEvent& e : log->events) {
    if (e.session_id == "s3") s3_in_log.push_back(e.offset);
  }
  std::vector<int64_t> s3_seen;
  for (const auto& [offset, id] : one_session.Seen()) s3_seen.push_back(offset);
  EXPECT_EQ(s3_seen, s3_in_log) << "the session subscriber missed or repeated events";
  stop_all();

  EXPECT_TRUE(traffic.ledger.Problems().empty()) << JoinProblems(traffic.ledger.Problems());
  EXPECT_TRUE(all.Problems().empty()) << JoinProblems(all.Problems());
  EXPECT_TRUE(one_session.Problems().empty()) << JoinProblems(one_session.Problems());
  EXPECT_GE(all.connections(), kKills + 1) << "the subscriber should have resumed after each kill";
  EXPECT_EQ(server->Terminate(), 0) << server->Log();
  EXPECT_EQ(IntegrityCheck(spec.db, dir.path() / "check"), "ok");

  std::printf(
      "crash test: %d kills, %zu events acknowledged (%lld by the last kill), head %lld, "
      "%lld batches re-sent after a failure, subscriber reconnected %d times, log %s\n",
      kKills, traffic.ledger.size(), static_cast<long long>(acked_at_kill),
      static_cast<long long>(head), static_cast<long long>(traffic.resends.load()),
      all.connections(), log_ok ? "ok" : "WRONG");
}

}  // namespace
}  // namespace tailbus::reliability
