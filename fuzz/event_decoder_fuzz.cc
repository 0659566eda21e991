// Fuzzes the event decoder and normaliser (core/event_decoder.h) with
// arbitrary producer input, as JSON (DecodeEvents) and as NDJSON
// (DecodeNdjson). Invariants checked on every input:
// - all or nothing: either events and no errors, or errors and no events;
// - every error names a field (or the event, by index) and a reason, and at
//   most max_reported_errors are listed;
// - every accepted event is valid by the event model's rules (event.h) and
//   its body is a JSON object within max_event_bytes;
// - normalisation is idempotent: an accepted body decodes again to exactly
//   the same body and header (the event id is then producer-given), alone and
//   as a batch;
// - the one-pass fast path (decoder_internal) agrees with the reference path:
//   where it gives a result, it is the reference's, byte for byte (generated
//   event ids aside); it never gives one for input the reference rejects.
#include <rapidjson/document.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/event_decoder.h"
#include "fuzz/fuzz_check.h"

namespace {

using tailbus::DecodeLimits;
using tailbus::DecodeResult;
using tailbus::Event;
using tailbus::EventHeader;
using tailbus::decoder_internal::BodyWithoutGeneratedId;

constexpr int64_t kNowMs = 1'795'310'909'123;  // 2026-11-22T01:28:29.123Z

bool PrintableBytes(std::string_view s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool EventTypeBytes(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool SameHeader(const EventHeader& a, const EventHeader& b) {
  return a.session_id == b.session_id && a.event_type == b.event_type && a.event_id == b.event_id &&
         a.timestamp_ms == b.timestamp_ms && a.agent_id == b.agent_id &&
         a.tool_name == b.tool_name && a.status == b.status && a.model == b.model &&
         a.feature_id == b.feature_id && a.parent_event_id == b.parent_event_id &&
         a.cost_tokens == b.cost_tokens && a.duration_ms == b.duration_ms;
}

void CheckResult(const DecodeResult& r, const DecodeLimits& limits, std::string_view input) {
  if (r.ok()) {
    FUZZ_CHECK(r.errors.empty() && r.error_count == 0);
    FUZZ_CHECK(r.events.size() <= limits.max_batch_events);
    FUZZ_CHECK(r.ToStatus().ok());
  } else {
    FUZZ_CHECK(r.events.empty(), "a rejected batch kept %zu events", r.events.size());
    FUZZ_CHECK(!r.errors.empty(), "error_count %zu but no error listed", r.error_count);
    FUZZ_CHECK(r.errors.size() <= limits.max_reported_errors);
    FUZZ_CHECK(r.error_count >= r.errors.size());
    FUZZ_CHECK(!r.ToStatus().ok() && !r.ToStatus().message().empty());
    for (const auto& e : r.errors) {
      FUZZ_CHECK(!e.reason.empty(), "error without a reason: %s", e.ToString().c_str());
      FUZZ_CHECK(!e.field.empty() || e.index.has_value(), "error names nothing: %s",
                 e.ToString().c_str());
      FUZZ_CHECK(!e.index || *e.index < limits.max_batch_events);
    }
  }
  for (const Event& ev : r.events) {
    const EventHeader& h = ev.header;
    FUZZ_CHECK(ev.body.size() >= 2 && ev.body.front() == '{' && ev.body.back() == '}');
    FUZZ_CHECK(ev.body.size() <= limits.max_event_bytes);
    FUZZ_CHECK(PrintableBytes(h.session_id, 1, 128), "session_id %s", h.session_id.c_str());
    FUZZ_CHECK(EventTypeBytes(h.event_type), "event_type %s", h.event_type.c_str());
    FUZZ_CHECK(PrintableBytes(h.event_id, 1, 128), "event_id %s", h.event_id.c_str());
    FUZZ_CHECK(h.timestamp_ms >= -62167219200000 && h.timestamp_ms <= 253402300799999);
    FUZZ_CHECK(!h.cost_tokens || *h.cost_tokens >= 0);
    FUZZ_CHECK(!h.duration_ms || (std::isfinite(*h.duration_ms) && *h.duration_ms >= 0));
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
              rapidjson::kParseFullPrecisionFlag>(ev.body.data(), ev.body.size());
    FUZZ_CHECK(!doc.HasParseError() && doc.IsObject(), "body is not a JSON object: %s",
               ev.body.c_str());
    FUZZ_CHECK(!doc.HasMember("offset") && !doc.HasMember("ingested_at"));
  }
  (void)input;
}

// An accepted event, decoded again, is the same event.
void CheckIdempotent(const DecodeResult& r, const DecodeLimits& limits) {
  if (!r.ok() || r.events.empty()) return;
  std::string batch = "[";
  for (const Event& ev : r.events) {
    DecodeResult again = tailbus::DecodeEvents(ev.body, limits, kNowMs + 1);
    FUZZ_CHECK(again.ok() && again.events.size() == 1, "body rejected on re-decode: %s -> %s",
               ev.body.c_str(), again.ToStatus().ToString().c_str());
    const Event& e2 = again.events[0];
    FUZZ_CHECK(e2.body == ev.body, "body changed on re-decode:\n%s\n%s", ev.body.c_str(),
               e2.body.c_str());
    FUZZ_CHECK(SameHeader(e2.header, ev.header), "header changed on re-decode: %s",
               ev.body.c_str());
    FUZZ_CHECK(!e2.header.event_id_generated);
    if (batch.size() > 1) batch += ',';
    batch += ev.body;
  }
  batch += ']';
  DecodeResult all = tailbus::DecodeEvents(batch, limits, kNowMs + 2);
  FUZZ_CHECK(all.ok() && all.events.size() == r.events.size(), "batch rejected: %s",
             all.ToStatus().ToString().c_str());
  for (size_t i = 0; i < all.events.size(); ++i) {
    FUZZ_CHECK(all.events[i].body == r.events[i].body);
  }
}

void CheckFastPath(const std::optional<DecodeResult>& fast, const DecodeResult& ref,
                   std::string_view input) {
  if (!fast.has_value()) return;
  FUZZ_CHECK(ref.ok(), "fast path accepted what the reference rejects (%s): %.*s",
             ref.ToStatus().ToString().c_str(), static_cast<int>(input.size()), input.data());
  FUZZ_CHECK(fast->ok() && fast->events.size() == ref.events.size());
  for (size_t i = 0; i < ref.events.size(); ++i) {
    const Event& a = fast->events[i];
    const Event& b = ref.events[i];
    FUZZ_CHECK(BodyWithoutGeneratedId(a) == BodyWithoutGeneratedId(b), "bodies differ:\n%s\n%s",
               a.body.c_str(), b.body.c_str());
    FUZZ_CHECK(a.header.event_id_generated == b.header.event_id_generated);
    EventHeader ha = a.header;
    if (ha.event_id_generated) ha.event_id = b.header.event_id;
    FUZZ_CHECK(SameHeader(ha, b.header), "headers differ: %s", b.body.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small limits with the first byte, so the limit paths are reached too.
  DecodeLimits limits;
  if (size > 0 && data[0] == '#') {
    limits.max_event_bytes = 512;
    limits.max_depth = 4;
    limits.max_batch_events = 3;
    limits.max_reported_errors = 2;
    ++data;
    --size;
  }
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  DecodeResult json = tailbus::DecodeEvents(input, limits, kNowMs);
  CheckResult(json, limits, input);
  CheckIdempotent(json, limits);
  DecodeResult lines = tailbus::DecodeNdjson(input, limits, kNowMs);
  CheckResult(lines, limits, input);
  CheckIdempotent(lines, limits);
  namespace di = tailbus::decoder_internal;
  CheckFastPath(di::DecodeEventsFast(input, limits, kNowMs),
                di::DecodeEventsReference(input, limits, kNowMs), input);
  CheckFastPath(di::DecodeNdjsonFast(input, limits, kNowMs),
                di::DecodeNdjsonReference(input, limits, kNowMs), input);
  return 0;
}
