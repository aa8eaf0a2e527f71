#include "coord/client-lib/connect_string.h"

#include <charconv>

#include "coord/base/limits.h"

namespace coord {

namespace {

Status bad(std::string message) {
  return Status(ErrorCode::BadArguments, std::move(message));
}

Result<ServerAddress> parse_server(std::string_view s) {
  ServerAddress a;
  std::string_view port_text;
  if (!s.empty() && s.front() == '[') {  // [v6]:port
    const auto close = s.find(']');
    if (close == std::string_view::npos) return bad("unterminated [ in server " + std::string(s));
    a.host = std::string(s.substr(1, close - 1));
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected :port after ] in " + std::string(s));
      port_text = rest.substr(1);
    }
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      a.host = std::string(s);
    } else {
      a.host = std::string(s.substr(0, colon));
      port_text = s.substr(colon + 1);
    }
  }
  if (a.host.empty()) return bad("empty host in server '" + std::string(s) + "'");
  if (!port_text.empty() || s.find(':') != std::string_view::npos) {
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return bad("bad port in server '" + std::string(s) + "'");
    }
    a.port = static_cast<std::uint16_t>(port);
  }
  return a;
}

}  // namespace

Status validate_path(std::string_view path, bool sequential) {
  if (path.empty()) return bad("path must not be empty");
  if (path.front() != '/') return bad("path must start with /: " + std::string(path));
  if (path.size() == 1) return Status();
  if (path.back() == '/' && !sequential) {
    return bad("path must not end with /: " + std::string(path));
  }
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    const std::string_view part = path.substr(start, end - start);
    const bool last = end == path.size();
    if (part.empty() && !(last && sequential)) {
      return bad("empty path component in " + std::string(path));
    }
    if (part == "." || part == "..") return bad("relative path component in " + std::string(path));
    for (char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (u == 0 || (u > 0 && u < 0x20) || u == 0x7f) {
        return bad("control character in path " + std::string(path));
      }
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status();
}

Result<ConnectString> parse_connect_string(std::string_view text) {
  ConnectString cs;
  std::string_view hosts = text;
  const auto slash = text.find('/');
  if (slash != std::string_view::npos) {
    hosts = text.substr(0, slash);
    std::string_view chroot = text.substr(slash);
    if (chroot.size() > 1 && chroot.back() == '/') chroot.remove_suffix(1);
    if (chroot != "/") {
      COORD_RETURN_IF_ERROR(validate_path(chroot));
      cs.chroot = std::string(chroot);
    }
  }
  std::size_t start = 0;
  while (start <= hosts.size()) {
    const auto comma = hosts.find(',', start);
    const auto end = comma == std::string_view::npos ? hosts.size() : comma;
    std::string_view one = hosts.substr(start, end - start);
    while (!one.empty() && one.front() == ' ')
      one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ')
      one.remove_suffix(1);
    if (!one.empty()) {
      auto server = parse_server(one);
      if (!server.ok()) return server.status();
      cs.servers.push_back(std::move(*server));
      if (cs.servers.size() > limits::client_servers_max) {
        return bad("more than " + std::to_string(limits::client_servers_max) + " servers");
      }
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (cs.servers.empty()) return bad("no server in connect string '" + std::string(text) + "'");
  return cs;
}

std::string chroot_path(std::string_view chroot, std::string_view path) {
  if (chroot.empty()) return std::string(path);
  if (path == "/") return std::string(chroot);
  std::string out(chroot);
  out.append(path);
  return out;
}

std::string strip_chroot(std::string_view chroot, std::string_view server_path) {
  if (chroot.empty()) return std::string(server_path);
  if (server_path == chroot) return "/";
  if (server_path.size() > chroot.size() && server_path.substr(0, chroot.size()) == chroot &&
      server_path[chroot.size()] == '/') {
    return std::string(server_path.substr(chroot.size()));
  }
  return std::string(server_path);
}

}  // namespace coord
