// One test per rule of the Raft paper's Figure 2 and of §5.4, named after
// the rule. Each drives single cores with hand-built messages (or a small
// Cluster) and checks exactly what the rule says.

#include <gtest/gtest.h>

#include "cluster.h"
#include "coord/consensus/raft.h"

namespace coord::consensus {
namespace {

using testing::Cluster;
using testing::NodeOptions;

NodeId n(std::uint64_t v) {
  return NodeId(v);
}

ConfState voters(std::initializer_list<std::uint64_t> ids) {
  ConfState c;
  for (auto i : ids)
    c.voters.push_back(NodeId(i));
  return c;
}

// A single core over its own storage, with helpers to feed it messages and
// collect what it sends.
struct Single {
  MemoryStorage storage;
  std::unique_ptr<Raft> raft;

  // The log starts empty after a snapshot at index 0 that holds the
  // configuration, so tests can build logs from index 1.
  explicit Single(std::uint64_t id, ConfState conf = voters({1, 2, 3}), bool pre_vote = false) {
    EXPECT_TRUE(
        storage.apply_snapshot(Snapshot{SnapshotMeta{LogIndex(0), Term(0), conf}, {}}).ok());
    start(id, pre_vote);
  }
  void start(std::uint64_t id, bool pre_vote = false) {
    RaftConfig c;
    c.id = NodeId(id);
    c.pre_vote = pre_vote;
    c.check_quorum = false;
    raft = std::make_unique<Raft>(c, storage, Random(id));
  }
  // Persists and returns the Ready.
  Ready flush() {
    Ready rd = raft->ready();
    if (rd.snapshot) {
      EXPECT_TRUE(storage.apply_snapshot(*rd.snapshot).ok());
    }
    storage.append(rd.entries);
    if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
    raft->advance();
    return rd;
  }
  std::vector<Message> sent() { return flush().messages; }
  void step(Message m) {
    m.to = raft->id();
    ASSERT_TRUE(raft->step(m).ok());
  }
  // Gives this follower a log with the given terms at indexes 1.., as if
  // from a leader of the last term.
  void load_log(const std::vector<std::uint64_t>& terms) {
    Message m;
    m.type = MessageType::Append;
    m.from = n(9);
    m.term = Term(terms.empty() ? 1 : terms.back());
    for (std::size_t i = 0; i < terms.size(); ++i) {
      m.entries.push_back(Entry{Term(terms[i]), LogIndex(i + 1), EntryType::Normal, "e"});
    }
    step(m);
    flush();
  }
};

Message append(std::uint64_t from, std::uint64_t term, std::uint64_t prev_term,
               std::uint64_t prev_index, std::vector<std::pair<std::uint64_t, std::uint64_t>> ents,
               std::uint64_t commit) {
  Message m;
  m.type = MessageType::Append;
  m.from = n(from);
  m.term = Term(term);
  m.log_term = Term(prev_term);
  m.index = LogIndex(prev_index);
  m.commit = LogIndex(commit);
  for (auto [t, i] : ents)
    m.entries.push_back(Entry{Term(t), LogIndex(i), EntryType::Normal, "x"});
  return m;
}

Message vote(std::uint64_t from, std::uint64_t term, std::uint64_t last_term,
             std::uint64_t last_index) {
  Message m;
  m.type = MessageType::Vote;
  m.from = n(from);
  m.term = Term(term);
  m.log_term = Term(last_term);
  m.index = LogIndex(last_index);
  return m;
}

const Message* find(const std::vector<Message>& ms, MessageType t) {
  for (const auto& m : ms) {
    if (m.type == t) return &m;
  }
  return nullptr;
}

void elect(Cluster& c, NodeId id) {
  c.raft(id).campaign();
  c.stabilize();
  ASSERT_EQ(c.raft(id).role(), Role::Leader);
}

Cluster three(NodeOptions o = {}) {
  Cluster c;
  for (std::uint64_t i = 1; i <= 3; ++i)
    c.add_node(n(i), voters({1, 2, 3}), o);
  return c;
}

// ---- Figure 2: Rules for Servers, all servers -----------------------------

TEST(Figure2AllServers, AppliesCommittedEntriesInOrder) {
  Cluster c = three();
  elect(c, n(1));
  ASSERT_TRUE(c.raft(n(1)).propose_batch({"a", "b", "c"}).ok());
  c.stabilize();
  for (NodeId id : c.ids()) {
    const auto& applied = c.node(id).applied;
    ASSERT_EQ(applied.size(), 3u) << "node " << id;
    EXPECT_EQ(applied[0].data, "a");
    EXPECT_EQ(applied[2].data, "c");
    EXPECT_EQ(c.node(id).applied_index, c.raft(id).commit_index());
  }
}

TEST(Figure2AllServers, HigherTermInAnyMessageMakesAFollower) {
  Cluster c = three();
  elect(c, n(1));
  Message m = append(3, 7, 0, 0, {}, 0);
  m.type = MessageType::HeartbeatResponse;
  m.to = n(1);
  ASSERT_TRUE(c.raft(n(1)).step(m).ok());
  EXPECT_EQ(c.raft(n(1)).role(), Role::Follower);
  EXPECT_EQ(c.raft(n(1)).term(), Term(7));
}

// ---- Figure 2: followers and candidates -----------------------------------

TEST(Figure2Followers, ElectionTimeoutWithoutLeaderStartsElection) {
  Single s(1);
  for (int i = 0; i < 20 && s.raft->role() == Role::Follower; ++i)
    s.raft->tick();
  EXPECT_EQ(s.raft->role(), Role::Candidate);
}

TEST(Figure2Followers, HearingFromLeaderResetsElectionTimer) {
  Single s(1);
  for (int i = 0; i < 100; ++i) {
    s.raft->tick();
    Message hb = append(2, 1, 0, 0, {}, 0);
    hb.type = MessageType::Heartbeat;
    s.step(hb);
  }
  EXPECT_EQ(s.raft->role(), Role::Follower);
  EXPECT_EQ(s.raft->leader(), n(2));
}

TEST(Figure2Candidates, OnConversionIncrementTermVoteForSelfAndRequestVotes) {
  Single s(1);
  s.raft->campaign();
  EXPECT_EQ(s.raft->role(), Role::Candidate);
  EXPECT_EQ(s.raft->term(), Term(1));
  Ready rd = s.flush();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote, n(1));
  int votes = 0;
  for (const auto& m : rd.messages)
    votes += m.type == MessageType::Vote ? 1 : 0;
  EXPECT_EQ(votes, 2);
}

TEST(Figure2Candidates, VotesFromMajorityMakeLeader) {
  Single s(1);
  s.raft->campaign();
  s.flush();
  Message r = vote(2, 1, 0, 0);
  r.type = MessageType::VoteResponse;
  s.step(r);
  EXPECT_EQ(s.raft->role(), Role::Leader);
}

TEST(Figure2Candidates, AppendEntriesFromNewLeaderMakesFollower) {
  Single s(1);
  s.raft->campaign();
  s.flush();
  s.step(append(2, 1, 0, 0, {}, 0));
  EXPECT_EQ(s.raft->role(), Role::Follower);
  EXPECT_EQ(s.raft->leader(), n(2));
}

TEST(Figure2Candidates, ElectionTimeoutStartsNewElection) {
  Single s(1);
  s.raft->campaign();
  s.flush();
  for (int i = 0; i < 20 && s.raft->term() == Term(1); ++i)
    s.raft->tick();
  EXPECT_EQ(s.raft->role(), Role::Candidate);
  EXPECT_EQ(s.raft->term(), Term(2));
}

// ---- Figure 2: leaders ----------------------------------------------------

TEST(Figure2Leaders, UponElectionSendAppendEntriesToEachServer) {
  Single s(1);
  s.raft->campaign();
  s.flush();
  Message r = vote(2, 1, 0, 0);
  r.type = MessageType::VoteResponse;
  s.step(r);
  int appends = 0;
  for (const auto& m : s.sent())
    appends += m.type == MessageType::Append ? 1 : 0;
  EXPECT_EQ(appends, 2);
}

TEST(Figure2Leaders, ClientCommandIsAppendedToLocalLog) {
  Cluster c = three();
  elect(c, n(1));
  const LogIndex before = c.raft(n(1)).last_index();
  ASSERT_TRUE(c.raft(n(1)).propose("cmd").ok());
  EXPECT_EQ(c.raft(n(1)).last_index(), before.next());
  EXPECT_EQ(c.raft(n(1)).log_entries(before.next(), before + 2).at(0).data, "cmd");
}

TEST(Figure2Leaders, SuccessfulAppendUpdatesMatchAndNextIndex) {
  Cluster c = three();
  elect(c, n(1));
  ASSERT_TRUE(c.raft(n(1)).propose_batch({"a", "b"}).ok());
  c.stabilize();
  const LogIndex last = c.raft(n(1)).last_index();
  for (const ProgressInfo& p : c.raft(n(1)).status().progress) {
    EXPECT_EQ(p.match, last) << "follower " << p.id;
    EXPECT_EQ(p.next, last.next()) << "follower " << p.id;
  }
}

TEST(Figure2Leaders, FollowerThatRejectsIsRetriedFromAnEarlierIndex) {
  // The follower has the leader's first entry only; the leader's probe at
  // its last index is rejected, and it retries lower until the logs match.
  Cluster c = three();
  elect(c, n(1));
  c.crash(n(3));
  ASSERT_TRUE(c.raft(n(1)).propose_batch({"a", "b", "c"}).ok());
  c.stabilize();
  c.restart(n(3));
  c.raft(n(1)).tick();
  c.stabilize();
  EXPECT_EQ(c.raft(n(3)).last_index(), c.raft(n(1)).last_index());
  EXPECT_EQ(c.raft(n(3)).commit_index(), c.raft(n(1)).commit_index());
}

TEST(Figure2Leaders, CommitOnlyEntriesOfCurrentTermByCounting) {
  // A leader of term 3 holding an entry of term 1 on a majority does not
  // commit it until an entry of term 3 is on a majority (Figure 8).
  Single s(1, voters({1, 2, 3}));
  s.load_log({1, 1});  // entries 1..2 of term 1, commit 0
  s.step(vote(2, 2, 1, 2));
  s.flush();
  s.raft->campaign();  // term 3
  s.flush();
  Message r = vote(2, 3, 0, 0);
  r.type = MessageType::VoteResponse;
  s.step(r);
  ASSERT_EQ(s.raft->role(), Role::Leader);
  s.flush();
  // Follower 2 acknowledges index 2 (term 1) only.
  Message ack;
  ack.type = MessageType::AppendResponse;
  ack.from = n(2);
  ack.term = Term(3);
  ack.index = LogIndex(2);
  s.step(ack);
  EXPECT_EQ(s.raft->commit_index(), LogIndex(0)) << "committed an earlier-term entry by counting";
  ack.index = LogIndex(3);  // the no-op of term 3
  s.step(ack);
  EXPECT_EQ(s.raft->commit_index(), LogIndex(3));
}

// ---- Figure 2: AppendEntries RPC, receiver implementation -----------------

TEST(Figure2AppendEntries, Rule1RejectsStaleTerm) {
  Single s(1);
  s.step(vote(2, 5, 0, 0));
  s.flush();
  s.step(append(3, 4, 0, 0, {{4, 1}}, 0));
  EXPECT_EQ(s.raft->last_index(), LogIndex(0));
  EXPECT_EQ(s.raft->term(), Term(5));
}

TEST(Figure2AppendEntries, Rule2RejectsWhenPrevEntryDoesNotMatch) {
  Single s(1);
  s.load_log({1, 1});
  s.step(append(2, 2, 2, 2, {{2, 3}}, 0));
  auto out = s.sent();
  const Message* r = find(out, MessageType::AppendResponse);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->reject);
  EXPECT_EQ(r->index, LogIndex(2));
  EXPECT_EQ(s.raft->last_index(), LogIndex(2));
}

