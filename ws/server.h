// `tailbus serve`: HTTP/1.1 + WebSocket + SSE on one port over libwebsockets.
//
// Threads and ownership
// - The NETWORK thread is whichever thread calls Server::Run(). It owns every
//   socket, every connection's state, all subscriptions (cursors, filters,
//   partial batches, control-frame queues), the dispatcher, the metrics, the
//   LogReader used for catch-up and history pages, and all framing and HTTP
//   parsing. Every libwebsockets call except lws_cancel_service() happens on
//   it. Nothing it owns is locked.
// - The bus WRITER thread runs append completions and commit wake-ups. They
//   only push {connection id, result} onto the mailbox (a mutex-protected
//   queue) and call lws_cancel_service(); the network thread drains the whole
//   mailbox on LWS_CALLBACK_EVENT_WAIT_CANCELLED. A completion for a
//   connection that closed meanwhile is dropped (connections are found by a
//   monotonically increasing id, never by pointer).
// - One WORKER thread runs the rare blocking bus calls (DeleteSession) and
//   posts their results to the same mailbox.
// - RequestStop() may be called from any thread: it sets a flag and wakes the
//   network thread. It is not async-signal-safe (it takes the mailbox lock);
//   call it from a signal-waiting thread, not from a signal handler.
//
// The network thread's loop is libev on epoll when available (ws/event_loop.h;
// O(ready sockets) per turn), else libwebsockets' poll() (O(open sockets)).
//
// Delivery is cursor-based: a subscriber's position in the log plus its
// filter; each WRITEABLE sends at most one frame built from the next committed
// events (hot ring or storage). A slow client just falls behind and is served
// from storage; no event data is queued per client (a partial batch held for
// batch_window_ms is at most batch_size shared pointers to committed events).
// See docs/PROTOCOL.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "core/status.h"

namespace tailbus::ws {

struct ServerOptions {
  // HOST:PORT to listen on (IPv4 literal, [IPv6] or localhost). Port 0 picks a
  // free port; read it back with Server::port().
  std::string listen = "127.0.0.1:8080";

  // Most open connections (HTTP, WebSocket and SSE together). Past it an HTTP
  // request gets 503 too_many_connections, a WebSocket is closed with 4429.
  size_t max_connections = 32'768;
  // Most open connections from one client IP (429 / 4429 past it).
  size_t max_connections_per_ip = 16'384;
  // Most subscribers bound to one session (/ws/events/{id}, /ws?session_id=,
  // /ws/receipt/{id}, per-session SSE); background.md §4's max_clients_per_session.
  size_t max_clients_per_session = 1'000;
  // Largest incoming WebSocket message, bytes (larger: error frame, close 1009).
  size_t max_message_bytes = 1 << 20;
  // Largest HTTP request body, bytes, checked against Content-Length before
  // reading (413 past it).
  size_t max_body_bytes = 16 << 20;
  // Most events in one publish (HTTP POST or WebSocket publish).
  size_t max_events_per_publish = 10'000;
  // Most publishes of one WebSocket connection waiting for their commit; past
  // it the server stops reading from that connection until acks drain. Above
  // the windows producers pipeline with (NATS and Redis clients keep 100 and
  // more in flight): at 64, a window of 100 paused the connection every group
  // commit (bench: WebSocket ingest 85k -> 114k/s at 256+).
  size_t max_inflight_publishes = 256;

  // A subscriber with data pending that has not become writable for this
  // long is closed with 4408 (it can resume with after=).
  std::chrono::milliseconds stall_timeout = std::chrono::seconds(60);
  // WebSocket keepalive: PING after this many seconds without valid traffic.
  int ping_interval_s = 30;
  // WebSocket hang-up after this many seconds without valid traffic (a PONG counts).
  int idle_timeout_s = 75;
  // SSE heartbeat comment interval.
  std::chrono::milliseconds sse_heartbeat = std::chrono::seconds(15);
  // How long a deferred HTTP response (waiting for its commit) may wait.
  std::chrono::seconds deferred_response_timeout = std::chrono::seconds(60);

