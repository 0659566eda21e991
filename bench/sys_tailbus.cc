// tailbus under test: `tailbus serve` started by the tool; HTTP/1.1 keep-alive
// producers, WebSocket publishers, epoll WebSocket subscribers.
#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <memory>
#include <thread>
#include <unordered_map>

#include "bench/harness.h"
#include "bench/systems.h"
#include "bench/ws_pool.h"

namespace tailbus::bench {
namespace {

// Live-only connection that receives nothing: a publisher's own connection
// (filter {"event_types":[]} matches no event).
constexpr const char* kPublishPath = "/ws?filter=%7B%22event_types%22%3A%5B%5D%7D";
constexpr const char* kToolCallFilter = "filter=%7B%22event_types%22%3A%5B%22tool_call%22%5D%7D";

struct TbServer {
  Child child;
  int port = 0;
  std::string dir;
  void Start(const Config& cfg, const std::string& tag) {
    static int n = 0;
    dir = cfg.data_dir + "/tailbus-" + tag + "-" + std::to_string(++n);
    RunCapture("mkdir -p '" + dir + "'");
    port = FreePort();
    child = Spawn({cfg.tailbus_bin, "serve", "--db", dir + "/tailbus.db", "--listen",
                   "127.0.0.1:" + std::to_string(port),
                   // Thousands of loopback clients from one address: no abuse limits.
                   "--connection-rate-per-ip", "0", "--publish-rate", "0", "--subscribe-rate", "0",
                   "--max-pending-per-ip", "1000000"},
                  dir + "/server.log", cfg.server_cpu);
    if (!WaitPort(port, 15'000)) Fail("tailbus serve did not start; see " + dir + "/server.log");
  }
  void Stop() { bench::Stop(child); }
  int64_t Head() {
    HttpConn h;
    if (!h.Open(port)) Fail("GET /api/status: connect failed");
    int status = 0;
    std::string body;
    if (!h.Request("GET", "/api/status", "", &status, &body) || status != 200)
      Fail("GET /api/status failed");
    int64_t head = -1;
    if (FindInt(body, "\"head\":", 0, &head) == std::string::npos) Fail("status without head");
    return head;
  }
};

std::string JsonBatch(const IngestCtx& c, int64_t k0, int n, int64_t bt) {
  std::string body = "[";
  for (int i = 0; i < n; ++i) {
    if (i) body += ',';
    body += MakeEvent(c.NextBg(k0 + i), c.cfg->sessions, bt, c.cfg->size);
  }
  body += ']';
  return body;
}

// Waits until `due` (checking `stop` every 100 ms); false when stopping.
bool WaitDue(int64_t due, const std::atomic<bool>& stop) {
  while (true) {
    if (stop.load()) return false;
    const int64_t now = NowNs();
    if (now >= due) return true;
    SleepUntilNs(std::min(due, now + 100'000'000));
  }
}

void HttpProducer(IngestCtx& c, int port) {
  HttpConn h;
  if (!h.Open(port)) Fail("HTTP producer: connect failed");
  const int B = c.cfg->batch;
  std::string resp;
  for (int64_t k = 0;; k += B) {
    int64_t t = NowNs();
    if (c.rate_per_producer > 0) {
      t = c.DueNs(k);
      if (!WaitDue(t, *c.stop)) break;
    } else if (c.stop->load()) {
      break;
    }
    const std::string body = JsonBatch(c, k, B, t);
    int status = 0;
    if (!h.Request("POST", "/api/events", body, &status, &resp))
      Fail("POST /api/events: connection failed");
    if (status != 200) Fail("POST /api/events: HTTP " + std::to_string(status) + ": " + resp);
    int64_t first = 0, last = 0;
    if (FindInt(resp, "\"first\":", 0, &first) == std::string::npos ||
        FindInt(resp, "\"last\":", 0, &last) == std::string::npos || last - first + 1 != B)
      Fail("POST /api/events: bad answer " + resp);
    c.Acked(B, NowNs() - t);
  }
}

void WsProducer(IngestCtx& c, int port) {
  WsConn ws;
  std::string err;
  if (!ws.Open(port, kPublishPath, &err)) Fail("WebSocket producer: " + err);
  const int W = c.cfg->window;
  std::unordered_map<int64_t, int64_t> inflight;  // request_id -> start time
  std::string msg, frame, out;
  int64_t k = 0;
  while (true) {
    const bool stopping = c.stop->load();
    if (stopping && inflight.empty()) break;
    int64_t now = NowNs();
    // Every publish due now, one frame each, written together (as the Redis
    // producer writes its pipeline and nats.c its buffer).
    out.clear();
    while (!stopping && static_cast<int>(inflight.size()) < W) {
      const int64_t due = c.rate_per_producer > 0 ? c.DueNs(k) : now;
      if (due > now) break;
      frame = "{\"type\":\"publish\",\"request_id\":" + std::to_string(k) +
              ",\"event\":" + MakeEvent(c.NextBg(k), c.cfg->sessions, due, c.cfg->size) + "}";
      AppendWsFrame(out, frame);
      inflight[k] = due;
      ++k;
    }
    if (!out.empty() && !ws.SendFramed(out)) Fail("WebSocket producer: send failed");
    if (!ws.Buffered()) {
      int64_t wait_ns = 100'000'000;
      if (c.rate_per_producer > 0 && !stopping && static_cast<int>(inflight.size()) < W)
        wait_ns = std::max<int64_t>(0, c.DueNs(k) - NowNs());
      timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000),
                  static_cast<long>(wait_ns % 1'000'000'000)};
      pollfd pfd{ws.fd(), POLLIN, 0};
      if (ppoll(&pfd, 1, &ts, nullptr) <= 0) continue;
    }
    // One read, then every frame it brought (as the Redis producer drains its
    // replies), so the next batch of publishes goes out together.
    do {
      if (!ws.Read(&msg)) Fail("WebSocket producer: connection closed");
      if (msg.rfind("{\"type\":\"ack\"", 0) == 0) {
        int64_t id = -1;
        FindInt(msg, "\"request_id\":", 0, &id);
        auto it = inflight.find(id);
        if (it == inflight.end()) Fail("WebSocket producer: unexpected ack " + msg);
        c.Acked(1, NowNs() - it->second);
        inflight.erase(it);
      } else if (msg.rfind("{\"type\":\"hello\"", 0) != 0) {
        Fail("WebSocket producer: unexpected frame " + msg.substr(0, 300));
      }
    } while (ws.HasFrame());
  }
}

// ---- fan-out ---------------------------------------------------------------------

struct TbFanout {
  int port = 0;
  const Config* cfg = nullptr;
  WsPool pool;
  Histogram hist;
  std::atomic<int64_t> hellos{0};

  void Subscribe(Tracker& tracker, std::atomic<int64_t>& total) {
    std::vector<std::string> paths;
    for (const auto& s : tracker.subs()) {
      if (s.session >= 0)
        paths.push_back("/ws/events/s" + std::to_string(s.session));
      else if (s.stride == 1)
        paths.push_back("/ws");
      else
        paths.push_back(std::string("/ws?") + kToolCallFilter);
    }
    std::string err;
    if (!pool.Connect(port, paths, &err)) Fail("tailbus fanout: " + err);
    pool.Start([this, &tracker, &total](size_t idx, std::string_view m, int64_t now) {
      if (m.rfind("{\"type\":\"batch\"", 0) == 0 || m.rfind("{\"type\":\"event\"", 0) == 0) {
        size_t p = 0;
        int64_t n = 0;
        while (true) {
          int64_t off = 0, bg = 0, bt = 0;
          p = FindInt(m, "\"offset\":", p, &off);
          if (p == std::string_view::npos) break;
          p = FindInt(m, "\"bg\":", p, &bg);
          if (p == std::string_view::npos)
            Fail("event without bg: " + std::string(m.substr(0, 300)));
          p = FindInt(m, "\"bt\":", p, &bt);
          if (p == std::string_view::npos) Fail("event without bt");
          tracker.OnEvent(idx, bg, bt, off, now, hist);
          ++n;
        }
        total.fetch_add(n, std::memory_order_relaxed);
      } else if (m.rfind("{\"type\":\"hello\"", 0) == 0) {
        hellos.fetch_add(1);
      } else if (m.rfind("{\"type\":\"caught_up\"", 0) != 0) {
        Fail("subscriber " + std::to_string(idx) + ": unexpected frame " +
             std::string(m.substr(0, 300)));
      }
    });
    const int64_t deadline = NowNs() + 30'000'000'000;
    while (hellos.load() < static_cast<int64_t>(paths.size()) && NowNs() < deadline) SleepMs(5);
    if (hellos.load() < static_cast<int64_t>(paths.size()))
      Fail("tailbus fanout: only " + std::to_string(hellos.load()) + " hellos");
  }

  int64_t Publish(const std::function<int64_t(int64_t)>& due, int64_t n) {
    WsConn ws;
    std::string err;
    if (!ws.Open(port, kPublishPath, &err)) Fail("fanout publisher: " + err);
    std::atomic<int64_t> acked{0};
    std::atomic<bool> done{false};
    std::thread reader([&] {
      std::string msg;
      while (acked.load() < n) {
        if (!ws.Read(&msg)) {
          if (!done) Fail("fanout publisher: connection closed");
          return;
        }
        if (msg.rfind("{\"type\":\"ack\"", 0) == 0) {
          const size_t a = msg.find('['), b = msg.find(']');
          if (a == std::string::npos || b == std::string::npos)
            Fail("fanout publisher: bad ack " + msg);
          acked.fetch_add(std::count(msg.begin() + static_cast<long>(a),
                                     msg.begin() + static_cast<long>(b), ',') +
                          1);
        } else if (msg.rfind("{\"type\":\"hello\"", 0) != 0) {
          Fail("fanout publisher: " + msg.substr(0, 300));
        }
      }
    });
    int64_t bg = 0, req = 0;
    std::string frame;
    while (bg < n) {
      SleepUntilNs(due(bg));
      const int64_t now = NowNs();
      frame = "{\"type\":\"publish\",\"request_id\":" + std::to_string(req++) + ",\"events\":[";
      int cnt = 0;
      while (bg < n && due(bg) <= now && cnt < 500) {
        if (cnt++) frame += ',';
        frame += MakeEvent(bg++, cfg->sessions, now, cfg->size);
      }
      frame += "]}";
      if (!ws.Send(frame)) Fail("fanout publisher: send failed");
      SleepUntilNs(now + 1'000'000);  // at most one frame per millisecond
    }
    const int64_t deadline = NowNs() + 20'000'000'000;
    while (acked.load() < n && NowNs() < deadline) SleepMs(5);
    done = true;
    if (acked.load() < n) Fail("fanout publisher: only " + std::to_string(acked.load()) + " acked");
    reader.join();
    return n;
  }
};

// ---- catch-up ------------------------------------------------------------------------

void Populate(int port, const Config& cfg, int64_t m) {
  const int P = 2, B = 1000;
  std::vector<std::thread> th;
  for (int p = 0; p < P; ++p)
    th.emplace_back([&, p] {
      HttpConn h;
      if (!h.Open(port)) Fail("populate: connect");
      std::string resp;
      for (int64_t k = p * B; k < m; k += P * B) {
        std::string body = "[";
        for (int64_t i = k; i < std::min(m, k + B); ++i) {
          if (i != k) body += ',';
          body += MakeEvent(i, cfg.sessions, 0, cfg.size);
        }
        body += ']';
        int status = 0;
        if (!h.Request("POST", "/api/events", body, &status, &resp) || status != 200)
          Fail("populate: POST failed " + std::to_string(status) + " " + resp.substr(0, 200));
      }
    });
  for (auto& t : th) t.join();
}

CatchupRun CatchupOnce(int port, int64_t m) {
  CatchupRun r;
  const int64_t t0 = NowNs();
  WsConn ws;
  std::string err, msg;
  if (!ws.Open(port, "/ws?after=0&batch_size=1000", &err)) Fail("catchup: " + err);
  int64_t last = 0;
  while (true) {
    if (!ws.Read(&msg)) Fail("catchup: connection closed after " + std::to_string(last));
    std::string_view v(msg);
    if (v.rfind("{\"type\":\"batch\"", 0) == 0) {
      if (last == 0) r.first_event_ms = static_cast<double>(NowNs() - t0) / 1e6;
      size_t p = 0;
      int64_t off = 0;
      // Events start with {"offset":N (the frame's own keys are first_/last_offset).
      while ((p = FindInt(v, "{\"offset\":", p, &off)) != std::string_view::npos) {
        if (off != last + 1)
          Fail("catchup: offset " + std::to_string(off) + " after " + std::to_string(last));
        last = off;
        ++r.events;
      }
    } else if (v.rfind("{\"type\":\"caught_up\"", 0) == 0) {
      int64_t at = 0;
      FindInt(v, "\"offset\":", 0, &at);
      if (at != m || last != m)
        Fail("catchup: caught_up at " + std::to_string(at) + ", read up to " +
             std::to_string(last));
      break;
    } else if (v.rfind("{\"type\":\"hello\"", 0) != 0) {
      Fail("catchup: unexpected frame " + msg.substr(0, 300));
    }
  }
  r.seconds = static_cast<double>(NowNs() - t0) / 1e9;
  return r;
}

// ---- connections ------------------------------------------------------------------------

void RaiseNoFile() {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
}

}  // namespace

std::string TailbusVersion(const Config& cfg) {
  return RunCapture(cfg.tailbus_bin + " --version 2>&1");
}

std::vector<Row> RunTailbus(const Config& cfg, const Scenarios& sc) {
  std::vector<Row> rows;
  auto row = [&](const std::string& scenario, const std::string& mode) {
    Row r;
    r.system = "tailbus";
    r.scenario = scenario;
    r.mode = mode;
    r.command = CommandFor(cfg, "tailbus", scenario);
    return r;
  };
  if (sc.count("ingest")) {
    struct Mode {
      std::string name;
      bool http;
      double rate;
    };
    std::vector<Mode> modes = {{"http B=" + std::to_string(cfg.batch) + " saturation", true, 0},
                               {"ws W=" + std::to_string(cfg.window) + " saturation", false, 0}};
    if (cfg.ingest_rate > 0) {
      modes.push_back(
          {"http B=" + std::to_string(cfg.batch) + " fixed rate", true, cfg.ingest_rate});
      modes.push_back(
          {"ws W=" + std::to_string(cfg.window) + " fixed rate", false, cfg.ingest_rate});
    }
    for (const auto& m : modes) {
      TbServer srv;
      srv.Start(cfg, "ingest");
      Row r = row("ingest", m.name);
      const int port = srv.port;
      if (m.http)
        RunIngest(
            cfg, m.rate, [port](IngestCtx& c) { HttpProducer(c, port); }, r);
      else
        RunIngest(
            cfg, m.rate, [port](IngestCtx& c) { WsProducer(c, port); }, r);
      const int64_t head = srv.Head();
      if (head != static_cast<int64_t>(r.Get("total_acked")))
        Fail("tailbus ingest: head " + std::to_string(head) + " != acknowledged " +
             std::to_string(static_cast<int64_t>(r.Get("total_acked"))));
      r.Add("server_rss_mib", static_cast<double>(RssKiB(srv.child.pid)) / 1024);
      srv.Stop();
      PrintRow(r);
      rows.push_back(r);
    }
  }
  if (sc.count("fanout")) {
    for (double rate : cfg.fanout_rates) {
      TbServer srv;
      srv.Start(cfg, "fanout");
      auto f = std::make_unique<TbFanout>();
      f->port = srv.port;
      f->cfg = &cfg;
      FanoutSystem sys;
      sys.hist = &f->hist;
      sys.subscribe = [&](Tracker& t, std::atomic<int64_t>& total) { f->Subscribe(t, total); };
      sys.publish = [&](const std::function<int64_t(int64_t)>& due, int64_t n) {
        return f->Publish(due, n);
      };
      sys.unsubscribe = [&] { f->pool.Stop(); };
      Tracker tracker;
      Row r = row("fanout", "R=" + std::to_string(static_cast<int64_t>(rate)) + "/s");
      RunFanout(cfg, rate, sys, tracker, r);
      srv.Stop();
      PrintRow(r);
      rows.push_back(r);
      // Saturated below the offered rate: a higher rate would only queue.
      if (r.Get("published_s") < 0.9 * rate) break;
    }
  }
  if (sc.count("catchup")) {
    TbServer srv;
    srv.Start(cfg, "catchup");
    Populate(srv.port, cfg, cfg.catchup_events);
    if (srv.Head() != cfg.catchup_events) Fail("catchup: populate head mismatch");
    std::vector<CatchupRun> runs;
    for (int i = 0; i < cfg.catchup_reps; ++i)
      runs.push_back(CatchupOnce(srv.port, cfg.catchup_events));
    Row r = row("catchup", "ws after=0 batch_size=1000");
    AddCatchup(r, runs, cfg.catchup_events);
    srv.Stop();
    PrintRow(r);
    rows.push_back(r);
  }
  if (sc.count("connections")) {
    RaiseNoFile();
    TbServer srv;
    srv.Start(cfg, "conns");
    SleepMs(300);
    const long rss0 = RssKiB(srv.child.pid);
    WsPool pool;
    std::atomic<int64_t> hellos{0};
    std::vector<std::string> paths(static_cast<size_t>(cfg.conns), "/ws");
    const int64_t t0 = NowNs();
    std::string err;
    if (!pool.Connect(srv.port, paths, &err)) Fail("tailbus connections: " + err);
    pool.Start([&](size_t, std::string_view m, int64_t) {
      if (m.rfind("{\"type\":\"hello\"", 0) == 0) hellos.fetch_add(1);
    });
    const int64_t deadline = NowNs() + 60'000'000'000;
    while (hellos.load() < cfg.conns && NowNs() < deadline) SleepMs(5);
    const double connect_s = static_cast<double>(NowNs() - t0) / 1e9;
    if (hellos.load() != cfg.conns)
      Fail("tailbus connections: " + std::to_string(hellos.load()) + " hellos of " +
           std::to_string(cfg.conns));
    SleepMs(2000);  // hold them idle
    const long rss1 = RssKiB(srv.child.pid);
    if (pool.closed() != 0)
      Fail("tailbus connections: " + std::to_string(pool.closed()) + " closed while idle");
    Row r = row("connections", std::to_string(cfg.conns) + " idle /ws");
    r.Add("connections", cfg.conns);
    r.Add("connect_s", connect_s);
    r.Add("rss_before_mib", static_cast<double>(rss0) / 1024);
    r.Add("rss_after_mib", static_cast<double>(rss1) / 1024);
    r.Add("kib_per_conn", static_cast<double>(rss1 - rss0) / cfg.conns);
    pool.Stop();
    srv.Stop();
    PrintRow(r);
    rows.push_back(r);
  }
  return rows;
}

}  // namespace tailbus::bench
