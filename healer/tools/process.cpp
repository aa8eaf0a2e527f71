#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace coord::healer {

namespace {

int status_code(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

}  // namespace

Result<pid_t> spawn_group(const std::vector<std::string>& argv, bool die_with_parent) {
  if (argv.empty()) return Status(ErrorCode::BadArguments, "an empty command");
  // Everything the child needs is made before fork.
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Status(ErrorCode::SystemError, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    if (die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
    }
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGPIPE})
      signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
      dup2(null, 0);
      if (null != 0) close(null);
    }
    // Nothing of the healer's passes to a worker, which may outlive it: its
    // sockets (Asio opens them without close-on-exec) would keep its status
    // port taken and its session's connection open.
    syscall(SYS_close_range, 3U, ~0U, 0U);
    execvp(args[0], args.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also done by the child; whichever runs first
  return pid;
}

std::optional<int> poll_exit(pid_t pid) {
  int st = 0;
  const pid_t r = waitpid(pid, &st, WNOHANG);
  if (r == pid) return status_code(st);
  if (r < 0 && errno == ECHILD) return 1;  // reaped elsewhere: gone all the same
  return std::nullopt;
}

int stop_group(pid_t pid, std::chrono::milliseconds grace) {
  kill(-pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    if (auto st = poll_exit(pid)) {
      kill(-pid, SIGKILL);  // whatever it left in its group
      return *st;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(-pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  return status_code(st);
}

}  // namespace coord::healer
