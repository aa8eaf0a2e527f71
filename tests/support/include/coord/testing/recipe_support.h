// Support for the recipe tests (election/, registry/; label `integration`):
// a single Apache ZooKeeper 3.8 or a single coordd, both granting sessions
// as short as 1 s; child processes with a log file, started, watched and
// killed by pid; and CuratorPeer, a small Java program on Debian's Apache
// Curator 5.4 jars (tests/curator/CuratorPeer.java), compiled on first use.
// Thread safety: one test thread owns each object.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coord/testing/coord_server.h"
#include "coord/testing/zk_server.h"

namespace coord::recipe_test {

enum class Kind { Zk, Coordd };

inline std::string kind_name(Kind k) {
  return k == Kind::Zk ? "Zk" : "Coordd";
}

// ZooKeeper's tickTime here: sessions from 1 s to 10 s.
constexpr int kZkTickMs = 500;

class Server {
 public:
  static std::string unavailable_reason(Kind k) {
    if (k == Kind::Coordd) return testing::CoordServer::unavailable_reason();
    const std::string why = testing::ZkServer::unavailable_reason();
    return why.empty() ? "" : "Apache ZooKeeper not available: " + why;
  }
  static std::unique_ptr<Server> start(Kind k, std::string* error) {
    auto s = std::unique_ptr<Server>(new Server());
    if (k == Kind::Zk) {
      testing::ZkServerOptions o;
      o.tick_ms = kZkTickMs;
      s->zk_ = testing::ZkServer::start(o, error);
      if (!s->zk_) return nullptr;
    } else {
      testing::CoordServerOptions o;
      o.extra_args = {"--min-session-timeout-ms", "1000"};
      s->coordd_ = testing::CoordServer::start(o, error);
      if (!s->coordd_) return nullptr;
    }
    return s;
  }
  std::string address() const { return zk_ ? zk_->address() : coordd_->address(); }
  std::string four_letter(const std::string& w) const {
    return zk_ ? zk_->four_letter(w) : coordd_->four_letter(w);
  }
  void kill() {
    if (zk_) zk_->kill();
    if (coordd_) coordd_->kill();
  }
  bool restart(std::string* error) { return zk_ ? zk_->restart(error) : coordd_->restart(error); }

 private:
  Server() = default;
  std::unique_ptr<testing::ZkServer> zk_;
  std::unique_ptr<testing::CoordServer> coordd_;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `pred` every 20 ms until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A child process with stdout and stderr in a log file; killed (SIGKILL) and
// reaped by the destructor if still running.
class Process {
 public:
  Process(const std::vector<std::string>& args, std::string log) : log_(std::move(log)) {
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int in[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log_.c_str(), "a", stdout);
      if (f == nullptr) _exit(126);
      dup2(STDOUT_FILENO, STDERR_FILENO);
      dup2(in[0], STDIN_FILENO);
      close(in[0]);
      close(in[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    stdin_ = in[1];
  }
  ~Process() {
    kill9();
    close_stdin();
  }
  // The child's stdin is a pipe from here: closing it gives the child EOF.
  void close_stdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  std::string log() const { return slurp(log_); }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    pid_ = -1;
  }
  // Waits for the exit; its status as a shell reports it, -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout) {
    if (!eventually([&] { return !running(); }, timeout)) return -1;
    if (WIFEXITED(status_)) return WEXITSTATUS(status_);
    if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  int stdin_ = -1;
  std::string log_;
};

// Alive and not a zombie (an orphan's zombie may wait long for its reaper).
inline bool pid_alive(pid_t pid) {
  if (pid <= 0) return false;
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  return stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

// The jars CuratorPeer needs (Debian: libcurator-recipes-java,
// libcurator-discovery-java, zookeeper), as a class path.
inline std::string curator_jar_classpath() {
  const std::string dir = "/usr/share/java/";
  std::string cp;
  for (const char* jar : {"curator-framework",
                          "curator-client",
                          "curator-recipes",
                          "curator-x-discovery",
                          "zookeeper",
                          "zookeeper-jute",
                          "slf4j-api",
                          "slf4j-nop",
                          "guava",
                          "jackson-databind",
                          "jackson-core",
                          "jackson-annotations",
                          "netty-handler",
                          "netty-common",
                          "netty-transport",
                          "netty-buffer",
                          "netty-codec",
                          "netty-resolver",
                          "netty-transport-native-epoll",
                          "netty-transport-native-unix-common"}) {
    if (!cp.empty()) cp += ":";
    cp += dir + jar + ".jar";
  }
  return cp;
}

// Compiles CuratorPeer.java into `out_dir`; the java command line prefix to
// run it, or empty with `why` filled when javac or the jars are missing.
inline std::vector<std::string> curator_peer(const std::string& source, const std::string& out_dir,
                                             std::string* why) {
  for (const char* tool : {"/usr/bin/javac", "/usr/bin/java"}) {
    if (access(tool, X_OK) != 0) {
      *why = std::string(tool) + " missing (Debian: default-jdk-headless)";
      return {};
    }
  }
  for (const char* jar :
       {"/usr/share/java/curator-recipes.jar", "/usr/share/java/curator-x-discovery.jar"}) {
    if (access(jar, R_OK) != 0) {
      *why = std::string(jar) +
             " missing (Debian: libcurator-recipes-java, libcurator-discovery-java)";
      return {};
    }
  }
  const std::string cp = curator_jar_classpath();
  if (access((out_dir + "/CuratorPeer.class").c_str(), R_OK) != 0) {
    const std::string cmd = "/usr/bin/javac -nowarn -d '" + out_dir + "' -cp '" + cp + "' '" +
                            source + "' > '" + out_dir + "/javac.log' 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      *why = "javac failed: " + slurp(out_dir + "/javac.log");
      return {};
    }
  }
  return {"/usr/bin/java", "-cp", out_dir + ":" + cp, "CuratorPeer"};
}

}  // namespace coord::recipe_test
