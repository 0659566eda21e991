// The HTTP routes of the server (ws/http_api.cc) as a pure function of the
// request path, so the routing can be tested and fuzzed without a server.
// The path is the one libwebsockets hands over: already percent-decoded, with
// `//`, `/./` and `/../` folded (ws/query.h). No query string.
#pragma once

#include <string>
#include <string_view>

namespace tailbus::ws {

struct Route {
  enum Kind {
    kNone,  // no endpoint: 404
    kIndex,
    kEvents,
    kSessions,
    kSession,
    kSessionEvents,
    kSessionStream,
    kStream,
    kStatus,
    kWsMetrics,
    kMetrics,
    kWsEndpoint,
  };
  Kind kind = kNone;
  std::string session;     // for the /api/sessions/{id}/... routes (not validated here)
  const char* allow = "";  // the Allow header for 405 and OPTIONS; never null
};

Route MatchRoute(std::string_view path);

}  // namespace tailbus::ws
