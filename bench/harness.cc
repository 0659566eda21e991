#include "bench/harness.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace tailbus::bench {

void RunIngest(const Config& cfg, double rate, const ProducerFn& fn, Row& row) {
  const int P = cfg.producers;
  std::atomic<bool> stop{false}, measuring{false};
  std::atomic<int64_t> acked{0};
  std::vector<Histogram> hists(static_cast<size_t>(P));
  std::vector<IngestCtx> ctx(static_cast<size_t>(P));
  std::mutex err_mu;
  std::exception_ptr err;
  const int64_t t_begin = NowNs() + 20'000'000;
  for (int i = 0; i < P; ++i) {
    IngestCtx& c = ctx[static_cast<size_t>(i)];
    c.idx = i;
    c.producers = P;
    c.cfg = &cfg;
    c.rate_per_producer = rate / P;
    c.stop = &stop;
    c.measuring = &measuring;
    c.acked = &acked;
    c.hist = &hists[static_cast<size_t>(i)];
    c.t_begin = t_begin;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < P; ++i)
    threads.emplace_back([&, i] {
      try {
        fn(ctx[static_cast<size_t>(i)]);
      } catch (...) {
        std::lock_guard<std::mutex> l(err_mu);
        if (!err) err = std::current_exception();
        stop = true;
      }
    });
  SleepUntilNs(t_begin + static_cast<int64_t>(cfg.warmup_s * 1e9));
  const int64_t a0 = acked.load();
  const int64_t m0 = NowNs();
  measuring = true;
  SleepUntilNs(m0 + static_cast<int64_t>(cfg.duration_s * 1e9));
  const int64_t a1 = acked.load();
  const int64_t m1 = NowNs();
  measuring = false;
  stop = true;
  for (auto& t : threads) t.join();
  if (err) std::rethrow_exception(err);
  Histogram h;
  for (const auto& x : hists) h.Merge(x);
  row.Add("events_s", static_cast<double>(a1 - a0) / (static_cast<double>(m1 - m0) / 1e9));
  if (rate > 0) row.Add("offered_s", rate);
  AddLatency(row, "ack", h);
  row.Add("total_acked", static_cast<double>(acked.load()));
}

std::vector<SubTrack> FanoutSubscribers(const Config& cfg) {
  std::vector<SubTrack> subs;
  for (int i = 0; i < cfg.subs; ++i) {
    SubTrack s;
    s.start = i % cfg.sessions;
    s.stride = cfg.sessions;
    s.session = i % cfg.sessions;
    subs.push_back(s);
  }
  for (int i = 0; i < cfg.all_subs; ++i) {
    SubTrack s;
    s.start = 0;
    s.stride = (i % 2 == 0) ? 1 : 4;
    subs.push_back(s);
  }
  return subs;
}

void RunFanout(const Config& cfg, double rate, FanoutSystem& sys, Tracker& tracker, Row& row) {
  const int64_t n = static_cast<int64_t>(rate * (cfg.warmup_s + cfg.duration_s));
  tracker.set_sessions(cfg.sessions);
  tracker.Init(FanoutSubscribers(cfg), static_cast<int64_t>(rate * cfg.warmup_s));
  std::atomic<int64_t> total{0};
  const int64_t c0 = NowNs();
  sys.subscribe(tracker, total);
  const double connect_s = static_cast<double>(NowNs() - c0) / 1e9;
  int64_t expected = 0;
  for (const auto& s : tracker.subs()) expected += Tracker::Expected(s, n);

  const int64_t t0 = NowNs() + 50'000'000;
  auto due = [&](int64_t bg) {
    return t0 + static_cast<int64_t>(static_cast<double>(bg) * 1e9 / rate);
  };
  const int64_t sent = sys.publish(due, n);
  const int64_t t_pub_end = NowNs();
  if (sent != n)
    Fail(row.system + " fanout: published " + std::to_string(sent) + " of " + std::to_string(n));
  const int64_t deadline = NowNs() + 20'000'000'000;
  while (total.load() < expected && NowNs() < deadline) SleepMs(10);
  const int64_t t_done = NowNs();
  SleepMs(200);  // anything extra (duplicates) shows up here
  sys.unsubscribe();

  int64_t got = 0, gaps = 0, dups = 0, bad = 0, foreign = 0, missing = 0;
  for (const auto& s : tracker.subs()) {
    got += s.received;
    gaps += s.gaps;
    dups += s.dups;
    bad += s.bad_offsets;
    foreign += s.foreign;
    const int64_t e = Tracker::Expected(s, n);
    if (s.received < e) missing += e - s.received;
  }
  const double pub_s = static_cast<double>(t_pub_end - t0) / 1e9;
  row.Add("offered_s", rate);
  row.Add("published_s", static_cast<double>(n) / pub_s);
  row.Add("delivered_s", static_cast<double>(got) / (static_cast<double>(t_done - t0) / 1e9));
  AddLatency(row, "lat", *sys.hist);
  row.Add("subscribers", static_cast<double>(tracker.subs().size()));
  row.Add("subscribe_s", connect_s);
  row.Add("delivered", static_cast<double>(got));
  row.Add("expected", static_cast<double>(expected));
  row.Add("gaps", static_cast<double>(gaps));
  row.Add("dups", static_cast<double>(dups));
  row.Add("missing", static_cast<double>(missing));
  if (gaps || dups || bad || foreign || missing || got != expected)
    Fail(row.system + " fanout R=" + std::to_string(static_cast<int64_t>(rate)) + ": delivered " +
         std::to_string(got) + " of " + std::to_string(expected) + ", gaps " +
         std::to_string(gaps) + ", duplicates " + std::to_string(dups) + ", offset order errors " +
         std::to_string(bad) + ", foreign-session events " + std::to_string(foreign) +
         ", missing " + std::to_string(missing));
}

void AddCatchup(Row& row, const std::vector<CatchupRun>& runs, int64_t expected) {
  std::vector<double> rates, firsts;
  for (const auto& r : runs) {
    if (r.events != expected)
      Fail(row.system + " catchup: read " + std::to_string(r.events) + " of " +
           std::to_string(expected));
    rates.push_back(static_cast<double>(r.events) / r.seconds);
    firsts.push_back(r.first_event_ms);
  }
  std::sort(rates.begin(), rates.end());
  std::sort(firsts.begin(), firsts.end());
  row.Add("events_s", rates[rates.size() / 2]);
  row.Add("events_s_min", rates.front());
  row.Add("events_s_max", rates.back());
  row.Add("first_event_ms", firsts[firsts.size() / 2]);
  row.Add("events", static_cast<double>(expected));
  row.Add("runs", static_cast<double>(runs.size()));
}

}  // namespace tailbus::bench
