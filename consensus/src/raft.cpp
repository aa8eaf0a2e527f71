// The Raft core. Section numbers refer to the Raft thesis (Ongaro, 2014);
// "Figure 2" to the summary figure of the Raft paper.

#include "coord/consensus/raft.h"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <span>
#include <utility>
#include <variant>

#include "coord/base/assert.h"
#include "progress.h"
#include "raft_log.h"

namespace coord::consensus {

using detail::Progress;
using detail::RaftLog;

std::string_view to_string(Role r) {
  switch (r) {
    case Role::Follower:
      return "follower";
    case Role::PreCandidate:
      return "pre-candidate";
    case Role::Candidate:
      return "candidate";
    case Role::Leader:
      return "leader";
  }
  return "unknown";
}

std::string_view to_string(ProgressState s) {
  switch (s) {
    case ProgressState::Probe:
      return "probe";
    case ProgressState::Replicate:
      return "replicate";
    case ProgressState::Snapshot:
      return "snapshot";
  }
  return "unknown";
}

namespace {

const NodeId none{0};

// Committed entries handed to the application in one Ready, in bytes.
constexpr std::size_t committed_bytes_per_ready_max = limits::ready_committed_bytes_max;

struct FollowerState {};
struct CandidateState {
  std::map<NodeId, bool> votes;  // also used by a pre-candidate
};
struct PendingRead {
  std::uint64_t round = 0;
  LogIndex index;
  std::uint64_t context = 0;
  NodeId from;  // none = this node
};
struct LeaderState {
  std::map<NodeId, Progress> progress;
  NodeId transfer_target;
  LogIndex pending_conf_index;   // last conf change this leader appended
  LogIndex first_index_of_term;  // the no-op appended on election (§5.4.2)
  std::uint64_t read_round = 0;
  std::deque<PendingRead> reads;          // waiting for a quorum of heartbeats
  std::deque<PendingRead> reads_waiting;  // waiting for the first commit in term
};

}  // namespace

struct Raft::Impl {
  RaftConfig config;
  const LogStorage& storage;
  Random random;
  RaftLog log;

  Term term;
  NodeId vote;
  NodeId leader;
  Role role = Role::Follower;
  std::variant<FollowerState, CandidateState, LeaderState> state;

  int election_elapsed = 0;
  int heartbeat_elapsed = 0;
  int randomized_election_timeout = 0;

  // Configurations in the log, latest last; the first is the base (from the
  // snapshot). The latest one is in force, committed or not (§4.1).
  std::vector<std::pair<LogIndex, ConfState>> confs;

  std::vector<Message> msgs;
  std::vector<ReadState> read_states;
  std::vector<std::uint64_t> failed_reads;
  std::vector<SnapshotChunk> snapshot_chunks;
  // The unstable snapshot was assembled from chunks (its data is empty).
  bool unstable_snapshot_in_chunks = false;
  HardState prev_hard_state;
  Role prev_role = Role::Follower;
  NodeId prev_leader;
  Term prev_term;
  // The leader this node knew was dropped since the last Ready.
  bool leader_dropped = false;

  // Proposal forwarding: Propose.context = incarnation << 32 | sequence.
  std::uint32_t forward_incarnation = 0;
  std::uint32_t forward_seq = 0;
  // The leader and term the current forwarding stream goes to; a
  // proposal for another (or after the stream was broken) starts a new
  // stream: the next incarnation, from sequence number 1.
  NodeId forward_leader;
  Term forward_term;
  // Proposals to forward, gathered until the next Ready: all that one turn
  // of the host proposes leaves in as few Propose messages as the limits
  // allow, not one message each.
  std::vector<std::string> forward_pending;
  // The leader appended entries its followers have not been sent yet; the
  // next Ready sends them, so a turn's proposals share their appends.
  bool append_due = false;
  // ReadIndex requests forwarded to a leader, by context: when (in ticks)
  // and to whom. Each gets exactly one answer: a read state or a failure.
  struct ForwardedRead {
    NodeId leader;
    std::uint64_t sent_at = 0;
  };
  std::map<std::uint64_t, ForwardedRead> forwarded_reads;
  std::uint64_t ticks = 0;

  // A snapshot being received in chunks (follower side).
  struct Incoming {
    NodeId from;
    Term term;
    LogIndex index;
    Term snapshot_term;
    std::uint64_t received = 0;
  };
  std::optional<Incoming> incoming;

  // What the last ready() handed out, for advance().
  struct {
    bool pending = false;
    std::optional<std::pair<LogIndex, Term>> last_entry;
    std::optional<LogIndex> snapshot;
    std::optional<LogIndex> last_committed;
    std::optional<HardState> hard_state;
  } in_ready;

  Impl(const RaftConfig& c, const LogStorage& s, Random r)
      : config(c), storage(s), random(r), log(s) {
    COORD_ASSERT(config.id != none, "node id 0 is reserved");
    COORD_ASSERT(config.election_ticks > config.heartbeat_ticks && config.heartbeat_ticks > 0,
                 "election timeout must exceed the heartbeat interval");
    COORD_ASSERT(config.max_inflight_messages > 0 &&
                     config.max_inflight_messages <= limits::append_inflight_messages_max,
                 "inflight window out of range");
    COORD_ASSERT(config.max_entries_per_message > 0 &&
                     config.max_entries_per_message <= limits::append_entries_per_message_max,
                 "entries per message out of range");
    COORD_ASSERT(config.max_bytes_per_message <= limits::append_entry_bytes_per_message_max,
                 "bytes per message out of range");
    const HardState hs = storage.hard_state();
    term = hs.term;
    vote = hs.vote;
    const LogIndex applied =
        config.applied > LogIndex(0) ? config.applied : storage.snapshot_meta().index;
    // What the application applied was committed, whatever the stored
    // commit index says (an application may leave a commit-only hard state
    // unwritten): never hand it an applied entry again, nor stall below it.
    log.commit_to(std::min(std::max(hs.commit, applied), log.last_index()));
    // An application state older than the log can no longer be brought up
    // to date by replaying entries.
    COORD_ASSERT(applied >= log.first_index().prev(), "applied index ", applied,
                 " is below the compacted log (first index ", log.first_index(), ")");
    log.applied_to(std::min(applied, log.committed()));
    prev_hard_state = HardState{term, vote, log.committed()};
    prev_term = term;
    rebuild_confs();
    // A copy of the generator, so that drawing the incarnation leaves the
    // election timeouts as they were; mixed with the persisted state so
    // that a restart on the same seed still draws another one.
    Random fork = random;
    std::uint64_t x = fork.next_u64() ^ (hs.term.value() * 0x9e3779b97f4a7c15ULL) ^
                      (log.last_index().value() << 17) ^ (hs.commit.value() << 41);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    forward_incarnation = static_cast<std::uint32_t>(x >> 32);
    reset_election_timer();
  }

  // ---- configuration -----------------------------------------------------

  const ConfState& conf() const { return confs.back().second; }

