// Client side of the tailbus protocol, used by the CLI (`tailbus tail`,
// `tailbus publish --url`), the benchmarks and the integration tests.
// Speaks HTTP/1.1 and WebSocket over libwebsockets; no other module includes
// libwebsockets.h.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace tailbus {

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// One blocking HTTP/1.1 request ("http://host:port/path?query", or https://
// verified against `ca_file`, a PEM file of CAs; empty: the system's CAs).
// Thread-safe: each call runs its own short-lived lws context. IoError when
// the server cannot be reached, fails verification or the timeout passes.
Result<HttpResponse> HttpRequest(std::string_view method, std::string_view url,
                                 std::string_view body = {},
                                 std::string_view content_type = "application/json",
                                 int timeout_ms = 30'000, const std::string& ca_file = {});

}  // namespace tailbus
