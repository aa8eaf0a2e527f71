#include "coord/consensus/types.h"

#include <algorithm>

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

}  // namespace

bool ConfState::is_voter(NodeId id) const {
  return contains(voters, id);
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
  }
  return "Unknown";
}

bool operator==(const Message& a, const Message& b) {
  const bool snap_eq = (a.snapshot == nullptr && b.snapshot == nullptr) ||
                       (a.snapshot && b.snapshot && *a.snapshot == *b.snapshot);
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.commit == b.commit &&
         a.entries == b.entries && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.transfer == b.transfer && a.context == b.context && snap_eq;
}

}  // namespace coord::consensus
