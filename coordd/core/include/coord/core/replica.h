// The replica: one coordd server's state and the request pipeline
// (docs/ARCHITECTURE.md, "The life of a request"), as a deterministic
// state machine.
//
// It drives the Raft core and the znode tree, keeps the session table and
// the connections of this server, and speaks ZooKeeper's client protocol at
// the level of frames: the host hands it the raw bytes each connection
// receives and sends whatever bytes it gives back. It never touches a
// socket, a file or a clock: time arrives with every input, durable writes
// go through ReplicaStorage, new session passwords come from the
// PasswordSource. The simulator runs this very code.
//
// The pipeline, per connection and strictly in arrival order:
//   read    answered from the local tree once every earlier request of the
//           connection has been answered (FIFO per session, docs/ARCHITECTURE.md "Guarantees");
//   write   proposed to Raft as a Command; answered when its entry applies,
//           after the watch events that entry fired;
//   other   ping, auth, setWatches, ... answered in order like reads.
// Validation happens at apply time, so every server decides alike.
//
// Thread safety: none. The host calls everything from one thread and takes
// the output after each batch of inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/histogram.h"
#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/random.h"
#include "coord/base/status.h"
#include "coord/consensus/raft.h"
#include "coord/core/membership.h"
#include "coord/core/storage.h"
#include "coord/protocol/jute.h"
#include "coord/znode/tree.h"

