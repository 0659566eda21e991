// A blocking WebSocket client for the tailbus protocol (and any RFC 6455 text
// server), over libwebsockets 4.1. Used by `tailbus tail`, the integration
// tests and the benchmark tool. Also: URL helpers shared with HttpRequest
// (ws/client.h).
//
// ---- Threads -----------------------------------------------------------------
// libwebsockets is single-threaded: every lws call for a context must happen on
// the thread that services it. So each WsClientGroup owns ONE lws context and
// ONE private service thread that does all the socket work (connect, read,
// write, close, pings). The API below never touches lws directly: it exchanges
// data with the service thread through mutex-protected queues and wakes it
// with lws_cancel_service() (the only lws call that is safe from another
// thread).
//
// - Every WsClient method is thread-safe and may be called from any thread,
//   except from inside an on_message callback (see WsClientOptions), where only
//   Send(), Close() without waiting (timeout_ms = 0), and the accessors are
//   allowed.
// - Receive() returns whole messages in arrival order; fragmented messages
//   are reassembled on the service thread.
// - Send() never blocks: it queues the frame and returns. Frames are written
//   in Send() order, one per WRITEABLE callback. Flush() waits until the queue
//   has been handed to libwebsockets.
//
// ---- Cost per connection -----------------------------------------------------
// WsClient::Connect(url) without a group creates a private group: one lws
// context (small fd tables) and one thread per client. That is right for the
// CLI and tests. For hundreds or thousands of connections (the benchmark),
// create one WsClientGroup and Connect() every client through it: each
// connection then costs one socket, the lws connection state (~1 KiB), its
// own state here, and the messages it is assembling or holding in its inbox.
// The group's service loop is poll()-based (the Debian build's default), so a
// wake-up costs O(connections); split very large populations over a few groups
// if that shows up in a profile.
//
// ---- Back-pressure -----------------------------------------------------------
// When a client's inbox holds more than max_inbox_bytes, the service thread
// stops reading that socket (lws_rx_flow_control) until Receive() drains it
// below half: a slow consumer slows the TCP stream, like a real slow client,
// instead of growing memory.
//
// ---- Transport ---------------------------------------------------------------
// libwebsockets carries the bytes (RAW client sockets: connect, poll, buffered
// writes, flow control, timers); the upgrade handshake and RFC 6455 framing
// are implemented here. lws 4.1's own client parser costs one function call
// per received byte (measured: ~170 MB/s, 85% of the client's CPU when
// catching up); this block parser costs ~1/8 of that. It also reports close
// codes as sent (lws 4.1 rewrites 1012..1015 and 1016..2999 to 1002).
// No extension (permessage-deflate) and no subprotocol are negotiated.
//
// Measured (release build, this machine kind): ~4.5 KiB of client memory per
// idle connection in a shared group; a catching-up client parses ~1 GB/s.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tailbus {

// ---- URLs ---------------------------------------------------------------------

// "scheme://host[:port][/path][?query]". IPv6 hosts are bracketed ("[::1]").
struct ParsedUrl {
  std::string scheme;  // lower case: "http", "https" or "ws"
  bool tls = false;    // https:// (HttpRequest only)
  std::string host;    // without brackets
  int port = 0;        // the default port (80, or 443 with TLS) when the URL has none
  std::string path;    // starts with '/', includes "?query"; "/" when absent
  // "host:port" as it goes into the Host header (brackets kept for IPv6).
  std::string authority;
};

// Parses an http://, https:// or ws:// URL (wss:// is Unsupported: the
// WebSocket client speaks plain TCP only; HttpRequest speaks https://).
// InvalidArgument names what is wrong.
Result<ParsedUrl> ParseUrl(std::string_view url);

// Percent-encodes everything except RFC 3986 unreserved characters
// (A-Z a-z 0-9 - . _ ~), for query values and path segments.
std::string UrlEncode(std::string_view text);

// libwebsockets 4.1 writes the request line into a fixed 2 KiB buffer: a
// longer path + query is rejected (InvalidArgument) rather than truncated.
inline constexpr size_t kMaxClientPathBytes = 1900;

// ---- WebSocket ----------------------------------------------------------------

struct WsClientGroupOptions {
  // Most bytes read from a socket at once. One buffer per group (not per
  // connection); messages larger than it are assembled from several reads.
  size_t rx_buffer_size = 64 * 1024;
  // Largest piece written to the socket at once (lws keeps any unsent tail
  // on the heap and writes it before the next frame).
  size_t tx_packet_size = 64 * 1024;
  // Most connections the group will hold. 0: as many as `ulimit -n` allows
  // (lws then sizes its fd tables by the limit: fine for one shared group).
  size_t max_connections = 0;
};

struct WsClientOptions {
  // Connect() waits this long for the TCP connection and the upgrade.
  int connect_timeout_ms = 10'000;
  // A message larger than this closes the connection with 1009.
  size_t max_message_bytes = 256 * 1024 * 1024;
  // Stop reading the socket while the inbox holds more than this (see top).
  size_t max_inbox_bytes = 16 * 1024 * 1024;
  // Keepalive: send a WebSocket PING after this many seconds without input,
  // and drop the connection after idle_hangup_seconds without input (any
  // frame counts; default twice the ping interval). 0 disables both.
  uint16_t ping_interval_seconds = 0;
  uint16_t idle_hangup_seconds = 0;
  // Extra request header lines sent with the upgrade, e.g. "Origin: http://x".
  // Each entry is "Name: value" without CRLF.
  std::vector<std::string> headers;
  // When set, every complete message is handed to this function on the
  // group's service thread INSTEAD of being queued for Receive(). It must not
  // block; it may call Send() and the accessors of any client. Used by
  // benchmarks to timestamp deliveries without a thread hop.
  std::function<void(std::string_view message)> on_message;
};

