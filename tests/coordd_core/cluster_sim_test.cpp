// The replica as a cluster member, under a seeded storm: 3 or 5 real
// coord::core::Replica objects on MemoryReplicaStorage, a simulated network
// between them (loss, duplication, delay and so reordering, partitions of
// random shapes that heal), crashes and restarts from storage (and from a
// snapshot when one was taken), per-node clock skew and wall-clock jumps,
// and random clients that speak ZooKeeper's protocol through the real codec:
// sessions, pipelined requests, reconnects elsewhere with their session id,
// password and lastZxidSeen when a connection closes, znodes created, set and
// deleted with and without expected versions, ephemerals, sequential nodes,
// watches and sync. One thread, one seed; a failure prints the seed and the
// command that replays it.
//
// The checks (docs/TESTING.md, "The cluster simulator"):
//   (a) each znode of a small key set, used as a versioned register, has a
//       linearizable history (linearizability.h): creates, sets, deletes and
//       reads that follow a sync on the same session; a request whose
//       connection was lost may or may not have happened. Plain reads are
//       checked for what ZooKeeper promises them: per session, a node's
//       mzxid never goes back and never passes the reply's zxid;
//   (b) no acknowledged write is lost: once the network heals and the
//       cluster settles, every replica holds the effect of the last
//       acknowledged write of each key unless a later write changed it, and
//       every acknowledged sequential node;
//   (c) sessions are expired only by the leader: every committed
//       CloseSession with expired=true was proposed by the node that led
//       the entry's term;
//   (d) replicas agree: the same tree digest at the same applied zxid, the
//       same entry at the same committed index, one leader per term;
//   (e) every ephemeral belongs to a live session, on every replica;
//   (f) per session: replies in request order, reply zxids never go back,
//       a watch event comes after every reply of its connection that could
//       not reflect it, and no server serves a client that has seen a
//       newer state than its own.
//   Sequential nodes get numbers that grow with their zxids.
//
//   COORD_SIM_SEEDS=n      seeds per cluster size (3 nodes: n, 5 nodes: n/2)
//   COORD_SIM_FIRST_SEED=s the first seed (default 1)
//   COORD_SIM_SEED=s       one seed only
//   COORD_SIM_NODES=3|5    one cluster size only
//   COORD_SIM_STEPS=n      steps of the fault phase (default 1200, about 5 s)
//   COORD_SIM_KEEP_GOING=1 run every seed even after one fails
//   COORD_SIM_TRACE=1      print the last events before a failure (2: after
//                          every run)
//   COORD_SIM_STALE_SYNC=1 the planted bug (ReplicaConfig::
//                          sync_without_read_index_for_testing) on every node
//   COORD_SIM_DISK_FAULTS=0 no storage that refuses writes
//   COORD_SIM_MEMBERSHIP=0 no reconfig: by default a super client removes
//                          servers, turns them into observers and back, and
//                          the membership is restored before settling
//   COORD_SIM_ASYNC_PERSIST=0|1  every node writes its log inline (0) or
//                          through ReplicaConfig::persist_async (1), the
//                          write finishing 1-20 ms later and a crash
//                          losing it or keeping it unacknowledged; by
//                          default each boot of a node picks one at random
//   COORD_SIM_FOLLOWER_SNAPSHOTS=0  snapshots cover only what every
//                          replica has (by default lagging followers must
//                          receive them from the leader)

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "coord/core/command.h"
#include "coord/core/replica.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"
#include "coord/protocol/op_table.h"
#include "linearizability.h"

namespace coord::core {
namespace {

namespace pr = coord::protocol;
namespace lin = coord::testing::lin;
using pr::OpCode;

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct SimOptions {
  std::uint64_t seed = 1;
  int nodes = 3;
  std::uint64_t steps = 1200;
  bool stale_sync_bug = false;     // ReplicaConfig::sync_without_read_index_for_testing
  bool follower_snapshots = true;  // see COORD_SIM_FOLLOWER_SNAPSHOTS
  bool trace = false;
  bool disk_faults = true;  // storage that refuses writes for a while
  bool membership = true;   // reconfig during the faults
  int async_persist = -1;   // 0 inline, 1 persist_async, -1 random per boot
};

std::string replay_command(const SimOptions& o) {
  std::ostringstream os;
  os << "COORD_SIM_SEED=" << o.seed << " COORD_SIM_NODES=" << o.nodes
     << " COORD_SIM_STEPS=" << o.steps;
  if (!o.follower_snapshots) os << " COORD_SIM_FOLLOWER_SNAPSHOTS=0";
  if (!o.disk_faults) os << " COORD_SIM_DISK_FAULTS=0";
  if (!o.membership) os << " COORD_SIM_MEMBERSHIP=0";
  if (o.async_persist >= 0) os << " COORD_SIM_ASYNC_PERSIST=" << o.async_persist;
  os << " COORD_SIM_TRACE=1";
  if (o.stale_sync_bug) os << " COORD_SIM_STALE_SYNC=1";
  os << " build/ci/tests/coordd_core/coordd_cluster_sim_test --gtest_filter='*Nodes*'";
  return os.str();
}

// A replica that breaks an invariant of its own aborts the process
// (COORD_ASSERT); the handler still names the seed and its replay command,
// written before each run so that the handler only copies bytes.
char abort_note[1024];

extern "C" void on_abort(int) {
  const ssize_t ignored = write(STDERR_FILENO, abort_note, std::strlen(abort_note));
  (void)ignored;
}

void note_run(const std::string& replay) {
  static const bool installed = [] {
    std::signal(SIGABRT, on_abort);
    return true;
  }();
  (void)installed;
  std::snprintf(abort_note, sizeof abort_note, "\ncluster simulator aborted; replay: %s\n",
                replay.c_str());
}

struct SimResult {
  std::string failure;  // empty: every check passed
  std::string trace;    // the last events, when tracing
  // Figures of the run.
  std::uint64_t acked_writes = 0;
  std::uint64_t unknown_writes = 0;
  std::uint64_t linearizable_reads = 0;
  std::uint64_t crashes = 0;
  std::uint64_t partitions = 0;
  std::uint64_t snapshots = 0;
  std::uint64_t elections = 0;
  std::uint64_t expired_sessions = 0;
  std::size_t unknown_keys = 0;               // linearizability searches that gave up
  std::uint64_t unknown_never_committed = 0;  // unknown writes the log shows never happened
  std::uint64_t watch_events = 0;
  std::uint64_t disk_full = 0;
  std::uint64_t reconfigs = 0;         // reconfig requests sent
  std::uint64_t reconfigs_ok = 0;      // ... answered Ok
  std::uint64_t request_timeouts = 0;  // connections a client gave up on for a silent server
};

constexpr std::int64_t kTickMs = 50;
const char* const kKeys[] = {"/k0", "/k1", "/k2"};
constexpr int kKeyCount = 3;

// A request on the wire, waiting for its reply.
struct Pending {
  std::int32_t xid = 0;
  OpCode op = OpCode::Ping;
  enum class Role : std::uint8_t { Other, LinWrite, SyncBeforeRead, LinRead, PlainRead, Seq };
  Role role = Role::Other;
  std::size_t lin = 0;  // index into the history for LinWrite, SyncBeforeRead, LinRead
  std::string path;
  std::int64_t sent_ms = 0;
};

struct Client {
  int id = 0;
  int node = -1;  // server of the current connection
  ConnId conn = 0;
  bool handshaking = false;
  SessionId session{0};
  std::string password = std::string(16, '\0');
  bool read_only_session = false;
  std::int32_t timeout_ms = 3000;
  bool can_be_read_only = false;
  bool silent = false;  // sends nothing, so the session expires
  std::int32_t next_xid = 1;
  std::deque<Pending> pending;
  pr::Bytes inbox;
  std::int64_t last_zxid_seen = 0;                 // highest reply zxid seen (xid > 0), ever
  std::int64_t conn_max_zxid = 0;                  // highest reply zxid of this connection
  std::map<std::string, std::int64_t> seen_mzxid;  // per key, this session
  std::set<std::string> watched;                   // paths watched on this connection
  std::int64_t last_sent_ms = 0;
  std::int64_t connect_started_ms = 0;
  std::uint64_t writes = 0;
  // A write or a sync answered (not refused) since the network healed.
  bool answered_since_heal = false;
};

struct Node {
  NodeId id;
  std::unique_ptr<MemoryReplicaStorage> storage;
  std::unique_ptr<Replica> replica;  // null while down
  std::int64_t steady_base = 0;
  std::int64_t skew_permille = 0;  // this clock runs (1000 + skew) / 1000 as fast
  std::int64_t wall_offset = 0;
  std::int64_t next_tick = 0;  // on this node's steady clock
  std::int64_t restart_at = -1;
  std::int64_t disk_full_until = -1;  // storage refuses writes until then
  std::set<ConnId> conns;
  bool async_persist = false;  // this boot's ReplicaConfig::persist_async
  // The Ready out for writing (persist_async), and when the write ends.
  const consensus::Ready* persist = nullptr;
  std::int64_t persist_done_at = -1;
};

struct Flight {
  std::int64_t at = 0;
  std::uint64_t order = 0;
  consensus::Message m;
};

struct HistoryMeta {
  bool excluded = false;  // the op did nothing, or the read was not linearizable
  bool sync_ok = false;
  SessionId session{0};  // of the request
};

// What identifies a write in the log: creates and sets write unique data;
// a delete is told apart by session, path and expected version only.
std::string write_signature(const znode::Txn& txn, SessionId session) {
  if (const auto* c = std::get_if<znode::CreateOp>(&txn))
    return "c|" + c->path + "|" + c->data.value_or("");
  if (const auto* s = std::get_if<znode::SetDataOp>(&txn))
    return "s|" + s->path + "|" + s->data.value_or("");
  if (const auto* d = std::get_if<znode::DeleteOp>(&txn)) {
    return "d|" + std::to_string(session.value()) + "|" + d->path + "|" +
           std::to_string(d->version);
  }
  return {};
}

std::string write_signature(const lin::Op& op, SessionId session) {
  switch (op.kind) {
    case lin::Kind::Create:
      return "c|" + op.key + "|" + op.data;
    case lin::Kind::Set:
      return "s|" + op.key + "|" + op.data;
    case lin::Kind::Delete:
      return "d|" + std::to_string(session.value()) + "|" + op.key + "|" +
             std::to_string(op.expected_version);
    case lin::Kind::Read:
      break;
  }
  return {};
}

class ClusterSim {
 public:
  explicit ClusterSim(const SimOptions& o) : o_(o), rng_(o.seed) {
    loss_permille_ = rng_.below(80);
    dup_permille_ = rng_.below(40);
    delay_max_ms_ = 2 + static_cast<std::int64_t>(rng_.below(25));
    std::vector<NodeId> voters;
    for (int i = 0; i < o_.nodes; ++i)
      voters.push_back(NodeId(static_cast<std::uint64_t>(i + 1)));
    for (NodeId id : voters)
      founding_.members.push_back(sim_member(id, MemberRole::Participant));
    for (int i = 0; i < o_.nodes; ++i) {
      Node n;
      n.id = voters[static_cast<std::size_t>(i)];
      n.storage = o_.membership
                      ? std::make_unique<MemoryReplicaStorage>(founding_changes(founding_))
                      : std::make_unique<MemoryReplicaStorage>(consensus::ConfState{voters, {}});
      n.steady_base = 1'000 + static_cast<std::int64_t>(rng_.below(100'000));
      n.skew_permille = static_cast<std::int64_t>(rng_.below(61)) - 30;
      n.wall_offset = 1'700'000'000'000 + static_cast<std::int64_t>(rng_.below(2'000)) - 1'000;
      nodes_.push_back(std::move(n));
    }
    for (int i = 0; i < o_.nodes; ++i)
      boot(i);
    const int clients = 4 + static_cast<int>(rng_.below(4));
    for (int i = 0; i < clients; ++i) {
      Client c;
      c.id = i;
      c.timeout_ms = 2000 + static_cast<std::int32_t>(rng_.below(3)) * 1000;
      c.can_be_read_only = rng_.chance(1, 3);
      clients_.push_back(std::move(c));
    }
  }

