// Three real Apache ZooKeeper 3.8 servers (QuorumPeerMain) forming one
// ensemble on 127.0.0.1 for integration tests: free client, quorum and
// election ports, a generated zoo.cfg and myid per member, a short
// tickTime. Ready when every member answers `ruok` and one reports
// `Mode: leader` in `srvr`. Members are killed and restarted one at a time
// by pid; the destructor kills them all and removes the temporary
// directory. Tests call ZkServer::unavailable_reason() first.
// Thread safety: one thread owns a ZkEnsemble.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace coord::testing {

struct ZkEnsembleOptions {
  // Sessions are clamped to [2, 20] ticks.
  int tick_ms = 500;
  std::chrono::milliseconds start_timeout{90'000};
};

class ZkEnsemble {
 public:
  static constexpr int kMembers = 3;

  // nullptr (with `error` filled) when no leader was elected in time.
  static std::unique_ptr<ZkEnsemble> start(const ZkEnsembleOptions& options, std::string* error);
  ~ZkEnsemble();
  ZkEnsemble(const ZkEnsemble&) = delete;
  ZkEnsemble& operator=(const ZkEnsemble&) = delete;

  // "127.0.0.1:a,127.0.0.1:b,127.0.0.1:c".
  std::string connect_string() const;
  std::uint16_t client_port(int member) const { return members_[member].client_port; }
  std::string address(int member) const;
  // The member whose client address is `address` ("host:port"), -1 if none.
  int member_of(const std::string& address) const;
  // The member reporting `Mode: leader`, -1 if none.
  int leader() const;

  // SIGKILL and wait; its data directory stays.
  void kill(int member);
  // Every member at once: all are signalled before any is waited for, so a
  // client cannot reconnect to one not yet killed.
  void kill_all();
  // Starts the member again and waits until it serves (leader or follower).
  bool restart(int member, std::string* error);
  bool running(int member) const { return members_[member].pid > 0; }

  std::string four_letter(int member, const std::string& word) const;

 private:
  struct Member {
    std::uint16_t client_port = 0;
    std::uint16_t quorum_port = 0;
    std::uint16_t election_port = 0;
    pid_t pid = -1;
  };

  ZkEnsemble() = default;
  bool write_config(std::string* error);
  bool spawn(int member, std::string* error);
  bool serving(int member) const;

  ZkEnsembleOptions options_;
  std::array<Member, kMembers> members_{};
  std::string dir_;
};

}  // namespace coord::testing
