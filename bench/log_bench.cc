// tailbus-bench-log: the foundation's performance figures, measured in one run
// beside the raw SQLite ceiling on the same machine.
//
//   append   : durable Bus::Append of S-byte events over K interleaved sessions
//   replay   : a cursor reading the whole log from storage (cold ring)
//   session  : cursors reading each session's events through the session index
//   raw      : plain SQLite inserts (no tailbus logic), same row size
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "bus/bus.h"
#include "core/event_decoder.h"
#include "core/time_format.h"
#include "storage/raw_insert_probe.h"
#include "storage/raw_read_probe.h"

namespace tailbus {
namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  int64_t events = 2'000'000;
  int sessions = 1'000;
  int event_bytes = 300;
  int producers = 2;
  int batch = 1'000;
  int window = 8;  // batches in flight per producer
  std::string dir = "/tmp/tailbus-bench";
  std::string json_out;
  // Which phases run: raw, append, replay (comma-separated). replay without
  // append reads the log left in --dir by an earlier --keep run.
  std::string phases = "raw,append,replay";
  bool keep = false;  // leave --dir (and its log) in place at exit
  // Which reads the replay phase runs: all (whole log by offset), session (each
  // session in turn), comma-separated. One at a time suits a profiler.
  std::string replay_reads = "all,session";
};

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// CPU time of the whole process (every thread), seconds. On a shared machine
// wall-clock rates move with the other load; rates per CPU-second much less.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A realistic telemetry event padded to `bytes` of JSON.
std::string EventJson(int64_t n, int sessions, int bytes) {
  std::string json = fmt::format(
      R"({{"session_id":"session-{:04}","event_type":"tool_result","tool_name":"search","status":"ok","model":"gpt-4o","cost_tokens":{},"duration_ms":{},"output_summary":")",
      n % sessions, n % 997, n % 250);
  int pad = bytes - static_cast<int>(json.size()) - 2;
  json.append(std::max(pad, 1), 'x');
  json += "\"}";
  return json;
}

std::vector<std::vector<Event>> MakeBatches(const Config& c) {
  std::vector<std::vector<Event>> batches;
  const int64_t now = NowMillis();
  for (int64_t first = 0; first < c.events; first += c.batch) {
    std::string array = "[";
    for (int64_t n = first; n < std::min(c.events, first + c.batch); ++n) {
      if (n > first) array += ',';
      array += EventJson(n, c.sessions, c.event_bytes);
    }
    array += ']';
    DecodeResult r = DecodeEvents(array, DecodeLimits{}, now);
    if (!r.ok()) {
      fmt::print(stderr, "bench: decode failed: {}\n", r.ToStatus().ToString());
      std::exit(1);
    }
    batches.push_back(std::move(r.events));
  }
  return batches;
}

