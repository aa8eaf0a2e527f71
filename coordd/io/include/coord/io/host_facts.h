// Facts about the host process that the four-letter words report
// (`envi`, `mntr`) and the pure replica cannot know: operating system,
// user, working directory, memory and file descriptors.
// Thread safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace coord::io {

// `envi`'s host lines in ZooKeeper's key names and order: host.name,
// os.name, os.arch (as Java names it: amd64, aarch64, ...), os.version,
// user.name, user.home, user.dir, os.memory.free/max/total (in MB; for
// coordd, the host's free and total memory and this process's resident
// size). A fact the host does not give is left out.
std::vector<std::pair<std::string, std::string>> host_environment();

// Open file descriptors of this process, and its limit; nullopt when the
// host does not say.
std::optional<std::uint64_t> open_fd_count();
std::optional<std::uint64_t> max_fd_count();

}  // namespace coord::io
