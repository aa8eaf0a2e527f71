// Golden interaction tests: each script in testdata/ drives a small cluster
// with the command language below and checks what every node said and did.
// Rewrite the expected output with COORD_REWRITE_GOLDEN=1 after a deliberate
// change, and read the diff.
//
//   add-nodes <n> [voters=1,2,3] [learners=4] [new] [pre-vote=false]
//             [check-quorum=false] [max-entries=n] [inflight=n] [broken-commit]
//             [chunk-bytes=n] [snapshot-pad=n] [heartbeat-ticks=n]
//   campaign <id>              tick <id> [n=k]       tick-election <id>
//   process-ready [id...]      deliver-msgs [id...]  drop-msgs [from=id]  dup-msgs
//   drop-type <MessageType|none>   stabilize   propose <id> <data...>
//   propose-conf-change <id> <add-voter|remove-voter|add-learner|promote-learner>=<node>
//                       [context=<bytes>]
//   propose-conf-changes <id> <type>:<node>[/<context>]...   (several at once: joint
//                       consensus; a context here has no '=')
//   read-index <id> <ctx>      transfer-leadership <from> <to>
//   partition <ids on one side...>   isolate <id>   heal
//   crash <id>   restart <id>   snapshot <id>
//   raft-state   status <id>   raft-log <id>   applied <id>

#include <gtest/gtest.h>

#include <sstream>

#include "cluster.h"
#include "coord/testing/golden.h"