TEST(Figure2AppendEntries, Rule3ConflictingEntryDeletesItAndAllThatFollow) {
  Single s(1);
  s.load_log({1, 1, 1, 1});
  s.step(append(2, 2, 1, 1, {{2, 2}}, 0));
  EXPECT_EQ(s.raft->last_index(), LogIndex(2));
  EXPECT_EQ(s.raft->term_at(LogIndex(2)), Term(2));
}

TEST(Figure2AppendEntries, Rule3MatchingEntriesAreKept) {
  // A delayed, shorter append must not truncate entries it agrees with.
  Single s(1);
  s.load_log({1, 1, 1, 1});
  s.step(append(9, 1, 1, 1, {{1, 2}}, 0));
  EXPECT_EQ(s.raft->last_index(), LogIndex(4));
}

TEST(Figure2AppendEntries, Rule4AppendsNewEntries) {
  Single s(1);
  s.load_log({1});
  s.step(append(2, 1, 1, 1, {{1, 2}, {1, 3}}, 0));
  EXPECT_EQ(s.raft->last_index(), LogIndex(3));
  auto out = s.sent();
  const Message* r = find(out, MessageType::AppendResponse);
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->reject);
  EXPECT_EQ(r->index, LogIndex(3));
}

TEST(Figure2AppendEntries, Rule5CommitIsMinOfLeaderCommitAndLastNewEntry) {
  Single s(1);
  s.load_log({1, 1, 1, 1, 1});
  // The leader committed 10 but this append only proves entries up to 3.
  s.step(append(9, 1, 1, 2, {{1, 3}}, 10));
  EXPECT_EQ(s.raft->commit_index(), LogIndex(3));
}