  // batch_size when the client gives none (background.md §4: event_batch_size).
  size_t default_batch_size = 50;
  // Largest batch_size a client may ask for.
  size_t max_batch_size = 1'000;
  // batch_window_ms when the client gives none (0: send what is pending at once).
  int64_t default_batch_window_ms = 0;
  // Largest batch_window_ms (or poll_interval) a client may ask for.
  int64_t max_batch_window_ms = 10'000;
  // About the most event bytes in one frame (at least one event is always sent).
  size_t max_frame_bytes = 1 << 20;
  // Largest page of GET /api/events and /api/sessions/{id}/events (limit=).
  size_t max_page_events = 1'000;

  // Browser origins allowed for CORS and WebSocket upgrades: exact origins
  // ("https://app.example:8443") or "*" for any. Empty: any origin when
  // listening on loopback, same-origin only otherwise (an Origin equal to
  // http(s)://<Host header> is always allowed: the server's own UI).
  std::vector<std::string> allowed_origins;

  // HS256 secret for access tokens (docs/SECURITY.md), at least 32 bytes.
  // Empty: no access control (every endpoint is open).
  std::string auth_secret;
  // Allow listening on a non-loopback address without auth_secret (Create
  // refuses otherwise).
  bool insecure_no_auth = false;
  // How long graceful shutdown waits for clients to take their close frames.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(3);
  // Event loop: "auto" (libev/epoll when available, else poll), "epoll"
  // (fail if unavailable) or "poll" (libwebsockets' own; O(sockets) per turn).
  std::string event_loop = "auto";
  // libwebsockets log level bits (LLL_ERR | LLL_WARN = 3).
  int lws_log_level = 1;
  // ---- TLS (docs/SECURITY.md "TLS") ----
  // PEM certificate (chain) and private key files; both or neither. Set:
  // HTTPS and WSS on the listening port, and nothing in plain text there.
  std::string tls_cert;
  std::string tls_key;

  // ---- abuse limits (docs/SECURITY.md "Abuse limits") ----
  // A rate of 0 disables that limit. Buckets start full and refill steadily.
  // New connections per second from one client IP (429 / 4429 past it).
  double connection_rate_per_ip = 200;
  // How many connections one IP may open at once after a quiet period.
  double connection_burst_per_ip = 1'000;
  // Publishes per second per connection (WebSocket publish and message, HTTP
  // POST /api/events on a keep-alive connection), whatever their size.
  double publish_rate = 1'000;
  // Publishes one connection may send at once after a quiet period.
  double publish_burst = 2'000;
  // subscribe messages per second per WebSocket connection.
  double subscribe_rate = 5;
  // subscribe messages one connection may send at once after a quiet period.
  double subscribe_burst = 20;
  // Rate-limited WebSocket messages in a row after which the connection is
  // closed with 1008 (0: never close, only reject).
  uint32_t rate_limit_strikes = 20;
  // A connection that has not completed its request headers (and the TLS
  // handshake) this long after it was accepted is closed.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
  // Most connections from one IP still sending their request headers; a new
  // TCP connection past it is closed at once.
  size_t max_pending_per_ip = 64;
  // Most client IPs whose connection rate is tracked (least recently seen
  // forgotten past it): bounds the table's memory under a flood of addresses.
  size_t max_tracked_ips = 65'536;

  // Serve the web UI's files from this directory instead of the copy embedded
  // in the binary (for working on web/ without rebuilding). Empty: embedded.
  std::string ui_dir;
};

class Server {
 public:
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Validates the options, creates the libwebsockets context and binds the
  // listening socket (so a busy port fails here and port() is known). `bus`
  // must outlive the server. Nothing is served until Run().
  static Result<std::unique_ptr<Server>> Create(Bus& bus, ServerOptions options);

  // Serves on the calling thread (it becomes the network thread) until
  // RequestStop(), then shuts down gracefully: stops accepting, lets in-flight
  // appends finish (bus.Close()), answers them, closes WebSocket clients with
  // 1001 and SSE streams, and destroys the context. Call at most once.
  Status Run();

  // Any thread (not a signal handler). Idempotent.
  void RequestStop();

  // The bound port (useful with port 0).
  int port() const;
  // "http://HOST:PORT", or "https://HOST:PORT" with TLS.
  std::string base_url() const;
  // True when serving HTTPS / WSS (tls_cert and tls_key were given).
  bool tls() const;
  // The event loop in use: "epoll" or "poll".
  const char* event_loop() const;

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tailbus::ws
