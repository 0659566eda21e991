// WebSocket endpoints: connect-time parameters, client messages (publish,
// message, subscribe, ping), and cursor-based delivery shared with SSE.
//
//   /ws                    any session; ?session_id= narrows (and binds) it
//   /ws/events/{id}        that session only: the filter is restricted to it
//   /ws/receipt/{id}       background.md §2: bound to session {id}, single-event
//                          frames, a `connected` frame after the hello
//
// Delivery (Deliver): each WRITEABLE sends at most ONE frame. Control frames
// (hello, reset, ack, error, pong, caught_up) go first. Otherwise the cursor is
// polled for up to batch_size events (at most max_frame_bytes), which are sent
// at once, or held until the batch is full or batch_window_ms has passed since
// the first of them arrived. Event JSON is spliced, never re-encoded.
#include <fmt/format.h>

#include <algorithm>

#include "core/time_format.h"
#include "ws/client_message.h"
#include "ws/frames.h"
#include "ws/server_internal.h"
#include "ws/wire.h"
#include "ws/ws_frame.h"

namespace tailbus::ws {
namespace {

bool IsBatchLimitError(const DecodeResult& r) {
  return r.errors.size() == 1 && !r.errors[0].index && r.errors[0].field == "body" &&
         r.errors[0].reason.rfind("batch of ", 0) == 0;
}

// The batch_size a connection gets when the client names none: chat clients
// (/ws?session_id=…, background.md §1) and receipt watchers (§2) route every
// frame by its own `type`, so they get single-event frames.
size_t DefaultBatchSize(const Conn& conn, const ServerOptions& options) {
  if (conn.endpoint == Endpoint::kWsReceipt) return 1;
  if (conn.endpoint == Endpoint::kWs && conn.bound_session) return 1;
  return options.default_batch_size;
}

// Client messages on one connection (parsed by ws/client_message.h).
struct Messages {
  Server::Impl& s;
  Conn* c;

  void Handle(std::string_view text) {
    ClientMessage m = ParseClientMessage(text, c->bound_session, s.options_.max_events_per_publish);
    switch (m.kind) {
      case ClientMessage::Kind::kPlainPing:
        s.EnqueueControl(c, "", "pong");
        return;
      case ClientMessage::Kind::kPing:
        s.EnqueueControl(c, "", PongFrame());
        return;
      case ClientMessage::Kind::kPublish:
      case ClientMessage::Kind::kChatMessage:
        if (!UnderLimit(&Server::Impl::AllowPublish, wire::kRateLimited,
                        fmt::format("more than {} publishes per second (--publish-rate); nothing "
                                    "was appended",
                                    s.options_.publish_rate),
                        m.request_id_json)) {
          return;
        }
        Decode(m.events(), m.request_id_json);
        return;
      case ClientMessage::Kind::kSubscribe:
        if (!UnderLimit(&Server::Impl::AllowSubscribe, wire::kSubscribeRateLimited,
                        fmt::format("more than {} subscribe messages per second "
                                    "(--subscribe-rate); the previous subscription stays",
                                    s.options_.subscribe_rate),
                        m.request_id_json)) {
          return;
        }
        Subscribe(m.subscribe, m.request_id_json);
        return;
      case ClientMessage::Kind::kError:
        Error(m.error_code, m.error_message, m.request_id_json);
        return;
    }
  }

  // Rate limits (abuse.cc): an error frame carrying the request id; after
  // --rate-limit-strikes rejections in a row, the error and close 1008.
  bool UnderLimit(bool (Server::Impl::*allow)(Conn*, int64_t*, bool*), std::string_view code,
                  const std::string& what, const std::string& rid) {
    int64_t retry_s = 0;
    bool sustained = false;
    if ((s.*allow)(c, &retry_s, &sustained)) return true;
    Error(code, fmt::format("{}; retry in {} s", what, retry_s), rid);
    if (sustained) s.CloseAfterControl(c, wire::kClosePolicyViolation, code);
    return false;
  }

  void Error(std::string_view code, std::string_view message, std::string_view rid,
             std::span<const FieldError> details = {}) {
    s.metrics_.CountRejected(code);
    s.EnqueueControl(c, "", ErrorFrame(code, message, rid, details));
  }

