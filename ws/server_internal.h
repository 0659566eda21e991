// Internal to ws/: the server's connection state, shared by server.cc
// (lifecycle, mailbox, timers, shutdown), http_api.cc (routes),
// ws_subscription.cc (WebSocket subscriptions and delivery), sse.cc and
// dispatcher.cc. Everything here is owned by the network thread except
// Mailbox, which is the one structure other threads touch.
#pragma once

#include <libwebsockets.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bus/bus.h"
#include "core/event_decoder.h"
#include "core/filter.h"
#include "core/token.h"
#include "ws/auth.h"
#include "ws/client_message.h"
#include "ws/metrics.h"
#include "ws/query.h"
#include "ws/rate_limit.h"
#include "ws/server.h"

namespace tailbus::ws {

struct Conn;

// Control frames queued per connection before the server stops reading it.
inline constexpr size_t kMaxControlFrames = 256;
// Most bytes of queued control messages one WRITEABLE callback sends in one
// write (ws_subscription.cc, WriteControl); the first is sent whatever its size.
inline constexpr size_t kMaxCoalescedControlBytes = 64 * 1024;

// What a finished bus operation reports back to the network thread.
struct Completion {
  enum class Kind { kHttpAppend, kWsAppend, kHttpDelete };
  Kind kind = Kind::kHttpAppend;
  uint64_t conn_id = 0;
  std::optional<AppendResult> append;  // kHttpAppend, kWsAppend
  Status status;                       // kHttpDelete
  std::string request_id_json;         // kWsAppend: echoed in the ack
  std::string session_id;              // kHttpDelete
  bool hard = false;                   // kHttpDelete
  double latency_s = 0;                // accepted -> committed (appends)
};

// The only structure shared with other threads. Post() and Wake() may be
// called from any thread; they are no-ops once Detach() ran, so late bus
// callbacks never touch a destroyed lws context. Invariant: while items are
// queued, a wake-up (lws_cancel_service) is pending whose handling on the
// network thread will Drain() them all.
class Mailbox {
 public:
  explicit Mailbox(lws_context* context) : context_(context) {}
  void Post(Completion completion);
  void Wake();
  // Swaps the posted completions into `*out` (cleared first). The caller
  // passes the same vector each time, so both sides keep their capacity: a
  // commit of hundreds of publishes does not regrow the mailbox from empty.
  void Drain(std::vector<Completion>* out);
  void Detach();

 private:
  std::mutex mu_;
  lws_context* context_;  // guarded by mu_; nullptr once detached
  std::vector<Completion> items_;
};

// Runs blocking bus calls off the network thread, one at a time.
class Worker {
 public:
  Worker();
  ~Worker();
  void Post(std::function<void()> fn);
  void Stop();  // runs what is queued, then joins; idempotent

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

enum class ConnKind : uint8_t { kNew, kHttp, kWebSocket, kSse };
enum class Endpoint : uint8_t { kWs, kWsEvents, kWsReceipt, kSse, kSseSession };

// A subscription's parameters, from the query string or a subscribe message.
struct SubscriptionSpec {
  Filter filter;                       // effective: already restricted to `session`
  std::optional<std::string> session;  // the session the subscriber is bound to
  std::optional<int64_t> after;        // resume position; nullopt: live from the head
  std::optional<std::string> epoch;    // the epoch `after` belongs to
  size_t batch_size = 50;
  int64_t batch_window_ms = 0;
  bool strict = false;  // close with 4409 instead of sending a reset
};

struct Subscription {
  SubscriptionSpec spec;
  std::unique_ptr<Cursor> cursor;
  std::vector<EventPtr> held;  // polled but not sent yet; at most batch_size
  size_t held_bytes = 0;
  int64_t held_since_ms = 0;                // when `held` became non-empty
  bool at_head = false;                     // the last poll reached the head
  bool caught_up_pending = false;           // asked for history; caught_up not sent yet
  bool live = false;                        // has caught up: delivery latency is measured
  bool window_armed = false;                // the batch-window timer is scheduled
  std::vector<std::string> index_sessions;  // dispatcher keys; empty: all-session list
};

// A response waiting to be written on an HTTP connection.
struct PendingResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // name without ':'
  size_t sent = 0;
  bool headers_sent = false;
  bool close_after = false;
};

// The state of one HTTP request on a connection (reset for each request).
struct HttpRequest {
  int method = -1;  // LWSHUMETH_*
  std::string path;
  QueryArgs args;
  std::string content_type;
  std::string body;
  size_t expected_body = 0;
  bool post_events = false;          // the body is for POST /api/events
  bool awaiting = false;             // waiting for a commit or a delete
  int64_t rate_limited_retry_s = 0;  // > 0: over --publish-rate; body discarded, then 429
};

// A timer that knows its connection (the sul must stay the first member).
struct ConnTimer {
  lws_sorted_usec_list_t sul;
  Conn* conn;
};

struct Conn {
  Server::Impl* server = nullptr;
  uint64_t id = 0;
  lws* wsi = nullptr;
  std::string peer_ip;
  bool counted = false;          // holds a slot in the connection limits
  std::string_view reject_code;  // non-empty: over a connection limit
  // Abuse limits (abuse.cc): headers not complete yet (counted per IP and
  // watched by the header timeout), and the per-connection message buckets.
  bool headers_pending = false;
  int64_t headers_since_ms = 0;  // accept, or the end of the previous response
  MessageLimiter publish_limiter;
  MessageLimiter subscribe_limiter;
  ConnKind kind = ConnKind::kNew;
  std::string cors_origin;  // Access-Control-Allow-Origin for this request ("" none)
  // The verified token of the current request or stream (auth on); null when
  // auth is off or the endpoint is public. See auth.h.
  std::shared_ptr<const TokenClaims> claims;

