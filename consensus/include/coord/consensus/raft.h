// Raft: the consensus core of coord, a pure state machine in the style of
// etcd's raft. It implements the Raft thesis (Ongaro, 2014): leader election
// with randomized timeouts, pre-vote and check-quorum (§9.6, §6.2), log
// replication with batching, pipelining and per-follower flow control (§10.2),
// the commit rule of §3.6.2 (Figure 8), snapshots streamed in chunks (§5),
// ReadIndex (§6.4), leadership transfer (§3.10), proposal forwarding from
// followers, and membership changes one server at a time (§4.1) or several
// at once through joint consensus (§4.3), with non-voting learners.
//
// It does no I/O, reads no clock, starts no thread and draws randomness only
// from the coord::Random it is given. Time is `tick()`; the network is
// `step()` in and Ready::messages out; the disk is LogStorage (read) and
// Ready (what to write). The caller's loop is:
//
//     raft.tick() every tick; raft.step(m) for each message received;
//     raft.propose(...) / read_index(...) / transfer_leadership(...);
//     if (raft.has_ready()) {
//       Ready rd = raft.ready();
//       0. write rd.snapshot_chunks at their offsets (see SnapshotChunk);
//       1. persist, in one atomic, synced write: rd.snapshot (if any),
//          then rd.entries (replacing any stored suffix from their first
//          index on), then rd.hard_state (if any);
//       2. only then send rd.messages (in any order; they may be lost),
//          save the first rd.messages_eager of them, which may be sent
//          before or during step 1;
//       3. apply rd.snapshot to the state machine, then rd.committed_entries
//          in order; serve rd.read_states once applied reaches their index;
//          fail rd.failed_reads; settle proposals (see "Proposals" below);
//       4. raft.advance();
//     }
//
// The one rule that keeps Raft safe across crashes: no message of a Ready that
// speaks for this node's storage may leave before that Ready's entries, hard
// state and snapshot are durable — a vote granted, or an append acknowledged,
// by a node that then forgets it breaks election safety or commits an entry
// that is not on a majority (§3.8). The eager messages speak for nothing
// stored: a leader's appends go out while it writes the same entries
// (§10.2.1), and it counts its own copy toward a commit only after
// advance(). Everything else may be lost: the core recovers from lost,
// duplicated, reordered and delayed messages.
//
// Proposals, and what the caller learns of them. propose() on the leader
// appends at once, and the next Ready carries the appends to its followers;
// on a follower or learner that knows a leader it forwards the data to that
// leader, in the next Ready's Propose messages (all proposals made since the
// last Ready share them) tagged with the current term T; with no leader
// known it fails with ConnectionLoss and nothing was sent (retry once
// Ready::leader_changed shows a leader, or fail the client's request).
// Nobody acknowledges a proposal: the core never resends one, and the leader
// appends a forwarded one at most once, only while it still leads term T and
// is not transferring leadership; otherwise it drops it, as the network may.
// So the caller must recognise its own commands in committed_entries (they
// carry their origin server and a request id) and answer its client when one
// applies locally. A proposal made in term T that has not applied is:
//   - certainly lost once an entry of a term > T has applied locally (every
//     term-T entry that will ever commit precedes the first committed entry
//     of a later term); the caller may then retry it safely;
//   - of unknown outcome when Ready::leader_changed is set, when a snapshot
//     is installed, or after a timeout of the caller's choosing: it may
//     still apply. The caller fails it with ConnectionLoss (ZooKeeper's
//     "outcome unknown") and must not propose it again, unless its state
//     machine drops a command whose (origin, request id) already applied.
// Proposals still waiting for a Ready, and Propose messages still queued,
// for an old leader when the leader changes are dropped before they leave.
// Forwards travel in streams (per leader and term, and restarted on
// request): the leader appends a stream's proposals only in order and
// without gaps, so a lost Propose stops the stream instead of letting later
// proposals overtake it.
//
// Reads. read_index(ctx) that returns OK gets exactly one answer, in a
// later Ready: ctx in read_states (serve the read once applied reaches its
// index), or ctx in failed_reads (the leader stepped down or changed before
// confirming it, or the request or its answer was lost: retry or fail).
//
// Thread safety: none. One owner calls every method from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/random.h"
#include "coord/base/status.h"
#include "coord/consensus/storage.h"
#include "coord/consensus/types.h"

