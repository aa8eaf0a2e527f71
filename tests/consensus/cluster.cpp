#include "cluster.h"

#include <algorithm>

#include "coord/base/random.h"

namespace coord::consensus::testing {

std::string describe(const Entry& e) {
  std::ostringstream os;
  os << e.term << "/" << e.index;
  if (e.type == EntryType::ConfChange) {
    auto cc = ConfChange::decode(e.data);
    auto jc = JointConfChange::decode(e.data);
    // A context, when there is one, follows its change in braces.
    auto context = [&](const ConfChange& c) {
      if (!c.context.empty()) os << "{" << c.context << "}";
    };
    if (cc.ok()) {
      os << " " << to_string(cc->type) << "=" << cc->node;
      context(*cc);
    } else if (jc.ok() && jc->leave()) {
      os << " leave-joint";
    } else if (jc.ok()) {
      os << " joint[";
      for (std::size_t i = 0; i < jc->changes.size(); ++i) {
        os << (i ? " " : "") << to_string(jc->changes[i].type) << "=" << jc->changes[i].node;
        context(jc->changes[i]);
      }
      os << "]";
    } else {
      os << " conf-change?";
    }
  } else if (e.data.empty()) {
    os << " no-op";
  } else {
    os << " " << e.data;
  }
  return os.str();
}

std::string describe_entries(const std::vector<Entry>& es) {
  std::string out = "[";
  for (std::size_t i = 0; i < es.size(); ++i) {
    if (i) out += ", ";
    out += describe(es[i]);
  }
  return out + "]";
}

std::string describe(const Message& m) {
  std::ostringstream os;
  os << m.from << "->" << m.to << " " << to_string(m.type) << " term=" << m.term;
  switch (m.type) {
    case MessageType::Append:
      os << " prev=" << m.log_term << "/" << m.index << " commit=" << m.commit;
      if (!m.entries.empty()) os << " entries=" << describe_entries(m.entries);
      break;
    case MessageType::AppendResponse:
      if (m.reject) {
        os << " reject index=" << m.index << " hint=" << m.log_term << "/" << m.reject_hint;
      } else {
        os << " index=" << m.index;
      }
      break;
    case MessageType::Vote:
    case MessageType::PreVote:
      os << " last=" << m.log_term << "/" << m.index;
      if (m.transfer) os << " transfer";
      break;
    case MessageType::VoteResponse:
    case MessageType::PreVoteResponse:
      os << (m.reject ? " reject" : " granted");
      break;
    case MessageType::Heartbeat:
      os << " commit=" << m.commit;
      if (m.context) os << " ctx=" << m.context;
      break;
    case MessageType::HeartbeatResponse:
      if (m.context) os << " ctx=" << m.context;
      break;
    case MessageType::InstallSnapshot:
      if (m.snapshot) {
        os << " snapshot=" << m.snapshot->meta.term << "/" << m.snapshot->meta.index << " "
           << m.snapshot->meta.conf;
      }
      break;
    case MessageType::TimeoutNow:
      break;
    case MessageType::ReadIndex:
      os << " ctx=" << m.context;
      break;
    case MessageType::ReadIndexResponse:
      os << " index=" << m.index << " ctx=" << m.context;
      if (m.reject) os << " reject";
      break;
    case MessageType::SnapshotChunk:
      if (m.snapshot) {
        os << " snapshot=" << m.snapshot->meta.term << "/" << m.snapshot->meta.index << " "
           << m.snapshot->meta.conf << " offset=" << m.chunk_offset
           << " bytes=" << m.snapshot->data.size();
      }
      if (m.chunk_last) os << " last";
      break;
    case MessageType::SnapshotChunkResponse:
      os << " snapshot=" << m.index << " offset=" << m.chunk_offset;
      if (m.reject) os << " reject";
      break;
    case MessageType::Propose:
      os << " entries=" << describe_entries(m.entries) << " seq=" << (m.context & 0xffffffffU);
      break;
    case MessageType::App:
      os << " kind=" << m.context << " entries=" << describe_entries(m.entries);
      break;
  }
  return os.str();
}

void Cluster::add_node(NodeId id, const ConfState& conf, const NodeOptions& options) {
  Node n;
  n.storage = conf.voters.empty() && conf.learners.empty() ? std::make_unique<MemoryStorage>()
                                                           : std::make_unique<MemoryStorage>(conf);
  n.options = options;
  nodes_[id] = std::move(n);
  restart(id);
  // Apply the founding configuration entries quietly: every script starts
  // from a bootstrapped cluster.
  process_ready(id);
}

Cluster::Node& Cluster::node(NodeId id) {
  auto it = nodes_.find(id);
  COORD_ASSERT(it != nodes_.end(), "no node ", id);
  return it->second;
}

std::vector<NodeId> Cluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_)
    out.push_back(id);
  return out;
}

