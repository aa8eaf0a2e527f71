#include "coord/core/replica.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "connection.h"
#include "coord/base/assert.h"
#include "coord/core/command.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"
#include "coord/protocol/op_table.h"
#include "four_letter.h"
#include "reconfig.h"
#include "replica_snapshot.h"
#include "session_table.h"
#include "wire.h"

namespace coord::core {

namespace pr = coord::protocol;
using pr::OpCode;
using pr::OpKind;

// Kinds of the replica's own peer messages (consensus::MessageType::App,
// in Message::context).
constexpr std::uint64_t app_sessions_heard = 1;  // entries: session ids, u64 LE each
constexpr std::uint64_t app_sessions_acked = 4;  // the leader had a relay: empty body

// Whether a leader checks each command it kept against its entry (an
// encode per write): debug and sanitizer builds do.
#ifdef NDEBUG
constexpr bool check_kept_commands = false;
#else
constexpr bool check_kept_commands = true;
#endif

// The buffer commands are encoded in is kept between proposals up to this
// capacity; one grown past it by a large command is let go.
constexpr std::size_t command_scratch_bytes_max = 64 * 1024;

std::string digest_of(std::string_view user_colon_password) {
  unsigned char sha[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(user_colon_password.data()),
       user_colon_password.size(), sha);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, sha, SHA_DIGEST_LENGTH);
  const auto colon = user_colon_password.find(':');
  std::string user(user_colon_password.substr(0, colon));
  return user + ":" + std::string(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
}

std::string_view to_string(ReadOnlyReason r) {
  switch (r) {
    case ReadOnlyReason::StorageRefusesWrites:
      return "storage refuses writes";
    case ReadOnlyReason::NoQuorum:
      return "no quorum";
  }
  return "unknown";
}

struct Replica::Impl {
  ReplicaConfig config;
  ReplicaStorage& storage;
  PasswordSource passwords;
  // Seeds the Raft that replaces one after a failed write.
  Random spare_random;
  consensus::Raft raft;
  znode::DataTree tree;
  // As of the last configuration entry applied (see ReplicaConfig).
  Membership membership;
  SessionTable sessions;
  std::unordered_map<ConnId, Conn> conns;
  // Watchers of the host (HostWatchSink), apart from the connections.
  std::set<ConnId> host_watchers;
  HostWatchSink host_sink;
  // Connections whose queue may make progress, unordered and perhaps more
  // than once: pump_dirty() sorts them, pumping each once in id order. A
  // vector (two, swapped, keeping their capacity), not a set: every apply
  // adds to it, and a set's node per insert cost an allocation.
  std::vector<ConnId> dirty;
  std::vector<ConnId> dirty_todo;
  bool pumping_dirty = false;
  // Connections that queued a request or proposed a handshake since they
  // were last found with neither: the only ones give_up_stalled() looks
  // at, so that a tick costs nothing per idle connection.
  std::set<ConnId> may_stall;
  std::optional<ReadOnlyState> read_only;
  // Set by a tick while storage refuses writes: the next Ready may try.
  bool storage_retry_due = false;
  // With persist_async: the Ready being written by the host, and the
  // count of proposals when it was taken.
  std::optional<consensus::Ready> persisting;
  std::uint64_t persisting_after = 0;
  // With persisted_next(): the committed entries of the Ready just handed
  // out, already durable here, applied by the take_output() that follows.
  // The host starts the next write first, and this apply and its replies
  // run while the disk writes, instead of ahead of it.
  bool hold_stored_committed = false;
  std::vector<consensus::Entry> held_committed;
  // Proposals made so far (writes, handshakes, reconfig asks), to tell
  // which were made before a Ready that reports a leader change.
  std::uint64_t proposals = 0;
  LogIndex applied{0};
  std::uint64_t applied_since_snapshot = 0;
  std::uint64_t applied_bytes_since_snapshot = 0;
  bool clock_started = false;  // set by the first input that carries a time
  TimeMs now_steady{0};
  TimeMs now_wall{0};
  TimeMs started{0};
  TimeMs last_reap{0};
  std::set<std::string> reaping;
  std::uint64_t next_read_context = 1;
  std::map<std::uint64_t, std::pair<ConnId, std::uint64_t>> read_waiters;
  // Syncs whose read index is known, waiting for it to apply and for their
  // turn in their connection's queue: (connection, request number).
  std::vector<std::pair<ConnId, std::uint64_t>> syncs_indexed;
  consensus::Role last_role = consensus::Role::Follower;
  // The term in which this server, leading, last gave every session a
  // fresh timeout; 0 before it first leads.
  Term sessions_renewed_term{0};
  // A server of a cluster: since when it has known no leader.
  std::optional<TimeMs> leaderless_since;
  // Global sessions heard from here since the last relay to the leader.
  std::set<SessionId> heard;
  // A follower: since when a relay to `relay_leader` has been waiting for
  // its acknowledgement.
  std::optional<TimeMs> relay_unacked_since;
  NodeId relay_leader{0};
  // Connections with a write held back until a leader is known.
  std::set<ConnId> held;
  // Commands this follower forwarded and has not seen apply, by origin
  // (connection, request), with when each left. Kept apart from the
  // connections, which a client may close while its request waits.
  std::map<std::pair<ConnId, std::uint64_t>, TimeMs> forwarded;
  // Commands this server proposed as leader and has not applied yet, still
  // decoded, in log order: applying them needs no second decode. An entry
  // is the one proposed only if its term is the term of the proposal too:
  // another leader may have put a different entry at the same index.
  struct Proposed {
    LogIndex index;
    Term term;
    Command cmd;
  };
  std::deque<Proposed> proposed_cmds;
  pr::Bytes command_scratch;  // see command_scratch_bytes_max
  std::uint64_t next_move_request = 1;
  // Peers the host's links to are down now.
  std::set<NodeId> links_down;
  // Sessions resumed here whose MoveSession entry has not applied yet: a
  // move to another server proposed before it must not close the
  // connection that resumed here after it.
  std::map<SessionId, int> moving_here;
  // Reconfig requests of this server's clients sent to the leader and not
  // answered yet, by id: (connection, request).
  std::map<std::uint64_t, std::pair<ConnId, std::uint64_t>> reconfig_asks;
  std::uint64_t next_reconfig_id = 1;
  // Answered Ok: (index at which the new membership is in force,
  // connection, request); answered once that index applies here.
  std::vector<std::tuple<LogIndex, ConnId, std::uint64_t>> reconfig_due;
  // The leader's plan in progress (one at a time).
  std::optional<ReconfigRun> reconfig_run;
  ReplicaStats stats;
  FourLetterWords fourlw;
  ReplicaOutput out;
  std::unordered_map<ConnId, std::size_t> out_slot;
  struct QuotaLog {
    TimeMs at{0};
    std::uint64_t held_back = 0;
  };
  std::map<std::string, QuotaLog, std::less<>> quota_logged;  // by quota root

  Impl(const ReplicaConfig& c, ReplicaStorage& s, Random random, PasswordSource p)
      : config(c),
        storage(s),
        passwords(std::move(p)),
        spare_random(random),
        raft(raft_config(c, s), s, std::move(random)),
        tree(c.tree),
        sessions(c.id) {
    tree.set_watches_per_connection_max(config.watches_per_connection_max);
  }

  static consensus::RaftConfig raft_config(const ReplicaConfig& c, const ReplicaStorage& s) {
    consensus::RaftConfig rc;
    rc.id = c.id;
    rc.election_ticks = c.election_ticks;
    rc.heartbeat_ticks = c.heartbeat_ticks;
    rc.applied = s.snapshot_meta().index;
    return rc;
  }

  // ---- output --------------------------------------------------------------

  ConnectionOutput& slot(ConnId id) {
    auto [it, inserted] = out_slot.try_emplace(id, out.connections.size());
    if (inserted) out.connections.push_back(ConnectionOutput{id, {}, false});
    return out.connections[it->second];
  }

  void send(Conn& c, const pr::Bytes& frame) {
    auto& s = slot(c.id);
    s.bytes.insert(s.bytes.end(), frame.begin(), frame.end());
    ++c.sent;
    ++stats.packets_sent;
    if (s.bytes.size() > config.outbound_bytes_per_connection_max) close(c);
  }

  void close(Conn& c) {
    if (c.phase == Phase::Closing) return;
    c.phase = Phase::Closing;
    slot(c.id).close = true;
    detach(c);
  }

  // The connection no longer holds its session or its watches.
  void detach(Conn& c) {
    sessions.detach(c.session, c.id);
    tree.remove_watcher(c.id);
    c.queue.clear();
  }

  // ---- time and Raft ----------------------------------------------------------

  void set_time(TimeMs steady, TimeMs wall) {
    COORD_ASSERT(held_committed.empty(),
                 "an input before the take_output() after persisted_next()");
    if (!clock_started) {
      // Sessions restored or replayed before the first input were heard
      // "at time 0"; like ZooKeeper after a restart, give each a fresh
      // timeout from now instead of expiring them all at the first tick.
      clock_started = true;
      started = steady;
      sessions.touch_all(steady);
    }
    now_steady = std::max(now_steady, steady);
    now_wall = std::max(now_wall, wall);
  }

  void drive() {
    for (int rounds = 0; rounds < 1'000; ++rounds) {
      // One Ready at a time: the next waits until this one is durable.
      if (persisting) break;
      if (!raft.has_ready()) break;
      // While storage refuses writes, only a tick tries again: a failing
      // write costs a system call or more, and inputs keep coming.
      if (storage_failed() && !storage_retry_due) break;
      consensus::Ready rd = raft.ready();
      send_eager(rd);
      if (must_persist(rd)) {
        if (config.persist_async) {
          // The host writes it while this replica goes on answering reads
          // and taking requests; persisted() carries on from here.
          std::vector<consensus::Entry> stored = take_stored_committed(rd);
          if (hold_stored_committed) {
            held_committed = std::move(stored);
          } else {
            apply_committed(stored);
          }
          persisting = std::move(rd);
          persisting_after = proposals;
          out.persist = &*persisting;
          break;
        }
        Status st = storage.persist(rd);
        if (!st.ok()) {
          storage_write_failed(st);
          break;
        }
        if (storage_failed()) leave_read_only();
      }
      durable(rd, proposals);
    }
    release_reads();
    answer_due_reconfigs();
  }

  // The messages that need not wait for the Ready's write leave now (a
  // leader's appends, forwarded proposals): followers write a batch while
  // the leader writes it, and a forwarded write does not wait for this
  // server's write of other entries.
  void send_eager(consensus::Ready& rd) {
    COORD_ASSERT(rd.messages_eager <= rd.messages.size(), "more eager messages than messages");
    if (rd.messages_eager == 0) return;
    const auto end = rd.messages.begin() + static_cast<std::ptrdiff_t>(rd.messages_eager);
    for (auto it = rd.messages.begin(); it != end; ++it)
      out.peer_messages.push_back(std::move(*it));
    rd.messages.erase(rd.messages.begin(), end);
    rd.messages_eager = 0;
  }

