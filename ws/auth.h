// Access control for the server (docs/SECURITY.md "Access control"): where a
// request's token comes from, and whether verified claims allow a request.
// Pure functions (no libwebsockets, no state), called by http_api.cc,
// ws_subscription.cc and sse.cc through the thin Server::Impl wrappers at the
// bottom of auth.cc.
//
// Rules (with --auth-secret-file; without it nothing here is called):
//   GET /api/status, the UI's files, OPTIONS        public
//   GET / (JSON index)                              any valid token
//   read one session (history, stream, WebSocket    `subscribe` + the session in `sessions`
//     bound to it, GET /api/sessions/{id})
//   all-session reads (/ws unbound, /api/stream,    `subscribe` + sessions ["*"]
//     GET /api/events, GET /api/sessions)
//   /metrics, /api/websocket-metrics                sessions ["*"]
//   publish (POST /api/events, WS publish/message)  `publish` + every event's session
//   DELETE /api/sessions/{id}                       `admin` + the session in `sessions`
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/event_decoder.h"
#include "core/token.h"
#include "ws/query.h"

namespace tailbus::ws {

// The outcome of a check. `code` is empty when allowed, else wire::kUnauthorized
// (no/invalid token: HTTP 401, close 4401) or wire::kForbidden (valid token
// without the right: HTTP 403, close 4403).
struct AuthResult {
  std::string_view code;
  std::string message;
  std::vector<FieldError> details;  // publish: the first forbidden event
  bool ok() const { return code.empty(); }
};

// What a request needs.
struct Requirement {
  enum Kind {
    kPublic,       // nothing
    kAnyToken,     // a valid token
    kRead,         // subscribe scope + `session` (nullopt: every session, ["*"])
    kAllSessions,  // sessions ["*"], any scope (metrics)
    kPublish,      // publish scope; each event's session is checked by CheckPublish
    kAdmin,        // admin scope + `session`
  };
  Kind kind = kPublic;
  std::optional<std::string> session;
};

// The token of a request: `Authorization: Bearer <token>` (scheme
// case-insensitive) if that header is present, else `?token=`. nullopt: none
// given. A present Authorization header with another scheme is an error
// (returned as a failed AuthResult via Authenticate).
struct TokenSource {
  std::optional<std::string_view> token;
  std::string error;  // non-empty: the Authorization header is malformed
};
TokenSource FindToken(std::string_view authorization_header, const QueryArgs& args);

// Verifies the request's token. On success `*claims` is set.
AuthResult Authenticate(std::string_view secret, std::string_view authorization_header,
                        const QueryArgs& args, int64_t now_s, TokenClaims* claims);

// Whether `claims` meet `need` (never called for kPublic).
AuthResult Authorize(const TokenClaims& claims, const Requirement& need);

// Publish: the scope, then every event's session. A batch with one forbidden
// event is refused whole; the detail names `events[i].session_id`.
AuthResult CheckPublish(const TokenClaims& claims, std::span<const Event> events);

// The same for a connection's stored claims: null claims (auth on, but no
// verified token recorded) are always refused as unauthorized.
AuthResult Authorize(const TokenClaims* claims, const Requirement& need);
AuthResult CheckPublish(const TokenClaims* claims, std::span<const Event> events);

// The `WWW-Authenticate` value for a failed result (RFC 6750 §3).
std::string WwwAuthenticate(const AuthResult& result);

}  // namespace tailbus::ws
