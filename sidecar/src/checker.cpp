#include "coord/sidecar/checker.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "coord/agent/http_client.h"
#include "coord/base/limits.h"

namespace coord::sidecar {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1'000'000));
}

CheckOutcome check_tcp(const CheckSpec& spec, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int g = ::getaddrinfo(spec.host.c_str(), std::to_string(spec.port).c_str(), &hints, &res);
  if (g != 0) return {false, std::string("cannot resolve ") + spec.host + ": " + gai_strerror(g)};
  std::string why = "no address";
  bool passed = false;
  for (addrinfo* a = res; a != nullptr && !passed; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      const int n = ::poll(&p, 1, remaining_ms(deadline));
      if (n == 0) {
        why = "timed out";
      } else {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          r = 0;
        } else {
          why = std::strerror(err);
        }
      }
    } else if (r != 0) {
      why = std::strerror(errno);
    }
    ::close(fd);
    if (r == 0) passed = true;
  }
  ::freeaddrinfo(res);
  if (passed) return {true, "connected"};
  return {false, why};
}

CheckOutcome check_http(const CheckSpec& spec, milliseconds timeout) {
  auto r = agent::http_request(spec.host, spec.port, "GET", spec.path, "", timeout);
  if (!r.ok())
    return {false, r.status().message().empty() ? r.status().to_string() : r.status().message()};
  const bool passed = r->status >= 200 && r->status < 400;
  return {passed, "HTTP " + std::to_string(r->status)};
}

}  // namespace

std::string CommandOutcome::describe() const {
  std::string s;
  if (status < 0 && !timed_out) {
    s = "could not run";
  } else if (timed_out) {
    s = "timed out, killed";
  } else {
    s = "exit " + std::to_string(status);
  }
  if (!output.empty()) {
    std::string line;
    for (char c : output)
      line.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    if (!line.empty()) s += ": " + line;
  }
  return s;
}

CommandOutcome run_command(const std::string& command, milliseconds timeout) {
  CommandOutcome out;
  const auto deadline = Clock::now() + timeout;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    out.output = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  // Prepared before fork: a threaded process may only make async-signal-safe
  // calls in the child.
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  sigset_t none;
  sigemptyset(&none);
  const pid_t pid = ::fork();
  if (pid < 0) {
    out.output = std::string("fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    if (devnull >= 0) ::close(devnull);
    return out;
  }
  if (pid == 0) {
    ::setpgid(0, 0);  // its own group: a timeout kills everything it started
    // The sidecar blocks the signals it waits for; the command must not
    // inherit that, nor ignored signals.
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    // Nothing of the sidecar's (its HTTP listener, its sessions' sockets)
    // may live on in a daemon the command starts.
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execv("/bin/sh", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also done by the child; whichever runs first
  ::close(fds[1]);
  if (devnull >= 0) ::close(devnull);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  bool reading = true;
  int status = 0;
  bool exited = false;
  char buf[4096];
  while (!exited) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    const int left = remaining_ms(deadline);
    if (left == 0) break;
    pollfd p[2];
    nfds_t n = 0;
    if (reading) p[n++] = {fds[0], POLLIN, 0};
    if (pidfd >= 0) p[n++] = {pidfd, POLLIN, 0};
    // Without a pidfd (an old kernel) the exit is seen within 10 ms.
    const int wait_ms = pidfd >= 0 ? left : std::min(left, 10);
    if (n == 0) {
      ::usleep(static_cast<useconds_t>(wait_ms) * 1000);
      continue;
    }
    if (::poll(p, n, wait_ms) < 0 && errno != EINTR) break;
    if (reading && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t r = ::read(fds[0], buf, sizeof buf);
      if (r <= 0) {
        reading = false;  // EOF: a background child may still hold nothing
      } else if (out.output.size() < limits::sidecar_command_output_bytes_max) {
        out.output.append(buf,
                          std::min(static_cast<std::size_t>(r),
                                   limits::sidecar_command_output_bytes_max - out.output.size()));
      }
    }
  }
  if (!exited) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    out.timed_out = true;
  }
  if (pidfd >= 0) ::close(pidfd);
  // Whatever is already in the pipe, without waiting for more.
  for (int k = 0; k < 16 && out.output.size() < limits::sidecar_command_output_bytes_max; ++k) {
    pollfd p{fds[0], POLLIN, 0};
    if (!reading || ::poll(&p, 1, 0) <= 0 || (p.revents & POLLIN) == 0) break;
    const ssize_t r = ::read(fds[0], buf, sizeof buf);
    if (r <= 0) break;
    out.output.append(buf, std::min(static_cast<std::size_t>(r),
                                    limits::sidecar_command_output_bytes_max - out.output.size()));
  }
  ::close(fds[0]);
  if (WIFEXITED(status)) {
    out.status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out.status = 128 + WTERMSIG(status);
  }
  out.ok = !out.timed_out && out.status == 0;
  return out;
}

CheckOutcome run_check(const CheckSpec& spec, milliseconds timeout) {
  switch (spec.kind) {
    case CheckKind::None:
      return {true, "no check"};
    case CheckKind::Tcp:
      return check_tcp(spec, timeout);
    case CheckKind::Http:
      return check_http(spec, timeout);
    case CheckKind::Command: {
      const CommandOutcome r = run_command(spec.target, timeout);
      return {r.ok, r.describe()};
    }
  }
  return {false, "unknown check"};
}

}  // namespace coord::sidecar