  SimResult run() {
    for (std::uint64_t step = 0; step < o_.steps && failure_.empty(); ++step) {
      advance(1 + static_cast<std::int64_t>(rng_.below(8)));
      faults();
      for (Client& c : clients_) {
        if (failure_.empty()) client_step(c, /*settling=*/false);
      }
    }
    if (failure_.empty()) settle();
    if (failure_.empty()) final_checks();
    res_.failure = failure_;
    if (o_.trace) {
      for (const auto& line : trace_)
        res_.trace += line + "\n";
    }
    return res_;
  }

 private:
  // ---- time -----------------------------------------------------------------

  std::int64_t steady(const Node& n) const {
    return n.steady_base + now_ * (1000 + n.skew_permille) / 1000;
  }
  std::int64_t wall(const Node& n) const { return steady(n) + n.wall_offset; }
  TimeMs st(const Node& n) const { return TimeMs(steady(n)); }
  TimeMs wa(const Node& n) const { return TimeMs(wall(n)); }

  void advance(std::int64_t ms) {
    for (std::int64_t i = 0; i < ms && failure_.empty(); ++i) {
      ++now_;
      for (int k = 0; k < o_.nodes; ++k) {
        Node& n = nodes_[static_cast<std::size_t>(k)];
        if (!n.replica) {
          if (n.restart_at >= 0 && now_ >= n.restart_at) boot(k);
          continue;
        }
        if (n.disk_full_until >= 0 && now_ >= n.disk_full_until) {
          n.disk_full_until = -1;
          n.storage->fail_writes_for_testing(false);
          trace("disk of node " + std::to_string(n.id.value()) + " takes writes again");
        }
        if (n.persist != nullptr && now_ >= n.persist_done_at) {
          const consensus::Ready* rd = n.persist;
          n.persist = nullptr;
          const Status written = n.storage->write(*rd);
          // As coordd's host does: the next write starts before what this
          // one committed applies (in the take_output() of collect()).
          if (const consensus::Ready* next = n.replica->persisted_next(written, st(n), wa(n))) {
            n.persist = next;
            n.persist_done_at = now_ + 1 + static_cast<std::int64_t>(rng_.below(20));
          }
          collect(k);
          if (!n.replica) continue;
        }
        if (steady(n) >= n.next_tick) {
          n.next_tick = steady(n) + kTickMs;
          n.replica->tick(st(n), wa(n));
          collect(k);
        }
      }
      deliver_due();
    }
  }

  // ---- the network ------------------------------------------------------------

  bool link_up(NodeId from, NodeId to) const {
    return !blocked_.contains({from.value(), to.value()});
  }

