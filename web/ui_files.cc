#include "web/ui_files.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "web/assets.h"

namespace tailbus {
namespace {

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxFileBytes = 8 << 20;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string ContentTypeOf(std::string_view name) {
  if (EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (EndsWith(name, ".d.ts")) return "text/plain; charset=utf-8";
  if (EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (EndsWith(name, ".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

std::vector<std::pair<std::string, std::string>> UiHeaders() {
  return {
      // Always revalidate: a new binary (or a file edited under --ui-dir) shows at once.
      {"cache-control", "no-cache"},
      {"x-content-type-options", "nosniff"},
      {"referrer-policy", "no-referrer"},
      {"content-security-policy",
       "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
       "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'"},
  };
}

std::optional<std::string> ReadSmallFile(const std::filesystem::path& p) {
  std::FILE* f = std::fopen(p.c_str(), "rb");
  if (f == nullptr) return std::nullopt;
  std::string out;
  char buf[16384];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    out.append(buf, n);
    if (out.size() > kMaxFileBytes) {
      std::fclose(f);
      return std::nullopt;
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return std::nullopt;
  return out;
}

// `name` (no leading '/') inside `dir`, refusing anything that resolves
// outside it (symlinks included) or is not a regular file.
std::optional<std::string> ReadFromDir(const std::string& dir, std::string_view name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) return std::nullopt;
  const fs::path file = fs::canonical(root / std::string(name), ec);
  if (ec) return std::nullopt;
  if (file.parent_path() != root) return std::nullopt;
  if (!fs::is_regular_file(file, ec) || ec) return std::nullopt;
  return ReadSmallFile(file);
}

}  // namespace

bool IsUiPath(std::string_view path) {
  if (path == "/") return true;
  if (path.size() < 2 || path[0] != '/') return false;
  const std::string_view name = path.substr(1);
  if (name.size() > kMaxNameBytes || name[0] == '.') return false;
  for (char c : name) {
    const bool ok =
        std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  if (name.find("..") != std::string_view::npos) return false;
  return EndsWith(name, ".html") || EndsWith(name, ".js") || EndsWith(name, ".css") ||
         EndsWith(name, ".svg") || EndsWith(name, ".d.ts");
}

std::optional<UiResponse> ServeUiFile(std::string_view path, const std::string& ui_dir) {
  if (!IsUiPath(path)) return std::nullopt;
  if (path == "/") path = "/index.html";
  UiResponse r;
  r.content_type = ContentTypeOf(path);
  r.headers = UiHeaders();
  if (ui_dir.empty()) {
    const WebAsset* asset = FindWebAsset(path);
    if (asset == nullptr) return std::nullopt;
    r.body.assign(asset->body);
    return r;
  }
  std::optional<std::string> body = ReadFromDir(ui_dir, path.substr(1));
  if (!body) return std::nullopt;
  r.body = std::move(*body);
  return r;
}

bool AcceptsHtml(std::string_view accept_header) {
  std::string lower(accept_header);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("text/html") != std::string::npos;
}

}  // namespace tailbus
