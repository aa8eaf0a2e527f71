// A real coordd process for integration tests: started with port 0 (the
// kernel picks free ports as coordd binds them) and a temporary data
// directory, ready when its log names its client port and `ruok` answers
// `imok`; killed by pid, restarted on the same client port with the same
// data directory, and cleaned up by the destructor. The binary comes from
// CoordServerOptions::binary or else the COORDD_BINARY environment variable
// (set by CMake for the tests that use it); unavailable_reason() says when
// there is none.
// Thread safety: one thread owns a CoordServer.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace coord::testing {

struct CoordServerOptions {
  std::string binary;                   // "" = $COORDD_BINARY
  std::vector<std::string> extra_args;  // e.g. {"--min-session-timeout-ms", "1000"}
  std::chrono::milliseconds start_timeout{30'000};
};

class CoordServer {
 public:
  // Empty when a server can be started; otherwise why not.
  static std::string unavailable_reason(const CoordServerOptions& options = {});

  // nullptr (with `error` filled) when coordd did not come up in time.
  static std::unique_ptr<CoordServer> start(const CoordServerOptions& options, std::string* error);
  ~CoordServer();
  CoordServer(const CoordServer&) = delete;
  CoordServer& operator=(const CoordServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

  // SIGKILL and wait; the data directory stays.
  void kill();
  // Starts again on the same client port with the same data directory.
  bool restart(std::string* error);
  bool running() const { return pid_ > 0; }

  std::string four_letter(const std::string& word) const;
  // Everything coordd wrote to stdout and stderr so far.
  std::string log() const;

 private:
  CoordServer() = default;
  bool launch(std::uint16_t client_port, std::string* error);

  CoordServerOptions options_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string dir_;
};

}  // namespace coord::testing