  // Takes out of `rd` the committed entries that this server holds
  // durably already, to apply now: they need not wait for the Ready's own
  // write, so that in a cluster a write that committed while the last
  // batch was written is answered now rather than after the next fsync. A
  // committed entry is never replaced, so what storage shows up to its last
  // index stays. Not with a snapshot in the Ready, which resets the log.
  std::vector<consensus::Entry> take_stored_committed(consensus::Ready& rd) {
    if (rd.snapshot || !rd.snapshot_chunks.empty()) return {};
    auto& committed = rd.committed_entries;
    const LogIndex stored = storage.last_index();
    auto end = committed.begin();
    while (end != committed.end() && end->index <= stored)
      ++end;
    std::vector<consensus::Entry> now(std::make_move_iterator(committed.begin()),
                                      std::make_move_iterator(end));
    committed.erase(committed.begin(), end);
    return now;
  }

  void apply_held_committed() {
    if (held_committed.empty()) return;
    std::vector<consensus::Entry> held = std::move(held_committed);
    held_committed.clear();
    apply_committed(held);
  }

  // What a Ready does once its writes are durable: its messages may leave
  // (never before, raft.h), and what committed applies. A leader change it
  // reports makes the outcome of the proposals made until it was taken
  // (`proposals_then` of them) unknown; those made while it was written
  // went to the leader it names.
  void durable(consensus::Ready& rd, std::uint64_t proposals_then) {
    for (auto& m : rd.messages)
      out.peer_messages.push_back(std::move(m));
    // A snapshot that came in chunks is the bytes storage assembled.
    if (rd.snapshot) install_snapshot(rd.snapshot_in_chunks ? storage.snapshot() : *rd.snapshot);
    apply_committed(rd.committed_entries);
    advance_reconfig();
    for (const auto& rs : rd.read_states)
      read_state(rs);
    for (std::uint64_t ctx : rd.failed_reads)
      read_failed(ctx);
    // After the apply: what committed was answered, what is still
    // proposed now has an unknown outcome.
    if (rd.leader_changed) leader_changed(proposals_then);
    if (rd.soft_state_changed) role_changed();
    raft.advance();
  }

  void persisted(const Status& st) {
    COORD_ASSERT(persisting, "persisted() with no Ready out");
    consensus::Ready rd = std::move(*persisting);
    persisting.reset();
    if (!st.ok()) {
      storage_write_failed(st);
    } else {
      storage.written(rd);
      if (storage_failed()) leave_read_only();
      durable(rd, persisting_after);
    }
    drive();
  }

  // A Ready whose only news is a higher commit index is not written: Raft
  // needs only term, vote and entries to survive a crash (a restarted
  // server learns the commit index again from the log's leader), and a
  // synced write for it would double the fsyncs of every write in a
  // cluster, where the commit reaches each server in a Ready of its own.
  bool must_persist(const consensus::Ready& rd) const {
    if (!rd.entries.empty() || rd.snapshot || !rd.snapshot_chunks.empty()) return true;
    if (!rd.hard_state) return false;
    const consensus::HardState stored = storage.hard_state();
    return rd.hard_state->term != stored.term || rd.hard_state->vote != stored.vote;
  }

  bool storage_failed() const {
    return read_only && read_only->reason == ReadOnlyReason::StorageRefusesWrites;
  }

  // A Ready could not be made durable. Nothing of it may take effect here,
  // so the Raft core is restored from what storage holds, which forgets the
  // entries, votes and messages it carried; the requests that waited on
  // them are answered now instead of stalling their connections. (A
  // leader's entries may have reached its followers before the write, and
  // may still commit without this server: see release_forgotten.)
  void storage_write_failed(const Status& st) {
    ++stats.writes_failed_storage;
    storage_retry_due = false;  // one try per tick
    consensus::RaftConfig rc = raft_config(config, storage);
    rc.applied = applied;
    raft = consensus::Raft(rc, storage, Random(spare_random.next_u64()));
    last_role = raft.role();
    if (!read_only) {
      ++stats.read_only_entered;
      read_only = ReadOnlyState{ReadOnlyReason::StorageRefusesWrites, {}, now_steady};
      // In a cluster the other servers can still write: a client that
      // cannot live with a read-only server is sent to find them, as
      // ZooKeeper's read-only server turns it away. It would otherwise be
      // refused every write for as long as this disk stays full. A single
      // server keeps its clients: there is nowhere else to go, and their
      // sessions and reads go on.
      if (clustered()) {
        for (auto& [id, c] : conns) {
          if (c.phase != Phase::Closing && !c.can_be_read_only) close(c);
        }
      }
    }
    read_only->detail = st.message();
    release_forgotten();
  }

  // Settles what waited on the Raft core that was just replaced.
  void release_forgotten() {
    const LogIndex durable = storage.last_index();
    for (auto& [id, c] : conns) {
      if (c.phase == Phase::Connecting &&
          (c.handshake_index.value() == 0 || c.handshake_index > durable)) {
        // Never stored here (or forwarded, outcome unknown): the client
        // tries again.
        close(c);
        continue;
      }
      bool lost = false;
      for (Item& item : c.queue) {
        if (item.state == ItemState::WaitingRead) {
          finish(item, ErrorCode::NotReadOnly);
          dirty.push_back(id);
        } else if (item.state == ItemState::Proposed) {
          if (item.log_index.value() != 0 && item.log_index > durable && !clustered()) {
            // Never stored, so never applied: refused as any write now is.
            // In a cluster the leader sent it to its followers while
            // writing it (send_eager), and they may commit it without this
            // server: its outcome is unknown, as below.
            finish(item, ErrorCode::NotReadOnly);
            dirty.push_back(id);
          } else {
            // Stored but not committed: it applies once storage takes
            // writes again. Only a lost connection tells a client that the
            // outcome is not known yet.
            lost = true;
          }
        }
      }
      if (lost) close(c);
    }
    read_waiters.clear();
    // Proposals of the leader's own (expiries, reaping) are made again
    // once it can write; applying one twice is harmless.
    reaping.clear();
    sessions.clear_closing();
  }

  void leave_read_only() {
    read_only.reset();
    // As when ZooKeeper's read-only server gives way to a full one: the
    // local sessions end, and their clients reconnect for a real session;
    // so do clients told at their handshake that this server was
    // read-only, which would otherwise go on looking for a writable one.
    for (ConnId id : sessions.clear_local()) {
      auto c = conns.find(id);
      if (c != conns.end()) close(c->second);
    }
    for (auto& [id, c] : conns) {
      if (c.opened_read_only) close(c);
    }
  }

  // ---- the cluster --------------------------------------------------------------

  // A server of a cluster, also while its membership is down to itself or
  // not known yet (a server waiting to be added): it needs a leader to
  // write, and without one it turns read-only rather than serve its own
  // empty tree as if it were the cluster's.
  bool clustered() const { return config.reconfig_enabled || raft.conf_state().size() > 1; }
  std::int64_t election_timeout_ms() const { return config.tick_ms * config.election_ticks; }
  bool leading() const { return raft.role() == consensus::Role::Leader; }
  // A server of a cluster that its configuration does not name (waiting to
  // be added, or removed): its tree is not the cluster's, so even
  // read-only clients are turned away.
  bool outside_membership() const {
    return config.reconfig_enabled && !raft.conf_state().is_member(config.id);
  }

  // Requests whose outcome became unknown (the leader changed, the link to
  // it broke, or they waited too long): their connections close, which a
  // client reads as ConnectionLoss, and it retries here or elsewhere. A
  // request that applies later is not answered twice: its connection is
  // gone.
  void fail_in_flight(std::uint64_t before = ~std::uint64_t{0}) {
    for (auto& [id, c] : conns) {
      if (c.phase == Phase::Closing) continue;
      if ((c.phase == Phase::Connecting && c.handshake_no < before) || c.has_proposed(before)) {
        ++stats.requests_outcome_unknown;
        close(c);
      }
    }
  }

  void leader_changed(std::uint64_t proposals_then) {
    ++stats.leader_changes;
    fail_in_flight(proposals_then);
    // Expiries this server proposed as leader may never commit; a new
    // leader decides again, with a fresh timeout for every session.
    sessions.clear_closing();
    // Asks still unanswered were closed with their connections; a plan
    // this server no longer leads is left to the client to retry.
    reconfig_asks.clear();
    if (!leading()) reconfig_run.reset();
    forwarded.clear();    // the new stream starts empty
    moving_here.clear();  // their outcome is unknown now
    release_held();
  }

  // A leader is known, reachable, and not handing leadership over.
  bool leader_settled() const {
    if (raft.leader() == NodeId(0)) return false;
    if (!leading()) return !links_down.contains(raft.leader());
    return raft.status().transfer_target == NodeId(0);
  }

  // Writes held back during an election or a transfer go to the leader.
  void release_held() {
    if (held.empty() || !leader_settled()) return;
    dirty.insert(dirty.end(), held.begin(), held.end());
    held.clear();
  }

  // Forwarded requests lost on the way leave the ones after them waiting
  // forever (the leader takes a forwarding stream only without gaps), and
  // a leader that cannot commit keeps its own waiting: past
  // proposal_wait_ms_max they are given up, and forwarding starts afresh.
  void give_up_stalled() {
    // A forward that has not applied in time was most likely lost, and the
    // leader takes nothing this follower forwards after it: start a new
    // stream, and fail what the old one carried.
    bool stalled = false;
    for (const auto& [key, at] : forwarded) {
      if (now_steady - at > config.forward_wait_ms_max) stalled = true;
    }
    for (auto it = may_stall.begin(); it != may_stall.end();) {
      auto found = conns.find(*it);
      if (found == conns.end() ||
          (found->second.phase != Phase::Connecting && found->second.queue.empty())) {
        it = may_stall.erase(it);
        continue;
      }
      ++it;
      Conn& c = found->second;
      const Item* oldest = c.phase == Phase::Open ? c.oldest_in_flight() : nullptr;
      if (c.phase == Phase::Connecting) {
        stalled = stalled || now_steady - c.handshake_at > config.proposal_wait_ms_max;
      } else if (oldest != nullptr &&
                 now_steady - oldest->proposed_at > config.proposal_wait_ms_max) {
        stalled = true;
        if (oldest->state == ItemState::Queued) close(c);  // held back, never sent
      }
    }
    if (!stalled) return;
    if (!leading()) restart_forwarding();
    fail_in_flight();
  }

  // What the old stream carried may be lost: nothing of it is awaited.
  void restart_forwarding() {
    raft.restart_forwarding();
    forwarded.clear();
    moving_here.clear();
    reconfig_asks.clear();  // their connections fail with the rest in flight
  }