void Cluster::restart(NodeId id) {
  Node& n = node(id);
  RaftConfig c;
  c.id = id;
  c.election_ticks = n.options.election_ticks;
  c.heartbeat_ticks = n.options.heartbeat_ticks;
  c.pre_vote = n.options.pre_vote;
  c.check_quorum = n.options.check_quorum;
  c.max_entries_per_message = n.options.max_entries_per_message;
  c.max_inflight_messages = n.options.max_inflight;
  c.snapshot_chunk_bytes = n.options.snapshot_chunk_bytes;
  c.commit_by_counting_earlier_terms_for_testing = n.options.commit_by_counting_earlier_terms;
  // The state machine restarts from the snapshot, so applied starts there.
  n.applied_index = n.storage->snapshot_meta().index;
  n.applied.clear();
  n.incoming_snapshot.clear();
  c.applied = n.applied_index;
  n.raft = std::make_unique<Raft>(c, *n.storage, Random(id.value()));
  n.down = false;
}

void Cluster::crash(NodeId id) {
  Node& n = node(id);
  n.raft.reset();
  n.down = true;
  std::erase_if(outbox_, [&](const Message& m) { return m.from == id || m.to == id; });
}

Status Cluster::snapshot(NodeId id) {
  Node& n = node(id);
  std::string data = std::to_string(n.applied_index.value());
  // Padded so that small chunk sizes stream it in several pieces.
  data.resize(std::max<std::size_t>(data.size(), n.options.snapshot_pad_bytes), '.');
  COORD_RETURN_IF_ERROR(n.storage->create_snapshot(
      n.applied_index, n.raft->conf_state_at(n.applied_index), std::move(data)));
  return n.storage->compact(n.applied_index);
}

std::string Cluster::process_ready(NodeId id) {
  Node& n = node(id);
  if (n.down || !n.raft->has_ready()) return "";
  Ready rd = n.raft->ready();
  std::ostringstream os;
  os << "> " << id << " handling Ready\n";
  if (rd.soft_state_changed) {
    os << "  State: " << to_string(n.raft->role()) << " leader=" << n.raft->leader() << "\n";
  }
  if (rd.hard_state) {
    os << "  HardState term=" << rd.hard_state->term << " vote=" << rd.hard_state->vote
       << " commit=" << rd.hard_state->commit << "\n";
  }
  for (const SnapshotChunk& c : rd.snapshot_chunks) {
    os << "  SnapshotChunk " << c.meta.term << "/" << c.meta.index << " offset=" << c.offset
       << " bytes=" << c.data.size() << (c.last ? " last" : "") << "\n";
    // The host's side of a streamed snapshot: a chunk at 0 starts over.
    if (c.offset == 0) n.incoming_snapshot.clear();
    COORD_ASSERT(c.offset == n.incoming_snapshot.size(), "snapshot chunk out of order");
    n.incoming_snapshot += c.data;
  }
  if (rd.snapshot) {
    os << "  Snapshot " << rd.snapshot->meta.term << "/" << rd.snapshot->meta.index << " "
       << rd.snapshot->meta.conf << (rd.snapshot_in_chunks ? " (from chunks)" : "") << "\n";
    Snapshot snap = *rd.snapshot;
    if (rd.snapshot_in_chunks) snap.data = std::move(n.incoming_snapshot);
    n.incoming_snapshot.clear();
    COORD_ASSERT(n.storage->apply_snapshot(snap).ok(), "snapshot refused");
    n.applied_index = snap.meta.index;
    n.snapshot_data = snap.data;
  }
  if (!rd.entries.empty()) {
    os << "  Entries: " << describe_entries(rd.entries) << "\n";
    n.storage->append(rd.entries);
  }
  if (rd.hard_state) n.storage->set_hard_state(*rd.hard_state);
  if (!rd.committed_entries.empty()) {
    os << "  Committed: " << describe_entries(rd.committed_entries) << "\n";
    for (const Entry& e : rd.committed_entries) {
      COORD_ASSERT(e.index == n.applied_index.next(), "applied out of order");
      n.applied_index = e.index;
      if (e.type == EntryType::Normal && !e.data.empty()) n.applied.push_back(e);
    }
  }
  for (const ReadState& r : rd.read_states) {
    os << "  ReadState index=" << r.index << " ctx=" << r.context << "\n";
    n.read_states.push_back(r);
  }
  for (std::uint64_t ctx : rd.failed_reads) {
    os << "  FailedRead ctx=" << ctx << "\n";
    n.failed_reads.push_back(ctx);
  }
  if (rd.leader_changed) ++n.leader_changes;
  for (Message& m : rd.messages) {
    os << "  send " << describe(m) << "\n";
    outbox_.push_back(std::move(m));
  }
  n.raft->advance();
  return os.str();
}

