// Micro-benchmarks (Google Benchmark) of the per-event hot paths: decoding and
// normalising producer JSON, and matching filters.
#include <benchmark/benchmark.h>

#include "core/event_decoder.h"
#include "core/filter.h"
#include "core/time_format.h"
#include "ws/client_message.h"

namespace tailbus {
namespace {

const char* kEvent =
    R"({"session_id":"session-0042","event_type":"tool_result","tool_name":"search","status":"ok","model":"gpt-4o","prompt_tokens":120,"completion_tokens":80,"execution_duration_seconds":0.25,"output_summary":"three results about the patient's diagnosis, sorted by relevance, first one is a guideline"})";

void BM_DecodeOneEvent(benchmark::State& state) {
  for (auto _ : state) {
    DecodeResult r = DecodeEvents(kEvent, DecodeLimits{}, 1'700'000'000'000);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeOneEvent);

void BM_DecodeBatchOf1000(benchmark::State& state) {
  std::string batch = "[";
  for (int i = 0; i < 1000; ++i) batch += (i ? "," : "") + std::string(kEvent);
  batch += "]";
  for (auto _ : state) {
    DecodeResult r = DecodeEvents(batch, DecodeLimits{}, 1'700'000'000'000);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_DecodeBatchOf1000);

// Events shaped like tailbus-bench's ingest events (bench/bench_common.cc MakeEvent): 300 bytes,
// session_id, `type` standing in for event_type, three numeric members and a padding string;
// event_id and timestamp are generated. Batches of 100, as `tailbus-bench ingest` posts them.
std::string BenchLikeBatch(int events) {
  std::string batch = "[";
  for (int i = 0; i < events; ++i) {
    std::string e = "{\"session_id\":\"s" + std::to_string(i % 1000) + "\",\"type\":\"" +
                    (i % 10 == 0 ? "tool_call" : "bench") + "\",\"bg\":" + std::to_string(i) +
                    ",\"bsid\":" + std::to_string(i % 1000) +
                    ",\"bt\":1763798400123456789,\"pad\":\"";
    e.append(300 - e.size() - 2, 'x');
    e += "\"}";
    batch += (i ? "," : "") + e;
  }
  batch += "]";
  return batch;
}

void BM_DecodeIngestBatchOf100(benchmark::State& state) {
  const std::string batch = BenchLikeBatch(100);
  for (auto _ : state) {
    DecodeResult r = DecodeEvents(batch, DecodeLimits{}, 1'700'000'000'000);
    if (!r.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_DecodeIngestBatchOf100);

// The same batch as a WebSocket publish frame: frame parsing (ws/client_message.cc) + decoding,
// as ws/ws_subscription.cc does for each publish.
void BM_WsPublishBatchOf100(benchmark::State& state) {
  const std::string frame =
      R"({"type":"publish","request_id":7,"events":)" + BenchLikeBatch(100) + "}";
  for (auto _ : state) {
    ws::ClientMessage m = ws::ParseClientMessage(frame, std::nullopt, 1000);
    DecodeResult r = DecodeEvents(m.events_json, DecodeLimits{}, 1'700'000'000'000);
    if (!r.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_WsPublishBatchOf100);

void BM_FilterMatch(benchmark::State& state) {
  auto filter = Filter::Parse(
      R"({"event_types":["tool_call","tool_result","error"],"tool_names":["search"],"any":[{"statuses":["ok"]},{"cost_threshold_tokens":100}]})");
  EventFields e{"session-0042", "tool_result", "agent", "search", "ok", "gpt-4o", "", 200, 12.5};
  for (auto _ : state) benchmark::DoNotOptimize(filter->Matches(e));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FilterMatch);

}  // namespace
}  // namespace tailbus

BENCHMARK_MAIN();