// ---- Figure 2: RequestVote RPC, receiver implementation -------------------

TEST(Figure2RequestVote, Rule1RejectsStaleTerm) {
  Single s(1);
  s.step(vote(2, 5, 0, 0));
  s.flush();
  s.step(vote(3, 4, 9, 9));
  auto out = s.sent();
  EXPECT_EQ(find(out, MessageType::VoteResponse), nullptr);
  EXPECT_EQ(s.raft->status().vote, n(2));
}

TEST(Figure2RequestVote, Rule2GrantsAtMostOneVotePerTerm) {
  Single s(1);
  s.step(vote(2, 1, 0, 0));
  auto first = s.sent();
  ASSERT_NE(find(first, MessageType::VoteResponse), nullptr);
  EXPECT_FALSE(find(first, MessageType::VoteResponse)->reject);
  s.step(vote(3, 1, 0, 0));
  auto second = s.sent();
  ASSERT_NE(find(second, MessageType::VoteResponse), nullptr);
  EXPECT_TRUE(find(second, MessageType::VoteResponse)->reject);
  // The same candidate asking again (a retry) is granted again.
  s.step(vote(2, 1, 0, 0));
  auto third = s.sent();
  EXPECT_FALSE(find(third, MessageType::VoteResponse)->reject);
}

TEST(Figure2Persistence, TermAndVoteSurviveRestart) {
  Single s(1);
  s.step(vote(2, 4, 0, 0));
  s.flush();
  s.start(1);
  EXPECT_EQ(s.raft->term(), Term(4));
  s.step(vote(3, 4, 0, 0));
  auto out = s.sent();
  ASSERT_NE(find(out, MessageType::VoteResponse), nullptr);
  EXPECT_TRUE(find(out, MessageType::VoteResponse)->reject);
}

