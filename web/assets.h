// The web UI and the JavaScript client, compiled into the binary so that
// `tailbus serve` is one file to deploy. Generated at build time from the files
// in web/ that a browser loads (*.html, *.js, *.css, *.svg, *.d.ts) by
// web/embed_assets.cmake; tests, node_modules and package files are left out.
#pragma once

#include <cstddef>
#include <string_view>

namespace tailbus {

struct WebAsset {
  std::string_view path;          // URL path: "/index.html", "/app.js", "/tailbus.js", …
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view body;          // the file's bytes (static storage)
};

// The asset served at `path` (a URL path without query or fragment), or
// nullptr. "/" and "" give "/index.html". Paths are matched exactly: no
// decoding, no directory traversal ("/../x" simply matches nothing).
const WebAsset* FindWebAsset(std::string_view path);

// Every embedded asset, for listings and tests; `count` receives how many.
const WebAsset* AllWebAssets(size_t* count);

}  // namespace tailbus
