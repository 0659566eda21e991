// Access control: the pure checks (auth.h), then the Server::Impl glue that
// reads headers, answers 401/403 and closes streams whose token expired.
//
// Invariants:
// - a token is never logged, echoed in an error or stored beyond the
//   connection's verified claims;
// - with auth off (no secret) none of this runs: conn->claims stays null;
// - a long-lived connection (WebSocket, SSE) is closed with 4401 once
//   now >= exp + kClockLeewaySeconds (the same instant VerifyToken would
//   start refusing the token), checked by Housekeeping once a second.
#include "ws/auth.h"

#include <fmt/format.h>

#include <cctype>
#include <chrono>

#include "ws/frames.h"
#include "ws/server_internal.h"
#include "ws/wire.h"

namespace tailbus::ws {
namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

AuthResult Unauthorized(std::string message) {
  return AuthResult{wire::kUnauthorized, std::move(message), {}};
}

AuthResult Forbidden(std::string message) {
  return AuthResult{wire::kForbidden, std::move(message), {}};
}

std::string Quoted(std::string_view session) {
  std::string out = "\"";
  out += session.substr(0, 128);
  out += '"';
  return out;
}

int64_t WallSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TokenSource FindToken(std::string_view authorization, const QueryArgs& args) {
  TokenSource src;
  if (!authorization.empty()) {
    if (!StartsWithNoCase(authorization, "bearer ")) {
      src.error = "the Authorization header must be \"Bearer <token>\"";
      return src;
    }
    std::string_view token = authorization.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    src.token = token;
    return src;
  }
  src.token = args.Get("token");
  return src;
}

AuthResult Authenticate(std::string_view secret, std::string_view authorization,
                        const QueryArgs& args, int64_t now_s, TokenClaims* claims) {
  TokenSource src = FindToken(authorization, args);
  if (!src.error.empty()) return Unauthorized(std::move(src.error));
  if (!src.token || src.token->empty()) {
    return Unauthorized("a token is required (Authorization: Bearer <token>, or ?token=<token>)");
  }
  Result<TokenClaims> verified = VerifyToken(*src.token, secret, now_s);
  if (!verified.ok()) return Unauthorized(verified.status().message());
  *claims = std::move(*verified);
  return {};
}

AuthResult Authorize(const TokenClaims& claims, const Requirement& need) {
  switch (need.kind) {
    case Requirement::kPublic:
    case Requirement::kAnyToken:
      return {};
    case Requirement::kRead:
      if (!claims.can_subscribe) return Forbidden("the token lacks the \"subscribe\" scope");
      if (need.session) {
        if (!claims.AllowsSession(*need.session)) {
          return Forbidden("the token does not allow session " + Quoted(*need.session));
        }
      } else if (!claims.all_sessions) {
        return Forbidden(
            "reading every session needs a token with sessions [\"*\"] (bind the request to "
            "one session instead)");
      }
      return {};
    case Requirement::kAllSessions:
      if (!claims.all_sessions) return Forbidden("this needs a token with sessions [\"*\"]");
      return {};
    case Requirement::kPublish:
      if (!claims.can_publish) return Forbidden("the token lacks the \"publish\" scope");
      return {};
    case Requirement::kAdmin:
      if (!claims.is_admin) return Forbidden("the token lacks the \"admin\" scope");
      if (need.session && !claims.AllowsSession(*need.session)) {
        return Forbidden("the token does not allow session " + Quoted(*need.session));
      }
      return {};
  }
  return Forbidden("not allowed");
}

AuthResult CheckPublish(const TokenClaims& claims, std::span<const Event> events) {
  AuthResult r = Authorize(claims, Requirement{Requirement::kPublish, {}});
  if (!r.ok()) return r;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!claims.AllowsSession(events[i].header.session_id)) {
      r =
          Forbidden(fmt::format("events[{}].session_id: the token does not allow session {} "
                                "(nothing was appended)",
                                i, Quoted(events[i].header.session_id)));
      r.details.push_back(FieldError{i, "session_id", "not allowed by the token"});
      return r;
    }
  }
  return r;
}

AuthResult Authorize(const TokenClaims* claims, const Requirement& need) {
  if (claims == nullptr) return Unauthorized("a token is required");
  return Authorize(*claims, need);
}

AuthResult CheckPublish(const TokenClaims* claims, std::span<const Event> events) {
  if (claims == nullptr) return Unauthorized("a token is required");
  return CheckPublish(*claims, events);
}

std::string WwwAuthenticate(const AuthResult& result) {
  if (result.code == wire::kForbidden) {
    return "Bearer realm=\"tailbus\", error=\"insufficient_scope\"";
  }
  if (result.message.rfind("a token is required", 0) == 0) return "Bearer realm=\"tailbus\"";
  return "Bearer realm=\"tailbus\", error=\"invalid_token\"";
}

// ---- Server::Impl glue ---------------------------------------------------------

AuthResult Server::Impl::AuthorizeRequest(Conn* conn, const QueryArgs& args,
                                          const Requirement& need) {
  conn->claims.reset();
  if (!auth_on() || need.kind == Requirement::kPublic) return {};
  TokenClaims claims;
  AuthResult r = Authenticate(options_.auth_secret, Header(conn->wsi, WSI_TOKEN_HTTP_AUTHORIZATION),
                              args, WallSeconds(), &claims);
  if (!r.ok()) return r;
  r = Authorize(claims, need);
  if (!r.ok()) return r;
  conn->claims = std::make_shared<const TokenClaims>(std::move(claims));
  return r;
}

int Server::Impl::DenyHttp(Conn* conn, const AuthResult& result, bool close_now) {
  std::vector<std::pair<std::string, std::string>> headers = {
      {"www-authenticate", WwwAuthenticate(result)}};
  if (close_now) return RespondNowAndClose(conn, result.code, result.message, std::move(headers));
  RespondError(conn, result.code, result.message, result.details, {}, std::move(headers));
  return 0;
}

void Server::Impl::DenySubscriber(Conn* conn, const AuthResult& result) {
  FailSubscriber(
      conn, result.code, result.message,
      result.code == wire::kUnauthorized ? wire::kCloseUnauthorized : wire::kCloseForbidden);
}

void Server::Impl::WatchExpiry(Conn* conn) {
  if (conn->claims == nullptr) return;
  expiries_.emplace(conn->claims->expires_at_s, conn->id);
}

void Server::Impl::CloseExpired() {
  const int64_t now_s = WallSeconds();
  while (!expiries_.empty() && expiries_.begin()->first <= now_s - kClockLeewaySeconds) {
    const auto [exp, id] = *expiries_.begin();
    expiries_.erase(expiries_.begin());
    Conn* conn = FindConn(id);
    // The connection may be gone, or (HTTP keep-alive) carry another token now.
    if (conn == nullptr || conn->claims == nullptr || conn->claims->expires_at_s != exp ||
        (conn->kind != ConnKind::kWebSocket && conn->kind != ConnKind::kSse) ||
        conn->close_code != 0) {
      continue;
    }
    DenySubscriber(conn, Unauthorized("token: expired (the connection is closed at the token's "
                                      "exp; reconnect with a new token and resume with after=)"));
  }
}

}  // namespace tailbus::ws
