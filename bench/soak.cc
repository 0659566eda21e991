// tailbus-soak: a long run of the real server under churn (`make soak`).
//
//   tailbus-soak --tailbus-bin build/release/cli/tailbus --seconds 300 --clients 1000 --rate 5000
//
// Starts `tailbus serve` on a fresh database (loopback, ephemeral port), then:
// - producers publish --rate events/s over WebSocket (paced batches every
//   10 ms), each event in one of --sessions sessions with a weighted type;
//   every acknowledged offset is entered in a ledger (offset -> session, type);
// - --clients subscribers connect with a random filter (one session, by
//   filter or by the /ws/events/{id} path; one rare event type; or every
//   event), live from the head; each lives a random time (exponential, mean
//   --mean-lifetime), then closes cleanly or drops the TCP connection, waits a
//   little and resumes with ?after=<last offset it was sent> and a NEW random
//   filter;
// - a verifier checks every client's stream against the ledger: each event
//   matches the client's filter, offsets strictly increase (no duplicate), and
//   no matching event between two received ones (or up to a caught_up
//   position) is missing (no gap). hello's `after` must be what the client
//   asked for;
// - the server's RSS (VmRSS, /proc/<pid>/status) is sampled every 5 s.
// Prints a line every 10 s and a summary: RSS after warm-up vs the end, the
// slope after warm-up, gaps, duplicates, filter violations and errors. Exits
// 1 when any correctness figure is non-zero or the RSS grew by more than
// --max-rss-growth after warm-up.
//
// Load-generator code only; never linked into the server.
#include <rapidjson/document.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "ws/client.h"
#include "ws/ws_client.h"

