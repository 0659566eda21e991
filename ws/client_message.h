// Parsing one client text message on a WebSocket connection into what the
// server should do with it. Pure (no libwebsockets, no state), thread-safe;
// the server (ws_subscription.cc) acts on the result, and fuzz/ws_frames_fuzz.cc
// feeds it arbitrary bytes.
//
// Messages (docs/PROTOCOL.md "WebSocket"):
//   ping                                  plain text ping (background.md §2)
//   {"type":"ping"}
//   {"type":"publish","event":{…}} | {"type":"publish","events":[…]}
//   {"type":"message",…}                  a chat message: the object is the event
//   {"type":"subscribe","filter":…,"session_id":…,"after":…,…}
// Any of them may carry "request_id" (any JSON value), echoed in the answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tailbus::ws {

// Raw inputs a subscription spec is built from (query arguments or the
// members of a subscribe message); validated by Server::Impl::BuildSpec.
struct SpecInput {
  std::optional<std::string> filter_json;
  std::optional<std::string> session_id;
  std::optional<int64_t> after;
  std::optional<std::string> epoch;
  std::optional<int64_t> batch_size;
  std::optional<int64_t> batch_window_ms;
  std::optional<bool> strict;
};

// Deepest nesting of arrays/objects accepted in one message. The event decoder
// allows 64 levels inside an event; a publish adds two around it. Deeper input
// is refused before anything recursive (serialisation) touches it.
inline constexpr size_t kMaxMessageDepth = 128;

struct ClientMessage {
  enum class Kind {
    kPlainPing,    // answer the text "pong"
    kPing,         // answer a pong frame
    kPublish,      // decode `events_json` (DecodeEvents) and append
    kChatMessage,  // the same; `events_json` is the message object itself
    kSubscribe,    // build a spec from `subscribe` and (re)start the subscription
    kError,        // answer an error frame; nothing else happens
  };
  Kind kind = Kind::kError;
  std::string request_id_json;  // the client's request_id as JSON text; "" when absent
  std::string events_json;      // kPublish (DOM path), kChatMessage: the events' JSON
  // kPublish from ScanPublish: the events' JSON inside the parsed text, not
  // copied (valid while that text is); events_json stays empty.
  std::string_view events_in_text;
  // The events' JSON, wherever it is.
  std::string_view events() const {
    return events_in_text.empty() ? std::string_view(events_json) : events_in_text;
  }
  SpecInput subscribe;          // kSubscribe
  std::string_view error_code;  // kError: a wire code (ws/wire.h)
  std::string error_message;    // kError: names the member and the reason
};

// `bound_session`: the session the connection is bound to; a chat message
// without "session_id" gets it. `max_events_per_publish`: a larger "events"
// array is refused (too_many_events) without being decoded. A kPublish may
// view `text` (events_in_text): keep `text` alive while the message is used.
ClientMessage ParseClientMessage(std::string_view text,
                                 const std::optional<std::string>& bound_session,
                                 size_t max_events_per_publish);

// The two paths behind ParseClientMessage, exposed for tests and the fuzz target
// that check they agree. ScanPublish (core/json_scan.h, one pass, no DOM) answers
// only well-formed publish frames and returns nullopt for anything else; its
// events_json is the frame's own text of the events. ParseWithDom answers every
// message; its events_json is the events re-serialised. Where ScanPublish answers,
// ParseWithDom gives the same message but for that text, which DecodeEvents
// reads to the same result.
namespace client_message_internal {
std::optional<ClientMessage> ScanPublish(std::string_view text, size_t max_events_per_publish);
ClientMessage ParseWithDom(std::string_view text, const std::optional<std::string>& bound_session,
                           size_t max_events_per_publish);
}  // namespace client_message_internal

// The deepest array/object nesting in JSON text (strings skipped), counting
// only up to `limit + 1`. Works on any bytes, valid JSON or not.
size_t JsonNestingDepth(std::string_view text, size_t limit);

}  // namespace tailbus::ws
