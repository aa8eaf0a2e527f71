// coord-elect: run a command only while this process leads an election.
//
//   coord-elect -s SERVERS --path /election/NAME --id ME [--grace-ms N]
//               [--session-timeout-ms N] [--suspension keep|revoke] -- COMMAND ARGS...
//
// The command starts when this candidate is elected and is stopped (SIGTERM
// to its process group, SIGKILL after the grace period) the moment
// leadership is lost or uncertain (connection lost); it starts again if
// leadership comes back. The command never outlives coord-elect: it runs
// under a small supervisor process that leads its own process group and
// holds the read end of a pipe whose only writer is coord-elect; when
// coord-elect dies in any way (SIGKILL included) the kernel closes the pipe
// and the supervisor kills the whole group. The command is also given
// PR_SET_PDEATHSIG, in case the supervisor itself is killed.
//
// Prints one line per event on stdout ("coord-elect: elected token=...",
// "coord-elect: leader is ID", ...). Exit status: the command's (128+signal
// when a signal ended it) when coord-elect is told to stop (SIGTERM, SIGINT)
// or the command exits by itself; 0 when stopped with no command running;
// 2 for bad usage; 1 when the servers cannot be used.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coord/election/leader_election.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kExitUsage = 2;
constexpr int kExitServers = 1;
// How often the current leader is read to print changes.
constexpr milliseconds kLeaderPollInterval{1000};
// How long to wait for the first connection before giving up.
constexpr milliseconds kConnectTimeout{30'000};

// One line per call, whole even when two threads print.
void say(const char* fmt, const std::string& a = {}, const std::string& b = {}) {
  char line[1024];
  const int n = std::snprintf(line, sizeof line, fmt, a.c_str(), b.c_str());
  if (n < 0) return;
  std::string out = "coord-elect: ";
  out.append(line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
  out += "\n";
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

int usage(const char* why) {
  std::fprintf(stderr,
               "coord-elect: %s\n"
               "usage: coord-elect -s SERVERS --path /election/NAME --id ME [--grace-ms N]\n"
               "                   [--session-timeout-ms N] [--suspension keep|revoke]\n"
               "                   -- COMMAND ARGS...\n",
               why);
  return kExitUsage;
}

struct Args {
  std::string servers;
  std::string path;
  std::string id;
  long grace_ms = 5000;
  long session_timeout_ms = 10'000;
  coord::SuspensionPolicy suspension = coord::SuspensionPolicy::Keep;
  std::vector<std::string> command;
};

bool parse_ms(const char* s, long* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 3'600'000) return false;
  *out = v;
  return true;
}

// The command's process: a supervisor leading its own group, and the
// command inside it.
class Child {
 public:
  bool running() const { return pid_ > 0; }

  // `lease`: the supervisor stops the command when coord-elect has not
  // confirmed leadership (beat()) for that long.
  bool start(const std::vector<std::string>& command, milliseconds lease, milliseconds grace) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    // Everything the children need is prepared before fork: after it, in a
    // threaded process, only async-signal-safe calls are allowed.
    std::vector<char*> argv;
    for (const auto& a : command)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) {
      close(fds[0]);
      close(fds[1]);
      return false;
    }
    if (pid == 0) supervise(fds[0], fds[1], argv.data(), lease, grace);  // never returns
    setpgid(pid, pid);  // also done by the child; whichever runs first
    close(fds[0]);
    pid_ = pid;
    guard_fd_ = fds[1];
    return true;
  }

  // SIGTERM to the group, SIGKILL after `grace`; returns the exit status.
  int stop(milliseconds grace) {
    if (pid_ <= 0) return 0;
    kill(-pid_, SIGTERM);
    const auto deadline = Clock::now() + grace;
    int status = 0;
    for (;;) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (Clock::now() >= deadline) {
        kill(-pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return finish(status);
  }

  // Tells the supervisor that leadership still holds.
  void beat() {
    if (guard_fd_ < 0) return;
    const char b = 1;
    (void)!write(guard_fd_, &b, 1);
  }

  // The supervisor exited by itself (the command ended): its status, or -1
  // while it runs.
  int poll_exit() {
    if (pid_ <= 0) return -1;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return -1;
    return finish(status);
  }

 private:
  int finish(int status) {
    kill(-pid_, SIGKILL);  // whatever the command left in its group
    close(guard_fd_);
    pid_ = -1;
    guard_fd_ = -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
  }

  static std::int64_t now_ms() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1'000'000;
  }

  [[noreturn]] static void supervise(int guard_read, int guard_write, char** argv,
                                     milliseconds lease, milliseconds grace) {
    close(guard_write);
    setpgid(0, 0);
    // The supervisor outlives a SIGTERM to the group, so that it can report
    // the command's status; a SIGKILL to the group ends it too.
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    const pid_t supervisor = getpid();
    const pid_t cmd = fork();
    if (cmd < 0) _exit(127);
    if (cmd == 0) {
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != supervisor) _exit(127);
      execvp(argv[0], argv);
      _exit(127);
    }
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::int64_t last_beat = now_ms();
    std::int64_t term_sent = -1;
    for (;;) {
      int status = 0;
      const pid_t r = waitpid(cmd, &status, WNOHANG);
      if (r == cmd) {
        if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
        if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
        _exit(1);
      }
      pollfd p{guard_read, POLLIN, 0};
      const int n = poll(&p, 1, 50);
      if (n > 0) {
        char buf[64];
        if (read(guard_read, buf, sizeof buf) <= 0) {
          // coord-elect is gone: nothing may run in its name.
          kill(-supervisor, SIGKILL);
          _exit(137);
        }
        last_beat = now_ms();
      }
      // coord-elect is alive but silent (stopped, starved): its leadership
      // may be expiring on the servers. Stop the command as it would.
      const std::int64_t now = now_ms();
      if (term_sent < 0 && now - last_beat > lease.count()) {
        kill(-supervisor, SIGTERM);  // the supervisor ignores it
        term_sent = now;
      }
      if (term_sent >= 0 && now - term_sent > grace.count()) {
        kill(-supervisor, SIGKILL);
        _exit(137);
      }
    }
  }

  pid_t pid_ = -1;
  int guard_fd_ = -1;
};

