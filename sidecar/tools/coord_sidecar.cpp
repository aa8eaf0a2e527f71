// coord-sidecar: runs beside one service instance. Registers it while its
// health check passes, serves discovery of the services it watches on a
// local HTTP port, renders files from templates and reloads what reads
// them. `coord-sidecar --help` lists the flags; sidecar/README.md says
// more.
//
// Exit status: 0 after SIGTERM or SIGINT (the instance deregistered
// first); 2 for bad flags, a bad config file or a template that does not
// parse; 1 when it cannot start (the HTTP port is taken, ...).
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "coord/base/log.h"
#include "coord/sidecar/config.h"
#include "coord/sidecar/sidecar.h"

int main(int argc, char** argv) {
  // Signals are taken synchronously by this thread (sigwait); every thread
  // started from here inherits the mask, so no handler ever runs.
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGINT);
  pthread_sigmask(SIG_BLOCK, &wanted, nullptr);
  // A reader that goes away (an HTTP client, a reload command's pipe) must
  // not kill the process.
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv, argv + argc);
  auto parsed = coord::sidecar::parse_args(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "coord-sidecar: %s\nRun with --help for more information.\n",
                 parsed.status().message().c_str());
    return 2;
  }
  if (parsed->help) {
    std::fputs(parsed->help->c_str(), stdout);
    return 0;
  }
  coord::LogLevel level = coord::LogLevel::Info;
  (void)coord::parse_log_level(parsed->config.log_level, &level);  // checked by parse_args
  coord::set_log_level(level);

  auto sidecar = coord::sidecar::Sidecar::start(parsed->config);
  if (!sidecar.ok()) {
    std::fprintf(stderr, "coord-sidecar: %s\n", sidecar.status().message().c_str());
    return sidecar.code() == coord::ErrorCode::BadArguments ? 2 : 1;
  }
  int sig = 0;
  while (sigwait(&wanted, &sig) != 0) {
  }
  COORD_LOG_INFO("sidecar", "signal ", sig, ": deregistering, then exiting");
  (*sidecar)->shutdown();
  COORD_LOG_INFO("sidecar", "stopped");
  return 0;
}