struct Figures {
  double append_eps = 0, ack_p50_ms = 0, ack_p99_ms = 0;
  double replay_eps = 0, session_eps = 0;
  double raw_plain_rps = 0, raw_indexed_rps = 0, raw_segments_rps = 0;
  double raw_clustered_rps = 0, raw_clustered_read_rps = 0;
  // The same, per CPU-second of the process (all threads).
  double append_cpu = 0, replay_cpu = 0, session_cpu = 0;
  double raw_plain_cpu = 0, raw_indexed_cpu = 0, raw_segments_cpu = 0;
  // Plain SQLite reads of the same log (storage/raw_read_probe.h); per CPU-second
  // of the reading thread.
  RawReadRates raw_read;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

std::unique_ptr<Bus> OpenOrDie(const std::string& path) {
  auto store = LogStore::Open(path);
  if (!store.ok()) {
    fmt::print(stderr, "bench: {}\n", store.status().ToString());
    std::exit(1);
  }
  auto bus = Bus::Open(std::move(*store));
  if (!bus.ok()) {
    fmt::print(stderr, "bench: {}\n", bus.status().ToString());
    std::exit(1);
  }
  return std::move(*bus);
}

void MeasureAppend(const Config& c, const std::string& path, Figures* f) {
  auto batches = MakeBatches(c);
  auto bus = OpenOrDie(path);
  std::vector<std::vector<double>> latencies(c.producers);
  auto start = Clock::now();
  const double cpu_start = CpuSeconds();
  std::vector<std::thread> producers;
  for (int p = 0; p < c.producers; ++p) {
    producers.emplace_back([&, p] {
      std::vector<std::pair<std::future<AppendResult>, Clock::time_point>> in_flight;
      auto settle = [&](size_t keep) {
        while (in_flight.size() > keep) {
          AppendResult r = in_flight.front().first.get();
          if (!r.ok()) {
            fmt::print(stderr, "bench: append failed: {}\n", r.status().ToString());
            std::exit(1);
          }
          latencies[p].push_back(Seconds(in_flight.front().second) * 1000);
          in_flight.erase(in_flight.begin());
        }
      };
      for (size_t b = p; b < batches.size(); b += c.producers) {
        settle(c.window - 1);
        auto promise = std::make_shared<std::promise<AppendResult>>();
        in_flight.emplace_back(promise->get_future(), Clock::now());
        bus->AppendAsync(std::move(batches[b]),
                         [promise](AppendResult r) { promise->set_value(std::move(r)); });
      }
      settle(0);
    });
  }
  for (auto& t : producers) t.join();
  double secs = Seconds(start);
  f->append_cpu = c.events / (CpuSeconds() - cpu_start);
  if (bus->head() != c.events) {
    fmt::print(stderr, "bench: head {} != {} appended\n", bus->head(), c.events);
    std::exit(1);
  }
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  f->append_eps = c.events / secs;
  f->ack_p50_ms = Percentile(all, 0.5);
  f->ack_p99_ms = Percentile(all, 0.99);
}

// A cursor over the whole log, every event checked for gaps. The replay loops
// are kept out of line so a profiler can select them by name
// (callgrind --toggle-collect='*MeasureReplayAll*').
[[gnu::noinline]] void MeasureReplayAll(const Config& c, const Bus& bus, LogReader& reader,
                                        Figures* f) {
  auto cursor = bus.Subscribe(0, Filter());
  int64_t seen = 0, last = 0;
  auto start = Clock::now();
  double cpu_start = CpuSeconds();
  for (;;) {
    auto r = cursor->Poll(reader, 1000, 64 << 20, ReadDetail::kDelivery);
    if (!r.ok()) {
      fmt::print(stderr, "bench: replay: {}\n", r.status().ToString());
      std::exit(1);
    }
    for (const EventPtr& e : r->events) {
      if (e->offset != last + 1) {
        fmt::print(stderr, "bench: replay gap after {}\n", last);
        std::exit(1);
      }
      last = e->offset;
    }
    seen += static_cast<int64_t>(r->events.size());
    if (r->caught_up) break;
  }
  f->replay_eps = seen / Seconds(start);
  f->replay_cpu = seen / (CpuSeconds() - cpu_start);
  if (seen != c.events) {
    fmt::print(stderr, "bench: replay saw {} of {}\n", seen, c.events);
    std::exit(1);
  }
}

// One session at a time, through the per-session index.
[[gnu::noinline]] void MeasureReplaySessions(const Config& c, const Bus& bus, LogReader& reader,
                                             Figures* f) {
  int64_t session_seen = 0;
  auto session_start = Clock::now();
  const double cpu_start = CpuSeconds();
  for (int s = 0; s < c.sessions; ++s) {
    auto filter = Filter::Parse(fmt::format(R"({{"session_ids":["session-{:04}"]}})", s));
    auto sc = bus.Subscribe(0, *filter);
    for (;;) {
      auto r = sc->Poll(reader, 1000, 64 << 20, ReadDetail::kDelivery);
      if (!r.ok()) std::exit(1);
      session_seen += static_cast<int64_t>(r->events.size());
      if (r->caught_up) break;
    }
  }
  f->session_eps = session_seen / Seconds(session_start);
  f->session_cpu = session_seen / (CpuSeconds() - cpu_start);
  if (session_seen != c.events) {
    fmt::print(stderr, "bench: session reads saw {} of {}\n", session_seen, c.events);
    std::exit(1);
  }
}

void MeasureReplay(const Config& c, const std::string& path, Figures* f) {
  auto bus = OpenOrDie(path);  // fresh process state: the ring is cold, reads hit storage
  auto reader = bus->NewReader();
  if (c.replay_reads.find("all") != std::string::npos) MeasureReplayAll(c, *bus, *reader, f);
  if (c.replay_reads.find("session") != std::string::npos) {
    MeasureReplaySessions(c, *bus, *reader, f);
  }
  // The ceiling for both reads, on the same file, right after them.
  auto raw = MeasureRawReadRate(path);
  if (!raw.ok()) {
    fmt::print(stderr, "bench: raw read probe: {}\n", raw.status().ToString());
    std::exit(1);
  }
  f->raw_read = *raw;
}

void MeasureRaw(const Config& c, Figures* f) {
  RawInsertProbeOptions plain;
  plain.rows = std::min<int64_t>(c.events, 500'000);
  plain.row_bytes = c.event_bytes;
  double cpu_start = CpuSeconds();
  auto a = MeasureRawInsertRate(c.dir + "/raw-plain.db", plain);
  f->raw_plain_cpu = static_cast<double>(plain.rows) / (CpuSeconds() - cpu_start);
  RawInsertProbeOptions indexed = plain;
  indexed.session_index = true;
  indexed.sessions = c.sessions;
  indexed.rows_per_transaction = 20'000;
  indexed.page_size = 16 * 1024;
  indexed.cache_kib = 256 * 1024;
  indexed.wal_autocheckpoint = 10'000;
  cpu_start = CpuSeconds();
  auto b = MeasureRawInsertRate(c.dir + "/raw-indexed.db", indexed);
  f->raw_indexed_cpu = static_cast<double>(indexed.rows) / (CpuSeconds() - cpu_start);
  // The log's own layout: no row index, each session's offsets written in bulk
  // (session_segments) every 100k rows, as StorageOptions::session_flush_events.
  RawInsertProbeOptions segmented = indexed;
  segmented.session_index = false;
  segmented.rows_per_transaction = 1'000;
  segmented.segment_flush_rows = 100'000;
  cpu_start = CpuSeconds();
  auto d = MeasureRawInsertRate(c.dir + "/raw-segments.db", segmented);
  f->raw_segments_cpu = static_cast<double>(segmented.rows) / (CpuSeconds() - cpu_start);
  if (!a.ok() || !b.ok() || !d.ok()) {
    fmt::print(stderr, "bench: raw probe failed: {} {} {}\n", a.status().ToString(),
               b.status().ToString(), d.status().ToString());
    std::exit(1);
  }
  f->raw_plain_rps = *a;
  f->raw_indexed_rps = *b;
  f->raw_segments_rps = *d;
  // The alternative not taken: segments that also hold a second,
  // session-clustered copy of every body (fast one-session reads).
  RawInsertProbeOptions clustered = segmented;
  clustered.segment_bodies = true;
  auto e = MeasureRawInsertRate(c.dir + "/raw-clustered.db", clustered);
  auto e_read = e.ok() ? MeasureRawClusteredReadRate(c.dir + "/raw-clustered.db", clustered)
                       : Result<double>(e.status());
  if (!e_read.ok()) {
    fmt::print(stderr, "bench: raw clustered probe failed: {}\n", e_read.status().ToString());
    std::exit(1);
  }
  f->raw_clustered_rps = *e;
  f->raw_clustered_read_rps = *e_read;
}

}  // namespace
}  // namespace tailbus

