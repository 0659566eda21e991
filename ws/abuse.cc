// Abuse limits past the connection counts (docs/SECURITY.md "Abuse limits"):
// connection rate per IP, connections per IP still sending their request
// headers, the header timeout, and per-connection publish and subscribe rates.
//
// Invariants (network thread only, nothing locked):
// - A Conn is in headers_pending_ and counted in pending_per_ip_[its IP]
//   exactly while conn->headers_pending; entries reaching 0 are erased, so
//   pending_per_ip_ never holds more entries than there are open connections.
// - connection_rate_ holds at most --max-tracked-ips entries (ws/rate_limit.h).
// - A rate-limited publish appends nothing: the check runs before decoding.
#include <fmt/format.h>

#include <chrono>
#include <vector>

#include "ws/server_internal.h"
#include "ws/wire.h"

namespace tailbus::ws {
namespace {

int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool Check(MessageLimiter& limiter, const RateLimit& limit, uint32_t strikes,
           int64_t* retry_after_s, bool* close) {
  const int64_t now = SteadyMicros();
  const MessageLimiter::Verdict v = limiter.Check(limit, strikes, now);
  if (v == MessageLimiter::Verdict::kAllow) return true;
  *retry_after_s = RetryAfterSeconds(limiter.MicrosUntilToken(limit, now));
  *close = v == MessageLimiter::Verdict::kClose;
  return false;
}

}  // namespace

std::optional<std::string_view> Server::Impl::CheckNewConnection(const std::string& ip) {
  auto pending = pending_per_ip_.find(ip);
  if (pending != pending_per_ip_.end() && pending->second >= options_.max_pending_per_ip) {
    // It could not read an answer before finishing its own request anyway.
    ++metrics_.connections_rejected;
    metrics_.CountRejected(wire::kTooManyPendingConnections);
    return std::nullopt;
  }
  if (!connection_rate_.Allow(ip, SteadyMicros())) return wire::kConnectionRateLimited;
  return std::string_view();
}

void Server::Impl::StartHeaderClock(Conn* conn) {
  conn->headers_since_ms = Now();
  if (conn->headers_pending) return;
  conn->headers_pending = true;
  ++pending_per_ip_[conn->peer_ip];
  headers_pending_.insert(conn);
}

void Server::Impl::MarkHeadersDone(Conn* conn) {
  if (!conn->headers_pending) return;
  conn->headers_pending = false;
  headers_pending_.erase(conn);
  auto it = pending_per_ip_.find(conn->peer_ip);
  if (it != pending_per_ip_.end() && --it->second == 0) pending_per_ip_.erase(it);
}

void Server::Impl::OnConnDestroyed(Conn* conn) { MarkHeadersDone(conn); }

void Server::Impl::EnforceHeaderTimeout(int64_t now_ms) {
  connection_rate_.Sweep(SteadyMicros());
  std::vector<Conn*> expired;
  for (Conn* conn : headers_pending_) {
    if (now_ms - conn->headers_since_ms >= options_.header_timeout.count()) expired.push_back(conn);
  }
  for (Conn* conn : expired) {
    MarkHeadersDone(conn);  // once: the close below completes asynchronously
    metrics_.CountRejected(wire::kHeaderTimeout);
    lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  }
}

std::string_view Server::Impl::RejectMessage(std::string_view code) {
  if (code == wire::kTooManyConnections) return "too many connections (--max-connections)";
  if (code == wire::kConnectionRateLimited) {
    return "too many new connections from your address (--connection-rate-per-ip); retry later";
  }
  return "too many connections from your address (--max-connections-per-ip)";
}

bool Server::Impl::AllowPublish(Conn* conn, int64_t* retry_after_s, bool* close) {
  return Check(conn->publish_limiter, RateLimit{options_.publish_rate, options_.publish_burst},
               options_.rate_limit_strikes, retry_after_s, close);
}

bool Server::Impl::AllowSubscribe(Conn* conn, int64_t* retry_after_s, bool* close) {
  return Check(conn->subscribe_limiter,
               RateLimit{options_.subscribe_rate, options_.subscribe_burst},
               options_.rate_limit_strikes, retry_after_s, close);
}

}  // namespace tailbus::ws
