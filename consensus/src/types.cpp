#include "coord/consensus/types.h"

#include <algorithm>
#include <iterator>

namespace coord::consensus {

namespace {

bool contains(const std::vector<NodeId>& v, NodeId id) {
  return std::binary_search(v.begin(), v.end(), id);
}

void insert_sorted(std::vector<NodeId>& v, NodeId id) {
  v.insert(std::lower_bound(v.begin(), v.end(), id), id);
}

void erase_sorted(std::vector<NodeId>& v, NodeId id) {
  auto it = std::lower_bound(v.begin(), v.end(), id);
  if (it != v.end() && *it == id) v.erase(it);
}

// ConfChange bytes: version, type, node id (8 bytes little endian).
constexpr std::uint8_t conf_change_version = 1;
constexpr std::size_t conf_change_bytes = 10;
// JointConfChange bytes: version 2, change count, then per change its type
// and node id (8 bytes little endian).
constexpr std::uint8_t joint_conf_change_version = 2;
constexpr std::size_t joint_changes_max = 2 * limits::cluster_members_max;

}  // namespace

bool ConfState::is_voter(NodeId id) const {
  return contains(voters, id) || contains(voters_outgoing, id);
}

std::vector<NodeId> ConfState::members() const {
  std::vector<NodeId> out;
  out.reserve(voters.size() + voters_outgoing.size() + learners.size());
  std::set_union(voters.begin(), voters.end(), voters_outgoing.begin(), voters_outgoing.end(),
                 std::back_inserter(out));
  const std::size_t mid = out.size();
  out.insert(out.end(), learners.begin(), learners.end());
  std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(mid), out.end());
  return out;
}
bool ConfState::is_learner(NodeId id) const {
  return contains(learners, id);
}

std::ostream& operator<<(std::ostream& os, const ConfState& c) {
  os << "voters=(";
  for (std::size_t i = 0; i < c.voters.size(); ++i)
    os << (i ? " " : "") << c.voters[i];
  os << ")";
  if (!c.learners.empty()) {
    os << " learners=(";
    for (std::size_t i = 0; i < c.learners.size(); ++i)
      os << (i ? " " : "") << c.learners[i];
    os << ")";
  }
  if (!c.voters_outgoing.empty()) {
    os << " outgoing=(";
    for (std::size_t i = 0; i < c.voters_outgoing.size(); ++i)
      os << (i ? " " : "") << c.voters_outgoing[i];
    os << ")";
  }
  return os;
}

std::string_view to_string(ConfChangeType t) {
  switch (t) {
    case ConfChangeType::AddVoter:
      return "add-voter";
    case ConfChangeType::RemoveVoter:
      return "remove-voter";
    case ConfChangeType::AddLearner:
      return "add-learner";
    case ConfChangeType::PromoteLearner:
      return "promote-learner";
  }
  return "unknown";
}

