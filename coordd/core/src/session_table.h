// The sessions this server knows. Global sessions are created and closed by
// log entries, so every server holds the same ones (with the same ids,
// timeouts and passwords); when each was last heard from, which connection
// holds it here and whether an expiry is already proposed are local. Local
// sessions belong to read-only clients: never in the log, they exist only
// while this server is read-only.
//
// The table decides nothing about the log: the replica proposes expiries and
// applies entries, and tells the table. It only keeps the sessions and
// answers which are due to expire.
//
// Thread safety: none; owned by the replica's thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/ids.h"
#include "coord/core/replica.h"

namespace coord::core {

struct Session {
  SessionId id{0};
  std::int32_t timeout_ms = 0;  // as created: replicated, in snapshots
  // As last negotiated by a resume on this server (ZooKeeper negotiates
  // again on every connect); decides expiry here. Local state.
  std::int32_t effective_timeout_ms = 0;
  std::string password;
  TimeMs last_heard{0};
  // The server its client was last heard through, as far as this server
  // knows: itself, or (on the leader) the follower that relayed it last;
  // 0 when unknown. Local state, for operators only.
  NodeId heard_via{0};
  ConnId conn = 0;
  bool closing = false;
};

class SessionTable {
 public:
  using Map = std::map<SessionId, Session>;  // ordered: deterministic iteration

  explicit SessionTable(NodeId self) : self_(self) {}

  // A global or local session; null for id 0 and unknown ids.
  Session* find(SessionId id);

  // Any frame renews the session of its connection; `via` is the server
  // the client was heard through.
  void touch(SessionId id, TimeMs now, NodeId via);
  // Gives every global session a fresh timeout from `now`.
  void touch_all(TimeMs now);

  // The connection no longer holds the session (if it did).
  void detach(SessionId id, ConnId conn);

  // ---- global sessions ------------------------------------------------------

  const Map& global() const { return global_; }
  std::size_t global_count() const { return global_.size(); }
  bool has_global(SessionId id) const { return global_.contains(id); }
  // A CreateSession entry applied; the id is the entry's zxid.
  Session& create(SessionId id, std::int32_t timeout_ms, std::string password, TimeMs now);
  void erase(SessionId id) { global_.erase(id); }
  // Global sessions not heard from for their timeout, and whose expiry is
  // not yet proposed. Looks through them only once one may be due (see
  // check_from_), not at every tick: a tick costs nothing per session.
  std::vector<SessionId> expired(TimeMs now);
  void mark_closing(SessionId id);
  // The expiries proposed so far were forgotten: they may be proposed again.
  void clear_closing();

  // ---- local sessions -------------------------------------------------------

  std::size_t local_count() const { return local_.size(); }
  Session& open_local(std::int32_t timeout_ms, std::string password, TimeMs now);
  // True when `id` was a local session, which is now gone.
  bool close_local(SessionId id) { return local_.erase(id) != 0; }
  // Drops the local sessions past their timeout; returns the connections
  // that held them (0 for none), in session order.
  std::vector<ConnId> expire_local(TimeMs now);
  // Drops every local session; returns the connections that held them.
  std::vector<ConnId> clear_local();

  // ---- snapshots ------------------------------------------------------------

  // Appends the global sessions: count, then per session its id, timeout
  // and password (the replicated fields only).
  void write_snapshot(std::string& out) const;
  // Reads `count` sessions from the front of `bytes`, heard from at `now`;
  // nullopt when `bytes` ends early.
  static std::optional<Map> read_snapshot(std::string_view& bytes, std::uint64_t count, TimeMs now);
  void replace_global(Map sessions) {
    global_ = std::move(sessions);
    check_from_ = TimeMs(0);
  }

 private:
  // Local session ids have bit 62 set and the server id in bits 48..55:
  // above any log index a global session id is taken from, and apart from
  // the local ids of other servers.
  SessionId next_local_id();

  // Lowers check_from_ to when `s` would expire, if sooner.
  void due_by(const Session& s);

  NodeId self_;
  Map global_;
  // No global session expires before this time: expired() looks through
  // them only from then on. A lower bound, kept by every change that can
  // bring an expiry forward (a session heard with a shorter timeout, a new
  // one, expiries to propose again), and made exact by each look.
  TimeMs check_from_{0};
  // Sessions of read-only clients: never in the log, gone with the mode.
  Map local_;
  std::uint64_t local_created_ = 0;
};

}  // namespace coord::core
