// Fuzzes the parsing of an HTTP request line as the server sees it (after
// libwebsockets split and percent-decoded it): routing (ws/route.h), the UI's
// static file paths (web/ui_files.h), query arguments and the subscription
// parameters built from them (ws/query.h, SpecInputFromQuery), session ids in
// paths, and the --listen address. Input: "<path>\n<arg>&<arg>&…".
// Invariants:
// - a UI path is one plain file name: no "..", backslash, NUL, '%' or '/'
//   after the first; the embedded assets answer only UI paths;
// - a route's session is the path's third segment, non-empty; routes carry
//   an Allow list;
// - an accepted session id is 1-128 bytes of UTF-8 without control characters;
// - a rejected query names the argument; an accepted one gives back exactly
//   the arguments given, and typed getters fail with a message naming them.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "web/ui_files.h"
#include "ws/query.h"
#include "ws/route.h"
#include "ws/server_internal.h"

namespace {

using namespace tailbus;
using namespace tailbus::ws;

void CheckPath(std::string_view path) {
  if (IsUiPath(path)) {
    FUZZ_CHECK(path == "/" || (path.size() >= 2 && path.size() <= 129), "ui path length");
    FUZZ_CHECK(path.find("..") == std::string_view::npos, "ui path with ..");
    FUZZ_CHECK(path.find('\\') == std::string_view::npos, "ui path with a backslash");
    FUZZ_CHECK(path.find('\0') == std::string_view::npos, "ui path with NUL");
    FUZZ_CHECK(path.find('%') == std::string_view::npos, "ui path with %%");
    FUZZ_CHECK(path.find('/', 1) == std::string_view::npos, "ui path in a subdirectory");
  }
  if (std::optional<UiResponse> ui = ServeUiFile(path); ui) {
    FUZZ_CHECK(IsUiPath(path), "served a file for a non-UI path");
    FUZZ_CHECK(ui->status == 200 && !ui->content_type.empty());
  }

  const std::vector<std::string_view> segments = SplitPath(path);
  for (std::string_view s : segments) {
    FUZZ_CHECK(!s.empty() && s.find('/') == std::string_view::npos);
  }
  const Route route = MatchRoute(path);
  FUZZ_CHECK(route.allow != nullptr);
  FUZZ_CHECK(route.kind == Route::kNone || route.allow[0] != '\0', "route without Allow");
  if (route.kind == Route::kSession || route.kind == Route::kSessionEvents ||
      route.kind == Route::kSessionStream) {
    FUZZ_CHECK(segments.size() >= 3 && route.session == segments[2] && !route.session.empty());
  } else {
    FUZZ_CHECK(route.session.empty());
  }
  for (std::string_view s : segments) {
    if (ValidateSessionId(s).ok()) {
      FUZZ_CHECK(s.size() >= 1 && s.size() <= 128);
      FUZZ_CHECK(fuzz::IsValidUtf8(s), "accepted a session id that is not UTF-8");
      for (unsigned char c : s) FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control char in session id");
    } else {
      FUZZ_CHECK(!ValidateSessionId(s).message().empty());
    }
  }
}

void CheckQuery(std::string_view query) {
  std::vector<std::string> fragments;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    fragments.emplace_back(query.substr(pos, amp - pos));
    pos = amp + 1;
  }
  const bool utf8 = fuzz::IsValidUtf8(query);
  // Messages may go out in WebSocket text frames: valid UTF-8 in, valid UTF-8 out.
  auto check_message = [&](const Status& st) {
    FUZZ_CHECK(!st.message().empty());
    FUZZ_CHECK(!utf8 || fuzz::IsValidUtf8(st.message()), "message is not UTF-8: %s",
               st.message().c_str());
  };
  Result<QueryArgs> args = QueryArgs::Parse(fragments);
  if (!args.ok()) {
    check_message(args.status());
    return;
  }
  size_t non_empty = 0;
  for (const std::string& f : fragments) non_empty += f.empty() ? 0 : 1;
  FUZZ_CHECK(args->all().size() == non_empty, "arguments lost or invented");
  for (const auto& [name, value] : args->all()) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(args->Get(name) == std::string_view(value), "Get disagrees with all()");
    Result<std::optional<int64_t>> i = args->GetInt(name, -5, 1000);
    if (i.ok()) {
      FUZZ_CHECK(i->has_value() && **i >= -5 && **i <= 1000);
      FUZZ_CHECK(ParseInt64(value) == **i);
    } else {
      FUZZ_CHECK(i.status().message().rfind(name + ":", 0) == 0, "GetInt error names no arg: %s",
                 i.status().message().c_str());
      check_message(i.status());
    }
    Result<std::optional<bool>> b = args->GetBool(name);
    FUZZ_CHECK(b.ok() || b.status().message().rfind(name + ":", 0) == 0);
    if (!b.ok()) check_message(b.status());
  }
  Result<SpecInput> spec = Server::Impl::SpecInputFromQuery(*args);
  if (!spec.ok()) check_message(spec.status());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string_view path = input.substr(0, nl);
  const std::string_view query = nl == std::string_view::npos ? "" : input.substr(nl + 1);
  CheckPath(path);
  CheckQuery(query);
  // The same bytes as a --listen address and a comma list.
  if (Result<ListenAddress> listen = ParseListenAddress(path); listen.ok()) {
    FUZZ_CHECK(listen->port >= 0 && listen->port <= 65535 && !listen->host.empty());
  }
  for (const std::string& item : SplitList(query)) {
    FUZZ_CHECK(!item.empty() && item.front() != ' ' && item.back() != ' ');
  }
  return 0;
}