  // A server of a cluster that has known no leader for two election
  // timeouts is on the losing side of a partition or has lost its
  // majority: it turns its clients away so that they find the majority,
  // and serves those that accept a read-only server. So does a follower
  // that still hears its leader but is not heard by it (its messages are
  // lost on the way): the leader alone expires sessions and hears of the
  // ones alive here only through this server's relays, so the clients
  // must move before their sessions expire behind their backs.
  void watch_quorum() {
    if (!clustered()) return;
    const NodeId leader = raft.leader();
    if (leader != NodeId(0)) {
      leaderless_since.reset();
      const std::int64_t unheard_ms =
          leader != config.id && relay_unacked_since ? now_steady - *relay_unacked_since : 0;
      if (unheard_ms <= 2 * election_timeout_ms()) {
        if (read_only && read_only->reason == ReadOnlyReason::NoQuorum) leave_read_only();
        return;
      }
      if (read_only) return;
      enter_no_quorum("the leader (server " + std::to_string(leader.value()) +
                      ") has acknowledged nothing this server sent for " +
                      std::to_string(unheard_ms) + " ms");
      return;
    }
    if (!leaderless_since) leaderless_since = now_steady;
    const std::int64_t leaderless_ms = now_steady - *leaderless_since;
    if (read_only || leaderless_ms <= 2 * election_timeout_ms()) return;
    enter_no_quorum("no leader heard from for " + std::to_string(leaderless_ms) + " ms");
  }

  void enter_no_quorum(std::string detail) {
    ++stats.read_only_entered;
    read_only = ReadOnlyState{ReadOnlyReason::NoQuorum, std::move(detail), now_steady};
    for (auto& [id, c] : conns) {
      if (c.phase != Phase::Closing) close(c);
    }
  }

  // The leader alone expires sessions, so it must hear of every session
  // that is alive on another server: each tick a follower sends it the
  // sessions heard from here since the last relay.
  //
  // The leader acknowledges each relay. While one waits for its
  // acknowledgement, a relay goes every tick, empty if need be, so that a
  // follower that turned its clients away learns when it is heard again.
  void relay_sessions() {
    const NodeId leader = raft.leader();
    if (leader != relay_leader) {
      relay_leader = leader;
      relay_unacked_since.reset();
    }
    if (leader == config.id) heard.clear();
    if (leader == NodeId(0) || leader == config.id) return;
    if (heard.empty() && !relay_unacked_since) return;
    if (!relay_unacked_since) relay_unacked_since = now_steady;
    if (heard.empty()) {
      send_app(leader, app_sessions_heard, std::string());
      ++stats.session_relays_sent;
      return;
    }
    std::string ids;
    auto flush = [&] {
      send_app(leader, app_sessions_heard, std::move(ids));
      ++stats.session_relays_sent;
      ids.clear();
    };
    for (SessionId id : heard) {
      put_u64(ids, static_cast<std::uint64_t>(id.value()));
      if (ids.size() == limits::session_relay_ids_per_entry_max * 8) flush();
    }
    if (!ids.empty()) flush();
    heard.clear();
  }

  static void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }

  // A follower's relay of its live sessions: heard from now. Ignored by a
  // server that no longer leads that term, and when malformed.
  void sessions_heard(const consensus::Message& m) {
    if (!leading() || m.term != raft.term()) return;
    for (const consensus::Entry& e : m.entries) {
      if (e.data.size() % 8 != 0) return;
      for (std::size_t at = 0; at < e.data.size(); at += 8) {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
          v |= std::uint64_t{static_cast<unsigned char>(e.data[at + i])} << (8 * i);
        sessions.touch(SessionId(static_cast<std::int64_t>(v)), now_steady, m.from);
      }
    }
    send_app(m.from, app_sessions_acked, std::string());
  }

  void sessions_acked(const consensus::Message& m) {
    if (m.term == raft.term() && m.from == raft.leader()) relay_unacked_since.reset();
  }

  void heard_from(SessionId id) {
    sessions.touch(id, now_steady, config.id);
    if (clustered() && sessions.has_global(id)) heard.insert(id);
  }

  void read_failed(std::uint64_t ctx) {
    if (auto [c, item] = take_read_waiter(ctx); item != nullptr) {
      // The leader could not confirm the read (it stepped down, or the
      // request was lost): the sync's outcome is ConnectionLoss.
      ++stats.requests_outcome_unknown;
      close(*c);
    }
  }

  // The sync still waiting for the ReadIndex request `ctx`, which is
  // answered now; nulls when it is gone.
  std::pair<Conn*, Item*> take_read_waiter(std::uint64_t ctx) {
    auto w = read_waiters.find(ctx);
    if (w == read_waiters.end()) return {nullptr, nullptr};
    auto [conn, seq] = w->second;
    read_waiters.erase(w);
    auto c = conns.find(conn);
    if (c == conns.end()) return {nullptr, nullptr};
    Item* item = c->second.find(seq);
    if (item == nullptr || item->state != ItemState::WaitingRead) return {nullptr, nullptr};
    return {&c->second, item};
  }

  void expire_local_sessions() {
    for (ConnId id : sessions.expire_local(now_steady)) {
      if (auto c = conns.find(id); c != conns.end()) close(c->second);
    }
  }

  void role_changed() {
    const consensus::Role role = raft.role();
    if (role == consensus::Role::Leader && last_role != consensus::Role::Leader) {
      ++stats.elections_won;
    }
    last_role = role;
  }

  bool propose(Command&& cmd) {
    std::string entry = encode_command(cmd, command_scratch);
    if (command_scratch.capacity() > command_scratch_bytes_max) pr::Bytes().swap(command_scratch);
    if (!raft.propose(std::move(entry)).ok()) return false;
    if (!leading()) {
      ++stats.requests_forwarded;
      forwarded.emplace(std::pair(cmd.origin.connection, cmd.origin.request), now_steady);
      return true;
    }
    const LogIndex index = raft.last_index();
    // A new leader appends after a log that may have been cut back.
    while (!proposed_cmds.empty() && proposed_cmds.back().index >= index)
      proposed_cmds.pop_back();
    proposed_cmds.push_back(Proposed{index, raft.term(), std::move(cmd)});
    return true;
  }

  // The command of committed entry `e` if this server proposed it and
  // keeps it decoded. Forgets the ones before `e`, which will not apply.
  std::optional<Command> take_proposed(const consensus::Entry& e) {
    while (!proposed_cmds.empty() && proposed_cmds.front().index < e.index)
      proposed_cmds.pop_front();
    if (proposed_cmds.empty() || proposed_cmds.front().index != e.index) return std::nullopt;
    Proposed p = std::move(proposed_cmds.front());
    proposed_cmds.pop_front();
    if (p.term != e.term) return std::nullopt;
    if constexpr (check_kept_commands) {
      COORD_ASSERT(encode_command(p.cmd) == e.data, "entry ", e.index,
                   " is not the command proposed for it");
    }
    return std::move(p.cmd);
  }
  // The index of the entry propose() just appended; 0 when it was
  // forwarded to the leader, which decides.
  LogIndex proposed_index() const { return leading() ? raft.last_index() : LogIndex(0); }

  // ---- applying entries ---------------------------------------------------------

