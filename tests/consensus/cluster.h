// A small in-memory cluster of Raft cores for the golden and rule tests:
// each node has a MemoryStorage it persists Ready batches into at once, an
// applied list, and an outbox of messages that the test delivers, drops or
// holds back explicitly. Everything is printed in a fixed format so golden
// scripts can show exactly what the core did.
// Not thread-safe; one test at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "coord/consensus/raft.h"
#include "coord/consensus/storage.h"

namespace coord::consensus::testing {

std::string describe(const Entry& e);
std::string describe(const Message& m);
std::string describe_entries(const std::vector<Entry>& es);

struct NodeOptions {
  bool pre_vote = true;
  bool check_quorum = true;
  std::size_t max_entries_per_message = 64;
  std::size_t max_inflight = 16;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool commit_by_counting_earlier_terms = false;
  std::size_t snapshot_chunk_bytes = limits::snapshot_chunk_bytes;
  std::size_t snapshot_pad_bytes = 0;  // snapshot data is at least this long
};

class Cluster {
 public:
  struct Node {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<Raft> raft;
    NodeOptions options;
    std::vector<Entry> applied;  // normal entries with data, in order
    std::vector<ReadState> read_states;
    std::vector<std::uint64_t> failed_reads;
    int leader_changes = 0;         // Readies with leader_changed set
    std::string snapshot_data;      // state machine as of the last snapshot
    std::string incoming_snapshot;  // chunks of a streamed snapshot so far
    LogIndex applied_index;
    bool down = false;
  };

  // A node with an initial configuration (empty conf = a new member that
  // waits to be contacted).
  void add_node(NodeId id, const ConfState& conf, const NodeOptions& options);
  Node& node(NodeId id);
  Raft& raft(NodeId id) { return *node(id).raft; }
  std::vector<NodeId> ids() const;

  // Persists, queues messages, applies, advances; returns a description of
  // the Ready (empty when there was none).
  std::string process_ready(NodeId id);
  // Delivers the queued messages addressed to `to` (all nodes when 0);
  // returns what was delivered or dropped.
  std::string deliver(NodeId to);
  // Repeats process_ready and deliver on every node until nothing moves.
  std::string stabilize(int max_rounds = 100);

  // Messages between the two sides are dropped.
  void partition(const std::set<NodeId>& side);
  void isolate(NodeId id);
  void heal();
  bool cut(NodeId a, NodeId b) const;
  void drop_outbox(NodeId from);
  // Messages of this type are dropped at delivery until cleared.
  void drop_type(std::optional<MessageType> t) { drop_type_ = t; }

  void crash(NodeId id);    // drops the core and the queued messages from/to it
  void restart(NodeId id);  // a new core from the node's storage
  Status snapshot(NodeId id);

  // The leader most nodes agree on, or 0.
  NodeId leader() const;
  std::string state_line(NodeId id) const;
  std::string progress(NodeId id) const;
  std::string log(NodeId id) const;

  std::vector<Message>& outbox() { return outbox_; }

 private:
  std::map<NodeId, Node> nodes_;
  std::vector<Message> outbox_;
  std::map<NodeId, int> side_;  // partition side; absent = 0
  std::optional<MessageType> drop_type_;
};

}  // namespace coord::consensus::testing
