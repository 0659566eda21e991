// Helpers for the server tests (tests/ws/server_*_test.cc): an in-process
// server on an ephemeral loopback port over a temporary database, and a
// deliberately small blocking HTTP/1.1 + WebSocket client over raw sockets, so
// tests control every byte (slow readers, bad frames, partial requests).
// Every wait is bounded.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bus/bus.h"
#include "storage/log_store.h"
#include "tests/test_util/temp_dir.h"
#include "ws/server.h"

namespace tailbus::server_test {

using testing::TempDir;

using namespace std::chrono_literals;

inline constexpr auto kWait = std::chrono::seconds(20);  // generous bound for any one wait

// Polls `done` every 5 ms until it is true or `timeout` passes.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = kWait);

// A fresh directory under the system temp dir, removed on destruction.
struct TestServerOptions {
  ws::ServerOptions server;
  BusOptions bus;
  StorageOptions storage;
};

// A Server running on its own thread (the network thread) over a temp database.
class TestServer {
 public:
  explicit TestServer(TestServerOptions options = {});
  ~TestServer();  // Stop()s

  int port() const { return port_; }
  Bus& bus() { return *bus_; }
  // RequestStop, then waits for Run to return (bounded). Idempotent.
  void Stop();
  bool stopped() const { return stopped_; }

  // Appends events (JSON objects) straight to the bus; returns their offsets.
  std::vector<int64_t> Append(const std::vector<std::string>& json_events);

 private:
  TempDir dir_;
  std::unique_ptr<Bus> bus_;
  std::unique_ptr<ws::Server> server_;
  std::thread thread_;
  int port_ = 0;
  bool stopped_ = false;
};

// {"session_id":…,"event_type":…, <extra members>} with `extra` like "\"tool_name\":\"x\"".
std::string Ev(std::string_view session, std::string_view type, std::string_view extra = {});

// ---- raw sockets -----------------------------------------------------------------

// A connected loopback TCP socket. `rcvbuf` > 0 sets SO_RCVBUF before connecting.
class Socket {
 public:
  static std::unique_ptr<Socket> Connect(int port, int rcvbuf = 0);
  ~Socket();
  bool SendAll(std::string_view data);
  // Reads what is available, waiting up to `timeout`. Empty + eof() at EOF.
  std::string Recv(std::chrono::milliseconds timeout);
  bool eof() const { return eof_; }
  int fd() const { return fd_; }
  // Waits until the peer closes (EOF or reset), discarding data.
  bool WaitClosed(std::chrono::milliseconds timeout);

 private:
  explicit Socket(int fd) : fd_(fd) {}
  int fd_;
  bool eof_ = false;
};

struct HttpReply {
  int status = 0;                              // 0: no (complete) reply
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool closed = false;  // the server closed the connection after it

  // The body as JSON (asserting in the caller is up to the test).
  rapidjson::Document Json() const;
};

// One request on a fresh connection ("Connection: close" unless given).
HttpReply Http(int port, std::string_view method, std::string_view target,
               std::string_view body = {},
               const std::vector<std::pair<std::string, std::string>>& headers = {},
               std::chrono::milliseconds timeout = kWait);

// Sends raw bytes and reads one HTTP response (Content-Length or EOF).
HttpReply RawHttp(int port, std::string_view request, std::chrono::milliseconds timeout = kWait);

// Reads one HTTP response from a socket; `leftover` gets bytes after it.
HttpReply ReadHttpReply(Socket& socket, std::chrono::milliseconds timeout,
                        std::string* leftover = nullptr);

// ---- WebSocket -----------------------------------------------------------------

struct WsMessage {
  enum Kind { kText, kBinary, kClose, kTimeout, kEof };
  Kind kind = kTimeout;
  std::string data;
  int close_code = 0;  // kClose
};

class WsClient {
 public:
  // Handshake on `target` ("/ws?after=0"). nullptr when the upgrade fails;
  // `status` gets the HTTP status then.
  static std::unique_ptr<WsClient> Connect(
      int port, std::string_view target,
      const std::vector<std::pair<std::string, std::string>>& headers = {}, int rcvbuf = 0,
      int* status = nullptr);

  bool SendText(std::string_view text);
  bool SendFrame(int opcode, std::string_view payload, bool fin = true);
  // The next data or close message; answers pings; kTimeout / kEof otherwise.
  WsMessage Recv(std::chrono::milliseconds timeout = kWait);
  // The next text message parsed as a JSON object (fails the calling test
  // through the return value: nullopt on anything else).
  std::optional<rapidjson::Document> RecvJson(std::chrono::milliseconds timeout = kWait);
  // Reads JSON messages until one has "type" == `type`; others go to `skipped`.
  std::optional<rapidjson::Document> RecvType(std::string_view type,
                                              std::chrono::milliseconds timeout = kWait,
                                              std::vector<std::string>* skipped = nullptr);
  // Reads until the server closes; returns its close code (0: none / timeout).
  int WaitClose(std::chrono::milliseconds timeout = kWait);
  void Close(int code = 1000);
  Socket& socket() { return *socket_; }
  const std::string& last_text() const { return last_text_; }

 private:
  std::unique_ptr<Socket> socket_;
  std::string buffer_;
  std::string last_text_;
  std::string partial_;  // a fragmented message being reassembled
};

// Members of a JSON object, for compact assertions.
std::string Str(const rapidjson::Value& v, const char* member);
int64_t Int(const rapidjson::Value& v, const char* member);
bool Has(const rapidjson::Value& v, const char* member);

// The events of a frame: a batch's "events", or a single-event frame itself.
// Control frames yield nothing.
std::vector<const rapidjson::Value*> EventsOf(const rapidjson::Value& frame);

}  // namespace tailbus::server_test