namespace tailbus::bench {
namespace {

// Event types and their weights (percent): "error" and "tool_result" are the
// rare types that type-filtered clients follow.
constexpr const char* kTypes[] = {"message", "tool_call", "tool_result", "error"};
constexpr int kTypeWeights[] = {50, 30, 15, 5};
constexpr int kTypeCount = 4;

struct SoakConfig {
  std::string tailbus_bin = "build/release/cli/tailbus";
  double seconds = 300;
  int clients = 1000;
  double rate = 5000;
  int sessions = 200;
  // RSS must be flat once BOTH hold: warmup_s seconds passed and the log holds
  // warmup_events events. The bounded caches fill first: the hot ring (64 MiB)
  // and SQLite's page cache (256 MiB), i.e. roughly 600k events of ~300 bytes.
  double warmup_s = 120;
  int64_t warmup_events = 600'000;
  double mean_lifetime_s = 20;
  int producers = 2;
  int groups = 4;
  double all_fraction = 0.01;   // clients that take every event
  double type_fraction = 0.04;  // clients that take one rare type
  int event_bytes = 300;
  double max_rss_growth = 0.10;  // after warm-up, relative
  std::string dir;               // database directory (default: a temp dir)
  uint64_t seed = 0;
};

// ---- ledger ----------------------------------------------------------------------

// offset -> (session * kTypeCount + type), filled from acks, which arrive
// in any order. known() is the highest offset up to which every entry is filled.
class Ledger {
 public:
  void Fill(int64_t offset, int32_t attr) {
    std::lock_guard lock(mu_);
    if (static_cast<size_t>(offset) >= attr_.size()) attr_.resize(offset * 2 + 1024, -1);
    if (attr_[offset] != -1) ++conflicts_;
    attr_[offset] = attr;
    max_offset_ = std::max(max_offset_, offset);
    while (static_cast<size_t>(known_ + 1) < attr_.size() && attr_[known_ + 1] != -1) ++known_;
    known_atomic_.store(known_);
  }
  int64_t known() const { return known_atomic_.load(); }
  int64_t max_offset() const {
    std::lock_guard lock(mu_);
    return max_offset_;
  }
  // Valid for offsets <= known(); entries never change once filled.
  int32_t At(int64_t offset) const {
    std::lock_guard lock(mu_);
    return attr_[offset];
  }
  // Copies attributes (from, to] into out; to <= known().
  void Range(int64_t from, int64_t to, std::vector<int32_t>* out) const {
    std::lock_guard lock(mu_);
    out->assign(attr_.begin() + from + 1, attr_.begin() + to + 1);
  }
  int64_t conflicts() const {
    std::lock_guard lock(mu_);
    return conflicts_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<int32_t> attr_ = std::vector<int32_t>(1024, -1);
  int64_t known_ = 0;
  int64_t max_offset_ = 0;
  std::atomic<int64_t> known_atomic_{0};
  int64_t conflicts_ = 0;
};

// ---- filters -----------------------------------------------------------------------

struct ClientFilter {
  enum Kind { kAll, kSession, kType } kind = kAll;
  int value = 0;         // session index or type index
  bool by_path = false;  // kSession: /ws/events/{id} instead of a filter
  bool Matches(int32_t attr) const {
    switch (kind) {
      case kAll:
        return true;
      case kSession:
        return attr / kTypeCount == value;
      case kType:
        return attr % kTypeCount == value;
    }
    return false;
  }
  std::string Path(int port, int64_t after) const {
    std::string base = "ws://127.0.0.1:" + std::to_string(port);
    std::string q = "?after=" + std::to_string(after) + "&batch_size=100";
    switch (kind) {
      case kAll:
        return base + "/ws" + q;
      case kSession:
        if (by_path) return base + "/ws/events/s" + std::to_string(value) + q;
        return base + "/ws" + q +
               "&filter=" + UrlEncode("{\"session_ids\":[\"s" + std::to_string(value) + "\"]}");
      case kType:
        return base + "/ws" + q +
               "&filter=" + UrlEncode(std::string("{\"event_types\":[\"") + kTypes[value] + "\"]}");
    }
    return base;
  }
};

// ---- clients -------------------------------------------------------------------------

// What a connection reported, in order, for the verifier.
struct Token {
  enum Kind { kStart, kHello, kEvent, kPosition, kProblem } kind;
  // start: where the client first joined; hello: after; event: offset;
  // position: caught_up offset
  int64_t value = 0;
  int generation = 0;
  std::string text;  // kProblem
};

struct Client {
  // Driver thread only.
  enum State { kWaiting, kConnecting, kOpen } state = kWaiting;
  std::unique_ptr<WsClient> ws;
  int64_t due_ns = 0;  // kWaiting: when to connect; kOpen: when to leave
  int generation = 0;
  ClientFilter filter;
  std::shared_ptr<WsClientGroup> group;

  // Written by the service thread (on_message), read by the driver.
  std::atomic<int64_t> resume_after{0};

  // Tokens, filled by on_message, drained by the verifier.
  std::mutex mu;
  std::vector<Token> tokens;
  std::map<int, ClientFilter> filters;  // generation -> filter (for the verifier)