  void rebuild_confs() {
    confs.clear();
    const SnapshotMeta& meta =
        log.unstable_snapshot() ? log.unstable_snapshot()->meta : storage.snapshot_meta();
    confs.emplace_back(meta.index, meta.conf);
    // Conf entries after the snapshot (the stored log may also hold older
    // entries that the snapshot covers; its configuration already has them).
    const LogIndex from = std::max(meta.index.next(), log.first_index());
    std::vector<Entry> batch;
    for (LogIndex i = from; i <= log.last_index();) {
      batch.clear();
      log.entries(i, log.last_index().next(), limits::append_entries_per_message_max,
                  limits::append_entry_bytes_per_message_max, batch);
      COORD_ASSERT(!batch.empty(), "log unreadable at ", i);
      for (const Entry& e : batch)
        note_conf_entry(e);
      i = batch.back().index.next();
    }
  }

  void note_conf_entry(const Entry& e) {
    if (e.type != EntryType::ConfChange) return;
    ConfState next = conf();
    auto applied = apply_conf_entry(e.data, conf());
    // A leader validates a change against this same log prefix before it
    // appends it, so a change that does not apply is ignored everywhere alike.
    if (applied.ok()) next = std::move(applied).value();
    confs.emplace_back(e.index, std::move(next));
  }

  // Entries from `from` on are leaving the log: forget their configurations.
  void truncate_confs(LogIndex from) {
    while (confs.size() > 1 && confs.back().first >= from)
      confs.pop_back();
  }

  // Keep only configurations the log can still be rolled back to, or that
  // a snapshot at the applied index or later may need.
  void trim_confs() {
    const LogIndex applied = log.applied();
    std::size_t keep = 0;  // the latest applied configuration
    for (std::size_t k = 0; k < confs.size(); ++k) {
      if (confs[k].first <= applied) keep = k;
    }
    if (keep > 0) confs.erase(confs.begin(), confs.begin() + static_cast<std::ptrdiff_t>(keep));
  }

  ConfState conf_at(LogIndex i) const {
    ConfState out = confs.front().second;
    for (const auto& [idx, c] : confs) {
      if (idx <= i) out = c;
    }
    return out;
  }

  bool is_voter() const { return conf().is_voter(config.id); }

  // The voter sets a decision needs a majority of: one, or both halves of a
  // joint configuration (§4.3). Held in place, not in a vector: every
  // commit decision asks.
  struct VoterSets {
    std::array<const std::vector<NodeId>*, 2> sets{};
    std::size_t n = 0;
    const std::vector<NodeId>* const* begin() const { return sets.data(); }
    const std::vector<NodeId>* const* end() const { return sets.data() + n; }
  };
  VoterSets majorities() const {
    VoterSets out;
    out.sets[out.n++] = &conf().voters;
    if (conf().joint()) out.sets[out.n++] = &conf().voters_outgoing;
    return out;
  }
  static std::size_t majority(std::size_t n) { return n / 2 + 1; }

  // The largest value a majority of every voter set has reached, where
  // `of(id)` is a voter's value (§3.6.2 and §4.3 for commit indexes, §6.4
  // for read rounds).
  template <typename T, typename F>
  T quorum_value(F of) const {
    std::optional<T> out;
    // On the stack for the usual few voters: this runs on every commit
    // decision.
    std::array<T, 16> small;
    std::vector<T> big;
    for (const auto* vs : majorities()) {
      if (vs->empty()) continue;
      T* values = small.data();
      if (vs->size() > small.size()) {
        big.resize(vs->size());
        values = big.data();
      }
      std::size_t n = 0;
      for (NodeId id : *vs)
        values[n++] = of(id);
      std::sort(values, values + n, std::greater<>());
      const T v = values[majority(n) - 1];
      if (!out || v < *out) out = v;
    }
    return out.value_or(T{});
  }

  // A majority of every voter set is in `yes`.
  template <typename F>
  bool quorum_of(F yes) const {
    for (const auto* vs : majorities()) {
      std::size_t n = 0;
      for (NodeId id : *vs)
        n += yes(id) ? 1 : 0;
      if (n < majority(vs->size())) return false;
    }
    return true;
  }

  // A sole voter that is this node: it decides alone.
  bool sole_voter() const {
    return !conf().joint() && conf().voters.size() == 1 && conf().voters[0] == config.id;
  }

  // The leader tracks exactly the members of the configuration in force.
  void sync_progress_with_conf() {
    auto* ls = std::get_if<LeaderState>(&state);
    if (!ls) return;
    const ConfState& c = conf();
    for (auto it = ls->progress.begin(); it != ls->progress.end();) {
      if (!c.is_member(it->first) && it->first != config.id) {
        it = ls->progress.erase(it);
      } else {
        ++it;
      }
    }
    auto ensure = [&](NodeId id, bool learner) {
      auto it = ls->progress.find(id);
      if (it == ls->progress.end()) {
        Progress p(config.max_inflight_messages);
        p.next = log.last_index().next();
        p.recent_active = true;
        it = ls->progress.emplace(id, std::move(p)).first;
      }
      it->second.learner = learner;
    };
    for (NodeId id : c.voters)
      ensure(id, false);
    for (NodeId id : c.voters_outgoing)
      ensure(id, false);
    for (NodeId id : c.learners)
      ensure(id, true);
    if (ls->transfer_target != none && !c.is_voter(ls->transfer_target)) {
      ls->transfer_target = none;
    }
  }

  // ---- role changes ------------------------------------------------------

  void reset_election_timer() {
    election_elapsed = 0;
    heartbeat_elapsed = 0;
    // §3.4: randomized in [T, 2T) so that split votes are rare.
    randomized_election_timeout =
        config.election_ticks + static_cast<int>(random.below(config.election_ticks));
  }

  // The leader this node knew is gone (a new term, or it stopped hearing
  // from it): what was waiting on it will not be answered.
  void drop_leader() {
    if (leader == none) return;
    leader_dropped = true;
    // Proposals not yet sent to the old leader never leave (§ "Proposals"
    // in raft.h); its leader of a later term would drop them anyway.
    std::erase_if(msgs, [](const Message& m) { return m.type == MessageType::Propose; });
    forward_pending.clear();
    forward_leader = none;
    for (const auto& [ctx, r] : forwarded_reads)
      failed_reads.push_back(ctx);
    forwarded_reads.clear();
    leader = none;
  }

  // A leader stepping down fails its pending reads at once: its own, and
  // those of followers (told with a rejecting ReadIndexResponse of the term
  // they asked in), instead of leaving them to time out.
  void fail_leader_reads() {
    auto* ls = std::get_if<LeaderState>(&state);
    if (!ls) return;
    for (auto* q : {&ls->reads_waiting, &ls->reads}) {
      for (const PendingRead& r : *q) {
        if (r.from == none || r.from == config.id) {
          failed_reads.push_back(r.context);
          continue;
        }
        Message m;
        m.type = MessageType::ReadIndexResponse;
        m.to = r.from;
        m.context = r.context;
        m.reject = true;
        send(std::move(m));
      }
      q->clear();
    }
  }

  void reset_term(Term t) {
    if (term != t) {
      term = t;
      vote = none;
    }
    drop_leader();
    reset_election_timer();
  }

  void become_follower(Term t, NodeId lead) {
    fail_leader_reads();
    reset_term(t);
    leader = lead;
    role = Role::Follower;
    state = FollowerState{};
  }

