#include "coord/testing/zk_server.h"

#include <unistd.h>

#include <cstdlib>
#include <thread>
#include <vector>

#include "launch_util.h"

namespace coord::testing {

namespace {

constexpr const char* kJars[] = {"/usr/share/java/zookeeper.jar",
                                 "/usr/share/java/zookeeper-jute.jar",
                                 "/usr/share/java/slf4j-api.jar"};

}  // namespace

std::string ZkServer::java_path() {
  const char* env = std::getenv("COORD_JAVA");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/java";
}

std::string ZkServer::unavailable_reason() {
  const std::string java = java_path();
  if (::access(java.c_str(), X_OK) != 0) {
    return "java not found at " + java + " (apt install zookeeper)";
  }
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
  s->dir_ = launch::make_temp_dir("coord-zk-");
  if (s->dir_.empty()) {
    *error = "cannot create a temporary directory";
    return nullptr;
  }
  // The port is free when chosen but another process may take it before
  // the JVM binds it: then launch() fails and another port is tried.
  constexpr int port_attempts = 3;
  for (int attempt = 0; attempt < port_attempts; ++attempt) {
    s->port_ = launch::free_port();
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
  std::vector<std::string> args = {java_path(),
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
  const pid_t pid = launch::spawn(args, log);
  if (pid < 0) {
    *error = "fork failed";
    return false;
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (launch::exited(pid_)) {
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
  launch::kill_and_wait(pid_);
  pid_ = -1;
}

bool ZkServer::restart(std::string* error) {
  kill();
  return launch(error);
}

ZkServer::~ZkServer() {
  kill();
  launch::remove_tree(dir_);
}

std::string ZkServer::four_letter(const std::string& word) const {
  return launch::four_letter(port_, word);
}

}  // namespace coord::testing
