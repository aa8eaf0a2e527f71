// Process and socket helpers shared by the server launchers of
// coord::testing (CoordServer, ZkEnsemble): free ports, four-letter words,
// fork/exec with output to a log file, kill by pid, temporary directories.
// Thread safety: stateless functions, callable from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace coord::testing::launch {

// A port on 127.0.0.1 that was free a moment ago (0 when none).
std::uint16_t free_port();
// Sends a four-letter word to 127.0.0.1:port and returns the reply ("" on failure).
std::string four_letter(std::uint16_t port, const std::string& word);
// fork + execv with stdout and stderr appended to `log`; -1 on failure.
pid_t spawn(const std::vector<std::string>& args, const std::string& log);
// True when the child has exited (it is reaped).
bool exited(pid_t pid);
// SIGKILL and reap.
void kill_and_wait(pid_t pid);
// A new directory under the temp dir ("" on failure).
std::string make_temp_dir(const std::string& prefix);
void remove_tree(const std::string& dir);
std::string read_file(const std::string& path);

}  // namespace coord::testing::launch
