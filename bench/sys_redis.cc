// Redis Streams under test (redis-server 7.0, appendonly yes, appendfsync
// everysec, RDB snapshots off, 127.0.0.1 only). One stream per session
// ("s<i>"), like one JetStream subject per session; the fan-out run also
// appends every event to a global stream "all" (same pipeline) for the
// all-session subscribers, and catch-up reads one stream of M entries with
// XRANGE ... COUNT 1000. Client: hiredis's reply parser over plain sockets.
// GCC 12 reports a false -Wrestrict inside std::string (GCC bug 105329) here.
#pragma GCC diagnostic ignored "-Wrestrict"
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <deque>
#include <memory>
#include <thread>

#include "bench/harness.h"
#include "bench/systems.h"

namespace tailbus::bench {
namespace {

std::string Cmd(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char* out = nullptr;
  int n = redisvFormatCommand(&out, fmt, ap);
  va_end(ap);
  std::string s(out, static_cast<size_t>(n));
  redisFreeCommand(out);
  return s;
}

// A plain socket plus hiredis's RESP reader.
struct RConn {
  int fd = -1;
  redisReader* reader = nullptr;
  ~RConn() {
    if (reader) redisReaderFree(reader);
    if (fd >= 0) close(fd);
  }
  void Open(int port) {
    fd = TcpConnect(port);
    if (fd < 0) Fail("redis: connect failed");
    reader = redisReaderCreate();
  }
  void Send(const std::string& s) {
    if (!WriteAll(fd, s.data(), s.size())) Fail("redis: write failed");
  }
  // Next reply (blocking unless wait_ms given: nullptr on timeout).
  redisReply* Next(int wait_ms = -1) {
    char buf[1 << 16];
    while (true) {
      void* r = nullptr;
      if (redisReaderGetReply(reader, &r) != REDIS_OK) Fail("redis: protocol error");
      if (r) return static_cast<redisReply*>(r);
      if (wait_ms >= 0) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, wait_ms) <= 0) return nullptr;
      }
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) Fail("redis: connection closed");
      redisReaderFeed(reader, buf, static_cast<size_t>(n));
    }
  }
};