int main(int argc, char** argv) {
  using namespace tailbus;
  Config c;
  CLI::App app{"tailbus-bench-log: durable append and replay throughput of the log"};
  app.add_option("--events", c.events, "events to append");
  app.add_option("--sessions", c.sessions, "distinct sessions, interleaved");
  app.add_option("--event-bytes", c.event_bytes, "bytes of JSON per event");
  app.add_option("--producers", c.producers, "producer threads");
  app.add_option("--batch", c.batch, "events per Append");
  app.add_option("--window", c.window, "batches in flight per producer");
  app.add_option("--dir", c.dir, "scratch directory (emptied)");
  app.add_option("--json", c.json_out, "also write the figures as JSON to this file");
  app.add_option("--phases", c.phases,
                 "phases to run: raw,append,replay (replay alone reads --dir)");
  app.add_option("--replay-reads", c.replay_reads,
                 "reads the replay phase runs: all,session (one at a time suits a profiler)");
  app.add_flag("--keep", c.keep, "keep --dir and the log at exit (for a later --phases replay)");
  CLI11_PARSE(app, argc, argv);

  auto has = [&](std::string_view phase) { return c.phases.find(phase) != std::string::npos; };
  if (has("append")) std::filesystem::remove_all(c.dir);
  std::filesystem::create_directories(c.dir);
  Figures f;
  if (has("raw")) MeasureRaw(c, &f);
  if (has("append")) MeasureAppend(c, c.dir + "/log.db", &f);
  if (has("replay")) MeasureReplay(c, c.dir + "/log.db", &f);
  if (!c.keep) std::filesystem::remove_all(c.dir);

  fmt::print("events={} sessions={} event_bytes={} producers={} batch={} window={}\n", c.events,
             c.sessions, c.event_bytes, c.producers, c.batch, c.window);
  fmt::print("{:<44} {:>14} {:>14}\n", "measure", "per second", "per CPU-second");
  auto row = [](const char* what, double wall, double cpu) {
    fmt::print("{:<44} {:>14.0f} {:>14.0f}\n", what, wall, cpu);
  };
  auto ratio = [](const char* what, double wall, double cpu) {
    fmt::print("{:<44} {:>14.2f} {:>14.2f}\n", what, wall, cpu);
  };
  row("raw SQLite, no index, 1k rows/txn (rows)", f.raw_plain_rps, f.raw_plain_cpu);
  row("raw SQLite, session index, 20k/txn (rows)", f.raw_indexed_rps, f.raw_indexed_cpu);
  row("raw SQLite, bulk session segments (rows)", f.raw_segments_rps, f.raw_segments_cpu);
  row("raw SQLite, segments + clustered bodies (rows)", f.raw_clustered_rps, 0);
  row("  its one-session read (rows)", f.raw_clustered_read_rps, 0);
  row("Bus::Append durable (events)", f.append_eps, f.append_cpu);
  ratio("  ratio to raw indexed ceiling", f.append_eps / f.raw_indexed_rps,
        f.append_cpu / f.raw_indexed_cpu);
  ratio("  ratio to raw no-index ceiling", f.append_eps / f.raw_plain_rps,
        f.append_cpu / f.raw_plain_cpu);
  ratio("  ratio to raw segments ceiling (same layout)", f.append_eps / f.raw_segments_rps,
        f.append_cpu / f.raw_segments_cpu);
  fmt::print("{:<44} {:>14.1f}\n", "  ack latency p50 (ms)", f.ack_p50_ms);
  fmt::print("{:<44} {:>14.1f}\n", "  ack latency p99 (ms)", f.ack_p99_ms);
  const RawReadRates& rr = f.raw_read;
  row("raw SQLite read, by offset (rows)", rr.all_rows_per_s, rr.all_rows_per_cpu_s);
  row("replay, all sessions (events)", f.replay_eps, f.replay_cpu);
  ratio("  ratio to raw read by offset", f.replay_eps / rr.all_rows_per_s,
        f.replay_cpu / rr.all_rows_per_cpu_s);
  row("raw SQLite read, one session at a time (rows)", rr.session_rows_per_s,
      rr.session_rows_per_cpu_s);
  row("replay, one session at a time (events)", f.session_eps, f.session_cpu);
  ratio("  ratio to raw read by session", f.session_eps / rr.session_rows_per_s,
        f.session_cpu / rr.session_rows_per_cpu_s);
  if (!c.json_out.empty()) {
    std::ofstream(c.json_out)
        << fmt::format(
               R"({{"events":{},"sessions":{},"event_bytes":{},"raw_plain_rps":{:.0f},"raw_indexed_rps":{:.0f},"raw_segments_rps":{:.0f},"raw_clustered_rps":{:.0f},"raw_clustered_read_rps":{:.0f},"append_eps":{:.0f},"ack_p50_ms":{:.2f},"ack_p99_ms":{:.2f},"replay_eps":{:.0f},"session_eps":{:.0f},"raw_plain_cpu":{:.0f},"raw_indexed_cpu":{:.0f},"append_cpu":{:.0f},"replay_cpu":{:.0f},"session_cpu":{:.0f},"raw_read_all_rps":{:.0f},"raw_read_session_rps":{:.0f},"raw_read_all_cpu":{:.0f},"raw_read_session_cpu":{:.0f}}})",
               c.events, c.sessions, c.event_bytes, f.raw_plain_rps, f.raw_indexed_rps,
               f.raw_segments_rps, f.raw_clustered_rps, f.raw_clustered_read_rps, f.append_eps,
               f.ack_p50_ms, f.ack_p99_ms, f.replay_eps, f.session_eps, f.raw_plain_cpu,
               f.raw_indexed_cpu, f.append_cpu, f.replay_cpu, f.session_cpu, rr.all_rows_per_s,
               rr.session_rows_per_s, rr.all_rows_per_cpu_s, rr.session_rows_per_cpu_s)
        << "\n";
  }
  return 0;
}
