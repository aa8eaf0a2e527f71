#include "coord/consensus/types.h"

#include <algorithm>
#include <iterator>

#include "coord/base/assert.h"

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

// Versions of the conf change encodings (types.h): without and with
// contexts, one server and joint.
constexpr std::uint8_t conf_change_version = 1;
constexpr std::uint8_t joint_conf_change_version = 2;
constexpr std::uint8_t conf_change_context_version = 3;
constexpr std::uint8_t joint_conf_change_context_version = 4;
// One change without its context: type and node id.
constexpr std::size_t change_head_bytes = 9;
constexpr std::size_t context_length_bytes = 4;
constexpr std::size_t joint_changes_max = 2 * limits::cluster_members_max;

void put_change(std::string& out, const ConfChange& cc, bool with_context) {
  out.push_back(static_cast<char>(cc.type));
  const std::uint64_t v = cc.node.value();
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  if (!with_context) return;
  COORD_ASSERT(cc.context.size() <= limits::conf_change_context_bytes_max);
  const auto n = static_cast<std::uint32_t>(cc.context.size());
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += cc.context;
}

// Reads one change at `in` (advanced past it); the error names `what`.
Result<ConfChange> take_change(std::string_view& in, bool with_context, const char* what) {
  if (in.size() < change_head_bytes) {
    return Status(ErrorCode::MarshallingError, std::string(what) + ": wrong size");
  }
  const auto t = static_cast<std::uint8_t>(in[0]);
  if (t > static_cast<std::uint8_t>(ConfChangeType::PromoteLearner)) {
    return Status(ErrorCode::MarshallingError, std::string(what) + ": unknown type");
  }
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= std::uint64_t{static_cast<std::uint8_t>(in[1 + i])} << (8 * i);
  in.remove_prefix(change_head_bytes);
  ConfChange cc{static_cast<ConfChangeType>(t), NodeId(v)};
  if (!with_context) return cc;
  if (in.size() < context_length_bytes) {
    return Status(ErrorCode::MarshallingError, std::string(what) + ": wrong size");
  }
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i)
    n |= std::uint32_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
  in.remove_prefix(context_length_bytes);
  if (n > limits::conf_change_context_bytes_max) {
    return Status(ErrorCode::MarshallingError, std::string(what) + ": context too long");
  }
  if (in.size() < n) return Status(ErrorCode::MarshallingError, std::string(what) + ": wrong size");
  cc.context.assign(in.substr(0, n));
  in.remove_prefix(n);
  return cc;
}

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
std::size_t ConfState::size() const {
  // Both voter lists are sorted: count their union in one merge walk.
  std::size_t n = 0;
  auto a = voters.begin();
  auto b = voters_outgoing.begin();
  while (a != voters.end() && b != voters_outgoing.end()) {
    if (*a < *b) {
      ++a;
    } else if (*b < *a) {
      ++b;
    } else {
      ++a;
      ++b;
    }
    ++n;
  }
  n += static_cast<std::size_t>(voters.end() - a) +
       static_cast<std::size_t>(voters_outgoing.end() - b);
  return n + learners.size();
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
  const bool with_context = !context.empty();
  std::string out;
  out.reserve(1 + change_head_bytes + (with_context ? context_length_bytes + context.size() : 0));
  out.push_back(
      static_cast<char>(with_context ? conf_change_context_version : conf_change_version));
  put_change(out, *this, with_context);
  return out;
}

Result<ConfChange> ConfChange::decode(std::string_view bytes) {
  if (bytes.empty()) return Status(ErrorCode::MarshallingError, "conf change: wrong size");
  const auto version = static_cast<std::uint8_t>(bytes[0]);
  if (version != conf_change_version && version != conf_change_context_version) {
    return Status(ErrorCode::MarshallingError, "conf change: unknown version");
  }
  bytes.remove_prefix(1);
  auto cc = take_change(bytes, version == conf_change_context_version, "conf change");
  if (!cc.ok()) return cc;
  if (!bytes.empty()) return Status(ErrorCode::MarshallingError, "conf change: wrong size");
  return cc;
}