// Events from the election's thread to the main thread.
class Inbox {
 public:
  void push(coord::LeadershipEvent ev) {
    std::lock_guard lock(mu_);
    q_.push_back(std::move(ev));
  }
  std::deque<coord::LeadershipEvent> take() {
    std::lock_guard lock(mu_);
    std::deque<coord::LeadershipEvent> out;
    out.swap(q_);
    return out;
  }

 private:
  std::mutex mu_;
  std::deque<coord::LeadershipEvent> q_;
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--") {
      ++i;
      break;
    }
    const char* v = nullptr;
    if (arg == "-s" || arg == "--servers") {
      if (!(v = value())) return usage("-s needs SERVERS");
      a.servers = v;
    } else if (arg == "--path") {
      if (!(v = value())) return usage("--path needs a path");
      a.path = v;
    } else if (arg == "--id") {
      if (!(v = value())) return usage("--id needs an id");
      a.id = v;
    } else if (arg == "--grace-ms") {
      if (!(v = value()) || !parse_ms(v, &a.grace_ms)) return usage("--grace-ms needs 0..3600000");
    } else if (arg == "--session-timeout-ms") {
      if (!(v = value()) || !parse_ms(v, &a.session_timeout_ms) || a.session_timeout_ms == 0)
        return usage("--session-timeout-ms needs 1..3600000");
    } else if (arg == "--suspension") {
      if (!(v = value())) return usage("--suspension needs keep or revoke");
      if (std::strcmp(v, "keep") == 0) {
        a.suspension = coord::SuspensionPolicy::Keep;
      } else if (std::strcmp(v, "revoke") == 0) {
        a.suspension = coord::SuspensionPolicy::Revoke;
      } else {
        return usage("--suspension needs keep or revoke");
      }
    } else if (arg == "-h" || arg == "--help") {
      usage("runs COMMAND while this process leads the election at --path");
      return 0;
    } else {
      return usage(("unknown argument: " + arg).c_str());
    }
  }
  for (; i < argc; ++i)
    a.command.push_back(argv[i]);
  if (a.servers.empty()) return usage("-s SERVERS is required");
  if (a.path.empty() || a.path.front() != '/') return usage("--path must be an absolute path");
  if (a.id.empty()) return usage("--id is required");
  if (a.command.empty()) return usage("a COMMAND after -- is required");

  // Signals are taken synchronously by the main thread; every thread
  // started from here inherits the mask.
  sigset_t wanted;
  sigemptyset(&wanted);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD})
    sigaddset(&wanted, s);
  pthread_sigmask(SIG_BLOCK, &wanted, nullptr);

  coord::ClientOptions o;
  o.servers = a.servers;
  o.session_timeout = milliseconds(a.session_timeout_ms);
  auto mc = coord::ManagedClient::start(o);
  if (!mc.ok()) {
    std::fprintf(stderr, "coord-elect: %s\n", mc.status().to_string().c_str());
    return kExitUsage;
  }
  if (auto s = (*mc)->wait_connected(kConnectTimeout); !s.ok()) {
    std::fprintf(stderr, "coord-elect: cannot reach %s: %s\n", a.servers.c_str(),
                 s.to_string().c_str());
    return kExitServers;
  }

  Inbox inbox;
  const pid_t self = getpid();
  coord::ElectionOptions eo;
  eo.path = a.path;
  eo.id = a.id;
  eo.suspension = a.suspension;
  eo.on_event = [&inbox, self](const coord::LeadershipEvent& ev) {
    inbox.push(ev);
    kill(self, SIGCHLD);  // wakes the main thread's sigtimedwait
  };
  auto election = coord::LeaderElection::start(**mc, eo);
  if (!election.ok()) {
    std::fprintf(stderr, "coord-elect: %s\n", election.status().to_string().c_str());
    return kExitUsage;
  }
  say("candidate %s on %s", a.id, a.path);

  // Who leads, printed at each change by a thread of its own: reading it
  // blocks on the network, and the main loop must keep its beat.
  std::mutex leader_mu;
  std::condition_variable leader_cv;
  std::string last_leader;
  bool polling = true;
  auto report_leader = [&](const std::string& who) {
    std::lock_guard lock(leader_mu);
    if (who == last_leader) return;
    last_leader = who;
    say("leader is %s", who);
  };
  std::thread poller([&] {
    std::unique_lock lock(leader_mu);
    while (polling) {
      lock.unlock();
      auto l = (*election)->leader();
      if (l.ok()) report_leader(*l ? (*l)->id : std::string("nobody"));
      lock.lock();
      leader_cv.wait_for(lock, kLeaderPollInterval, [&] { return !polling; });
    }
  });

  Child child;
  int exit_code = 0;
  bool done = false;
  const milliseconds grace(a.grace_ms);
  // Silence from coord-elect for a third of the session timeout stops the
  // command: with the grace period it is gone before the servers could have
  // expired this session and elected another leader (grace < 2/3 timeout).
  const milliseconds lease(a.session_timeout_ms / 3);
  while (!done) {
    timespec ts{0, 100'000'000};
    const int sig = sigtimedwait(&wanted, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      say("stopping (signal %s)", std::to_string(sig));
      if (child.running()) exit_code = child.stop(grace);
      done = true;
      break;
    }
    for (auto& ev : inbox.take()) {
      switch (ev.kind) {
        case coord::LeadershipEventKind::Waiting:
          say("waiting for %s", ev.predecessor);
          break;
        case coord::LeadershipEventKind::Elected:
          say("elected token=%s node=%s", std::to_string(ev.token), ev.node);
          report_leader(a.id);
          if (!child.running()) {
            if (child.start(a.command, lease, grace)) {
              say("started %s", a.command.front());
            } else {
              say("cannot start %s: %s", a.command.front(), std::strerror(errno));
            }
          }
          break;
        case coord::LeadershipEventKind::Suspended:
        case coord::LeadershipEventKind::Revoked:
          say(ev.kind == coord::LeadershipEventKind::Suspended ? "suspended%s%s" : "revoked (%s)%s",
              ev.reason);
          if (child.running()) {
            const int st = child.stop(grace);
            say("stopped the command, status %s", std::to_string(st));
          }
          break;
      }
    }
    // Never run the command on a stale belief (a paused process wakes here).
    if (child.running() && !(*election)->is_leader()) {
      say("leadership uncertain%s%s");
      const int st = child.stop(grace);
      say("stopped the command, status %s", std::to_string(st));
    }
    if (child.running()) child.beat();
    if (const int st = child.poll_exit(); st >= 0) {
      say("command exited, status %s", std::to_string(st));
      exit_code = st;
      done = true;
      break;
    }
  }
  {
    std::lock_guard lock(leader_mu);
    polling = false;
  }
  leader_cv.notify_all();
  poller.join();
  election->reset();  // leaves the election before the session closes
  return exit_code;
}