  HttpRequest http;
  std::unique_ptr<PendingResponse> response;

  // WebSocket and SSE.
  Endpoint endpoint = Endpoint::kWs;
  std::optional<std::string> bound_session;  // from the path or ?session_id=
  std::unique_ptr<Subscription> sub;
  std::deque<std::string> control;  // framed control messages, sent before events
  std::string rx;                   // a WebSocket message being reassembled
  bool rx_binary = false;
  bool rx_discard = false;  // closing: ignore further input
  size_t inflight = 0;      // publishes waiting for their commit
  bool rx_paused = false;
  uint16_t close_code = 0;  // close once `control` is drained
  std::string close_reason;
  SessionStats* stats = nullptr;  // per-session stats while bound (Metrics owns it)
  bool heartbeat_due = false;     // SSE
  // WebSocket keepalive (Housekeeping): last valid input, last PING sent.
  int64_t last_rx_ms = 0;
  int64_t last_ping_ms = 0;
  bool ping_due = false;
  bool killed = false;  // being dropped from the outside (stall, idle): count once

  bool writable_requested = false;
  int64_t waiting_since_ms = 0;  // data due and WRITEABLE not seen since
  int64_t last_write_ms = 0;
  ConnTimer window_timer{};
};

// Wakes idle subscribers when events they may want are committed. Keeps its
// own match-all cursor; per event, wakes the subscribers bound to the event's
// session and the all-session subscribers whose filter matches. Never loops
// over every connection per commit.
class Dispatcher {
 public:
  explicit Dispatcher(const Bus& bus);
  void Add(Conn* conn);     // indexes conn->sub by its index_sessions
  void Remove(Conn* conn);  // before conn->sub changes or goes away
  // Processes at most `max_events` newly committed events, calling `wake` for
  // each interested subscriber (at most once per subscriber per call).
  // Returns true when more events are pending (call again soon).
  bool Run(LogReader& reader, size_t max_events, const std::function<void(Conn*)>& wake);
  size_t size() const { return count_; }

 private:
  const Bus& bus_;
  std::unique_ptr<Cursor> cursor_;
  std::unordered_map<std::string, std::vector<Conn*>> by_session_;
  std::vector<Conn*> all_sessions_;
  size_t count_ = 0;
};

class Server::Impl {
 public:
  Impl(Bus& bus, ServerOptions options, ListenAddress address);
  ~Impl();

  Status Create();
  Status Run();
  void RequestStop();
  int port() const { return port_; }
  const char* event_loop() const { return ev_loop_ != nullptr ? "epoll" : "poll"; }
  const ListenAddress& address() const { return address_; }
  bool tls() const { return !options_.tls_cert.empty(); }

  // The lws protocol callback (static trampoline in server.cc).
  int Callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);

