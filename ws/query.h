// Request-line parsing helpers: query arguments, path segments, session ids
// from URLs, and the --listen address. Pure functions, no libwebsockets.
//
// Percent-decoding: libwebsockets 4.1 decodes the request URI itself while
// parsing (path and arguments; `+` becomes a space; `&` and `;` separate
// arguments unless percent-encoded; an invalid `%xx` is refused with 403), and
// it folds `//`, `/./` and `/../`. What reaches us is already decoded, so these
// helpers never decode again: doing so would turn `%2541` into `A`. The
// consequence for clients: a session id containing `/` cannot be addressed in
// a path (`/ws/events/a%2Fb` is `/ws/events/a/b`); use `?session_id=` instead.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tailbus::ws {

// The query arguments of one request.
class QueryArgs {
 public:
  QueryArgs() = default;

  // `fragments` are the decoded "name=value" strings, one per argument ("name"
  // alone means an empty value). Fails (InvalidArgument naming the argument)
  // on an empty name or an argument given twice, and on more than 64
  // arguments.
  static Result<QueryArgs> Parse(const std::vector<std::string>& fragments);

  std::optional<std::string_view> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }

  // An integer in [min, max]; nullopt when absent. InvalidArgument such as
  // `after: must be an integer in [0, 9223372036854775807], got "x"`.
  Result<std::optional<int64_t>> GetInt(std::string_view name, int64_t min, int64_t max) const;

  // "1", "true", "yes" / "0", "false", "no" (and "" for true: `?strict`).
  Result<std::optional<bool>> GetBool(std::string_view name) const;

  const std::vector<std::pair<std::string, std::string>>& all() const { return args_; }

 private:
  std::vector<std::pair<std::string, std::string>> args_;
};

// Strict integer parsing: optional '-', digits only, no overflow.
std::optional<int64_t> ParseInt64(std::string_view text);

// "/api/sessions/abc/events" -> {"api", "sessions", "abc", "events"}. Empty
// segments (a trailing '/') are dropped.
std::vector<std::string_view> SplitPath(std::string_view path);

// A session id given in a path or a query: 1..128 bytes of UTF-8, no control
// characters (the event decoder's rule for session_id).
Status ValidateSessionId(std::string_view id);

// --listen: "HOST:PORT" with HOST an IPv4 literal, "[IPv6]" or "localhost";
// ":PORT" means every IPv4 interface. PORT 0 picks a free port.
struct ListenAddress {
  std::string host;  // numeric address to bind
  int port = 0;
  bool ipv6 = false;
  bool loopback = false;  // 127.0.0.0/8 or ::1
};
Result<ListenAddress> ParseListenAddress(std::string_view text);

// "a, b,,c" -> {"a", "b", "c"} (trimmed, empty items dropped).
std::vector<std::string> SplitList(std::string_view text, char separator = ',');

}  // namespace tailbus::ws
