// Decoding producer input into validated Events.
//
// Contract:
// - Input is one JSON object, a JSON array of objects, or NDJSON (one object
//   per line; blank lines ignored).
// - Either every event is valid and `events` holds them all, in input order,
//   or `errors` is non-empty and `events` is empty: a batch with one bad event
//   is rejected whole.
// - Every error names the event's index in its batch, the field and the reason:
//   "events[3].session_id: missing",
//   "events[0].cost_tokens: must be a non-negative integer, got \"12a\"".
//   Errors that concern the whole input use field "body" and no index.
// - Pure function of (input, limits, now_ms); thread-safe.
//
// Normalisation (see README "Event model"): `type` is accepted as the event
// type when `event_type` is absent; `event_id` is generated when absent;
// `timestamp` (RFC 3339 string or epoch milliseconds) becomes an RFC 3339 UTC
// string with milliseconds; `cost_tokens` is derived from `total_tokens`, else
// `prompt_tokens + completion_tokens`; `duration_ms` from
// `execution_duration_seconds * 1000`. `offset` and `ingested_at` are
// assigned by the bus: values given by the producer are dropped (so an export
// can be imported again). Every other member is kept exactly as given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/status.h"

namespace tailbus {

struct DecodeLimits {
  // Largest normalised event, in bytes of JSON text.
  size_t max_event_bytes = 256 * 1024;
  // Deepest nesting of arrays/objects inside one event (the event object is depth 1).
  size_t max_depth = 64;
  // Most events in one batch (array or NDJSON).
  size_t max_batch_events = 10'000;
  // Most errors reported for one batch; the rest are counted, not listed.
  size_t max_reported_errors = 100;
};

struct FieldError {
  std::optional<size_t> index;  // the event's index in its batch; nullopt for the whole input
  std::string field;            // e.g. "session_id", "metadata", "body"
  std::string reason;           // e.g. "missing", "must be a string"

  // "events[3].session_id: missing", or "body: invalid JSON at byte 12: …".
  std::string ToString() const;
};

struct DecodeResult {
  std::vector<Event> events;
  std::vector<FieldError> errors;  // at most DecodeLimits::max_reported_errors
  size_t error_count = 0;          // all errors found, reported or not

  bool ok() const { return error_count == 0 && errors.empty(); }
  // InvalidArgument naming the first error (and how many more), or OK.
  Status ToStatus() const;
};

// A JSON object (one event) or a JSON array of objects.
DecodeResult DecodeEvents(std::string_view json, const DecodeLimits& limits, int64_t now_ms);

// Newline-delimited JSON objects.
DecodeResult DecodeNdjson(std::string_view text, const DecodeLimits& limits, int64_t now_ms);

// The two paths behind DecodeEvents/DecodeNdjson, exposed for tests and fuzz targets that
// check they agree. The fast path (core/json_scan.h: one pass, no DOM) handles valid input of
// the usual shape and returns nullopt whenever it gives up, always for invalid input; the
// reference path (RapidJSON DOM) handles everything and reports errors. Where the fast path
// returns a result, it is the reference path's, byte for byte (event ids aside: generated).
namespace decoder_internal {
std::optional<DecodeResult> DecodeEventsFast(std::string_view json, const DecodeLimits& limits,
                                             int64_t now_ms);
std::optional<DecodeResult> DecodeNdjsonFast(std::string_view text, const DecodeLimits& limits,
                                             int64_t now_ms);
DecodeResult DecodeEventsReference(std::string_view json, const DecodeLimits& limits,
                                   int64_t now_ms);
DecodeResult DecodeNdjsonReference(std::string_view text, const DecodeLimits& limits,
                                   int64_t now_ms);
// `e`'s body with a generated event id replaced by "ID": each decode generates
// its own, so two paths' bodies compare equal only without it.
std::string BodyWithoutGeneratedId(const Event& e);
}  // namespace decoder_internal

}  // namespace tailbus
