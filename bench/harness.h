// Scenario harnesses shared by tailbus and the peers: the same producers'
// pacing, the same windows, the same tracker, so only the client code differs.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_common.h"

namespace tailbus::bench {

// ---- ingest ---------------------------------------------------------------------

struct IngestCtx {
  int idx = 0;  // producer index
  int producers = 1;
  const Config* cfg = nullptr;
  double rate_per_producer = 0;  // events/s; 0 = saturation (closed loop)
  std::atomic<bool>* stop = nullptr;
  std::atomic<bool>* measuring = nullptr;
  std::atomic<int64_t>* acked = nullptr;  // events durably acknowledged, all producers
  Histogram* hist = nullptr;              // ack latency (recorded while measuring)
  int64_t t_begin = 0;
  // bg numbers of this producer: idx, idx + P, idx + 2P, ... (spread over sessions)
  int64_t NextBg(int64_t k) const { return idx + static_cast<int64_t>(producers) * k; }
  // For fixed rate: when the unit holding this producer's event number k is due.
  int64_t DueNs(int64_t k) const {
    return t_begin + static_cast<int64_t>(static_cast<double>(k) * 1e9 / rate_per_producer);
  }
  void Acked(int64_t n, int64_t latency_ns) {
    acked->fetch_add(n, std::memory_order_relaxed);
    if (measuring->load(std::memory_order_relaxed)) hist->Record(latency_ns);
  }
};
using ProducerFn = std::function<void(IngestCtx&)>;

// Runs cfg.producers producers for warmup + duration; fills events_s and the
// ack latency percentiles into `row`. Producer exceptions are re-thrown.
void RunIngest(const Config& cfg, double rate, const ProducerFn& fn, Row& row);

// ---- fan-out --------------------------------------------------------------------

// Subscriber classes in a fan-out run: cfg.subs session subscribers (session i),
// then cfg.all_subs all-session subscribers, even ones unfiltered, odd ones
// filtered to type tool_call.
std::vector<SubTrack> FanoutSubscribers(const Config& cfg);

struct FanoutSystem {
  // Connects every subscriber (tracker.subs()) and returns once all are live.
  std::function<void(Tracker&, std::atomic<int64_t>& total_received)> subscribe;
  // Publishes events bg = 0..n-1 as paced by `due_ns(bg)`; returns when all
  // were handed to the system (acks may still be in flight).
  std::function<int64_t(const std::function<int64_t(int64_t)>& due_ns, int64_t n)> publish;
  std::function<void()> unsubscribe;
  Histogram* hist = nullptr;  // filled by the subscribers' receive code
};
void RunFanout(const Config& cfg, double rate, FanoutSystem& sys, Tracker& tracker, Row& row);

// ---- catch-up ---------------------------------------------------------------------

// Result of reading the whole log once.
struct CatchupRun {
  double seconds = 0;         // connect to last event
  double first_event_ms = 0;  // connect to first event
  int64_t events = 0;
};
void AddCatchup(Row& row, const std::vector<CatchupRun>& runs, int64_t expected);

}  // namespace tailbus::bench
