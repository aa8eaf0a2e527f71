// The web console's files (coordd/ui/), compiled into coordd at build time
// by cmake/EmbedConsole.cmake, and the headers every console reply carries.
// The files are immutable static data: the lookup allocates nothing.
//
// Thread safety: read-only data; any thread.
#pragma once

#include <span>
#include <string_view>
#include <utility>

namespace coord::io {

struct ConsoleAsset {
  std::string_view name;  // file name, no directory: "index.html"
  std::string_view content_type;
  std::string_view body;
};

// The file named `name` (as in /ui/<name>); nullptr when there is none.
// An empty name means the console's page, index.html.
const ConsoleAsset* find_console_asset(std::string_view name);

// Every embedded file, sorted by name.
std::span<const ConsoleAsset> console_assets();

// Headers of every reply under /ui/: scripts and styles only from this
// server (no inline script runs, no other site's code), connections back to
// it and to its WebSocket, no framing by another page (clickjacking), no
// type sniffing, and a check with the server before any cached copy is used.
inline constexpr std::pair<std::string_view, std::string_view> console_security_headers[] = {
    {"Content-Security-Policy",
     "default-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Cache-Control", "no-cache"},
};

}  // namespace coord::io