  // ---- server.cc: connections, writes, timers -----------------------------
  Conn* FindConn(uint64_t id);
  int64_t Now() const;
  // Asks for WRITEABLE; `data_due` starts the stall clock.
  void RequestWritable(Conn* conn, bool data_due);
  // Queues a control frame (WebSocket JSON, or an SSE record named `sse_event`).
  void EnqueueControl(Conn* conn, std::string_view sse_event, std::string json);
  // Sends queued control frames, then closes with `code`.
  void CloseAfterControl(Conn* conn, uint16_t code, std::string_view reason);
  // Error frame + close: for fatal errors on WebSocket and SSE.
  void FailSubscriber(Conn* conn, std::string_view error_code, std::string_view message,
                      uint16_t close_code);
  // Writes `scratch_` (after LWS_PRE) as one WebSocket text frame or SSE chunk.
  bool WriteScratch(Conn* conn);
  // Sends queued control messages of a WebSocket connection: one as it is,
  // several framed together in one raw write. False when the write failed.
  bool WriteControl(Conn* conn);
  std::string& ScratchBuffer();  // cleared, with LWS_PRE bytes of headroom
  std::string AllowedOrigin(std::string_view origin) const;
  // The WebSocket upgrade's Origin check: allowed_origins, or same-origin
  // (Origin is http(s)://<Host>), or no Origin (not a browser).
  bool OriginAllowed(std::string_view origin, std::string_view host) const;
  Gauges CurrentGauges() const;
  // Queues an append for the end of this event-loop pass; its completion is
  // posted to the mailbox like any other.
  void Append(Conn* conn, std::vector<Event> events, Completion::Kind kind,
              std::string request_id_json);
  void FlushAppends();
  static void OnAppendTimer(lws_sorted_usec_list_t* sul);
  void PostBlocking(std::function<void()> fn) { worker_.Post(std::move(fn)); }
  Mailbox& mailbox() { return *mailbox_; }

  // Reads a header (lws token) or a custom header ("last-event-id:").
  static std::string Header(lws* wsi, lws_token_indexes token);
  static std::string CustomHeader(lws* wsi, const char* name_with_colon);
  static Result<QueryArgs> ReadQuery(lws* wsi);

  // ---- auth.cc (access control; auth.h) -----------------------------------
  bool auth_on() const { return !options_.auth_secret.empty(); }
  // Authenticates the request (Authorization header, else `args`' token=) and
  // checks `need`; on success conn->claims holds the verified token. Always
  // ok when auth is off or `need` is public.
  AuthResult AuthorizeRequest(Conn* conn, const QueryArgs& args, const Requirement& need);
  // HTTP 401/403 with WWW-Authenticate; `close_now` when a body may follow.
  int DenyHttp(Conn* conn, const AuthResult& result, bool close_now);
  // WebSocket/SSE: error frame, then close 4401/4403.
  void DenySubscriber(Conn* conn, const AuthResult& result);
  // Long-lived connections are closed with 4401 when their token expires.
  void WatchExpiry(Conn* conn);
  void CloseExpired();  // Housekeeping

  // ---- http_api.cc ---------------------------------------------------------
  int OnHttpRequest(Conn* conn, const char* path);
  int OnHttpBody(Conn* conn, const void* data, size_t len);
  int OnHttpBodyComplete(Conn* conn);
  int OnHttpWriteable(Conn* conn);
  void Respond(Conn* conn, int status, std::string content_type, std::string body,
               std::vector<std::pair<std::string, std::string>> headers = {},
               bool close_after = false);
  // An error response; the status comes from the code (wire.h). `extra_members`
  // are raw JSON members added to the body.
  void RespondError(Conn* conn, std::string_view code, std::string_view message,
                    std::span<const FieldError> details = {}, std::string_view extra_members = {},
                    std::vector<std::pair<std::string, std::string>> headers = {});
  // Writes a small response at once (inside LWS_CALLBACK_HTTP) before closing.
  int RespondNowAndClose(Conn* conn, std::string_view code, std::string_view message,
                         std::vector<std::pair<std::string, std::string>> headers = {});
  void OnHttpAppendDone(Conn* conn, Completion& done);
  void OnHttpDeleteDone(Conn* conn, Completion& done);

  // ---- ws_subscription.cc --------------------------------------------------
  int OnWsEstablished(Conn* conn);
  int OnWsReceive(Conn* conn, const void* data, size_t len);
  int OnWsWriteable(Conn* conn);
  void OnWsAppendDone(Conn* conn, Completion& done);
  // Builds a spec; `conn->bound_session` narrows it. On failure `error_code`
  // is the wire code (bad_filter or bad_request).
  Result<SubscriptionSpec> BuildSpec(const Conn& conn, const SpecInput& input,
                                     size_t default_batch_size, std::string_view* error_code) const;
  static Result<SpecInput> SpecInputFromQuery(const QueryArgs& args);
  // Starts (or replaces) the subscription: hello, then reset when needed.
  void StartSubscription(Conn* conn, SubscriptionSpec spec);
  void StopSubscription(Conn* conn);
  // Counts the connection's bound session in the per-session stats (and the
  // per-session subscriber limit); false when that limit is reached.
  bool AttachSessionStats(Conn* conn);
  void MaybeResumeRx(Conn* conn);
  // Sends at most one frame of events (or caught_up / reset). Returns -1 to close.
  int Deliver(Conn* conn);
  void ArmWindow(Conn* conn, int64_t delay_ms);
  static void OnWindowTimer(lws_sorted_usec_list_t* sul);

