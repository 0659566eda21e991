#include "web/ui_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/test_util/temp_dir.h"
#include "web/assets.h"

namespace tailbus {
namespace {

TEST(UiFiles, EmbedsTheBrowserFilesOnly) {
  size_t n = 0;
  const WebAsset* all = AllWebAssets(&n);
  ASSERT_GT(n, 5u);
  bool index = false, client = false, types = false, css = false;
  for (size_t i = 0; i < n; ++i) {
    const std::string_view p = all[i].path;
    EXPECT_EQ(p[0], '/');
    EXPECT_TRUE(IsUiPath(p)) << p;
    EXPECT_EQ(p.find("test"), std::string_view::npos) << p;
    EXPECT_EQ(p.find("package"), std::string_view::npos) << p;
    EXPECT_FALSE(all[i].body.empty()) << p;
    index |= p == "/index.html";
    client |= p == "/tailbus.js";
    types |= p == "/tailbus.d.ts";
    css |= p == "/style.css";
  }
  EXPECT_TRUE(index && client && types && css);
}

TEST(UiFiles, ServesEmbeddedAssets) {
  auto root = ServeUiFile("/");
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->content_type, "text/html; charset=utf-8");
  EXPECT_NE(root->body.find("<!doctype html>"), std::string::npos);
  bool csp = false;
  for (const auto& [k, v] : root->headers) csp |= k == "content-security-policy";
  EXPECT_TRUE(csp);

  auto js = ServeUiFile("/tailbus.js");
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(js->body.find("export function connect"), std::string::npos);
  EXPECT_EQ(js->body, std::string(FindWebAsset("/tailbus.js")->body));

  auto dts = ServeUiFile("/tailbus.d.ts");
  ASSERT_TRUE(dts.has_value());
  EXPECT_EQ(dts->content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(FindWebAsset("")->path, "/index.html");
}

TEST(UiFiles, RefusesEverythingElse) {
  for (const char* p : {"", "/..", "/../etc/passwd", "/%2e%2e/x.js", "/test/unit.test.mjs",
                        "/package.json", "/package-lock.json", "/node_modules/ws/index.js",
                        "/.hidden.js", "/a\\b.js", "/x.js/", "//app.js", "/app.js?x=1",
                        "/CMakeLists.txt", "/ui_files.cc", "/embed_assets.cmake", "/a..js"}) {
    EXPECT_FALSE(IsUiPath(p)) << p;
    EXPECT_FALSE(ServeUiFile(p).has_value()) << p;
  }
  EXPECT_FALSE(ServeUiFile("/missing.js").has_value());
  EXPECT_FALSE(IsUiPath(std::string("/a\0.js", 6)));
}

TEST(UiFiles, ServesFromADirectoryWithoutEscapingIt) {
  namespace fs = std::filesystem;
  testing::TempDir temp("tailbus-ui");
  ASSERT_FALSE(temp.path().empty());
  const fs::path& dir = temp.path();
  std::ofstream(dir / "app.js") << "export const x = 1;\n";
  std::ofstream(dir / "index.html") << "<!doctype html><title>dev</title>\n";
  fs::create_directory(dir / "sub");
  std::ofstream(dir / "sub" / "x.js") << "nope\n";
  fs::create_symlink("/etc/hostname", dir / "evil.js");
  fs::create_directory(dir / "dir.js");

  auto app = ServeUiFile("/app.js", dir.string());
  ASSERT_TRUE(app.has_value());
  EXPECT_EQ(app->body, "export const x = 1;\n");
  auto index = ServeUiFile("/", dir.string());
  ASSERT_TRUE(index.has_value());
  EXPECT_NE(index->body.find("dev"), std::string::npos);
  EXPECT_FALSE(ServeUiFile("/evil.js", dir.string()).has_value());
  EXPECT_FALSE(ServeUiFile("/sub/x.js", dir.string()).has_value());
  EXPECT_FALSE(ServeUiFile("/dir.js", dir.string()).has_value());
  EXPECT_FALSE(ServeUiFile("/style.css", dir.string()).has_value());  // not in the directory
  EXPECT_FALSE(ServeUiFile("/app.js", (dir / "nonexistent").string()).has_value());
  fs::remove_all(dir);
}

TEST(UiFiles, AcceptsHtml) {
  EXPECT_TRUE(AcceptsHtml("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
  EXPECT_TRUE(AcceptsHtml("TEXT/HTML"));
  EXPECT_FALSE(AcceptsHtml("*/*"));
  EXPECT_FALSE(AcceptsHtml("application/json"));
  EXPECT_FALSE(AcceptsHtml(""));
}

}  // namespace
}  // namespace tailbus