TEST(Section4_2_3DisruptiveServers, NodeThatCannotCampaignForgetsASilentLeader) {
  // Node 3 is a voter in the configuration its log will hold but does not
  // hold yet, so it cannot campaign. Once its leader has been silent for a
  // whole election timeout it must answer candidates again: found by the
  // simulator, where such a node kept refusing the votes a quorum needed.
  RaftConfig c;
  c.id = NodeId(3);
  c.check_quorum = true;
  MemoryStorage storage;
  ASSERT_TRUE(
      storage.apply_snapshot(Snapshot{SnapshotMeta{LogIndex(0), Term(0), voters({1, 2})}, {}})
          .ok());
  Raft r(c, storage, Random(3));
  Message hb = append(1, 1, 0, 0, {}, 0);
  hb.type = MessageType::Heartbeat;
  hb.to = NodeId(3);
  ASSERT_TRUE(r.step(hb).ok());
  ASSERT_EQ(r.leader(), n(1));
  for (int i = 0; i < 40; ++i)
    r.tick();
  EXPECT_EQ(r.leader(), NodeId(0));
  Message v = vote(2, 2, 0, 0);
  v.to = NodeId(3);
  ASSERT_TRUE(r.step(v).ok());
  Ready rd = r.ready();
  const Message* answer = find(rd.messages, MessageType::VoteResponse);
  ASSERT_NE(answer, nullptr) << "vote request ignored: the stale lease still holds";
  EXPECT_FALSE(answer->reject);
}

// ---- §5.4 Safety ----------------------------------------------------------

TEST(Section5_4_1ElectionRestriction, HigherLastTermIsMoreUpToDate) {
  Single s(1);
  s.load_log({1, 1, 1});
  // Shorter log, but a later last term: up to date.
  s.step(vote(2, 5, 2, 1));
  auto out = s.sent();
  EXPECT_FALSE(find(out, MessageType::VoteResponse)->reject);
}

TEST(Section5_4_1ElectionRestriction, SameLastTermLongerLogIsMoreUpToDate) {
  Single s(1);
  s.load_log({1, 1, 1});
  s.step(vote(2, 5, 1, 2));
  auto out = s.sent();
  EXPECT_TRUE(find(out, MessageType::VoteResponse)->reject) << "granted to a shorter log";
  s.step(vote(3, 5, 1, 3));
  out = s.sent();
  EXPECT_FALSE(find(out, MessageType::VoteResponse)->reject);
}

TEST(Section5_4_2CommittingEarlierTerms, EarlierEntriesCommitWithACurrentTermEntry) {
  Cluster c = three({.pre_vote = false, .check_quorum = false});
  elect(c, n(1));
  c.isolate(n(1));
  ASSERT_TRUE(c.raft(n(1)).propose("old").ok());
  c.stabilize();
  c.heal();
  // 1 is elected again in a later term: "old" (term 1) commits only with the
  // new no-op, and in the same Ready.
  c.crash(n(1));
  c.restart(n(1));
  c.raft(n(1)).campaign();
  c.stabilize();
  ASSERT_EQ(c.raft(n(1)).role(), Role::Leader);
  const auto& applied = c.node(n(2)).applied;
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].data, "old");
  EXPECT_EQ(c.raft(n(2)).term_at(c.raft(n(2)).commit_index()), c.raft(n(1)).term());
}

TEST(Section5_4_3LeaderCompleteness, NewLeaderHoldsEveryCommittedEntry) {
  Cluster c;
  for (std::uint64_t i = 1; i <= 5; ++i)
    c.add_node(n(i), voters({1, 2, 3, 4, 5}), {});
  elect(c, n(1));
  c.partition({n(1), n(2), n(3)});
  ASSERT_TRUE(c.raft(n(1)).propose("committed").ok());
  c.stabilize();
  ASSERT_EQ(c.node(n(1)).applied.size(), 1u);
  c.heal();
  c.crash(n(1));
  // 4 and 5 never saw the entry; whoever wins must have it.
  for (int i = 0; i < 100 && c.leader() == NodeId(0); ++i) {
    for (NodeId x : c.ids()) {
      if (!c.node(x).down) c.raft(x).tick();
    }
    c.stabilize();
  }
  const NodeId l = c.leader();
  ASSERT_NE(l, NodeId(0));
  EXPECT_TRUE(l == n(2) || l == n(3)) << "node " << l << " won without the committed entry";
}

TEST(ConfState, SizeCountsEachMemberOnce) {
  ConfState c = voters({1, 2, 3});
  c.voters_outgoing = {n(2), n(3), n(4)};
  c.learners = {n(5), n(6)};
  EXPECT_EQ(c.size(), 6u);
  EXPECT_EQ(c.size(), c.members().size());
  EXPECT_EQ(voters({7}).size(), 1u);
  EXPECT_EQ(ConfState{}.size(), 0u);
}

// Past the handful of voters whose match indexes are sorted on the stack.
TEST(Section5_3CommitRule, SeventeenVotersCommitOnNineAndNotOnEight) {
  std::initializer_list<std::uint64_t> all = {1,  2,  3,  4,  5,  6,  7,  8, 9,
                                              10, 11, 12, 13, 14, 15, 16, 17};
  Cluster c;
  for (std::uint64_t i : all)
    c.add_node(n(i), voters(all), {});
  elect(c, n(1));
  c.partition({n(1), n(2), n(3), n(4), n(5), n(6), n(7), n(8)});
  ASSERT_TRUE(c.raft(n(1)).propose("short of a majority").ok());
  c.stabilize();
  EXPECT_TRUE(c.node(n(1)).applied.empty());
  c.partition({n(1), n(2), n(3), n(4), n(5), n(6), n(7), n(8), n(9)});
  // The entry reaches 9 with the leader's next heartbeats.
  for (int i = 0; i < 50 && c.node(n(1)).applied.empty(); ++i) {
    c.raft(n(1)).tick();
    c.stabilize();
  }
  ASSERT_EQ(c.raft(n(1)).role(), Role::Leader);
  ASSERT_EQ(c.node(n(1)).applied.size(), 1u);
  EXPECT_EQ(c.node(n(1)).applied[0].data, "short of a majority");
}

}  // namespace
}  // namespace coord::consensus