  void become_pre_candidate() {
    COORD_ASSERT(role != Role::Leader, "a leader cannot become pre-candidate");
    // §9.6: no term change, no vote change; only the election timer restarts.
    reset_election_timer();
    drop_leader();
    role = Role::PreCandidate;
    state = CandidateState{};
  }

  void become_candidate() {
    COORD_ASSERT(role != Role::Leader, "a leader cannot become candidate");
    reset_term(term.next());
    vote = config.id;
    role = Role::Candidate;
    state = CandidateState{};
  }

  void become_leader() {
    COORD_ASSERT(role == Role::Candidate, "only a candidate becomes leader");
    reset_term(term);
    leader = config.id;
    role = Role::Leader;
    state = LeaderState{};
    auto& ls = std::get<LeaderState>(state);
    sync_progress_with_conf();
    for (auto& [id, pr] : ls.progress) {
      if (id == config.id) {
        // What it has written; the rest counts once advance() says so.
        pr.match = log.stable_last_index();
        pr.become_replicate();
      }
    }
    // Any configuration entry in the log may be uncommitted; wait for it to
    // commit before accepting another change (§4.1).
    ls.pending_conf_index = log.last_index();
    // §5.4.2 / §8: a no-op entry of the new term lets the leader commit (and
    // learn the commit index) without waiting for a client.
    ls.first_index_of_term = log.last_index().next();
    append_entry(Entry{term, ls.first_index_of_term, EntryType::Normal, {}});
    after_leader_append();
  }

  // ---- elections ---------------------------------------------------------

  void hup(bool transfer) {
    if (role == Role::Leader) return;
    if (!is_voter()) return;
    if (config.pre_vote && !transfer) {
      campaign(MessageType::PreVote, false);
    } else {
      campaign(MessageType::Vote, transfer);
    }
  }

  void campaign(MessageType type, bool transfer) {
    Term vote_term;
    if (type == MessageType::PreVote) {
      become_pre_candidate();
      vote_term = term.next();
    } else {
      become_candidate();
      vote_term = term;
    }
    // Vote for ourselves first; a single voter wins at once.
    if (record_vote(config.id, true) == VoteResult::Won) {
      if (type == MessageType::PreVote) {
        campaign(MessageType::Vote, false);
      } else {
        become_leader();
      }
      return;
    }
    for (NodeId id : conf().members()) {
      if (id == config.id || !conf().is_voter(id)) continue;
      Message m;
      m.type = type;
      m.to = id;
      m.term = vote_term;
      m.index = log.last_index();
      m.log_term = log.last_term();
      m.transfer = transfer;
      send(std::move(m));
    }
  }

  enum class VoteResult { Pending, Won, Lost };

  VoteResult record_vote(NodeId from, bool granted) {
    auto& cs = std::get<CandidateState>(state);
    if (!conf().is_voter(from)) return VoteResult::Pending;
    cs.votes.emplace(from, granted);
    auto said = [&](NodeId id, bool v) {
      auto it = cs.votes.find(id);
      return it != cs.votes.end() && it->second == v;
    };
    // §4.3: in a joint configuration a majority of each half is needed.
    if (quorum_of([&](NodeId id) { return said(id, true); })) return VoteResult::Won;
    if (!quorum_of([&](NodeId id) { return !said(id, false); })) return VoteResult::Lost;
    return VoteResult::Pending;
  }

  // §4.2.3: while a follower hears from a leader it ignores vote requests,
  // so a removed or partitioned server cannot depose a working leader.
  bool in_lease() const {
    return config.check_quorum && leader != none && election_elapsed < config.election_ticks;
  }

  void handle_vote_request(const Message& m) {
    const bool pre = m.type == MessageType::PreVote;
    // §5.2, §5.4.1 (Figure 2, RequestVote receiver rules 1 and 2): one vote
    // per term, and only for a log at least as up to date as ours.
    const bool can_vote =
        vote == m.from || (vote == none && leader == none) || (pre && m.term > term);
    const bool grant = can_vote && log.is_up_to_date(m.index, m.log_term);
    Message r;
    r.type = pre ? MessageType::PreVoteResponse : MessageType::VoteResponse;
    r.to = m.from;
    // A pre-vote answer carries the term it was asked about when granted, so
    // the pre-candidate counts it; a refusal carries ours.
    r.term = grant && pre ? m.term : term;
    r.reject = !grant;
    send(std::move(r));
    if (grant && !pre) {
      vote = m.from;
      election_elapsed = 0;
    }
  }

  // ---- messages ----------------------------------------------------------

  void send(Message m) {
    m.from = config.id;
    // Vote answers carry their own term (a granted pre-vote is for a future
    // term); everything else carries the sender's current term.
    if (m.type != MessageType::PreVoteResponse && m.type != MessageType::PreVote &&
        m.type != MessageType::VoteResponse && m.type != MessageType::Vote) {
      m.term = term;
    }
    msgs.push_back(std::move(m));
  }

  Status step(Message& m) {
    if (m.to != config.id) return Status(ErrorCode::BadArguments, "message for another node");
    if (m.type == MessageType::App) {
      return Status(ErrorCode::BadArguments, "an application message: not for the consensus core");
    }
    if (m.from == none || m.from == config.id) {
      return Status(ErrorCode::BadArguments, "message from an invalid sender");
    }
    const bool vote_request = m.type == MessageType::Vote || m.type == MessageType::PreVote;
    // A proposal is appended only by the leader of the term it was
    // forwarded in; it never changes anyone's term.
    if (m.type == MessageType::Propose && m.term != term) return Status();
    if (m.term > term) {
      if (vote_request && !m.transfer && in_lease()) return Status();
      if (m.type == MessageType::PreVote || (m.type == MessageType::PreVoteResponse && !m.reject)) {
        // §9.6: pre-votes do not change anyone's term.
      } else if (m.type == MessageType::Append || m.type == MessageType::Heartbeat ||
                 m.type == MessageType::InstallSnapshot || m.type == MessageType::SnapshotChunk) {
        // Figure 2, all servers: a higher term makes us a follower.
        become_follower(m.term, m.from);
      } else {
        become_follower(m.term, none);
      }
    } else if (m.term < term) {
      if ((config.check_quorum || config.pre_vote || !is_voter()) &&
          (m.type == MessageType::Append || m.type == MessageType::Heartbeat ||
           m.type == MessageType::SnapshotChunk)) {
        // A stale leader: tell it our term so it steps down. Without this a
        // node that ran ahead in term could never be heard from again when
        // pre-vote stops it from disrupting the cluster, or when it cannot
        // campaign at all: a new member that took a higher term from a
        // candidate's vote request before its log showed it a member.
        Message r;
        r.type = MessageType::AppendResponse;
        r.to = m.from;
        send(std::move(r));
      } else if (m.type == MessageType::PreVote) {
        Message r;
        r.type = MessageType::PreVoteResponse;
        r.to = m.from;
        r.term = term;
        r.reject = true;
        send(std::move(r));
      }
      return Status();  // Figure 2: stale terms are ignored
    }

    if (vote_request) {
      handle_vote_request(m);
      return Status();
    }
    if (role != Role::Leader) {
      if (m.type == MessageType::Propose) return Status();  // not for us: dropped
      if (m.type == MessageType::ReadIndex) {
        // Not the leader (any more): fail the read at once.
        Message r;
        r.type = MessageType::ReadIndexResponse;
        r.to = m.from;
        r.context = m.context;
        r.reject = true;
        send(std::move(r));
        return Status();
      }
    }
    switch (role) {
      case Role::Follower:
        step_follower(m);
        break;
      case Role::PreCandidate:
      case Role::Candidate:
        step_candidate(m);
        break;
      case Role::Leader:
        step_leader(m);
        break;
    }
    return Status();
  }

