// Reconfig across a cluster: the messages that carry it to the leader and
// back, and the leader's run of one plan.
//
// A client's reconfig (opcode 16) may reach any server. Only the leader can
// plan it, since only the leader knows which voters are connected and in
// sync (plan_reconfig's NewConfigNoQuorum), and only the leader can propose
// configuration changes; the server the client is on answers it once the
// last step has applied there, with /zookeeper/config as it then reads. So a
// follower sends the request to the leader (an ask) and the leader answers
// with the outcome and the index at which the new membership is in force
// (an answer). Both travel as consensus MessageType::App messages, with the
// kind below as the message's context and the body as the data of its one
// entry; an ask or answer lost with a link is covered by the connection's
// own loss (the request's outcome is unknown, as for a lost write).
//
// Bodies, little-endian:
//   ask:    id u64, cur_config_id i64, then joining, leaving and new_members,
//           each as length u32 and bytes
//   answer: id u64, error i32 (ZooKeeper's code), index u64
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/status.h"
#include "coord/consensus/types.h"
#include "coord/protocol/records.h"

namespace coord::core {

// Kinds of App message (consensus/types.h) that carry reconfig.
inline constexpr std::uint64_t app_reconfig_ask = 2;
inline constexpr std::uint64_t app_reconfig_answer = 3;

struct ReconfigAsk {
  std::uint64_t id = 0;  // chosen by the asking server
  protocol::ReconfigRequest request;

  std::string encode() const;
  // MarshallingError for anything but a whole body.
  static Result<ReconfigAsk> decode(std::string_view bytes);
  friend bool operator==(const ReconfigAsk&, const ReconfigAsk&) = default;
};

struct ReconfigAnswer {
  std::uint64_t id = 0;
  ErrorCode err = ErrorCode::Ok;
  // With Ok: the membership asked for is in force once this index applies.
  LogIndex index{0};

  std::string encode() const;
  static Result<ReconfigAnswer> decode(std::string_view bytes);
  friend bool operator==(const ReconfigAnswer&, const ReconfigAnswer&) = default;
};

// One plan being carried out by the leader: its steps are proposed one
// after the other, each once the one before has applied and left its joint
// configuration.
struct ReconfigRun {
  NodeId origin;         // the server the client is on
  std::uint64_t id = 0;  // the origin's id of the request
  std::vector<std::vector<consensus::ConfChange>> steps;
  std::size_t next = 0;    // the step to propose next
  LogIndex step_index{0};  // of the entry of the step proposed last
};

}  // namespace coord::core
