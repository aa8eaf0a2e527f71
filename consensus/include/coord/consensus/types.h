// The values the Raft core trades with its caller: log entries, the hard
// state that must survive a crash, snapshots, cluster configurations and the
// messages peers exchange.
//
// All are plain value types. Field meanings follow the Raft thesis (Ongaro,
// 2014); where a message reuses a field for another purpose the comment on
// the message type says so. The byte layout on the wire lives in codec.h.
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/status.h"

namespace coord::consensus {

enum class EntryType : std::uint8_t {
  Normal = 0,      // application data (may be empty: a leader's no-op, §5.4.2)
  ConfChange = 1,  // data is an encoded ConfChange (§4.1)
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::Normal;
  std::string data;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// What must be on stable storage before the node answers anyone (Figure 2,
// "persistent state on all servers"; the commit index is kept too so that a
// restart does not re-apply less than it could).
struct HardState {
  Term term;
  NodeId vote;
  LogIndex commit;

  friend bool operator==(const HardState&, const HardState&) = default;
};

// A configuration: who votes and who only receives the log. All lists are
// sorted; learners are disjoint from both voter lists.
//
// During a joint change (thesis §4.3) the configuration is C_old,new:
// `voters` is C_new's voters and `voters_outgoing` C_old's, and an election
// or a commit needs a majority of each. Outside a joint change
// voters_outgoing is empty.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;
  std::vector<NodeId> voters_outgoing{};  // defaulted: ConfState{voters, learners} still works

  bool joint() const { return !voters_outgoing.empty(); }
  // A voter of either half of a joint configuration.
  bool is_voter(NodeId id) const;
  bool is_learner(NodeId id) const;
  bool is_member(NodeId id) const { return is_voter(id) || is_learner(id); }
  // Every member once: voters of both halves, then learners, sorted.
  std::vector<NodeId> members() const;
  // members().size(), without building the list (asked once per proposal).
  std::size_t size() const;

  friend bool operator==(const ConfState&, const ConfState&) = default;
};
std::ostream& operator<<(std::ostream& os, const ConfState& c);

// One server at a time (thesis §4.1, §4.2.1 for learners), or one step of
// a JointConfChange.
enum class ConfChangeType : std::uint8_t {
  AddVoter = 0,
  RemoveVoter = 1,
  AddLearner = 2,
  PromoteLearner = 3,
};
std::string_view to_string(ConfChangeType t);

// `context` is opaque to the core: it travels in the entry and comes back
// to the application when the entry is applied (coordd keeps the member's
// address there), at most limits::conf_change_context_bytes_max bytes.
//
// Encoding, little-endian, first byte the version:
//   1: type u8, node u64                                 (no context)
//   3: type u8, node u64, context length u32, context
// encode() writes version 1 when the context is empty, so such entries stay
// byte-identical to those of builds that knew no context; version 3
// otherwise. decode() takes either.
struct ConfChange {
  ConfChangeType type = ConfChangeType::AddVoter;
  NodeId node;
  std::string context{};  // defaulted: ConfChange{type, node} still works

  std::string encode() const;
  static Result<ConfChange> decode(std::string_view bytes);
  // The configuration after this change, or an error when the change does
  // not apply to `before` (adding a member twice, removing a stranger...).
  Result<ConfState> apply_to(const ConfState& before) const;

  friend bool operator==(const ConfChange&, const ConfChange&) = default;
};

// Several servers at once through joint consensus (thesis §4.3). A
// ConfChange entry holds either encoding (its first byte is the version: 1
// or 3 for ConfChange, 2 or 4 for JointConfChange).
//
// Encoding, little-endian: version u8, change count u8, then per change
//   2: type u8, node u64                                 (no contexts)
//   4: type u8, node u64, context length u32, context
// encode() writes version 2 when every context is empty, 4 otherwise.
//
// With changes: enter C_old,new, where C_new is C_old with every change
// applied in order. When the changes leave the voters as they are (learners
// added or removed only) there is nothing to be joint about and the entry
// moves straight to C_new. Without changes: leave C_old,new for C_new; the
// leader appends that entry itself once C_old,new is committed. Turning a
// voter into a learner takes two changes (remove, then add as learner), so
// that no server is a voter of C_old and a learner of C_new at once.
struct JointConfChange {
  std::vector<ConfChange> changes;

  bool leave() const { return changes.empty(); }
  std::string encode() const;
  static Result<JointConfChange> decode(std::string_view bytes);
  Result<ConfState> apply_to(const ConfState& before) const;