  void step_follower(Message& m) {
    switch (m.type) {
      case MessageType::Append:
        election_elapsed = 0;
        leader = m.from;
        handle_append(m);
        break;
      case MessageType::Heartbeat:
        election_elapsed = 0;
        leader = m.from;
        handle_heartbeat(m);
        break;
      case MessageType::InstallSnapshot:
        election_elapsed = 0;
        leader = m.from;
        handle_snapshot(m);
        break;
      case MessageType::SnapshotChunk:
        election_elapsed = 0;
        leader = m.from;
        handle_snapshot_chunk(m);
        break;
      case MessageType::TimeoutNow:
        // §3.10: the leader chose us; campaign at once, past the lease.
        hup(true);
        break;
      case MessageType::ReadIndexResponse: {
        // Only the first answer to a pending request counts: a duplicate,
        // or an answer to a request already failed, is dropped.
        auto it = forwarded_reads.find(m.context);
        if (it == forwarded_reads.end() || it->second.leader != m.from) break;
        forwarded_reads.erase(it);
        if (m.reject) {
          failed_reads.push_back(m.context);
        } else {
          read_states.push_back(ReadState{m.index, m.context});
        }
        break;
      }
      default:
        break;
    }
  }

  void step_candidate(Message& m) {
    const MessageType answer =
        role == Role::PreCandidate ? MessageType::PreVoteResponse : MessageType::VoteResponse;
    switch (m.type) {
      case MessageType::Append:
      case MessageType::Heartbeat:
      case MessageType::InstallSnapshot:
      case MessageType::SnapshotChunk:
        // §5.2: a leader of our term exists; return to follower.
        become_follower(m.term, m.from);
        step_follower(m);
        break;
      case MessageType::PreVoteResponse:
      case MessageType::VoteResponse: {
        if (m.type != answer) break;
        switch (record_vote(m.from, !m.reject)) {
          case VoteResult::Won:
            if (role == Role::PreCandidate) {
              campaign(MessageType::Vote, false);
            } else {
              become_leader();
            }
            break;
          case VoteResult::Lost:
            become_follower(term, none);
            break;
          case VoteResult::Pending:
            break;
        }
        break;
      }
      default:
        break;
    }
  }

  // ---- follower side of replication --------------------------------------

  // Takes entries[from..] (moved out of a message).
  void append_to_log(std::vector<Entry>& entries, std::size_t from) {
    if (from >= entries.size()) return;
    truncate_confs(entries[from].index);
    for (std::size_t k = from; k < entries.size(); ++k)
      note_conf_entry(entries[k]);
    log.append(entries, from);
  }

  void handle_append(Message& m) {
    Message r;
    r.type = MessageType::AppendResponse;
    r.to = m.from;
    if (m.index < log.committed()) {
      // Everything up to our commit index is known to match (§5.3).
      r.index = log.committed();
      send(std::move(r));
      return;
    }
    if (log.match_term(m.index, m.log_term)) {
      // Figure 2, AppendEntries receiver rules 3-5.
      const LogIndex last_new = m.index + m.entries.size();
      if (auto conflict = log.find_conflict(m.entries)) {
        append_to_log(m.entries, *conflict - m.index.next());
      }
      log.commit_to(std::min(m.commit, last_new));
      r.index = last_new;
      send(std::move(r));
      return;
    }
    // Figure 2, rule 2: no matching entry at prev. Hint where to look next
    // (§5.3, "the follower can include the term of the conflicting entry"):
    // the last index whose term is at most the leader's term at prev.
    const LogIndex hint =
        log.find_conflict_by_term(std::min(m.index, log.last_index()), m.log_term);
    r.reject = true;
    r.index = m.index;
    r.reject_hint = hint;
    r.log_term = log.term(hint).value_or(Term(0));
    send(std::move(r));
  }

  void handle_heartbeat(const Message& m) {
    // The leader sends min(its commit, our match), which we hold.
    log.commit_to(std::min(m.commit, log.last_index()));
    Message r;
    r.type = MessageType::HeartbeatResponse;
    r.to = m.from;
    r.context = m.context;
    send(std::move(r));
    if (m.commit > log.last_index()) {
      // The leader believes we hold entries we do not: we lost them (our
      // data was wiped and we came back with the same id). Say where our
      // log ends, as a rejection the leader takes for that (see
      // Progress::lost_entries), so it does not wait for a write to find
      // out.
      Message lost;
      lost.type = MessageType::AppendResponse;
      lost.to = m.from;
      lost.reject = true;
      lost.index = m.commit;
      lost.reject_hint = log.last_index();
      lost.log_term = log.term(lost.reject_hint).value_or(Term(0));
      send(std::move(lost));
    }
  }

  void handle_snapshot(const Message& m) {
    Message r;
    r.type = MessageType::AppendResponse;
    r.to = m.from;
    if (!m.snapshot) return;
    const SnapshotMeta& meta = m.snapshot->meta;
    if (meta.index <= log.committed()) {
      r.index = log.committed();
    } else if (log.match_term(meta.index, meta.term)) {
      // §5.3 of the InstallSnapshot rules: our log already holds the
      // snapshot's last entry; keep the entries after it.
      log.commit_to(meta.index);
      r.index = log.last_index();
    } else {
      log.restore(m.snapshot);
      unstable_snapshot_in_chunks = false;
      incoming.reset();
      rebuild_confs();
      r.index = log.last_index();
    }
    send(std::move(r));
  }

  // §5.2 with Figure 5.3's offset and done fields: a snapshot arrives in
  // chunks, in order. Each chunk goes to the application to write (the
  // core keeps only how many bytes it holds); each is acknowledged after
  // that write, and the last one installs the snapshot like a whole one.
  void handle_snapshot_chunk(const Message& m) {
    if (!m.snapshot) return;
    const SnapshotMeta& meta = m.snapshot->meta;
    Message r;
    r.to = m.from;
    if (meta.index <= log.committed() || log.match_term(meta.index, meta.term)) {
      // Nothing to install: the log already holds the snapshot's last entry.
      incoming.reset();
      r.type = MessageType::AppendResponse;
      if (meta.index <= log.committed()) {
        r.index = log.committed();
      } else {
        log.commit_to(meta.index);
        r.index = log.last_index();
      }
      send(std::move(r));
      return;
    }
    r.type = MessageType::SnapshotChunkResponse;
    r.index = meta.index;
    // A transfer belongs to one leader and term: a new leader, or a new
    // snapshot, starts over.
    const bool same = incoming && incoming->from == m.from && incoming->term == term &&
                      incoming->index == meta.index && incoming->snapshot_term == meta.term;
    if (same && m.chunk_offset < incoming->received) {
      r.chunk_offset = incoming->received;  // a duplicate: say what we hold
      send(std::move(r));
      return;
    }
    if (!same && m.chunk_offset != 0) {
      r.reject = true;  // we hold nothing of it (a restart): start over
      send(std::move(r));
      return;
    }
    if (!same) incoming = Incoming{m.from, term, meta.index, meta.term, 0};
    if (m.chunk_offset > incoming->received) {
      r.reject = true;  // a gap: resume where we are
      r.chunk_offset = incoming->received;
      send(std::move(r));
      return;
    }
    snapshot_chunks.push_back(SnapshotChunk{meta, m.chunk_offset, m.snapshot->data, m.chunk_last});
    incoming->received += m.snapshot->data.size();
    if (!m.chunk_last) {
      r.chunk_offset = incoming->received;
      send(std::move(r));
      return;
    }
    incoming.reset();
    log.restore(std::make_shared<const Snapshot>(Snapshot{meta, {}}));
    unstable_snapshot_in_chunks = true;
    rebuild_confs();
    r.type = MessageType::AppendResponse;
    r.index = log.last_index();
    send(std::move(r));
  }