  // Verifier thread only.
  std::deque<Token> pending;
  int64_t verified = 0;  // position the verifier has checked up to
  int gen = 0;           // generation being verified
};

struct Totals {
  std::atomic<int64_t> published{0}, publish_errors{0}, deliveries{0}, frames{0};
  std::atomic<int64_t> connects{0}, connect_failures{0}, planned_leaves{0}, drops{0};
  std::atomic<int64_t> gaps{0}, dups{0}, foreign{0}, errors{0}, protocol{0};
  std::mutex mu;
  std::vector<std::string> samples;  // first problems, for the report
  void Sample(std::string s) {
    std::lock_guard lock(mu);
    if (samples.size() < 20) samples.push_back(std::move(s));
  }
};

int64_t FindInt64(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : -1;
}

void OnClientMessage(Client& c, int generation, std::string_view text, Totals& totals) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  std::vector<Token> out;
  int64_t resume = -1;
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("type") || !d["type"].IsString()) {
    out.push_back(
        {Token::kProblem, 0, generation, "not a frame: " + std::string(text.substr(0, 120))});
  } else {
    std::string_view type(d["type"].GetString(), d["type"].GetStringLength());
    if (type == "batch" && d.HasMember("events") && d["events"].IsArray()) {
      totals.frames.fetch_add(1, std::memory_order_relaxed);
      for (const auto& e : d["events"].GetArray()) {
        const int64_t offset = FindInt64(e, "offset");
        out.push_back({Token::kEvent, offset, generation, {}});
        resume = std::max(resume, offset);
      }
      totals.deliveries.fetch_add(static_cast<int64_t>(d["events"].Size()),
                                  std::memory_order_relaxed);
    } else if (type == "hello") {
      out.push_back({Token::kHello, FindInt64(d, "after"), generation, {}});
    } else if (type == "caught_up") {
      const int64_t offset = FindInt64(d, "offset");
      out.push_back({Token::kPosition, offset, generation, {}});
      resume = std::max(resume, offset);
    } else {
      out.push_back({Token::kProblem, 0, generation, std::string(text.substr(0, 200))});
    }
  }
  if (resume > c.resume_after.load(std::memory_order_relaxed)) c.resume_after.store(resume);
  std::lock_guard lock(c.mu);
  for (Token& t : out) c.tokens.push_back(std::move(t));
}

ClientFilter RandomFilter(const SoakConfig& cfg, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  ClientFilter f;
  const double x = u(rng);
  if (x < cfg.all_fraction) {
    f.kind = ClientFilter::kAll;
  } else if (x < cfg.all_fraction + cfg.type_fraction) {
    f.kind = ClientFilter::kType;
    f.value = rng() % 2 == 0 ? 3 : 2;  // error or tool_result
  } else {
    f.kind = ClientFilter::kSession;
    f.value = static_cast<int>(rng() % cfg.sessions);
    f.by_path = rng() % 2 == 0;
  }
  return f;
}

// ---- verifier --------------------------------------------------------------------------

// Checks the tokens of one client that the ledger can judge; leaves the rest.
void VerifyClient(Client& c, const Ledger& ledger, Totals& totals, std::vector<int32_t>& scratch,
                  size_t index) {
  {
    std::lock_guard lock(c.mu);
    for (Token& t : c.tokens) c.pending.push_back(std::move(t));
    c.tokens.clear();
  }
  const int64_t known = ledger.known();
  while (!c.pending.empty()) {
    Token& t = c.pending.front();
    if ((t.kind == Token::kEvent || t.kind == Token::kPosition) && t.value > known) return;
    ClientFilter filter;
    {
      std::lock_guard lock(c.mu);
      filter = c.filters[t.generation];
    }
    auto missing_in = [&](int64_t from, int64_t to) {  // matching offsets in (from, to)
      if (to - 1 <= from) return int64_t{0};
      ledger.Range(from, to - 1, &scratch);
      int64_t n = 0;
      for (int32_t a : scratch) n += filter.Matches(a) ? 1 : 0;
      return n;
    };
    switch (t.kind) {
      case Token::kStart:
        c.verified = t.value;
        break;
      case Token::kHello:
        if (t.value != c.verified) {
          totals.protocol.fetch_add(1);
          totals.Sample("client " + std::to_string(index) + ": hello after=" +
                        std::to_string(t.value) + ", expected " + std::to_string(c.verified));
        }
        break;
      case Token::kEvent: {
        if (t.value <= c.verified) {
          totals.dups.fetch_add(1);
          totals.Sample("client " + std::to_string(index) + ": offset " + std::to_string(t.value) +
                        " after " + std::to_string(c.verified));
          break;
        }
        if (!filter.Matches(ledger.At(t.value))) {
          totals.foreign.fetch_add(1);
          totals.Sample("client " + std::to_string(index) + ": offset " + std::to_string(t.value) +
                        " does not match its filter");
        }
        const int64_t gaps = missing_in(c.verified, t.value);
        if (gaps > 0) {
          totals.gaps.fetch_add(gaps);
          totals.Sample("client " + std::to_string(index) + ": " + std::to_string(gaps) +
                        " matching events missing between " + std::to_string(c.verified) + " and " +
                        std::to_string(t.value));
        }
        c.verified = t.value;
        break;
      }
      case Token::kPosition: {
        if (t.value > c.verified) {
          const int64_t gaps = missing_in(c.verified, t.value + 1);
          if (gaps > 0) {
            totals.gaps.fetch_add(gaps);
            totals.Sample("client " + std::to_string(index) + ": caught_up at " +
                          std::to_string(t.value) + " but " + std::to_string(gaps) +
                          " matching events after " + std::to_string(c.verified) +
                          " were never sent");
          }
          c.verified = t.value;
        }
        break;
      }
      case Token::kProblem:
        totals.errors.fetch_add(1);
        totals.Sample("client " + std::to_string(index) + ": " + t.text);
        break;
    }
    c.pending.pop_front();
  }
}

// ---- producers ------------------------------------------------------------------------

void Producer(const SoakConfig& cfg, int port, int index, std::atomic<bool>& stop, Ledger& ledger,
              Totals& totals) {
  std::mt19937_64 rng(cfg.seed * 7919 + index);
  const std::string nothing = UrlEncode(R"({"event_types":["no_such_type"]})");
  auto conn = WsClient::Connect("ws://127.0.0.1:" + std::to_string(port) + "/ws?filter=" + nothing);
  if (!conn.ok()) Fail("producer: " + conn.status().ToString());
  std::unique_ptr<WsClient> ws = std::move(*conn);
  const double rate = cfg.rate / cfg.producers;
  constexpr int64_t kTickNs = 10'000'000;  // a batch every 10 ms
  const int64_t start = NowNs();
  int64_t sent = 0, request = 0;
  std::map<int64_t, std::vector<int32_t>> inflight;  // request id -> attributes
  const std::string padding(std::max(0, cfg.event_bytes - 120), 'p');
  int64_t next_tick = start;
  while (!stop.load()) {
    const int64_t now = NowNs();
    if (now >= next_tick) {
      const int64_t due = static_cast<int64_t>((now - start) / 1e9 * rate);
      if (due > sent) {
        std::string json =
            "{\"type\":\"publish\",\"request_id\":" + std::to_string(++request) + ",\"events\":[";
        std::vector<int32_t>& attrs = inflight[request];
        for (int64_t i = sent; i < due; ++i) {
          const int session = static_cast<int>(rng() % cfg.sessions);
          int roll = static_cast<int>(rng() % 100), type = 0;
          while (roll >= kTypeWeights[type]) roll -= kTypeWeights[type++];
          if (i > sent) json += ',';
          json += "{\"session_id\":\"s" + std::to_string(session) + "\",\"type\":\"" +
                  kTypes[type] + "\",\"content\":\"" + padding + "\"}";
          attrs.push_back(session * kTypeCount + type);
        }
        json += "]}";
        if (!ws->Send(json).ok()) Fail("producer: the connection closed");
        sent = due;
      }
      next_tick += kTickNs;
    }
    auto msg = ws->Receive(static_cast<int>(std::max<int64_t>(0, next_tick - NowNs()) / 1'000'000));
    if (!msg.ok()) {
      if (msg.status().code() == StatusCode::kBusy) continue;
      Fail("producer: " + msg.status().ToString());
    }
    rapidjson::Document d;
    d.Parse(msg->data(), msg->size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("type")) continue;
    const int64_t id = FindInt64(d, "request_id");
    auto it = inflight.find(id);
    if (it == inflight.end()) continue;
    if (std::string_view(d["type"].GetString()) == "ack" && d["offsets"].IsArray() &&
        d["offsets"].Size() == it->second.size()) {
      for (rapidjson::SizeType i = 0; i < d["offsets"].Size(); ++i) {
        ledger.Fill(d["offsets"][i].GetInt64(), it->second[i]);
      }
      totals.published.fetch_add(static_cast<int64_t>(it->second.size()));
    } else {
      totals.publish_errors.fetch_add(1);
      totals.Sample("publish: " + *msg);
    }
    inflight.erase(it);
  }
  // Let the last acks arrive.
  // The server may hold a backlog when the machine is slower than --rate.
  const int64_t until = NowNs() + 120'000'000'000;
  while (!inflight.empty() && NowNs() < until) {
    auto msg = ws->Receive(100);
    if (!msg.ok()) {
      if (msg.status().code() == StatusCode::kBusy) continue;
      break;
    }
    rapidjson::Document d;
    d.Parse(msg->data(), msg->size());
    const int64_t id = d.IsObject() ? FindInt64(d, "request_id") : -1;
    auto it = inflight.find(id);
    if (it == inflight.end()) continue;
    if (d.HasMember("offsets") && d["offsets"].IsArray()) {
      for (rapidjson::SizeType i = 0; i < d["offsets"].Size(); ++i) {
        ledger.Fill(d["offsets"][i].GetInt64(), it->second[i]);
      }
      totals.published.fetch_add(static_cast<int64_t>(it->second.size()));
    }
    inflight.erase(it);
  }
}

// ---- RSS -------------------------------------------------------------------------------

struct RssSample {
  double t = 0;
  double mib = 0;
  int64_t head = 0;
};

// Least-squares slope of mib over t, MiB per minute.
double SlopePerMinute(const std::vector<RssSample>& s) {
  if (s.size() < 2) return 0;
  double mt = 0, mm = 0;
  for (const auto& x : s) mt += x.t, mm += x.mib;
  mt /= s.size();
  mm /= s.size();
  double num = 0, den = 0;
  for (const auto& x : s) num += (x.t - mt) * (x.mib - mm), den += (x.t - mt) * (x.t - mt);
  return den > 0 ? num / den * 60 : 0;
}

int Run(SoakConfig cfg) {
  if (cfg.seed == 0) cfg.seed = std::random_device{}();
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  namespace fs = std::filesystem;
  std::string dir = cfg.dir;
  bool own_dir = false;
  if (dir.empty()) {
    std::string tmpl = "/var/tmp/tailbus-soak.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp failed");
    dir = tmpl;
    own_dir = true;
  }
  const int port = FreePort();
  Child server = Spawn({cfg.tailbus_bin, "serve", "--db", dir + "/soak.db", "--listen",
                        "127.0.0.1:" + std::to_string(port)},
                       dir + "/serve.log", -1);
  if (!WaitPort(port, 30'000)) Fail("tailbus serve did not start; see " + dir + "/serve.log");
  std::printf("tailbus-soak: server pid %d on port %d, db %s/soak.db, seed %llu\n", server.pid,
              port, dir.c_str(), static_cast<unsigned long long>(cfg.seed));
  std::printf(
      "  %.0f s, %d clients (mean lifetime %.0f s), %.0f events/s in %d sessions, "
      "warm-up %.0f s\n",
      cfg.seconds, cfg.clients, cfg.mean_lifetime_s, cfg.rate, cfg.sessions, cfg.warmup_s);
  std::fflush(stdout);

  Ledger ledger;
  Totals totals;
  std::atomic<bool> stop_producers{false}, stop{false};
  std::vector<std::thread> producers;
  for (int i = 0; i < cfg.producers; ++i) {
    producers.emplace_back(Producer, std::cref(cfg), port, i, std::ref(stop_producers),
                           std::ref(ledger), std::ref(totals));
  }

  std::vector<std::shared_ptr<WsClientGroup>> groups;
  for (int g = 0; g < cfg.groups; ++g) {
    auto group = WsClientGroup::Create();
    if (!group.ok()) Fail(group.status().ToString());
    groups.push_back(*group);
  }
  std::vector<std::unique_ptr<Client>> clients;
  std::mt19937_64 rng(cfg.seed);
  const int64_t t0 = NowNs();
  for (int i = 0; i < cfg.clients; ++i) {
    auto c = std::make_unique<Client>();
    c->group = groups[static_cast<size_t>(i) % groups.size()];
    // Spread the first connections over the first 5 s.
    c->due_ns = t0 + static_cast<int64_t>(rng() % 5'000'000'000);
    clients.push_back(std::move(c));
  }

  // The driver: connects, ends lives, reconnects.
  std::thread driver([&] {
    std::exponential_distribution<double> life(1.0 / cfg.mean_lifetime_s);
    while (!stop.load()) {
      const int64_t now = NowNs();
      for (size_t i = 0; i < clients.size(); ++i) {
        Client& c = *clients[i];
        if (c.state == Client::kWaiting && now >= c.due_ns) {
          ++c.generation;
          c.filter = RandomFilter(cfg, rng);
          int64_t after = c.resume_after.load();
          if (c.generation == 1) {
            after = ledger.known();  // live from (about) the head
            c.resume_after.store(after);
          }
          {
            std::lock_guard lock(c.mu);
            c.filters[c.generation] = c.filter;
            // The verifier starts checking this client where it joined.
            if (c.generation == 1) c.tokens.push_back({Token::kStart, after, 0, {}});
          }
          WsClientOptions options;
          options.connect_timeout_ms = 20'000;
          const int gen = c.generation;
          Client* cp = &c;
          options.on_message = [cp, gen, &totals](std::string_view m) {
            OnClientMessage(*cp, gen, m, totals);
          };
          auto ws = WsClient::StartConnect(c.group, c.filter.Path(port, after), options);
          if (!ws.ok()) {
            totals.connect_failures.fetch_add(1);
            totals.Sample("connect: " + ws.status().ToString());
            c.due_ns = now + 1'000'000'000;
            continue;
          }
          c.ws = std::move(*ws);
          c.state = Client::kConnecting;
        } else if (c.state == Client::kConnecting) {
          Status st = c.ws->WaitConnected(0);
          if (st.code() == StatusCode::kBusy) continue;
          if (!st.ok()) {
            totals.connect_failures.fetch_add(1);
            totals.Sample("connect: " + st.ToString());
            c.ws.reset();
            c.state = Client::kWaiting;
            c.due_ns = now + 1'000'000'000;
            continue;
          }
          totals.connects.fetch_add(1);
          c.state = Client::kOpen;
          c.due_ns = now + static_cast<int64_t>(life(rng) * 1e9);
        } else if (c.state == Client::kOpen) {
          if (!c.ws->is_open()) {
            auto info = c.ws->close_info();
            totals.drops.fetch_add(1);
            totals.Sample("client " + std::to_string(i) + " dropped by the server: close " +
                          std::to_string(info ? info->code : 0) + " " +
                          (info ? info->reason + info->error : std::string()));
            c.ws.reset();
            c.state = Client::kWaiting;
            c.due_ns = now + 100'000'000;
          } else if (now >= c.due_ns) {
            totals.planned_leaves.fetch_add(1);
            if (rng() % 2 == 0) {
              c.ws->Abort();  // a network failure
            } else {
              (void)c.ws->Close(1000, "", 0);
            }
            c.ws.reset();
            c.state = Client::kWaiting;
            c.due_ns = now + static_cast<int64_t>(rng() % 500'000'000);
          }
        }
      }
      SleepMs(20);
    }
  });

  // The verifier.
  std::thread verifier([&] {
    std::vector<int32_t> scratch;
    while (!stop.load()) {
      for (size_t i = 0; i < clients.size(); ++i) {
        VerifyClient(*clients[i], ledger, totals, scratch, i);
      }
      SleepMs(200);
    }
  });

  // The clock: RSS samples and progress lines.
  std::vector<RssSample> samples;
  const int64_t end = t0 + static_cast<int64_t>(cfg.seconds * 1e9);
  int64_t next_sample = t0;
  int64_t next_line = t0 + 10'000'000'000;
  while (NowNs() < end) {
    const int64_t now = NowNs();
    if (now >= next_sample) {
      samples.push_back({(now - t0) / 1e9, RssKiB(server.pid) / 1024.0, ledger.known()});
      next_sample += 5'000'000'000;
    }
    if (now >= next_line) {
      std::printf(
          "t=%4.0fs rss=%7.1f MiB head=%9lld rate=%6.0f/s deliveries=%10lld connects=%7lld "
          "drops=%lld gaps=%lld dups=%lld foreign=%lld errors=%lld\n",
          (now - t0) / 1e9, samples.back().mib, static_cast<long long>(ledger.known()),
          ledger.known() / ((now - t0) / 1e9), static_cast<long long>(totals.deliveries.load()),
          static_cast<long long>(totals.connects.load()),
          static_cast<long long>(totals.drops.load()), static_cast<long long>(totals.gaps.load()),
          static_cast<long long>(totals.dups.load()), static_cast<long long>(totals.foreign.load()),
          static_cast<long long>(totals.errors.load() + totals.protocol.load() +
                                 totals.publish_errors.load() + totals.connect_failures.load()));
      std::fflush(stdout);
      next_line += 10'000'000'000;
    }
    SleepMs(100);
  }
  const double elapsed = (NowNs() - t0) / 1e9;
  stop_producers.store(true);
  for (auto& p : producers) p.join();
  // Every acknowledged offset known, and the subscribers have the tail.
  for (int i = 0; i < 300 && ledger.known() < ledger.max_offset(); ++i) SleepMs(100);
  SleepMs(2000);
  stop.store(true);
  driver.join();
  verifier.join();
  // Final verification of whatever arrived.
  {
    std::vector<int32_t> scratch;
    for (size_t i = 0; i < clients.size(); ++i)
      VerifyClient(*clients[i], ledger, totals, scratch, i);
  }
  int64_t unverified = 0;
  for (auto& c : clients) unverified += static_cast<int64_t>(c->pending.size());
  for (auto& c : clients) c->ws.reset();
  clients.clear();
  groups.clear();
  const long final_rss = RssKiB(server.pid);
  Stop(server);

  // RSS after warm-up.
  std::vector<RssSample> after;
  for (const auto& s : samples) {
    if (s.t >= cfg.warmup_s && s.head >= cfg.warmup_events) after.push_back(s);
  }
  double warm = after.empty() ? 0 : after.front().mib;
  double peak = 0, last = after.empty() ? 0 : after.back().mib;
  for (const auto& s : after) peak = std::max(peak, s.mib);
  const double growth = warm > 0 ? (last - warm) / warm : 0;

  std::printf("\nRSS of tailbus serve (MiB) every 5 s:\n");
  for (size_t i = 0; i < samples.size(); ++i) {
    std::printf("  t=%4.0fs %7.1f MiB head=%lld%s", samples[i].t, samples[i].mib,
                static_cast<long long>(samples[i].head), i % 3 == 2 ? "\n" : "");
  }
  std::printf("\n\nsummary (%.0f s, seed %llu):\n", elapsed,
              static_cast<unsigned long long>(cfg.seed));
  std::printf("  events published (acked)   %lld (%.0f/s)\n",
              static_cast<long long>(totals.published.load()), totals.published.load() / elapsed);
  std::printf("  deliveries                 %lld in %lld frames\n",
              static_cast<long long>(totals.deliveries.load()),
              static_cast<long long>(totals.frames.load()));
  std::printf(
      "  connections                %lld (%lld planned leaves: half clean close, half "
      "dropped TCP)\n",
      static_cast<long long>(totals.connects.load()),
      static_cast<long long>(totals.planned_leaves.load()));
  std::printf(
      "  RSS after warm-up (from t=%.0f s)  %.1f MiB; end %.1f MiB; peak %.1f MiB; growth "
      "%+.1f%%; slope %+.2f MiB/min; at exit %.1f MiB\n",
      after.empty() ? 0.0 : after.front().t, warm, last, peak, growth * 100, SlopePerMinute(after),
      final_rss / 1024.0);
  std::printf("  gaps %lld, duplicates %lld, filter violations %lld\n",
              static_cast<long long>(totals.gaps.load()),
              static_cast<long long>(totals.dups.load()),
              static_cast<long long>(totals.foreign.load()));
  std::printf(
      "  errors: frames %lld, protocol %lld, publish %lld, connect failures %lld, drops by "
      "the server %lld, ledger conflicts %lld, unverified tokens %lld\n",
      static_cast<long long>(totals.errors.load()), static_cast<long long>(totals.protocol.load()),
      static_cast<long long>(totals.publish_errors.load()),
      static_cast<long long>(totals.connect_failures.load()),
      static_cast<long long>(totals.drops.load()), static_cast<long long>(ledger.conflicts()),
      static_cast<long long>(unverified));
  std::printf("  ledger: every offset up to %lld acknowledged; highest acknowledged %lld\n",
              static_cast<long long>(ledger.known()), static_cast<long long>(ledger.max_offset()));
  for (const auto& s : totals.samples) std::printf("  ! %s\n", s.c_str());
  if (own_dir) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  const bool correct = totals.gaps.load() == 0 && totals.dups.load() == 0 &&
                       totals.foreign.load() == 0 && totals.errors.load() == 0 &&
                       totals.protocol.load() == 0 && totals.publish_errors.load() == 0 &&
                       totals.connect_failures.load() == 0 && totals.drops.load() == 0 &&
                       ledger.conflicts() == 0 && unverified == 0;
  const bool flat = after.size() >= 2 && growth <= cfg.max_rss_growth;
  std::printf("verdict: %s, RSS %s\n", correct ? "no gap, no duplicate, no error" : "FAILED",
              flat ? "flat after warm-up" : "GREW after warm-up");
  return correct && flat ? 0 : 1;
}

}  // namespace
}  // namespace tailbus::bench

int main(int argc, char** argv) {
  tailbus::bench::SoakConfig cfg;
  CLI::App app{"tailbus-soak: churn of resuming subscribers under steady publishing"};
  app.add_option("--tailbus-bin", cfg.tailbus_bin, "the tailbus executable")->capture_default_str();
  app.add_option("--seconds", cfg.seconds, "run time")->capture_default_str();
  app.add_option("--clients", cfg.clients, "subscribers")->capture_default_str();
  app.add_option("--rate", cfg.rate, "events/s published")->capture_default_str();
  app.add_option("--sessions", cfg.sessions, "sessions the events spread over")
      ->capture_default_str();
  app.add_option("--warmup", cfg.warmup_s, "seconds before RSS must stay flat")
      ->capture_default_str();
  app.add_option("--warmup-events", cfg.warmup_events,
                 "log size (events) before RSS must stay flat")
      ->capture_default_str();
  app.add_option("--mean-lifetime", cfg.mean_lifetime_s, "mean seconds a connection lives")
      ->capture_default_str();
  app.add_option("--producers", cfg.producers, "publishing connections")->capture_default_str();
  app.add_option("--groups", cfg.groups, "client service threads")->capture_default_str();
  app.add_option("--all-fraction", cfg.all_fraction, "share of clients taking every event")
      ->capture_default_str();
  app.add_option("--type-fraction", cfg.type_fraction, "share of clients following a rare type")
      ->capture_default_str();
  app.add_option("--event-bytes", cfg.event_bytes, "approximate event size")->capture_default_str();
  app.add_option("--max-rss-growth", cfg.max_rss_growth, "allowed RSS growth after warm-up")
      ->capture_default_str();
  app.add_option("--dir", cfg.dir, "database directory (default: a new temp dir, removed)");
  app.add_option("--seed", cfg.seed, "random seed (0: random)");
  CLI11_PARSE(app, argc, argv);
  try {
    return tailbus::bench::Run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tailbus-soak: %s\n", e.what());
    return 2;
  }
}
