// tailbus serve: the server (HTTP + WebSocket + SSE on one port). See
// ws/server.h for the threads and docs/PROTOCOL.md for the protocol.
//
// Signals: SIGINT and SIGTERM are blocked in every thread (the mask is set
// before any thread starts) and taken by one thread with sigwait(), which
// calls Server::RequestStop() from ordinary thread context. A second signal
// during the graceful shutdown exits at once.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/secret_file.h"
#include "ws/query.h"
#include "ws/server.h"

namespace tailbus::cli {
namespace {

struct ServeOptions {
  std::string db;
  ws::ServerOptions server;
  std::string allowed_origins;
  std::string auth_secret_file;
  double stall_timeout_s = 60;
  double sse_heartbeat_s = 15;
  double shutdown_grace_s = 3;
  double header_timeout_s = 10;
  bool verbose = false;
};

// Lets the process hold many sockets: soft RLIMIT_NOFILE up to the hard limit.
void RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

int RunServe(ServeOptions opts) {
  // Block the stop signals before any thread exists, so they all inherit it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // ends the signal thread after the server stopped
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  RaiseFileLimit();

  if (opts.allowed_origins.empty()) {
    // The flag's old name's variable (--cors-origins is an alias of the flag).
    if (const char* old = std::getenv("TAILBUS_CORS_ORIGINS")) opts.allowed_origins = old;
  }
  opts.server.allowed_origins = ws::SplitList(opts.allowed_origins);
  if (!opts.auth_secret_file.empty()) {
    Result<std::string> secret = ReadSecretFile(opts.auth_secret_file);
    if (!secret.ok()) return Fail(secret.status().message(), kExitUsage);
    opts.server.auth_secret = std::move(*secret);
  }
  opts.server.stall_timeout = Millis(opts.stall_timeout_s);
  opts.server.sse_heartbeat = Millis(opts.sse_heartbeat_s);
  opts.server.shutdown_grace = Millis(opts.shutdown_grace_s);
  opts.server.header_timeout = Millis(opts.header_timeout_s);
  if (opts.verbose) opts.server.lws_log_level = 3;  // LLL_ERR | LLL_WARN

  Result<std::unique_ptr<Bus>> bus = OpenBus(opts.db, /*create_if_missing=*/true);
  if (!bus.ok()) return Fail(bus.status().message());
  Result<std::unique_ptr<ws::Server>> server = ws::Server::Create(**bus, opts.server);
  if (!server.ok()) {
    (*bus)->Close();
    return Fail(server.status().message(),
                server.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitError);
  }
  ws::Server& srv = **server;

  std::atomic<bool> done{false};
  std::thread waiter([&] {
    int stops = 0;
    while (true) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (done.load()) return;
      if (sig == SIGUSR1) continue;
      if (++stops == 1) {
        std::fprintf(stderr, "tailbus: %s: shutting down (again to exit at once)\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        srv.RequestStop();
      } else {
        std::fprintf(stderr, "tailbus: exiting without finishing the shutdown\n");
        std::_Exit(kExitError);
      }
    }
  });

  const std::string url = srv.base_url();
  std::string ws_url = url;
  ws_url.replace(0, 4, "ws");
  std::fprintf(stderr, "tailbus %s serving %s (WebSocket %s/ws) db=%s epoch=%s head=%lld\n",
               TAILBUS_VERSION, url.c_str(), ws_url.c_str(), opts.db.c_str(),
               (*bus)->epoch().c_str(), static_cast<long long>((*bus)->head()));
  if (opts.server.auth_secret.empty() && opts.server.insecure_no_auth) {
    std::fprintf(stderr,
                 "tailbus: warning: --insecure-no-auth: no access control, every endpoint is "
                 "open to anyone who can connect\n");
  }
  std::fflush(stderr);

  Status st = srv.Run();  // returns after RequestStop() and the graceful shutdown

  done.store(true);
  pthread_kill(waiter.native_handle(), SIGUSR1);
  waiter.join();
  server->reset();
  (*bus)->Close();
  bus->reset();  // closes the log
  if (!st.ok()) return Fail(st.message());
  std::fprintf(stderr, "tailbus: stopped\n");
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<ServeOptions>();
  ws::ServerOptions& s = opts->server;
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve the log over HTTP, WebSocket and SSE on one port: publish with POST /api/events or "
      "a WebSocket, watch live with /ws (filters, batching, resume with after=N), replay with "
      "GET /api/events");
  cmd->footer(
      "Every flag can also be set in the environment: --max-body-bytes is TAILBUS_MAX_BODY_BYTES.\n"
      "Examples:\n"
      "  tailbus serve --listen 127.0.0.1:8080 --db ./data/tailbus.db\n"
      "  curl -d '{\"session_id\":\"s1\",\"type\":\"message\",\"content\":\"hi\"}' "
      "http://127.0.0.1:8080/api/events\n"
      "  python3 -m websockets 'ws://127.0.0.1:8080/ws?after=0'\n"
      "Protocol: docs/PROTOCOL.md. SIGINT/SIGTERM shut down gracefully (in-flight appends\n"
      "finish, WebSocket clients get close code 1001).");
  AddDbOption(cmd, &opts->db);
  auto opt = [&](const char* name, auto* value, const char* env, const char* help,
                 const char* type) {
    return cmd->add_option(name, *value, help)
        ->envname(env)
        ->type_name(type)
        ->capture_default_str();
  };
  opt("--listen", &s.listen, "TAILBUS_LISTEN",
      "HOST:PORT to listen on (IPv4, [IPv6] or localhost; port 0 picks one)", "HOST:PORT");
  opt("--max-connections", &s.max_connections, "TAILBUS_MAX_CONNECTIONS",
      "Most open connections (HTTP 503 / WebSocket close 4429 past it)", "N")
      ->check(CLI::PositiveNumber);
  opt("--max-connections-per-ip", &s.max_connections_per_ip, "TAILBUS_MAX_CONNECTIONS_PER_IP",
      "Most open connections from one client address (HTTP 429 / close 4429)", "N")
      ->check(CLI::PositiveNumber);
  opt("--max-clients-per-session", &s.max_clients_per_session, "TAILBUS_MAX_CLIENTS_PER_SESSION",
      "Most subscribers bound to one session (close 4429 / HTTP 429 past it)", "N")
      ->check(CLI::PositiveNumber);
  opt("--max-message-bytes", &s.max_message_bytes, "TAILBUS_MAX_MESSAGE_BYTES",
      "Largest incoming WebSocket message (close 1009 past it)", "BYTES")
      ->check(CLI::PositiveNumber);
  opt("--max-body-bytes", &s.max_body_bytes, "TAILBUS_MAX_BODY_BYTES",
      "Largest HTTP request body, checked against Content-Length (413 past it)", "BYTES")
      ->check(CLI::PositiveNumber);
  opt("--max-events-per-publish", &s.max_events_per_publish, "TAILBUS_MAX_EVENTS_PER_PUBLISH",
      "Most events in one publish (413 / error too_many_events past it)", "N")
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}));
  opt("--max-inflight-publishes", &s.max_inflight_publishes, "TAILBUS_MAX_INFLIGHT_PUBLISHES",
      "Publishes of one WebSocket waiting for their commit; past it the server stops reading "
      "that connection until acks drain",
      "N")
      ->check(CLI::Range(size_t{1}, size_t{100'000}));
  opt("--stall-timeout", &opts->stall_timeout_s, "TAILBUS_STALL_TIMEOUT",
      "Close a subscriber that does not read for this long while data is pending (4408)", "SECONDS")
      ->check(CLI::Range(0.1, 86400.0));
  opt("--ping-interval", &s.ping_interval_s, "TAILBUS_PING_INTERVAL",
      "WebSocket PING after this many seconds without traffic", "SECONDS")
      ->check(CLI::Range(1, 65534));
  opt("--idle-timeout", &s.idle_timeout_s, "TAILBUS_IDLE_TIMEOUT",
      "Hang up a WebSocket after this many seconds without traffic (must exceed --ping-interval)",
      "SECONDS")
      ->check(CLI::Range(2, 65535));
  opt("--sse-heartbeat", &opts->sse_heartbeat_s, "TAILBUS_SSE_HEARTBEAT",
      "SSE heartbeat comment interval", "SECONDS")
      ->check(CLI::Range(0.1, 3600.0));
  opt("--batch-size", &s.default_batch_size, "TAILBUS_BATCH_SIZE",
      "Events per frame when the client does not say (batch_size=)", "N")
      ->check(CLI::Range(size_t{1}, size_t{100'000}));
  opt("--max-batch-size", &s.max_batch_size, "TAILBUS_MAX_BATCH_SIZE",
      "Largest batch_size a client may ask for", "N")
      ->check(CLI::Range(size_t{1}, size_t{100'000}));
  opt("--batch-window-ms", &s.default_batch_window_ms, "TAILBUS_BATCH_WINDOW_MS",
      "How long to wait to fill a batch when the client does not say (0: send at once)", "MS")
      ->check(CLI::Range(int64_t{0}, int64_t{60'000}));
  opt("--max-frame-bytes", &s.max_frame_bytes, "TAILBUS_MAX_FRAME_BYTES",
      "About the most event bytes in one frame (one event is always sent whole)", "BYTES")
      ->check(CLI::Range(size_t{1024}, size_t{64} << 20));
  opt("--allowed-origins,--cors-origins", &opts->allowed_origins, "TAILBUS_ALLOWED_ORIGINS",
      "Browser origins allowed for CORS and WebSocket upgrades: comma-separated exact origins, "
      "or '*' (default: any on loopback, same-origin only otherwise)",
      "ORIGINS");
  opt("--auth-secret-file", &opts->auth_secret_file, "TAILBUS_AUTH_SECRET_FILE",
      "Require access tokens signed with the secret in this file (>= 32 bytes; mint them with "
      "'tailbus token'); GET /api/status and the UI's files stay public",
      "FILE");
  cmd->add_flag("--insecure-no-auth", s.insecure_no_auth,
                "Allow listening on a non-loopback address without --auth-secret-file")
      ->envname("TAILBUS_INSECURE_NO_AUTH");
  opt("--shutdown-grace", &opts->shutdown_grace_s, "TAILBUS_SHUTDOWN_GRACE",
      "How long shutdown waits for clients to take their close frames", "SECONDS")
      ->check(CLI::Range(0.0, 600.0));
  opt("--tls-cert", &s.tls_cert, "TAILBUS_TLS_CERT",
      "PEM certificate (chain): serve HTTPS and WSS on --listen (needs --tls-key)", "FILE");
  opt("--tls-key", &s.tls_key, "TAILBUS_TLS_KEY", "PEM private key of --tls-cert (unencrypted)",
      "FILE");
  opt("--connection-rate-per-ip", &s.connection_rate_per_ip, "TAILBUS_CONNECTION_RATE_PER_IP",
      "New connections per second from one address (HTTP 429 / close 4429 past it; 0: off)",
      "PER_S")
      ->check(CLI::Range(0.0, 1e9));
  opt("--connection-burst-per-ip", &s.connection_burst_per_ip, "TAILBUS_CONNECTION_BURST_PER_IP",
      "New connections one address may open at once after a quiet period", "N")
      ->check(CLI::Range(1.0, 1e9));
  opt("--publish-rate", &s.publish_rate, "TAILBUS_PUBLISH_RATE",
      "Publishes per second per connection, WebSocket or HTTP keep-alive (429 / error "
      "rate_limited; 0: off)",
      "PER_S")
      ->check(CLI::Range(0.0, 1e9));
  opt("--publish-burst", &s.publish_burst, "TAILBUS_PUBLISH_BURST",
      "Publishes one connection may send at once after a quiet period", "N")
      ->check(CLI::Range(1.0, 1e9));
  opt("--subscribe-rate", &s.subscribe_rate, "TAILBUS_SUBSCRIBE_RATE",
      "subscribe messages per second per WebSocket (error subscribe_rate_limited; 0: off)", "PER_S")
      ->check(CLI::Range(0.0, 1e9));
  opt("--subscribe-burst", &s.subscribe_burst, "TAILBUS_SUBSCRIBE_BURST",
      "subscribe messages one WebSocket may send at once after a quiet period", "N")
      ->check(CLI::Range(1.0, 1e9));
  opt("--rate-limit-strikes", &s.rate_limit_strikes, "TAILBUS_RATE_LIMIT_STRIKES",
      "Close a WebSocket (1008) after this many rate-limited messages in a row (0: never)", "N");
  opt("--header-timeout", &opts->header_timeout_s, "TAILBUS_HEADER_TIMEOUT",
      "Close a connection that has not sent its complete request headers (and TLS handshake) "
      "within this long",
      "SECONDS")
      ->check(CLI::Range(0.1, 3600.0));
  opt("--max-pending-per-ip", &s.max_pending_per_ip, "TAILBUS_MAX_PENDING_PER_IP",
      "Most connections from one address still sending request headers (more: closed at once)", "N")
      ->check(CLI::PositiveNumber);
  opt("--max-tracked-ips", &s.max_tracked_ips, "TAILBUS_MAX_TRACKED_IPS",
      "Most addresses the connection-rate table remembers (least recent forgotten past it)", "N")
      ->check(CLI::PositiveNumber);
  opt("--ui-dir", &s.ui_dir, "TAILBUS_UI_DIR",
      "Serve the web UI from this directory (e.g. web/) instead of the embedded copy", "DIR")
      ->check(CLI::ExistingDirectory);
  opt("--event-loop", &s.event_loop, "TAILBUS_EVENT_LOOP",
      "auto (epoll via libev when available), epoll, or poll", "LOOP")
      ->check(CLI::IsMember({"auto", "epoll", "poll"}));
  cmd->add_flag("--verbose", opts->verbose, "Log libwebsockets warnings")
      ->envname("TAILBUS_VERBOSE");
  cmd->callback([opts, &action] { action = [opts] { return RunServe(*opts); }; });
}

}  // namespace tailbus::cli
