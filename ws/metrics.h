// Server metrics: counters, gauges and histograms, rendered as Prometheus text
// (GET /metrics) and as the per-session JSON of background.md §4
// (GET /api/websocket-metrics).
//
// Threading: owned and updated by the network thread only; no atomics needed.
// Values measured on another thread (commit latency) travel to the network
// thread with the completion that carries them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tailbus::ws {

// A cumulative Prometheus histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);
  uint64_t count() const { return count_; }
  // Appends "# HELP", "# TYPE" and the _bucket/_sum/_count series.
  void AppendPrometheus(std::string* out, std::string_view name, std::string_view help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // counts_[i]: observations <= bounds_[i] (not cumulative)
  uint64_t count_ = 0;
  double sum_ = 0;
};

// What /api/websocket-metrics reports per session (background.md §4 names).
struct SessionStats {
  int64_t connected_clients = 0;
  uint64_t total_events_sent = 0;
  uint64_t total_bytes_sent = 0;
  int64_t since_ms = 0;  // when its first current client connected
};

// Point-in-time values the metrics do not track themselves.
struct Gauges {
  int64_t head = 0;
  int64_t earliest = 0;
  int64_t uptime_ms = 0;
  int64_t connections = 0;      // accepted sockets open now
  int64_t ws_connections = 0;   // WebSocket connections open now
  int64_t sse_connections = 0;  // SSE streams open now
  int64_t subscribers = 0;      // WebSocket + SSE subscriptions now
};

class Metrics {
 public:
  Metrics();

  // Counters (monotonic).
  uint64_t appended_events = 0;   // events committed through this server
  uint64_t append_requests = 0;   // POST /api/events + WebSocket publish/message
  uint64_t delivered_events = 0;  // events written to subscribers (WS + SSE)
  uint64_t delivered_bytes = 0;   // bytes of frames written to subscribers
  uint64_t delivered_frames = 0;  // frames written to subscribers
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;  // refused by a connection limit
  uint64_t http_requests = 0;
  uint64_t slow_client_closes = 0;  // closed by the stall timeout
  uint64_t resets_sent = 0;         // reset frames (epoch mismatch, eviction)

  // Rejected inputs by reason (the wire error code).
  void CountRejected(std::string_view reason);

  Histogram commit_latency;    // append accepted -> durable commit, seconds
  Histogram delivery_latency;  // event ingested -> frame written to a live subscriber, seconds

  // Per-session client stats; Attach on connect, Detach on close.
  SessionStats& AttachSession(const std::string& session_id, int64_t now_ms);
  void DetachSession(const std::string& session_id);
  SessionStats* FindSession(const std::string& session_id);

  std::string Prometheus(const Gauges& gauges) const;
  // background.md §4: {"active_sessions", "total_connected_clients",
  // "total_events_broadcast", "total_bytes_sent", "sessions": {id: {...}}}.
  std::string WebSocketMetricsJson(const Gauges& gauges, int64_t now_ms) const;

 private:
  std::map<std::string, uint64_t, std::less<>> rejected_;
  std::unordered_map<std::string, SessionStats> sessions_;
};

}  // namespace tailbus::ws