struct RedisServer {
  Child child;
  int port = 0;
  std::string dir;
  void Start(const Config& cfg, const std::string& tag) {
    static int n = 0;
    dir = cfg.data_dir + "/redis-" + tag + "-" + std::to_string(++n);
    RunCapture("mkdir -p '" + dir + "'");
    port = FreePort();
    child = Spawn({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--dir",
                   dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                   "--daemonize", "no", "--maxclients", "20000", "--logfile", ""},
                  dir + "/server.log", cfg.server_cpu);
    if (!WaitPort(port, 15'000)) Fail("redis-server did not start; see " + dir + "/server.log");
  }
  void Stop() { bench::Stop(child); }
  int64_t TotalLen(int sessions) {
    RConn c;
    c.Open(port);
    std::string all;
    for (int i = 0; i < sessions; ++i) all += Cmd("XLEN s%d", i);
    c.Send(all);
    int64_t total = 0;
    for (int i = 0; i < sessions; ++i) {
      redisReply* r = c.Next();
      total += r->integer;
      freeReplyObject(r);
    }
    return total;
  }
};

std::string EntryId(const redisReply* r) { return std::string(r->str, r->len); }
// Stream ids "ms-seq" compare numerically.
bool IdLess(const std::string& a, const std::string& b) {
  unsigned long long am = 0, as = 0, bm = 0, bs = 0;
  std::sscanf(a.c_str(), "%llu-%llu", &am, &as);
  std::sscanf(b.c_str(), "%llu-%llu", &bm, &bs);
  return am < bm || (am == bm && as < bs);
}

void Producer(IngestCtx& c, int port) {
  RConn r;
  r.Open(port);
  const int W = c.cfg->window;
  std::deque<int64_t> inflight;  // start times, FIFO
  int64_t k = 0;
  while (true) {
    const bool stopping = c.stop->load();
    if (stopping && inflight.empty()) break;
    const int64_t now = NowNs();
    std::string out;
    while (!stopping && static_cast<int>(inflight.size()) < W) {
      const int64_t due = c.rate_per_producer > 0 ? c.DueNs(k) : now;
      if (due > now) break;
      const int64_t bg = c.NextBg(k);
      const std::string ev = MakeEvent(bg, c.cfg->sessions, due, c.cfg->size);
      out += Cmd("XADD s%lld * d %b", static_cast<long long>(SessionOf(bg, c.cfg->sessions)),
                 ev.data(), ev.size());
      inflight.push_back(due);
      ++k;
    }
    if (!out.empty()) r.Send(out);
    int wait = 100;
    if (c.rate_per_producer > 0 && !stopping && static_cast<int>(inflight.size()) < W)
      wait = static_cast<int>(std::max<int64_t>(0, (c.DueNs(k) - NowNs()) / 1'000'000));
    if (inflight.empty()) {
      if (wait > 0) SleepMs(std::min(wait, 100));
      continue;
    }
    redisReply* rep = r.Next(wait);
    while (rep) {
      if (rep->type != REDIS_REPLY_STRING) Fail("redis XADD: unexpected reply");
      freeReplyObject(rep);
      c.Acked(1, NowNs() - inflight.front());
      inflight.pop_front();
      if (inflight.empty()) break;
      rep = r.Next(0);
    }
  }
}

// ---- fan-out: every subscriber is one connection blocked in XREAD ----------------

struct RedisFanout {
  int port = 0;
  const Config* cfg = nullptr;
  Histogram hist;
  struct Sub {
    RConn c;
    std::string key, last = "$";
    bool tool_only = false;
  };
  std::vector<std::unique_ptr<Sub>> subs;
  int ep = -1;
  std::atomic<bool> stop{false};
  std::thread loop;

  void Request(Sub& s) {
    s.c.Send(Cmd("XREAD COUNT 1000 BLOCK 0 STREAMS %s %s", s.key.c_str(), s.last.c_str()));
  }

  void Subscribe(Tracker& t, std::atomic<int64_t>& total) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < t.subs().size(); ++i) {
      const SubTrack& st = t.subs()[i];
      auto s = std::make_unique<Sub>();
      s->c.Open(port);
      s->key = "all";
      if (st.session >= 0) {
        s->key = "s";
        s->key += std::to_string(st.session);
      }
      s->tool_only = st.session < 0 && st.stride == 4;
      // Fix the starting id now (XREAD with $ is evaluated when the call blocks).
      s->c.Send(Cmd("XADD %s * init 1", s->key.c_str()));
      redisReply* r = s->c.Next();
      s->last = EntryId(r);
      freeReplyObject(r);
      Request(*s);
      fcntl(s->c.fd, F_SETFL, fcntl(s->c.fd, F_GETFL) | O_NONBLOCK);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(ep, EPOLL_CTL_ADD, s->c.fd, &ev);
      subs.push_back(std::move(s));
    }
    SleepMs(200);  // let every XREAD block
    loop = std::thread([this, &t, &total] {
      std::vector<epoll_event> evs(512);
      char buf[1 << 16];
      while (!stop.load()) {
        int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 20);
        for (int k = 0; k < n; ++k) {
          const size_t i = evs[static_cast<size_t>(k)].data.u64;
          Sub& s = *subs[i];
          while (true) {
            ssize_t r = recv(s.c.fd, buf, sizeof buf, 0);
            if (r <= 0) break;
            redisReaderFeed(s.c.reader, buf, static_cast<size_t>(r));
          }
          const int64_t now = NowNs();
          void* vr = nullptr;
          while (redisReaderGetReply(s.c.reader, &vr) == REDIS_OK && vr) {
            auto* rep = static_cast<redisReply*>(vr);
            if (rep->type != REDIS_REPLY_ARRAY) Fail("redis XREAD: unexpected reply");
            int64_t cnt = 0;
            const redisReply* entries = rep->element[0]->element[1];
            for (size_t e = 0; e < entries->elements; ++e) {
              const redisReply* en = entries->element[e];
              const std::string id = EntryId(en->element[0]);
              if (!IdLess(s.last, id)) t.subs()[i].bad_offsets++;
              s.last = id;
              const redisReply* fv = en->element[1];
              std::string_view v(fv->element[1]->str, fv->element[1]->len);
              int64_t bg = 0, bt = 0;
              if (FindInt(v, "\"bg\":", 0, &bg) == std::string_view::npos) continue;
              FindInt(v, "\"bt\":", 0, &bt);
              if (s.tool_only && !IsToolCall(bg)) continue;  // filtered on the client
              t.OnEvent(i, bg, bt, 0, now, hist);
              ++cnt;
            }
            total.fetch_add(cnt);
            freeReplyObject(rep);
            Request(s);
          }
        }
      }
    });
  }

  int64_t Publish(const std::function<int64_t(int64_t)>& due, int64_t n) {
    RConn c;
    c.Open(port);
    std::atomic<int64_t> replies{0};
    std::thread reader([&] {
      while (replies.load() < 2 * n) {
        redisReply* r = c.Next();
        if (r->type != REDIS_REPLY_STRING) Fail("redis fanout XADD failed");
        freeReplyObject(r);
        replies.fetch_add(1);
      }
    });
    int64_t bg = 0;
    while (bg < n) {
      SleepUntilNs(due(bg));
      const int64_t now = NowNs();
      std::string out;
      while (bg < n && due(bg) <= now) {
        const std::string ev = MakeEvent(bg, cfg->sessions, now, cfg->size);
        out += Cmd("XADD s%lld * d %b", static_cast<long long>(SessionOf(bg, cfg->sessions)),
                   ev.data(), ev.size());
        out += Cmd("XADD all * d %b", ev.data(), ev.size());
        ++bg;
      }
      c.Send(out);
      SleepUntilNs(now + 1'000'000);
    }
    reader.join();
    return n;
  }

  void Unsubscribe() {
    stop = true;
    if (loop.joinable()) loop.join();
    subs.clear();
    if (ep >= 0) close(ep);
  }
};

