// A fresh directory for one test, removed with everything in it when the test
// ends. Every test suite uses this one (tests/<folder>/ includes it).
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace tailbus::testing {

class TempDir {
 public:
  // Created under $TMPDIR (or /tmp) as <prefix>-XXXXXX. If it cannot be
  // created, path() is empty and the test's own file operations fail loudly.
  explicit TempDir(std::string_view prefix = "tailbus-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / prefix).string() + "-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path()/name as a string.
  std::string File(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace tailbus::testing