namespace coord::core {

using ConnId = std::uint64_t;

// What a monitoring tool, kazoo (envi for server_version) and an operator
// need, and nothing that grows with the number of watches or sessions
// (wchc, wchp, dump) or resets counters (srst, crst).
inline constexpr std::string_view four_letter_whitelist_default =
    "ruok,isro,srvr,stat,cons,envi,conf,mntr,wchs,dirs";

struct ReplicaConfig {
  NodeId id{1};
  // Founding voters; a single-node server lists only itself.
  std::vector<NodeId> voters{NodeId(1)};
  // A server of a cluster, founding or joining: the membership lives in
  // /zookeeper/config (ZooKeeper 3.8's text, kept from the configuration
  // changes as they apply) and changes through reconfig (opcode 16) and
  // the admin API. Off, reconfig is answered ReconfigDisabled and
  // /zookeeper/config stays empty, as on a standalone ZooKeeper.
  bool reconfig_enabled = false;
  // The founding members with their addresses, when this server founds a
  // cluster: its log starts with founding_changes(founding) (so `voters`
  // must be its participants), and a founding entry written without a
  // member's spec (by an earlier coordd) is read with the spec given here.
  Membership founding;
  // Length of one Raft tick; election and heartbeat timeouts count ticks.
  std::int64_t tick_ms = 50;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  std::int64_t session_timeout_ms_min = limits::session_timeout_ms_min_default;
  std::int64_t session_timeout_ms_max = limits::session_timeout_ms_max_default;
  // "super:<base64(sha1(super:password))>", as ZooKeeper's superDigest; a
  // connection that authenticates as that user bypasses every ACL. Empty:
  // no super user.
  std::string super_digest;
  // A snapshot is due after this many applied entries.
  std::uint64_t snapshot_entries = 100'000;
  // ... or after this many bytes of applied log entries, whichever first.
  std::uint64_t snapshot_log_bytes = std::uint64_t{256} << 20;
  // Containers and TTL nodes are checked for removal this often.
  std::int64_t reap_interval_ms = 1'000;
  std::size_t pending_requests_per_session_max = limits::session_pending_requests_max;
  // Sessions this server holds; a handshake for a new one beyond them is
  // closed without a reply, as when no session can be made here.
  std::size_t sessions_max = limits::sessions_per_server_max;
  std::size_t outbound_bytes_per_connection_max = limits::connection_outbound_bytes_max;
  // How the tree applies txns (quota enforcement); the same on every
  // server of a cluster, or replicas diverge.
  znode::TreeConfig tree;
  // Payload bytes of one reply: a reply that would be larger is answered
  // MarshallingError instead (multi and multiRead: every op's result is
  // that error), measured while it is built.
  std::size_t reply_bytes_max = limits::reply_bytes_max;
  // Watches one connection may hold; a request whose watch is refused is
  // answered BadArguments.
  std::size_t watches_per_connection_max = limits::watches_per_connection_max;
  // Four-letter words answered, comma-separated, as ZooKeeper's
  // 4lw.commands.whitelist; "*" answers every word; srvr is always
  // answered, as by ZooKeeper. Any other word gets
  // ZooKeeper's "<word> is not executed because it is not in the whitelist."
  std::string four_letter_whitelist = std::string(four_letter_whitelist_default);
  // Bytes of one four-letter word's answer (wchc, wchp, cons, stat, dump
  // stop there with a truncation line).
  std::size_t four_letter_word_bytes_max = limits::four_letter_word_bytes_max;
  // The version reported by four-letter words (kazoo parses it from envi).
  std::string version = "3.8.0-coord";
  // A monotonic clock in microseconds, read only to measure request
  // latency for metrics: nothing the replica decides depends on it. The
  // default reads nothing (latency 0), as the simulator wants.
  std::function<std::int64_t()> metrics_clock_us = [] { return std::int64_t{0}; };
  // A server of a cluster that has heard from no leader backed by a quorum
  // for an election timeout serves read-only clients (ZooKeeper's
  // readonlymode.enabled, on by default here); off, it turns every client
  // away until a leader is back.
  bool read_only_on_quorum_loss = true;
  // A write or session creation not applied after this long is given up:
  // its connection closes (ConnectionLoss: the outcome is unknown).
  std::int64_t proposal_wait_ms_max = limits::proposal_wait_ms_max_default;
  // A command this follower forwarded that has not applied after this
  // long is taken as lost: forwarding starts a new stream and the
  // requests still in flight fail with ConnectionLoss.
  std::int64_t forward_wait_ms_max = limits::forward_wait_ms_max_default;
  // Durable writes run outside the replica: take_output() hands each Ready
  // that needs a synced write to the host (ReplicaOutput::persist) instead
  // of calling storage.persist(), and carries on with it when the host
  // calls persisted(). Meanwhile reads are answered and requests taken,
  // and their writes share the next Ready. Off, take_output() writes.
  bool persist_async = false;
  // Test-only: answers sync at once from the local state, without a read
  // index, so that a read after it may miss committed writes. Exists so
  // the cluster simulator can prove its linearizability checker catches a
  // stale sync. Never set outside tests.
  bool sync_without_read_index_for_testing = false;
};

// Where the events of the host's own watchers go (watchers that are no
// client connection: coordd's HTTP event streams). Both run on the
// replica's thread, inside the call that fired them.
struct HostWatchSink {
  // An event for a host watcher, during the apply of the entry that fired
  // it: the tree is as that entry left it, so the node's Stat read now is
  // the one the change gave it.
  std::function<void(const znode::WatchEvent&)> event;
  // The tree was replaced by a snapshot from the leader: every host watch
  // is gone, and what changed in between fires no event.
  std::function<void()> reset;
};

// Fresh, unpredictable session passwords (session_password_bytes each).
using PasswordSource = std::function<std::string()>;

// Bytes for one connection; `close` after they are written.
struct ConnectionOutput {
  ConnId conn = 0;
  protocol::Bytes bytes;
  bool close = false;
};

struct ReplicaOutput {
  std::vector<ConnectionOutput> connections;
  std::vector<consensus::Message> peer_messages;
  // Lines for the server's log at WARN (quota limits passed), rate-limited.
  std::vector<std::string> warnings;
  // With ReplicaConfig::persist_async: a Ready to make durable with
  // storage.write(*persist), on any one thread, after which the host calls
  // Replica::persisted() with its result. Owned by the replica, unchanged
  // until then. At most one is out at a time.
  const consensus::Ready* persist = nullptr;
};

// Why a replica serves reads only. The mode is ZooKeeper's read-only mode
// whatever the reason: writes and sync are answered NotReadOnly, reads and
// pings go on, clients that set canBeReadOnly in their handshake get a
// session local to this server (no log entry, gone when the mode ends) and
// the others are turned away, `isro` answers "ro".
enum class ReadOnlyReason : std::uint8_t {
  // A durable write failed (disk or map full, I/O error). Every tick tries
  // again; the first write that succeeds ends the mode.
  StorageRefusesWrites,
  // A server of a cluster has heard from no leader backed by a quorum for
  // longer than an election timeout (it is on the minority side of a
  // partition, or most servers are down). Clients that cannot live with a
  // read-only server are turned away, so that they move to the majority;
  // the mode ends as soon as a leader is heard from.
  NoQuorum,
};
std::string_view to_string(ReadOnlyReason r);

struct ReadOnlyState {
  ReadOnlyReason reason = ReadOnlyReason::StorageRefusesWrites;
  // What failed, as the failing part said it (a storage error names its
  // file); updated by each new failure.
  std::string detail;
  TimeMs since{0};  // steady clock
};

// Counters for srvr / mntr / metrics.
struct ReplicaStats {
  std::uint64_t packets_received = 0;
  std::uint64_t packets_sent = 0;
  std::uint64_t requests_applied = 0;
  // Durable writes that failed, each retry counted.
  std::uint64_t writes_failed_storage = 0;
  // Times the replica entered read-only mode.
  std::uint64_t read_only_entered = 0;
  // Times the leader this server knew changed or was lost.
  std::uint64_t leader_changes = 0;
  // Times this server became the leader.
  std::uint64_t elections_won = 0;
  // Writes and session creations handed to the leader by this follower.
  std::uint64_t requests_forwarded = 0;
  // Connections closed because a request's outcome became unknown: the
  // leader changed, the link to it broke, or proposal_wait_ms_max passed.
  std::uint64_t requests_outcome_unknown = 0;
  // Session liveness relays sent to the leader.
  std::uint64_t session_relays_sent = 0;
  // Connections closed here because their session resumed on another
  // server (their waiting requests answered SessionMoved).
  std::uint64_t sessions_moved_away = 0;
  // Replies by (opcode, error code).
  std::map<std::pair<std::int32_t, std::int32_t>, std::uint64_t> replies;
  // From the arrival of a request to its reply, in microseconds of the
  // config's metrics_clock_us; overall and per opcode.
  Histogram latency_us;
  std::map<std::int32_t, Histogram> latency_us_by_op;
};

// One global session for an operator's view (the HTTP API's /v1/sessions).
struct SessionInfo {
  SessionId id{0};
  std::int32_t timeout_ms = 0;  // as negotiated when it was created
  bool here = false;            // a client connection to this server holds it
  // The server its client was last heard through: this one, or, on the
  // leader, the follower that relayed it last; 0 when not known here.
  NodeId server{0};
};

class Replica {
 public:
  // Restores from `storage` and, when present, the snapshot payload written
  // by snapshot_payload() at storage.snapshot_meta().index. BadArguments for a whitelist naming a
  // word ZooKeeper does not know.
  static Result<std::unique_ptr<Replica>> create(const ReplicaConfig& config,
                                                 ReplicaStorage& storage,
                                                 std::optional<std::string_view> snapshot,
                                                 Random random, PasswordSource passwords);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // ---- inputs (each carries the time it happens at) ----------------------