CatchupRun Catchup(int port) {
  CatchupRun res;
  const int64_t t0 = NowNs();
  RConn c;
  c.Open(port);
  std::string from = "-";
  int64_t expect_bg = 0;
  while (true) {
    c.Send(Cmd("XRANGE all %s + COUNT 1000", from.c_str()));
    redisReply* r = c.Next();
    if (r->type != REDIS_REPLY_ARRAY) Fail("redis XRANGE failed");
    if (r->elements == 0) {
      freeReplyObject(r);
      break;
    }
    if (res.events == 0) res.first_event_ms = static_cast<double>(NowNs() - t0) / 1e6;
    for (size_t e = 0; e < r->elements; ++e) {
      const redisReply* en = r->element[e];
      std::string_view v(en->element[1]->element[1]->str, en->element[1]->element[1]->len);
      int64_t bg = -1;
      FindInt(v, "\"bg\":", 0, &bg);
      if (bg != expect_bg)
        Fail("redis catchup: bg " + std::to_string(bg) + " expected " + std::to_string(expect_bg));
      ++expect_bg;
      ++res.events;
    }
    from = "(";
    from += EntryId(r->element[r->elements - 1]->element[0]);
    freeReplyObject(r);
  }
  res.seconds = static_cast<double>(NowNs() - t0) / 1e9;
  return res;
}

void Populate(int port, const Config& cfg, int64_t m) {
  RConn c;
  c.Open(port);
  for (int64_t k = 0; k < m; k += 1000) {
    std::string out;
    const int64_t e = std::min(m, k + 1000);
    for (int64_t i = k; i < e; ++i) {
      const std::string ev = MakeEvent(i, cfg.sessions, 0, cfg.size);
      out += Cmd("XADD all * d %b", ev.data(), ev.size());
    }
    c.Send(out);
    for (int64_t i = k; i < e; ++i) freeReplyObject(c.Next());
  }
}

}  // namespace

// Idle raw connections (NATS and Redis): hello exchange, then held.
std::vector<int> OpenIdle(int port, int n, const std::string& hello, const std::string& expect,
                          double* seconds);