std::string ConfChange::encode() const {
  std::string out(conf_change_bytes, '\0');
  out[0] = static_cast<char>(conf_change_version);
  out[1] = static_cast<char>(type);
  const std::uint64_t v = node.value();
  for (int i = 0; i < 8; ++i)
    out[2 + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

Result<ConfChange> ConfChange::decode(std::string_view bytes) {
  if (bytes.size() != conf_change_bytes) {
    return Status(ErrorCode::MarshallingError, "conf change: wrong size");
  }
  if (static_cast<std::uint8_t>(bytes[0]) != conf_change_version) {
    return Status(ErrorCode::MarshallingError, "conf change: unknown version");
  }
  const auto t = static_cast<std::uint8_t>(bytes[1]);
  if (t > static_cast<std::uint8_t>(ConfChangeType::PromoteLearner)) {
    return Status(ErrorCode::MarshallingError, "conf change: unknown type");
  }
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= std::uint64_t{static_cast<std::uint8_t>(bytes[2 + i])} << (8 * i);
  return ConfChange{static_cast<ConfChangeType>(t), NodeId(v)};
}

Result<ConfState> ConfChange::apply_to(const ConfState& before) const {
  if (node == NodeId(0)) return Status(ErrorCode::BadArguments, "conf change: node 0");
  if (before.joint()) {
    return Status(ErrorCode::ReconfigInProgress, "a joint configuration is in force");
  }
  ConfState after = before;
  switch (type) {
    case ConfChangeType::AddVoter:
      if (before.is_member(node)) return Status(ErrorCode::BadArguments, "already a member");
      if (before.size() >= limits::cluster_members_max) {
        return Status(ErrorCode::BadArguments, "cluster is full");
      }
      insert_sorted(after.voters, node);
      break;
    case ConfChangeType::AddLearner:
      if (before.is_member(node)) return Status(ErrorCode::BadArguments, "already a member");
      if (before.size() >= limits::cluster_members_max) {
        return Status(ErrorCode::BadArguments, "cluster is full");
      }
      insert_sorted(after.learners, node);
      break;
    case ConfChangeType::RemoveVoter:
      if (before.is_voter(node)) {
        if (before.voters.size() == 1) {
          return Status(ErrorCode::BadArguments, "cannot remove the last voter");
        }
        erase_sorted(after.voters, node);
      } else if (before.is_learner(node)) {
        erase_sorted(after.learners, node);
      } else {
        return Status(ErrorCode::BadArguments, "not a member");
      }
      break;
    case ConfChangeType::PromoteLearner:
      if (!before.is_learner(node)) return Status(ErrorCode::BadArguments, "not a learner");
      erase_sorted(after.learners, node);
      insert_sorted(after.voters, node);
      break;
  }
  return after;
}

std::string JointConfChange::encode() const {
  std::string out;
  out.reserve(2 + changes.size() * 9);
  out.push_back(static_cast<char>(joint_conf_change_version));
  out.push_back(static_cast<char>(changes.size()));
  for (const ConfChange& cc : changes) {
    out.push_back(static_cast<char>(cc.type));
    const std::uint64_t v = cc.node.value();
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  return out;
}

Result<JointConfChange> JointConfChange::decode(std::string_view bytes) {
  if (bytes.size() < 2) return Status(ErrorCode::MarshallingError, "joint conf change: short");
  if (static_cast<std::uint8_t>(bytes[0]) != joint_conf_change_version) {
    return Status(ErrorCode::MarshallingError, "joint conf change: unknown version");
  }
  const std::size_t n = static_cast<std::uint8_t>(bytes[1]);
  if (n > joint_changes_max || bytes.size() != 2 + n * 9) {
    return Status(ErrorCode::MarshallingError, "joint conf change: wrong size");
  }
  JointConfChange out;
  out.changes.reserve(n);
  for (std::size_t k = 0; k < n; ++k) {
    const char* p = bytes.data() + 2 + k * 9;
    const auto t = static_cast<std::uint8_t>(p[0]);
    if (t > static_cast<std::uint8_t>(ConfChangeType::PromoteLearner)) {
      return Status(ErrorCode::MarshallingError, "joint conf change: unknown type");
    }
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= std::uint64_t{static_cast<std::uint8_t>(p[1 + i])} << (8 * i);
    out.changes.push_back(ConfChange{static_cast<ConfChangeType>(t), NodeId(v)});
  }
  return out;
}

Result<ConfState> JointConfChange::apply_to(const ConfState& before) const {
  if (leave()) {
    if (!before.joint()) {
      return Status(ErrorCode::BadArguments, "not in a joint configuration");
    }
    ConfState after = before;
    after.voters_outgoing.clear();
    return after;
  }
  if (before.joint()) {
    return Status(ErrorCode::ReconfigInProgress, "a joint configuration is in force");
  }
  if (changes.size() > joint_changes_max) {
    return Status(ErrorCode::BadArguments, "too many changes at once");
  }
  ConfState next = before;
  for (const ConfChange& cc : changes) {
    auto r = cc.apply_to(next);
    if (!r.ok()) return r.status();
    next = std::move(r).value();
  }
  if (next.voters == before.voters) return next;  // learners only: no joint phase
  for (NodeId id : next.learners) {
    if (contains(before.voters, id)) {
      return Status(ErrorCode::BadArguments,
                    "a voter cannot become a learner in one change (remove it first)");
    }
  }
  next.voters_outgoing = before.voters;
  if (next.size() > limits::cluster_members_max) {
    return Status(ErrorCode::BadArguments, "cluster is full");
  }
  return next;
}

Result<ConfState> apply_conf_entry(std::string_view data, const ConfState& before) {
  if (!data.empty() && static_cast<std::uint8_t>(data[0]) == joint_conf_change_version) {
    auto j = JointConfChange::decode(data);
    if (!j.ok()) return j.status();
    return j->apply_to(before);
  }
  auto cc = ConfChange::decode(data);
  if (!cc.ok()) return cc.status();
  return cc->apply_to(before);
}

std::vector<Entry> bootstrap_entries(const ConfState& founding) {
  std::vector<Entry> out;
  auto add = [&](ConfChangeType type, NodeId id) {
    const LogIndex index(out.size() + 1);
    out.push_back(Entry{Term(1), index, EntryType::ConfChange, ConfChange{type, id}.encode()});
  };
  for (NodeId id : founding.voters)
    add(ConfChangeType::AddVoter, id);
  for (NodeId id : founding.learners)
    add(ConfChangeType::AddLearner, id);
  return out;
}

HardState bootstrap_hard_state(const ConfState& founding) {
  return HardState{Term(1), NodeId(0), LogIndex(founding.size())};
}

std::string_view to_string(MessageType t) {
  switch (t) {
    case MessageType::Append:
      return "Append";
    case MessageType::AppendResponse:
      return "AppendResponse";
    case MessageType::Vote:
      return "Vote";
    case MessageType::VoteResponse:
      return "VoteResponse";
    case MessageType::PreVote:
      return "PreVote";
    case MessageType::PreVoteResponse:
      return "PreVoteResponse";
    case MessageType::Heartbeat:
      return "Heartbeat";
    case MessageType::HeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::InstallSnapshot:
      return "InstallSnapshot";
    case MessageType::TimeoutNow:
      return "TimeoutNow";
    case MessageType::ReadIndex:
      return "ReadIndex";
    case MessageType::ReadIndexResponse:
      return "ReadIndexResponse";
    case MessageType::SnapshotChunk:
      return "SnapshotChunk";
    case MessageType::SnapshotChunkResponse:
      return "SnapshotChunkResponse";
    case MessageType::Propose:
      return "Propose";
    case MessageType::App:
      return "App";
  }
  return "Unknown";
}

bool operator==(const Message& a, const Message& b) {
  const bool snap_eq = (a.snapshot == nullptr && b.snapshot == nullptr) ||
                       (a.snapshot && b.snapshot && *a.snapshot == *b.snapshot);
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.commit == b.commit &&
         a.entries == b.entries && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.transfer == b.transfer && a.context == b.context && a.chunk_offset == b.chunk_offset &&
         a.chunk_last == b.chunk_last && snap_eq;
}

}  // namespace coord::consensus
