#include "ws/route.h"

#include <vector>

#include "ws/query.h"

namespace tailbus::ws {

Route MatchRoute(std::string_view path) {
  std::vector<std::string_view> s = SplitPath(path);
  Route r;
  if (s.empty()) return {Route::kIndex, {}, "GET, OPTIONS"};
  if (s[0] == "metrics" && s.size() == 1) return {Route::kMetrics, {}, "GET, OPTIONS"};
  if (s[0] == "ws") return {Route::kWsEndpoint, {}, "GET"};
  if (s[0] != "api" || s.size() < 2) return r;
  if (s.size() == 2) {
    if (s[1] == "events") return {Route::kEvents, {}, "GET, POST, OPTIONS"};
    if (s[1] == "sessions") return {Route::kSessions, {}, "GET, OPTIONS"};
    if (s[1] == "stream") return {Route::kStream, {}, "GET, OPTIONS"};
    if (s[1] == "status") return {Route::kStatus, {}, "GET, OPTIONS"};
    if (s[1] == "websocket-metrics") return {Route::kWsMetrics, {}, "GET, OPTIONS"};
    return r;
  }
  if (s[1] != "sessions") return r;
  if (s.size() == 3) return {Route::kSession, std::string(s[2]), "GET, DELETE, OPTIONS"};
  if (s.size() == 4 && s[3] == "events") {
    return {Route::kSessionEvents, std::string(s[2]), "GET, OPTIONS"};
  }
  if (s.size() == 4 && s[3] == "stream") {
    return {Route::kSessionStream, std::string(s[2]), "GET, OPTIONS"};
  }
  return r;
}

}  // namespace tailbus::ws