  // Every tick_ms: Raft timeouts, session expiry, container/TTL reaping,
  // and, while storage refuses writes, one more try.
  void tick(TimeMs steady, TimeMs wall);
  void connection_opened(ConnId conn, std::string remote_ip, TimeMs steady, TimeMs wall,
                         std::uint16_t remote_port = 0);
  // Raw bytes as they arrived; the replica cuts frames itself.
  void bytes_received(ConnId conn, protocol::ByteSpan bytes, TimeMs steady, TimeMs wall);
  // The socket is gone; the session lives on until it expires.
  void connection_closed(ConnId conn);
  void peer_message(const consensus::Message& m, TimeMs steady, TimeMs wall);
  // The host's link to a peer came up or went down. When the link to the
  // leader breaks, forwarded requests may have been lost on it: their
  // connections close (outcome unknown) and later ones start afresh.
  void peer_link_changed(NodeId peer, bool up, TimeMs steady, TimeMs wall);
  // Leader of a cluster only: hands leadership to `target` (Raft §3.10),
  // or with 0 to the voter whose log is the most up to date, as a leader
  // that is told to stop does first. InvalidState on a server that does
  // not lead or has no other voter.
  Status transfer_leadership(NodeId target, TimeMs steady, TimeMs wall);
  // The connection (opened by the host for its admin API) acts as the
  // super user from now on: its reconfig passes the ACL of
  // /zookeeper/config.
  void grant_super(ConnId conn);
  // The host authenticated the connection below the protocol (a verified
  // TLS client certificate gives x509:<subject>): ACLs see `id` among its
  // identities from now on, as they see ip and digest ones.
  void add_identity(ConnId conn, Id id);