  void send_peer(consensus::Message m) {
    if (!link_up(m.from, m.to)) return;
    if (rng_.below(1000) < loss_permille_) return;
    const int copies = rng_.below(1000) < dup_permille_ ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      std::int64_t delay =
          1 + static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(delay_max_ms_)));
      if (rng_.chance(1, 50)) delay += static_cast<std::int64_t>(rng_.below(300));
      net_.push_back(Flight{now_ + delay, next_order_++, m});
    }
  }

  void deliver_due() {
    if (net_.empty()) return;
    std::vector<Flight> due;
    std::vector<Flight> later;
    for (auto& f : net_) {
      if (f.at <= now_) {
        due.push_back(std::move(f));
      } else {
        later.push_back(std::move(f));
      }
    }
    net_.swap(later);
    std::sort(due.begin(), due.end(),
              [](const Flight& a, const Flight& b) { return a.order < b.order; });
    for (auto& f : due) {
      if (!failure_.empty()) return;
      const int k = index_of(f.m.to);
      if (k < 0) continue;
      Node& n = nodes_[static_cast<std::size_t>(k)];
      if (!n.replica || !link_up(f.m.from, f.m.to)) continue;
      n.replica->peer_message(f.m, st(n), wa(n));
      collect(k);
    }
  }

  int index_of(NodeId id) const {
    for (int k = 0; k < o_.nodes; ++k) {
      if (nodes_[static_cast<std::size_t>(k)].id == id) return k;
    }
    return -1;
  }

  // ---- replicas ------------------------------------------------------------------

  ReplicaConfig config_for(int k) const {
    ReplicaConfig c;
    c.id = nodes_[static_cast<std::size_t>(k)].id;
    c.voters.clear();
    for (const Node& n : nodes_)
      c.voters.push_back(n.id);
    c.persist_async = nodes_[static_cast<std::size_t>(k)].async_persist;
    c.tick_ms = kTickMs;
    c.election_ticks = 10;
    c.heartbeat_ticks = 1;
    c.session_timeout_ms_min = 1'000;
    c.session_timeout_ms_max = 10'000;
    c.reap_interval_ms = 200;
    c.snapshot_entries = 1'000'000;  // snapshots are the simulator's to take
    c.sync_without_read_index_for_testing = o_.stale_sync_bug;
    if (o_.membership) {
      c.reconfig_enabled = true;
      c.founding = founding_;
    }
    return c;
  }

  static Member sim_member(NodeId id, MemberRole role) {
    const std::string host = "10.0.0." + std::to_string(id.value());
    return Member{id, HostPort{host, 2888}, 3888, role, HostPort{host, 2181}};
  }

  // ---- membership ------------------------------------------------------------------

  // A client with a session, nothing much in flight, on a running server,
  // acting as the super user from now on; null when there is none.
  Client* admin_client() {
    std::vector<Client*> ready;
    for (Client& c : clients_) {
      if (c.conn != 0 && !c.handshaking && c.session.value() != 0 && !c.read_only_session &&
          !c.silent && c.pending.size() < 3) {
        ready.push_back(&c);
      }
    }
    if (ready.empty()) return nullptr;
    Client* c = ready[rng_.below(ready.size())];
    nodes_[static_cast<std::size_t>(c->node)].replica->grant_super(c->conn);
    return c;
  }

  // One change of one server, as an operator would ask for it: remove a
  // participant or make it an observer (while enough participants stay),
  // promote or remove an observer, bring back a removed server.
  void reconfigure() {
    Client* c = admin_client();
    if (c == nullptr) return;
    const Membership& view = nodes_[static_cast<std::size_t>(c->node)].replica->membership();
    std::size_t participants = 0;
    for (const Member& m : view.members)
      participants += m.role == MemberRole::Participant ? 1 : 0;
    const NodeId x = nodes_[rng_.below(nodes_.size())].id;
    const Member* m = view.find(x);
    const std::size_t participants_min = o_.nodes == 3 ? 2 : 3;
    pr::ReconfigRequest req;
    if (m == nullptr) {
      req.joining_servers =
          sim_member(x, rng_.chance(1, 3) ? MemberRole::Observer : MemberRole::Participant).line();
    } else if (m->role == MemberRole::Observer) {
      if (rng_.chance(1, 3)) {
        req.leaving_servers = std::to_string(x.value());
      } else {
        req.joining_servers = sim_member(x, MemberRole::Participant).line();
      }
    } else if (participants > participants_min) {
      if (rng_.chance(1, 2)) {
        req.leaving_servers = std::to_string(x.value());
      } else {
        req.joining_servers = sim_member(x, MemberRole::Observer).line();
      }
    } else {
      return;
    }
    ++res_.reconfigs;
    trace("client " + std::to_string(c->id) + " reconfig joining '" + req.joining_servers +
          "' leaving '" + req.leaving_servers + "' at node " +
          std::to_string(nodes_[static_cast<std::size_t>(c->node)].id.value()));
    send(*c, OpCode::Reconfig, req, Pending::Role::Other);
  }

  // Before the final checks every server is a participant again, so that
  // each must catch up with the rest.
  bool membership_restored() const {
    for (const Node& n : nodes_) {
      if (!n.replica) return false;
      const Membership& m = n.replica->membership();
      if (m.members != founding_.members) return false;
    }
    return true;
  }

  // As an operator would: servers that are no members come back as
  // observers first (a participant must be in sync to be added, and a
  // server that is no member receives nothing), then every member becomes
  // a participant again.
  void restore_membership() {
    Client* c = admin_client();
    if (c == nullptr) return;
    const Membership& view = nodes_[static_cast<std::size_t>(c->node)].replica->membership();
    pr::ReconfigRequest req;
    for (const Member& m : founding_.members) {
      if (view.find(m.id) != nullptr) continue;
      req.joining_servers +=
          (req.joining_servers.empty() ? "" : ",") + sim_member(m.id, MemberRole::Observer).line();
    }
    if (req.joining_servers.empty()) {
      for (const Member& m : founding_.members)
        req.new_members += (req.new_members.empty() ? "" : ",") + m.line();
    }
    ++res_.reconfigs;
    trace("client " + std::to_string(c->id) + " restores the founding membership: joining '" +
          req.joining_servers + "' new members '" + req.new_members + "'");
    send(*c, OpCode::Reconfig, req, Pending::Role::Other);
  }

  void boot(int k) {
    Node& n = nodes_[static_cast<std::size_t>(k)];
    n.restart_at = -1;
    // The snapshot the storage holds, taken here or installed from a leader.
    std::optional<std::string> snap;
    if (n.storage->snapshot_meta().index.value() != 0) snap = n.storage->snapshot().data;
    n.async_persist = o_.async_persist >= 0 ? o_.async_persist == 1 : rng_.below(2) == 1;
    n.persist = nullptr;
    auto r = Replica::create(config_for(k), *n.storage, std::move(snap), Random(rng_.next_u64()),
                             [this] {
                               std::string p(16, '\0');
                               for (char& ch : p)
                                 ch = static_cast<char>(rng_.below(256));
                               return p;
                             });
    if (!r.ok())
      return fail("node " + std::to_string(n.id.value()) +
                  " does not restart: " + r.status().to_string());
    n.replica = std::move(r).value();
    n.next_tick = steady(n) + kTickMs;
    trace("boot node " + std::to_string(n.id.value()) + " applied " +
          std::to_string(n.replica->applied_zxid().value()));
    collect(k);
  }

  void crash(int k) {
    Node& n = nodes_[static_cast<std::size_t>(k)];
    if (!n.replica) return;
    ++res_.crashes;
    trace("crash node " + std::to_string(n.id.value()));
    if (n.persist != nullptr && rng_.below(2) == 1) {
      // The write was durable; the crash came before the replica heard.
      consensus::Ready rd = *n.persist;  // written() may take its entries
      if (n.storage->write(rd).ok()) n.storage->written(rd);
      trace("node " + std::to_string(n.id.value()) + " crashes with its last write durable");
    }
    n.persist = nullptr;
    n.replica.reset();
    for (Client& c : clients_) {
      if (c.node == k && c.conn != 0) connection_lost(c, "server crashed");
    }
    n.conns.clear();
    n.restart_at = now_ + 50 + static_cast<std::int64_t>(rng_.below(3'000));
  }

  void take_snapshot(int k) {
    Node& n = nodes_[static_cast<std::size_t>(k)];
    if (!n.replica) return;
    const consensus::SnapshotMeta meta = n.replica->snapshot_meta();
    if (meta.index <= n.storage->snapshot_meta().index) return;
    if (!o_.follower_snapshots) {
      // Only what every replica has committed, so that no follower needs
      // the snapshot itself.
      for (const Node& other : nodes_) {
        if (other.storage->hard_state().commit < meta.index) return;
      }
    }
    // Before compaction hides them; the snapshot's index is applied, so
    // committed, even when the stored commit index lags it (a Ready that
    // only raises it is not written).
    check_committed_entries(n, meta.index);
    std::string payload = n.replica->snapshot_payload();
    Status s = n.storage->snapshot_saved(meta, payload);
    if (!s.ok()) return fail("snapshot_saved: " + s.to_string());
    n.replica->snapshot_done(meta.index);
    ++res_.snapshots;
    trace("snapshot node " + std::to_string(n.id.value()) + " at " +
          std::to_string(meta.index.value()));
  }

  // Takes the replica's output: peer messages to the network, bytes to
  // clients; then the per-replica checks.
  void collect(int k) {
    Node& n = nodes_[static_cast<std::size_t>(k)];
    if (!n.replica) return;
    ReplicaOutput out = n.replica->take_output();
    if (out.persist != nullptr) {
      if (n.persist != nullptr) return fail("a second Ready out before the first was written");
      n.persist = out.persist;
      n.persist_done_at = now_ + 1 + static_cast<std::int64_t>(rng_.below(20));
    }
    for (auto& m : out.peer_messages)
      send_peer(std::move(m));
    for (auto& o : out.connections) {
      Client* c = by_conn(o.conn);
      if (c != nullptr) {
        c->inbox.insert(c->inbox.end(), o.bytes.begin(), o.bytes.end());
        read_frames(*c);
      }
      if (o.close) {
        if (n.replica) n.replica->connection_closed(o.conn);
        n.conns.erase(o.conn);
        c = by_conn(o.conn);
        if (c != nullptr) connection_lost(*c, "closed by the server");
      }
    }
    if (n.replica) check_replica(k);
  }

  void check_replica(int k) {
    Node& n = nodes_[static_cast<std::size_t>(k)];
    const Replica& r = *n.replica;
    // (d) the same tree at the same zxid.
    const std::int64_t z = r.applied_zxid().value();
    const std::uint64_t d = r.tree().digest();
    auto [it, fresh] = digests_.try_emplace(z, std::make_pair(d, n.id.value()));
    if (!fresh && it->second.first != d) {
      return fail("replicas differ at zxid " + std::to_string(z) + ": node " +
                  std::to_string(n.id.value()) + " and node " + std::to_string(it->second.second) +
                  " have different tree digests");
    }
    // (d) one leader per term; (c) needs to know who led each term.
    const consensus::RaftStatus s = r.raft_status();
    if (s.role == consensus::Role::Leader) {
      auto [l, first] = leaders_.try_emplace(s.term.value(), n.id.value());
      if (first) {
        ++res_.elections;
        trace("node " + std::to_string(n.id.value()) + " leads term " +
              std::to_string(s.term.value()));
      }
      if (l->second != n.id.value()) {
        return fail("two leaders in term " + std::to_string(s.term.value()) + ": nodes " +
                    std::to_string(l->second) + " and " + std::to_string(n.id.value()));
      }
    }
    // (e) ephemerals only of live sessions.
    for (SessionId sid : r.tree().sessions_with_ephemerals()) {
      if (!r.has_session(sid)) {
        return fail("node " + std::to_string(n.id.value()) + " holds ephemerals of session 0x" +
                    hex(sid.value()) + ", which it does not hold");
      }
    }
  }

  // (c) and (d) on the committed entries a storage holds: the same entry at
  // the same index everywhere, and expiry proposed only by the leader of
  // the entry's term.
  void check_committed_entries(const Node& n, LogIndex committed = LogIndex(0)) {
    const LogIndex first = n.storage->first_index();
    const LogIndex commit =
        std::min(std::max(n.storage->hard_state().commit, committed), n.storage->last_index());
    if (commit < first) return;
    std::vector<consensus::Entry> entries;
    n.storage->entries(first, commit.next(), std::numeric_limits<std::size_t>::max(), entries);
    for (const consensus::Entry& e : entries) {
      const std::uint64_t h = std::hash<std::string>{}(e.data);
      auto [it, fresh] = committed_.try_emplace(e.index.value(), std::make_pair(e.term.value(), h));
      if (!fresh && (it->second.first != e.term.value() || it->second.second != h)) {
        return fail("committed entry " + std::to_string(e.index.value()) + " differs on node " +
                    std::to_string(n.id.value()));
      }
      if (!fresh || e.type != consensus::EntryType::Normal || e.data.empty()) continue;
      auto cmd = decode_command(e.data);
      if (!cmd.ok()) {
        return fail("committed entry " + std::to_string(e.index.value()) + " does not decode");
      }
      if (const auto* t = std::get_if<TxnCmd>(&cmd->body)) {
        const std::string sig = write_signature(t->txn, t->session);
        committed_writes_.insert(sig);
        if (!sig.empty()) {
          committed_log_[e.index.value()] = sig + " by node " +
                                            std::to_string(cmd->origin.node.value()) + " term " +
                                            std::to_string(e.term.value());
        }
      }
      const auto* close = std::get_if<CloseSessionCmd>(&cmd->body);
      if (close == nullptr || !close->expired) continue;
      ++res_.expired_sessions;
      auto l = leaders_.find(e.term.value());
      if (l == leaders_.end() || l->second != cmd->origin.node.value()) {
        return fail("session 0x" + hex(close->session.value()) + " expired by entry " +
                    std::to_string(e.index.value()) + " of term " + std::to_string(e.term.value()) +
                    ", proposed by node " + std::to_string(cmd->origin.node.value()) +
                    ", but the leader of that term was " +
                    (l == leaders_.end() ? std::string("never seen") : std::to_string(l->second)));
      }
    }
  }

  // ---- faults ------------------------------------------------------------------

  void faults() {
    const std::uint64_t dice = rng_.below(10'000);
    if (dice < 25) {
      partition();
    } else if (dice < 50) {
      if (!blocked_.empty()) trace("heal");
      blocked_.clear();
    } else if (dice < 65) {
      crash(static_cast<int>(rng_.below(static_cast<std::uint64_t>(o_.nodes))));
    } else if (dice < 95) {
      take_snapshot(static_cast<int>(rng_.below(static_cast<std::uint64_t>(o_.nodes))));
    } else if (dice < 110) {
      // The wall clock jumps, forward or back; the steady clock does not.
      Node& n = nodes_[rng_.below(static_cast<std::uint64_t>(o_.nodes))];
      n.wall_offset += static_cast<std::int64_t>(rng_.below(20'001)) - 10'000;
    } else if (dice < 115) {
      // A client drops its connection (its outcome unknown), as on a
      // network blip between it and the server.
      Client& c = clients_[rng_.below(clients_.size())];
      if (c.conn != 0) drop(c, "client dropped the connection");
    } else if (dice < 135) {
      Client& c = clients_[rng_.below(clients_.size())];
      c.silent = !c.silent;
    } else if (dice < 140 && o_.disk_faults) {
      // The disk fills up for a while: the replica turns read-only and
      // retries every tick.
      Node& n = nodes_[rng_.below(static_cast<std::uint64_t>(o_.nodes))];
      n.storage->fail_writes_for_testing(true);
      n.disk_full_until = now_ + 50 + static_cast<std::int64_t>(rng_.below(2'000));
      ++res_.disk_full;
      trace("disk of node " + std::to_string(n.id.value()) + " is full");
    } else if (dice < 160 && o_.membership) {
      reconfigure();
    }
  }

  void partition() {
    blocked_.clear();
    ++res_.partitions;
    const auto n = static_cast<std::uint64_t>(o_.nodes);
    std::ostringstream os;
    switch (rng_.below(3)) {
      case 0: {  // two sides
        std::vector<int> side(n);
        for (auto& s : side)
          s = static_cast<int>(rng_.below(2));
        for (std::uint64_t a = 0; a < n; ++a) {
          for (std::uint64_t b = 0; b < n; ++b) {
            if (side[a] != side[b]) block(a, b);
          }
        }
        os << "partition sides";
        for (std::uint64_t a = 0; a < n; ++a)
          os << " " << nodes_[a].id.value() << ":" << side[a];
        break;
      }
      case 1: {  // one node cut off
        const std::uint64_t a = rng_.below(n);
        for (std::uint64_t b = 0; b < n; ++b) {
          if (a != b) {
            block(a, b);
            block(b, a);
          }
        }
        os << "isolate node " << nodes_[a].id.value();
        break;
      }
      default: {  // random one-way links
        for (std::uint64_t a = 0; a < n; ++a) {
          for (std::uint64_t b = 0; b < n; ++b) {
            if (a != b && rng_.chance(1, 3)) block(a, b);
          }
        }
        os << "partition one-way links:";
        for (auto [a, b] : blocked_)
          os << " " << a << "->" << b;
      }
    }
    trace(os.str());
  }

  void block(std::uint64_t a, std::uint64_t b) {
    blocked_.insert({nodes_[a].id.value(), nodes_[b].id.value()});
  }

  // ---- clients -------------------------------------------------------------------

  Client* by_conn(ConnId id) {
    for (auto& c : clients_) {
      if (c.conn == id && id != 0) return &c;
    }
    return nullptr;
  }

  void client_step(Client& c, bool settling) {
    if (c.conn == 0) {
      if (!c.silent && rng_.chance(1, 4)) connect(c);
      return;
    }
    if (c.handshaking) {
      if (now_ - c.connect_started_ms > c.timeout_ms) drop(c, "handshake timed out");
      return;
    }
    // A ZooKeeper client gives up on a server that answers nothing for
    // two thirds of the session timeout.
    if (!c.pending.empty() && now_ - c.pending.front().sent_ms > c.timeout_ms * 2 / 3) {
      ++res_.request_timeouts;
      const Node& n = nodes_[static_cast<std::size_t>(c.node)];
      return drop(
          c, std::string("request timed out: ") + std::string(pr::op_name(c.pending.front().op)) +
                 " xid " + std::to_string(c.pending.front().xid) + " at node " +
                 std::to_string(n.id.value()) +
                 (n.replica
                      ? std::string(" (") +
                            std::string(consensus::to_string(n.replica->raft_status().role)) + ")"
                      : std::string()));
    }
    if (c.silent) return;
    if (c.pending.empty() && !quiet_ && rng_.chance(1, 150)) {
      // Moves to another server with nothing in flight, as a client
      // rebalancing does: sessions made on one server get used on others.
      drop(c, "client moves");
      return connect(c);
    }
    if (now_ - c.last_sent_ms > c.timeout_ms / 3) {
      send(c, OpCode::Ping, pr::Empty{}, Pending::Role::Other, pr::xid_ping);
      if (c.conn == 0) return;
    }
    if (quiet_ || c.pending.size() >= 4 || !rng_.chance(1, settling ? 20 : 6)) return;
    request(c, settling);
  }

  void connect(Client& c) {
    // As a ZooKeeper client, the next server of its list: another one
    // than the last, when another is up.
    std::vector<int> up;
    for (int k = 0; k < o_.nodes; ++k) {
      if (nodes_[static_cast<std::size_t>(k)].replica && k != c.node) up.push_back(k);
    }
    if (up.empty() && c.node >= 0 && nodes_[static_cast<std::size_t>(c.node)].replica) {
      up.push_back(c.node);
    }
    if (up.empty()) return;
    const int k = up[rng_.below(up.size())];
    Node& n = nodes_[static_cast<std::size_t>(k)];
    c.node = k;
    c.conn = next_conn_++;
    c.handshaking = true;
    c.connect_started_ms = now_;
    c.last_sent_ms = now_;
    c.conn_max_zxid = 0;
    c.watched.clear();
    c.inbox.clear();
    n.conns.insert(c.conn);
    n.replica->connection_opened(c.conn, "10.0.1." + std::to_string(c.id), st(n), wa(n));
    pr::ConnectRequest req;
    req.timeout_ms = c.timeout_ms;
    req.session_id = c.session;
    req.password = c.password;
    req.last_zxid_seen = Zxid(c.last_zxid_seen);
    req.read_only = c.can_be_read_only;
    pr::Bytes frame;
    pr::append_connect_request_frame(frame, req);
    trace("client " + std::to_string(c.id) + " connects to node " + std::to_string(n.id.value()) +
          " session 0x" + hex(c.session.value()) + " lzs " + std::to_string(c.last_zxid_seen));
    n.replica->bytes_received(c.conn, pr::ByteSpan(frame), st(n), wa(n));
    collect(k);
  }

  void drop(Client& c, const std::string& why) {
    if (c.conn == 0) return;
    Node& n = nodes_[static_cast<std::size_t>(c.node)];
    const ConnId conn = c.conn;
    connection_lost(c, why);
    if (n.replica) {
      n.replica->connection_closed(conn);
      n.conns.erase(conn);
      collect(c.node);
    }
  }

  // The connection is gone: what was in flight has an unknown outcome.
  void connection_lost(Client& c, const std::string& why) {
    trace("client " + std::to_string(c.id) + " loses connection " + std::to_string(c.conn) + " (" +
          why + "), " + std::to_string(c.pending.size()) + " requests in flight");
    for (const Pending& p : c.pending) {
      if (p.role == Pending::Role::LinWrite) {
        history_[p.lin].outcome = lin::Outcome::Unknown;
        history_[p.lin].ret = lin::never;
        ++res_.unknown_writes;
      } else if (p.role == Pending::Role::LinRead || p.role == Pending::Role::SyncBeforeRead) {
        meta_[p.lin].excluded = true;
      }
    }
    c.pending.clear();
    c.conn = 0;
    c.handshaking = false;
    c.inbox.clear();
    c.watched.clear();
  }

  void new_session(Client& c) {
    c.session = SessionId(0);
    c.password = std::string(16, '\0');
    c.read_only_session = false;
    c.seen_mzxid.clear();
    // lastZxidSeen stays: a client never goes back in time.
  }

  std::size_t add_history(lin::Op op) {
    op.call = ++clock_;
    op.ret = lin::never;
    op.outcome = lin::Outcome::Unknown;
    history_.push_back(std::move(op));
    meta_.emplace_back();
    meta_.back().session = session_of_next_;
    return history_.size() - 1;
  }

  void send(Client& c, OpCode op, const pr::RequestBody& body, Pending::Role role,
            std::int32_t xid = 0, std::size_t lin_index = 0, std::string path = {}) {
    if (c.conn == 0) return;
    Node& n = nodes_[static_cast<std::size_t>(c.node)];
    if (!n.replica->accepts_input(c.conn)) return;
    if (xid == 0) xid = c.next_xid++;
    c.pending.push_back(Pending{xid, op, role, lin_index, std::move(path), now_});
    c.last_sent_ms = now_;
    pr::Bytes frame;
    pr::append_request_frame(frame, pr::RequestHeader{xid, op}, body);
    n.replica->bytes_received(c.conn, pr::ByteSpan(frame), st(n), wa(n));
    collect(c.node);
  }

  std::string fresh_value(Client& c) {
    session_of_next_ = c.session;
    return "c" + std::to_string(c.id) + "w" + std::to_string(++c.writes);
  }

  // Half the conditional writes name a version the node may well have.
  std::int32_t expected_version() {
    if (rng_.chance(1, 2)) return -1;
    return static_cast<std::int32_t>(rng_.below(4));
  }

  void request(Client& c, bool settling) {
    const std::string key = kKeys[rng_.below(kKeyCount)];
    const std::uint64_t dice = rng_.below(settling ? 52 : 100);
    if (dice < 12) {
      lin::Op op;
      op.key = key;
      op.kind = lin::Kind::Create;
      op.data = fresh_value(c);
      const std::string data = op.data;
      const std::size_t i = add_history(std::move(op));
      return send(c, OpCode::Create2,
                  pr::CreateRequest{key, data, open_acl_unsafe(), CreateMode::Persistent},
                  Pending::Role::LinWrite, 0, i, key);
    }
    if (dice < 30) {
      lin::Op op;
      op.key = key;
      op.kind = lin::Kind::Set;
      op.data = fresh_value(c);
      op.expected_version = expected_version();
      const std::string data = op.data;
      const std::int32_t ev = op.expected_version;
      const std::size_t i = add_history(std::move(op));
      return send(c, OpCode::SetData, pr::SetDataRequest{key, data, ev}, Pending::Role::LinWrite, 0,
                  i, key);
    }
    if (dice < 36) {
      session_of_next_ = c.session;
      lin::Op op;
      op.key = key;
      op.kind = lin::Kind::Delete;
      op.expected_version = expected_version();
      const std::int32_t ev = op.expected_version;
      const std::size_t i = add_history(std::move(op));
      return send(c, OpCode::Delete, pr::DeleteRequest{key, ev}, Pending::Role::LinWrite, 0, i,
                  key);
    }
    if (dice < 52) {
      // A linearizable read: sync, then the read, pipelined.
      lin::Op op;
      op.key = key;
      op.kind = lin::Kind::Read;
      const std::size_t i = add_history(std::move(op));
      send(c, OpCode::Sync, pr::SyncRequest{key}, Pending::Role::SyncBeforeRead, 0, i, key);
      return send(c, OpCode::GetData, pr::GetDataRequest{key, false}, Pending::Role::LinRead, 0, i,
                  key);
    }
    if (dice < 64) {
      const bool watch = rng_.chance(1, 2);
      if (watch) c.watched.insert(key);
      return send(c, OpCode::GetData, pr::GetDataRequest{key, watch}, Pending::Role::PlainRead, 0,
                  0, key);
    }
    if (dice < 68) {
      const bool watch = rng_.chance(1, 2);
      if (watch) c.watched.insert(key);
      return send(c, OpCode::Exists, pr::ExistsRequest{key, watch}, Pending::Role::Other, 0, 0,
                  key);
    }
    if (dice < 73) {
      if (seq_count_ >= 60) return;
      ++seq_count_;
      return send(c, OpCode::Create2,
                  pr::CreateRequest{"/q/s-", std::string("s"), open_acl_unsafe(),
                                    CreateMode::PersistentSequential},
                  Pending::Role::Seq, 0, 0, "/q");
    }
    if (dice < 75) {
      return send(c, OpCode::Create2,
                  pr::CreateRequest{"/q", std::string(), open_acl_unsafe(), CreateMode::Persistent},
                  Pending::Role::Other, 0, 0, "/q");
    }
    if (dice < 78) {
      const bool watch = rng_.chance(1, 2);
      if (watch) c.watched.insert("/q");
      return send(c, OpCode::GetChildren2, pr::GetChildren2Request{"/q", watch},
                  Pending::Role::Other, 0, 0, "/q");
    }
    if (dice < 88) {
      const std::string path = "/e" + std::to_string(rng_.below(3));
      return send(
          c, OpCode::Create2,
          pr::CreateRequest{path, std::string("e"), open_acl_unsafe(), CreateMode::Ephemeral},
          Pending::Role::Other, 0, 0, path);
    }
    if (dice < 91) {
      const std::string path = "/e" + std::to_string(rng_.below(3));
      return send(c, OpCode::Delete, pr::DeleteRequest{path, -1}, Pending::Role::Other, 0, 0, path);
    }
    if (dice < 92 && !settling) {
      return send(c, OpCode::CloseSession, pr::Empty{}, Pending::Role::Other);
    }
    return send(c, OpCode::Sync, pr::SyncRequest{"/"}, Pending::Role::Other, 0, 0, "/");
  }

  static lin::Outcome outcome_of(ErrorCode e) {
    switch (e) {
      case ErrorCode::Ok:
        return lin::Outcome::Ok;
      case ErrorCode::NodeExists:
        return lin::Outcome::NodeExists;
      case ErrorCode::NoNode:
        return lin::Outcome::NoNode;
      case ErrorCode::BadVersion:
        return lin::Outcome::BadVersion;
      default:
        return lin::Outcome::Unknown;  // did nothing
    }
  }

  void read_frames(Client& c) {
    std::size_t pos = 0;
    while (c.conn != 0 && failure_.empty()) {
      auto cut = pr::cut_frame(pr::ByteSpan(c.inbox).subspan(pos));
      if (cut.state != pr::FrameState::Frame) break;
      pos += cut.consumed;
      if (c.handshaking) {
        handshake_reply(c, cut.payload);
        continue;
      }
      pr::JuteReader r(cut.payload);
      auto h = pr::decode_reply_header(r);
      if (!h.ok()) return fail("undecodable reply header");
      if (h->xid == pr::xid_watch_event) {
        watch_event(c, *h, r.rest());
        continue;
      }
      reply(c, *h, r.rest());
    }
    if (c.conn != 0) {
      c.inbox.erase(c.inbox.begin(), c.inbox.begin() + static_cast<std::ptrdiff_t>(pos));
    }
  }

  void handshake_reply(Client& c, pr::ByteSpan payload) {
    c.handshaking = false;
    auto resp = pr::decode_connect_response(payload);
    if (!resp.ok()) return fail("bad handshake reply: " + resp.status().to_string());
    const Node& n = nodes_[static_cast<std::size_t>(c.node)];
    if (resp->session_id.value() == 0) {
      trace("client " + std::to_string(c.id) + ": session 0x" + hex(c.session.value()) +
            " expired or unknown at node " + std::to_string(n.id.value()));
      new_session(c);
      return;
    }
    if (c.session.value() != 0 && resp->session_id != c.session && !c.read_only_session &&
        !resp->read_only) {
      return fail("client " + std::to_string(c.id) + " resumed session 0x" +
                  hex(c.session.value()) + " but got 0x" + hex(resp->session_id.value()));
    }
    if (resp->session_id != c.session) c.seen_mzxid.clear();
    // (f) no server serves a client that saw a newer state.
    if (n.replica && n.replica->applied_zxid().value() < c.last_zxid_seen) {
      return fail("node " + std::to_string(n.id.value()) + " at zxid " +
                  std::to_string(n.replica->applied_zxid().value()) + " accepted client " +
                  std::to_string(c.id) + " that has seen zxid " + std::to_string(c.last_zxid_seen));
    }
    c.session = resp->session_id;
    c.password = resp->password;
    c.read_only_session = resp->read_only;
    trace("client " + std::to_string(c.id) + " has session 0x" + hex(c.session.value()) +
          " at node " + std::to_string(n.id.value()) + (resp->read_only ? " (read-only)" : ""));
  }

  void watch_event(Client& c, const pr::ReplyHeader& h, pr::ByteSpan rest) {
    auto ev = pr::decode_watcher_event(rest);
    if (!ev.ok()) return fail("undecodable watch event");
    // (f) an event precedes every reply that reflects its change.
    if (h.zxid.value() <= c.conn_max_zxid) {
      return fail("client " + std::to_string(c.id) + ": watch event for " + ev->path + " at zxid " +
                  std::to_string(h.zxid.value()) + " after a reply at zxid " +
                  std::to_string(c.conn_max_zxid) + " on the same connection");
    }
    ++res_.watch_events;
    if (!c.watched.contains(ev->path)) {
      return fail("client " + std::to_string(c.id) + ": watch event for " + ev->path +
                  ", which it never watched on this connection");
    }
  }

  void reply(Client& c, const pr::ReplyHeader& h, pr::ByteSpan rest) {
    if (c.pending.empty() || c.pending.front().xid != h.xid) {
      return fail(
          "client " + std::to_string(c.id) + ": reply xid " + std::to_string(h.xid) +
          " out of order (expected " +
          (c.pending.empty() ? std::string("none") : std::to_string(c.pending.front().xid)) + ")");
    }
    const Pending p = c.pending.front();
    c.pending.pop_front();
    const std::uint64_t t = ++clock_;
    const std::int64_t z = h.zxid.value();
    if (z > 0) {
      // (f) replies' zxids never go back, on a session across servers.
      if (h.xid > 0 && z < c.last_zxid_seen) {
        return fail("client " + std::to_string(c.id) + " session 0x" + hex(c.session.value()) +
                    ": reply zxid " + std::to_string(z) + " after one at " +
                    std::to_string(c.last_zxid_seen) + " (node " +
                    std::to_string(nodes_[static_cast<std::size_t>(c.node)].id.value()) + ")");
      }
      if (h.xid > 0) c.last_zxid_seen = std::max(c.last_zxid_seen, z);
      c.conn_max_zxid = std::max(c.conn_max_zxid, z);
    }
    std::optional<pr::ResponseBody> body;
    if (h.err == ErrorCode::Ok && p.op != OpCode::Ping && p.op != OpCode::CloseSession) {
      auto b = pr::decode_response_body(p.op, rest);
      if (!b.ok()) return fail("undecodable reply body: " + b.status().to_string());
      body = std::move(b).value();
    }
    switch (p.role) {
      case Pending::Role::LinWrite: {
        lin::Op& op = history_[p.lin];
        op.outcome = outcome_of(h.err);
        if (o_.trace) {
          trace("client " + std::to_string(c.id) + " xid " + std::to_string(h.xid) + ": " +
                std::string(pr::op_name(p.op)) + " " + p.path + " -> " +
                std::string(error_name(h.err)) + " zxid " + std::to_string(z));
        }
        if (op.outcome == lin::Outcome::Unknown) {
          meta_[p.lin].excluded = true;  // refused: did nothing
          break;
        }
        op.ret = t;
        op.label = label(c, h);
        c.answered_since_heal = true;
        if (h.err == ErrorCode::Ok) {
          ++res_.acked_writes;
          acked_.push_back({p.lin, z});
          if (const auto* s = std::get_if<pr::SetDataResponse>(&*body)) {
            op.version = s->stat.version;
            saw(c, p.path, s->stat.mzxid, z);
          } else if (const auto* cr = std::get_if<pr::Create2Response>(&*body)) {
            saw(c, p.path, cr->stat.mzxid, z);
          }
        }
        break;
      }
      case Pending::Role::SyncBeforeRead:
        meta_[p.lin].sync_ok = h.err == ErrorCode::Ok;
        if (h.err == ErrorCode::Ok) c.answered_since_heal = true;
        break;
      case Pending::Role::LinRead:
      case Pending::Role::PlainRead: {
        const bool linearizable = p.role == Pending::Role::LinRead && meta_[p.lin].sync_ok;
        if (p.role == Pending::Role::LinRead && !linearizable) meta_[p.lin].excluded = true;
        if (h.err == ErrorCode::Ok) {
          const auto& g = std::get<pr::GetDataResponse>(*body);
          saw(c, p.path, g.stat.mzxid, z);
          if (linearizable) {
            lin::Op& op = history_[p.lin];
            op.outcome = lin::Outcome::Ok;
            op.data = g.data.value_or("");
            op.version = g.stat.version;
          }
        } else if (linearizable && h.err == ErrorCode::NoNode) {
          history_[p.lin].outcome = lin::Outcome::NoNode;
        } else if (linearizable) {
          meta_[p.lin].excluded = true;
        }
        if (linearizable && !meta_[p.lin].excluded) {
          history_[p.lin].ret = t;
          history_[p.lin].label = label(c, h);
          ++res_.linearizable_reads;
        }
        break;
      }
      case Pending::Role::Seq:
        if (h.err == ErrorCode::Ok) {
          const auto& cr = std::get<pr::Create2Response>(*body);
          seqs_.push_back({cr.path, z});
        }
        break;
      case Pending::Role::Other:
        if (p.op == OpCode::Reconfig) {
          trace("client " + std::to_string(c.id) + " reconfig answered " +
                std::string(error_name(h.err)) + " at zxid " + std::to_string(z));
          if (h.err == ErrorCode::Ok) {
            ++res_.reconfigs_ok;
            // Answered once the new membership applied on this server.
            const auto& config = std::get<pr::GetDataResponse>(*body);
            const Node& n = nodes_[static_cast<std::size_t>(c.node)];
            if (n.replica && config.data != n.replica->membership().config_text() &&
                n.replica->membership().version <= z) {
              return fail("reconfig answered with a config that node " +
                          std::to_string(n.id.value()) + " does not show");
            }
          }
        }
        if (p.op == OpCode::CloseSession && h.err == ErrorCode::Ok) {
          trace("client " + std::to_string(c.id) + " closed session 0x" + hex(c.session.value()));
          new_session(c);
        }
        break;
    }
  }

  // Plain reads: per session, a node's mzxid never goes back, and a reply
  // never shows a change newer than its own zxid.
  void saw(Client& c, const std::string& path, std::int64_t mzxid, std::int64_t reply_zxid) {
    if (reply_zxid > 0 && mzxid > reply_zxid) {
      return fail("client " + std::to_string(c.id) + ": " + path + " with mzxid " +
                  std::to_string(mzxid) + " in a reply at zxid " + std::to_string(reply_zxid));
    }
    auto [it, fresh] = c.seen_mzxid.try_emplace(path, mzxid);
    if (!fresh && mzxid < it->second) {
      return fail("client " + std::to_string(c.id) + " session 0x" + hex(c.session.value()) +
                  ": read " + path + " at mzxid " + std::to_string(mzxid) +
                  " after seeing it at mzxid " + std::to_string(it->second) + " (node " +
                  std::to_string(nodes_[static_cast<std::size_t>(c.node)].id.value()) + ")");
    }
    it->second = std::max(it->second, mzxid);
  }

  std::string label(const Client& c, const pr::ReplyHeader& h) const {
    return "client " + std::to_string(c.id) + " session 0x" + hex(c.session.value()) + " node " +
           std::to_string(nodes_[static_cast<std::size_t>(c.node)].id.value()) + " xid " +
           std::to_string(h.xid) + " zxid " + std::to_string(h.zxid.value());
  }

  // ---- heal, settle and the final checks ---------------------------------------

  void settle() {
    trace("heal and settle");
    blocked_.clear();
    loss_permille_ = 0;
    dup_permille_ = 0;
    for (int k = 0; k < o_.nodes; ++k) {
      Node& n = nodes_[static_cast<std::size_t>(k)];
      n.storage->fail_writes_for_testing(false);
      n.disk_full_until = -1;
      if (!n.replica) boot(k);
    }
    for (Client& c : clients_) {
      c.silent = false;
      c.answered_since_heal = false;
    }
    // Everything committed reaches every replica, and every client is
    // served again, within a bound.
    constexpr std::int64_t settle_ms_max = 30'000;
    const std::int64_t start = now_;
    bool converged = false;
    while (failure_.empty() && now_ - start < settle_ms_max) {
      advance(5);
      for (Client& c : clients_) {
        if (failure_.empty()) client_step(c, /*settling=*/true);
      }
      if (o_.membership && (now_ - start) % 500 == 0 && !membership_restored()) {
        restore_membership();
      }
      if (now_ - start < 2'000) continue;
      converged = all_agree() && (!o_.membership || membership_restored());
      bool served = true;
      for (const Client& c : clients_)
        served = served && c.answered_since_heal;
      if (converged && served) break;
    }
    if (!failure_.empty()) return;
    // Quiet: the clients' last requests drain; they only ping, so that
    // their sessions do not expire and every replica can catch up.
    quiet_ = true;
    for (int i = 0; i < 2000 && failure_.empty(); ++i) {  // 10 s
      advance(5);
      bool drained = true;
      for (Client& c : clients_) {
        client_step(c, true);
        drained = drained && c.pending.empty();
      }
      if (drained && all_agree()) break;
    }
    if (!failure_.empty()) return;
    if (!all_agree()) {
      return fail("no convergence " + std::to_string(now_ - start) +
                  " ms after healing:" + cluster_state());
    }
    for (const Client& c : clients_) {
      if (!c.answered_since_heal) {
        return fail(
            "client " + std::to_string(c.id) + " got no reply in " + std::to_string(settle_ms_max) +
            " ms after healing: no write or sync of it was answered (liveness);" + cluster_state());
      }
    }
  }

  std::string cluster_state() const {
    std::ostringstream os;
    for (const Node& n : nodes_) {
      os << " node " << n.id.value();
      if (!n.replica) {
        os << " down;";
        continue;
      }
      const auto s = n.replica->raft_status();
      os << " " << consensus::to_string(s.role) << " term " << s.term.value() << " commit "
         << s.commit.value() << " applied " << n.replica->applied_zxid().value()
         << (n.replica->read_only() ? " read-only" : "") << ";";
    }
    return os.str();
  }

  bool all_agree() const {
    std::optional<std::int64_t> z;
    for (const Node& n : nodes_) {
      if (!n.replica) return false;
      const auto s = n.replica->raft_status();
      if (s.leader.value() == 0) return false;
      if (n.replica->applied_zxid().value() != static_cast<std::int64_t>(s.commit.value())) {
        return false;
      }
      if (z && *z != n.replica->applied_zxid().value()) return false;
      z = n.replica->applied_zxid().value();
    }
    return true;
  }

  void final_checks() {
    // (d) every replica has the same tree now.
    const std::uint64_t d0 = nodes_[0].replica->tree().digest();
    for (const Node& n : nodes_) {
      if (n.replica->tree().digest() != d0) {
        return fail("after settling, node " + std::to_string(n.id.value()) +
                    "'s tree differs from node " + std::to_string(nodes_[0].id.value()) + "'s");
      }
      // The stored commit index may lag (a Ready that only raises it is
      // not written): the replica's own says what committed.
      check_committed_entries(n, n.replica->raft_status().commit);
      if (!failure_.empty()) return;
    }
    // (b) every acknowledged write's effect is there, unless a later write
    // (acknowledged, or of unknown outcome) may have changed it.
    for (int k = 0; k < kKeyCount; ++k) {
      const std::string key = kKeys[k];
      const lin::Op* last = nullptr;
      std::int64_t last_zxid = 0;
      for (const auto& [i, z] : acked_) {
        if (history_[i].key == key && z > last_zxid && history_[i].outcome == lin::Outcome::Ok) {
          last = &history_[i];
          last_zxid = z;
        }
      }
      if (last == nullptr) continue;
      bool unknown_after = false;
      for (std::size_t i = 0; i < history_.size(); ++i) {
        if (history_[i].key == key && history_[i].kind != lin::Kind::Read &&
            history_[i].outcome == lin::Outcome::Unknown && !meta_[i].excluded) {
          unknown_after = true;
        }
      }
      for (const Node& n : nodes_) {
        auto s = n.replica->tree().exists(key);
        const bool exists = s.ok();
        std::string lost;
        if (last->kind == lin::Kind::Delete) {
          if (exists && s->czxid < last_zxid)
            lost = "the node deleted at zxid " + std::to_string(last_zxid) + " is back";
        } else if (exists && s->mzxid < last_zxid) {
          lost = "mzxid " + std::to_string(s->mzxid) + " < the acknowledged write at zxid " +
                 std::to_string(last_zxid);
        } else if (!exists && !unknown_after) {
          lost = "the node written at zxid " + std::to_string(last_zxid) + " is gone";
        }
        if (!lost.empty()) {
          return fail("acknowledged write lost on node " + std::to_string(n.id.value()) + ": " +
                      key + ": " + lost + " (" + lin::describe(*last) + ")");
        }
      }
    }
    // (b), (ordering) every acknowledged sequential node is on every
    // replica, and sequence numbers grow with zxids.
    std::sort(seqs_.begin(), seqs_.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
    for (std::size_t i = 1; i < seqs_.size(); ++i) {
      if (seqs_[i].first <= seqs_[i - 1].first) {
        return fail("sequential node " + seqs_[i].first + " (zxid " +
                    std::to_string(seqs_[i].second) + ") does not follow " + seqs_[i - 1].first +
                    " (zxid " + std::to_string(seqs_[i - 1].second) + ")");
      }
    }
    for (const auto& [path, z] : seqs_) {
      for (const Node& n : nodes_) {
        if (!n.replica->tree().exists(path).ok()) {
          return fail("acknowledged sequential node " + path + " (zxid " + std::to_string(z) +
                      ") missing on node " + std::to_string(n.id.value()));
        }
      }
    }
    // (a) with the final state of each key as one more read, which also
    // catches a write lost by every replica.
    for (int k = 0; k < kKeyCount; ++k) {
      lin::Op op;
      op.key = kKeys[k];
      op.kind = lin::Kind::Read;
      op.call = ++clock_;
      op.ret = ++clock_;
      op.label = "final state after settling";
      auto v = nodes_[0].replica->tree().get_data(op.key, znode::Caller{});
      if (v.ok()) {
        op.outcome = lin::Outcome::Ok;
        op.data = v->data ? std::string(*v->data) : std::string();
        op.version = v->stat.version;
      } else {
        op.outcome = lin::Outcome::NoNode;
      }
      history_.push_back(op);
      meta_.emplace_back();
    }
    // A write whose reply never came and that no committed entry carries
    // never happened. What did commit may have succeeded or failed: its
    // outcome stays unknown.
    std::vector<lin::Op> h;
    for (std::size_t i = 0; i < history_.size(); ++i) {
      if (meta_[i].excluded) continue;
      if (history_[i].outcome == lin::Outcome::Unknown && history_[i].kind != lin::Kind::Read &&
          !committed_writes_.contains(write_signature(history_[i], meta_[i].session))) {
        ++res_.unknown_never_committed;
        continue;
      }
      h.push_back(history_[i]);
    }
    const lin::Result r = lin::check(h);
    res_.unknown_keys = r.unknown_keys;
    if (r.verdict == lin::Verdict::NotLinearizable) {
      std::string why;
      for (const auto& k : r.keys) {
        if (k.verdict != lin::Verdict::NotLinearizable) continue;
        why += k.explanation + "\n  committed writes of " + k.key + " (index: op):";
        for (const auto& [index, w] : committed_log_) {
          if (w.find("|" + k.key + "|") != std::string::npos) {
            why += "\n    " + std::to_string(index) + ": " + w;
          }
        }
        why += "\n";
      }
      return fail("linearizability violated: " + why);
    }
  }

  // ---- reporting ------------------------------------------------------------------

  static std::string hex(std::uint64_t v) {
    std::ostringstream os;
    os << std::hex << v;
    return os.str();
  }

  void trace(const std::string& line) {
    if (!o_.trace) return;
    trace_.push_back("t=" + std::to_string(now_) + " " + line);
    if (trace_.size() > 5000) trace_.pop_front();
  }

  void fail(const std::string& what) {
    if (failure_.empty()) failure_ = "t=" + std::to_string(now_) + "ms: " + what;
  }

  SimOptions o_;
  Random rng_;
  std::vector<Node> nodes_;
  std::vector<Client> clients_;
  Membership founding_;  // every node a participant
  std::vector<Flight> net_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> blocked_;  // (from, to) node ids
  std::set<std::string> committed_writes_;              // write_signature of every committed txn
  std::map<std::uint64_t, std::string> committed_log_;  // index -> write, for reports
  SessionId session_of_next_{0};
  std::uint64_t loss_permille_ = 0;
  std::uint64_t dup_permille_ = 0;
  std::int64_t delay_max_ms_ = 10;
  std::uint64_t next_order_ = 0;
  std::int64_t now_ = 0;  // simulated ms since the start
  bool quiet_ = false;    // clients only ping
  ConnId next_conn_ = 1;
  std::uint64_t clock_ = 0;  // orders every call and reply, for the history
  std::vector<lin::Op> history_;
  std::vector<HistoryMeta> meta_;
  std::vector<std::pair<std::size_t, std::int64_t>> acked_;  // (history index, zxid)
  std::vector<std::pair<std::string, std::int64_t>> seqs_;   // (path, zxid)
  int seq_count_ = 0;
  std::map<std::int64_t, std::pair<std::uint64_t, std::uint64_t>>
      digests_;                                     // zxid -> (digest, node)
  std::map<std::uint64_t, std::uint64_t> leaders_;  // term -> node
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>>
      committed_;  // index -> (term, hash)
  std::deque<std::string> trace_;
  SimResult res_;
  std::string failure_;
};

SimOptions options_from_env() {
  SimOptions o;
  o.steps = env_or("COORD_SIM_STEPS", 1200);
  o.follower_snapshots = env_or("COORD_SIM_FOLLOWER_SNAPSHOTS", 1) != 0;
  o.trace = env_or("COORD_SIM_TRACE", 0) != 0;
  o.stale_sync_bug = env_or("COORD_SIM_STALE_SYNC", 0) != 0;
  o.disk_faults = env_or("COORD_SIM_DISK_FAULTS", 1) != 0;
  o.membership = env_or("COORD_SIM_MEMBERSHIP", 1) != 0;
  if (const char* v = std::getenv("COORD_SIM_ASYNC_PERSIST")) o.async_persist = std::atoi(v) != 0;
  return o;
}

std::vector<std::uint64_t> seeds_from_env(std::uint64_t count) {
  std::vector<std::uint64_t> seeds;
  if (const char* one = std::getenv("COORD_SIM_SEED")) {
    seeds.push_back(std::strtoull(one, nullptr, 10));
    return seeds;
  }
  const std::uint64_t first = env_or("COORD_SIM_FIRST_SEED", 1);
  for (std::uint64_t s = first; s < first + count; ++s)
    seeds.push_back(s);
  return seeds;
}

void run_seeds(int nodes, std::uint64_t default_seeds) {
  const std::uint64_t only = env_or("COORD_SIM_NODES", 0);
  if (only != 0 && only != static_cast<std::uint64_t>(nodes)) GTEST_SKIP() << "COORD_SIM_NODES";
  std::uint64_t count = env_or("COORD_SIM_SEEDS", default_seeds);
  if (nodes == 5 && std::getenv("COORD_SIM_SEEDS") != nullptr)
    count = std::max<std::uint64_t>(1, count / 2);
  SimResult total;
  std::uint64_t runs = 0;
  std::uint64_t failed = 0;
  const bool keep_going = env_or("COORD_SIM_KEEP_GOING", 0) != 0;
  for (std::uint64_t seed : seeds_from_env(count)) {
    SimOptions o = options_from_env();
    o.seed = seed;
    o.nodes = nodes;
    note_run(replay_command(o));
    ClusterSim sim(o);
    const SimResult r = sim.run();
    ++runs;
    if (env_or("COORD_SIM_TRACE", 0) >= 2) std::cout << r.trace;
    total.acked_writes += r.acked_writes;
    total.unknown_writes += r.unknown_writes;
    total.linearizable_reads += r.linearizable_reads;
    total.crashes += r.crashes;
    total.partitions += r.partitions;
    total.snapshots += r.snapshots;
    total.elections += r.elections;
    total.expired_sessions += r.expired_sessions;
    total.unknown_keys += r.unknown_keys;
    total.unknown_never_committed += r.unknown_never_committed;
    total.request_timeouts += r.request_timeouts;
    total.watch_events += r.watch_events;
    total.disk_full += r.disk_full;
    total.reconfigs += r.reconfigs;
    total.reconfigs_ok += r.reconfigs_ok;
    if (!r.failure.empty()) {
      ++failed;
      ADD_FAILURE() << "seed " << seed << " (" << nodes << " nodes): " << r.failure << "\n"
                    << r.trace << "replay: " << replay_command(o);
      if (!keep_going) break;
    }
  }
  std::cout << runs << " seeds (" << failed << " failed), " << nodes
            << " nodes: " << total.acked_writes << " acknowledged writes, " << total.unknown_writes
            << " of unknown outcome, " << total.unknown_never_committed
            << " of them never committed, " << total.linearizable_reads << " linearizable reads, "
            << total.request_timeouts << " requests timed out, " << total.elections << " leaders, "
            << total.crashes << " crashes, " << total.partitions << " partitions, "
            << total.disk_full << " full disks, " << total.reconfigs << " reconfigs ("
            << total.reconfigs_ok << " done), " << total.snapshots << " snapshots, "
            << total.expired_sessions << " sessions expired, " << total.watch_events
            << " watch events; linearizability searches that gave up: " << total.unknown_keys
            << "\n";
  // A search that gives up is not a pass; a few are tolerated, many mean
  // the histories outgrew the checker.
  EXPECT_LE(total.unknown_keys, runs / 20) << "too many linearizability checks gave up";
}

TEST(ClusterSim, ThreeNodes) {
  run_seeds(3, 130);
}

TEST(ClusterSim, FiveNodes) {
  run_seeds(5, 70);
}

// The checker is only as good as the bugs it catches: with sync answered
// from the local state instead of a read index, a follower serves
// "linearizable" reads that miss writes acknowledged before the sync. The
// simulator must find that within a few seeds, and the same seeds must
// pass without the bug.
TEST(ClusterSim, PlantedStaleSyncIsCaught) {
  // About one seed in four catches it (5 of seeds 1..20 when this was
  // written); the bound leaves room for the storm to change.
  constexpr std::uint64_t seeds_max = 60;
  SimOptions o = options_from_env();
  o.nodes = 3;
  std::optional<std::uint64_t> caught;
  for (std::uint64_t seed = 1; seed <= seeds_max && !caught; ++seed) {
    o.seed = seed;
    o.stale_sync_bug = true;
    note_run(replay_command(o));
    const SimResult bad = ClusterSim(o).run();
    if (!bad.failure.empty()) {
      caught = seed;
      EXPECT_NE(bad.failure.find("linearizability violated"), std::string::npos) << bad.failure;
      std::cout << "seed " << seed << " with the planted stale sync: " << bad.failure
                << "\nreplay: " << replay_command(o) << "\n";
    }
    o.stale_sync_bug = false;
    note_run(replay_command(o));
    const SimResult good = ClusterSim(o).run();
    EXPECT_TRUE(good.failure.empty())
        << "seed " << seed << " fails without the planted bug: " << good.failure
        << "\nreplay: " << replay_command(o);
  }
  EXPECT_TRUE(caught.has_value()) << "the planted stale sync went unnoticed in " << seeds_max
                                  << " seeds";
}

}  // namespace
}  // namespace coord::core