  // ---- abuse.cc: limits past the connection counts --------------------------
  // At accept, after the connection-count checks: "" to admit, a wire code to
  // admit and refuse with (429 / 4429), or nullopt to drop the TCP connection.
  std::optional<std::string_view> CheckNewConnection(const std::string& ip);
  // Starts the header clock: at accept, and after each response on a
  // keep-alive connection (lws itself does not time a trickling request head).
  void StartHeaderClock(Conn* conn);
  void MarkHeadersDone(Conn* conn);           // request head complete (HTTP or upgrade)
  void OnConnDestroyed(Conn* conn);           // forgets what CheckNewConnection counted
  void EnforceHeaderTimeout(int64_t now_ms);  // Housekeeping
  // The message why a connection was refused (reject_code).
  static std::string_view RejectMessage(std::string_view code);
  // A publish on `conn`: true to accept it. false: `*retry_after_s` is set and
  // `*close` says the client kept sending past the limit (WebSocket: close 1008).
  bool AllowPublish(Conn* conn, int64_t* retry_after_s, bool* close);
  bool AllowSubscribe(Conn* conn, int64_t* retry_after_s, bool* close);

  // ---- sse.cc --------------------------------------------------------------
  int StartSse(Conn* conn, std::optional<std::string> session, const QueryArgs& args);
  int OnSseWriteable(Conn* conn);

 private:
  // server.cc
  int OnAccept(int fd);
  void OnWsiCreate(lws* wsi);
  void OnWsiDestroy(lws* wsi);
  Conn* ConnOf(lws* wsi);
  void OnWake();
  void DrainMailbox();
  void RunDispatcher();
  static void OnDispatchTimer(lws_sorted_usec_list_t* sul);
  static void OnHousekeeping(lws_sorted_usec_list_t* sul);
  static void OnShutdownDeadline(lws_sorted_usec_list_t* sul);
  void Housekeeping();
  void BeginShutdown();
  void MaybeFinishShutdown();

 public:
  Bus& bus_;
  const ServerOptions options_;
  const ListenAddress address_;
  Metrics metrics_;
  std::unique_ptr<LogReader> reader_;  // network thread
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unordered_map<std::string, size_t> per_ip_;
  size_t admitted_ = 0;  // connections holding a limit slot
  size_t ws_open_ = 0;
  size_t sse_open_ = 0;
  std::unordered_set<Conn*> sse_conns_;  // heartbeats
  std::unordered_set<Conn*> waiting_;    // data due, WRITEABLE not seen (stall watch)
  bool stopping_ = false;
  // abuse.cc
  IpRateLimiter connection_rate_;
  std::unordered_map<std::string, size_t> pending_per_ip_;  // headers not complete
  std::unordered_set<Conn*> headers_pending_;
  std::multimap<int64_t, uint64_t> expiries_;  // token exp (s) -> connection id (auth.cc)

 private:
  lws_context* context_ = nullptr;
  void* ev_loop_ = nullptr;             // libev loop (ws/event_loop.h), or nullptr: poll()
  void* foreign_loops_[1] = {nullptr};  // handed to lws_create_context
  lws_vhost* vhost_ = nullptr;
  int port_ = 0;
  std::vector<lws_protocols> protocols_;
  lws_retry_bo_t retry_{};
  std::string iface_;
  std::shared_ptr<Mailbox> mailbox_;
  std::vector<Completion> drained_;  // DrainMailbox's buffer, kept for its capacity
  Worker worker_;
  int wakeup_id_ = -1;
  std::atomic<bool> stop_requested_{false};
  bool finished_ = false;
  bool ran_ = false;
  std::chrono::steady_clock::time_point started_;
  int64_t started_ms_ = 0;

  // Accept bookkeeping: FILTER_NETWORK_CONNECTION -> WSI_CREATE (same call stack).
  bool pending_accept_ = false;
  std::string pending_ip_;
  std::string_view pending_reject_;

  uint64_t next_conn_id_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  // lws overwrites opaque_user_data right after WSI_CREATE (adopt passes its
  // own), so a new wsi is found here once and then cached in its opaque data.
  std::unordered_map<lws*, Conn*> by_wsi_;
  std::string scratch_;
  // Timers that know the server (the sul must stay the first member).
  struct ImplTimer {
    lws_sorted_usec_list_t sul;
    Impl* impl;
  };
  ImplTimer dispatch_timer_{};
  ImplTimer housekeeping_timer_{};
  ImplTimer shutdown_timer_{};
  ImplTimer append_timer_{};
  bool dispatch_scheduled_ = false;
  // Appends made while handling this pass of the event loop, handed to the bus
  // together at its end (FlushAppends; see Bus::AppendAsyncMany).
  std::vector<Bus::PendingAppend> pending_appends_;
};

}  // namespace tailbus::ws
