// A real Apache ZooKeeper 3.8 server for integration tests (Debian package
// `zookeeper`): started on a free 127.0.0.1 port with a temporary data
// directory, ready when `ruok` answers `imok`, killed by pid and cleaned up
// by the destructor. Tests call unavailable_reason() first and GTEST_SKIP
// with it when java or the jars are missing.
// Thread safety: one thread owns a ZkServer.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace coord::testing {

struct ZkServerOptions {
  // ZooKeeper's tickTime: sessions are clamped to [2, 20] ticks.
  int tick_ms = 2000;
  std::chrono::milliseconds start_timeout{60'000};
};

class ZkServer {
 public:
  // Empty when a server can be started; otherwise why not.
  static std::string unavailable_reason();
  // The java binary: $COORD_JAVA when set (as for the Python harness, so a
  // test run can pretend Java is missing), else /usr/bin/java.
  static std::string java_path();

  // nullptr (with `error` filled) when the server did not come up in time.
  static std::unique_ptr<ZkServer> start(const ZkServerOptions& options, std::string* error);
  ~ZkServer();
  ZkServer(const ZkServer&) = delete;
  ZkServer& operator=(const ZkServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // SIGKILL and wait; the data directory stays, so restart() brings back
  // the same sessions and znodes on the same port.
  void kill();
  bool restart(std::string* error);
  bool running() const { return pid_ > 0; }

  // Sends a four-letter word and returns the reply ("" on failure).
  std::string four_letter(const std::string& word) const;

 private:
  ZkServer() = default;
  bool launch(std::string* error);

  ZkServerOptions options_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string dir_;
};

}  // namespace coord::testing