  // ---- leader side of replication ----------------------------------------

  LeaderState& leader_state() { return std::get<LeaderState>(state); }

  void append_entry(Entry e) {
    auto& ls = leader_state();
    if (e.type == EntryType::ConfChange) ls.pending_conf_index = e.index;
    const bool conf_change = e.type == EntryType::ConfChange;
    if (conf_change) note_conf_entry(e);
    log.append_one(std::move(e));
    if (conf_change) sync_progress_with_conf();
  }

  // The leader writes its log in parallel with replicating it (§10.2.1):
  // its appends may leave before its own write is durable (see
  // Ready::messages_eager). So it counts its own entries toward a commit
  // only once they are durable (self_stored), never at append: a majority
  // that counted a copy a crash can still take away could commit an entry
  // that a later leader overwrites. A leader alone commits in the Ready
  // after the write, and applies in it, as every other leader does.
  void after_leader_append() { append_due = true; }

  // advance(): the leader's own entries up to (i, t) are durable.
  void self_stored(LogIndex i, Term t) {
    auto& ls = leader_state();
    auto it = ls.progress.find(config.id);
    if (it == ls.progress.end() || !log.match_term(i, t)) return;
    if (!it->second.maybe_update(i)) return;
    // Followers learn the new commit index with the next appends.
    if (maybe_commit() && role == Role::Leader) bcast_append();
  }

  // Sends the next batch to `to` if flow control allows it. False when
  // nothing was sent.
  bool send_append(NodeId to, bool send_if_empty) {
    auto& ls = leader_state();
    auto it = ls.progress.find(to);
    if (it == ls.progress.end()) return false;
    Progress& pr = it->second;
    if (pr.paused()) return false;
    const LogIndex prev = pr.next.prev();
    const auto prev_term = log.term(prev);
    std::vector<Entry> entries;
    const bool have = prev_term.has_value() &&
                      log.entries(pr.next, log.last_index().next(), config.max_entries_per_message,
                                  config.max_bytes_per_message, entries);
    if (!have) {
      // §5: the entries it needs were compacted; stream the snapshot.
      pr.become_snapshot(storage.snapshot_meta().index);
      send_chunk(to, pr);
      return true;
    }
    if (entries.empty() && !send_if_empty) return false;
    Message m;
    m.type = MessageType::Append;
    m.to = to;
    m.index = prev;
    m.log_term = *prev_term;
    m.commit = log.committed();
    if (!entries.empty()) {
      const LogIndex last = entries.back().index;
      if (pr.state == ProgressState::Replicate) {
        // §10.2.1: pipelining; assume success and move on.
        pr.next = last.next();
        pr.inflights.add(last);
      }
    }
    if (pr.state == ProgressState::Probe) pr.probe_sent = true;
    m.entries = std::move(entries);
    send(std::move(m));
    return true;
  }

  // The chunk of the snapshot at pr.snapshot_offset; the storage's latest
  // snapshot is what is streamed, and a newer one restarts the transfer.
  void send_chunk(NodeId to, Progress& pr) {
    const SnapshotMeta& meta = storage.snapshot_meta();
    if (meta.index != pr.pending_snapshot) pr.become_snapshot(meta.index);
    const std::uint64_t size = storage.snapshot_bytes();
    if (pr.snapshot_offset > size) pr.snapshot_offset = 0;
    auto chunk = std::make_shared<Snapshot>();
    chunk->meta = meta;
    if (pr.snapshot_offset < size) {
      storage.read_snapshot(pr.snapshot_offset, config.snapshot_chunk_bytes, chunk->data);
      COORD_ASSERT(!chunk->data.empty() && chunk->data.size() <= config.snapshot_chunk_bytes,
                   "read_snapshot returned ", chunk->data.size(), " bytes");
    }
    Message m;
    m.type = MessageType::SnapshotChunk;
    m.to = to;
    m.chunk_offset = pr.snapshot_offset;
    pr.chunk_end = pr.snapshot_offset + chunk->data.size();
    m.chunk_last = pr.chunk_end >= size;
    m.snapshot = std::move(chunk);
    pr.snapshot_ticks = 0;
    send(std::move(m));
  }

  void bcast_append() {
    auto& ls = leader_state();
    for (auto& [id, pr] : ls.progress) {
      if (id == config.id) continue;
      send_append(id, true);
    }
  }

  void send_heartbeat(NodeId to, std::uint64_t context) {
    auto& ls = leader_state();
    const Progress& pr = ls.progress.at(to);
    Message m;
    m.type = MessageType::Heartbeat;
    m.to = to;
    // Never tell a follower to commit past what it is known to hold.
    m.commit = std::min(pr.match, log.committed());
    m.context = context;
    send(std::move(m));
  }

  void bcast_heartbeat(std::uint64_t context) {
    auto& ls = leader_state();
    for (auto& [id, pr] : ls.progress) {
      if (id != config.id) send_heartbeat(id, context);
    }
  }

  // §3.6.2 and Figure 8: commit the highest index stored on a majority, but
  // only by counting replicas of an entry of the current term; earlier
  // entries then commit with it (Log Matching).
  bool maybe_commit() {
    auto& ls = leader_state();
    if (conf().voters.empty()) return false;
    // §4.3: during a joint change an entry commits on a majority of both.
    const LogIndex candidate = quorum_value<LogIndex>([&](NodeId id) {
      auto it = ls.progress.find(id);
      return it == ls.progress.end() ? LogIndex(0) : it->second.match;
    });
    if (candidate <= log.committed()) return false;
    if (log.term(candidate) != term && !config.commit_by_counting_earlier_terms_for_testing) {
      return false;
    }
    log.commit_to(candidate);
    on_leader_commit();
    return true;
  }

  void on_leader_commit() {
    auto& ls = leader_state();
    // Reads that waited for this leader's first commit (§6.4 step 1).
    if (log.committed() >= ls.first_index_of_term && !ls.reads_waiting.empty()) {
      auto waiting = std::move(ls.reads_waiting);
      ls.reads_waiting.clear();
      for (auto& r : waiting)
        start_read(r.context, r.from);
    }
    // §4.2.2: a leader that is no longer a voter steps down once the
    // configuration without it is committed.
    if (!is_voter() && log.committed() >= confs.back().first) {
      become_follower(term, none);
      return;
    }
    // §4.3: once C_old,new is committed the leader moves on to C_new.
    if (conf().joint() && log.committed() >= confs.back().first &&
        ls.pending_conf_index <= log.committed()) {
      append_entry(
          Entry{term, log.last_index().next(), EntryType::ConfChange, JointConfChange{}.encode()});
      after_leader_append();
    }
  }

