#include "coord/testing/zk_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

namespace coord::testing {

namespace {

constexpr const char* kJava = "/usr/bin/java";
constexpr const char* kJars[] = {"/usr/share/java/zookeeper.jar",
                                 "/usr/share/java/zookeeper-jute.jar",
                                 "/usr/share/java/slf4j-api.jar"};

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

std::string ZkServer::unavailable_reason() {
  if (::access(kJava, X_OK) != 0) return "java not found at /usr/bin/java (apt install zookeeper)";
  for (const char* jar : kJars) {
    if (::access(jar, R_OK) != 0) {
      return std::string(jar) + " missing (apt install zookeeper)";
    }
  }
  return "";
}

std::unique_ptr<ZkServer> ZkServer::start(const ZkServerOptions& options, std::string* error) {
  std::unique_ptr<ZkServer> s(new ZkServer);
  s->options_ = options;
  std::string tmpl = (std::filesystem::temp_directory_path() / "coord-zk-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    *error = "cannot create a temporary directory";
    return nullptr;
  }
  s->dir_ = tmpl;
  // The port is free when chosen but another process may take it before
  // the JVM binds it: then launch() fails and another port is tried.
  constexpr int port_attempts = 3;
  for (int attempt = 0; attempt < port_attempts; ++attempt) {
    s->port_ = free_port();
    if (s->port_ == 0) {
      *error = "no free port";
      return nullptr;
    }
    if (s->launch(error)) return s;
  }
  return nullptr;
}

bool ZkServer::launch(std::string* error) {
  const std::string cp = std::string(kJars[0]) + ":" + kJars[1] + ":" + kJars[2];
  const std::string data = dir_ + "/data";
  const std::string log = dir_ + "/server.log";
  std::vector<std::string> args = {kJava,
                                   "-cp",
                                   cp,
                                   "-Dzookeeper.4lw.commands.whitelist=*",
                                   "-Dzookeeper.extendedTypesEnabled=true",
                                   "-Xmx256m",
                                   "org.apache.zookeeper.server.ZooKeeperServerMain",
                                   std::to_string(port_),
                                   data,
                                   std::to_string(options_.tick_ms),
                                   "1000"};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    *error = "fork failed";
    return false;
  }
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    ::execv(kJava, argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "zookeeper exited during start; see " + log;
      return false;
    }
    // Answering is not enough: it must be our server (our data directory).
    if (four_letter("ruok") == "imok" && four_letter("conf").find(dir_) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill();
  *error = "zookeeper did not answer ruok within the start timeout";
  return false;
}

void ZkServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool ZkServer::restart(std::string* error) {
  kill();
  return launch(error);
}

ZkServer::~ZkServer() {
  kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string ZkServer::four_letter(const std::string& word) const {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port_);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, word.data(), word.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(word.size())) {
    char buf[4096];
    while (true) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
      if (reply.size() > 1 << 20) break;
    }
  }
  ::close(fd);
  return reply;
}

}  // namespace coord::testing
