// Server lifecycle: the lws context, the protocol callback, connection
// bookkeeping and limits, the mailbox, timers and graceful shutdown.
// Routes live in http_api.cc, WebSocket subscriptions in ws_subscription.cc,
// SSE in sse.cc, wake-ups of idle subscribers in dispatcher.cc.
#include "ws/server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

#include "core/time_format.h"
#include "ws/event_loop.h"
#include "ws/frames.h"
#include "ws/server_internal.h"
#include "ws/tls.h"
#include "ws/wire.h"

namespace tailbus::ws {
namespace {

// Sockets accepted past max_connections only to be told why they are refused;
// past this many more the TCP connection is dropped at once.
constexpr size_t kRejectSlack = 64;
// Events the dispatcher examines per turn of the loop.
constexpr size_t kDispatchBatch = 8192;
// Per-connection WebSocket receive buffer (messages larger than it arrive in
// pieces and are reassembled up to max_message_bytes).
constexpr size_t kRxBufferSize = 4096;
// Per-thread read buffer (HTTP bodies are read through it).
constexpr unsigned kServiceBufferSize = 64 * 1024;
// Largest request head (request line + headers, filters in the URL included).
constexpr unsigned short kMaxHeaderBytes = 16 * 1024;

int ProtocolCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  lws_context* context = wsi ? lws_get_context(wsi) : nullptr;
  auto* impl = context ? static_cast<Server::Impl*>(lws_context_user(context)) : nullptr;
  if (impl == nullptr) return lws_callback_http_dummy(wsi, reason, user, in, len);
  return impl->Callback(wsi, reason, user, in, len);
}

void LwsLog(int /*level*/, const char* line) {
  // lws_http_mark_sse() complains on HTTP/1.1 connections; that is expected.
  if (std::strstr(line, "not h2 substream") != nullptr) return;
  std::fprintf(stderr, "tailbus: lws: %s", line);
}

std::string PeerIp(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof(buf));
  } else {
    return "unknown";
  }
  std::string ip = buf;
  if (ip.rfind("::ffff:", 0) == 0 && ip.find('.') != std::string::npos) ip.erase(0, 7);
  return ip;
}

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---- Mailbox ------------------------------------------------------------------

void Mailbox::Post(Completion completion) {
  std::lock_guard lock(mu_);
  if (context_ == nullptr) return;
  items_.push_back(std::move(completion));
  // Items were already waiting: the wake-up posted for the first of them has
  // not been served yet (serving it drains everything), so another is
  // redundant. One per commit instead of one per request (an eventfd write
  // each, on the writer thread).
  if (items_.size() == 1) lws_cancel_service(context_);
}

void Mailbox::Wake() {
  std::lock_guard lock(mu_);
  if (context_ != nullptr) lws_cancel_service(context_);
}

void Mailbox::Drain(std::vector<Completion>* out) {
  out->clear();
  std::lock_guard lock(mu_);
  out->swap(items_);
}

void Mailbox::Detach() {
  std::lock_guard lock(mu_);
  context_ = nullptr;
  items_.clear();
}

// ---- Worker -------------------------------------------------------------------

Worker::Worker() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::function<void()> fn = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  });
}

Worker::~Worker() { Stop(); }

void Worker::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void Worker::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

