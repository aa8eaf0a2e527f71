// The health checks and the commands coord-sidecar runs.
//
//   http://host:port/path  a GET; passes on a 2xx or 3xx status in time
//   tcp://host:port        passes when a TCP connection opens in time
//   command                `/bin/sh -c CMD`; passes when it exits 0 in time
//
// Every check and command is bounded by its timeout: a command that
// overruns is killed with its whole process group (SIGKILL) and counts as
// failed. Commands run with stdin from /dev/null; the start of their output
// (stdout and stderr, limits::sidecar_command_output_bytes_max) is kept for
// the log.
// Thread safety: free functions, callable from any thread. run_command
// forks: the caller must not rely on SIGCHLD (it waits for its own child by
// pid).
#pragma once

#include <chrono>
#include <string>

#include "coord/sidecar/config.h"

namespace coord::sidecar {

struct CheckOutcome {
  bool passed = false;
  std::string detail;  // "HTTP 200", "connection refused", "exit 1: <output>", ...
};

// Runs one check; CheckKind::None always passes.
CheckOutcome run_check(const CheckSpec& spec, std::chrono::milliseconds timeout);

struct CommandOutcome {
  bool ok = false;  // exited 0 in time
  bool timed_out = false;
  int status = -1;     // exit code, 128 + signal when a signal ended it, -1: not run
  std::string output;  // the start of what it wrote
  std::string describe() const;
};

CommandOutcome run_command(const std::string& command, std::chrono::milliseconds timeout);

}  // namespace coord::sidecar