namespace coord::consensus {

struct RaftConfig {
  NodeId id;
  // A follower starts an election after a random number of ticks in
  // [election_ticks, 2 * election_ticks) without hearing from a leader
  // (§3.4); a leader sends heartbeats every heartbeat_ticks.
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool pre_vote = true;      // §9.6
  bool check_quorum = true;  // §6.2: a leader that hears no majority steps down
  // Replication flow control (§10.2.1): per message and per follower.
  std::size_t max_entries_per_message = limits::append_entries_per_message_max;
  std::size_t max_bytes_per_message = limits::append_entry_bytes_per_message_max;
  std::size_t max_inflight_messages = limits::append_inflight_messages_max;
  // Ticks a follower may stay in snapshot state without answering before the
  // leader probes it again (the snapshot was lost or failed to install).
  int snapshot_retry_ticks = 20;
  // Bytes of snapshot data per SnapshotChunk (at most snapshot_chunk_bytes).
  std::size_t snapshot_chunk_bytes = limits::snapshot_chunk_bytes;
  // Index the application has already applied (a restart from a snapshot
  // applies nothing below it). 0 = the storage's snapshot index. Applied
  // entries were committed: the commit index starts at least there (as far
  // as the stored log reaches).
  LogIndex applied;

  // Test-only: breaks the commit rule of §3.6.2 by counting replicas of
  // entries from earlier terms too. Exists so the simulator can prove its
  // checker catches a broken rule. Never set outside tests.
  bool commit_by_counting_earlier_terms_for_testing = false;
};

enum class Role : std::uint8_t { Follower, PreCandidate, Candidate, Leader };
std::string_view to_string(Role r);

// Replication state of one follower, as the leader sees it (§10.2.1; the
// state diagram is in consensus/README.md).
enum class ProgressState : std::uint8_t {
  Probe,      // one append at a time until the follower's log position is found
  Replicate,  // pipelined appends, up to max_inflight_messages unacknowledged
  Snapshot,   // an InstallSnapshot is on its way; nothing else is sent
};
std::string_view to_string(ProgressState s);

struct ProgressInfo {
  NodeId id;
  ProgressState state = ProgressState::Probe;
  LogIndex match;
  LogIndex next;
  std::size_t inflight = 0;
  bool learner = false;
  bool recent_active = false;
};

struct RaftStatus {
  NodeId id;
  Role role = Role::Follower;
  Term term;
  NodeId vote;
  NodeId leader;
  LogIndex commit;
  LogIndex applied;
  LogIndex first_index;
  LogIndex last_index;
  NodeId transfer_target;
  std::vector<ProgressInfo> progress;  // leader only, sorted by id
};

// A piece of a snapshot streamed from the leader. The application writes
// `data` at `offset` of the snapshot identified by meta (index, term); a
// chunk at offset 0 starts that snapshot over (discard any partial one).
// Chunks of one snapshot arrive in order and contiguous. When the last one
// has arrived the same Ready carries Ready::snapshot (with empty data and
// snapshot_in_chunks set): the snapshot to install is the bytes written.
// A partial snapshot may be thrown away at any time (a restart does): the
// leader starts the transfer over.
struct SnapshotChunk {
  SnapshotMeta meta;
  std::uint64_t offset = 0;
  std::string data;
  bool last = false;
};

// What the application must do next; see the file comment for the order.
struct Ready {
  // Present when term, vote or commit changed.
  std::optional<HardState> hard_state;
  // Entries to append to stable storage (they may replace a stored suffix).
  std::vector<Entry> entries;
  // A snapshot from the leader to install in storage and state machine.
  std::shared_ptr<const Snapshot> snapshot;
  // Committed entries to apply, in index order, contiguous.
  std::vector<Entry> committed_entries;
  // To send after entries, hard state and snapshot are durable; except the
  // first messages_eager of them, which may be sent at once, while the
  // write is under way: they promise nothing about this node's storage (a
  // leader's appends, forwarded proposals; §10.2.1).
  std::vector<Message> messages;
  std::size_t messages_eager = 0;
  // True when `snapshot` came in chunks: its data is empty, and the bytes
  // to install are those of snapshot_chunks written for it.
  bool snapshot_in_chunks = false;
  // Chunks of a streamed snapshot to write, in order (see SnapshotChunk).
  std::vector<SnapshotChunk> snapshot_chunks;
  // Answered ReadIndex requests, in request order.
  std::vector<ReadState> read_states;
  // ReadIndex requests of this node (their contexts) that will never be
  // answered: retry them or fail them.
  std::vector<std::uint64_t> failed_reads;
  // True when role or leader changed (not persisted; for the application).
  bool soft_state_changed = false;
  // True when the leader this node knew (itself included) changed or was
  // lost since the last Ready: proposals it made or forwarded earlier may
  // have been dropped (see "Proposals" in the file comment).
  bool leader_changed = false;

