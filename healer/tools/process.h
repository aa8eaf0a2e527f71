// Child processes of coord-healer: each in a process group of its own,
// started with fork/exec from a threaded process (only async-signal-safe
// calls between the two), stopped by group.
// Thread safety: free functions; the caller owns each pid it gets.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "coord/base/status.h"

namespace coord::healer {

// Starts argv[0] (looked up in PATH) with argv as the leader of a new
// process group, signals unblocked, stdin from /dev/null. With
// `die_with_parent` the child gets SIGKILL when this process dies.
// SystemError when fork fails; a failed exec shows as exit status 127.
Result<pid_t> spawn_group(const std::vector<std::string>& argv, bool die_with_parent = false);

// The exit status of `pid` (128+signal when a signal ended it) once it has
// exited, reaping it; nullopt while it runs.
std::optional<int> poll_exit(pid_t pid);

// SIGTERM to the group, SIGKILL after `grace`; reaps the leader and
// returns its status. The rest of the group is killed too.
int stop_group(pid_t pid, std::chrono::milliseconds grace);

}  // namespace coord::healer