Result<ConfState> ConfChange::apply_to(const ConfState& before) const {
  if (node == NodeId(0)) return Status(ErrorCode::BadArguments, "conf change: node 0");
  if (context.size() > limits::conf_change_context_bytes_max) {
    return Status(ErrorCode::BadArguments, "conf change: context too long");
  }
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
  COORD_ASSERT(changes.size() <= 0xff);
  bool with_context = false;
  std::size_t bytes = 2;
  for (const ConfChange& cc : changes) {
    with_context = with_context || !cc.context.empty();
    bytes += change_head_bytes + context_length_bytes + cc.context.size();
  }
  std::string out;
  out.reserve(bytes);
  out.push_back(static_cast<char>(with_context ? joint_conf_change_context_version
                                               : joint_conf_change_version));
  out.push_back(static_cast<char>(changes.size()));
  for (const ConfChange& cc : changes)
    put_change(out, cc, with_context);
  return out;
}

Result<JointConfChange> JointConfChange::decode(std::string_view bytes) {
  if (bytes.size() < 2) return Status(ErrorCode::MarshallingError, "joint conf change: short");
  const auto version = static_cast<std::uint8_t>(bytes[0]);
  if (version != joint_conf_change_version && version != joint_conf_change_context_version) {
    return Status(ErrorCode::MarshallingError, "joint conf change: unknown version");
  }
  const bool with_context = version == joint_conf_change_context_version;
  const std::size_t n = static_cast<std::uint8_t>(bytes[1]);
  // Each change takes at least its head (and length): a count the bytes
  // cannot hold is refused before anything is allocated.
  const std::size_t least = change_head_bytes + (with_context ? context_length_bytes : 0);
  if (n > joint_changes_max || bytes.size() - 2 < n * least) {
    return Status(ErrorCode::MarshallingError, "joint conf change: wrong size");
  }
  bytes.remove_prefix(2);
  JointConfChange out;
  out.changes.reserve(n);
  for (std::size_t k = 0; k < n; ++k) {
    auto cc = take_change(bytes, with_context, "joint conf change");
    if (!cc.ok()) return cc.status();
    out.changes.push_back(std::move(cc).value());
  }
  if (!bytes.empty()) return Status(ErrorCode::MarshallingError, "joint conf change: wrong size");
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

namespace {

bool is_joint_encoding(std::string_view data) {
  if (data.empty()) return false;
  const auto version = static_cast<std::uint8_t>(data[0]);
  return version == joint_conf_change_version || version == joint_conf_change_context_version;
}

}  // namespace

Result<ConfState> apply_conf_entry(std::string_view data, const ConfState& before) {
  if (is_joint_encoding(data)) {
    auto j = JointConfChange::decode(data);
    if (!j.ok()) return j.status();
    return j->apply_to(before);
  }
  auto cc = ConfChange::decode(data);
  if (!cc.ok()) return cc.status();
  return cc->apply_to(before);
}

Result<std::vector<ConfChange>> conf_entry_changes(std::string_view data) {
  if (is_joint_encoding(data)) {
    auto j = JointConfChange::decode(data);
    if (!j.ok()) return j.status();
    return std::move(j->changes);
  }
  auto cc = ConfChange::decode(data);
  if (!cc.ok()) return cc.status();
  return std::vector<ConfChange>{std::move(cc).value()};
}

std::vector<Entry> bootstrap_entries(const ConfState& founding) {
  std::vector<ConfChange> changes;
  for (NodeId id : founding.voters)
    changes.push_back(ConfChange{ConfChangeType::AddVoter, id});
  for (NodeId id : founding.learners)
    changes.push_back(ConfChange{ConfChangeType::AddLearner, id});
  return bootstrap_entries(changes);
}

std::vector<Entry> bootstrap_entries(const std::vector<ConfChange>& founding) {
  std::vector<Entry> out;
  for (const ConfChange& cc : founding) {
    COORD_ASSERT(cc.type == ConfChangeType::AddVoter || cc.type == ConfChangeType::AddLearner,
                 "a founding entry adds a member");
    out.push_back(Entry{Term(1), LogIndex(out.size() + 1), EntryType::ConfChange, cc.encode()});
  }
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