bool Cluster::cut(NodeId a, NodeId b) const {
  auto side = [&](NodeId x) {
    auto it = side_.find(x);
    return it == side_.end() ? 0 : it->second;
  };
  return side(a) != side(b);
}

std::string Cluster::deliver(NodeId to) {
  std::vector<Message> now;
  std::vector<Message> keep;
  for (Message& m : outbox_) {
    if (to == NodeId(0) || m.to == to) {
      now.push_back(std::move(m));
    } else {
      keep.push_back(std::move(m));
    }
  }
  outbox_ = std::move(keep);
  std::ostringstream os;
  for (const Message& m : now) {
    auto it = nodes_.find(m.to);
    if (it == nodes_.end() || it->second.down || cut(m.from, m.to) ||
        (drop_type_ && *drop_type_ == m.type)) {
      os << "  dropped " << describe(m) << "\n";
      continue;
    }
    Status s = it->second.raft->step(m);
    os << "  " << describe(m) << (s.ok() ? "" : " -> " + s.to_string()) << "\n";
  }
  return os.str();
}

std::string Cluster::stabilize(int max_rounds) {
  std::string out;
  for (int round = 0; round < max_rounds; ++round) {
    bool moved = false;
    for (NodeId id : ids()) {
      std::string r = process_ready(id);
      if (!r.empty()) moved = true;
      out += r;
    }
    if (!outbox_.empty()) {
      moved = true;
      out += "> delivering\n" + deliver(NodeId(0));
    }
    if (!moved) break;
  }
  return out;
}

void Cluster::partition(const std::set<NodeId>& side) {
  side_.clear();
  for (NodeId id : side)
    side_[id] = 1;
}

void Cluster::isolate(NodeId id) {
  side_.clear();
  side_[id] = 1;
}

void Cluster::heal() {
  side_.clear();
}

void Cluster::drop_outbox(NodeId from) {
  std::erase_if(outbox_, [&](const Message& m) { return from == NodeId(0) || m.from == from; });
}

NodeId Cluster::leader() const {
  std::map<NodeId, int> votes;
  for (const auto& [id, n] : nodes_) {
    if (!n.down && n.raft->role() == Role::Leader) votes[id]++;
  }
  NodeId best{0};
  Term best_term{0};
  for (const auto& [id, v] : votes) {
    const Term t = nodes_.at(id).raft->term();
    if (t >= best_term) {
      best = id;
      best_term = t;
    }
  }
  return best;
}

std::string Cluster::state_line(NodeId id) const {
  const Node& n = nodes_.at(id);
  std::ostringstream os;
  if (n.down) {
    os << id << ": down";
    return os.str();
  }
  const Raft& r = *n.raft;
  os << id << ": " << to_string(r.role()) << " term=" << r.term() << " leader=" << r.leader()
     << " commit=" << r.commit_index() << " last=" << r.last_index()
     << " applied=" << n.applied_index;
  if (!r.conf_state().is_voter(id))
    os << (r.conf_state().is_learner(id) ? " (learner)" : " (non-member)");
  return os.str();
}

std::string Cluster::progress(NodeId id) const {
  const Node& n = nodes_.at(id);
  RaftStatus s = n.raft->status();
  std::ostringstream os;
  os << state_line(id) << " conf: " << n.raft->conf_state() << "\n";
  for (const ProgressInfo& p : s.progress) {
    os << "  " << p.id << ": " << to_string(p.state) << " match=" << p.match << " next=" << p.next;
    if (p.inflight) os << " inflight=" << p.inflight;
    if (p.learner) os << " learner";
    os << "\n";
  }
  if (s.transfer_target != NodeId(0)) os << "  transferring to " << s.transfer_target << "\n";
  return os.str();
}

std::string Cluster::log(NodeId id) const {
  const Node& n = nodes_.at(id);
  const Raft& r = *n.raft;
  std::ostringstream os;
  os << id << ": first=" << r.first_index() << " "
     << describe_entries(r.log_entries(r.first_index(), r.last_index().next()));
  return os.str();
}

}  // namespace coord::consensus::testing
