#include "raft_sim.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "coord/base/random.h"
#include "coord/consensus/raft.h"
#include "coord/consensus/storage.h"

namespace coord::consensus::sim {
namespace {

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 29);
}

std::uint64_t hash_entry(const Entry& e) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : e.data)
    h = (h ^ c) * 1099511628211ULL;
  return mix(mix(h, e.term.value()), static_cast<std::uint64_t>(e.type));
}

struct CommittedEntry {
  Term term;
  std::uint64_t hash = 0;
};

struct InFlight {
  int deliver_at = 0;
  std::uint64_t order = 0;  // random tie-break: reordering among equal times
  Message m;
};

struct SimNode {
  NodeId id;
  std::unique_ptr<MemoryStorage> disk;  // what survives a crash
  std::unique_ptr<Raft> raft;           // null while down
  std::optional<Ready> pending;         // written, not synced
  int sync_at = 0;
  // The state machine (volatile): index applied and a chain hash of it.
  LogIndex applied;
  std::uint64_t sm_hash = 0;
  int down_until = 0;
  int restarts = 0;
  bool retired = false;  // removed from the cluster and shut down
  LogIndex checked_commit;
  Role last_role = Role::Follower;
  Term last_term;
  // The host's side of a streamed snapshot: the chunks written so far
  // (volatile here: a crash loses a partial transfer, as it may).
  std::string incoming_snapshot;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& o) : opt_(o), rng_(o.seed) {}

  SimResult run() {
    setup();
    for (now_ = 0; now_ < opt_.fault_ticks && result_.ok; ++now_)
      tick(true);
    if (result_.ok) end_faults();
    // The bound grows with the work left when faults stop: the entries some
    // node still lacks and the requests clients must retry.
    const int backlog = static_cast<int>(backlog_entries());
    const int deadline = now_ + opt_.liveness_ticks + 4 * backlog;
    bool converged = false;
    for (int since = 0; now_ < deadline && result_.ok; ++now_, ++since) {
      // Clients whose requests were lost in the faults retry them: once
      // now, and again if a new leader took over or much time passed.
      SimNode* leader = some_leader();
      const auto who = leader ? std::make_pair(leader->id, leader->raft->term())
                              : std::make_pair(NodeId(0), Term(0));
      if (since == 0 || who != retried_with_ || since % 200 == 0) {
        retried_with_ = who;
        retry_proposals();
      }
      tick(false);
      retire_non_members();
      if (this->converged()) {
        converged = true;
        break;
      }
    }
    if (result_.ok && !converged) fail("liveness: no convergence " + liveness_report());
    if (result_.ok) check_log_matching();
    if (result_.ok) check_reads_settled();
    result_.nodes = static_cast<int>(nodes_.size());
    result_.committed = committed_max_.value();
    result_.proposals = proposals_.size();
    return result_;
  }

 private:
  // ---- setup and faults --------------------------------------------------

  void setup() {
    const int n = rng_.chance(1, 3) ? 3 : 5;
    ConfState conf;
    for (int i = 1; i <= n; ++i)
      conf.voters.push_back(NodeId(i));
    config_.election_ticks = 10;
    config_.heartbeat_ticks = 1 + static_cast<int>(rng_.below(2));
    config_.pre_vote = rng_.chance(1, 2);
    config_.check_quorum = rng_.chance(1, 2);
    config_.max_entries_per_message = rng_.chance(1, 2) ? 1 : 2 + rng_.below(6);
    config_.max_inflight_messages = 2 + rng_.below(7);
    // Small chunks, so that snapshots stream in many pieces (and chunks are
    // lost, duplicated and reordered like any message).
    config_.snapshot_chunk_bytes = 1 + rng_.below(16);
    snapshot_pad_ = rng_.below(64);
    forward_per_mille_ = rng_.chance(1, 2) ? 200 + rng_.below(600) : 0;
    config_.commit_by_counting_earlier_terms_for_testing = opt_.commit_by_counting_earlier_terms;
    drop_per_mille_ = rng_.below(150);
    dup_per_mille_ = rng_.below(100);
    max_delay_ = 1 + static_cast<int>(rng_.below(4));
    crash_per_mille_ = 5 + rng_.below(40);
    partition_per_mille_ = rng_.below(40);
    // Crashing leaders in particular makes the histories of Figure 8 (an
    // entry of an old term on a majority while newer terms exist) common.
    leader_crash_per_mille_ = rng_.below(150);
    sync_crash_per_mille_ = rng_.below(20);
    new_leader_crash_per_mille_ = rng_.chance(1, 2) ? rng_.below(300) : 0;
    commit_crash_per_mille_ = rng_.chance(1, 2) ? rng_.below(100) : 0;
    membership_changes_ = rng_.chance(1, 2);
    // Founding members, then spare servers that start outside the cluster
    // and may be added (and removed) by membership changes.
    const int spares = membership_changes_ ? 2 : 0;
    for (int i = 1; i <= n + spares; ++i) {
      SimNode node;
      node.id = NodeId(i);
      node.disk =
          i <= n ? std::make_unique<MemoryStorage>(conf) : std::make_unique<MemoryStorage>();
      nodes_.push_back(std::move(node));
      start(nodes_.back());
    }
    log("setup: nodes=", n, " pre_vote=", config_.pre_vote, " check_quorum=", config_.check_quorum,
        " drop=", drop_per_mille_, " dup=", dup_per_mille_, " delay<=", max_delay_,
        " crash=", crash_per_mille_, " membership=", membership_changes_,
        " leader_crash=", leader_crash_per_mille_, " partition=", partition_per_mille_,
        " forward=", forward_per_mille_, " chunk_bytes=", config_.snapshot_chunk_bytes);
  }

  void start(SimNode& node) {
    RaftConfig c = config_;
    c.id = node.id;
    // The state machine restarts from the snapshot on disk.
    node.applied = node.disk->snapshot_meta().index;
    node.sm_hash = parse_snapshot(node.disk->snapshot().data);
    c.applied = node.applied;
    node.raft = std::make_unique<Raft>(
        c, *node.disk, Random(mix(opt_.seed, node.id.value() * 1000 + node.restarts)));
    node.pending.reset();
    node.checked_commit = node.applied;
    node.last_role = Role::Follower;
    node.last_term = Term(0);
    node.incoming_snapshot.clear();
    ++node.restarts;
  }

  void crash(SimNode& node) {
    log("crash ", node.id, node.pending ? " (losing an unsynced write)" : "");
    node.raft.reset();
    node.pending.reset();  // not synced: lost, and its messages never left
    node.down_until = now_ + 1 + static_cast<int>(rng_.below(30));
    ++result_.crashes;
  }

  void end_faults() {
    log("faults end");
    faults_ = false;
    side_.clear();
    drop_per_mille_ = 0;
    dup_per_mille_ = 0;
    sync_crash_per_mille_ = 0;
    new_leader_crash_per_mille_ = 0;
    max_delay_ = 1;
    for (SimNode& node : nodes_) {
      if (!node.raft && !node.retired) start(node);
    }
  }

  void faults() {
    if (rng_.chance(crash_per_mille_, 1000)) {
      SimNode& node = nodes_[rng_.below(nodes_.size())];
      if (node.raft) crash(node);
    }
    if (rng_.chance(leader_crash_per_mille_, 1000)) {
      if (SimNode* leader = some_leader()) crash(*leader);
    }
    for (SimNode& node : nodes_) {
      if (!node.raft && node.down_until <= now_) {
        log("restart ", node.id);
        start(node);
      }
    }
    if (rng_.chance(partition_per_mille_, 1000)) {
      side_.clear();
      for (const SimNode& node : nodes_) {
        if (rng_.chance(1, 2)) side_[node.id] = 1;
      }
      log("partition: ", side_.size(), " node(s) on one side");
    } else if (!side_.empty() && rng_.chance(30, 1000)) {
      log("heal");
      side_.clear();
    }
    if (rng_.chance(5, 1000)) {
      for (SimNode& node : nodes_) {
        if (node.raft && node.raft->role() == Role::Leader) {
          const NodeId target = nodes_[rng_.below(nodes_.size())].id;
          log("transfer ", node.id, " -> ", target);
          (void)node.raft->transfer_leadership(target);
          process(node);
        }
      }
    }
  }

  // ---- clients -----------------------------------------------------------

  SimNode* some_leader() {
    SimNode* best = nullptr;
    for (SimNode& node : nodes_) {
      if (node.raft && node.raft->role() == Role::Leader &&
          (!best || node.raft->term() > best->raft->term())) {
        best = &node;
      }
    }
    return best;
  }

  void clients() {
    if (rng_.chance(1, 5) && rng_.chance(forward_per_mille_, 1000)) {
      // A client of any server: a follower forwards to the leader it knows.
      SimNode& node = nodes_[rng_.below(nodes_.size())];
      if (node.raft) {
        std::vector<std::string> batch;
        const int k = 1 + static_cast<int>(rng_.below(3));
        for (int i = 0; i < k; ++i)
          batch.push_back("p" + std::to_string(next_proposal_++));
        std::vector<std::string> ids = batch;
        const bool leading = node.raft->role() == Role::Leader;
        Status st = node.raft->propose_batch(std::move(batch));
        if (st.ok()) {
          for (auto& id : ids)
            proposals_.emplace(id, false);
          if (!leading) ++result_.forwarded;
          process(node);
        } else if (!leading && node.raft->leader() != NodeId(0)) {
          return fail("a follower that knows a leader refused to forward: " + st.to_string());
        }
      }
    } else if (rng_.chance(1, 5)) {
      SimNode* leader = some_leader();
      if (leader) {
        std::vector<std::string> batch;
        const int k = 1 + static_cast<int>(rng_.below(3));
        for (int i = 0; i < k; ++i)
          batch.push_back("p" + std::to_string(next_proposal_++));
        std::vector<std::string> ids = batch;
        if (leader->raft->propose_batch(std::move(batch)).ok()) {
          for (auto& id : ids)
            proposals_.emplace(id, false);
          process(*leader);
        }
      }
    }
    if (rng_.chance(1, 20)) {
      SimNode& node = nodes_[rng_.below(nodes_.size())];
      if (node.raft) {
        const std::uint64_t ctx = ++read_seq_;
        if (node.raft->read_index(ctx).ok()) {
          read_owner_[ctx] = std::make_pair(node.id, node.restarts);
          // Everything committed before the request must be covered.
          reads_[ctx] = committed_max_;
          process(node);
        }
      }
    }
    if (membership_changes_ && rng_.chance(1, 40)) change_membership();
    if (rng_.chance(1, 25)) {
      SimNode& node = nodes_[rng_.below(nodes_.size())];
      if (node.raft && node.applied > node.disk->snapshot_meta().index + 4) {
        snapshot(node);
      }
    }
  }

  // One server at a time: add a spare as learner or voter, promote a
  // learner, or remove a member (keeping at least two voters); or several
  // of those at once through joint consensus.
  void change_membership() {
    SimNode* leader = some_leader();
    if (!leader) return;
    if (rng_.chance(1, 2)) return change_membership_joint(*leader);
    const ConfState& conf = leader->raft->conf_state();
    const NodeId id = nodes_[rng_.below(nodes_.size())].id;
    ConfChange cc;
    cc.node = id;
    if (conf.is_voter(id)) {
      if (conf.voters.size() <= 2) return;
      cc.type = ConfChangeType::RemoveVoter;
    } else if (conf.is_learner(id)) {
      cc.type = rng_.chance(3, 4) ? ConfChangeType::PromoteLearner : ConfChangeType::RemoveVoter;
    } else {
      cc.type = rng_.chance(2, 3) ? ConfChangeType::AddLearner : ConfChangeType::AddVoter;
    }
    Status s = leader->raft->propose_conf_change(cc);
    log("conf change at ", leader->id, ": ", to_string(cc.type), " ", id, " -> ", s.to_string());
    if (s.ok()) process(*leader);
  }

  void change_membership_joint(SimNode& leader) {
    ConfState conf = leader.raft->conf_state();
    if (conf.joint()) return;
    std::vector<ConfChange> changes;
    const int k = 2 + static_cast<int>(rng_.below(3));
    for (int i = 0; i < k; ++i) {
      const NodeId id = nodes_[rng_.below(nodes_.size())].id;
      ConfChange cc;
      cc.node = id;
      if (conf.is_voter(id)) {
        if (conf.voters.size() <= 2) continue;
        cc.type = ConfChangeType::RemoveVoter;
      } else if (conf.is_learner(id)) {
        cc.type = rng_.chance(3, 4) ? ConfChangeType::PromoteLearner : ConfChangeType::RemoveVoter;
      } else {
        cc.type = rng_.chance(1, 3) ? ConfChangeType::AddLearner : ConfChangeType::AddVoter;
      }
      auto next = cc.apply_to(conf);
      if (!next.ok()) continue;
      conf = std::move(next).value();
      changes.push_back(cc);
    }
    if (changes.empty()) return;
    std::ostringstream what;
    for (const ConfChange& cc : changes)
      what << " " << to_string(cc.type) << "=" << cc.node;
    Status s = leader.raft->propose_conf_changes(changes);
    log("joint conf change at ", leader.id, ":", what.str(), " -> ", s.to_string());
    if (s.ok()) {
      ++result_.joint_changes;
      process(leader);
    }
  }

  // Once faults stop, servers outside the leader's configuration are shut
  // down, as an operator would after removing them, and brought back if a
  // later leader's configuration has them again. (Left running with
  // neither pre-vote nor check-quorum, a removed server that never learned
  // of its removal disrupts the cluster with ever higher terms, §4.2.3.)
  void retire_non_members() {
    SimNode* leader = some_leader();
    if (!leader) return;
    // Never the leader itself: one that a joint change removes must still
    // commit C_new, and steps down by itself once it has.
    const ConfState conf = leader->raft->conf_state();
    for (SimNode& node : nodes_) {
      if (node.raft && &node != leader && !conf.is_member(node.id)) {
        log("retire ", node.id);
        node.raft.reset();
        node.pending.reset();
        node.retired = true;
      } else if (node.retired && conf.is_member(node.id)) {
        // The removal was not committed and a new leader rolled it back.
        log("bring back ", node.id);
        node.retired = false;
        start(node);
      }
    }
  }

  void retry_proposals() {
    SimNode* leader = some_leader();
    if (!leader) return;
    std::vector<std::string> batch;
    for (const auto& [id, done] : proposals_) {
      if (!done) batch.push_back(id);
    }
    if (batch.empty()) return;
    log("client retries ", batch.size(), " proposal(s) at ", leader->id);
    for (const auto& id : batch)
      retried_.insert(id);
    if (leader->raft->propose_batch(std::move(batch)).ok()) process(*leader);
  }

  void snapshot(SimNode& node) {
    const LogIndex at = node.applied;
    std::string data = std::to_string(at.value()) + ":" + std::to_string(node.sm_hash) + "|";
    // Padding, so that snapshots take several chunks to stream.
    data.resize(data.size() + snapshot_pad_, '.');
    Status s = node.disk->create_snapshot(at, node.raft->conf_state_at(at), std::move(data));
    if (!s.ok()) return fail("snapshot at " + std::to_string(at.value()) + ": " + s.to_string());
    // Keep a few entries for followers that are only a little behind.
    const std::uint64_t keep = rng_.below(4);
    const LogIndex upto = at.value() > keep ? at - keep : LogIndex(0);
    s = node.disk->compact(upto);
    if (!s.ok()) return fail("compact: " + s.to_string());
    log("snapshot ", node.id, " at ", at, ", compacted to ", upto);
  }

  static std::uint64_t parse_snapshot(const std::string& data) {
    auto colon = data.find(':');
    if (colon == std::string::npos) return 0;
    return std::stoull(data.substr(colon + 1));
  }

  // ---- the event loop ----------------------------------------------------

  void tick(bool with_faults) {
    if (with_faults) {
      faults();
      if (!result_.ok) return;
      clients();
    }
    for (SimNode& node : nodes_) {
      if (!node.raft) continue;
      node.raft->tick();
      process(node);
      check(node);
    }
    deliver_due();
    for (SimNode& node : nodes_) {
      if (node.raft && node.pending && node.sync_at <= now_) {
        sync(node);
        check(node);
      }
    }
    if (++events_ % 16 == 0) check_log_matching();
  }

  bool cut(NodeId a, NodeId b) const {
    auto side = [&](NodeId x) {
      auto it = side_.find(x);
      return it == side_.end() ? 0 : it->second;
    };
    return side(a) != side(b);
  }

  void deliver_due() {
    std::vector<InFlight> due;
    std::vector<InFlight> later;
    for (InFlight& f : network_) {
      (f.deliver_at <= now_ ? due : later).push_back(std::move(f));
    }
    network_ = std::move(later);
    std::sort(due.begin(), due.end(), [](const InFlight& a, const InFlight& b) {
      return a.deliver_at != b.deliver_at ? a.deliver_at < b.deliver_at : a.order < b.order;
    });
    for (InFlight& f : due) {
      if (!result_.ok) return;
      SimNode& dst = nodes_[f.m.to.value() - 1];
      if (!dst.raft || cut(f.m.from, f.m.to) || rng_.chance(drop_per_mille_, 1000)) continue;
      if (rng_.chance(dup_per_mille_, 1000)) send(f.m);  // a copy arrives later too
      ++result_.messages;
      if (opt_.verbose) {
        log("  ", f.m.from, "->", f.m.to, " ", to_string(f.m.type), " term=", f.m.term,
            " index=", f.m.index, " log_term=", f.m.log_term, " commit=", f.m.commit,
            " entries=", f.m.entries.size(), f.m.reject ? " reject" : "");
      }
      Status s = dst.raft->step(f.m);
      if (!s.ok()) return fail("step refused a message: " + s.to_string());
      process(dst);
      check(dst);
    }
  }

  void send(const Message& m) {
    const int delay = 1 + static_cast<int>(rng_.below(max_delay_));
    // Faulty networks reorder messages due in the same tick; once faults
    // stop, delivery is in order.
    const std::uint64_t order = faults_ ? rng_.next_u64() : ++send_seq_;
    network_.push_back(InFlight{now_ + delay, order, m});
  }

  // Takes the next Ready; it is written now and synced at the end of this
  // tick or a later one, so a crash in between loses it. Its eager messages
  // leave at once: a crash before the sync then leaves followers holding a
  // leader's entries that the leader itself lost.
  void process(SimNode& node) {
    if (!node.raft || node.pending || !node.raft->has_ready()) return;
    node.pending = node.raft->ready();
    node.sync_at = now_ + (drop_per_mille_ > 0 && rng_.chance(1, 4) ? 1 : 0);
    auto& msgs = node.pending->messages;
    if (node.pending->messages_eager > msgs.size())
      return fail("more eager messages than messages");
    const auto eager_end = msgs.begin() + static_cast<std::ptrdiff_t>(node.pending->messages_eager);
    for (auto it = msgs.begin(); it != eager_end; ++it)
      send(*it);
    msgs.erase(msgs.begin(), eager_end);
    node.pending->messages_eager = 0;
    for (const Entry& e : node.pending->entries) {
      const auto key = std::make_pair(e.index.value(), e.term.value());
      const std::uint64_t h = hash_entry(e);
      auto [it, inserted] = entries_seen_.emplace(key, h);
      if (!inserted && it->second != h) {
        return fail("log matching: two different entries at index " +
                    std::to_string(e.index.value()) + " term " + std::to_string(e.term.value()));
      }
    }
  }

  void sync(SimNode& node) {
    Ready rd = std::move(*node.pending);
    node.pending.reset();
    for (const SnapshotChunk& c : rd.snapshot_chunks) {
      if (c.offset == 0) node.incoming_snapshot.clear();
      if (c.offset != node.incoming_snapshot.size()) {
        return fail("snapshot chunk at " + std::to_string(c.offset) + " after " +
                    std::to_string(node.incoming_snapshot.size()) + " bytes");
      }
      if (c.data.size() > config_.snapshot_chunk_bytes) return fail("oversized snapshot chunk");
      node.incoming_snapshot += c.data;
      ++result_.chunks;
    }
    if (rd.snapshot) {
      Snapshot snap = *rd.snapshot;
      if (rd.snapshot_in_chunks) {
        snap.data = std::move(node.incoming_snapshot);
        ++result_.chunked_snapshots;
      }
      node.incoming_snapshot.clear();
      Status s = node.disk->apply_snapshot(snap);
      if (!s.ok()) return fail("installing a snapshot: " + s.to_string());
      node.applied = snap.meta.index;
      node.sm_hash = parse_snapshot(snap.data);
      check_applied(node, "snapshot");
    }
    node.disk->append(rd.entries);
    if (rd.hard_state) node.disk->set_hard_state(*rd.hard_state);
    // A new leader that dies right after writing its first entries leaves
    // an entry of a newer term on one server only: the other ingredient of
    // the histories of Figure 8.
    const bool new_leader = rd.soft_state_changed && node.raft->role() == Role::Leader;
    if (rng_.chance(sync_crash_per_mille_, 1000) ||
        (new_leader && rng_.chance(new_leader_crash_per_mille_, 1000))) {
      // Durable, but the process dies before its messages leave: the node
      // holds entries nobody else has (the histories of Figure 8).
      log("node ", node.id, " crashes after its write, before sending");
      crash(node);
      return;
    }
    for (const Message& m : rd.messages)
      send(m);
    for (const Entry& e : rd.committed_entries) {
      if (e.index != node.applied.next()) {
        return fail("node " + std::to_string(node.id.value()) + " applies " +
                    std::to_string(e.index.value()) + " after " +
                    std::to_string(node.applied.value()));
      }
      node.applied = e.index;
      node.sm_hash = mix(node.sm_hash, hash_entry(e));
      check_applied(node, "entry");
      if (!e.data.empty() && e.data[0] == 'p') {
        auto it = proposals_.find(e.data);
        if (it != proposals_.end()) it->second = true;
        // Proposed once (forwarded or not, over a network that duplicates):
        // in the log once. Only a client's retry may append it again.
        auto [at, inserted] = applied_at_.emplace(e.data, e.index);
        if (!inserted && at->second != e.index && !retried_.contains(e.data)) {
          return fail("proposal " + e.data + " applied twice, at " +
                      std::to_string(at->second.value()) + " and " +
                      std::to_string(e.index.value()));
        }
      }
    }
    for (const ReadState& r : rd.read_states) {
      auto it = reads_.find(r.context);
      if (it == reads_.end()) return fail("read state for an unknown request");
      if (r.index < it->second) {
        return fail("ReadIndex " + std::to_string(r.index.value()) + " misses index " +
                    std::to_string(it->second.value()) + " committed before the read");
      }
      if (!reads_answered_.insert(r.context).second) {
        return fail("ReadIndex " + std::to_string(r.context) + " answered twice");
      }
    }
    for (std::uint64_t ctx : rd.failed_reads) {
      if (!reads_.contains(ctx)) return fail("a failed read that was never requested");
      if (!reads_answered_.insert(ctx).second) {
        return fail("ReadIndex " + std::to_string(ctx) + " answered twice");
      }
      ++result_.failed_reads;
    }
    node.raft->advance();
    process(node);
  }

  // ---- invariants --------------------------------------------------------

  // State machine safety: every node has the same state after index i.
  void check_applied(SimNode& node, const char* how) {
    const std::uint64_t i = node.applied.value();
    if (i == 0) return;
    if (applied_hash_.size() <= i) applied_hash_.resize(i + 1, 0);
    if (applied_hash_[i] == 0) {
      applied_hash_[i] = node.sm_hash;
    } else if (applied_hash_[i] != node.sm_hash) {
      fail(std::string("state machine safety: node ") + std::to_string(node.id.value()) +
           " has a different state after index " + std::to_string(i) + " (" + how + ")");
    }
  }

  void check(SimNode& node) {
    if (!result_.ok || !node.raft) return;
    Raft& r = *node.raft;
    const Term term = r.term();
    // Election safety (§5.2): one leader per term.
    if (r.role() == Role::Leader) {
      auto [it, inserted] = leaders_.emplace(term, node.id);
      if (!inserted && it->second != node.id) {
        return fail("election safety: nodes " + std::to_string(it->second.value()) + " and " +
                    std::to_string(node.id.value()) + " both lead term " +
                    std::to_string(term.value()));
      }
      if (node.last_role != Role::Leader || node.last_term != term) {
        ++result_.elections;
        log("node ", node.id, " leads term ", term);
        check_leader_completeness(node);
      }
    }
    node.last_role = r.role();
    node.last_term = term;
    const LogIndex before = node.checked_commit;
    record_commits(node);
    // A leader that dies just after advancing its commit index, before the
    // followers learn it: the histories of Figure 8 need this too.
    if (faults_ && r.role() == Role::Leader && node.checked_commit > before &&
        rng_.chance(commit_crash_per_mille_, 1000)) {
      log("leader ", node.id, " crashes right after committing ", node.checked_commit);
      crash(node);
    }
  }

  // Committed entries never change (committed prefixes agree).
  void record_commits(SimNode& node) {
    Raft& r = *node.raft;
    const LogIndex commit = r.commit_index();
    if (commit <= node.checked_commit) return;
    const LogIndex lo = std::max(node.checked_commit.next(), r.first_index());
    if (lo <= commit) {
      for (const Entry& e : r.log_entries(lo, commit.next())) {
        const std::uint64_t i = e.index.value();
        if (committed_.size() <= i) committed_.resize(i + 1);
        auto& slot = committed_[i];
        const std::uint64_t h = hash_entry(e);
        if (!slot) {
          slot = CommittedEntry{e.term, h};
        } else if (slot->term != e.term || slot->hash != h) {
          return fail("committed entries differ at index " + std::to_string(i) + ": node " +
                      std::to_string(node.id.value()) + " has term " +
                      std::to_string(e.term.value()) + ", committed was term " +
                      std::to_string(slot->term.value()));
        }
      }
    }
    node.checked_commit = commit;
    if (commit > committed_max_) committed_max_ = commit;
  }

  // §5.4.3: a leader's log holds every committed entry.
  void check_leader_completeness(SimNode& node) {
    Raft& r = *node.raft;
    const LogIndex first = r.first_index();
    for (std::uint64_t i = first.value(); i <= committed_max_.value(); ++i) {
      if (i >= committed_.size() || !committed_[i]) continue;
      auto t = r.term_at(LogIndex(i));
      if (!t || *t != committed_[i]->term) {
        return fail("leader completeness: leader " + std::to_string(node.id.value()) + " of term " +
                    std::to_string(r.term().value()) + " lacks committed entry " +
                    std::to_string(i));
      }
    }
  }

  // Log matching (§5.3): two logs that agree on an entry agree on all
  // entries before it.
  void check_log_matching() {
    for (std::size_t a = 0; a < nodes_.size() && result_.ok; ++a) {
      for (std::size_t b = a + 1; b < nodes_.size() && result_.ok; ++b) {
        if (!nodes_[a].raft || !nodes_[b].raft) continue;
        const Raft& x = *nodes_[a].raft;
        const Raft& y = *nodes_[b].raft;
        const LogIndex lo = std::max(x.first_index(), y.first_index());
        const LogIndex hi = std::min(x.last_index(), y.last_index());
        if (lo > hi) continue;
        auto ex = x.log_entries(lo, hi.next());
        auto ey = y.log_entries(lo, hi.next());
        // From the highest index where both agree on the term, all below match.
        bool agreed = false;
        for (std::size_t k = ex.size(); k-- > 0;) {
          if (!agreed && ex[k].term == ey[k].term) agreed = true;
          if (agreed && !(ex[k] == ey[k])) {
            return fail("log matching: nodes " + std::to_string(a + 1) + " and " +
                        std::to_string(b + 1) + " differ at index " +
                        std::to_string(ex[k].index.value()) + " below an agreeing entry");
          }
        }
      }
    }
  }

  // Every read a running core accepted got its answer by the end (a read
  // state or a failure): pending reads die only with the process.
  void check_reads_settled() {
    // Forwarded reads fail after two election timeouts; leave them that.
    for (int k = 0; k < 2 * config_.election_ticks + 2 && result_.ok; ++k, ++now_)
      tick(false);
    for (const auto& [ctx, owner] : read_owner_) {
      if (reads_answered_.contains(ctx)) continue;
      const SimNode* node = nullptr;
      for (const SimNode& n : nodes_) {
        if (n.id == owner.first) node = &n;
      }
      if (node && node->raft && node->restarts == owner.second) {
        return fail("ReadIndex " + std::to_string(ctx) + " on node " +
                    std::to_string(owner.first.value()) + " was never answered nor failed");
      }
    }
  }

  bool converged() {
    SimNode* leader = some_leader();
    if (!leader) return false;
    for (const auto& [id, done] : proposals_) {
      if (!done) return false;
    }
    const LogIndex commit = leader->raft->commit_index();
    if (leader->raft->term_at(commit) != leader->raft->term()) return false;
    const ConfState& conf = leader->raft->conf_state();
    for (SimNode& node : nodes_) {
      if (!conf.is_member(node.id)) continue;
      if (!node.raft || node.applied != commit) return false;
    }
    return true;
  }

  std::uint64_t backlog_entries() {
    LogIndex last, applied{~std::uint64_t{0}};
    for (SimNode& node : nodes_) {
      if (!node.raft) continue;
      last = std::max(last, node.raft->last_index());
      applied = std::min(applied, node.applied);
    }
    std::uint64_t open = 0;
    for (const auto& [id, done] : proposals_)
      open += done ? 0 : 1;
    return (last > applied ? last - applied : 0) + open;
  }

  std::string liveness_report() {
    std::ostringstream os;
    std::size_t open = 0;
    for (const auto& [id, done] : proposals_)
      open += done ? 0 : 1;
    os << "by tick " << now_ << ": " << open << " proposal(s) uncommitted;";
    for (SimNode& node : nodes_) {
      os << " [" << node.id << ": ";
      if (!node.raft) {
        os << "down]";
        continue;
      }
      os << to_string(node.raft->role()) << " term=" << node.raft->term()
         << " commit=" << node.raft->commit_index() << " last=" << node.raft->last_index()
         << " applied=" << node.applied << " " << node.raft->conf_state() << "]";
      for (const ProgressInfo& p : node.raft->status().progress) {
        os << " {" << p.id << " " << to_string(p.state) << " match=" << p.match
           << " next=" << p.next << " inflight=" << p.inflight << "}";
      }
    }
    return os.str();
  }

  void fail(const std::string& what) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.failure = "tick " + std::to_string(now_) + ": " + what;
    log("FAILED: ", result_.failure);
  }

  template <typename... Args>
  void log(const Args&... args) {
    if (!opt_.verbose) return;
    std::ostringstream os;
    os << "[" << now_ << "] ";
    (os << ... << args);
    std::fprintf(stderr, "%s\n", os.str().c_str());
  }

  SimOptions opt_;
  Random rng_;
  RaftConfig config_;
  std::vector<SimNode> nodes_;
  std::vector<InFlight> network_;
  std::map<NodeId, int> side_;
  std::uint64_t drop_per_mille_ = 0, dup_per_mille_ = 0;
  std::uint64_t crash_per_mille_ = 0, partition_per_mille_ = 0, leader_crash_per_mille_ = 0;
  std::uint64_t sync_crash_per_mille_ = 0, new_leader_crash_per_mille_ = 0;
  std::uint64_t commit_crash_per_mille_ = 0;
  std::uint64_t forward_per_mille_ = 0;
  std::size_t snapshot_pad_ = 0;
  int max_delay_ = 1;
  bool faults_ = true;
  bool membership_changes_ = false;
  std::pair<NodeId, Term> retried_with_;
  std::uint64_t send_seq_ = 0;
  int now_ = 0;
  std::uint64_t events_ = 0;

  std::map<Term, NodeId> leaders_;
  std::vector<std::optional<CommittedEntry>> committed_;
  LogIndex committed_max_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> entries_seen_;
  std::vector<std::uint64_t> applied_hash_;
  std::map<std::string, bool> proposals_;
  std::uint64_t next_proposal_ = 1;
  std::map<std::uint64_t, LogIndex> reads_;
  std::map<std::uint64_t, std::pair<NodeId, int>> read_owner_;  // node, its restart count
  std::set<std::uint64_t> reads_answered_;
  std::map<std::string, LogIndex> applied_at_;
  std::set<std::string> retried_;
  std::uint64_t read_seq_ = 0;
  SimResult result_;
};

}  // namespace

SimResult run_simulation(const SimOptions& options) {
  return Simulation(options).run();
}

std::string replay_command(const SimOptions& o) {
  std::string cmd = "coord-vopr --seed=" + std::to_string(o.seed) + " --verbose";
  if (o.commit_by_counting_earlier_terms) cmd += " --broken-commit-for-testing";
  if (o.fault_ticks != SimOptions{}.fault_ticks) {
    cmd += " --fault-ticks=" + std::to_string(o.fault_ticks);
  }
  return cmd;
}

}  // namespace coord::consensus::sim