// ---- Server -------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(Bus& bus, ServerOptions options) {
  Result<ListenAddress> address = ParseListenAddress(options.listen);
  if (!address.ok()) return address.status();
  if (options.max_batch_size == 0 || options.default_batch_size == 0 ||
      options.default_batch_size > options.max_batch_size) {
    return Status::InvalidArgument("batch sizes: need 1 <= default <= max");
  }
  if (options.max_connections == 0 || options.max_connections_per_ip == 0 ||
      options.max_clients_per_session == 0 || options.max_message_bytes == 0 ||
      options.max_body_bytes == 0 || options.max_events_per_publish == 0 ||
      options.max_inflight_publishes == 0) {
    return Status::InvalidArgument("limits must be at least 1");
  }
  if (options.ping_interval_s <= 0 || options.idle_timeout_s <= options.ping_interval_s ||
      options.idle_timeout_s > 65535) {
    return Status::InvalidArgument("need 0 < ping interval < idle timeout <= 65535 s");
  }
  if (options.connection_rate_per_ip < 0 || options.publish_rate < 0 ||
      options.subscribe_rate < 0 || options.connection_burst_per_ip < 1 ||
      options.publish_burst < 1 || options.subscribe_burst < 1) {
    return Status::InvalidArgument("rates must be >= 0 (0: off) and bursts >= 1");
  }
  if (options.header_timeout.count() <= 0 || options.max_pending_per_ip == 0 ||
      options.max_tracked_ips == 0) {
    return Status::InvalidArgument(
        "header timeout, max pending per IP and max tracked IPs must be positive");
  }
  TAILBUS_RETURN_IF_ERROR(CheckTlsFiles(options.tls_cert, options.tls_key));
  if (!options.auth_secret.empty() && options.auth_secret.size() < kMinSecretBytes) {
    return Status::InvalidArgument(
        fmt::format("the auth secret is {} bytes; it must be at least {} (e.g. `openssl rand "
                    "-base64 48 > secret`)",
                    options.auth_secret.size(), kMinSecretBytes));
  }
  if (!address->loopback && options.auth_secret.empty() && !options.insecure_no_auth) {
    return Status::InvalidArgument(
        fmt::format("refusing to listen on {} (not loopback) without access control: give "
                    "--auth-secret-file, or --insecure-no-auth to serve without tokens",
                    options.listen));
  }
  auto impl = std::make_unique<Impl>(bus, std::move(options), std::move(*address));
  TAILBUS_RETURN_IF_ERROR(impl->Create());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::Run() { return impl_->Run(); }
void Server::RequestStop() { impl_->RequestStop(); }
int Server::port() const { return impl_->port(); }
const char* Server::event_loop() const { return impl_->event_loop(); }

std::string Server::base_url() const {
  const ListenAddress& a = impl_->address();
  std::string host = a.host == "0.0.0.0" ? "127.0.0.1" : a.host;
  if (a.ipv6) host = "[" + (host == "::" ? std::string("::1") : host) + "]";
  return fmt::format("{}://{}:{}", tls() ? "https" : "http", host, impl_->port());
}

bool Server::tls() const { return impl_->tls(); }

// ---- Impl: creation and the loop ----------------------------------------------

Server::Impl::Impl(Bus& bus, ServerOptions options, ListenAddress address)
    : bus_(bus),
      options_(std::move(options)),
      address_(std::move(address)),
      connection_rate_(RateLimit{options_.connection_rate_per_ip, options_.connection_burst_per_ip},
                       options_.max_tracked_ips) {}

Server::Impl::~Impl() {
  if (mailbox_) mailbox_->Detach();
  worker_.Stop();
  if (context_ != nullptr) {
    lws_context_destroy(context_);
    context_ = nullptr;
  }
  DestroyLoop(ev_loop_);
  conns_.clear();
  by_wsi_.clear();
}