  // ---- the host's own watchers -------------------------------------------
  // A host watcher holds watches in the tree like a connection does (the
  // same index, the same per-watcher limit) but has no session or socket:
  // its events go to the sink. Its id must be one no connection uses.
  void set_host_watch_sink(HostWatchSink sink);
  Status add_host_watch(ConnId watcher, std::string_view path, znode::WatchKind kind);
  void remove_host_watcher(ConnId watcher);

  // ---- outputs -----------------------------------------------------------

  // Inputs only queue work: reads at the front of a queue are answered and
  // writes are proposed, but nothing is persisted. take_output() persists
  // everything proposed since the last call in one synced write (the group
  // commit; with persist_async it hands that write to the host instead),
  // applies what committed, and returns the bytes and messages to send. A
  // host calls it once after each batch of inputs.
  ReplicaOutput take_output();
  // storage.write() of the Ready in ReplicaOutput::persist returned `st`:
  // on success storage.written() shows it, and its messages, applies and
  // replies follow in the next take_output(); a failure is a failed write,
  // as in take_output() without persist_async.
  void persisted(const Status& st, TimeMs steady, TimeMs wall);
  // persisted(), which also returns the next Ready to make durable, if one
  // is due, before the entries that the finished write made committed are
  // applied: the host starts that write at once, and the apply and its
  // replies, in the take_output() it must call next, run meanwhile. The
  // next take_output() does not return it again.
  const consensus::Ready* persisted_next(const Status& st, TimeMs steady, TimeMs wall);
  // A Ready is out with the host.
  bool persisting() const;
  // False while the connection's session has too many requests waiting:
  // the host stops reading it until this turns true again.
  bool accepts_input(ConnId conn) const;

  // ---- snapshots ---------------------------------------------------------

  // True when enough entries, or bytes of entries, were applied since the
  // last snapshot.
  bool snapshot_due() const;
  // The tree and the session table as of applied_zxid(), versioned and
  // checksummed; hand it to storage.snapshot_saved with snapshot_meta().
  std::string snapshot_payload() const;
  consensus::SnapshotMeta snapshot_meta() const;
  // The snapshot taken at `index` is durable; entries applied since count
  // toward the next one.
  void snapshot_done(LogIndex index);

  // ---- introspection (four-letter words, HTTP, metrics) ------------------

  // The reply to a four-letter word ("ruok", "srvr", "mntr", ...); empty
  // for a word this server does not answer; ZooKeeper's refusal line for a
  // word not in config().four_letter_whitelist. `srst` and `crst` reset
  // what the words report (never the Prometheus counters). No answer is
  // longer than four_letter_word_bytes_max (plus its truncation line).
  std::string four_letter_word(std::string_view word);
  // Whether `word` is in config().four_letter_whitelist; a host that adds
  // lines of its own to a word asks first.
  bool four_letter_word_allowed(std::string_view word) const;
  // Ready to serve: a leader is known and everything committed is applied
  // (a leader: once it committed an entry of its term), and the replica is
  // not read-only.
  bool ready() const;
  // nullopt while the replica takes writes.
  const std::optional<ReadOnlyState>& read_only() const;
  // Read-only because storage refuses writes.
  bool storage_failed() const;
  // Sessions of read-only clients, held by this server only.
  std::size_t local_session_count() const;
  Zxid applied_zxid() const;
  const znode::DataTree& tree() const;
  std::size_t session_count() const;
  bool has_session(SessionId id) const;
  // The global sessions, in id order, as operators see them.
  std::vector<SessionInfo> sessions() const;
  std::size_t connection_count() const;
  consensus::RaftStatus raft_status() const;
  // The cluster's configuration in force (the latest in the log).
  const consensus::ConfState& conf_state() const;
  // The members as of the last configuration change applied here (its log
  // index is the version); empty members unless reconfig_enabled.
  const Membership& membership() const;
  const ReplicaStats& stats() const;
  const ReplicaConfig& config() const;

 private:
  struct Impl;
  explicit Replica(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ZooKeeper's digest of "user:password": "user:" + base64(sha1(...)).
std::string digest_of(std::string_view user_colon_password);

}  // namespace coord::core
