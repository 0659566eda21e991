// Every code a client can see on the wire, in one place: the WebSocket close
// codes and the error codes carried by `{"type":"error","code":…}` frames and
// by HTTP error bodies `{"error":…,"code":…}`. docs/PROTOCOL.md lists the same
// table; a test checks that every code below appears there.
//
// Internal StatusCodes (core/status.h) are mapped to these at the edge
// (ErrorForStatus); nothing else in ws/ invents a code.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/status.h"

namespace tailbus::wire {

// ---- WebSocket close codes -------------------------------------------------
// 1000-1011 are RFC 6455's; 4000-4999 are ours and mirror the HTTP status
// that means the same thing (4404 ~ 404), so they are easy to remember.
// The one exception is 4003 (origin not allowed): HTTP answers it with 403
// too, but 4403 means "the token does not allow this" and each close code
// means one thing.
enum CloseCode : uint16_t {
  kCloseNormal = 1000,              // the client asked to close
  kCloseGoingAway = 1001,           // the server is shutting down; reconnect and resume later
  kCloseProtocolError = 1002,       // malformed WebSocket framing (sent by libwebsockets)
  kCloseInvalidPayload = 1007,      // a text frame that is not valid UTF-8 (libwebsockets)
  kClosePolicyViolation = 1008,     // kept sending past a rate limit (--rate-limit-strikes)
  kCloseMessageTooBig = 1009,       // an incoming message exceeded --max-message-bytes
  kCloseInternalError = 1011,       // the log could not be read; reconnect and resume
  kCloseBadRequest = 4400,          // bad path or query parameter at connect (see the error frame)
  kCloseOriginNotAllowed = 4003,    // the Origin header is not in --allowed-origins
  kCloseUnauthorized = 4401,        // no token, or a forged, malformed or expired one (also at exp)
  kCloseForbidden = 4403,           // a valid token without the right (scope or session)
  kCloseNotFound = 4404,            // no WebSocket endpoint at this path
  kCloseStalled = 4408,             // did not read for --stall-timeout while data was pending
  kCloseResetRequired = 4409,       // strict=1 and the requested position cannot be served
  kCloseTooManyConnections = 4429,  // refused at connect: a connection, connection-rate or
                                    // subscriber limit (the error frame names which)
};

struct CloseCodeInfo {
  CloseCode code;
  std::string_view meaning;
};
std::span<const CloseCodeInfo> AllCloseCodes();

// ---- Error codes -------------------------------------------------------------
// The same string is used on HTTP and WebSocket. `http_status` is what an HTTP
// request answers with (0: WebSocket only).
struct ErrorCodeInfo {
  std::string_view code;
  int http_status;
  std::string_view meaning;
};

inline constexpr std::string_view kBadRequest = "bad_request";
inline constexpr std::string_view kBadFilter = "bad_filter";
inline constexpr std::string_view kBadJson = "bad_json";
inline constexpr std::string_view kBadMessage = "bad_message";
inline constexpr std::string_view kUnknownType = "unknown_type";
inline constexpr std::string_view kBinaryNotSupported = "binary_not_supported";
inline constexpr std::string_view kInvalidEvent = "invalid_event";
inline constexpr std::string_view kTooManyEvents = "too_many_events";
inline constexpr std::string_view kMessageTooBig = "message_too_big";
inline constexpr std::string_view kNotFound = "not_found";
inline constexpr std::string_view kSessionNotFound = "session_not_found";
inline constexpr std::string_view kMethodNotAllowed = "method_not_allowed";
inline constexpr std::string_view kLengthRequired = "length_required";
inline constexpr std::string_view kBodyTooLarge = "body_too_large";
inline constexpr std::string_view kUnsupportedMediaType = "unsupported_media_type";
inline constexpr std::string_view kOffsetEvicted = "offset_evicted";
inline constexpr std::string_view kEpochMismatch = "epoch_mismatch";
inline constexpr std::string_view kOffsetAhead = "offset_ahead";
inline constexpr std::string_view kOriginNotAllowed = "origin_not_allowed";
inline constexpr std::string_view kUnauthorized = "unauthorized";
inline constexpr std::string_view kForbidden = "forbidden";
inline constexpr std::string_view kTooManyConnections = "too_many_connections";
inline constexpr std::string_view kTooManyConnectionsPerIp = "too_many_connections_per_ip";
inline constexpr std::string_view kConnectionRateLimited = "connection_rate_limited";
inline constexpr std::string_view kRateLimited = "rate_limited";
inline constexpr std::string_view kSubscribeRateLimited = "subscribe_rate_limited";
inline constexpr std::string_view kTooManyPendingConnections = "too_many_pending_connections";
inline constexpr std::string_view kHeaderTimeout = "header_timeout";
inline constexpr std::string_view kTooManySubscribers = "too_many_subscribers";
inline constexpr std::string_view kOverloaded = "overloaded";
inline constexpr std::string_view kUnavailable = "unavailable";
inline constexpr std::string_view kShuttingDown = "shutting_down";
inline constexpr std::string_view kStalled = "stalled";
inline constexpr std::string_view kIdleTimeout = "idle_timeout";
inline constexpr std::string_view kInternal = "internal";

std::span<const ErrorCodeInfo> AllErrorCodes();

// The HTTP status of a code above (500 for an unknown one).
int HttpStatusFor(std::string_view code);

// Maps a failed append / read Status to the error code a client sees:
// ResourceExhausted -> overloaded; DiskFull, IoError, Busy, Unavailable,
// Corruption -> unavailable; InvalidArgument -> invalid_event; Evicted ->
// offset_evicted; NotFound -> not_found; anything else -> internal.
std::string_view ErrorForStatus(const Status& status);

}  // namespace tailbus::wire
