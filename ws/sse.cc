// Server-Sent Events: GET /api/stream and GET /api/sessions/{id}/stream.
//
// The same cursor-based delivery as WebSocket (Server::Impl::Deliver), framed
// as SSE: each event is "id: <offset>\ndata: <json>\n\n"; control frames are
// named records ("event: hello", "event: reset", "event: caught_up",
// "event: error"); a ": heartbeat" comment is sent after sse_heartbeat without
// writes (lws 4.1 does not notice an idle SSE client going away otherwise).
// Resume: Last-Event-ID (or ?lastEventId=, or ?after=) is the last offset the
// client has.
//
// lws_http_mark_sse() detaches the request headers, so every header and query
// argument is read before it.
#include <fmt/format.h>

#include "ws/frames.h"
#include "ws/server_internal.h"
#include "ws/wire.h"

namespace tailbus::ws {

int Server::Impl::StartSse(Conn* conn, std::optional<std::string> session, const QueryArgs& args) {
  const std::string last_event_id = CustomHeader(conn->wsi, "last-event-id:");
  Result<SpecInput> input = SpecInputFromQuery(args);
  if (!input.ok()) {
    RespondError(conn, wire::kBadRequest, input.status().message());
    return 0;
  }
  std::optional<std::string_view> resume;
  if (!last_event_id.empty()) {
    resume = last_event_id;
  } else if (auto arg = args.Get("lastEventId"); arg) {
    resume = *arg;
  }
  if (resume) {
    std::optional<int64_t> after = ParseInt64(*resume);
    if (!after || *after < 0) {
      RespondError(conn, wire::kBadRequest,
                   fmt::format("Last-Event-ID must be an offset (an integer >= 0), got \"{}\"",
                               resume->substr(0, 40)));
      return 0;
    }
    input->after = *after;
  }
  conn->endpoint = session ? Endpoint::kSseSession : Endpoint::kSse;
  if (session) {
    conn->bound_session = std::move(session);
  } else if (input->session_id) {
    if (Status st = ValidateSessionId(*input->session_id); !st.ok()) {
      RespondError(conn, wire::kBadRequest, st.message());
      return 0;
    }
    conn->bound_session = input->session_id;
  }
  std::string_view code;
  Result<SubscriptionSpec> spec = BuildSpec(*conn, *input, options_.default_batch_size, &code);
  if (!spec.ok()) {
    conn->bound_session.reset();
    RespondError(conn, code, spec.status().message());
    return 0;
  }
  if (!AttachSessionStats(conn)) {
    const std::string id = *conn->bound_session;
    conn->bound_session.reset();
    RespondError(conn, wire::kTooManySubscribers,
                 fmt::format("session \"{}\" already has {} subscribers "
                             "(--max-clients-per-session)",
                             id, options_.max_clients_per_session));
    return 0;
  }

  std::string buf(LWS_PRE + 2048, '\0');
  auto* start = reinterpret_cast<unsigned char*>(buf.data()) + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = reinterpret_cast<unsigned char*>(buf.data()) + buf.size() - 1;
  auto add = [&](const char* name, std::string_view value) {
    return lws_add_http_header_by_name(conn->wsi, reinterpret_cast<const unsigned char*>(name),
                                       reinterpret_cast<const unsigned char*>(value.data()),
                                       static_cast<int>(value.size()), &p, end) == 0;
  };
  if (lws_add_http_common_headers(conn->wsi, HTTP_STATUS_OK, "text/event-stream",
                                  LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
      !add("cache-control:", "no-cache") || !add("x-accel-buffering:", "no") ||
      (!conn->cors_origin.empty() && !add("access-control-allow-origin:", conn->cors_origin)) ||
      lws_finalize_write_http_header(conn->wsi, start, &p, end)) {
    return -1;
  }
  lws_http_mark_sse(conn->wsi);  // headers are gone from here on
  lws_set_timeout(conn->wsi, NO_PENDING_TIMEOUT, 0);

  conn->kind = ConnKind::kSse;
  ++sse_open_;
  sse_conns_.insert(conn);
  conn->last_write_ms = Now();
  StartSubscription(conn, std::move(*spec));
  return 0;
}

int Server::Impl::OnSseWriteable(Conn* conn) {
  if (!conn->control.empty()) {
    std::string& buf = ScratchBuffer();
    buf += conn->control.front();
    conn->control.pop_front();
    if (!WriteScratch(conn)) return -1;
    RequestWritable(conn, !conn->control.empty() || conn->close_code != 0);
    return 0;
  }
  if (conn->close_code != 0) return -1;
  if (conn->heartbeat_due) {
    conn->heartbeat_due = false;
    std::string& buf = ScratchBuffer();
    buf += ": heartbeat\n\n";
    if (!WriteScratch(conn)) return -1;
    RequestWritable(conn, false);  // events may be due too
    return 0;
  }
  if (conn->sub) return Deliver(conn);
  return 0;
}

}  // namespace tailbus::ws
