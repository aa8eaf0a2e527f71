#include "coord/testing/coord_server.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>
#include <thread>

#include "launch_util.h"

namespace coord::testing {

namespace {

std::string binary_of(const CoordServerOptions& options) {
  if (!options.binary.empty()) return options.binary;
  const char* env = std::getenv("COORDD_BINARY");
  return env != nullptr ? env : "";
}

// The client port from coordd's first lines:
// "serving ZooKeeper clients on 127.0.0.1:40993, HTTP on ...".
std::uint16_t serving_port(const std::string& log) {
  static constexpr std::string_view marker = "serving ZooKeeper clients on ";
  const std::size_t at = log.find(marker);
  if (at == std::string::npos) return 0;
  const std::size_t colon = log.find(':', at + marker.size());
  if (colon == std::string::npos) return 0;
  std::uint32_t port = 0;
  std::size_t i = colon + 1;
  for (; i < log.size() && log[i] >= '0' && log[i] <= '9' && port <= 65535; ++i)
    port = port * 10 + static_cast<std::uint32_t>(log[i] - '0');
  if (i == colon + 1 || i == log.size() || port == 0 || port > 65535) return 0;
  return static_cast<std::uint16_t>(port);
}

}  // namespace

std::string CoordServer::unavailable_reason(const CoordServerOptions& options) {
  const std::string bin = binary_of(options);
  if (bin.empty()) return "COORDD_BINARY is not set";
  if (::access(bin.c_str(), X_OK) != 0) return bin + " is not executable";
  return "";
}

std::unique_ptr<CoordServer> CoordServer::start(const CoordServerOptions& options,
                                                std::string* error) {
  const std::string why = unavailable_reason(options);
  if (!why.empty()) {
    *error = why;
    return nullptr;
  }
  std::unique_ptr<CoordServer> s(new CoordServer);
  s->options_ = options;
  s->options_.binary = binary_of(options);
  s->dir_ = launch::make_temp_dir("coordd-test-");
  if (s->dir_.empty()) {
    *error = "cannot create a temporary directory";
    return nullptr;
  }
  if (!s->launch(0, error)) return nullptr;
  return s;
}

bool CoordServer::launch(std::uint16_t client_port, std::string* error) {
  const std::string log_path = dir_ + "/coordd.log";
  const std::size_t log_start = launch::read_file(log_path).size();
  std::vector<std::string> args = {
      options_.binary, "--client-port", std::to_string(client_port), "--http-port", "0",
      "--data-dir",    dir_ + "/data"};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  pid_ = launch::spawn(args, log_path);
  if (pid_ < 0) {
    *error = "fork failed";
    return false;
  }
  std::uint16_t port = 0;
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (launch::exited(pid_)) {
      pid_ = -1;
      *error = "coordd exited during start:\n" + log().substr(log_start);
      return false;
    }
    if (port == 0) port = serving_port(log().substr(log_start));
    if (port != 0 && launch::four_letter(port, "ruok") == "imok") {
      port_ = port;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill();
  *error = "coordd did not answer ruok within the start timeout:\n" + log().substr(log_start);
  return false;
}

void CoordServer::kill() {
  if (pid_ <= 0) return;
  launch::kill_and_wait(pid_);
  pid_ = -1;
}

bool CoordServer::restart(std::string* error) {
  kill();
  // The old listening socket is gone with the process; a short retry covers
  // the rare bind failure while the kernel tears it down.
  constexpr int attempts = 3;
  for (int i = 0; i < attempts; ++i) {
    if (launch(port_, error)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

CoordServer::~CoordServer() {
  kill();
  launch::remove_tree(dir_);
}

std::string CoordServer::four_letter(const std::string& word) const {
  return launch::four_letter(port_, word);
}

std::string CoordServer::log() const {
  return launch::read_file(dir_ + "/coordd.log");
}

}  // namespace coord::testing