  friend bool operator==(const JointConfChange&, const JointConfChange&) = default;
};

// The configuration after a ConfChange entry whose data is `data` (either
// encoding), or an error when it does not decode or does not apply.
Result<ConfState> apply_conf_entry(std::string_view data, const ConfState& before);

// The changes a ConfChange entry carries, contexts included: one for a
// one-server change, those of a joint change, none for a leave entry.
// MarshallingError when `data` is no conf change encoding.
Result<std::vector<ConfChange>> conf_entry_changes(std::string_view data);

// How a new cluster starts (§4.1: the configuration lives in the log): every
// founding member's log begins with one conf change entry per member, term 1,
// indexes 1..k, already committed — identical on every founding member, so a
// server added later learns the founding configuration by replaying the log
// like any other entry. A storage for a founding member holds these entries
// and this hard state before the core first starts on it.
std::vector<Entry> bootstrap_entries(const ConfState& founding);
// The same from the changes themselves (AddVoter or AddLearner, one per
// member, voters first), for an application that puts a context in each.
std::vector<Entry> bootstrap_entries(const std::vector<ConfChange>& founding);
HardState bootstrap_hard_state(const ConfState& founding);

struct SnapshotMeta {
  LogIndex index;  // last entry the snapshot covers
  Term term;       // term of that entry
  ConfState conf;  // configuration as of `index`

  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

struct Snapshot {
  SnapshotMeta meta;
  std::string data;  // opaque to the core: the application's state

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

enum class MessageType : std::uint8_t {
  // index/log_term: the entry before `entries`; commit: leader's commit.
  Append = 0,
  // reject=false: index = last index the follower now matches.
  // reject=true: index = the rejected prev index; reject_hint/log_term =
  // where the leader should look next (fast backtracking, §5.3).
  AppendResponse = 1,
  // index/log_term: candidate's last entry (§5.4.1). transfer: started by
  // TimeoutNow, so voters skip the leader lease check (§3.10, §4.2.3).
  Vote = 2,
  VoteResponse = 3,
  // Pre-vote (§9.6): term is the term the sender would campaign in; the
  // receiver's own term does not change.
  PreVote = 4,
  PreVoteResponse = 5,
  // commit: min(leader commit, follower match); context: ReadIndex round.
  Heartbeat = 6,
  HeartbeatResponse = 7,
  // snapshot: the leader's latest snapshot (§7).
  InstallSnapshot = 8,
  // Leadership transfer (§3.10): start an election now.
  TimeoutNow = 9,
  // A follower asks the leader for a read index; context is its request id.
  ReadIndex = 10,
  // The leader's answer: index = read index; reject = the read failed (the
  // receiver was not the leader, or stepped down before confirming it).
  ReadIndexResponse = 11,
  // One piece of a streamed snapshot (the thesis' InstallSnapshot with its
  // offset and done fields, §5.2): snapshot = the snapshot's meta with data
  // = the bytes at chunk_offset; chunk_last = the last piece.
  SnapshotChunk = 12,
  // A follower's answer to a chunk that was not the last: index = the
  // snapshot's index; chunk_offset = the bytes it holds of that snapshot,
  // where the next chunk must start; reject = it does not hold what the
  // leader assumed (restart from chunk_offset). The last chunk is answered
  // by an AppendResponse once the snapshot is installed.
  SnapshotChunkResponse = 13,
  // Proposal forwarding: a follower or learner hands client data to the
  // leader it knows. entries = the proposals (data only); context = the
  // forwarder's incarnation (high 32 bits) and sequence number (low 32), so
  // that the leader appends a duplicated message once.
  Propose = 14,
  // Not Raft's: the application's own traffic between servers, carried on
  // the same links and in the same frames (coordd relays session liveness
  // to the leader with it). context = the application's kind of message,
  // entries = its payload. Raft::step refuses it; the caller handles it.
  App = 15,
};
inline constexpr int message_type_count = 16;
std::string_view to_string(MessageType t);

struct Message {
  MessageType type = MessageType::Append;
  NodeId from;
  NodeId to;
  Term term;
  Term log_term;
  LogIndex index;
  LogIndex commit;
  std::vector<Entry> entries;
  bool reject = false;
  LogIndex reject_hint;
  bool transfer = false;
  std::uint64_t context = 0;
  // SnapshotChunk / SnapshotChunkResponse only.
  std::uint64_t chunk_offset = 0;
  bool chunk_last = false;
  // Shared so that duplicating a message (a simulated network, several
  // followers) does not copy the application state.
  std::shared_ptr<const Snapshot> snapshot;

  friend bool operator==(const Message& a, const Message& b);
};

// One answered ReadIndex request: once the local applied index reaches
// `index`, a read reflects every write committed before the request (§6.4).
struct ReadState {
  LogIndex index;
  std::uint64_t context = 0;

  friend bool operator==(const ReadState&, const ReadState&) = default;
};

}  // namespace coord::consensus
