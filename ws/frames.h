// The JSON texts the server sends: WebSocket frames, SSE records and HTTP
// error bodies. Pure functions (no libwebsockets, no state).
//
// Encode once: an event's JSON (CommittedEvent::json) is spliced in as bytes,
// never parsed or re-serialised.
//
// Single-event frames (batch_size=1): `{"type":"event",<event members>}`.
// The event's JSON already carries `timestamp`, so nothing else is added. An
// event that has its own top-level `type` member (chat clients of
// background.md §1 publish `{"type":"assistant",…}`) is sent as it is: its own
// `type` wins and no key is ever duplicated. Clients tell event frames from
// control frames by the `event_type` member, which every event has and no
// control frame has.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/event_decoder.h"

namespace tailbus::ws {

// Appends `value` as a JSON string literal (quoted, escaped).
void AppendJsonString(std::string* out, std::string_view value);

// True when the JSON object text has a member `name` at its top level.
// Scans bytes only (strings and nesting are skipped); `json` must be a valid
// JSON object, as every committed event is.
bool HasTopLevelMember(std::string_view json, std::string_view name);

// {"type":"batch","count":N,"timestamp":"<now>","first_offset":a,"last_offset":b,"events":[…]}
void AppendBatchFrame(std::string* out, std::span<const EventPtr> events, int64_t now_ms);

// {"type":"event",<members>} or the event unchanged when it has its own `type`.
void AppendEventFrame(std::string* out, const CommittedEvent& event);

struct HelloInfo {
  std::string_view epoch;
  int64_t head = 0;
  int64_t earliest = 0;
  std::optional<std::string_view> session_id;  // the session the connection is bound to
  std::string_view filter_json;                // canonical filter (Filter::ToJson)
  std::optional<int64_t> after;                // the resume position asked for, if any
  size_t batch_size = 0;
  int64_t batch_window_ms = 0;
};
std::string HelloFrame(const HelloInfo& info);

std::string CaughtUpFrame(int64_t offset);
std::string ResetFrame(std::string_view reason, std::string_view epoch, int64_t earliest);
// {"type":"connected","receipt_id":…,"session_id":…} (background.md §2).
std::string ConnectedFrame(std::string_view receipt_id);
std::string PongFrame();

// `request_id_json` is the client's request_id as JSON text (empty: null).
std::string AckFrame(std::string_view request_id_json, std::span<const int64_t> offsets);
std::string ErrorFrame(std::string_view code, std::string_view message,
                       std::string_view request_id_json = {},
                       std::span<const FieldError> details = {});

// HTTP error body: {"error":"…","code":"…","details":[{"index":…,"field":…,"reason":…}]}.
// `extra_members` (raw JSON members such as `"earliest":5`) are appended.
std::string HttpErrorBody(std::string_view code, std::string_view message,
                          std::span<const FieldError> details = {},
                          std::string_view extra_members = {});

// SSE: "id: <offset>\ndata: <event json>\n\n".
void AppendSseEvent(std::string* out, const CommittedEvent& event);
// SSE control record: "event: <name>\ndata: <json>\n\n".
std::string SseRecord(std::string_view event_name, std::string_view data_json);

}  // namespace tailbus::ws
