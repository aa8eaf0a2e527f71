// The console's files as compiled into coordd: every file of coordd/ui/ is
// there byte for byte under its name, with the content type its extension
// calls for, and nothing else is found.

#include "coord/io/console_assets.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

namespace coord::io {
namespace {

const std::filesystem::path ui_dir =
    std::filesystem::path(COORD_TEST_SOURCE_DIR) / ".." / ".." / "coordd" / "ui";

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string expected_type(const std::string& name) {
  const std::string ext = std::filesystem::path(name).extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".json") return "application/json";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "";
}

TEST(ConsoleAssets, EveryFileOfTheSourceDirectoryIsEmbeddedByteForByte) {
  ASSERT_TRUE(std::filesystem::is_directory(ui_dir)) << ui_dir;
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::directory_iterator(ui_dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") || name.ends_with("~") || name.ends_with(".swp")) continue;
    on_disk.insert(name);
    const ConsoleAsset* asset = find_console_asset(name);
    ASSERT_NE(asset, nullptr) << name;
    EXPECT_EQ(asset->name, name);
    EXPECT_EQ(asset->body, read_file(entry.path())) << name;
    EXPECT_EQ(asset->content_type, expected_type(name)) << name;
  }
  std::set<std::string> embedded;
  for (const ConsoleAsset& a : console_assets())
    embedded.insert(std::string(a.name));
  EXPECT_EQ(embedded, on_disk);
}

TEST(ConsoleAssets, ThePageItsScriptAndItsStyleAreThere) {
  for (const char* name : {"index.html", "app.js", "style.css"}) {
    const ConsoleAsset* asset = find_console_asset(name);
    ASSERT_NE(asset, nullptr) << name;
    EXPECT_FALSE(asset->body.empty()) << name;
  }
  EXPECT_EQ(find_console_asset("index.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(find_console_asset("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_console_asset("style.css")->content_type, "text/css; charset=utf-8");
  // /ui/ itself is the page.
  EXPECT_EQ(find_console_asset(""), find_console_asset("index.html"));
}

TEST(ConsoleAssets, AnythingElseIsNotFound) {
  for (const char* name : {"missing.js", "../index.html", "index.html/", "/index.html",
                           "INDEX.HTML", "index.htm", "app.js.map", "ui/app.js", "."}) {
    EXPECT_EQ(find_console_asset(name), nullptr) << name;
  }
}

TEST(ConsoleAssets, ThePageLoadsNoInlineScript) {
  // The CSP forbids inline scripts: the page must load its code from files.
  const std::string_view page = find_console_asset("index.html")->body;
  for (std::size_t at = page.find("<script"); at != std::string_view::npos;
       at = page.find("<script", at + 1)) {
    const std::size_t end = page.find('>', at);
    ASSERT_NE(end, std::string_view::npos);
    EXPECT_NE(page.substr(at, end - at).find("src="), std::string_view::npos)
        << page.substr(at, end - at);
  }
  EXPECT_EQ(page.find(" onclick="), std::string_view::npos);
  EXPECT_EQ(page.find(" style="), std::string_view::npos);
}

TEST(ConsoleAssets, SecurityHeadersForbidInlineCodeFramingAndSniffing) {
  bool csp = false, nosniff = false, cache = false;
  for (const auto& [name, value] : console_security_headers) {
    if (name == "Content-Security-Policy") {
      csp = value.find("default-src 'self'") != std::string_view::npos &&
            value.find("frame-ancestors 'none'") != std::string_view::npos &&
            value.find("unsafe-inline") == std::string_view::npos;
    }
    if (name == "X-Content-Type-Options") nosniff = value == "nosniff";
    if (name == "Cache-Control") cache = value == "no-cache";
  }
  EXPECT_TRUE(csp);
  EXPECT_TRUE(nosniff);
  EXPECT_TRUE(cache);
}

}  // namespace
}  // namespace coord::io