Status Server::Impl::Create() {
  lws_set_log_level(options_.lws_log_level, LwsLog);

  lws_protocols protocol{};
  protocol.name = "tailbus";
  protocol.callback = ProtocolCallback;
  protocol.per_session_data_size = 0;  // state lives in Conn (opaque user data)
  protocol.rx_buffer_size = kRxBufferSize;
  // Sends are cut into pieces of this size: make the biggest frame one piece.
  protocol.tx_packet_size = options_.max_frame_bytes + 256 * 1024;
  protocols_ = {protocol, lws_protocols{}};

  // No lws validity timers: with thousands of connections their sorted timer
  // list makes every reschedule O(connections). Keepalive is done in
  // Housekeeping() from per-connection timestamps instead.
  retry_.secs_since_valid_ping = 0;
  retry_.secs_since_valid_hangup = 0;

  lws_context_creation_info info;
  std::memset(&info, 0, sizeof(info));
  info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_VALIDATE_UTF8;
  info.user = this;
  info.pt_serv_buf_size = kServiceBufferSize;
  info.max_http_header_data = kMaxHeaderBytes;
  info.count_threads = 1;
  if (tls()) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  const std::string& loop = options_.event_loop;
  if (loop != "auto" && loop != "epoll" && loop != "poll") {
    return Status::InvalidArgument("event loop must be auto, epoll or poll, got \"" + loop + "\"");
  }
  if (loop != "poll") {
    ev_loop_ = NewEpollLoop();
    if (ev_loop_ != nullptr) {
      lws_context_creation_info ev_info = info;
      ev_info.options |= LWS_SERVER_OPTION_LIBEV;
      foreign_loops_[0] = ev_loop_;
      ev_info.foreign_loops = foreign_loops_;
      context_ = lws_create_context(&ev_info);  // fails when lws' libev plugin is missing
      if (context_ == nullptr) {
        DestroyLoop(ev_loop_);
        ev_loop_ = nullptr;
      }
    }
    if (context_ == nullptr && loop == "epoll") {
      return Status::Unsupported(
          "the epoll event loop needs libev and libwebsockets' libev plugin "
          "(Debian: libev-dev, libwebsockets-evlib-ev)");
    }
  }
  if (context_ == nullptr) context_ = lws_create_context(&info);
  if (context_ == nullptr) return Status::IoError("cannot create the libwebsockets context");
  mailbox_ = std::make_shared<Mailbox>(context_);

  iface_ = address_.host;
  lws_context_creation_info vinfo;
  std::memset(&vinfo, 0, sizeof(vinfo));
  vinfo.port = address_.port;
  vinfo.iface = iface_.c_str();
  vinfo.protocols = protocols_.data();
  vinfo.vhost_name = "tailbus";
  vinfo.alpn = "http/1.1";  // HTTP/2 is compiled in; we speak HTTP/1.1 only
  vinfo.retry_and_idle_policy = &retry_;
  vinfo.timeout_secs = 30;
  vinfo.server_string = "tailbus/" TAILBUS_VERSION;
  vinfo.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | LWS_SERVER_OPTION_VALIDATE_UTF8;
  if (!address_.ipv6) vinfo.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  // lws drops a connection holding a header table unused for this long; keep
  // it past --header-timeout so that ours (EnforceHeaderTimeout) is the limit.
  vinfo.timeout_secs_ah_idle =
      static_cast<unsigned>(
          std::chrono::duration_cast<std::chrono::seconds>(options_.header_timeout).count()) +
      2;
  if (tls()) {
    // HTTPS and WSS only: a plain-text request fails the TLS handshake.
    vinfo.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    vinfo.ssl_cert_filepath = options_.tls_cert.c_str();
    vinfo.ssl_private_key_filepath = options_.tls_key.c_str();
  }
  vhost_ = lws_create_vhost(context_, &vinfo);
  if (vhost_ == nullptr) {
    return Status::IoError(
        fmt::format("cannot listen on {}: address in use or not available", options_.listen));
  }
  port_ = lws_get_vhost_listen_port(vhost_);
  return Status::Ok();
}

Status Server::Impl::Run() {
  if (ran_) return Status::Unavailable("Server::Run may be called only once");
  ran_ = true;
  started_ = std::chrono::steady_clock::now();
  started_ms_ = NowMillis();
  reader_ = bus_.NewReader();
  dispatcher_ = std::make_unique<Dispatcher>(bus_);
  std::shared_ptr<Mailbox> mailbox = mailbox_;
  wakeup_id_ = bus_.AddWakeup([mailbox] { mailbox->Wake(); });

  housekeeping_timer_.impl = this;
  dispatch_timer_.impl = this;
  shutdown_timer_.impl = this;
  append_timer_.impl = this;
  lws_sul_schedule(context_, 0, &housekeeping_timer_.sul, OnHousekeeping, LWS_US_PER_SEC);
  mailbox_->Wake();  // a stop requested before Run is seen at once

  if (ev_loop_ != nullptr) {
    while (!finished_) RunLoopOnce(ev_loop_);
  } else {
    while (!finished_) {
      if (lws_service(context_, 0) < 0) break;
    }
  }

  bus_.RemoveWakeup(wakeup_id_);
  mailbox_->Detach();
  worker_.Stop();
  lws_sul_cancel(&housekeeping_timer_.sul);
  lws_sul_cancel(&dispatch_timer_.sul);
  lws_sul_cancel(&shutdown_timer_.sul);
  lws_sul_cancel(&append_timer_.sul);
  FlushAppends();                 // normally done by BeginShutdown; the bus refuses them if closed
  lws_context_destroy(context_);  // closes what is left; callbacks still see *this
  context_ = nullptr;
  DestroyLoop(ev_loop_);  // after the context: lws stops its watchers on it first
  ev_loop_ = nullptr;
  conns_.clear();
  by_wsi_.clear();
  dispatcher_.reset();
  reader_.reset();
  return Status::Ok();
}