namespace coord::consensus::testing {
namespace {

std::vector<NodeId> parse_ids(const std::string& s) {
  std::vector<NodeId> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(NodeId(std::stoull(item)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

NodeId arg_id(const coord::testing::GoldenCase& c, std::size_t k) {
  auto pos = c.positional();
  COORD_ASSERT(pos.size() > k, c.file, ":", c.line, ": missing argument ", k + 1);
  return NodeId(std::stoull(pos[k]));
}

std::vector<NodeId> id_list(const coord::testing::GoldenCase& c, const Cluster& cluster) {
  std::vector<NodeId> out;
  for (const auto& p : c.positional())
    out.push_back(NodeId(std::stoull(p)));
  if (out.empty()) out = cluster.ids();
  return out;
}

std::string or_ok(std::string s) {
  if (s.empty()) return "ok";
  while (!s.empty() && s.back() == '\n')
    s.pop_back();
  return s;
}

std::string status_line(const Status& s) {
  return s.ok() ? "ok" : s.to_string();
}

class Handler {
 public:
  std::string run(const coord::testing::GoldenCase& c) {
    const std::string& cmd = c.command;
    if (cmd == "add-nodes") return add_nodes(c);
    if (cmd == "campaign") {
      cluster_.raft(arg_id(c, 0)).campaign();
      return "ok";
    }
    if (cmd == "tick" || cmd == "tick-election") {
      const NodeId id = arg_id(c, 0);
      int n = std::stoi(c.get_or("n", "1"));
      if (cmd == "tick-election") n = 2 * cluster_.node(id).options.election_ticks;
      for (int i = 0; i < n; ++i)
        cluster_.raft(id).tick();
      return "ok";
    }
    if (cmd == "process-ready") {
      std::string out;
      for (NodeId id : id_list(c, cluster_))
        out += cluster_.process_ready(id);
      return or_ok(out);
    }
    if (cmd == "deliver-msgs") {
      std::string out;
      auto pos = c.positional();
      if (pos.empty()) {
        out = cluster_.deliver(NodeId(0));
      } else {
        for (NodeId id : id_list(c, cluster_))
          out += cluster_.deliver(id);
      }
      return or_ok(out);
    }
    if (cmd == "drop-msgs") {
      cluster_.drop_outbox(NodeId(std::stoull(c.get_or("from", "0"))));
      return "ok";
    }
    if (cmd == "dup-msgs") {
      // The network delivers every queued message twice.
      auto& out = cluster_.outbox();
      const std::size_t k = out.size();
      for (std::size_t i = 0; i < k; ++i)
        out.push_back(out[i]);
      return "ok";
    }
    if (cmd == "drop-type") {
      std::optional<MessageType> t;
      const std::string name = c.positional().at(0);
      for (int k = 0; k < message_type_count; ++k) {
        if (to_string(static_cast<MessageType>(k)) == name) t = static_cast<MessageType>(k);
      }
      cluster_.drop_type(t);
      return "ok";
    }
    if (cmd == "stabilize") return or_ok(cluster_.stabilize());
    if (cmd == "propose") {
      auto pos = c.positional();
      std::vector<std::string> data(pos.begin() + 1, pos.end());
      return status_line(cluster_.raft(arg_id(c, 0)).propose_batch(std::move(data)));
    }
    if (cmd == "propose-conf-change") {
      ConfChange cc;
      bool found = false;
      for (auto [name, type] : {std::pair{"add-voter", ConfChangeType::AddVoter},
                                {"remove-voter", ConfChangeType::RemoveVoter},
                                {"add-learner", ConfChangeType::AddLearner},
                                {"promote-learner", ConfChangeType::PromoteLearner}}) {
        if (auto v = c.get(name)) {
          cc = ConfChange{type, NodeId(std::stoull(*v))};
          found = true;
        }
      }
      COORD_ASSERT(found, c.file, ":", c.line, ": no change given");
      if (auto v = c.get("context")) cc.context = *v;
      return status_line(cluster_.raft(arg_id(c, 0)).propose_conf_change(cc));
    }
    if (cmd == "propose-conf-changes") {
      auto pos = c.positional();
      std::vector<ConfChange> changes;
      for (std::size_t k = 1; k < pos.size(); ++k) {
        const auto colon = pos[k].find(':');
        COORD_ASSERT(colon != std::string::npos, c.file, ":", c.line, ": want type:node");
        const std::string name = pos[k].substr(0, colon);
        // type:node, or type:node/context.
        const auto slash = pos[k].find('/', colon);
        ConfChange cc{ConfChangeType::AddVoter,
                      NodeId(std::stoull(pos[k].substr(colon + 1, slash - colon - 1)))};
        if (slash != std::string::npos) cc.context = pos[k].substr(slash + 1);
        bool found = false;
        for (auto [n, type] : {std::pair{"add-voter", ConfChangeType::AddVoter},
                               {"remove-voter", ConfChangeType::RemoveVoter},
                               {"add-learner", ConfChangeType::AddLearner},
                               {"promote-learner", ConfChangeType::PromoteLearner}}) {
          if (name == n) {
            cc.type = type;
            found = true;
          }
        }
        COORD_ASSERT(found, c.file, ":", c.line, ": unknown change ", name);
        changes.push_back(cc);
      }
      return status_line(cluster_.raft(arg_id(c, 0)).propose_conf_changes(std::move(changes)));
    }
    if (cmd == "read-index") {
      return status_line(cluster_.raft(arg_id(c, 0)).read_index(arg_id(c, 1).value()));
    }
    if (cmd == "transfer-leadership") {
      return status_line(cluster_.raft(arg_id(c, 0)).transfer_leadership(arg_id(c, 1)));
    }
    if (cmd == "partition") {
      std::set<NodeId> side;
      for (const auto& p : c.positional())
        side.insert(NodeId(std::stoull(p)));
      cluster_.partition(side);
      return "ok";
    }
    if (cmd == "isolate") {
      cluster_.isolate(arg_id(c, 0));
      return "ok";
    }
    if (cmd == "heal") {
      cluster_.heal();
      return "ok";
    }
    if (cmd == "crash") {
      cluster_.crash(arg_id(c, 0));
      return "ok";
    }
    if (cmd == "restart") {
      cluster_.restart(arg_id(c, 0));
      return "ok";
    }
    if (cmd == "snapshot") return status_line(cluster_.snapshot(arg_id(c, 0)));
    if (cmd == "raft-state") {
      std::string out;
      for (NodeId id : cluster_.ids())
        out += cluster_.state_line(id) + "\n";
      return or_ok(out);
    }
    if (cmd == "status") return or_ok(cluster_.progress(arg_id(c, 0)));
    if (cmd == "raft-log") return cluster_.log(arg_id(c, 0));
    if (cmd == "applied") {
      const auto& n = cluster_.node(arg_id(c, 0));
      std::string out = "applied=" + std::to_string(n.applied_index.value()) + " [";
      for (std::size_t i = 0; i < n.applied.size(); ++i) {
        out += (i ? " " : "") + n.applied[i].data;
      }
      return out + "]";
    }
    ADD_FAILURE() << c.file << ":" << c.line << ": unknown command " << cmd;
    return "";
  }

 private:
  std::string add_nodes(const coord::testing::GoldenCase& c) {
    const int n = std::stoi(c.positional().at(0));
    const std::uint64_t first = cluster_.ids().size() + 1;
    NodeOptions o;
    o.pre_vote = c.get_or("pre-vote", "true") == "true";
    o.check_quorum = c.get_or("check-quorum", "true") == "true";
    o.max_entries_per_message = std::stoull(c.get_or("max-entries", "64"));
    o.max_inflight = std::stoull(c.get_or("inflight", "16"));
    o.commit_by_counting_earlier_terms = c.has_flag("broken-commit");
    o.snapshot_chunk_bytes =
        std::stoull(c.get_or("chunk-bytes", std::to_string(limits::snapshot_chunk_bytes)));
    o.snapshot_pad_bytes = std::stoull(c.get_or("snapshot-pad", "0"));
    o.heartbeat_ticks = std::stoi(c.get_or("heartbeat-ticks", "1"));
    ConfState conf;
    if (!c.has_flag("new")) {
      if (auto v = c.get("voters")) {
        conf.voters = parse_ids(*v);
      } else {
        for (int i = 0; i < n; ++i)
          conf.voters.push_back(NodeId(first + i));
      }
      if (auto l = c.get("learners")) conf.learners = parse_ids(*l);
    }
    for (int i = 0; i < n; ++i)
      cluster_.add_node(NodeId(first + i), conf, o);
    return "ok";
  }

  Cluster cluster_;
};

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, Script) {
  Handler h;
  coord::testing::run_golden_file(GetParam(),
                                  [&](const coord::testing::GoldenCase& c) { return h.run(c); });
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(info.param.find_last_of('/') + 1);
  name = name.substr(0, name.size() - 4);
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Consensus, GoldenTest,
                         ::testing::ValuesIn(coord::testing::golden_files(COORD_TEST_SOURCE_DIR
                                                                          "/testdata")),
                         test_name);

}  // namespace
}  // namespace coord::consensus::testing