  void step_leader(Message& m) {
    auto& ls = leader_state();
    auto it = ls.progress.find(m.from);
    if (m.type == MessageType::ReadIndex) {
      if (it == ls.progress.end()) return;
      request_read(m.context, m.from);
      return;
    }
    if (it == ls.progress.end()) return;  // not a member (any more)
    Progress& pr = it->second;
    switch (m.type) {
      case MessageType::Propose:
        // Dropped during a transfer, like a local proposal would be refused;
        // the forwarder learns nothing either way (see raft.h).
        if (ls.transfer_target != none || m.entries.empty()) return;
        if (!pr.accept_forward(m.context)) return;
        for (Entry& e : m.entries) {
          append_entry(Entry{term, log.last_index().next(), EntryType::Normal, std::move(e.data)});
        }
        after_leader_append();
        return;
      case MessageType::SnapshotChunkResponse:
        pr.recent_active = true;
        if (pr.state != ProgressState::Snapshot || m.index != pr.pending_snapshot) return;
        if (m.reject) {
          pr.snapshot_offset = m.chunk_offset;
        } else if (m.chunk_offset == pr.chunk_end && pr.chunk_end > pr.snapshot_offset) {
          pr.snapshot_offset = pr.chunk_end;  // the chunk in flight arrived
        } else if (m.chunk_offset > pr.chunk_end) {
          // It holds more of this snapshot than this round sent (an earlier
          // round of the same transfer): go on from there.
          pr.snapshot_offset = m.chunk_offset;
        } else {
          return;  // a duplicate or a late answer
        }
        send_chunk(m.from, pr);
        return;
      case MessageType::AppendResponse:
        pr.recent_active = true;
        if (m.reject) {
          // §5.3 with the fast backtracking hint: skip a whole term at once.
          LogIndex hint = m.reject_hint;
          if (m.log_term > Term(0)) hint = log.find_conflict_by_term(m.reject_hint, m.log_term);
          if (pr.maybe_decrease_to(m.index, hint)) {
            if (pr.state == ProgressState::Replicate) pr.become_probe();
            send_append(m.from, true);
          }
          return;
        }
        {
          const bool was_paused = pr.paused();
          if (!pr.maybe_update(m.index)) return;
          switch (pr.state) {
            case ProgressState::Probe:
              pr.become_replicate();
              break;
            case ProgressState::Snapshot:
              if (pr.match >= pr.pending_snapshot) {
                pr.become_probe();
                pr.become_replicate();
              }
              break;
            case ProgressState::Replicate:
              pr.inflights.free_to(m.index);
              break;
          }
          if (maybe_commit()) {
            if (role != Role::Leader) return;
            bcast_append();
          } else if (was_paused) {
            send_append(m.from, true);
          }
          // Fill the window (pipelining).
          for (std::size_t k = 0; k < config.max_inflight_messages; ++k) {
            if (role != Role::Leader || !send_append(m.from, false)) break;
          }
          if (role == Role::Leader) {
            auto& l2 = leader_state();
            auto p2 = l2.progress.find(m.from);
            if (m.from == l2.transfer_target && p2 != l2.progress.end() &&
                p2->second.match == log.last_index()) {
              send_timeout_now(m.from);
            }
          }
        }
        return;
      case MessageType::HeartbeatResponse:
        pr.recent_active = true;
        pr.probe_sent = false;
        if (pr.state == ProgressState::Replicate && pr.inflights.full()) pr.inflights.free_first();
        if (pr.match < log.last_index()) send_append(m.from, true);
        if (m.context != 0 && m.context > pr.read_ack) {
          pr.read_ack = m.context;
          release_reads();
        }
        return;
      default:
        return;
    }
  }

  void send_timeout_now(NodeId to) {
    Message m;
    m.type = MessageType::TimeoutNow;
    m.to = to;
    send(std::move(m));
  }

  // ---- ReadIndex (§6.4) --------------------------------------------------

  void request_read(std::uint64_t context, NodeId from) {
    auto& ls = leader_state();
    // Step 1: the leader must have committed an entry of its term, so that
    // its commit index is at least that of any earlier leader.
    if (log.committed() < ls.first_index_of_term) {
      ls.reads_waiting.push_back(PendingRead{0, LogIndex(0), context, from});
      return;
    }
    start_read(context, from);
  }

  void start_read(std::uint64_t context, NodeId from) {
    auto& ls = leader_state();
    if (sole_voter()) {
      answer_read(PendingRead{0, log.committed(), context, from});
      return;
    }
    // Steps 2-3: record the commit index, then confirm leadership with a
    // round of heartbeats a majority answers.
    const std::uint64_t round = ++ls.read_round;
    ls.reads.push_back(PendingRead{round, log.committed(), context, from});
    auto self = ls.progress.find(config.id);
    if (self != ls.progress.end()) self->second.read_ack = round;
    bcast_heartbeat(round);
  }

  void release_reads() {
    auto& ls = leader_state();
    if (conf().voters.empty()) return;
    const std::uint64_t confirmed = quorum_value<std::uint64_t>([&](NodeId id) -> std::uint64_t {
      auto it = ls.progress.find(id);
      return it == ls.progress.end() ? 0 : it->second.read_ack;
    });
    while (!ls.reads.empty() && ls.reads.front().round <= confirmed) {
      answer_read(ls.reads.front());
      ls.reads.pop_front();
    }
  }

  void answer_read(const PendingRead& r) {
    if (r.from == none || r.from == config.id) {
      read_states.push_back(ReadState{r.index, r.context});
      return;
    }
    Message m;
    m.type = MessageType::ReadIndexResponse;
    m.to = r.from;
    m.index = r.index;
    m.context = r.context;
    send(std::move(m));
  }

  // ---- time --------------------------------------------------------------

  void tick() {
    ++ticks;
    expire_forwarded_reads();
    if (role == Role::Leader) {
      tick_leader();
      return;
    }
    ++election_elapsed;
    if (election_elapsed >= randomized_election_timeout) {
      // A whole timeout without a leader: forget it, so that its lease
      // (§4.2.3) no longer makes us ignore candidates. A node that cannot
      // campaign (a learner, or a voter whose log does not yet show it) would
      // otherwise keep a stale leader, and refuse votes a quorum needs.
      reset_election_timer();
      drop_leader();
      hup(false);
    }
  }

  // A forwarded read whose request or answer was lost would wait forever:
  // after two election timeouts without an answer it fails.
  void expire_forwarded_reads() {
    if (forwarded_reads.empty()) return;
    const auto limit = static_cast<std::uint64_t>(2 * config.election_ticks);
    for (auto it = forwarded_reads.begin(); it != forwarded_reads.end();) {
      if (ticks - it->second.sent_at >= limit) {
        failed_reads.push_back(it->first);
        it = forwarded_reads.erase(it);
      } else {
        ++it;
      }
    }
  }