// How the connection ended, as far as this client knows.
struct WsCloseInfo {
  // True when the server sent a close frame; `code` and `reason` are its.
  bool received_close_frame = false;
  // The peer's close code, or 1005 (close frame without a code), or 1006 (the
  // connection dropped without a close frame, or never opened).
  int code = 1006;
  std::string reason;
  // Why the connection failed or dropped when there was no close frame:
  // "connection refused", "HS: ws upgrade response not 101", "timeout", …
  std::string error;
  // The HTTP status of the upgrade response (101 when it succeeded; 0 when no
  // response was seen).
  int http_status = 0;
};

class WsConnection;  // internal: shared with the service thread

// One lws context + one service thread, shared by many WsClients.
class WsClientGroup {
 public:
  static Result<std::shared_ptr<WsClientGroup>> Create(const WsClientGroupOptions& options = {});
  // Closes every connection still open (without a close handshake) and stops
  // the service thread. Clients that outlive the group see their connection
  // as closed.
  ~WsClientGroup();

  WsClientGroup(const WsClientGroup&) = delete;
  WsClientGroup& operator=(const WsClientGroup&) = delete;

  // Connections currently open or connecting.
  size_t connection_count() const;

  class Impl;
  Impl* impl() const { return impl_.get(); }

 private:
  explicit WsClientGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class WsClient {
 public:
  // Connects to "ws://host:port/path?query" with a private group, and waits
  // until the upgrade succeeded. IoError when the server cannot be reached,
  // refuses the upgrade (the message names the HTTP status) or the timeout
  // passes; InvalidArgument for a bad URL.
  static Result<std::unique_ptr<WsClient>> Connect(std::string_view url,
                                                   const WsClientOptions& options = {});
  // The same through a shared group.
  static Result<std::unique_ptr<WsClient>> Connect(std::shared_ptr<WsClientGroup> group,
                                                   std::string_view url,
                                                   const WsClientOptions& options = {});
  // Starts connecting through `group` and returns at once; WaitConnected()
  // waits for the outcome. Lets a caller open thousands of connections in
  // parallel.
  static Result<std::unique_ptr<WsClient>> StartConnect(std::shared_ptr<WsClientGroup> group,
                                                        std::string_view url,
                                                        const WsClientOptions& options = {});
  // OK once open (also when it has closed again since); IoError when the
  // connection failed; Busy when still connecting after timeout_ms (call it
  // again, or Abort() to give up).
  Status WaitConnected(int timeout_ms);

  // Closes with 1000 when still open. With a private group it waits at most
  // 1 s for the server's reply; through a shared group the close completes in
  // the background (or is cut short when the group is destroyed). No
  // on_message call follows the destructor.
  ~WsClient();

  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Queues one text frame. Unavailable when the connection is closed or
  // closing.
  Status Send(std::string_view text);
  // Waits until every queued frame was handed to libwebsockets. Busy on
  // timeout; Unavailable when the connection closed first.
  Status Flush(int timeout_ms);

  // The next whole message (text or binary), waiting up to `timeout_ms`
  // (0: do not wait). Messages that arrived before the connection closed are
  // still returned. Errors:
  //   Busy        - nothing arrived within timeout_ms; the connection is open.
  //   Unavailable - the connection is closed and the inbox is empty; see
  //                 close_info(). (Never when on_message is set: then this
  //                 only waits for the close.)
  Result<std::string> Receive(int timeout_ms);

  // Sends pending frames, then a close frame with `code` (1000..4999) and
  // `reason` (at most 123 bytes; longer is cut), and waits up to `timeout_ms`
  // for the connection to end. OK when it ended within the time (or had
  // already); Busy otherwise (the close proceeds in the background).
  Status Close(int code = 1000, std::string_view reason = {}, int timeout_ms = 5'000);

  // Drops the TCP connection at once, without a close handshake (tests use it
  // to simulate a network failure).
  void Abort();

  bool is_open() const;
  // Set once the connection has ended (or failed to open).
  std::optional<WsCloseInfo> close_info() const;
  // Bytes of messages waiting in the inbox, and bytes queued by Send().
  size_t inbox_bytes() const;
  size_t outbox_bytes() const;

 private:
  WsClient(std::shared_ptr<WsClientGroup> group, std::shared_ptr<WsConnection> conn);
  void AbandonConnect(int timeout_ms);

  std::shared_ptr<WsClientGroup> group_;
  std::shared_ptr<WsConnection> conn_;
  bool owns_group_ = false;  // made by Connect(url): the group is private
};

namespace ws_client_internal {
// Quietens libwebsockets' own logging (errors only) once per process, unless
// TAILBUS_LWS_LOG is set (a bit mask of LLL_* levels).
void InitLwsLogging();
}  // namespace ws_client_internal

}  // namespace tailbus
