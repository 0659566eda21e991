// Micro-benchmarks (Google Benchmark) of the per-event hot paths: decoding and
// normalising producer JSON, and matching filters.
#include <benchmark/benchmark.h>

#include "core/event_decoder.h"
#include "core/filter.h"
#include "core/time_format.h"

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