  void tick_leader() {
    ++heartbeat_elapsed;
    ++election_elapsed;
    auto& ls = leader_state();
    for (auto& [id, pr] : ls.progress) {
      if (pr.state == ProgressState::Snapshot &&
          ++pr.snapshot_ticks > config.snapshot_retry_ticks) {
        // The chunk or its answer was lost: send it again (a follower that
        // lost the transfer answers with where to resume).
        send_chunk(id, pr);
      }
    }
    if (election_elapsed >= config.election_ticks) {
      election_elapsed = 0;
      if (config.check_quorum) {
        // §6.2: step down when a majority was not heard from during a whole
        // election timeout; clients can then find the real leader.
        const bool heard = quorum_of([&](NodeId id) {
          auto it = ls.progress.find(id);
          return id == config.id || (it != ls.progress.end() && it->second.recent_active);
        });
        if (!heard) {
          become_follower(term, none);
          return;
        }
        for (auto& [id, pr] : ls.progress)
          pr.recent_active = id == config.id;
      }
      // §3.10: a transfer that did not finish within an election timeout is
      // abandoned, and the leader serves again.
      ls.transfer_target = none;
    }
    if (heartbeat_elapsed >= config.heartbeat_ticks) {
      heartbeat_elapsed = 0;
      bcast_heartbeat(ls.reads.empty() ? 0 : ls.reads.back().round);
    }
  }

  // ---- client requests ---------------------------------------------------

  Status check_can_propose() {
    if (role != Role::Leader) return Status(ErrorCode::InvalidState, "not the leader");
    if (leader_state().transfer_target != none) {
      return Status(ErrorCode::Throttled, "leadership transfer in progress");
    }
    return Status();
  }

  // Takes the strings out of `data`.
  Status propose(std::span<std::string> data) {
    if (role != Role::Leader) return forward(data);
    COORD_RETURN_IF_ERROR(check_can_propose());
    for (auto& d : data) {
      append_entry(Entry{term, log.last_index().next(), EntryType::Normal, std::move(d)});
    }
    after_leader_append();
    return Status();
  }

  void restart_forwarding() {
    std::erase_if(msgs, [](const Message& m) { return m.type == MessageType::Propose; });
    forward_pending.clear();
    forward_leader = none;
  }

  // Takes proposals for the leader this node knows; the next Ready hands
  // them over (send_forwarded).
  Status forward(std::span<std::string> data) {
    if (leader == none) return Status(ErrorCode::ConnectionLoss, "no leader known");
    for (auto& d : data)
      forward_pending.push_back(std::move(d));
    return Status();
  }

  // The proposals gathered since the last Ready, to the leader, in as many
  // Propose messages as the append limits need. A leader lost or changed
  // since they were taken drops them, as drop_leader() drops those already
  // in messages: the Ready says leader_changed, and their outcome is
  // unknown to the proposer either way.
  void send_forwarded() {
    if (forward_pending.empty()) return;
    std::vector<std::string> data = std::move(forward_pending);
    forward_pending.clear();
    if (role == Role::Leader || leader == none) return;
    if (forward_leader != leader || forward_term != term) {
      ++forward_incarnation;
      forward_seq = 0;
      forward_leader = leader;
      forward_term = term;
    }
    std::size_t k = 0;
    while (k < data.size()) {
      Message m;
      m.type = MessageType::Propose;
      m.to = leader;
      std::size_t bytes = 0;
      while (k < data.size() && m.entries.size() < config.max_entries_per_message &&
             (m.entries.empty() || bytes + data[k].size() <= config.max_bytes_per_message)) {
        bytes += data[k].size();
        m.entries.push_back(Entry{Term(0), LogIndex(0), EntryType::Normal, std::move(data[k])});
        ++k;
      }
      if (++forward_seq == 0) {
        // 2^32 forwards in one stream: start another.
        ++forward_incarnation;
        forward_seq = 1;
      }
      m.context = (std::uint64_t{forward_incarnation} << 32) | forward_seq;
      send(std::move(m));
    }
  }

  Status propose_conf_changes(std::vector<ConfChange> changes) {
    COORD_RETURN_IF_ERROR(check_can_propose());
    auto& ls = leader_state();
    if (ls.pending_conf_index > log.committed() || log.committed() < ls.first_index_of_term) {
      return Status(ErrorCode::ReconfigInProgress, "an earlier change is not committed yet");
    }
    JointConfChange jc{std::move(changes)};
    if (jc.leave()) return Status(ErrorCode::BadArguments, "no change given");
    auto next = jc.apply_to(conf());
    if (!next.ok()) return next.status();
    append_entry(Entry{term, log.last_index().next(), EntryType::ConfChange, jc.encode()});
    after_leader_append();
    return Status();
  }

  Status propose_conf_change(const ConfChange& cc) {
    COORD_RETURN_IF_ERROR(check_can_propose());
    auto& ls = leader_state();
    if (ls.pending_conf_index > log.committed() || log.committed() < ls.first_index_of_term) {
      return Status(ErrorCode::ReconfigInProgress, "an earlier change is not committed yet");
    }
    auto next = cc.apply_to(conf());
    if (!next.ok()) return next.status();
    append_entry(Entry{term, log.last_index().next(), EntryType::ConfChange, cc.encode()});
    after_leader_append();
    return Status();
  }

  Status read_index(std::uint64_t context) {
    if (role == Role::Leader) {
      request_read(context, none);
      return Status();
    }
    if (leader == none) return Status(ErrorCode::ConnectionLoss, "no leader known");
    if (forwarded_reads.contains(context)) {
      return Status(ErrorCode::BadArguments, "a read with this context is pending");
    }
    if (forwarded_reads.size() >= limits::forwarded_reads_max) {
      failed_reads.push_back(forwarded_reads.begin()->first);
      forwarded_reads.erase(forwarded_reads.begin());
    }
    forwarded_reads.emplace(context, ForwardedRead{leader, ticks});
    Message m;
    m.type = MessageType::ReadIndex;
    m.to = leader;
    m.context = context;
    send(std::move(m));
    return Status();
  }

  Status transfer_leadership(NodeId target) {
    if (role != Role::Leader) return Status(ErrorCode::InvalidState, "not the leader");
    if (target == config.id) return Status();
    if (!conf().is_voter(target)) return Status(ErrorCode::BadArguments, "target is not a voter");
    auto& ls = leader_state();
    if (ls.transfer_target == target) return Status();
    ls.transfer_target = target;
    // The transfer must finish within an election timeout (§3.10).
    election_elapsed = 0;
    const Progress& pr = ls.progress.at(target);
    if (pr.match == log.last_index()) {
      send_timeout_now(target);
    } else {
      send_append(target, true);
    }
    return Status();
  }

  // ---- Ready -------------------------------------------------------------

