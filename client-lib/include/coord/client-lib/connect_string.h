// Parsing of a client connect string: "host:port,host:port,...[/chroot]",
// ZooKeeper's format, and the chroot path helpers the client applies to
// every path it sends and receives.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/status.h"

namespace coord {

struct ServerAddress {
  std::string host;
  std::uint16_t port = 2181;
  friend bool operator==(const ServerAddress&, const ServerAddress&) = default;
};

struct ConnectString {
  std::vector<ServerAddress> servers;
  std::string chroot;  // "" for none, else "/a/b" (no trailing slash)
};

// BadArguments for an empty list, a bad port, an invalid chroot or more than
// limits::client_servers_max servers. A host without a port gets 2181;
// "[::1]:2181" style IPv6 literals are accepted.
Result<ConnectString> parse_connect_string(std::string_view text);

// ZooKeeper's path rules (docs/PROTOCOL.md §3.4): absolute, no empty,
// "." or ".." component, no trailing slash except for "/", no NUL.
// `sequential` allows the trailing slash a sequential create may end with.
Status validate_path(std::string_view path, bool sequential = false);

// "/app" + "/x" = "/app/x"; "/app" + "/" = "/app"; "" + p = p.
std::string chroot_path(std::string_view chroot, std::string_view path);
// The inverse for paths coming back from the server; a path outside the
// chroot is returned unchanged.
std::string strip_chroot(std::string_view chroot, std::string_view server_path);

}  // namespace coord