std::vector<Row> RunRedis(const Config& cfg, const Scenarios& sc) {
  std::vector<Row> rows;
  auto row = [&](const std::string& scenario, const std::string& mode) {
    Row r;
    r.system = "redis";
    r.scenario = scenario;
    r.mode = mode;
    r.command = CommandFor(cfg, "redis", scenario);
    r.note = "appendonly yes, appendfsync everysec";
    return r;
  };
  if (sc.count("ingest")) {
    std::vector<std::pair<std::string, double>> modes = {
        {"XADD pipeline W=" + std::to_string(cfg.window) + " saturation", 0}};
    if (cfg.ingest_rate > 0)
      modes.push_back(
          {"XADD pipeline W=" + std::to_string(cfg.window) + " fixed rate", cfg.ingest_rate});
    for (const auto& [name, rate] : modes) {
      RedisServer srv;
      srv.Start(cfg, "ingest");
      Row r = row("ingest", name);
      const int port = srv.port;
      RunIngest(
          cfg, rate, [port](IngestCtx& c) { Producer(c, port); }, r);
      const int64_t len = srv.TotalLen(cfg.sessions);
      if (len != static_cast<int64_t>(r.Get("total_acked")))
        Fail("redis ingest: stream lengths " + std::to_string(len) + " != acknowledged");
      r.Add("server_rss_mib", static_cast<double>(RssKiB(srv.child.pid)) / 1024);
      srv.Stop();
      PrintRow(r);
      rows.push_back(r);
    }
  }
  if (sc.count("fanout")) {
    for (double rate : cfg.fanout_rates) {
      RedisServer srv;
      srv.Start(cfg, "fanout");
      auto f = std::make_unique<RedisFanout>();
      f->port = srv.port;
      f->cfg = &cfg;
      FanoutSystem sys;
      sys.hist = &f->hist;
      sys.subscribe = [&](Tracker& t, std::atomic<int64_t>& total) { f->Subscribe(t, total); };
      sys.publish = [&](const std::function<int64_t(int64_t)>& due, int64_t n) {
        return f->Publish(due, n);
      };
      sys.unsubscribe = [&] { f->Unsubscribe(); };
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
    RedisServer srv;
    srv.Start(cfg, "catchup");
    Populate(srv.port, cfg, cfg.catchup_events);
    std::vector<CatchupRun> runs;
    for (int i = 0; i < cfg.catchup_reps; ++i) runs.push_back(Catchup(srv.port));
    Row r = row("catchup", "XRANGE COUNT 1000");
    AddCatchup(r, runs, cfg.catchup_events);
    srv.Stop();
    PrintRow(r);
    rows.push_back(r);
  }
  if (sc.count("connections")) {
    RedisServer srv;
    srv.Start(cfg, "conns");
    SleepMs(300);
    const long rss0 = RssKiB(srv.child.pid);
    double secs = 0;
    std::vector<int> fds = OpenIdle(srv.port, cfg.conns, "PING\r\n", "+PONG\r\n", &secs);
    SleepMs(2000);
    const long rss1 = RssKiB(srv.child.pid);
    Row r = row("connections", std::to_string(cfg.conns) + " idle (PING)");
    r.Add("connections", cfg.conns);
    r.Add("connect_s", secs);
    r.Add("rss_before_mib", static_cast<double>(rss0) / 1024);
    r.Add("rss_after_mib", static_cast<double>(rss1) / 1024);
    r.Add("kib_per_conn", static_cast<double>(rss1 - rss0) / cfg.conns);
    for (int fd : fds) close(fd);
    srv.Stop();
    PrintRow(r);
    rows.push_back(r);
  }
  return rows;
}

std::vector<int> OpenIdle(int port, int n, const std::string& hello, const std::string& expect,
                          double* seconds) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  std::vector<int> fds;
  const int64_t t0 = NowNs();
  for (int b = 0; b < n; b += 200) {
    const int e = std::min(n, b + 200);
    for (int i = b; i < e; ++i) {
      int fd = TcpConnect(port);
      if (fd < 0) Fail("idle connection #" + std::to_string(i) + ": connect failed");
      if (!WriteAll(fd, hello.data(), hello.size())) Fail("idle connection: write failed");
      fds.push_back(fd);
    }
    for (int i = b; i < e; ++i) {
      std::string got;
      char buf[4096];
      while (got.find(expect) == std::string::npos) {
        ssize_t r = recv(fds[static_cast<size_t>(i)], buf, sizeof buf, 0);
        if (r <= 0)
          Fail("idle connection #" + std::to_string(i) + " closed: " + got.substr(0, 200));
        got.append(buf, static_cast<size_t>(r));
      }
    }
  }
  *seconds = static_cast<double>(NowNs() - t0) / 1e9;
  return fds;
}

}  // namespace tailbus::bench