void Server::Impl::RequestStop() {
  stop_requested_.store(true);
  if (mailbox_) mailbox_->Wake();
}

int64_t Server::Impl::Now() const { return SteadyMillis(); }

Conn* Server::Impl::FindConn(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

// ---- the protocol callback ----------------------------------------------------

int Server::Impl::Callback(lws* wsi, lws_callback_reasons reason, void* user, void* in,
                           size_t len) {
  switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
      return OnAccept(static_cast<int>(reinterpret_cast<intptr_t>(in)));
    case LWS_CALLBACK_WSI_CREATE:
      OnWsiCreate(wsi);
      return 0;
    case LWS_CALLBACK_WSI_DESTROY:
      OnWsiDestroy(wsi);
      return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:  // user == NULL, fake wsi: touch nothing of it
      OnWake();
      return 0;
    default:
      break;
  }
  Conn* conn = ConnOf(wsi);
  if (conn != nullptr && conn->headers_pending) {
    switch (reason) {
      case LWS_CALLBACK_HTTP:
      case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
      case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
      case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
      case LWS_CALLBACK_ESTABLISHED:
        MarkHeadersDone(conn);  // the request head is complete
        break;
      default:
        break;
    }
  }
  switch (reason) {
    case LWS_CALLBACK_HTTP:
      return conn ? OnHttpRequest(conn, static_cast<const char*>(in)) : -1;
    case LWS_CALLBACK_HTTP_BODY:
      return conn ? OnHttpBody(conn, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
      return conn ? OnHttpBodyComplete(conn) : -1;
    case LWS_CALLBACK_HTTP_WRITEABLE:
      if (conn == nullptr) return -1;
      conn->writable_requested = false;
      if (conn->waiting_since_ms != 0) {
        conn->waiting_since_ms = 0;
        waiting_.erase(conn);
      }
      return conn->kind == ConnKind::kSse ? OnSseWriteable(conn) : OnHttpWriteable(conn);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
      // WebSocket only: no h2c.
      return (in != nullptr && std::strcmp(static_cast<const char*>(in), "websocket") == 0) ? 0 : 1;
    case LWS_CALLBACK_ESTABLISHED:
      return conn ? OnWsEstablished(conn) : -1;
    case LWS_CALLBACK_RECEIVE:
      return conn ? OnWsReceive(conn, in, len) : -1;
    case LWS_CALLBACK_RECEIVE_PONG:
      if (conn != nullptr) conn->last_rx_ms = Now();
      return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
      if (conn == nullptr) return -1;
      conn->writable_requested = false;
      if (conn->waiting_since_ms != 0) {
        conn->waiting_since_ms = 0;
        waiting_.erase(conn);
      }
      return OnWsWriteable(conn);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
    case LWS_CALLBACK_HTTP_BIND_PROTOCOL:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_CLOSED_HTTP:
      return 0;  // cleanup happens once, in WSI_DESTROY
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

// ---- connections --------------------------------------------------------------

int Server::Impl::OnAccept(int fd) {
  if (stopping_) return 1;
  std::string ip = PeerIp(fd);
  if (conns_.size() >= options_.max_connections + kRejectSlack) {
    ++metrics_.connections_rejected;
    metrics_.CountRejected(wire::kTooManyConnections);
    return 1;  // too many even to explain: drop the TCP connection
  }
  std::optional<std::string_view> abuse = CheckNewConnection(ip);
  if (!abuse) return 1;      // too many half-open requests from this address: drop at once
  pending_reject_ = *abuse;  // "" or connection_rate_limited (admitted only to be told so)
  auto it = per_ip_.find(ip);
  if (pending_reject_.empty() && admitted_ >= options_.max_connections) {
    pending_reject_ = wire::kTooManyConnections;
  } else if (pending_reject_.empty() && it != per_ip_.end() &&
             it->second >= options_.max_connections_per_ip) {
    pending_reject_ = wire::kTooManyConnectionsPerIp;
  }
  pending_accept_ = true;
  pending_ip_ = std::move(ip);
  return 0;
}

void Server::Impl::OnWsiCreate(lws* wsi) {
  if (!pending_accept_) return;  // not an accepted socket
  pending_accept_ = false;
  auto conn = std::make_unique<Conn>();
  conn->server = this;
  conn->id = ++next_conn_id_;
  conn->wsi = wsi;
  conn->peer_ip = std::move(pending_ip_);
  conn->reject_code = pending_reject_;
  conn->window_timer.conn = conn.get();
  ++metrics_.connections_accepted;
  if (conn->reject_code.empty()) {
    conn->counted = true;
    ++admitted_;
    ++per_ip_[conn->peer_ip];
  } else {
    ++metrics_.connections_rejected;
    metrics_.CountRejected(conn->reject_code);
  }
  StartHeaderClock(conn.get());
  by_wsi_[wsi] = conn.get();
  const uint64_t id = conn->id;
  conns_.emplace(id, std::move(conn));
}

Conn* Server::Impl::ConnOf(lws* wsi) {
  if (wsi == nullptr) return nullptr;
  if (void* cached = lws_get_opaque_user_data(wsi)) return static_cast<Conn*>(cached);
  auto it = by_wsi_.find(wsi);
  if (it == by_wsi_.end()) return nullptr;
  lws_set_opaque_user_data(wsi, it->second);
  return it->second;
}

void Server::Impl::OnWsiDestroy(lws* wsi) {
  Conn* conn = ConnOf(wsi);
  if (conn == nullptr) return;
  lws_set_opaque_user_data(wsi, nullptr);
  by_wsi_.erase(wsi);
  StopSubscription(conn);
  if (conn->stats != nullptr) metrics_.DetachSession(*conn->bound_session);
  conn->stats = nullptr;
  lws_sul_cancel(&conn->window_timer.sul);
  if (conn->kind == ConnKind::kWebSocket) --ws_open_;
  if (conn->kind == ConnKind::kSse) {
    --sse_open_;
    sse_conns_.erase(conn);
  }
  waiting_.erase(conn);
  OnConnDestroyed(conn);
  if (conn->counted) {
    --admitted_;
    auto it = per_ip_.find(conn->peer_ip);
    if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
  }
  conns_.erase(conn->id);
  if (stopping_) MaybeFinishShutdown();
}

// ---- writes -------------------------------------------------------------------

void Server::Impl::RequestWritable(Conn* conn, bool data_due) {
  if (!conn->writable_requested) {
    conn->writable_requested = true;
    lws_callback_on_writable(conn->wsi);
  }
  if (data_due && conn->waiting_since_ms == 0) {
    conn->waiting_since_ms = Now();
    waiting_.insert(conn);
  }
}

void Server::Impl::EnqueueControl(Conn* conn, std::string_view sse_event, std::string json) {
  if (conn->kind == ConnKind::kSse) {
    if (sse_event.empty()) return;  // WebSocket-only frame
    conn->control.push_back(SseRecord(sse_event, json));
  } else {
    conn->control.push_back(std::move(json));
  }
  if (conn->kind == ConnKind::kWebSocket && conn->control.size() >= kMaxControlFrames &&
      !conn->rx_paused) {
    lws_rx_flow_control(conn->wsi, 0);  // the client sends faster than it reads
    conn->rx_paused = true;
  }
  RequestWritable(conn, true);
}

void Server::Impl::CloseAfterControl(Conn* conn, uint16_t code, std::string_view reason) {
  if (conn->close_code != 0) return;
  conn->close_code = code;
  conn->close_reason = std::string(reason.substr(0, 120));
  conn->rx_discard = true;
  RequestWritable(conn, true);
}

void Server::Impl::FailSubscriber(Conn* conn, std::string_view error_code, std::string_view message,
                                  uint16_t close_code) {
  metrics_.CountRejected(error_code);
  EnqueueControl(conn, "error", ErrorFrame(error_code, message));
  CloseAfterControl(conn, close_code, error_code);
}

std::string& Server::Impl::ScratchBuffer() {
  scratch_.assign(LWS_PRE, '\0');
  return scratch_;
}

bool Server::Impl::WriteScratch(Conn* conn) {
  const size_t len = scratch_.size() - LWS_PRE;
  auto* data = reinterpret_cast<unsigned char*>(scratch_.data()) + LWS_PRE;
  const int n = lws_write(conn->wsi, data, len,
                          conn->kind == ConnKind::kSse ? LWS_WRITE_HTTP : LWS_WRITE_TEXT);
  conn->last_write_ms = Now();
  return n >= 0 && static_cast<size_t>(n) >= len;
}

std::string Server::Impl::AllowedOrigin(std::string_view origin) const {
  if (origin.empty()) return {};
  const std::vector<std::string>& list = options_.allowed_origins;
  if (list.empty()) return address_.loopback ? std::string("*") : std::string();
  for (const std::string& allowed : list) {
    if (allowed == "*") return "*";
    if (allowed == origin) return std::string(origin);
  }
  return {};
}

bool Server::Impl::OriginAllowed(std::string_view origin, std::string_view host) const {
  if (origin.empty() || !AllowedOrigin(origin).empty()) return true;
  // Same origin: the page was served by this server (its own UI).
  if (host.empty()) return false;
  return origin == fmt::format("http://{}", host) || origin == fmt::format("https://{}", host);
}

Gauges Server::Impl::CurrentGauges() const {
  Gauges g;
  g.head = bus_.head();
  g.earliest = bus_.earliest();
  g.uptime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - started_)
                    .count();
  g.connections = static_cast<int64_t>(conns_.size());
  g.ws_connections = static_cast<int64_t>(ws_open_);
  g.sse_connections = static_cast<int64_t>(sse_open_);
  g.subscribers = dispatcher_ ? static_cast<int64_t>(dispatcher_->size()) : 0;
  return g;
}

void Server::Impl::Append(Conn* conn, std::vector<Event> events, Completion::Kind kind,
                          std::string request_id_json) {
  ++metrics_.append_requests;
  const auto start = std::chrono::steady_clock::now();
  if (pending_appends_.empty()) {
    // Runs once the loop has handled what this pass read (a 1 us timer).
    lws_sul_schedule(context_, 0, &append_timer_.sul, OnAppendTimer, 1);
  }
  pending_appends_.push_back(Bus::PendingAppend{
      std::move(events), [mailbox = mailbox_, id = conn->id, kind, rid = std::move(request_id_json),
                          start](AppendResult result) mutable {
        // Writer thread: only hand the result over and wake the network thread.
        Completion done;
        done.kind = kind;
        done.conn_id = id;
        done.append = std::move(result);
        done.request_id_json = std::move(rid);
        done.latency_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        mailbox->Post(std::move(done));
      }});
}

void Server::Impl::FlushAppends() {
  if (pending_appends_.empty()) return;
  lws_sul_cancel(&append_timer_.sul);
  std::vector<Bus::PendingAppend> appends;
  appends.swap(pending_appends_);
  bus_.AppendAsyncMany(std::move(appends));
}

void Server::Impl::OnAppendTimer(lws_sorted_usec_list_t* sul) {
  reinterpret_cast<ImplTimer*>(sul)->impl->FlushAppends();
}

std::string Server::Impl::Header(lws* wsi, lws_token_indexes token) {
  const int n = lws_hdr_total_length(wsi, token);
  if (n <= 0) return {};
  std::string value(static_cast<size_t>(n) + 1, '\0');
  const int m = lws_hdr_copy(wsi, value.data(), n + 1, token);
  if (m < 0) return {};
  value.resize(static_cast<size_t>(m));
  return value;
}

std::string Server::Impl::CustomHeader(lws* wsi, const char* name_with_colon) {
  const int name_len = static_cast<int>(std::strlen(name_with_colon));
  const int n = lws_hdr_custom_length(wsi, name_with_colon, name_len);
  if (n <= 0) return {};
  std::string value(static_cast<size_t>(n) + 1, '\0');
  const int m = lws_hdr_custom_copy(wsi, value.data(), n + 1, name_with_colon, name_len);
  if (m < 0) return {};
  value.resize(static_cast<size_t>(m));
  return value;
}

Result<QueryArgs> Server::Impl::ReadQuery(lws* wsi) {
  std::vector<std::string> fragments;
  for (int i = 0;; ++i) {
    const int n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
    std::string fragment(static_cast<size_t>(n > 0 ? n : 0) + 1, '\0');
    const int m = lws_hdr_copy_fragment(wsi, fragment.data(), static_cast<int>(fragment.size()),
                                        WSI_TOKEN_HTTP_URI_ARGS, i);
    if (m < 0) break;
    fragment.resize(static_cast<size_t>(m));
    fragments.push_back(std::move(fragment));
  }
  return QueryArgs::Parse(fragments);
}

// ---- wake-ups, mailbox, dispatcher ----------------------------------------------

void Server::Impl::OnWake() {
  if (stop_requested_.load() && !stopping_) BeginShutdown();
  DrainMailbox();
  RunDispatcher();
}

void Server::Impl::DrainMailbox() {
  mailbox_->Drain(&drained_);
  for (Completion& done : drained_) {
    if (done.append) {
      if (done.append->ok()) {
        metrics_.appended_events += done.append->value().size();
        metrics_.commit_latency.Observe(done.latency_s);
      }
    }
    Conn* conn = FindConn(done.conn_id);
    if (conn == nullptr) continue;  // closed meanwhile: drop the ack
    switch (done.kind) {
      case Completion::Kind::kHttpAppend:
        OnHttpAppendDone(conn, done);
        break;
      case Completion::Kind::kWsAppend:
        OnWsAppendDone(conn, done);
        break;
      case Completion::Kind::kHttpDelete:
        OnHttpDeleteDone(conn, done);
        break;
    }
  }
  drained_.clear();  // keeps the capacity for the next swap
}

void Server::Impl::RunDispatcher() {
  if (!dispatcher_ || !reader_) return;
  const bool more = dispatcher_->Run(*reader_, kDispatchBatch,
                                     [this](Conn* conn) { RequestWritable(conn, true); });
  if (more && !dispatch_scheduled_) {
    dispatch_scheduled_ = true;
    lws_sul_schedule(context_, 0, &dispatch_timer_.sul, OnDispatchTimer, 1);
  }
}

void Server::Impl::OnDispatchTimer(lws_sorted_usec_list_t* sul) {
  Impl* self = reinterpret_cast<ImplTimer*>(sul)->impl;
  self->dispatch_scheduled_ = false;
  self->RunDispatcher();
}

// ---- housekeeping: stalls, SSE heartbeats, deferred responses ---------------------

void Server::Impl::OnHousekeeping(lws_sorted_usec_list_t* sul) {
  Impl* self = reinterpret_cast<ImplTimer*>(sul)->impl;
  self->Housekeeping();
  lws_sul_schedule(self->context_, 0, &self->housekeeping_timer_.sul, OnHousekeeping,
                   LWS_US_PER_SEC);
}

void Server::Impl::Housekeeping() {
  CloseExpired();
  const int64_t now = Now();
  EnforceHeaderTimeout(now);
  std::vector<Conn*> stalled;
  for (Conn* conn : waiting_) {
    if (now - conn->waiting_since_ms >= options_.stall_timeout.count()) stalled.push_back(conn);
  }
  for (Conn* conn : stalled) {
    waiting_.erase(conn);
    conn->waiting_since_ms = 0;
    if (conn->kind == ConnKind::kHttp || conn->killed) continue;  // HTTP has its own timeouts
    conn->killed = true;
    ++metrics_.slow_client_closes;
    metrics_.CountRejected(wire::kStalled);
    if (conn->kind == ConnKind::kWebSocket) {
      static const char kReason[] = "stalled";
      lws_close_reason(conn->wsi, static_cast<lws_close_status>(wire::kCloseStalled),
                       reinterpret_cast<unsigned char*>(const_cast<char*>(kReason)),
                       sizeof(kReason) - 1);
    }
    // It is not reading, so it cannot be written to: close from the outside.
    lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  }
  for (Conn* conn : sse_conns_) {
    if (now - conn->last_write_ms >= options_.sse_heartbeat.count()) {
      conn->heartbeat_due = true;
      RequestWritable(conn, false);
    }
  }
  const int64_t ping_ms = int64_t{options_.ping_interval_s} * 1000;
  const int64_t idle_ms = int64_t{options_.idle_timeout_s} * 1000;
  for (auto& [id, conn] : conns_) {
    if (conn->http.awaiting) {
      // A deferred response: keep lws from timing the connection out.
      lws_set_timeout(conn->wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                      static_cast<int>(options_.deferred_response_timeout.count()));
    }
    if (conn->kind != ConnKind::kWebSocket || conn->close_code != 0 || conn->killed) continue;
    const int64_t silent = now - conn->last_rx_ms;
    // Hang up only a peer that was pinged and given the rest of the idle
    // timeout to answer: when housekeeping runs late (a loaded machine), a
    // connection must not be dropped before its PING was even sent.
    const bool ping_unanswered =
        conn->last_ping_ms > conn->last_rx_ms && now - conn->last_ping_ms >= idle_ms - ping_ms;
    if (silent >= idle_ms && ping_unanswered) {
      // Nothing valid (not even a PONG) for the idle timeout: the peer is gone.
      metrics_.CountRejected(wire::kIdleTimeout);
      conn->killed = true;
      lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else if (silent >= ping_ms && now - conn->last_ping_ms >= ping_ms) {
      conn->ping_due = true;
      RequestWritable(conn.get(), false);
    }
  }
}

// ---- shutdown --------------------------------------------------------------------

void Server::Impl::BeginShutdown() {
  // Stop accepting: from now on OnAccept closes every new socket at once.
  // (lws_context_deprecate() would close the listening socket, but 4.1.6 uses
  // the listening wsi after freeing it.)
  stopping_ = true;
  worker_.Stop();
  FlushAppends();  // requests already read are in flight too
  bus_.Close();    // in-flight appends commit (or fail); their completions are posted
  DrainMailbox();  // ... and answered
  for (auto& [id, conn] : conns_) {
    switch (conn->kind) {
      case ConnKind::kWebSocket:
      case ConnKind::kSse:
        CloseAfterControl(conn.get(), wire::kCloseGoingAway, "server shutting down");
        break;
      case ConnKind::kHttp:
        if (conn->response || conn->http.awaiting || conn->http.expected_body > 0) break;
        [[fallthrough]];
      case ConnKind::kNew:
        lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        break;
    }
  }
  lws_sul_schedule(context_, 0, &shutdown_timer_.sul, OnShutdownDeadline,
                   static_cast<lws_usec_t>(options_.shutdown_grace.count()) * 1000);
  MaybeFinishShutdown();
}

void Server::Impl::OnShutdownDeadline(lws_sorted_usec_list_t* sul) {
  reinterpret_cast<ImplTimer*>(sul)->impl->finished_ = true;
}

void Server::Impl::MaybeFinishShutdown() {
  if (conns_.empty()) finished_ = true;
}

}  // namespace tailbus::ws