  bool empty() const {
    return !hard_state && entries.empty() && !snapshot && committed_entries.empty() &&
           messages.empty() && read_states.empty() && failed_reads.empty() &&
           snapshot_chunks.empty() && !soft_state_changed;
  }
};

class Raft {
 public:
  // Restores term, vote, commit, log and configuration from `storage`, which
  // must outlive the Raft. A node not in its configuration (a new member)
  // waits for a leader to contact it.
  Raft(const RaftConfig& config, const LogStorage& storage, Random random);
  ~Raft();
  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;
  // A Raft may be replaced by a new one restored from the same storage: the
  // way to forget everything a failed storage write left unpersisted.
  Raft(Raft&&) noexcept;
  Raft& operator=(Raft&&) noexcept;

  // One unit of logical time.
  void tick();
  // A message from a peer (taken by value: pass an rvalue to let the core
  // keep its entries without copying them). Stale and unknown messages are
  // dropped silently; an error means the message was malformed (wrong
  // recipient...).
  Status step(Message m);

  // On the leader: appended at the end of its log (Throttled during a
  // leadership transfer). On a follower or learner that knows a leader:
  // forwarded to it. ConnectionLoss when no leader is known. Whether it
  // commits shows only in committed_entries: see "Proposals" above.
  Status propose(std::string data);
  Status propose_batch(std::vector<std::string> data);
  // Proposals forwarded so far may have been lost on the way (the caller
  // saw its link to the leader break): later ones go in a new stream. The
  // leader takes each follower's stream gap-free, so nothing forwarded
  // after a lost Propose is appended until the stream restarts; those
  // already forwarded are of unknown outcome, as after leader_changed.
  // Propose messages not yet taken by ready() are dropped.
  void restart_forwarding();
  // Leader only (InvalidState elsewhere). One server at a time (§4.1):
  // refused with ReconfigInProgress while an earlier change (or a joint
  // configuration) is uncommitted, or before the leader committed an entry
  // of its term (§4.1, the fix for single-server changes).
  Status propose_conf_change(const ConfChange& cc);
  // Leader only. Several changes at once through the joint configuration
  // C_old,new (§4.3); once it commits the leader appends C_new itself. Same
  // refusals as propose_conf_change; BadArguments when the changes do not
  // apply (see JointConfChange).
  Status propose_conf_changes(std::vector<ConfChange> changes);

  // Start an election now (pre-vote first when enabled). Ignored by a
  // leader and by a node that is not a voter.
  void campaign();
  // Linearizable read (§6.4): answered through Ready::read_states with the
  // leader's commit index once a quorum confirmed its leadership, or failed
  // through Ready::failed_reads. On a follower the request is forwarded to
  // the leader. ConnectionLoss when no leader is known.
  Status read_index(std::uint64_t context);
  // Leader only (§3.10): bring `target` up to date, then have it start an
  // election. Proposals are refused until it succeeds or an election timeout
  // passes.
  Status transfer_leadership(NodeId target);

  bool has_ready() const;
  // Collects everything since the last ready(); must be followed by
  // advance() before the next ready().
  Ready ready();
  // The application finished the last Ready (persisted, sent, applied).
  void advance();

  RaftStatus status() const;
  Role role() const;
  Term term() const;
  NodeId leader() const;
  NodeId id() const;
  LogIndex commit_index() const;
  LogIndex last_index() const;
  // The configuration in force: the latest one in the log, committed or not
  // (§4.1).
  const ConfState& conf_state() const;
  // The configuration as of index i (i >= the first index of the log - 1),
  // for snapshots taken at i.
  ConfState conf_state_at(LogIndex i) const;
  // The log as held in memory and storage: term of entry i, if known.
  std::optional<Term> term_at(LogIndex i) const;
  // Entries [lo, hi) of the log, for tests and checkers.
  std::vector<Entry> log_entries(LogIndex lo, LogIndex hi) const;
  LogIndex first_index() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coord::consensus