  // Moves the messages that may leave before the Ready's writes are
  // durable to the front, keeping the order within each part, and returns
  // how many there are. They promise nothing about what this node stores:
  // a leader's appends and heartbeats (followers acknowledge only what they
  // wrote themselves, and the leader counts its own copy once durable),
  // forwarded proposals and reads, and read answers. Votes and
  // acknowledgements wait. None may leave early while the term or vote they
  // carry is not durable yet.
  std::size_t order_eager_first(std::vector<Message>& out) const {
    if (term != prev_hard_state.term || vote != prev_hard_state.vote) return 0;
    auto eager = [](const Message& m) {
      switch (m.type) {
        case MessageType::Append:
        case MessageType::Heartbeat:
        case MessageType::Propose:
        case MessageType::ReadIndex:
        case MessageType::ReadIndexResponse:
          return true;
        default:
          return false;
      }
    };
    auto split = std::stable_partition(out.begin(), out.end(), eager);
    return static_cast<std::size_t>(split - out.begin());
  }

  HardState hard_state() const { return HardState{term, vote, log.committed()}; }

  LogIndex apply_from() const {
    LogIndex from = log.applied().next();
    if (log.unstable_snapshot()) from = std::max(from, log.unstable_snapshot()->meta.index.next());
    return from;
  }

  bool has_ready() const {
    if (!msgs.empty() || !forward_pending.empty() || append_due || !read_states.empty() ||
        !failed_reads.empty() || !snapshot_chunks.empty() || !log.unstable_entries().empty() ||
        log.unstable_snapshot()) {
      return true;
    }
    if (hard_state() != prev_hard_state) return true;
    if (role != prev_role || leader != prev_leader || leader_dropped) return true;
    return log.committed() >= apply_from();
  }

  Ready ready() {
    COORD_ASSERT(!in_ready.pending, "ready() called twice without advance()");
    if (append_due) {
      append_due = false;
      if (role == Role::Leader) bcast_append();
    }
    send_forwarded();
    Ready rd;
    rd.entries = log.unstable_entries();
    rd.snapshot = log.unstable_snapshot();
    const LogIndex from = apply_from();
    if (log.committed() >= from) {
      log.entries(from, log.committed().next(), limits::ready_committed_entries_max,
                  committed_bytes_per_ready_max, rd.committed_entries);
    }
    rd.messages = std::move(msgs);
    msgs.clear();
    rd.messages_eager = order_eager_first(rd.messages);
    rd.snapshot_in_chunks = rd.snapshot && unstable_snapshot_in_chunks;
    rd.snapshot_chunks = std::move(snapshot_chunks);
    snapshot_chunks.clear();
    rd.read_states = std::move(read_states);
    read_states.clear();
    rd.failed_reads = std::move(failed_reads);
    failed_reads.clear();
    const HardState hs = hard_state();
    if (hs != prev_hard_state) rd.hard_state = hs;
    rd.soft_state_changed = role != prev_role || leader != prev_leader;
    rd.leader_changed = leader_dropped || leader != prev_leader || term != prev_term;
    prev_role = role;
    prev_leader = leader;
    prev_term = term;
    leader_dropped = false;

    in_ready.pending = true;
    in_ready.last_entry.reset();
    if (!rd.entries.empty()) {
      in_ready.last_entry = std::make_pair(rd.entries.back().index, rd.entries.back().term);
    }
    in_ready.snapshot.reset();
    if (rd.snapshot) in_ready.snapshot = rd.snapshot->meta.index;
    in_ready.last_committed.reset();
    if (!rd.committed_entries.empty()) in_ready.last_committed = rd.committed_entries.back().index;
    in_ready.hard_state = rd.hard_state;
    return rd;
  }

  void advance() {
    COORD_ASSERT(in_ready.pending, "advance() without ready()");
    in_ready.pending = false;
    if (in_ready.hard_state) prev_hard_state = *in_ready.hard_state;
    if (in_ready.snapshot) {
      log.stable_snapshot_to(*in_ready.snapshot);
      log.applied_to(*in_ready.snapshot);
    }
    if (in_ready.last_entry) log.stable_to(in_ready.last_entry->first, in_ready.last_entry->second);
    if (in_ready.last_committed) log.applied_to(*in_ready.last_committed);
    if (in_ready.last_entry && role == Role::Leader) {
      self_stored(in_ready.last_entry->first, in_ready.last_entry->second);
    }
    trim_confs();
  }

  RaftStatus status() const {
    RaftStatus s;
    s.id = config.id;
    s.role = role;
    s.term = term;
    s.vote = vote;
    s.leader = leader;
    s.commit = log.committed();
    s.applied = log.applied();
    s.first_index = log.first_index();
    s.last_index = log.last_index();
    if (const auto* ls = std::get_if<LeaderState>(&state)) {
      s.transfer_target = ls->transfer_target;
      for (const auto& [id, pr] : ls->progress) {
        s.progress.push_back(ProgressInfo{id, pr.state, pr.match, pr.next, pr.inflights.size(),
                                          pr.learner, pr.recent_active});
      }
    }
    return s;
  }
};

Raft::Raft(const RaftConfig& config, const LogStorage& storage, Random random)
    : impl_(std::make_unique<Impl>(config, storage, random)) {}
Raft::~Raft() = default;
Raft::Raft(Raft&&) noexcept = default;
Raft& Raft::operator=(Raft&&) noexcept = default;

void Raft::tick() {
  impl_->tick();
}
Status Raft::step(Message m) {
  return impl_->step(m);
}
Status Raft::propose(std::string data) {
  return impl_->propose(std::span<std::string>(&data, 1));
}
Status Raft::propose_batch(std::vector<std::string> data) {
  return impl_->propose(data);
}
Status Raft::propose_conf_change(const ConfChange& cc) {
  return impl_->propose_conf_change(cc);
}
Status Raft::propose_conf_changes(std::vector<ConfChange> changes) {
  return impl_->propose_conf_changes(std::move(changes));
}
void Raft::campaign() {
  impl_->hup(false);
}
void Raft::restart_forwarding() {
  impl_->restart_forwarding();
}
Status Raft::read_index(std::uint64_t context) {
  return impl_->read_index(context);
}
Status Raft::transfer_leadership(NodeId target) {
  return impl_->transfer_leadership(target);
}
bool Raft::has_ready() const {
  return impl_->has_ready();
}
Ready Raft::ready() {
  return impl_->ready();
}
void Raft::advance() {
  impl_->advance();
}
RaftStatus Raft::status() const {
  return impl_->status();
}
Role Raft::role() const {
  return impl_->role;
}
Term Raft::term() const {
  return impl_->term;
}
NodeId Raft::leader() const {
  return impl_->leader;
}
NodeId Raft::id() const {
  return impl_->config.id;
}
LogIndex Raft::commit_index() const {
  return impl_->log.committed();
}
LogIndex Raft::last_index() const {
  return impl_->log.last_index();
}
LogIndex Raft::first_index() const {
  return impl_->log.first_index();
}
const ConfState& Raft::conf_state() const {
  return impl_->conf();
}
ConfState Raft::conf_state_at(LogIndex i) const {
  return impl_->conf_at(i);
}
std::optional<Term> Raft::term_at(LogIndex i) const {
  return impl_->log.term(i);
}
std::vector<Entry> Raft::log_entries(LogIndex lo, LogIndex hi) const {
  std::vector<Entry> out;
  while (lo < hi) {
    const std::size_t before = out.size();
    if (!impl_->log.entries(lo, hi, limits::append_entries_per_message_max, SIZE_MAX, out)) break;
    if (out.size() == before) break;
    lo = out.back().index.next();
  }
  return out;
}

}  // namespace coord::consensus
