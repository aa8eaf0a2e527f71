// The HTTP API's way into the replica for writes: an internal ZooKeeper
// client connection, so that a REST write takes exactly the path of any
// client's write (log entry, apply-time validation, watches fired) and
// nothing in the replica knows about HTTP.
//
// It holds one session, opened at start and kept alive with pings; writes
// act with the identity ip:<server address> (world ACLs allow them; nodes
// protected by digest ACLs must be written through a ZooKeeper client).
// Thread safety: the core thread only, like the replica it drives.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

#include "coord/base/clock.h"
#include "coord/core/replica.h"
#include "coord/protocol/codec.h"

namespace coord::io {

class RestClient {
 public:
  using Done = std::function<void(ErrorCode, const protocol::ResponseBody&)>;

  RestClient(core::Replica& replica, core::ConnId id, std::string ip, const Clock& clock)
      : replica_(replica), id_(id), ip_(std::move(ip)), clock_(clock) {}

  core::ConnId id() const { return id_; }
  bool connected() const { return session_.value() != 0 && !closed_; }

  // Opens the connection and asks for a session; a no-op while one is open.
  void start();
  // Sends one request; `done` runs (on the core thread) with the reply, or
  // with ConnectionLoss when there is no session.
  void call(protocol::OpCode op, const protocol::RequestBody& body, Done done);
  // The replica's output for our connection.
  void on_output(const core::ConnectionOutput& out);
  // Keeps the session alive and reopens it when it was lost.
  void tick();

 private:
  void fail_all();

  core::Replica& replica_;
  core::ConnId id_;
  std::string ip_;
  const Clock& clock_;
  bool opened_ = false;
  bool closed_ = false;
  SessionId session_{0};
  std::int32_t next_xid_ = 1;
  std::int64_t last_sent_ms_ = 0;
  protocol::Bytes inbox_;
  std::map<std::int32_t, std::pair<protocol::OpCode, Done>> pending_;
};

}  // namespace coord::io
