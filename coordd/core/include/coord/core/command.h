// The commands coordd replicates: the payload of every Raft log entry.
//
// A command is decided by the server that proposes it (session id, time,
// caller identities, the new session's password) and applied identically by
// every server, so nothing in apply depends on local state or the clock.
// Encoded with Jute primitives behind a version byte; decoding is bounded
// and fails with MarshallingError on anything it does not understand, which
// the replica treats as a broken invariant (the log is checksummed below).
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/status.h"
#include "coord/base/zk_types.h"
#include "coord/znode/ops.h"

namespace coord::core {

// Which request of which server the entry answers. Only the server named
// here replies, and only if the connection and request are still waiting.
struct Origin {
  NodeId node{0};
  std::uint64_t connection = 0;
  std::uint64_t request = 0;  // per-connection sequence number
  friend bool operator==(const Origin&, const Origin&) = default;
};

// Opens a session. Its id is the zxid of this entry: unique forever, since
// zxids never repeat or roll over.
struct CreateSessionCmd {
  std::int32_t timeout_ms = 0;  // already negotiated
  std::string password;         // session_password_bytes, drawn by the proposer
  friend bool operator==(const CreateSessionCmd&, const CreateSessionCmd&) = default;
};

// Ends a session (closeSession from the client, or expiry proposed by the
// leader), deleting its ephemerals.
struct CloseSessionCmd {
  SessionId session{0};
  bool expired = false;
  friend bool operator==(const CloseSessionCmd&, const CloseSessionCmd&) = default;
};

// A session resumed on the server named by the command's origin. It
// changes nothing replicated: the server that held the session's old
// connection answers what that connection still waits for with
// SessionMoved and closes it, as ZooKeeper tells a session's old
// connection once the session has moved.
struct MoveSessionCmd {
  SessionId session{0};
  friend bool operator==(const MoveSessionCmd&, const MoveSessionCmd&) = default;
};

// A change of the tree on behalf of a session.
struct TxnCmd {
  SessionId session{0};
  std::vector<Id> identities;
  znode::Txn txn;
  friend bool operator==(const TxnCmd&, const TxnCmd&) = default;
};

struct Command {
  Origin origin;
  TimeMs time{0};  // the proposer's wall clock: ctime/mtime and TTL "now"
  std::variant<CreateSessionCmd, CloseSessionCmd, TxnCmd, MoveSessionCmd> body;
  friend bool operator==(const Command&, const Command&) = default;
};

std::string encode_command(const Command& c);
// The same, encoding in `scratch` (any contents; left with the encoding):
// a caller that keeps it between calls saves an allocation per command.
std::string encode_command(const Command& c, std::vector<std::uint8_t>& scratch);
Result<Command> decode_command(std::string_view bytes);

}  // namespace coord::core