// ---- Proposal forwarding ---------------------------------------------------

namespace coord::consensus {
namespace {

TEST(ProposalForwarding, FollowerForwardsToItsLeaderAndTheEntryAppliesEverywhere) {
  Cluster c = three();
  elect(c, n(1));
  ASSERT_TRUE(c.raft(n(3)).propose("from-3").ok());
  c.stabilize();
  for (std::uint64_t i = 1; i <= 3; ++i) {
    ASSERT_EQ(c.node(n(i)).applied.size(), 1u);
    EXPECT_EQ(c.node(n(i)).applied[0].data, "from-3");
    EXPECT_EQ(c.node(n(i)).applied[0].term, c.raft(n(1)).term());
  }
}

TEST(ProposalForwarding, WithoutALeaderTheCallerGetsConnectionLossAndNothingIsSent) {
  Single s(2);
  EXPECT_EQ(s.raft->propose("x").code(), ErrorCode::ConnectionLoss);
  EXPECT_EQ(s.raft->read_index(1).code(), ErrorCode::ConnectionLoss);
  EXPECT_TRUE(s.sent().empty());
}

TEST(ProposalForwarding, AProposeOfAnotherTermIsNeverAppended) {
  Cluster c = three();
  elect(c, n(1));
  const LogIndex last = c.raft(n(1)).last_index();
  Message p;
  p.type = MessageType::Propose;
  p.from = n(2);
  p.to = n(1);
  p.term = c.raft(n(1)).term().prev();
  p.context = 1;
  p.entries.push_back(Entry{Term(0), LogIndex(0), EntryType::Normal, "old"});
  ASSERT_TRUE(c.raft(n(1)).step(p).ok());
  p.term = c.raft(n(1)).term().next();  // nor does it make the leader step down
  ASSERT_TRUE(c.raft(n(1)).step(p).ok());
  EXPECT_EQ(c.raft(n(1)).last_index(), last);
  EXPECT_EQ(c.raft(n(1)).role(), Role::Leader);
}

TEST(ProposalForwarding, ALeaderChangeIsSignalledInReadyAndQueuedProposalsNeverLeave) {
  NodeOptions o;
  o.pre_vote = false;
  o.check_quorum = false;
  Cluster c = three(o);
  elect(c, n(1));
  const int before = c.node(n(2)).leader_changes;
  ASSERT_TRUE(c.raft(n(2)).propose("queued").ok());
  // A vote request of a new term reaches 2 before its Ready goes out.
  c.raft(n(3)).campaign();
  c.process_ready(n(3));
  c.deliver(n(2));
  Ready rd = c.raft(n(2)).ready();
  EXPECT_TRUE(rd.leader_changed);
  EXPECT_EQ(find(rd.messages, MessageType::Propose), nullptr);
  c.raft(n(2)).advance();
  EXPECT_EQ(c.node(n(2)).leader_changes, before);
}

TEST(ProposalForwarding, ALostProposeStopsTheStreamUntilItRestarts) {
  Cluster c = three();
  elect(c, n(1));
  auto applied_data = [&](NodeId id) {
    std::vector<std::string> out;
    for (const Entry& e : c.node(id).applied)
      if (!e.data.empty()) out.push_back(e.data);
    return out;
  };
  ASSERT_TRUE(c.raft(n(2)).propose("lost").ok());
  c.process_ready(n(2));
  c.drop_outbox(NodeId(0));
  // Sent after a Propose that never arrived: it must not overtake it.
  ASSERT_TRUE(c.raft(n(2)).propose("after-the-gap").ok());
  c.stabilize();
  EXPECT_TRUE(applied_data(n(1)).empty());
  c.raft(n(2)).restart_forwarding();
  ASSERT_TRUE(c.raft(n(2)).propose("new-stream").ok());
  c.stabilize();
  EXPECT_EQ(applied_data(n(1)), std::vector<std::string>{"new-stream"});
  EXPECT_EQ(applied_data(n(3)), std::vector<std::string>{"new-stream"});
}

TEST(ProposalForwarding, ADuplicatedProposeIsAppendedOnce) {
  Cluster c = three();
  elect(c, n(1));
  ASSERT_TRUE(c.raft(n(3)).propose("once").ok());
  c.process_ready(n(3));
  auto& out = c.outbox();
  const std::size_t k = out.size();
  for (std::size_t i = 0; i < k; ++i)
    out.push_back(out[i]);
  c.stabilize();
  std::size_t copies = 0;
  for (const Entry& e : c.node(n(1)).applied)
    copies += e.data == "once" ? 1 : 0;
  EXPECT_EQ(copies, 1u);
}

// The node restarts with its id and its data directory emptied: a founding
// member's bootstrap log and nothing applied.
void restart_wiped(Cluster& c, NodeId id, const ConfState& founding) {
  c.crash(id);
  auto& wiped = c.node(id);
  wiped.storage = std::make_unique<MemoryStorage>(founding);
  wiped.applied.clear();
  wiped.applied_index = LogIndex(0);
  wiped.snapshot_data.clear();
  c.restart(id);
}

TEST(LostEntries, AFollowerWipedAndRestartedWithItsIdCatchesUp) {
  Cluster c = three();
  elect(c, n(1));
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(c.raft(n(1)).propose("before-" + std::to_string(i)).ok());
  c.stabilize();
  ASSERT_EQ(c.node(n(3)).applied.size(), 5u);
  restart_wiped(c, n(3), c.raft(n(1)).conf_state());
  // Heartbeats alone bring it back: it says its log ends early.
  for (int round = 0; round < 3; ++round) {
    for (NodeId id : c.ids())
      c.raft(id).tick();
    c.stabilize();
  }
  EXPECT_EQ(c.node(n(3)).applied.size(), 5u);
  ASSERT_TRUE(c.raft(n(1)).propose("after").ok());
  c.stabilize();
  for (int round = 0; round < 5; ++round) {
    for (NodeId id : c.ids())
      c.raft(id).tick();
    c.stabilize();
  }
  EXPECT_EQ(c.raft(n(1)).role(), Role::Leader);
  EXPECT_EQ(c.node(n(3)).applied.size(), 6u);
  EXPECT_EQ(c.raft(n(3)).last_index(), c.raft(n(1)).last_index());
}

// The follower's match is exactly where the leader's log now starts (its
// snapshot): the leader cannot look up the term the follower's hint names,
// and must still see that the follower lost what it had.
TEST(LostEntries, AWipedFollowerWhoseMatchIsTheLeadersSnapshotGetsTheSnapshot) {
  Cluster c = three();
  elect(c, n(1));
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(c.raft(n(1)).propose("before-" + std::to_string(i)).ok());
  c.stabilize();
  ASSERT_TRUE(c.snapshot(n(1)).ok());
  restart_wiped(c, n(3), c.raft(n(1)).conf_state());
  for (int round = 0; round < 5; ++round) {
    for (NodeId id : c.ids())
      c.raft(id).tick();
    c.stabilize();
  }
  EXPECT_EQ(c.node(n(3)).applied_index, c.node(n(1)).applied_index);
  ASSERT_TRUE(c.raft(n(1)).propose("after").ok());
  c.stabilize();
  EXPECT_EQ(c.raft(n(3)).last_index(), c.raft(n(1)).last_index());
  EXPECT_EQ(c.node(n(3)).applied_index, c.node(n(1)).applied_index);
}

// ---- ReadIndex outcomes ----------------------------------------------------

TEST(ReadIndexOutcome, ALeaderStepDownByCheckQuorumFailsItsPendingReads) {
  Cluster c = three();
  elect(c, n(1));
  c.isolate(n(1));
  ASSERT_TRUE(c.raft(n(1)).read_index(5).ok());
  for (int i = 0; i < 40 && c.raft(n(1)).role() == Role::Leader; ++i) {
    c.raft(n(1)).tick();
    c.process_ready(n(1));
    c.deliver(NodeId(0));
  }
  ASSERT_NE(c.raft(n(1)).role(), Role::Leader);
  c.process_ready(n(1));
  EXPECT_EQ(c.node(n(1)).failed_reads, std::vector<std::uint64_t>{5});
  EXPECT_TRUE(c.node(n(1)).read_states.empty());
}

TEST(ReadIndexOutcome, ANodeThatIsNotTheLeaderRejectsAReadIndexAtOnce) {
  Single s(2);
  s.load_log({1});
  Message r;
  r.type = MessageType::ReadIndex;
  r.from = n(3);
  r.term = Term(1);
  r.context = 11;
  s.step(r);
  const auto out = s.sent();
  const Message* answer = find(out, MessageType::ReadIndexResponse);
  ASSERT_NE(answer, nullptr);
  EXPECT_TRUE(answer->reject);
  EXPECT_EQ(answer->context, 11u);
}

TEST(ReadIndexOutcome, AForwardedReadWithoutAnswerFailsAfterTwoElectionTimeouts) {
  Cluster c = three();
  elect(c, n(1));
  ASSERT_TRUE(c.raft(n(2)).read_index(9).ok());
  c.process_ready(n(2));
  c.drop_outbox(NodeId(0));  // the request is lost
  // Heartbeats keep 2's leader; only the missing answer fails the read.
  auto tick_all = [&] {
    for (NodeId id : c.ids())
      c.raft(id).tick();
    c.stabilize();
  };
  for (int i = 0; i < 19; ++i)
    tick_all();
  EXPECT_TRUE(c.node(n(2)).failed_reads.empty());
  EXPECT_EQ(c.raft(n(2)).leader(), n(1));
  tick_all();
  EXPECT_EQ(c.node(n(2)).failed_reads, std::vector<std::uint64_t>{9});
  // A late answer after the failure is ignored: one outcome per read.
  Message late;
  late.type = MessageType::ReadIndexResponse;
  late.from = n(1);
  late.to = n(2);
  late.term = c.raft(n(2)).term();
  late.index = LogIndex(4);
  late.context = 9;
  ASSERT_TRUE(c.raft(n(2)).step(late).ok());
  c.process_ready(n(2));
  EXPECT_TRUE(c.node(n(2)).read_states.empty());
}

// ---- §5 snapshots in chunks ------------------------------------------------

// A storage that streams its snapshot but refuses to hand it out whole, and
// records the largest read.
class ChunkOnlyStorage final : public LogStorage {
 public:
  explicit ChunkOnlyStorage(MemoryStorage& s) : s_(s) {}
  HardState hard_state() const override { return s_.hard_state(); }
  const SnapshotMeta& snapshot_meta() const override { return s_.snapshot_meta(); }
  LogIndex first_index() const override { return s_.first_index(); }
  LogIndex last_index() const override { return s_.last_index(); }
  Term term(LogIndex i) const override { return s_.term(i); }
  void entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
               std::vector<Entry>& out) const override {
    s_.entries(lo, hi, max_bytes, out);
  }
  Snapshot snapshot() const override {
    ADD_FAILURE() << "the whole snapshot was read";
    return s_.snapshot();
  }
  std::uint64_t snapshot_bytes() const override { return s_.snapshot_bytes(); }
  void read_snapshot(std::uint64_t offset, std::size_t max_bytes, std::string& out) const override {
    largest_read = std::max(largest_read, max_bytes);
    s_.read_snapshot(offset, max_bytes, out);
  }
  mutable std::size_t largest_read = 0;

