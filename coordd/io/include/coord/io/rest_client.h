// The HTTP API's way into the replica for writes: internal ZooKeeper client
// connections, so that a REST write takes exactly the path of any client's
// write (log entry, apply-time validation, watches fired) and nothing in the
// replica knows about HTTP.
//
// A write acts with the identities of the HTTP caller: ip:<caller address>,
// as a ZooKeeper client connecting from that address would, and, when the
// request carried HTTP Basic credentials, the digest identity they name,
// added with an auth packet as `addauth digest user:password` adds it. Each
// caller (address and credentials together) gets its own connection and
// session, opened on its first write (one log entry), kept alive with pings
// while it is used and closed when unused for rest_session_idle_ms_max. ACLs are checked at apply
// time against the identities the command carries, so a write forwarded to a leader is checked as
// its caller too. At most rest_sessions_max such sessions exist; a new caller beyond them takes the
// place of the one unused longest, or is refused while all are busy. The credentials live in memory
// only, with the session they opened.
//
// The admin API keeps a RestClients of its own whose connections the
// replica treats as the super user (Replica::grant_super), for the
// reconfigs behind POST and DELETE /v1/cluster/members; those sessions
// never serve the REST API's znode requests.
//
// Thread safety: the loop thread only, like the replica it drives.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "coord/base/clock.h"
#include "coord/core/replica.h"
#include "coord/protocol/codec.h"

namespace coord::io {

// Who a REST request acts as.
struct RestCaller {
  std::string ip;
  // "user:password" from HTTP Basic credentials; empty: none.
  std::string digest_auth;
  // What tells callers apart: the address and the digest identity.
  std::string key() const;
};

// One internal connection and its session, acting as one caller.
class RestClient {
 public:
  using Done = std::function<void(ErrorCode, const protocol::ResponseBody&)>;

  // A `super_user` client's connection acts as the super user
  // (Replica::grant_super), for the admin API's reconfigs.
  RestClient(core::Replica& replica, core::ConnId id, RestCaller caller, const Clock& clock,
             bool super_user = false)
      : replica_(replica),
        id_(id),
        caller_(std::move(caller)),
        key_(caller_.key()),
        clock_(clock),
        super_user_(super_user) {}

  core::ConnId id() const { return id_; }
  const std::string& ip() const { return caller_.ip; }
  const std::string& key() const { return key_; }
  bool connected() const { return session_.value() != 0 && !closed_; }
  // The replica closed the connection: the owner forgets this client.
  bool finished() const { return closed_; }
  // Nothing waits for a reply.
  bool idle() const { return pending_.empty() && waiting_.empty(); }
  std::int64_t last_used_ms() const { return last_used_ms_; }

  // Opens the connection and asks for a session.
  void start();
  // Sends one request, or queues it until the session is open; `done` runs
  // (on the loop thread) with the reply, or with ConnectionLoss when the
  // session is lost or the reply takes longer than rest_request_ms_max.
  void call(protocol::OpCode op, const protocol::RequestBody& body, Done done);
  // The replica's output for our connection.
  void on_output(const core::ConnectionOutput& out);
  // Keeps the session alive; gives up on requests waiting too long.
  void tick();
  // Ends the session (closeSession); finished() once the replica closed
  // the connection.
  void close();

 private:
  void send(protocol::OpCode op, const protocol::RequestBody& body, Done done);
  void fail_all();

  struct Waiting {
    protocol::OpCode op;
    protocol::RequestBody body;
    Done done;
    std::int64_t since_ms;
  };
  struct Pending {
    protocol::OpCode op;
    Done done;
    std::int64_t since_ms;
  };

  core::Replica& replica_;
  core::ConnId id_;
  RestCaller caller_;
  std::string key_;
  const Clock& clock_;
  bool super_user_ = false;
  bool opened_ = false;
  bool closed_ = false;
  bool closing_ = false;
  SessionId session_{0};
  std::int32_t next_xid_ = 1;
  std::int64_t last_sent_ms_ = 0;
  std::int64_t last_used_ms_ = 0;
  std::int64_t opened_ms_ = 0;
  protocol::Bytes inbox_;
  std::deque<Waiting> waiting_;
  std::map<std::int32_t, Pending> pending_;
};

// The REST API's sessions, one per caller (address and credentials).
class RestClients {
 public:
  using Done = RestClient::Done;

  // Connection ids are drawn downward from `first_id`, out of the reach of
  // real clients' ids, which count up from 1.
  // With `super_user`, every connection acts as the super user: only for
  // the admin API, whose callers the HTTP server trusts.
  RestClients(core::Replica& replica, const Clock& clock, core::ConnId first_id,
              bool super_user = false)
      : replica_(replica), clock_(clock), next_id_(first_id), super_user_(super_user) {}

  // Runs one request as the caller at `ip`. When it is refused up front,
  // `done` does not run and the status says why: BadArguments when the
  // request does not fit in one frame (frame_bytes_max), ConnectionLoss when
  // every REST session is busy. Otherwise `done` runs exactly once.
  Status call(const RestCaller& caller, protocol::OpCode op, const protocol::RequestBody& body,
              Done done);
  Status call(const std::string& ip, protocol::OpCode op, const protocol::RequestBody& body,
              Done done) {
    return call(RestCaller{ip, {}}, op, body, std::move(done));
  }
  bool owns(core::ConnId id) const { return by_conn_.contains(id); }
  void on_output(const core::ConnectionOutput& out);
  void tick();
  std::size_t size() const { return by_conn_.size(); }

 private:
  void forget_finished();

  core::Replica& replica_;
  const Clock& clock_;
  core::ConnId next_id_;
  bool super_user_ = false;
  int depth_ = 0;                              // > 0 while a client's callbacks run
  std::map<std::string, RestClient*> by_key_;  // the client taking new calls
  std::unordered_map<core::ConnId, std::unique_ptr<RestClient>> by_conn_;  // every client
};

}  // namespace coord::io
