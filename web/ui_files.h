// Serving the web UI over HTTP: the files embedded in the binary (assets.h),
// or, with `tailbus serve --ui-dir DIR`, the same files read from disk (for
// working on the UI without rebuilding). Pure and thread-safe; no sockets.
//
// Only the UI's own files are served: a name directly in the UI directory
// ("/app.js", not "/test/x.js"), made of [A-Za-z0-9._-], not starting with a
// dot, ending in .html, .js, .css, .svg or .d.ts. Anything else — "..",
// "%2e%2e", backslashes, NUL bytes, subdirectories, symlinks leading out of
// DIR, package.json — is not a UI file (the caller answers 404).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailbus {

struct UiResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  // Cache-Control, X-Content-Type-Options, Content-Security-Policy, …
  std::vector<std::pair<std::string, std::string>> headers;
};

// True when `path` (URL path, no query) names a UI file: "/" or "/index.html"
// and the names described above. Decides routing before any file is read.
bool IsUiPath(std::string_view path);

// The response for GET `path`: from `ui_dir` when it is not empty, else from
// the embedded assets. nullopt when `path` is not a UI file or does not exist.
// "/" is "/index.html".
std::optional<UiResponse> ServeUiFile(std::string_view path, const std::string& ui_dir = {});

// True when an Accept header prefers HTML (a browser navigating to "/"), so
// "/" can answer the UI to browsers and JSON to API clients.
bool AcceptsHtml(std::string_view accept_header);

}  // namespace tailbus