  void Decode(std::string_view json, const std::string& rid) {
    DecodeLimits limits;
    limits.max_batch_events = s.options_.max_events_per_publish;
    DecodeResult decoded = DecodeEvents(json, limits, NowMillis());
    if (!decoded.ok()) {
      Error(IsBatchLimitError(decoded) ? wire::kTooManyEvents : wire::kInvalidEvent,
            decoded.ToStatus().message(), rid, decoded.errors);
      return;
    }
    if (s.auth_on()) {  // publish scope and every event's session; else nothing is appended
      AuthResult auth = CheckPublish(c->claims.get(), decoded.events);
      if (!auth.ok()) {
        Error(auth.code, auth.message, rid, auth.details);
        return;
      }
    }
    ++c->inflight;
    if (c->inflight >= s.options_.max_inflight_publishes && !c->rx_paused) {
      lws_rx_flow_control(c->wsi, 0);  // resumes as acks drain (MaybeResumeRx)
      c->rx_paused = true;
    }
    s.Append(c, std::move(decoded.events), Completion::Kind::kWsAppend, rid);
  }

  void Subscribe(const SpecInput& in, const std::string& rid) {
    std::string_view code;
    Result<SubscriptionSpec> spec = s.BuildSpec(*c, in, DefaultBatchSize(*c, s.options_), &code);
    if (!spec.ok()) {
      Error(code, spec.status().message(), rid);  // the old subscription stays
      return;
    }
    if (s.auth_on()) {  // a subscribe frame cannot widen what the token allows
      AuthResult auth = Authorize(c->claims.get(), Requirement{Requirement::kRead, spec->session});
      if (!auth.ok()) {
        Error(auth.code, auth.message, rid);  // the old subscription stays
        return;
      }
    }
    s.StartSubscription(c, std::move(*spec));
  }
};

}  // namespace

// ---- parameters --------------------------------------------------------------------

Result<SpecInput> Server::Impl::SpecInputFromQuery(const QueryArgs& args) {
  SpecInput in;
  if (auto f = args.Get("filter"); f && !f->empty()) in.filter_json = std::string(*f);
  if (auto sid = args.Get("session_id"); sid) in.session_id = std::string(*sid);
  auto after = args.GetInt("after", 0, INT64_MAX);
  if (!after.ok()) return after.status();
  in.after = *after;
  if (auto epoch = args.Get("epoch"); epoch && !epoch->empty()) in.epoch = std::string(*epoch);
  auto batch = args.GetInt("batch_size", INT64_MIN, INT64_MAX);
  if (!batch.ok()) return batch.status();
  in.batch_size = *batch;
  auto window = args.GetInt("batch_window_ms", INT64_MIN, INT64_MAX);
  if (!window.ok()) return window.status();
  auto poll = args.GetInt("poll_interval", INT64_MIN, INT64_MAX);  // background.md §4
  if (!poll.ok()) return poll.status();
  if (*window && *poll) {
    return Status::InvalidArgument("give batch_window_ms or poll_interval, not both");
  }
  in.batch_window_ms = *window ? *window : *poll;
  auto strict = args.GetBool("strict");
  if (!strict.ok()) return strict.status();
  in.strict = *strict;
  return in;
}

Result<SubscriptionSpec> Server::Impl::BuildSpec(const Conn& conn, const SpecInput& in,
                                                 size_t default_batch_size,
                                                 std::string_view* error_code) const {
  *error_code = wire::kBadRequest;
  SubscriptionSpec spec;
  Filter filter;
  if (in.filter_json && !in.filter_json->empty()) {
    Result<Filter> parsed = Filter::Parse(*in.filter_json, "filter");
    if (!parsed.ok()) {
      *error_code = wire::kBadFilter;
      return parsed.status();
    }
    filter = std::move(*parsed);
  }
  std::optional<std::string> session = conn.bound_session;
  if (in.session_id) {
    TAILBUS_RETURN_IF_ERROR(ValidateSessionId(*in.session_id));
    if (session && *session != *in.session_id) {
      return Status::InvalidArgument(
          fmt::format("session_id: \"{}\" contradicts this connection's session \"{}\"",
                      *in.session_id, *session));
    }
    session = in.session_id;
  }
  const int64_t batch = in.batch_size.value_or(static_cast<int64_t>(default_batch_size));
  if (batch < 1 || batch > static_cast<int64_t>(options_.max_batch_size)) {
    return Status::InvalidArgument(fmt::format("batch_size: must be an integer in [1, {}], got {}",
                                               options_.max_batch_size, batch));
  }
  const int64_t window = in.batch_window_ms.value_or(options_.default_batch_window_ms);
  if (window < 0 || window > options_.max_batch_window_ms) {
    return Status::InvalidArgument(
        fmt::format("batch_window_ms: must be an integer in [0, {}], got {}",
                    options_.max_batch_window_ms, window));
  }
  spec.filter = session ? filter.RestrictedToSession(*session) : std::move(filter);
  spec.session = std::move(session);
  spec.after = in.after;
  spec.epoch = in.epoch;
  spec.batch_size = static_cast<size_t>(batch);
  spec.batch_window_ms = window;
  spec.strict = in.strict.value_or(false);
  return spec;
}

// ---- subscription lifecycle ----------------------------------------------------------

bool Server::Impl::AttachSessionStats(Conn* conn) {
  if (!conn->bound_session || conn->stats != nullptr) return true;
  if (SessionStats* existing = metrics_.FindSession(*conn->bound_session);
      existing != nullptr &&
      existing->connected_clients >= static_cast<int64_t>(options_.max_clients_per_session)) {
    return false;
  }
  conn->stats = &metrics_.AttachSession(*conn->bound_session, Now());
  return true;
}

void Server::Impl::StartSubscription(Conn* conn, SubscriptionSpec spec) {
  StopSubscription(conn);
  const int64_t head = bus_.head();
  const int64_t earliest = bus_.earliest();
  const std::string& epoch = bus_.epoch();
  const int64_t first_retained_after = std::max<int64_t>(0, earliest - 1);
  std::string_view reset;
  int64_t start = head;
  if (spec.after) {
    const int64_t after = *spec.after;
    if (spec.epoch && *spec.epoch != epoch) {
      reset = wire::kEpochMismatch;
    } else if (after > head) {
      reset = wire::kOffsetAhead;
    } else if (after > 0 && after < first_retained_after) {
      reset = wire::kOffsetEvicted;
    }
    start = reset.empty() ? std::max(after, first_retained_after) : first_retained_after;
  }

  const std::string filter_json = spec.filter.ToJson();
  HelloInfo hello;
  hello.epoch = epoch;
  hello.head = head;
  hello.earliest = earliest;
  if (spec.session) hello.session_id = *spec.session;
  hello.filter_json = filter_json;
  hello.after = spec.after;
  hello.batch_size = spec.batch_size;
  hello.batch_window_ms = spec.batch_window_ms;
  EnqueueControl(conn, "hello", HelloFrame(hello));

  if (!reset.empty()) {
    if (spec.strict) {
      FailSubscriber(conn, reset,
                     fmt::format("cannot resume after offset {} ({}); earliest retained is {} "
                                 "(strict=1)",
                                 *spec.after, reset, earliest),
                     wire::kCloseResetRequired);
      return;
    }
    ++metrics_.resets_sent;
    EnqueueControl(conn, "reset", ResetFrame(reset, epoch, earliest));
  }

  auto sub = std::make_unique<Subscription>();
  sub->index_sessions = spec.filter.session_ids();
  sub->cursor = bus_.Subscribe(start, std::move(spec.filter));
  sub->caught_up_pending = spec.after.has_value();
  sub->live = !sub->caught_up_pending;
  sub->spec = std::move(spec);
  sub->spec.filter = Filter();  // the cursor holds the filter
  conn->sub = std::move(sub);
  if (dispatcher_) dispatcher_->Add(conn);
  RequestWritable(conn, true);
}

void Server::Impl::StopSubscription(Conn* conn) {
  if (!conn->sub) return;
  if (dispatcher_) dispatcher_->Remove(conn);
  if (conn->sub->window_armed) lws_sul_cancel(&conn->window_timer.sul);
  conn->sub.reset();
}

void Server::Impl::MaybeResumeRx(Conn* conn) {
  if (conn->rx_paused && conn->control.size() < kMaxControlFrames / 2 &&
      conn->inflight < options_.max_inflight_publishes) {
    lws_rx_flow_control(conn->wsi, 1);
    conn->rx_paused = false;
  }
}

// ---- connect ---------------------------------------------------------------------------

int Server::Impl::OnWsEstablished(Conn* conn) {
  conn->kind = ConnKind::kWebSocket;
  conn->last_rx_ms = Now();
  ++ws_open_;
  if (!conn->reject_code.empty()) {
    FailSubscriber(conn, conn->reject_code, RejectMessage(conn->reject_code),
                   wire::kCloseTooManyConnections);
    return 0;
  }
  if (stopping_) {
    CloseAfterControl(conn, wire::kCloseGoingAway, "server shutting down");
    return 0;
  }
  if (!OriginAllowed(Header(conn->wsi, WSI_TOKEN_ORIGIN), Header(conn->wsi, WSI_TOKEN_HOST))) {
    FailSubscriber(conn, wire::kOriginNotAllowed, "this Origin is not allowed (--allowed-origins)",
                   wire::kCloseOriginNotAllowed);
    return 0;
  }
  if (auth_on()) {  // 4401 before anything else is looked at; 4403 once the spec is known
    Result<QueryArgs> auth_args = ReadQuery(conn->wsi);
    AuthResult auth = AuthorizeRequest(conn, auth_args.ok() ? *auth_args : QueryArgs(),
                                       Requirement{Requirement::kAnyToken, {}});
    if (!auth.ok()) {
      DenySubscriber(conn, auth);
      return 0;
    }
  }
  const std::string path = Header(conn->wsi, WSI_TOKEN_GET_URI);
  const std::vector<std::string_view> segs = SplitPath(path);
  if (segs.size() == 1 && segs[0] == "ws") {
    conn->endpoint = Endpoint::kWs;
  } else if (segs.size() == 3 && segs[0] == "ws" && (segs[1] == "events" || segs[1] == "receipt")) {
    conn->endpoint = segs[1] == "events" ? Endpoint::kWsEvents : Endpoint::kWsReceipt;
    if (Status st = ValidateSessionId(segs[2]); !st.ok()) {
      FailSubscriber(conn, wire::kBadRequest, st.message(), wire::kCloseBadRequest);
      return 0;
    }
    conn->bound_session = std::string(segs[2]);
  } else {
    FailSubscriber(conn, wire::kNotFound,
                   fmt::format("no WebSocket endpoint at {} (use /ws, /ws/events/{{session_id}} "
                               "or /ws/receipt/{{id}})",
                               path),
                   wire::kCloseNotFound);
    return 0;
  }

  Result<QueryArgs> args = ReadQuery(conn->wsi);
  Result<SpecInput> input =
      args.ok() ? SpecInputFromQuery(*args) : Result<SpecInput>(args.status());
  if (!input.ok()) {
    FailSubscriber(conn, wire::kBadRequest, input.status().message(), wire::kCloseBadRequest);
    return 0;
  }
  if (conn->endpoint == Endpoint::kWs && input->session_id) {
    if (Status st = ValidateSessionId(*input->session_id); !st.ok()) {
      FailSubscriber(conn, wire::kBadRequest, st.message(), wire::kCloseBadRequest);
      return 0;
    }
    conn->bound_session = input->session_id;  // ?session_id= binds /ws to that session
  }
  std::string_view code;
  Result<SubscriptionSpec> spec =
      BuildSpec(*conn, *input, DefaultBatchSize(*conn, options_), &code);
  if (!spec.ok()) {
    FailSubscriber(conn, code, spec.status().message(), wire::kCloseBadRequest);
    return 0;
  }
  if (auth_on()) {
    AuthResult auth = Authorize(conn->claims.get(), Requirement{Requirement::kRead, spec->session});
    if (!auth.ok()) {
      DenySubscriber(conn, auth);
      return 0;
    }
    WatchExpiry(conn);
  }
  if (!AttachSessionStats(conn)) {
    FailSubscriber(conn, wire::kTooManySubscribers,
                   fmt::format("session \"{}\" already has {} subscribers "
                               "(--max-clients-per-session)",
                               *conn->bound_session, options_.max_clients_per_session),
                   wire::kCloseTooManyConnections);
    return 0;
  }
  StartSubscription(conn, std::move(*spec));
  if (conn->endpoint == Endpoint::kWsReceipt && conn->close_code == 0) {
    EnqueueControl(conn, "", ConnectedFrame(*conn->bound_session));
  }
  return 0;
}

// ---- receive ---------------------------------------------------------------------------

int Server::Impl::OnWsReceive(Conn* conn, const void* data, size_t len) {
  conn->last_rx_ms = Now();
  if (conn->rx_discard) return 0;
  if (lws_is_first_fragment(conn->wsi)) {
    conn->rx.clear();
    conn->rx_binary = lws_frame_is_binary(conn->wsi) != 0;
  }
  const size_t remaining = lws_remaining_packet_payload(conn->wsi);
  if (conn->rx.size() + len + remaining > options_.max_message_bytes) {
    std::string().swap(conn->rx);
    FailSubscriber(conn, wire::kMessageTooBig,
                   fmt::format("a message exceeds the limit of {} bytes (--max-message-bytes)",
                               options_.max_message_bytes),
                   wire::kCloseMessageTooBig);
    return 0;
  }
  if (!lws_is_final_fragment(conn->wsi)) {
    if (!conn->rx_binary) conn->rx.append(static_cast<const char*>(data), len);
    return 0;
  }
  if (conn->rx_binary) {
    Messages{*this, conn}.Error(wire::kBinaryNotSupported,
                                "binary messages are not supported: send JSON text", {});
    return 0;
  }
  if (conn->rx.empty()) {
    // The whole message came in this callback: read it where libwebsockets
    // holds it (no copy, no reassembly buffer).
    Messages{*this, conn}.Handle(std::string_view(static_cast<const char*>(data), len));
    return 0;
  }
  conn->rx.append(static_cast<const char*>(data), len);
  std::string message;
  message.swap(conn->rx);  // frees the reassembly buffer when done
  Messages{*this, conn}.Handle(message);
  return 0;
}

void Server::Impl::OnWsAppendDone(Conn* conn, Completion& done) {
  if (conn->inflight > 0) --conn->inflight;
  AppendResult& result = *done.append;
  if (result.ok()) {
    EnqueueControl(conn, "", AckFrame(done.request_id_json, result.value()));
  } else {
    const std::string_view code = wire::ErrorForStatus(result.status());
    metrics_.CountRejected(code);
    EnqueueControl(
        conn, "",
        ErrorFrame(code, "append failed: " + result.status().ToString(), done.request_id_json));
  }
  MaybeResumeRx(conn);
}

// ---- write ------------------------------------------------------------------------------

int Server::Impl::OnWsWriteable(Conn* conn) {
  if (conn->ping_due && conn->close_code == 0) {
    conn->ping_due = false;
    conn->last_ping_ms = Now();
    // A payload, because libwebsockets 4.1 does not report an EMPTY pong to
    // the protocol callback (LWS_CALLBACK_RECEIVE_PONG): the peer's answer to
    // an empty ping would never count as traffic, and every client that only
    // listens would be dropped at --idle-timeout.
    std::string& buf = ScratchBuffer();
    buf += "tb";
    if (lws_write(conn->wsi, reinterpret_cast<unsigned char*>(buf.data()) + LWS_PRE,
                  buf.size() - LWS_PRE, LWS_WRITE_PING) < 0) {
      return -1;
    }
    RequestWritable(conn, false);  // whatever else is due
    return 0;
  }
  if (!conn->control.empty()) {
    if (!WriteControl(conn)) return -1;
    MaybeResumeRx(conn);
    RequestWritable(conn, !conn->control.empty() || conn->close_code != 0);
    return 0;
  }
  if (conn->close_code != 0) {
    lws_close_reason(conn->wsi, static_cast<lws_close_status>(conn->close_code),
                     reinterpret_cast<unsigned char*>(conn->close_reason.data()),
                     conn->close_reason.size());
    return -1;
  }
  if (conn->sub) return Deliver(conn);
  return 0;
}

bool Server::Impl::WriteControl(Conn* conn) {
  std::string& buf = ScratchBuffer();
  if (conn->control.size() == 1) {
    buf += conn->control.front();
    conn->control.pop_front();
    return WriteScratch(conn);
  }
  // Several queued (a commit completes many pipelined publishes at once):
  // frame them here and hand libwebsockets one raw write, one send() instead
  // of one per ack. Still a single lws_write in this callback, of complete
  // frames (nothing here fragments a frame, and lws calls WRITEABLE only once
  // an earlier partial write has drained), so the stream stays well framed.
  while (!conn->control.empty() &&
         (buf.size() == LWS_PRE ||
          buf.size() + conn->control.front().size() <= LWS_PRE + kMaxCoalescedControlBytes)) {
    AppendServerTextFrame(buf, conn->control.front());
    conn->control.pop_front();
  }
  const size_t len = buf.size() - LWS_PRE;
  const int n = lws_write(conn->wsi, reinterpret_cast<unsigned char*>(buf.data()) + LWS_PRE, len,
                          LWS_WRITE_RAW);
  conn->last_write_ms = Now();
  return n >= 0 && static_cast<size_t>(n) >= len;
}

int Server::Impl::Deliver(Conn* conn) {
  Subscription& s = *conn->sub;
  const int64_t now = Now();
  if (s.held.size() < s.spec.batch_size && s.held_bytes < options_.max_frame_bytes) {
    if (s.cursor->HasPending()) {
      // Frames carry each event's JSON as stored: storage reads skip the header.
      Result<PollResult> polled =
          s.cursor->Poll(*reader_, s.spec.batch_size - s.held.size(),
                         options_.max_frame_bytes - s.held_bytes, ReadDetail::kDelivery);
      if (!polled.ok()) {
        if (polled.status().code() != StatusCode::kEvicted) {
          FailSubscriber(conn, wire::kUnavailable,
                         "reading the log failed: " + polled.status().ToString(),
                         wire::kCloseInternalError);
          return 0;
        }
        if (s.held.empty()) {
          // Fell behind retention: say so, then continue from the earliest retained.
          const int64_t earliest = bus_.earliest();
          if (s.spec.strict) {
            FailSubscriber(conn, wire::kOffsetEvicted, polled.status().message(),
                           wire::kCloseResetRequired);
            return 0;
          }
          ++metrics_.resets_sent;
          EnqueueControl(conn, "reset", ResetFrame(wire::kOffsetEvicted, bus_.epoch(), earliest));
          s.cursor->Reset(std::max<int64_t>(0, earliest - 1));
          return 0;
        }
        s.at_head = false;  // send what is held first
      } else {
        if (s.held.empty() && !polled->events.empty()) s.held_since_ms = now;
        for (EventPtr& e : polled->events) {
          s.held_bytes += e->json.size();
          s.held.push_back(std::move(e));
        }
        s.at_head = polled->caught_up;
      }
    } else {
      s.at_head = true;
    }
  }

  if (s.held.empty()) {
    if (s.caught_up_pending && s.at_head) {
      s.caught_up_pending = false;
      s.live = true;
      std::string& buf = ScratchBuffer();
      buf += conn->kind == ConnKind::kSse
                 ? SseRecord("caught_up", CaughtUpFrame(s.cursor->position()))
                 : CaughtUpFrame(s.cursor->position());
      if (!WriteScratch(conn)) return -1;
      if (s.cursor->HasPending()) RequestWritable(conn, true);
    }
    return 0;
  }

  const bool full =
      s.held.size() >= s.spec.batch_size || s.held_bytes >= options_.max_frame_bytes || !s.at_head;
  if (!full && s.spec.batch_window_ms > 0 && !s.caught_up_pending) {
    const int64_t deadline = s.held_since_ms + s.spec.batch_window_ms;
    if (now < deadline) {
      ArmWindow(conn, deadline - now);
      return 0;
    }
  }

  std::string& buf = ScratchBuffer();
  const int64_t wall_now = NowMillis();
  if (conn->kind == ConnKind::kSse) {
    for (const EventPtr& e : s.held) AppendSseEvent(&buf, *e);
  } else if (s.spec.batch_size == 1) {
    AppendEventFrame(&buf, *s.held.front());
  } else {
    AppendBatchFrame(&buf, s.held, wall_now);
  }
  const size_t bytes = buf.size() - LWS_PRE;
  if (!WriteScratch(conn)) return -1;

  metrics_.delivered_events += s.held.size();
  metrics_.delivered_bytes += bytes;
  ++metrics_.delivered_frames;
  if (conn->stats != nullptr) {
    conn->stats->total_events_sent += s.held.size();
    conn->stats->total_bytes_sent += bytes;
  }
  if (s.live) {
    for (const EventPtr& e : s.held) {
      metrics_.delivery_latency.Observe(
          static_cast<double>(std::max<int64_t>(0, wall_now - e->ingested_at_ms)) / 1000.0);
    }
  }
  s.held.clear();
  s.held_bytes = 0;
  if (s.window_armed) {
    lws_sul_cancel(&conn->window_timer.sul);
    s.window_armed = false;
  }
  if (s.cursor->HasPending() || s.caught_up_pending) RequestWritable(conn, true);
  return 0;
}

void Server::Impl::ArmWindow(Conn* conn, int64_t delay_ms) {
  if (conn->sub->window_armed) return;
  conn->sub->window_armed = true;
  lws_sul_schedule(context_, 0, &conn->window_timer.sul, OnWindowTimer,
                   static_cast<lws_usec_t>(std::max<int64_t>(delay_ms, 1)) * 1000);
}

void Server::Impl::OnWindowTimer(lws_sorted_usec_list_t* sul) {
  Conn* conn = reinterpret_cast<ConnTimer*>(sul)->conn;
  if (conn->sub) conn->sub->window_armed = false;
  conn->server->RequestWritable(conn, true);
}

}  // namespace tailbus::ws