  // Decodes a batch of committed entries (or takes the commands this
  // leader proposed) before applying any, so that the tree can bring the
  // nodes of all of them toward the cache at once (DataTree::prefetch):
  // random writes then overlap their memory round trips instead of paying
  // them one after another.
  void apply_committed(const std::vector<consensus::Entry>& entries) {
    std::vector<std::optional<Command>> cmds(entries.size());
    std::vector<std::string_view> paths;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const consensus::Entry& e = entries[i];
      if (e.type != consensus::EntryType::Normal || e.data.empty()) continue;
      cmds[i] = take_proposed(e);
      if (!cmds[i]) {
        auto decoded = decode_command(e.data);
        COORD_ASSERT(decoded.ok(), "undecodable log entry ", e.index, ": ", decoded.status());
        cmds[i] = std::move(*decoded);
      }
      if (const auto* t = std::get_if<TxnCmd>(&cmds[i]->body)) {
        const std::string_view p = znode::txn_first_path(t->txn);
        if (!p.empty()) paths.push_back(p);
      }
    }
    tree.prefetch(paths);
    for (std::size_t i = 0; i < entries.size(); ++i)
      apply_entry(entries[i], cmds[i] ? &*cmds[i] : nullptr);
  }

  // `cmd` is the entry's decoded command, null for an entry without one.
  void apply_entry(const consensus::Entry& e, const Command* cmd_or_null) {
    // A Raft restored from storage after a failed write starts from the
    // stored commit index, which may lag what was applied (see
    // must_persist()): it hands those entries back, and they are applied.
    if (e.index <= applied) return;
    COORD_ASSERT(e.index == applied.next(), "entry ", e.index, " applied after ", applied);
    applied = e.index;
    ++applied_since_snapshot;
    applied_bytes_since_snapshot += e.data.size();
    if (e.type == consensus::EntryType::ConfChange) apply_membership(e);
    if (cmd_or_null == nullptr) return;
    const Command& cmd = *cmd_or_null;
    if (cmd.origin.node == config.id) {
      forwarded.erase(std::pair(cmd.origin.connection, cmd.origin.request));
    }
    const Zxid zxid(static_cast<std::int64_t>(e.index.value()));
    ++stats.requests_applied;
    std::visit([&](const auto& body) { apply_body(cmd, body, zxid); }, cmd.body);
  }

  // The waiting item `cmd` answers, if it is ours and still waiting.
  std::pair<Conn*, Item*> origin_item(const Command& cmd) {
    if (cmd.origin.node != config.id || cmd.origin.connection == 0) return {nullptr, nullptr};
    auto it = conns.find(cmd.origin.connection);
    if (it == conns.end() || it->second.phase == Phase::Closing) return {nullptr, nullptr};
    Item* item = it->second.find(cmd.origin.request);
    return {&it->second, item != nullptr && item->state == ItemState::Proposed ? item : nullptr};
  }

  void apply_body(const Command& cmd, const CreateSessionCmd& b, Zxid zxid) {
    const SessionId sid(zxid.value());
    Session& session = sessions.create(sid, b.timeout_ms, b.password, now_steady);
    if (cmd.origin.node != config.id) return;
    auto it = conns.find(cmd.origin.connection);
    if (it == conns.end()) return;
    Conn& c = it->second;
    if (c.phase != Phase::Connecting || c.handshake_seq != cmd.origin.request) return;
    c.session = sid;
    c.phase = Phase::Open;
    c.established = now_wall;
    session.conn = c.id;
    pr::ConnectResponse resp;
    resp.timeout_ms = b.timeout_ms;
    resp.session_id = sid;
    resp.password = b.password;
    resp.has_read_only = c.has_read_only;
    pr::Bytes frame;
    pr::append_connect_response_frame(frame, resp);
    send(c, frame);
    dirty.push_back(c.id);
  }

  void apply_body(const Command& cmd, const CloseSessionCmd& b, Zxid zxid) {
    auto [c, item] = origin_item(cmd);
    if (auto s = sessions.global().find(b.session); s != sessions.global().end()) {
      const ConnId holder = s->second.conn;
      znode::ApplyResult res =
          tree.apply(znode::CloseSessionOp{b.session}, znode::Caller{}, zxid, cmd.time);
      route_events(res.events);
      sessions.erase(b.session);
      if (holder != 0 && (c == nullptr || c->id != holder)) {
        // Expired (or closed from elsewhere) while connected here.
        auto h = conns.find(holder);
        if (h != conns.end()) close(h->second);
      }
    }
    if (item != nullptr) {
      item->reply = reply_frame(item->xid, zxid, ErrorCode::Ok);
      item->close_after = true;
      item->state = ItemState::Done;
      dirty.push_back(c->id);
    }
  }

  void apply_body(const Command& cmd, const MoveSessionCmd& b, Zxid) {
    if (cmd.origin.node == config.id) {
      if (auto it = moving_here.find(b.session); it != moving_here.end() && --it->second <= 0) {
        moving_here.erase(it);
      }
      return;
    }
    if (moving_here.contains(b.session)) return;  // it came back here since
    auto s = sessions.global().find(b.session);
    if (s == sessions.global().end() || s->second.conn == 0) return;
    auto it = conns.find(s->second.conn);
    if (it == conns.end() || it->second.phase != Phase::Open) return;
    Conn& c = it->second;
    ++stats.sessions_moved_away;
    // A request already proposed may still apply: its outcome is unknown,
    // which only a lost connection tells. Otherwise the waiting requests
    // never ran and are answered SessionMoved.
    if (c.has_proposed() || c.queue.empty()) return close(c);
    for (Item& item : c.queue) {
      if (item.state != ItemState::Done) finish(item, ErrorCode::SessionMoved);
    }
    c.queue.back().close_after = true;
    dirty.push_back(c.id);
  }

  void apply_body(const Command& cmd, const TxnCmd& b, Zxid zxid) {
    if (const auto* reap = std::get_if<znode::ReapOp>(&b.txn)) reaping.erase(reap->path);
    znode::ApplyResult res;
    if (b.session.value() != 0 && !sessions.has_global(b.session)) {
      // The session ended between proposal and apply: nothing may be done
      // on its behalf, above all no ephemeral created for it.
      res.err = ErrorCode::SessionExpired;
    } else {
      res = tree.apply(b.txn, znode::Caller{b.session, b.identities}, zxid, cmd.time);
      route_events(res.events);
      if (!res.quota.empty()) log_quota(res.quota);
    }
    auto [c, item] = origin_item(cmd);
    if (item == nullptr) return;
    item->reply = write_reply(item->op, item->body, item->xid, zxid, res);
    item->state = ItemState::Done;
    dirty.push_back(c->id);
  }

  // Every notice of a quota is logged, but at most once per interval per
  // quota: a client writing past a limit must not flood the log.
  void log_quota(const std::vector<znode::QuotaNotice>& notices) {
    if (quota_logged.size() > limits::quota_log_roots_max) {
      std::erase_if(quota_logged, [&](const auto& e) {
        return now_steady.value() - e.second.at.value() >= limits::quota_log_interval_ms;
      });
    }
    for (const auto& q : notices) {
      auto [it, fresh] = quota_logged.try_emplace(q.path, QuotaLog{now_steady, 0});
      if (!fresh && now_steady.value() - it->second.at.value() < limits::quota_log_interval_ms) {
        ++it->second.held_back;
        continue;
      }
      std::string line = znode::describe(q);
      if (it->second.held_back > 0) {
        line += " (and " + std::to_string(it->second.held_back) + " more since the last report)";
      }
      out.warnings.push_back(std::move(line));
      it->second = QuotaLog{now_steady, 0};
    }
  }

  void route_events(const std::vector<znode::WatchEvent>& events) {
    for (const auto& ev : events) {
      auto it = conns.find(ev.watcher);
      if (it == conns.end()) {
        if (host_sink.event && host_watchers.contains(ev.watcher)) host_sink.event(ev);
        continue;
      }
      if (it->second.phase != Phase::Open) continue;
      // Replies of earlier entries go first: a connection receives
      // everything in zxid order, as from ZooKeeper.
      emit_done(it->second);
      if (it->second.phase != Phase::Open) continue;
      if (!may_read(it->second, ev)) continue;
      pr::Bytes frame;
      pr::append_watch_event_frame(frame, ev.zxid,
                                   pr::WatcherEvent{ev.type, KeeperState::SyncConnected, ev.path});
      send(it->second, frame);
    }
  }

  // A watch event tells its receiver about a node, so it goes only to a
  // connection allowed to READ that node (the parent, for a child change;
  // the deleted node's last ACL, for a deletion), as ZooKeeper 3.8 does
  // since CVE-2024-23944.
  bool may_read(const Conn& c, const znode::WatchEvent& ev) const {
    return !ev.acl || znode::acl_allows(*ev.acl, c.caller(), perm::read);
  }

  // A reply decided early (a request refused before the writes queued
  // ahead of it applied) leaves after theirs: it then carries their zxid,
  // so that the zxids a client sees never go back. Header zxids of 0 (auth)
  // stay as they are.
  static void keep_zxid_order(Conn& c, pr::Bytes& frame) {
    constexpr std::size_t at = pr::frame_length_prefix_bytes + 4;  // after the xid
    if (frame.size() < at + 8) return;
    std::uint64_t z = 0;
    for (std::size_t i = 0; i < 8; ++i)
      z = (z << 8) | frame[at + i];
    const auto zxid = static_cast<std::int64_t>(z);
    if (zxid <= 0) return;
    if (zxid >= c.reply_zxid_max) {
      c.reply_zxid_max = zxid;
      return;
    }
    const auto max = static_cast<std::uint64_t>(c.reply_zxid_max);
    for (std::size_t i = 0; i < 8; ++i)
      frame[at + i] = static_cast<std::uint8_t>(max >> (8 * (7 - i)));
  }

  // Sends the replies already decided at the front of the queue, without
  // executing anything.
  void emit_done(Conn& c) {
    c.emit_done([&](Item& item) {
      keep_zxid_order(c, item.reply);
      record_reply(c, item);
      send(c, item.reply);
      if (item.close_after) close(c);
    });
  }

  // ---- reads and the per-connection queue --------------------------------------

  void read_state(const consensus::ReadState& rs) {
    if (auto [c, item] = take_read_waiter(rs.context); item != nullptr) {
      item->read_index = rs.index;
      syncs_indexed.emplace_back(c->id, item->seq);
      dirty.push_back(c->id);
    }
  }

  // Answers sync requests whose read index has been applied, each once it
  // is the first of its connection's queue. Only those are looked at: this
  // runs after every input, and a server may hold many idle connections.
  void release_reads() {
    std::erase_if(syncs_indexed, [&](const std::pair<ConnId, std::uint64_t>& s) {
      auto it = conns.find(s.first);
      if (it == conns.end()) return true;
      Conn& c = it->second;
      Item* item = c.find(s.second);
      if (item == nullptr || item->state != ItemState::WaitingRead) return true;
      if (applied < item->read_index || item != &c.queue.front()) return false;
      const auto& req = std::get<pr::SyncRequest>(item->body);
      item->reply =
          reply_frame(item->xid, applied_zxid(), ErrorCode::Ok, pr::SyncResponse{req.path});
      item->state = ItemState::Done;
      dirty.push_back(c.id);
      return true;
    });
  }

  Zxid applied_zxid() const { return Zxid(static_cast<std::int64_t>(applied.value())); }

  void pump_dirty() {
    COORD_ASSERT(!pumping_dirty, "pump_dirty() entered again from within");
    pumping_dirty = true;
    for (int rounds = 0; rounds < 8 && !dirty.empty(); ++rounds) {
      dirty_todo.clear();
      dirty_todo.swap(dirty);
      std::sort(dirty_todo.begin(), dirty_todo.end());
      dirty_todo.erase(std::unique(dirty_todo.begin(), dirty_todo.end()), dirty_todo.end());
      prefetch_reads(dirty_todo);
      for (ConnId id : dirty_todo) {
        auto it = conns.find(id);
        if (it != conns.end()) pump(it->second);
      }
      drive();
    }
    pumping_dirty = false;
  }

  // Tells the tree the paths of the reads waiting at the front of these
  // connections' queues, which pump() is about to execute (see
  // apply_committed()).
  void prefetch_reads(const std::vector<ConnId>& ids) {
    std::vector<std::string_view> paths;
    for (ConnId id : ids) {
      auto it = conns.find(id);
      if (it == conns.end()) continue;
      it->second.visit_next_reads([&](const Item& item) {
        std::visit(
            [&](const auto& r) {
              if constexpr (requires { std::string_view(r.path); }) paths.push_back(r.path);
            },
            item.body);
      });
    }
    tree.prefetch(paths);
  }

  void pump(Conn& c) {
    c.pump([&](Item& item) { execute(c, item); }, [&] { emit_done(c); },
           [&](Item& item) { propose_write(c, item); });
  }

  void record_reply(Conn& c, const Item& item) {
    const auto us = static_cast<std::uint64_t>(
        std::max<std::int64_t>(0, config.metrics_clock_us() - item.received_us));
    const std::int32_t err = c.note_reply(item, now_wall, us / 1000);
    ++stats.replies[{pr::to_int(item.op), err}];
    stats.latency_us.record(us);
    stats.latency_us_by_op[pr::to_int(item.op)].record(us);
    fourlw.record_latency_us(us);
  }

  void finish(Item& item, ErrorCode err, const pr::ResponseBody& body = pr::Empty{}) {
    item.reply = reply_frame(item.xid, applied_zxid(), err, body);
    // Replies that can grow past the limit are measured before they are
    // built; this catches any other (whoAmI of a connection with very many
    // identities, ...), so that no reply over the limit ever leaves.
    if (item.reply.size() - pr::frame_length_prefix_bytes > config.reply_bytes_max) {
      return finish_too_large(item);
    }
    item.state = ItemState::Done;
  }

  bool reply_fits(std::size_t payload_bytes) const {
    return payload_bytes <= config.reply_bytes_max;
  }

  void finish_too_large(Item& item) {
    item.reply = too_large_reply(item.op, item.body, item.xid, applied_zxid());
    item.state = ItemState::Done;
  }

  void propose_write(Conn& c, Item& item) {
    c.last_op = std::string(pr::op_name(item.op));
    if (item.op == OpCode::Reconfig) return propose_reconfig(c, item);
    if (read_only) {
      if (item.op == OpCode::CloseSession && sessions.close_local(c.session)) {
        // A local session ends here, without the log (ZooKeeper's
        // read-only server lets exactly these through).
        item.close_after = true;
        return finish(item, ErrorCode::Ok);
      }
      // Refused the way a read-only ZooKeeper refuses: reads go on.
      return finish(item, ErrorCode::NotReadOnly);
    }
    Command cmd;
    cmd.origin = Origin{config.id, c.id, item.seq};
    cmd.time = now_wall;
    if (item.op == OpCode::Multi &&
        !reply_fits(multi_reply_bytes_bound(std::get<pr::MultiRequest>(item.body)))) {
      return finish_too_large(item);
    }
    if (item.op == OpCode::CloseSession) {
      cmd.body = CloseSessionCmd{c.session, false};
    } else {
      auto txn = txn_of(item.op, item.body);
      if (!txn.ok()) return finish(item, txn.code());
      cmd.body = TxnCmd{c.session, c.identities, std::move(txn).value()};
    }
    if (item.proposed_at.value() == 0) item.proposed_at = now_steady;
    if (clustered() && !leader_settled()) {
      // An election or a leadership transfer is on, or the link to the
      // leader is down: the write waits for the outcome (it stays queued,
      // and so does everything behind it), within proposal_wait_ms_max, or
      // until this server gives up on the quorum and turns its clients
      // away.
      held.insert(c.id);
      return;
    }
    if (!propose(std::move(cmd))) {
      // No leader to take it: the client retries on another connection.
      close(c);
      return;
    }
    item.state = ItemState::Proposed;
    item.proposal_no = proposals++;
    item.log_index = proposed_index();
  }

  void execute(Conn& c, Item& item) {
    c.last_op = std::string(pr::op_name(item.op));
    const znode::Caller caller = c.caller();
    switch (item.op) {
      case OpCode::Ping:
        return finish(item, ErrorCode::Ok);
      case OpCode::Exists: {
        const auto& r = std::get<pr::ExistsRequest>(item.body);
        // ZooKeeper 3.8 checks exists alone for a NUL in the path, before
        // looking (BadArguments); every other read of it is just NoNode.
        if (r.path.find('\0') != std::string::npos) return finish(item, ErrorCode::BadArguments);
        auto st = tree.exists(r.path);
        if (r.watch && !tree.add_watch(c.id, r.path,
                                       st.ok() ? znode::WatchKind::Data : znode::WatchKind::Exist)
                            .ok()) {
          return finish(item, kWatchRefused);
        }
        if (!st.ok()) return finish(item, st.code());
        return finish(item, ErrorCode::Ok, pr::ExistsResponse{*st});
      }
      case OpCode::GetData: {
        const auto& r = std::get<pr::GetDataRequest>(item.body);
        auto v = tree.get_data(r.path, caller);
        if (!v.ok()) return finish(item, v.code());
        const std::size_t data_bytes = v->data ? v->data->size() : 0;
        if (!reply_fits(kReplyHeaderBytes + kLengthBytes + data_bytes + kStatBytes)) {
          return finish_too_large(item);
        }
        if (r.watch && !tree.add_watch(c.id, r.path, znode::WatchKind::Data).ok()) {
          return finish(item, kWatchRefused);
        }
        Data data;
        if (v->data) data = std::string(*v->data);
        return finish(item, ErrorCode::Ok, pr::GetDataResponse{std::move(data), v->stat});
      }
      case OpCode::GetChildren:
      case OpCode::GetChildren2: {
        std::string path;
        bool watch = false;
        if (item.op == OpCode::GetChildren) {
          const auto& r = std::get<pr::GetChildrenRequest>(item.body);
          path = r.path;
          watch = r.watch;
        } else {
          const auto& r = std::get<pr::GetChildren2Request>(item.body);
          path = r.path;
          watch = r.watch;
        }
        auto v = tree.get_children(path, caller);
        if (!v.ok()) return finish(item, v.code());
        // Measured before anything is copied: a node may have more
        // children than one reply can carry. The watch goes only with a
        // reply the client gets (a client registers it only on success).
        std::size_t bytes =
            kReplyHeaderBytes + kLengthBytes + (item.op == OpCode::GetChildren2 ? kStatBytes : 0);
        for (std::string_view name : v->children)
          bytes += kLengthBytes + name.size();
        if (!reply_fits(bytes)) return finish_too_large(item);
        if (watch && !tree.add_watch(c.id, path, znode::WatchKind::Child).ok()) {
          return finish(item, kWatchRefused);
        }
        std::vector<std::string> names(v->children.begin(), v->children.end());
        if (item.op == OpCode::GetChildren) {
          return finish(item, ErrorCode::Ok, pr::GetChildrenResponse{std::move(names)});
        }
        return finish(item, ErrorCode::Ok, pr::GetChildren2Response{std::move(names), v->stat});
      }
      case OpCode::GetAcl: {
        const auto& r = std::get<pr::GetAclRequest>(item.body);
        auto v = tree.get_acl(r.path, caller);
        if (!v.ok()) return finish(item, v.code());
        return finish(item, ErrorCode::Ok, pr::GetAclResponse{v->acl, v->stat});
      }
      case OpCode::GetAllChildrenNumber: {
        const auto& r = std::get<pr::GetAllChildrenNumberRequest>(item.body);
        auto v = tree.get_all_children_number(r.path, caller);
        if (!v.ok()) return finish(item, v.code());
        const auto n = static_cast<std::int32_t>(
            std::min<std::int64_t>(*v, std::numeric_limits<std::int32_t>::max()));
        return finish(item, ErrorCode::Ok, pr::GetAllChildrenNumberResponse{n});
      }
      case OpCode::GetEphemerals: {
        const auto& r = std::get<pr::GetEphemeralsRequest>(item.body);
        // Copied only while the reply still fits: a session may own more
        // ephemerals than one reply can carry.
        std::vector<std::string> paths;
        std::size_t bytes = kReplyHeaderBytes + kLengthBytes;
        bool fits = true;
        tree.visit_ephemerals(c.session, r.prefix_path, [&](std::string_view p) {
          bytes += kLengthBytes + p.size();
          fits = reply_fits(bytes);
          if (fits) paths.emplace_back(p);
          return fits;
        });
        if (!fits) return finish_too_large(item);
        return finish(item, ErrorCode::Ok, pr::GetEphemeralsResponse{std::move(paths)});
      }
      case OpCode::Check: {
        // As ZooKeeper checks it: path, existence, READ, then version.
        const auto& r = std::get<pr::CheckVersionRequest>(item.body);
        if (!znode::validate_path(r.path).ok()) return finish(item, ErrorCode::BadArguments);
        auto v = tree.get_data(r.path, caller);
        if (!v.ok()) return finish(item, v.code());
        if (r.version != -1 && r.version != v->stat.version) {
          return finish(item, ErrorCode::BadVersion);
        }
        return finish(item, ErrorCode::Ok, pr::SetDataResponse{v->stat});
      }
      case OpCode::MultiRead:
        return multi_read(item, caller);
      case OpCode::Sync: {
        // A read-only ZooKeeper refuses sync as it refuses writes.
        if (read_only) return finish(item, ErrorCode::NotReadOnly);
        if (config.sync_without_read_index_for_testing) {
          return finish(item, ErrorCode::Ok,
                        pr::SyncResponse{std::get<pr::SyncRequest>(item.body).path});
        }
        if (!raft.read_index(next_read_context).ok()) {
          close(c);
          return;
        }
        item.read_context = next_read_context++;
        read_waiters[item.read_context] = {c.id, item.seq};
        item.state = ItemState::WaitingRead;
        return;
      }
      case OpCode::WhoAmI: {
        pr::WhoAmIResponse resp;
        for (const Id& id : c.identities) {
          std::string user = id.id;
          if (id.scheme == "digest") user = user.substr(0, user.find(':'));
          resp.client_info.push_back(pr::ClientInfo{id.scheme, user});
        }
        return finish(item, ErrorCode::Ok, resp);
      }
      case OpCode::Auth:
        return auth(c, item);
      case OpCode::SetWatches:
      case OpCode::SetWatches2: {
        znode::SetWatchesRequest req;
        if (item.op == OpCode::SetWatches) {
          const auto& r = std::get<pr::SetWatches>(item.body);
          req = {r.relative_zxid, r.data_watches, r.exist_watches, r.child_watches, {}, {}};
        } else {
          const auto& r = std::get<pr::SetWatches2>(item.body);
          req = {r.relative_zxid, r.data_watches,       r.exist_watches,
                 r.child_watches, r.persistent_watches, r.persistent_recursive_watches};
        }
        // The watches that fit are set and the catch-up events go out; the
        // reply says that not all of them could be.
        Status refused;
        route_events(tree.set_watches(c.id, req, &refused));
        if (c.phase != Phase::Open) return;
        return finish(item, refused.ok() ? ErrorCode::Ok : kWatchRefused);
      }
      case OpCode::CheckWatches: {
        const auto& r = std::get<pr::CheckWatchesRequest>(item.body);
        if (!valid_watcher_type(r.type)) return finish(item, ErrorCode::MarshallingError);
        return finish(item, tree.check_watches(c.id, r.path, r.type).code());
      }
      case OpCode::RemoveWatches: {
        const auto& r = std::get<pr::RemoveWatchesRequest>(item.body);
        if (!valid_watcher_type(r.type)) return finish(item, ErrorCode::MarshallingError);
        return finish(item, tree.remove_watches(c.id, r.path, r.type).code());
      }
      case OpCode::AddWatch: {
        const auto& r = std::get<pr::AddWatchRequest>(item.body);
        const auto kind = r.mode == AddWatchMode::PersistentRecursive
                              ? znode::WatchKind::PersistentRecursive
                              : znode::WatchKind::Persistent;
        if (r.mode != AddWatchMode::Persistent && r.mode != AddWatchMode::PersistentRecursive) {
          // ZooKeeper fails to decode an unknown mode.
          return finish(item, ErrorCode::MarshallingError);
        }
        if (!tree.add_watch(c.id, r.path, kind).ok()) return finish(item, kWatchRefused);
        return finish(item, ErrorCode::Ok, pr::ErrorResponse{ErrorCode::Ok});
      }
      case OpCode::Sasl:
        // No SASL here: answer as an unconfigured ZooKeeper 3.8 does.
        return finish(item, ErrorCode::Ok, pr::SetSaslResponse{std::nullopt});
      default:
        return finish(item, ErrorCode::Unimplemented);
    }
  }

  // Built op by op and measured as it grows: a request of a few KB can
  // name the same MiB node thousands of times, so nothing past the limit
  // is ever looked up, copied or encoded.
  void multi_read(Item& item, const znode::Caller& caller) {
    const auto& req = std::get<pr::MultiRequest>(item.body);
    for (const auto& op : req.ops) {
      if (!std::holds_alternative<pr::GetDataRequest>(op.op) &&
          !std::holds_alternative<pr::GetChildrenRequest>(op.op)) {
        return finish(item, ErrorCode::BadArguments);
      }
    }
    std::size_t bytes = kReplyHeaderBytes + kMultiHeaderBytes;  // the end marker
    pr::MultiResponse resp;
    resp.results.reserve(req.ops.size());
    for (const auto& op : req.ops) {
      pr::MultiResult m;
      bytes += kMultiHeaderBytes;
      if (const auto* g = std::get_if<pr::GetDataRequest>(&op.op)) {
        auto v = tree.get_data(g->path, caller);
        if (v.ok()) {
          bytes += kLengthBytes + (v->data ? v->data->size() : 0) + kStatBytes;
          if (!reply_fits(bytes)) return finish_too_large(item);
          m.type = OpCode::GetData;
          if (v->data) m.data = std::string(*v->data);
          m.stat = v->stat;
        } else {
          m.err = v.code();
        }
      } else {
        auto v = tree.get_children(std::get<pr::GetChildrenRequest>(op.op).path, caller);
        if (v.ok()) {
          bytes += kLengthBytes;
          for (std::string_view name : v->children)
            bytes += kLengthBytes + name.size();
          if (!reply_fits(bytes)) return finish_too_large(item);
          m.type = OpCode::GetChildren;
          m.children.assign(v->children.begin(), v->children.end());
        } else {
          m.err = v.code();
        }
      }
      if (m.type == OpCode::Error) bytes += kLengthBytes;
      if (!reply_fits(bytes)) return finish_too_large(item);
      resp.results.push_back(std::move(m));
    }
    finish(item, ErrorCode::Ok, resp);
  }

  void auth(Conn& c, Item& item) {
    const auto& r = std::get<pr::AuthPacket>(item.body);
    if (r.scheme == "ip") {
      // Every connection already holds its ip identity; ZooKeeper accepts
      // the packet and adds nothing else.
      item.reply = reply_frame(item.xid, Zxid(0), ErrorCode::Ok);
      item.state = ItemState::Done;
      return;
    }
    if (r.scheme != "digest") {
      // ZooKeeper answers AuthFailed and closes the connection (docs/PROTOCOL.md §6.3).
      item.reply = reply_frame(item.xid, Zxid(0), ErrorCode::AuthFailed);
      item.close_after = true;
      item.state = ItemState::Done;
      return;
    }
    const std::string digest = digest_of(r.auth);
    const Id id{"digest", digest};
    if (std::find(c.identities.begin(), c.identities.end(), id) == c.identities.end()) {
      c.identities.push_back(id);
    }
    if (!config.super_digest.empty() && digest == config.super_digest) {
      const Id super{"super", ""};
      if (std::find(c.identities.begin(), c.identities.end(), super) == c.identities.end()) {
        c.identities.push_back(super);
      }
    }
    item.reply = reply_frame(item.xid, Zxid(0), ErrorCode::Ok);
    item.state = ItemState::Done;
  }

  // ---- connections --------------------------------------------------------------

  std::int32_t negotiate(std::int32_t requested_ms) const {
    return static_cast<std::int32_t>(std::clamp<std::int64_t>(
        requested_ms, config.session_timeout_ms_min, config.session_timeout_ms_max));
  }

  void handshake(Conn& c, pr::ByteSpan payload) {
    auto req = pr::decode_connect_request(payload);
    if (!req.ok()) return close(c);
    c.has_read_only = req->has_read_only;
    c.can_be_read_only = req->has_read_only && req->read_only;
    if (req->last_zxid_seen > applied_zxid()) {
      // The client has seen a newer state than ours: it must try another
      // server (single system image, docs/ARCHITECTURE.md "Guarantees"). No
      // reply, as ZooKeeper.
      return close(c);
    }
    if (req->session_id.value() == 0 && sessions.global_count() >= config.sessions_max) {
      return close(c);  // full: the client tries again or elsewhere
    }
    if (read_only) {
      // ZooKeeper's read-only server closes, without a reply, the
      // connection of a client that did not say it can live with one.
      if (!c.can_be_read_only) return close(c);
      if (read_only->reason == ReadOnlyReason::NoQuorum &&
          (!config.read_only_on_quorum_loss || outside_membership())) {
        return close(c);
      }
      if (req->session_id.value() == 0) return open_local_session(c, req->timeout_ms);
    } else if (req->session_id.value() == 0) {
      // On a follower the CreateSession entry is forwarded to the leader;
      // the reply goes out when it applies here.
      const std::int32_t timeout = negotiate(req->timeout_ms);
      std::string password = passwords();
      COORD_ASSERT(password.size() == limits::session_password_bytes, "bad password size");
      c.handshake_seq = c.next_seq++;
      Command cmd;
      cmd.origin = Origin{config.id, c.id, c.handshake_seq};
      cmd.time = now_wall;
      cmd.body = CreateSessionCmd{timeout, std::move(password)};
      if (!propose(std::move(cmd))) return close(c);
      c.handshake_index = proposed_index();
      c.handshake_at = now_steady;
      c.handshake_no = proposals++;
      c.phase = Phase::Connecting;
      c.timeout_ms = timeout;
      may_stall.insert(c.id);
      return;
    }
    Session* s = sessions.find(req->session_id);
    if (s != nullptr && s->closing && s->password == req->password) {
      // Its expiry is proposed, not applied: it may never commit (this
      // leader may be deposed first), so "expired" could be a lie. The
      // client tries again, here or elsewhere, once the log has decided.
      return close(c);
    }
    if (s == nullptr || s->password != req->password) {
      pr::Bytes frame;
      pr::append_connect_response_frame(frame, pr::invalid_session_response(c.has_read_only));
      send(c, frame);
      return close(c);
    }
    Session& session = *s;
    if (session.conn != 0 && session.conn != c.id) {
      // The session moved here: the old connection is closed (docs/PROTOCOL.md §4.3).
      auto old = conns.find(session.conn);
      if (old != conns.end()) close(old->second);
    }
    if (clustered() && !read_only && sessions.has_global(session.id)) {
      // Another server may hold the session's old connection: tell every
      // server through the log. No answer waits on it.
      Command move;
      move.origin = Origin{config.id, 0, next_move_request++};
      move.time = now_wall;
      move.body = MoveSessionCmd{session.id};
      if (propose(std::move(move))) ++moving_here[session.id];
    }
    session.effective_timeout_ms = negotiate(req->timeout_ms);
    attach(c, session);
  }

  // A session only this server knows, for a read-only client: no log
  // entry, so it exists while the server is read-only and no longer.
  void open_local_session(Conn& c, std::int32_t requested_timeout_ms) {
    std::string password = passwords();
    COORD_ASSERT(password.size() == limits::session_password_bytes, "bad password size");
    attach(c,
           sessions.open_local(negotiate(requested_timeout_ms), std::move(password), now_steady));
  }

  // Opens `c` on `session` and sends the handshake reply; its readOnly
  // byte tells the client whether this server takes writes.
  void attach(Conn& c, Session& session) {
    session.conn = c.id;
    heard_from(session.id);
    c.opened_read_only = read_only.has_value();
    c.session = session.id;
    c.timeout_ms = session.effective_timeout_ms;
    c.phase = Phase::Open;
    c.established = now_wall;
    pr::ConnectResponse resp;
    resp.timeout_ms = session.effective_timeout_ms;
    resp.session_id = session.id;
    resp.password = session.password;
    resp.has_read_only = c.has_read_only;
    resp.read_only = read_only.has_value();
    pr::Bytes frame;
    pr::append_connect_response_frame(frame, resp);
    send(c, frame);
    dirty.push_back(c.id);
  }

  void frame(Conn& c, pr::ByteSpan payload) {
    ++c.received;
    ++stats.packets_received;
    if (c.phase == Phase::AwaitConnect) return handshake(c, payload);
    heard_from(c.session);
    pr::JuteReader r(payload);
    auto header = pr::decode_request_header(r);
    if (!header.ok()) return close(c);
    Item item;
    item.seq = c.next_seq++;
    item.xid = header->xid;
    item.op = header->type;
    item.received_us = config.metrics_clock_us();
    const pr::OpInfo* info = pr::find_op(header->type);
    if (info == nullptr || info->kind == OpKind::Internal) {
      // Unknown opcode: ZooKeeper 3.8 answers Unimplemented with zxid -1
      // and closes the connection; so does coordd, once the requests
      // before it are answered, reading nothing after it. A second
      // ConnectRequest reads as opcode 0 and ends the same way. The
      // internal ops 3.8 runs through its pipeline (deleteContainer,
      // createSession) get Unimplemented and keep the connection.
      item.reply = reply_frame(item.xid, Zxid(-1), ErrorCode::Unimplemented);
      item.state = ItemState::Done;
      if (header->type != OpCode::DeleteContainer && header->type != OpCode::CreateSession) {
        item.close_after = true;
        c.input_done = true;
      }
    } else {
      auto body = pr::decode_request_body(header->type, r.rest());
      if (!body.ok()) {
        item.reply = reply_frame(
            item.xid, body.code() == ErrorCode::Unimplemented ? Zxid(-1) : applied_zxid(),
            body.code());
        item.state = ItemState::Done;
      } else {
        item.body = std::move(body).value();
      }
    }
    c.queue.push_back(std::move(item));
    dirty.push_back(c.id);
    may_stall.insert(c.id);
  }

  // ---- sessions ---------------------------------------------------------------

  void expire_sessions() {
    if (raft.role() != consensus::Role::Leader || read_only) return;
    if (sessions_renewed_term != raft.term()) {
      // A new leader gives every session a fresh timeout (docs/ARCHITECTURE.md,
      // "Guarantees": sessions and ephemerals): what it heard before it led
      // says nothing of the sessions that lived on other servers meanwhile,
      // least of all after it was paused or cut off. Here, at the first look
      // of the term, and not when the Ready that reports the new role is
      // processed: the Raft core leads from the vote that elects it, and that
      // Ready may wait behind a write still in progress for ticks on end.
      sessions_renewed_term = raft.term();
      sessions.touch_all(now_steady);
      return;
    }
    for (SessionId id : sessions.expired(now_steady)) {
      Command cmd;
      cmd.origin = Origin{config.id, 0, 0};
      cmd.time = now_wall;
      cmd.body = CloseSessionCmd{id, true};
      if (propose(std::move(cmd))) sessions.mark_closing(id);
    }
  }

  void reap() {
    if (raft.role() != consensus::Role::Leader || read_only) return;
    // How often to look is a timer, on the steady clock: the wall clock
    // may stand still for hours after it was set back (set_time).
    if (now_steady - last_reap < config.reap_interval_ms) return;
    last_reap = now_steady;
    for (const std::string& path : tree.reap_candidates(now_wall)) {
      if (reaping.contains(path)) continue;
      Command cmd;
      cmd.origin = Origin{config.id, 0, 0};
      cmd.time = now_wall;
      cmd.body = TxnCmd{SessionId(0), {Id{"super", ""}}, znode::ReapOp{path}};
      if (propose(std::move(cmd))) reaping.insert(path);
    }
  }

  // ---- membership and reconfig ---------------------------------------------------

  static constexpr std::string_view config_path = "/zookeeper/config";

  // The membership a tree holds in /zookeeper/config (a snapshot's).
  Status restore_membership() {
    membership = Membership{};
    if (!config.reconfig_enabled) return Status();
    auto v = tree.get_data(config_path, znode::Caller{{}, {Id{"super", ""}}});
    if (!v.ok() || !v->data || v->data->empty()) return Status();
    auto parsed = Membership::parse_config(*v->data);
    if (!parsed.ok()) {
      return Status(
          ErrorCode::DataInconsistency,
          "the snapshot's /zookeeper/config is no membership: " + parsed.status().message());
    }
    membership = std::move(parsed).value();
    return Status();
  }

  // A configuration entry applies: the membership follows it, on every
  // server alike, and /zookeeper/config shows it.
  void apply_membership(const consensus::Entry& e) {
    if (!config.reconfig_enabled) return;
    auto changes = consensus::conf_entry_changes(e.data);
    COORD_ASSERT(changes.ok(), "undecodable configuration entry ", e.index, ": ", changes.status());
    // Leaving a joint configuration: its C_new is shown already.
    if (changes->empty()) return;
    for (consensus::ConfChange& cc : *changes) {
      // Written by a coordd that kept no specs in its founding entries.
      if (!cc.context.empty() || cc.type == consensus::ConfChangeType::RemoveVoter) continue;
      if (const Member* m = config.founding.find(cc.node)) cc.context = m->line();
    }
    auto next = membership_after(membership, *changes, static_cast<std::int64_t>(e.index.value()));
    if (!next.ok()) {
      out.warnings.push_back("configuration entry " + std::to_string(e.index.value()) +
                             " leaves /zookeeper/config as it was: " + next.status().message());
      return;
    }
    membership = std::move(next).value();
    const znode::ApplyResult res =
        tree.set_config(membership.config_text(), Zxid(static_cast<std::int64_t>(e.index.value())));
    route_events(res.events);
  }

  // A client's reconfig: checked here as far as this server can (3.8 checks
  // the request before the caller's right to make it), then planned and
  // carried out by the leader.
  void propose_reconfig(Conn& c, Item& item) {
    if (!config.reconfig_enabled) return finish(item, ErrorCode::ReconfigDisabled);
    if (read_only) return finish(item, ErrorCode::NotReadOnly);
    const auto& req = std::get<pr::ReconfigRequest>(item.body);
    std::vector<NodeId> everyone;
    for (const Member& m : membership.members)
      everyone.push_back(m.id);
    if (auto plan = plan_reconfig(membership, req, everyone); !plan.ok()) {
      return finish(item, plan.code());
    }
    if (!tree.allows(config_path, c.caller(), perm::write)) return finish(item, ErrorCode::NoAuth);
    if (item.proposed_at.value() == 0) item.proposed_at = now_steady;
    if (!leader_settled()) {
      held.insert(c.id);
      return;
    }
    const std::uint64_t id = next_reconfig_id++;
    reconfig_asks.emplace(id, std::pair(c.id, item.seq));
    item.state = ItemState::Proposed;
    item.proposal_no = proposals++;
    if (leading()) return start_reconfig(config.id, id, req);
    send_app(raft.leader(), app_reconfig_ask, ReconfigAsk{id, req}.encode());
  }

  void send_app(NodeId to, std::uint64_t kind, std::string body) {
    consensus::Message m;
    m.type = consensus::MessageType::App;
    m.from = config.id;
    m.to = to;
    m.term = raft.term();
    m.context = kind;
    m.entries.push_back(
        consensus::Entry{Term(0), LogIndex(0), consensus::EntryType::Normal, std::move(body)});
    out.peer_messages.push_back(std::move(m));
  }

  // The voters the leader knows to be connected and following its log.
  // Not Raft's recent_active, which every election timeout clears until
  // the next replies: a reconfig right after would find no quorum in sync.
  std::vector<NodeId> synced_voters() const {
    std::vector<NodeId> out{config.id};
    for (const consensus::ProgressInfo& p : raft.status().progress) {
      if (p.id != config.id && !p.learner && !links_down.contains(p.id) &&
          p.state == consensus::ProgressState::Replicate) {
        out.push_back(p.id);
      }
    }
    return out;
  }

  // Leader: plans the request of `origin`'s client `id` and proposes its
  // first step, or answers at once.
  void start_reconfig(NodeId origin, std::uint64_t id, const pr::ReconfigRequest& req) {
    auto answer = [&](ErrorCode err, LogIndex index) {
      reconfig_answer(origin, ReconfigAnswer{id, err, index});
    };
    if (!leading()) return answer(ErrorCode::ConnectionLoss, LogIndex(0));
    // Another plan runs, or a change (the leader's own leave entry
    // included) has not applied yet: the membership below is not the one
    // the log is heading for.
    if (reconfig_run || raft.conf_state() != membership.conf_state()) {
      return answer(ErrorCode::ReconfigInProgress, LogIndex(0));
    }
    auto plan = plan_reconfig(membership, req, synced_voters());
    if (!plan.ok()) return answer(plan.code(), LogIndex(0));
    if (plan->steps.empty()) return answer(ErrorCode::Ok, applied);
    reconfig_run = ReconfigRun{origin, id, std::move(plan->steps)};
    propose_reconfig_step();
  }

  void propose_reconfig_step() {
    ReconfigRun& run = *reconfig_run;
    const std::vector<consensus::ConfChange>& step = run.steps[run.next];
    const Status st =
        step.size() == 1 ? raft.propose_conf_change(step.front()) : raft.propose_conf_changes(step);
    if (!st.ok()) return finish_reconfig(st.code());
    run.step_index = raft.last_index();
    ++run.next;
  }

  void finish_reconfig(ErrorCode err) {
    const ReconfigRun run = std::move(*reconfig_run);
    reconfig_run.reset();
    reconfig_answer(run.origin, ReconfigAnswer{run.id, err, applied});
  }

  // After entries applied: the step in flight is done once its entry has
  // applied and its joint configuration has been left.
  void advance_reconfig() {
    if (!reconfig_run || applied < reconfig_run->step_index) return;
    if (raft.conf_state_at(applied).joint()) return;
    if (reconfig_run->next == reconfig_run->steps.size()) return finish_reconfig(ErrorCode::Ok);
    if (!leading()) {
      reconfig_run.reset();
      return;
    }
    propose_reconfig_step();
  }

  void reconfig_answer(NodeId origin, const ReconfigAnswer& a) {
    if (origin == config.id) return reconfig_answered(a);
    send_app(origin, app_reconfig_answer, a.encode());
  }

  void reconfig_asked(const consensus::Message& m) {
    if (m.entries.size() != 1) return;
    auto ask = ReconfigAsk::decode(m.entries.front().data);
    if (!ask.ok()) return;
    start_reconfig(m.from, ask->id, ask->request);
  }

  void reconfig_answered(const consensus::Message& m) {
    if (m.entries.size() != 1 || m.from != raft.leader()) return;
    auto a = ReconfigAnswer::decode(m.entries.front().data);
    if (a.ok()) reconfig_answered(*a);
  }

  void reconfig_answered(const ReconfigAnswer& a) {
    auto w = reconfig_asks.find(a.id);
    if (w == reconfig_asks.end()) return;
    const auto [conn, seq] = w->second;
    reconfig_asks.erase(w);
    auto c = conns.find(conn);
    if (c == conns.end()) return;
    Item* item = c->second.find(seq);
    if (item == nullptr || item->state != ItemState::Proposed) return;
    if (a.err != ErrorCode::Ok) {
      finish(*item, a.err);
      dirty.push_back(conn);
      return;
    }
    // The outcome is known: no longer in flight (a leader change now
    // must not fail it), only waiting for the index to apply here.
    item->state = ItemState::WaitingRead;
    reconfig_due.emplace_back(a.index, conn, seq);
    answer_due_reconfigs();
  }

  // The reconfigs whose membership has applied here: answered, as 3.8
  // answers, with /zookeeper/config's data and Stat.
  void answer_due_reconfigs() {
    std::erase_if(reconfig_due, [&](const auto& due) {
      const auto& [index, conn, seq] = due;
      if (index > applied) return false;
      auto c = conns.find(conn);
      if (c == conns.end()) return true;
      Item* item = c->second.find(seq);
      if (item == nullptr || item->state != ItemState::WaitingRead) return true;
      auto v = tree.get_data(config_path, c->second.caller());
      if (!v.ok()) {
        finish(*item, v.code());
      } else {
        Data data;
        if (v->data) data = std::string(*v->data);
        finish(*item, ErrorCode::Ok, pr::GetDataResponse{std::move(data), v->stat});
      }
      dirty.push_back(conn);
      return true;
    });
  }

  // ---- snapshots ----------------------------------------------------------------

  std::string snapshot_payload() const { return write_replica_snapshot(applied, sessions, tree); }

  Status load_snapshot(std::string_view bytes) {
    auto snap = read_replica_snapshot(bytes, config.tree, now_steady);
    if (!snap.ok()) return snap.status();
    tree = std::move(snap->tree);
    tree.set_watches_per_connection_max(config.watches_per_connection_max);
    sessions.replace_global(std::move(snap->sessions));
    applied = snap->applied;
    return restore_membership();
  }

  void install_snapshot(const consensus::Snapshot& snap) {
    // A follower far behind receives the leader's state (cluster case).
    Status st = load_snapshot(snap.data);
    COORD_ASSERT(st.ok(), "snapshot from the leader does not load: ", st);
    applied = snap.meta.index;
    for (auto& [id, c] : conns) {
      if (c.phase != Phase::Closing) close(c);
    }
    // The new tree holds none of the host's watches.
    if (!host_watchers.empty()) {
      host_watchers.clear();
      if (host_sink.reset) host_sink.reset();
    }
  }
};

