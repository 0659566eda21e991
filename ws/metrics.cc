#include "ws/metrics.h"

#include <fmt/format.h>

#include <algorithm>

#include "ws/frames.h"

namespace tailbus::ws {
namespace {

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

void Counter(std::string* out, std::string_view name, std::string_view help, uint64_t value) {
  fmt::format_to(std::back_inserter(*out), "# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name,
                 help, value);
}

void Gauge(std::string* out, std::string_view name, std::string_view help, double value) {
  fmt::format_to(std::back_inserter(*out), "# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name,
                 help, value);
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  ++counts_[static_cast<size_t>(it - bounds_.begin())];
  ++count_;
  sum_ += value;
}

void Histogram::AppendPrometheus(std::string* out, std::string_view name,
                                 std::string_view help) const {
  fmt::format_to(std::back_inserter(*out), "# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    fmt::format_to(std::back_inserter(*out), "{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i],
                   cumulative);
  }
  fmt::format_to(std::back_inserter(*out),
                 "{0}_bucket{{le=\"+Inf\"}} {1}\n{0}_sum {2}\n{0}_count {1}\n", name, count_, sum_);
}

Metrics::Metrics() : commit_latency(LatencyBuckets()), delivery_latency(LatencyBuckets()) {}

void Metrics::CountRejected(std::string_view reason) {
  auto it = rejected_.find(reason);
  if (it == rejected_.end()) {
    rejected_.emplace(std::string(reason), 1);
  } else {
    ++it->second;
  }
}

SessionStats& Metrics::AttachSession(const std::string& session_id, int64_t now_ms) {
  SessionStats& stats = sessions_[session_id];
  if (stats.connected_clients == 0) stats.since_ms = now_ms;
  ++stats.connected_clients;
  return stats;
}

void Metrics::DetachSession(const std::string& session_id) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return;
  if (--it->second.connected_clients <= 0) sessions_.erase(it);
}

SessionStats* Metrics::FindSession(const std::string& session_id) {
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? nullptr : &it->second;
}

std::string Metrics::Prometheus(const Gauges& g) const {
  std::string out;
  out.reserve(4096);
  Counter(&out, "tailbus_appended_events_total", "Events committed through this server.",
          appended_events);
  Counter(&out, "tailbus_append_requests_total",
          "Append requests (HTTP POST, WebSocket publish and message).", append_requests);
  Counter(&out, "tailbus_delivered_events_total", "Events written to subscribers.",
          delivered_events);
  Counter(&out, "tailbus_delivered_bytes_total", "Bytes of frames written to subscribers.",
          delivered_bytes);
  Counter(&out, "tailbus_delivered_frames_total", "Frames written to subscribers.",
          delivered_frames);
  Counter(&out, "tailbus_connections_accepted_total", "Accepted TCP connections.",
          connections_accepted);
  Counter(&out, "tailbus_connections_rejected_total", "Connections refused by a limit.",
          connections_rejected);
  Counter(&out, "tailbus_http_requests_total", "HTTP requests served.", http_requests);
  Counter(&out, "tailbus_slow_client_closes_total",
          "Subscribers closed because they stopped reading (stall timeout).", slow_client_closes);
  Counter(&out, "tailbus_resets_total", "Reset frames sent (epoch mismatch or eviction).",
          resets_sent);
  out += "# HELP tailbus_rejected_inputs_total Rejected requests and messages by reason.\n";
  out += "# TYPE tailbus_rejected_inputs_total counter\n";
  for (const auto& [reason, count] : rejected_) {
    fmt::format_to(std::back_inserter(out), "tailbus_rejected_inputs_total{{reason=\"{}\"}} {}\n",
                   reason, count);
  }
  Gauge(&out, "tailbus_connections", "Open TCP connections.", static_cast<double>(g.connections));
  Gauge(&out, "tailbus_websocket_connections", "Open WebSocket connections.",
        static_cast<double>(g.ws_connections));
  Gauge(&out, "tailbus_sse_connections", "Open SSE streams.",
        static_cast<double>(g.sse_connections));
  Gauge(&out, "tailbus_subscribers", "Active subscriptions (WebSocket and SSE).",
        static_cast<double>(g.subscribers));
  Gauge(&out, "tailbus_active_sessions", "Sessions with at least one bound subscriber.",
        static_cast<double>(sessions_.size()));
  Gauge(&out, "tailbus_head_offset", "Last committed offset.", static_cast<double>(g.head));
  Gauge(&out, "tailbus_earliest_offset", "First retained offset.", static_cast<double>(g.earliest));
  Gauge(&out, "tailbus_uptime_seconds", "Seconds since the server started.",
        static_cast<double>(g.uptime_ms) / 1000.0);
  commit_latency.AppendPrometheus(&out, "tailbus_commit_latency_seconds",
                                  "Time from an append being accepted to its durable commit.");
  delivery_latency.AppendPrometheus(
      &out, "tailbus_delivery_latency_seconds",
      "Time from an event's ingestion to its frame being written to a live subscriber.");
  return out;
}

std::string Metrics::WebSocketMetricsJson(const Gauges& g, int64_t now_ms) const {
  std::string out = fmt::format(
      "{{\"active_sessions\":{},\"total_connected_clients\":{},\"total_events_broadcast\":{},"
      "\"total_bytes_sent\":{},\"uptime_seconds\":{:.3f},\"sessions\":{{",
      sessions_.size(), g.subscribers, delivered_events, delivered_bytes,
      static_cast<double>(g.uptime_ms) / 1000.0);
  bool first = true;
  for (const auto& [id, s] : sessions_) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(&out, id);
    fmt::format_to(std::back_inserter(out),
                   ":{{\"connected_clients\":{},\"total_events_sent\":{},\"total_bytes_sent\":{},"
                   "\"uptime_seconds\":{:.3f}}}",
                   s.connected_clients, s.total_events_sent, s.total_bytes_sent,
                   static_cast<double>(now_ms - s.since_ms) / 1000.0);
  }
  out += "}}\n";
  return out;
}

}  // namespace tailbus::ws
