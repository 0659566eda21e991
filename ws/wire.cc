#include "ws/wire.h"

#include <array>

namespace tailbus::wire {
namespace {

constexpr std::array kCloseCodes = {
    CloseCodeInfo{kCloseNormal, "normal closure (the client asked to close)"},
    CloseCodeInfo{kCloseGoingAway, "the server is shutting down; reconnect later and resume"},
    CloseCodeInfo{kCloseProtocolError, "malformed WebSocket framing"},
    CloseCodeInfo{kCloseInvalidPayload, "a text frame that is not valid UTF-8"},
    CloseCodeInfo{kClosePolicyViolation,
                  "kept sending past a rate limit after --rate-limit-strikes rejections in a row"},
    CloseCodeInfo{kCloseMessageTooBig, "an incoming message exceeded --max-message-bytes"},
    CloseCodeInfo{kCloseInternalError, "the log could not be read; reconnect and resume"},
    CloseCodeInfo{kCloseBadRequest, "bad path or query parameter at connect"},
    CloseCodeInfo{kCloseOriginNotAllowed, "the Origin header is not allowed (--allowed-origins)"},
    CloseCodeInfo{kCloseUnauthorized,
                  "no token, or a forged, malformed or expired one (also sent when the token "
                  "expires on an open connection)"},
    CloseCodeInfo{kCloseForbidden, "a valid token without the right (scope or session)"},
    CloseCodeInfo{kCloseNotFound, "no WebSocket endpoint at this path"},
    CloseCodeInfo{kCloseStalled,
                  "the client did not read for --stall-timeout while data was pending"},
    CloseCodeInfo{kCloseResetRequired,
                  "strict=1 and the requested position cannot be served (epoch or eviction)"},
    CloseCodeInfo{kCloseTooManyConnections,
                  "refused at connect: a connection, connection-rate or subscriber limit "
                  "(the error frame names which)"},
};

constexpr std::array kErrorCodes = {
    ErrorCodeInfo{kBadRequest, 400, "a malformed parameter (after, limit, batch_size, path, ...)"},
    ErrorCodeInfo{kBadFilter, 400, "the filter is not valid (the message names the key)"},
    ErrorCodeInfo{kBadJson, 400, "a message or body that is not valid JSON"},
    ErrorCodeInfo{kBadMessage, 0, "a WebSocket message without a valid type or fields"},
    ErrorCodeInfo{kUnknownType, 0, "a WebSocket message of an unknown type"},
    ErrorCodeInfo{kBinaryNotSupported, 0, "a binary WebSocket message (send text)"},
    ErrorCodeInfo{kInvalidEvent, 400, "an event failed validation; nothing was appended"},
    ErrorCodeInfo{kTooManyEvents, 413, "more events in one publish than --max-events-per-publish"},
    ErrorCodeInfo{kMessageTooBig, 0, "a WebSocket message over --max-message-bytes (then 1009)"},
    ErrorCodeInfo{kNotFound, 404, "no endpoint at this path"},
    ErrorCodeInfo{kSessionNotFound, 404, "the session does not exist or was deleted"},
    ErrorCodeInfo{kMethodNotAllowed, 405, "the endpoint does not accept this method"},
    ErrorCodeInfo{kLengthRequired, 411,
                  "a POST without Content-Length (chunked bodies are refused)"},
    ErrorCodeInfo{kBodyTooLarge, 413, "Content-Length over --max-body-bytes"},
    ErrorCodeInfo{kUnsupportedMediaType, 415,
                  "a POST body whose Content-Type is neither JSON, NDJSON nor plain text"},
    ErrorCodeInfo{kOffsetEvicted, 410, "the requested offset is older than the earliest retained"},
    ErrorCodeInfo{kEpochMismatch, 409, "the client's epoch is not this log's epoch"},
    ErrorCodeInfo{kOffsetAhead, 409, "the client's offset is beyond this log's head"},
    ErrorCodeInfo{kOriginNotAllowed, 403, "the Origin header is not allowed"},
    ErrorCodeInfo{kUnauthorized, 401,
                  "no token, or a forged, malformed or expired one (WWW-Authenticate: Bearer)"},
    ErrorCodeInfo{kForbidden, 403,
                  "a valid token without the right (scope, or a session not in `sessions`)"},
    ErrorCodeInfo{kTooManyConnections, 503, "--max-connections reached"},
    ErrorCodeInfo{kTooManyConnectionsPerIp, 429, "--max-connections-per-ip reached"},
    ErrorCodeInfo{kConnectionRateLimited, 429,
                  "--connection-rate-per-ip reached; Retry-After says when to retry"},
    ErrorCodeInfo{kRateLimited, 429,
                  "--publish-rate reached on this connection; nothing appended; Retry-After"},
    ErrorCodeInfo{kSubscribeRateLimited, 0,
                  "--subscribe-rate reached; the previous subscription stays"},
    ErrorCodeInfo{kTooManyPendingConnections, 0,
                  "--max-pending-per-ip reached: TCP closed at once (metric reason only)"},
    ErrorCodeInfo{kHeaderTimeout, 0,
                  "request headers not complete within --header-timeout: closed (metric reason "
                  "only)"},
    ErrorCodeInfo{kTooManySubscribers, 429, "--max-clients-per-session reached for this session"},
    ErrorCodeInfo{kOverloaded, 503, "the append queue is full; retry later"},
    ErrorCodeInfo{kUnavailable, 503, "the log cannot write (disk full, I/O error, closed)"},
    ErrorCodeInfo{kShuttingDown, 503, "the server is shutting down"},
    ErrorCodeInfo{kStalled, 0, "the client stopped reading while data was pending (then 4408)"},
    ErrorCodeInfo{kIdleTimeout, 0,
                  "no traffic, not even a PONG, for --idle-timeout: dropped (metric reason only)"},
    ErrorCodeInfo{kInternal, 500, "an unexpected server error"},
};

}  // namespace

std::span<const CloseCodeInfo> AllCloseCodes() { return kCloseCodes; }
std::span<const ErrorCodeInfo> AllErrorCodes() { return kErrorCodes; }

int HttpStatusFor(std::string_view code) {
  for (const ErrorCodeInfo& info : kErrorCodes) {
    if (info.code == code) return info.http_status == 0 ? 400 : info.http_status;
  }
  return 500;
}

std::string_view ErrorForStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kResourceExhausted:
      return kOverloaded;
    case StatusCode::kDiskFull:
    case StatusCode::kIoError:
    case StatusCode::kBusy:
    case StatusCode::kUnavailable:
    case StatusCode::kCorruption:
      return kUnavailable;
    case StatusCode::kInvalidArgument:
      return kInvalidEvent;
    case StatusCode::kEvicted:
      return kOffsetEvicted;
    case StatusCode::kNotFound:
      return kNotFound;
    default:
      return kInternal;
  }
}

}  // namespace tailbus::wire