// ---- Replica ---------------------------------------------------------------------

Replica::Replica(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replica::~Replica() = default;

Result<std::unique_ptr<Replica>> Replica::create(const ReplicaConfig& config,
                                                 ReplicaStorage& storage,
                                                 std::optional<std::string_view> snapshot,
                                                 Random random, PasswordSource passwords) {
  auto impl = std::make_unique<Impl>(config, storage, std::move(random), std::move(passwords));
  COORD_RETURN_IF_ERROR(impl->fourlw.parse_whitelist(config.four_letter_whitelist));
  if (snapshot) {
    COORD_RETURN_IF_ERROR(impl->load_snapshot(*snapshot));
    if (impl->applied != storage.snapshot_meta().index) {
      return Status(ErrorCode::DataInconsistency,
                    "snapshot payload is at " + std::to_string(impl->applied.value()) +
                        " but the log's snapshot is at " +
                        std::to_string(storage.snapshot_meta().index.value()));
    }
  } else {
    impl->applied = storage.snapshot_meta().index;
  }
  if (config.voters.size() == 1 && config.voters.front() == config.id) impl->raft.campaign();
  impl->drive();
  return std::unique_ptr<Replica>(new Replica(std::move(impl)));
}

void Replica::tick(TimeMs steady, TimeMs wall) {
  Impl& m = *impl_;
  m.set_time(steady, wall);
  if (m.storage_failed()) {
    m.storage_retry_due = true;
    // The Raft core was restored from storage after the failed write; a
    // single voter elects itself again, which is the write that tries.
    if (m.config.voters.size() == 1 && m.config.voters.front() == m.config.id) m.raft.campaign();
  }
  m.raft.tick();
  m.drive();
  m.watch_quorum();
  m.release_held();
  m.give_up_stalled();
  m.relay_sessions();
  m.expire_sessions();
  m.expire_local_sessions();
  m.reap();
  m.drive();
  m.pump_dirty();
  m.storage_retry_due = false;
}

void Replica::connection_opened(ConnId conn, std::string remote_ip, TimeMs steady, TimeMs wall,
                                std::uint16_t remote_port) {
  Impl& m = *impl_;
  m.set_time(steady, wall);
  COORD_ASSERT(!m.conns.contains(conn), "connection id ", conn, " reused");
  Conn c;
  c.id = conn;
  c.port = remote_port;
  c.ip = remote_ip;
  c.identities.push_back(Id{"ip", std::move(remote_ip)});
  m.conns.emplace(conn, std::move(c));
}

void Replica::bytes_received(ConnId conn, protocol::ByteSpan bytes, TimeMs steady, TimeMs wall) {
  Impl& m = *impl_;
  m.set_time(steady, wall);
  auto it = m.conns.find(conn);
  if (it == m.conns.end() || it->second.phase == Phase::Closing || it->second.input_done) return;
  Conn& c = it->second;
  c.frames.append(bytes);
  for (;;) {
    pr::FrameCut cut = c.frames.next();
    if (cut.state == pr::FrameState::NeedMore) break;
    if (cut.state == pr::FrameState::Error) {
      // A length that lies or exceeds the limit: close this connection only.
      m.close(c);
      break;
    }
    m.frame(c, cut.payload);
    if (c.phase == Phase::Closing || c.input_done) break;
  }
  // Reads at the front are answered and writes proposed now; persisting
  // waits for take_output(), so the writes of many inputs share one fsync.
  if (c.phase != Phase::Closing) m.pump(c);
}

void Replica::connection_closed(ConnId conn) {
  Impl& m = *impl_;
  auto it = m.conns.find(conn);
  if (it == m.conns.end()) return;
  m.detach(it->second);
  m.conns.erase(it);
  std::erase(m.dirty, conn);
}

void Replica::peer_message(const consensus::Message& msg, TimeMs steady, TimeMs wall) {
  Impl& m = *impl_;
  m.set_time(steady, wall);
  if (msg.type == consensus::MessageType::App) {
    if (msg.context == app_sessions_heard) m.sessions_heard(msg);
    if (msg.context == app_sessions_acked) m.sessions_acked(msg);
    if (msg.context == app_reconfig_ask) m.reconfig_asked(msg);
    if (msg.context == app_reconfig_answer) m.reconfig_answered(msg);
    return;
  }
  (void)m.raft.step(msg);
}

Status Replica::transfer_leadership(NodeId target, TimeMs steady, TimeMs wall) {
  Impl& m = *impl_;
  m.set_time(steady, wall);
  if (!m.leading() || !m.clustered()) {
    return Status(ErrorCode::InvalidState, "only the leader of a cluster hands leadership over");
  }
  if (target == NodeId(0)) {
    LogIndex best{0};
    for (const consensus::ProgressInfo& p : m.raft.status().progress) {
      if (p.id == m.config.id || p.learner || !m.raft.conf_state().is_voter(p.id)) continue;
      if (target == NodeId(0) || p.match > best) {
        target = p.id;
        best = p.match;
      }
    }
    if (target == NodeId(0)) return Status(ErrorCode::InvalidState, "no other voter");
  }
  Status st = m.raft.transfer_leadership(target);
  m.drive();
  return st;
}

void Replica::peer_link_changed(NodeId peer, bool up, TimeMs steady, TimeMs wall) {
  Impl& m = *impl_;
  m.set_time(steady, wall);
  if (up) {
    m.links_down.erase(peer);
    m.release_held();
    return;
  }
  m.links_down.insert(peer);
  if (peer != m.raft.leader() || m.leading()) return;
  m.restart_forwarding();
  m.fail_in_flight();
}

void Replica::persisted(const Status& st, TimeMs steady, TimeMs wall) {
  Impl& m = *impl_;
  m.set_time(steady, wall);
  m.persisted(st);
  m.pump_dirty();
}

const consensus::Ready* Replica::persisted_next(const Status& st, TimeMs steady, TimeMs wall) {
  Impl& m = *impl_;
  COORD_ASSERT(m.config.persist_async, "persisted_next() without persist_async");
  m.set_time(steady, wall);
  m.hold_stored_committed = true;
  m.persisted(st);
  m.hold_stored_committed = false;
  return std::exchange(m.out.persist, nullptr);
}

bool Replica::persisting() const {
  return impl_->persisting.has_value();
}

ReplicaOutput Replica::take_output() {
  impl_->apply_held_committed();
  impl_->drive();
  impl_->pump_dirty();
  ReplicaOutput out = std::move(impl_->out);
  impl_->out = ReplicaOutput{};
  impl_->out_slot.clear();
  return out;
}

bool Replica::accepts_input(ConnId conn) const {
  auto it = impl_->conns.find(conn);
  if (it == impl_->conns.end()) return false;
  return it->second.queue.size() < impl_->config.pending_requests_per_session_max;
}

bool Replica::snapshot_due() const {
  return impl_->applied_since_snapshot >= impl_->config.snapshot_entries ||
         impl_->applied_bytes_since_snapshot >= impl_->config.snapshot_log_bytes;
}
std::string Replica::snapshot_payload() const {
  return impl_->snapshot_payload();
}
consensus::SnapshotMeta Replica::snapshot_meta() const {
  const Impl& m = *impl_;
  consensus::SnapshotMeta meta;
  meta.index = m.applied;
  meta.term = m.raft.term_at(m.applied).value_or(Term(0));
  meta.conf = m.raft.conf_state_at(m.applied);
  return meta;
}
void Replica::snapshot_done(LogIndex index) {
  impl_->applied_since_snapshot = impl_->applied - std::min(index, impl_->applied);
  // Bytes are not kept per entry; what was applied during the write counts
  // toward the next snapshot by entries only.
  impl_->applied_bytes_since_snapshot = 0;
}

bool Replica::ready() const {
  const Impl& m = *impl_;
  if (m.read_only || m.raft.leader().value() == 0 || m.applied < m.raft.commit_index()) {
    return false;
  }
  // A new leader knows what is committed only once an entry of its own
  // term is (§8): until then its log may hold entries that committed under
  // the last leader and have not applied here.
  return !m.leading() || m.raft.term_at(m.raft.commit_index()) == m.raft.term();
}
const std::optional<ReadOnlyState>& Replica::read_only() const {
  return impl_->read_only;
}
bool Replica::storage_failed() const {
  return impl_->storage_failed();
}
std::size_t Replica::local_session_count() const {
  return impl_->sessions.local_count();
}
Zxid Replica::applied_zxid() const {
  return impl_->applied_zxid();
}
const znode::DataTree& Replica::tree() const {
  return impl_->tree;
}
std::size_t Replica::session_count() const {
  return impl_->sessions.global_count();
}
std::vector<SessionInfo> Replica::sessions() const {
  std::vector<SessionInfo> out;
  out.reserve(impl_->sessions.global_count());
  for (const auto& [id, s] : impl_->sessions.global())
    out.push_back(SessionInfo{id, s.timeout_ms, s.conn != 0, s.heard_via});
  return out;
}
bool Replica::has_session(SessionId id) const {
  return impl_->sessions.has_global(id);
}
std::size_t Replica::connection_count() const {
  return impl_->conns.size();
}
const ReplicaConfig& Replica::config() const {
  return impl_->config;
}

const consensus::ConfState& Replica::conf_state() const {
  return impl_->raft.conf_state();
}
const Membership& Replica::membership() const {
  return impl_->membership;
}

void Replica::add_identity(ConnId conn, Id id) {
  auto it = impl_->conns.find(conn);
  if (it == impl_->conns.end()) return;
  auto& ids = it->second.identities;
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(std::move(id));
}

void Replica::grant_super(ConnId conn) {
  auto it = impl_->conns.find(conn);
  if (it == impl_->conns.end()) return;
  const Id super{"super", ""};
  auto& ids = it->second.identities;
  if (std::find(ids.begin(), ids.end(), super) == ids.end()) ids.push_back(super);
}

void Replica::set_host_watch_sink(HostWatchSink sink) {
  impl_->host_sink = std::move(sink);
}

Status Replica::add_host_watch(ConnId watcher, std::string_view path, znode::WatchKind kind) {
  COORD_ASSERT(!impl_->conns.contains(watcher), "host watcher ", watcher, " is a connection");
  COORD_RETURN_IF_ERROR(impl_->tree.add_watch(watcher, path, kind));
  impl_->host_watchers.insert(watcher);
  return Status();
}

void Replica::remove_host_watcher(ConnId watcher) {
  if (impl_->host_watchers.erase(watcher) == 0) return;
  impl_->tree.remove_watcher(watcher);
}

consensus::RaftStatus Replica::raft_status() const {
  return impl_->raft.status();
}
const ReplicaStats& Replica::stats() const {
  return impl_->stats;
}

bool Replica::four_letter_word_allowed(std::string_view word) const {
  return impl_->fourlw.allowed(word);
}

std::string Replica::four_letter_word(std::string_view word) {
  Impl& m = *impl_;
  const std::string_view mode = m.read_only                                   ? "read-only"
                                : !m.clustered()                              ? "standalone"
                                : m.leading()                                 ? "leader"
                                : m.raft.conf_state().is_learner(m.config.id) ? "observer"
                                                                              : "follower";
  FourLetterInputs inputs{m.config,
                          m.stats,
                          m.conns,
                          m.tree,
                          m.sessions,
                          mode,
                          m.applied_zxid(),
                          m.now_steady - m.started,
                          m.read_only.has_value()};
  if (m.leading() && m.clustered()) {
    inputs.leader = true;
    for (const consensus::ProgressInfo& p : m.raft.status().progress) {
      if (p.id == m.config.id) continue;
      ++inputs.learners;
      const bool synced = p.recent_active && p.state == consensus::ProgressState::Replicate;
      if (synced) ++(p.learner ? inputs.synced_observers : inputs.synced_followers);
    }
    inputs.pending_syncs = m.read_waiters.size();
  }
  return m.fourlw.answer(word, inputs);
}

}  // namespace coord::core
