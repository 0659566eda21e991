#include "ws/query.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>
#include <limits>

#include "core/json_numbers.h"

namespace tailbus::ws {
namespace {

constexpr size_t kMaxSessionIdBytes = 128;
// No endpoint takes more than a dozen arguments; the bound also keeps the
// duplicate check (linear per argument) cheap. (libwebsockets 4.1 itself drops
// a request with more than about 90 header fragments, arguments included,
// without an answer; up to there the client gets this clear 400.)
constexpr size_t kMaxQueryArgs = 64;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value quoted for an error message, shortened.
std::string Quoted(std::string_view value) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  if (value.size() > kMax) {
    // Cut at a character boundary: the message may go out in a WebSocket
    // text frame, which must be valid UTF-8.
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
    out.append(value.substr(0, cut));
    out += "…";
  } else {
    out.append(value);
  }
  out += '"';
  return out;
}

}  // namespace

Result<QueryArgs> QueryArgs::Parse(const std::vector<std::string>& fragments) {
  QueryArgs out;
  for (const std::string& fragment : fragments) {
    if (fragment.empty()) continue;  // "a=1&&b=2"
    if (out.args_.size() == kMaxQueryArgs) {
      return Status::InvalidArgument(fmt::format("more than {} query arguments", kMaxQueryArgs));
    }
    const size_t eq = fragment.find('=');
    std::string name = fragment.substr(0, eq);
    std::string value = eq == std::string::npos ? std::string() : fragment.substr(eq + 1);
    if (name.empty()) {
      return Status::InvalidArgument(
          fmt::format("query argument {} has no name", Quoted(fragment)));
    }
    if (out.Has(name)) {
      return Status::InvalidArgument(fmt::format("{}: given more than once", name));
    }
    out.args_.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

std::optional<std::string_view> QueryArgs::Get(std::string_view name) const {
  for (const auto& [n, v] : args_) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<int64_t> ParseInt64(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

Result<std::optional<int64_t>> QueryArgs::GetInt(std::string_view name, int64_t min,
                                                 int64_t max) const {
  std::optional<std::string_view> raw = Get(name);
  if (!raw) return std::optional<int64_t>();
  std::optional<int64_t> value = ParseInt64(*raw);
  if (!value || *value < min || *value > max) {
    return Status::InvalidArgument(
        fmt::format("{}: must be an integer in [{}, {}], got {}", name, min, max, Quoted(*raw)));
  }
  return std::optional<int64_t>(*value);
}

Result<std::optional<bool>> QueryArgs::GetBool(std::string_view name) const {
  std::optional<std::string_view> raw = Get(name);
  if (!raw) return std::optional<bool>();
  if (raw->empty() || *raw == "1" || *raw == "true" || *raw == "yes") {
    return std::optional<bool>(true);
  }
  if (*raw == "0" || *raw == "false" || *raw == "no") return std::optional<bool>(false);
  return Status::InvalidArgument(
      fmt::format("{}: must be true or false (1 or 0), got {}", name, Quoted(*raw)));
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

Status ValidateSessionId(std::string_view id) {
  if (id.empty() || id.size() > kMaxSessionIdBytes) {
    return Status::InvalidArgument(
        fmt::format("session_id: must be 1-{} bytes, got {} bytes", kMaxSessionIdBytes, id.size()));
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument("session_id: must not contain control characters");
    }
  }
  // The event decoder accepts only well-formed UTF-8, so an id that is not can match no event,
  // and echoing it would put invalid UTF-8 in a text frame.
  if (!IsValidUtf8(id)) return Status::InvalidArgument("session_id: must be valid UTF-8");
  return Status::Ok();
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(
        fmt::format("--listen {}: {} (expected HOST:PORT, e.g. 127.0.0.1:8080, [::1]:8080 or "
                    ":8080)",
                    Quoted(text), why));
  };
  ListenAddress out;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("bad IPv6 form");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    out.ipv6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  std::optional<int64_t> p = ParseInt64(port);
  if (!p || *p < 0 || *p > 65535) return bad("port must be 0-65535");
  out.port = static_cast<int>(*p);

  if (host.empty() && !out.ipv6) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  out.host = std::string(host);
  if (out.ipv6) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, out.host.c_str(), &a6) != 1) return bad("not an IPv6 address");
    out.loopback = IN6_IS_ADDR_LOOPBACK(&a6);
  } else {
    in_addr a4{};
    if (inet_pton(AF_INET, out.host.c_str(), &a4) != 1) return bad("not an IPv4 address");
    out.loopback = (ntohl(a4.s_addr) >> 24) == 127;
  }
  return out;
}

std::vector<std::string> SplitList(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(separator, pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = Trim(text.substr(pos, end - pos));
    if (!item.empty()) out.emplace_back(item);
    pos = end + 1;
  }
  return out;
}

}  // namespace tailbus::ws
