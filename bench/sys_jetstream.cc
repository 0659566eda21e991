// NATS JetStream under test (nats-server -js -sd <dir>, 127.0.0.1 only): one
// file-storage stream "BENCH" with subjects bench.<session>.<type>; producers
// publish with js_PublishAsync and the same window; live tail and catch-up
// use ordered consumers (DeliverNew / from sequence 1). Filters map to subject
// filters: session i = bench.s<i>.*, tool_call = bench.*.tool_call.
#include <nats/nats.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>

#include "bench/harness.h"
#include "bench/systems.h"

namespace tailbus::bench {

std::vector<int> OpenIdle(int port, int n, const std::string& hello, const std::string& expect,
                          double* seconds);

namespace {

void Check(natsStatus s, const std::string& what) {
  if (s != NATS_OK)
    Fail("jetstream: " + what + ": " + natsStatus_GetText(s) + " " + nats_GetLastError(nullptr));
}

std::string Subject(int64_t bg, int sessions) {
  return "bench.s" + std::to_string(SessionOf(bg, sessions)) +
         (IsToolCall(bg) ? ".tool_call" : ".bench");
}

struct NatsConn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsOptions* opts = nullptr;
  void Open(int port, int64_t max_pending = 0, jsPubAckHandler ah = nullptr,
            void* closure = nullptr) {
    Check(natsOptions_Create(&opts), "options");
    const std::string url = "nats://127.0.0.1:" + std::to_string(port);
    natsOptions_SetURL(opts, url.c_str());
    natsOptions_UseGlobalMessageDelivery(opts, true);
    natsOptions_SetMaxPendingMsgs(opts, 1'000'000);
    Check(natsConnection_Connect(&nc, opts), "connect");
    jsOptions jo;
    jsOptions_Init(&jo);
    if (max_pending > 0) jo.PublishAsync.MaxPending = max_pending;
    jo.PublishAsync.AckHandler = ah;
    jo.PublishAsync.AckHandlerClosure = closure;
    jo.PublishAsync.StallWait = 30'000;
    Check(natsConnection_JetStream(&js, nc, &jo), "jetstream context");
  }
  void Complete() {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30'000;
    Check(js_PublishAsyncComplete(js, &po), "publish async complete");
  }
  ~NatsConn() {
    if (js) jsCtx_Destroy(js);
    if (nc) natsConnection_Destroy(nc);
    if (opts) natsOptions_Destroy(opts);
  }
};

struct NatsServer {
  Child child;
  int port = 0;
  std::string dir;
  void Start(const Config& cfg, const std::string& tag, bool stream = true) {
    static int n = 0;
    dir = cfg.data_dir + "/jetstream-" + tag + "-" + std::to_string(++n);
    RunCapture("mkdir -p '" + dir + "'");
    port = FreePort();
    child = Spawn({"nats-server", "-js", "-sd", dir, "-a", "127.0.0.1", "-p", std::to_string(port)},
                  dir + "/server.log", cfg.server_cpu);
    if (!WaitPort(port, 15'000)) Fail("nats-server did not start; see " + dir + "/server.log");
    if (!stream) return;
    NatsConn c;
    c.Open(port);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = "BENCH";
    const char* subjects[] = {"bench.>"};
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    Check(js_AddStream(&si, c.js, &sc, nullptr, &jerr), "add stream");
    jsStreamInfo_Destroy(si);
  }
  int64_t Count() {
    NatsConn c;
    c.Open(port);
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    Check(js_GetStreamInfo(&si, c.js, "BENCH", nullptr, &jerr), "stream info");
    const int64_t n = static_cast<int64_t>(si->State.Msgs);
    jsStreamInfo_Destroy(si);
    return n;
  }
  void Stop() { bench::Stop(child); }
};

struct AckState {
  IngestCtx* ctx = nullptr;
  std::atomic<int64_t> errors{0};
};

void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr*, void* closure) {
  auto* st = static_cast<AckState*>(closure);
  if (pa == nullptr) {
    st->errors.fetch_add(1);
  } else {
    int64_t bt = 0;
    std::string_view v(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    FindInt(v, "\"bt\":", 0, &bt);
    st->ctx->Acked(1, NowNs() - bt);
  }
  natsMsg_Destroy(msg);
}

void Producer(IngestCtx& c, int port) {
  AckState st;
  st.ctx = &c;
  NatsConn n;
  n.Open(port, c.cfg->window, OnAck, &st);
  for (int64_t k = 0;; ++k) {
    int64_t t = NowNs();
    if (c.rate_per_producer > 0) {
      t = c.DueNs(k);
      while (NowNs() < t && !c.stop->load()) SleepUntilNs(std::min(t, NowNs() + 100'000'000));
    }
    if (c.stop->load()) break;
    const int64_t bg = c.NextBg(k);
    const std::string ev = MakeEvent(bg, c.cfg->sessions, t, c.cfg->size);
    Check(js_PublishAsync(n.js, Subject(bg, c.cfg->sessions).c_str(), ev.data(),
                          static_cast<int>(ev.size()), nullptr),
          "publish async");
  }
  n.Complete();
  if (st.errors.load())
    Fail("jetstream: " + std::to_string(st.errors.load()) + " negative publish acks");
}

// ---- fan-out ------------------------------------------------------------------------

struct JsFanout {
  int port = 0;
  const Config* cfg = nullptr;
  Histogram hist;
  std::mutex mu;
  Tracker* tracker = nullptr;
  std::atomic<int64_t>* total = nullptr;
  std::vector<std::unique_ptr<NatsConn>> conns;
  std::vector<natsSubscription*> subs;
  struct Closure {
    JsFanout* self;
    size_t idx;
  };
  std::vector<std::unique_ptr<Closure>> closures;

  static void OnMsg(natsConnection*, natsSubscription*, natsMsg* msg, void* cl) {
    auto* c = static_cast<Closure*>(cl);
    const int64_t now = NowNs();
    std::string_view v(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    int64_t bg = 0, bt = 0;
    if (FindInt(v, "\"bg\":", 0, &bg) != std::string_view::npos) {
      FindInt(v, "\"bt\":", 0, &bt);
      std::lock_guard<std::mutex> l(c->self->mu);
      c->self->tracker->OnEvent(c->idx, bg, bt, 0, now, c->self->hist);
      c->self->total->fetch_add(1);
    }
    natsMsg_Destroy(msg);
  }

  void Subscribe(Tracker& t, std::atomic<int64_t>& tot) {
    tracker = &t;
    total = &tot;
    for (int i = 0; i < 4; ++i) {
      conns.push_back(std::make_unique<NatsConn>());
      conns.back()->Open(port);
    }
    for (size_t i = 0; i < t.subs().size(); ++i) {
      const SubTrack& st = t.subs()[i];
      std::string subj = st.session >= 0 ? "bench.s" + std::to_string(st.session) + ".*"
                                         : (st.stride == 1 ? "bench.>" : "bench.*.tool_call");
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Ordered = true;
      so.Config.DeliverPolicy = js_DeliverNew;
      closures.push_back(std::make_unique<Closure>(Closure{this, i}));
      natsSubscription* sub = nullptr;
      jsErrCode jerr{};
      Check(js_Subscribe(&sub, conns[i % conns.size()]->js, subj.c_str(), OnMsg,
                         closures.back().get(), nullptr, &so, &jerr),
            "ordered consumer " + subj);
      natsSubscription_SetPendingLimits(sub, -1, -1);
      subs.push_back(sub);
    }
  }

  int64_t Publish(const std::function<int64_t(int64_t)>& due, int64_t n) {
    NatsConn c;
    c.Open(port, 100'000);
    int64_t bg = 0;
    while (bg < n) {
      SleepUntilNs(due(bg));
      const int64_t now = NowNs();
      while (bg < n && due(bg) <= now) {
        const std::string ev = MakeEvent(bg, cfg->sessions, now, cfg->size);
        Check(js_PublishAsync(c.js, Subject(bg, cfg->sessions).c_str(), ev.data(),
                              static_cast<int>(ev.size()), nullptr),
              "publish async");
        ++bg;
      }
      SleepUntilNs(now + 1'000'000);
    }
    c.Complete();
    return n;
  }

  void Unsubscribe() {
    for (auto* s : subs) natsSubscription_Destroy(s);
    subs.clear();
    conns.clear();
  }
};

void Populate(int port, const Config& cfg, int64_t m) {
  NatsConn c;
  c.Open(port, 4000);
  for (int64_t i = 0; i < m; ++i) {
    const std::string ev = MakeEvent(i, cfg.sessions, 0, cfg.size);
    Check(js_PublishAsync(c.js, Subject(i, cfg.sessions).c_str(), ev.data(),
                          static_cast<int>(ev.size()), nullptr),
          "publish async");
  }
  c.Complete();
}

struct CatchState {
  std::atomic<int64_t> n{0};
  int64_t expect_bg = 0;
  std::atomic<int64_t> first_ns{0};
  std::atomic<bool> bad{false};
};

void OnCatch(natsConnection*, natsSubscription*, natsMsg* msg, void* cl) {
  auto* st = static_cast<CatchState*>(cl);
  if (st->first_ns == 0) st->first_ns = NowNs();
  std::string_view v(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  int64_t bg = -1;
  FindInt(v, "\"bg\":", 0, &bg);
  if (bg != st->expect_bg) st->bad = true;
  ++st->expect_bg;
  st->n.fetch_add(1);
  natsMsg_Destroy(msg);
}

CatchupRun Catchup(int port, int64_t m) {
  CatchupRun r;
  CatchState st;
  const int64_t t0 = NowNs();
  NatsConn c;
  c.Open(port);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = 1;
  natsSubscription* sub = nullptr;
  jsErrCode jerr{};
  Check(js_Subscribe(&sub, c.js, "bench.>", OnCatch, &st, nullptr, &so, &jerr), "ordered consumer");
  natsSubscription_SetPendingLimits(sub, -1, -1);
  const int64_t deadline = NowNs() + 120'000'000'000;
  while (st.n.load() < m && NowNs() < deadline && !st.bad) SleepUntilNs(NowNs() + 200'000);
  r.seconds = static_cast<double>(NowNs() - t0) / 1e9;
  r.first_event_ms = static_cast<double>(st.first_ns - t0) / 1e6;
  r.events = st.n.load();
  natsSubscription_Destroy(sub);
  if (st.bad) Fail("jetstream catchup: out-of-order or duplicate message");
  return r;
}

}  // namespace

std::vector<Row> RunJetStream(const Config& cfg, const Scenarios& sc) {
  std::vector<Row> rows;
  auto row = [&](const std::string& scenario, const std::string& mode) {
    Row r;
    r.system = "jetstream";
    r.scenario = scenario;
    r.mode = mode;
    r.command = CommandFor(cfg, "jetstream", scenario);
    return r;
  };
  if (sc.count("ingest")) {
    std::vector<std::pair<std::string, double>> modes = {
        {"async W=" + std::to_string(cfg.window) + " saturation", 0}};
    if (cfg.ingest_rate > 0)
      modes.push_back({"async W=" + std::to_string(cfg.window) + " fixed rate", cfg.ingest_rate});
    for (const auto& [name, rate] : modes) {
      NatsServer srv;
      srv.Start(cfg, "ingest");
      Row r = row("ingest", name);
      const int port = srv.port;
      RunIngest(
          cfg, rate, [port](IngestCtx& c) { Producer(c, port); }, r);
      const int64_t cnt = srv.Count();
      if (cnt != static_cast<int64_t>(r.Get("total_acked")))
        Fail("jetstream ingest: stream holds " + std::to_string(cnt) + " != acknowledged");
      r.Add("server_rss_mib", static_cast<double>(RssKiB(srv.child.pid)) / 1024);
      srv.Stop();
      PrintRow(r);
      rows.push_back(r);
    }
  }
  if (sc.count("fanout")) {
    for (double rate : cfg.fanout_rates) {
      NatsServer srv;
      srv.Start(cfg, "fanout");
      auto f = std::make_unique<JsFanout>();
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
    NatsServer srv;
    srv.Start(cfg, "catchup");
    Populate(srv.port, cfg, cfg.catchup_events);
    std::vector<CatchupRun> runs;
    for (int i = 0; i < cfg.catchup_reps; ++i)
      runs.push_back(Catchup(srv.port, cfg.catchup_events));
    Row r = row("catchup", "ordered consumer from seq 1");
    AddCatchup(r, runs, cfg.catchup_events);
    srv.Stop();
    PrintRow(r);
    rows.push_back(r);
  }
  if (sc.count("connections")) {
    NatsServer srv;
    srv.Start(cfg, "conns", false);
    SleepMs(300);
    const long rss0 = RssKiB(srv.child.pid);
    double secs = 0;
    std::vector<int> fds =
        OpenIdle(srv.port, cfg.conns, "CONNECT {\"verbose\":false}\r\nPING\r\n", "PONG\r\n", &secs);
    SleepMs(2000);
    const long rss1 = RssKiB(srv.child.pid);
    Row r = row("connections", std::to_string(cfg.conns) + " idle (CONNECT)");
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

}  // namespace tailbus::bench