 private:
  MemoryStorage& s_;
};

TEST(Section5SnapshotChunks, NeitherSideHoldsMoreThanAChunkOfTheSnapshot) {
  constexpr std::size_t chunk = 1000;
  const std::string state(10'500, 's');
  // Leader 1 alone in {1, 2} (2 is down), its log compacted into a snapshot.
  MemoryStorage disk1(voters({1}));
  ChunkOnlyStorage view1(disk1);
  RaftConfig c1;
  c1.id = n(1);
  c1.snapshot_chunk_bytes = chunk;
  auto leader = std::make_unique<Raft>(c1, view1, Random(1));
  leader->campaign();
  auto persist = [](Raft& r, MemoryStorage& d) {
    Ready rd = r.ready();
    d.append(rd.entries);
    if (rd.hard_state) d.set_hard_state(*rd.hard_state);
    r.advance();
    return rd;
  };
  persist(*leader, disk1);
  ASSERT_EQ(leader->role(), Role::Leader);
  ASSERT_TRUE(leader->propose("x").ok());
  persist(*leader, disk1);
  ASSERT_TRUE(leader->propose_conf_change(ConfChange{ConfChangeType::AddLearner, n(2)}).ok());
  persist(*leader, disk1);
  const LogIndex at = leader->commit_index();
  ASSERT_TRUE(disk1.create_snapshot(at, leader->conf_state_at(at), state).ok());
  ASSERT_TRUE(disk1.compact(at).ok());

  MemoryStorage disk2;
  RaftConfig c2;
  c2.id = n(2);
  Raft follower(c2, disk2, Random(2));
  std::string written;
  std::size_t chunks = 0;
  bool installed = false;
  std::vector<Message> to_follower, to_leader;
  leader->tick();  // a heartbeat to 2 starts its catch-up
  to_follower = persist(*leader, disk1).messages;
  for (int round = 0; round < 200 && !installed; ++round) {
    for (Message& m : to_follower) {
      if (m.type == MessageType::SnapshotChunk) {
        EXPECT_LE(m.snapshot->data.size(), chunk);
      }
      ASSERT_TRUE(follower.step(std::move(m)).ok());
    }
    to_follower.clear();
    if (follower.has_ready()) {
      Ready rd = follower.ready();
      for (const SnapshotChunk& sc : rd.snapshot_chunks) {
        EXPECT_LE(sc.data.size(), chunk);
        EXPECT_EQ(sc.offset, written.size());
        written += sc.data;
        ++chunks;
      }
      if (rd.snapshot) {
        EXPECT_TRUE(rd.snapshot_in_chunks);
        EXPECT_TRUE(rd.snapshot->data.empty());
        Snapshot snap = *rd.snapshot;
        snap.data = written;
        ASSERT_TRUE(disk2.apply_snapshot(snap).ok());
        installed = true;
      }
      disk2.append(rd.entries);
      if (rd.hard_state) disk2.set_hard_state(*rd.hard_state);
      to_leader = std::move(rd.messages);
      follower.advance();
    }
    for (Message& m : to_leader)
      ASSERT_TRUE(leader->step(std::move(m)).ok());
    to_leader.clear();
    to_follower = persist(*leader, disk1).messages;
  }
  ASSERT_TRUE(installed);
  EXPECT_EQ(written, state);
  EXPECT_EQ(chunks, 11u);
  EXPECT_LE(view1.largest_read, chunk);
  EXPECT_EQ(disk2.snapshot().data, state);
}

// ---- §4.3 joint consensus --------------------------------------------------

TEST(Section4_3JointConsensus, CommitNeedsAMajorityOfBothConfigurations) {
  Cluster c;
  for (std::uint64_t i = 1; i <= 3; ++i)
    c.add_node(n(i), voters({1, 2, 3}), {});
  c.add_node(n(4), {}, {});
  c.add_node(n(5), {}, {});
  elect(c, n(1));
  // C_old = {1, 2, 3}, C_new = {1, 4, 5}; 2 and 3 cut off: only C_new's
  // majority acknowledges, so nothing commits.
  c.partition({n(2), n(3)});
  ASSERT_TRUE(c.raft(n(1))
                  .propose_conf_changes({{ConfChangeType::AddVoter, n(4)},
                                         {ConfChangeType::AddVoter, n(5)},
                                         {ConfChangeType::RemoveVoter, n(2)},
                                         {ConfChangeType::RemoveVoter, n(3)}})
                  .ok());
  const LogIndex joint = c.raft(n(1)).last_index();
  EXPECT_TRUE(c.raft(n(1)).conf_state().joint());
  c.stabilize();
  EXPECT_LT(c.raft(n(1)).commit_index(), joint);
  EXPECT_EQ(c.raft(n(4)).last_index(), joint);
  // With 2 back, C_old has its majority too: the joint entry commits and
  // the leader moves on to C_new by itself.
  c.partition({n(3)});
  c.raft(n(1)).tick();
  c.stabilize();
  EXPECT_GT(c.raft(n(1)).commit_index(), joint);
  EXPECT_FALSE(c.raft(n(1)).conf_state().joint());
  EXPECT_EQ(c.raft(n(1)).conf_state().voters, (std::vector<NodeId>{n(1), n(4), n(5)}));
}

TEST(Section4_3JointConsensus, ElectionNeedsAMajorityOfBothConfigurations) {
  // A candidate in C_old,new with votes from all of C_new but a minority of
  // C_old is not elected.
  ConfState joint;
  joint.voters = {n(3), n(4), n(5)};
  joint.voters_outgoing = {n(1), n(2), n(3)};
  MemoryStorage storage;
  ASSERT_TRUE(storage.apply_snapshot(Snapshot{SnapshotMeta{LogIndex(0), Term(0), joint}, {}}).ok());
  RaftConfig rc;
  rc.id = n(3);
  rc.pre_vote = false;
  rc.check_quorum = false;
  Raft r(rc, storage, Random(3));
  r.campaign();
  auto grant = [&](std::uint64_t from) {
    Message m;
    m.type = MessageType::VoteResponse;
    m.from = n(from);
    m.to = n(3);
    m.term = r.term();
    ASSERT_TRUE(r.step(m).ok());
  };
  grant(4);
  grant(5);
  EXPECT_EQ(r.role(), Role::Candidate);
  grant(2);
  EXPECT_EQ(r.role(), Role::Leader);
}

TEST(Section4_3JointConsensus, AVoterCannotBecomeALearnerInOneChange) {
  auto r =
      JointConfChange{{{ConfChangeType::RemoveVoter, n(3)}, {ConfChangeType::AddLearner, n(3)}}}
          .apply_to(voters({1, 2, 3}));
  EXPECT_EQ(r.code(), ErrorCode::BadArguments);
  // Learners only: no joint phase.
  auto l = JointConfChange{{{ConfChangeType::AddLearner, n(4)}}}.apply_to(voters({1, 2, 3}));
  ASSERT_TRUE(l.ok());
  EXPECT_FALSE(l->joint());
  // Encodings round-trip, and a single change refuses a joint configuration.
  JointConfChange j{{{ConfChangeType::AddVoter, n(7)}, {ConfChangeType::RemoveVoter, n(1)}}};
  EXPECT_EQ(JointConfChange::decode(j.encode()).value(), j);
  auto in = j.apply_to(voters({1, 2, 3})).value();
  EXPECT_TRUE(in.joint());
  const ConfChange add9{ConfChangeType::AddVoter, n(9)};
  EXPECT_EQ(add9.apply_to(in).code(), ErrorCode::ReconfigInProgress);
  EXPECT_EQ(apply_conf_entry(JointConfChange{}.encode(), in).value().voters,
            (std::vector<NodeId>{n(2), n(3), n(7)}));
}

// The context of a change is the application's: it rides in the entry to
// every member, a new one included, and comes back as it was proposed.
TEST(Section4_3JointConsensus, ContextsReachEveryMemberUnchanged) {
  Cluster c;
  for (std::uint64_t i = 1; i <= 3; ++i)
    c.add_node(n(i), voters({1, 2, 3}), {});
  c.add_node(n(4), {}, {});
  elect(c, n(1));
  const std::string spec4 = "server.4=127.0.0.1:2891:3891:participant;127.0.0.1:2184";
  ASSERT_TRUE(c.raft(n(1))
                  .propose_conf_changes({{ConfChangeType::AddVoter, n(4), spec4},
                                         {ConfChangeType::RemoveVoter, n(3)}})
                  .ok());
  const LogIndex joint = c.raft(n(1)).last_index();
  c.stabilize();
  EXPECT_EQ(c.raft(n(4)).conf_state().voters, (std::vector<NodeId>{n(1), n(2), n(4)}));
  for (std::uint64_t i : {1, 2, 4}) {
    std::vector<Entry> es;
    c.node(n(i)).storage->entries(joint, joint.next(), ~std::size_t{0}, es);
    ASSERT_EQ(es.size(), 1u) << i;
    ASSERT_EQ(es[0].type, EntryType::ConfChange);
    const std::vector<ConfChange> want{{ConfChangeType::AddVoter, n(4), spec4},
                                       {ConfChangeType::RemoveVoter, n(3)}};
    EXPECT_EQ(conf_entry_changes(es[0].data).value(), want) << i;
  }
}

}  // namespace
}  // namespace coord::consensus
