// Access tokens: compact JWS (RFC 7515) with HMAC-SHA256, "JWT" claims
// (RFC 7519). The HMAC is OpenSSL's; this file only parses and checks.
//
// What VerifyToken accepts, strictly (anything else is refused with a
// message saying why; see docs/SECURITY.md "Tokens"):
// - at most kMaxTokenBytes bytes, three base64url segments separated by '.',
//   each canonical: alphabet A-Z a-z 0-9 - _, no '=' padding, no whitespace,
//   unused trailing bits zero (so one token has exactly one spelling);
// - header: a JSON object with "alg":"HS256" and optionally "typ":"JWT",
//   nothing else (no "none", no other algorithm, no "kid"/"jku"/"crit");
// - signature: 32 bytes, compared in constant time (CRYPTO_memcmp) before the
//   payload is parsed;
// - payload: a JSON object without duplicate keys;
//   `sub` (required) a non-empty string; `exp` (required) an integer, seconds
//   since the epoch; `nbf` (optional) an integer; `scope` (optional) a
//   space-separated string (RFC 8693) or an array of strings: `publish`,
//   `subscribe`, `admin`; other values are IGNORED (they grant nothing, and
//   tokens shared with other services may carry their own scopes);
//   `sessions` (optional) an array of session ids, or ["*"] for every
//   session ("*" must be alone); a missing scope or sessions grants nothing;
//   other claims (iat, iss, aud, jti, ...) are ignored.
// - time: expired when now >= exp + kClockLeewaySeconds; not yet valid when
//   now + kClockLeewaySeconds < nbf.
//
// Pure functions, thread-safe, never throw.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tailbus {

// Largest token accepted, bytes (a header line or query argument of this size
// is still reasonable; real tokens are a few hundred bytes).
inline constexpr size_t kMaxTokenBytes = 8 * 1024;
// Tolerated clock difference between the minting host and the server.
inline constexpr int64_t kClockLeewaySeconds = 5;
// Shortest secret the CLI and the server accept (HS256 keys should carry at
// least the hash's 256 bits; RFC 7518 §3.2).
inline constexpr size_t kMinSecretBytes = 32;

struct TokenClaims {
  std::string subject;       // sub
  int64_t expires_at_s = 0;  // exp
  bool can_publish = false, can_subscribe = false, is_admin = false;
  bool all_sessions = false;          // sessions == ["*"]
  std::vector<std::string> sessions;  // when !all_sessions
  bool AllowsSession(std::string_view session_id) const;
};

// Verifies signature, algorithm, structure and expiry. Errors (InvalidArgument)
// say why ("token: expired", "token: bad signature", "token: claim exp:
// missing", ...) and never contain the token. Never throws.
[[nodiscard]] Result<TokenClaims> VerifyToken(std::string_view token, std::string_view secret,
                                              int64_t now_s);

// Signs `claims` (sub, exp, scope as a space-separated string, sessions).
// Fails on an empty secret or subject, exp <= 0, or a session id VerifyToken
// would refuse.
[[nodiscard]] Result<std::string> MintToken(const TokenClaims& claims, std::string_view secret);

// Base64url without padding (RFC 4648 §5), exposed for tests and the CLI.
std::string Base64UrlEncode(std::string_view bytes);
// Strict inverse of Base64UrlEncode: fails on padding, other characters,
// an impossible length or non-zero unused bits.
[[nodiscard]] Result<std::string> Base64UrlDecode(std::string_view text);

}  // namespace tailbus
