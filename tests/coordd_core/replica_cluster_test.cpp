// Three replicas of the real coordd/core wired by an in-memory network that
// delivers every peer message at once (or drops those of a cut link), with
// clients speaking ZooKeeper frames to any of them: what being one server
// of a cluster changes, case by case. The randomized cluster simulator
// covers the same ground under faults; these pin each rule down.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "coord/core/replica.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"

namespace coord::core {
namespace {

namespace pr = coord::protocol;
using pr::OpCode;

constexpr std::int64_t kTickMs = 50;

struct Reply {
  std::int32_t xid = 0;
  ErrorCode err = ErrorCode::Ok;
  Zxid zxid{0};
};

class Cluster {
 public:
  explicit Cluster(const std::function<void(ReplicaConfig&)>& configure = nullptr) {
    for (std::uint64_t id = 1; id <= 3; ++id) {
      ReplicaConfig c;
      c.id = NodeId(id);
      c.voters = {NodeId(1), NodeId(2), NodeId(3)};
      c.tick_ms = kTickMs;
      c.reap_interval_ms = 100;
      if (configure) configure(c);
      auto& n = nodes_[NodeId(id)];
      n.storage = std::make_unique<MemoryReplicaStorage>(consensus::ConfState{c.voters, {}});
      auto r = Replica::create(c, *n.storage, std::nullopt, Random(id * 7919), [this] {
        std::string p(16, '\0');
        for (char& ch : p)
          ch = static_cast<char>(rng_.below(256));
        return p;
      });
      EXPECT_TRUE(r.ok()) << r.status();
      n.replica = std::move(r).value();
    }
  }

  Replica& node(std::uint64_t id) { return *nodes_.at(NodeId(id)).replica; }

  NodeId leader() {
    for (auto& [id, n] : nodes_) {
      if (!cut_.contains(id) && n.replica->raft_status().role == consensus::Role::Leader) return id;
    }
    return NodeId(0);
  }

  // Ticks every node until `done` holds (at most `max_ms`).
  bool run_until(const std::function<bool()>& done, std::int64_t max_ms = 10'000) {
    for (std::int64_t t = 0; t <= max_ms; t += kTickMs) {
      flush();
      if (done()) return true;
      tick();
    }
    return false;
  }
  void run_for(std::int64_t ms) {
    run_until([] { return false; }, ms);
  }
  NodeId elect() {
    EXPECT_TRUE(run_until([&] { return leader() != NodeId(0); }));
    // Commit the new leader's first entry everywhere.
    run_for(5 * kTickMs);
    return leader();
  }

  // A node whose every link is cut: nothing reaches it, nothing leaves,
  // and, when `links_break`, the hosts notice (a dead process); otherwise
  // messages just vanish (a partition TCP has not noticed yet).
  void isolate(std::uint64_t id, bool links_break = true) {
    cut_.insert(NodeId(id));
    if (!links_break) return;
    for (auto& [other, n] : nodes_) {
      if (other == NodeId(id)) continue;
      n.replica->peer_link_changed(NodeId(id), false, steady_, wall_);
      nodes_.at(NodeId(id)).replica->peer_link_changed(other, false, steady_, wall_);
    }
  }
  void heal() {
    for (NodeId id : cut_) {
      for (auto& [other, n] : nodes_) {
        if (other == id) continue;
        n.replica->peer_link_changed(id, true, steady_, wall_);
        nodes_.at(id).replica->peer_link_changed(other, true, steady_, wall_);
      }
    }
    cut_.clear();
  }

  // ---- clients -------------------------------------------------------------

  ConnId open(std::uint64_t node_id) {
    const ConnId c = next_conn_++;
    at_[c] = NodeId(node_id);
    node(node_id).connection_opened(c, "127.0.0.1", steady_, wall_, 4000);
    flush();
    return c;
  }
  bool closed(ConnId c) const { return closed_.contains(c); }

  // Sends a handshake; the reply may come later (a forwarded session).
  void handshake(ConnId c, SessionId session = SessionId(0), std::string password = {},
                 bool can_be_read_only = false, std::int32_t timeout_ms = 4'000) {
    pr::ConnectRequest req;
    req.timeout_ms = timeout_ms;
    req.session_id = session;
    req.password = password.empty() ? std::string(16, '\0') : std::move(password);
    req.read_only = can_be_read_only;
    pr::Bytes frame;
    pr::append_connect_request_frame(frame, req);
    deliver(c, frame);
  }
  std::optional<pr::ConnectResponse> connected(ConnId c) {
    auto& in = inbox_[c];
    if (handshaken_.contains(c)) return handshaken_[c];
    auto cut = pr::cut_frame(pr::ByteSpan(in));
    if (cut.state != pr::FrameState::Frame) return std::nullopt;
    auto resp = pr::decode_connect_response(cut.payload);
    EXPECT_TRUE(resp.ok());
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(cut.consumed));
    handshaken_[c] = *resp;
    return *resp;
  }
  pr::ConnectResponse connect(ConnId c, SessionId session = SessionId(0), std::string pw = {},
                              bool can_be_read_only = false) {
    handshake(c, session, std::move(pw), can_be_read_only);
    EXPECT_TRUE(run_until([&] { return connected(c).has_value() || closed(c); }));
    auto r = connected(c);
    EXPECT_TRUE(r.has_value()) << "connection " << c << " was closed";
    return r.value_or(pr::ConnectResponse{});
  }

  std::int32_t send(ConnId c, OpCode op, const pr::RequestBody& body) {
    const std::int32_t xid = next_xid_++;
    pr::Bytes frame;
    pr::append_request_frame(frame, pr::RequestHeader{xid, op}, body);
    deliver(c, frame);
    return xid;
  }
  // Replies (not watch events) received on `c` so far.
  std::vector<Reply> replies(ConnId c) {
    connected(c);
    std::vector<Reply> out;
    auto& in = inbox_[c];
    std::size_t pos = 0;
    for (;;) {
      auto cut = pr::cut_frame(pr::ByteSpan(in).subspan(pos));
      if (cut.state != pr::FrameState::Frame) break;
      pos += cut.consumed;
      pr::JuteReader r(cut.payload);
      auto h = pr::decode_reply_header(r);
      if (h.ok() && h->xid != pr::xid_watch_event) out.push_back(Reply{h->xid, h->err, h->zxid});
    }
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(pos));
    return out;
  }
  // Sends and waits for the reply; nullopt when the connection closed first.
  std::optional<Reply> call(ConnId c, OpCode op, const pr::RequestBody& body) {
    const std::int32_t xid = send(c, op, body);
    std::optional<Reply> got;
    run_until([&] {
      for (const Reply& r : replies(c))
        if (r.xid == xid) got = r;
      return got.has_value() || closed(c);
    });
    return got;
  }

  bool exists_on(std::uint64_t node_id, const std::string& path) {
    return node(node_id).tree().exists(path).ok();
  }

 private:
  struct Node {
    std::unique_ptr<MemoryReplicaStorage> storage;
    std::unique_ptr<Replica> replica;
  };

  void deliver(ConnId c, const pr::Bytes& bytes) {
    if (closed(c)) return;
    nodes_.at(at_.at(c)).replica->bytes_received(c, pr::ByteSpan(bytes), steady_, wall_);
    flush();
  }

  void tick() {
    steady_ += kTickMs;
    wall_ += kTickMs;
    for (auto& [id, n] : nodes_)
      n.replica->tick(steady_, wall_);
    flush();
  }

  // Delivers outputs until nothing moves.
  void flush() {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      for (auto& [id, n] : nodes_) {
        ReplicaOutput out = n.replica->take_output();
        for (auto& o : out.connections) {
          moved = true;
          auto& in = inbox_[o.conn];
          in.insert(in.end(), o.bytes.begin(), o.bytes.end());
          if (o.close && closed_.insert(o.conn).second) n.replica->connection_closed(o.conn);
        }
        for (auto& m : out.peer_messages) {
          if (cut_.contains(m.from) || cut_.contains(m.to)) continue;
          moved = true;
          nodes_.at(m.to).replica->peer_message(m, steady_, wall_);
        }
      }
      if (!moved) return;
    }
  }

  std::map<NodeId, Node> nodes_;
  std::set<NodeId> cut_;
  std::map<ConnId, NodeId> at_;
  std::map<ConnId, pr::Bytes> inbox_;
  std::map<ConnId, pr::ConnectResponse> handshaken_;
  std::set<ConnId> closed_;
  ConnId next_conn_ = 1;
  std::int32_t next_xid_ = 1;
  TimeMs steady_{1'000};
  TimeMs wall_{1'700'000'000'000};
  Random rng_{5};
};

pr::CreateRequest create_req(std::string path, CreateMode mode = CreateMode::Persistent) {
  return pr::CreateRequest{std::move(path), "d", open_acl_unsafe(), mode};
}

std::uint64_t a_follower(Cluster& c) {
  return c.leader() == NodeId(1) ? 2 : 1;
}

TEST(ReplicaCluster, AFollowerOpensSessionsAndForwardsWritesAnsweredOnApply) {
  Cluster c;
  c.elect();
  const std::uint64_t f = a_follower(c);
  const ConnId conn = c.open(f);
  const auto hello = c.connect(conn);
  EXPECT_NE(hello.session_id.value(), 0);
  auto r = c.call(conn, OpCode::Create, create_req("/x"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::Ok);
  // Answered after it applied on the follower itself: a read right after
  // sees it there.
  EXPECT_TRUE(c.exists_on(f, "/x"));
  EXPECT_GE(c.node(f).stats().requests_forwarded, 2u);  // the session and the create
  c.run_for(5 * kTickMs);
  for (std::uint64_t n = 1; n <= 3; ++n)
    EXPECT_TRUE(c.exists_on(n, "/x")) << "server " << n;
}

TEST(ReplicaCluster, ALeaderLostWithAWriteInFlightClosesTheConnection) {
  Cluster c;
  const NodeId old = c.elect();
  const std::uint64_t f = a_follower(c);
  const ConnId conn = c.open(f);
  c.connect(conn);
  c.isolate(old.value(), /*links_break=*/false);  // the Propose goes nowhere
  c.send(conn, OpCode::Create, create_req("/lost"));
  ASSERT_TRUE(c.run_until([&] { return c.closed(conn); }));
  EXPECT_GE(c.node(f).stats().requests_outcome_unknown, 1u);
  // Never applied: the old leader could not commit it.
  c.elect();
  EXPECT_FALSE(c.exists_on(f, "/lost"));
}

TEST(ReplicaCluster, AWriteSentWhileTheLeaderIsUnreachableWaitsForTheNextOne) {
  Cluster c;
  const NodeId old = c.elect();
  const std::uint64_t f = a_follower(c);
  const ConnId conn = c.open(f);
  c.connect(conn);
  // The follower's link to its leader breaks (the leader died): a write
  // sent now waits for the election's winner instead of being forwarded
  // into the void.
  c.isolate(old.value());
  const auto got = c.call(conn, OpCode::Create, create_req("/during"));
  ASSERT_TRUE(got.has_value()) << "the connection closed instead";
  EXPECT_EQ(got->err, ErrorCode::Ok);
  EXPECT_TRUE(c.exists_on(f, "/during"));
  EXPECT_NE(c.leader(), old);
}

TEST(ReplicaCluster, SessionsLiveOnAFollowerAreRelayedAndOnlyTheLeaderExpiresThem) {
  Cluster c;
  c.elect();
  const std::uint64_t f = a_follower(c);
  const ConnId conn = c.open(f);
  const auto s = c.connect(conn);
  // Pings to the follower only, for three timeouts: the leader must not
  // expire the session.
  for (int i = 0; i < 30; ++i) {
    c.send(conn, OpCode::Ping, pr::Empty{});
    c.run_for(400);
  }
  EXPECT_FALSE(c.closed(conn));
  for (std::uint64_t n = 1; n <= 3; ++n)
    EXPECT_TRUE(c.node(n).has_session(s.session_id)) << "server " << n;
  EXPECT_GT(c.node(f).stats().session_relays_sent, 0u);
  // Silent now: expired by the leader, everywhere.
  ASSERT_TRUE(c.run_until([&] { return !c.node(f).has_session(s.session_id); }, 20'000));
  for (std::uint64_t n = 1; n <= 3; ++n)
    EXPECT_FALSE(c.node(n).has_session(s.session_id)) << "server " << n;
}

TEST(ReplicaCluster, AServerCutOffTurnsReadOnlyAndBackWhenItHearsALeader) {
  Cluster c;
  c.elect();
  const std::uint64_t f = a_follower(c);
  const ConnId plain = c.open(f);
  c.connect(plain);
  c.isolate(f);
  ASSERT_TRUE(c.run_until([&] { return c.node(f).read_only().has_value(); }));
  EXPECT_EQ(c.node(f).read_only()->reason, ReadOnlyReason::NoQuorum);
  EXPECT_TRUE(c.closed(plain));  // turned away, to find the majority
  EXPECT_EQ(c.node(f).four_letter_word("isro"), "ro");
  // A client that accepts a read-only server gets a local session.
  const ConnId ro = c.open(f);
  const auto hello = c.connect(ro, SessionId(0), {}, /*can_be_read_only=*/true);
  EXPECT_TRUE(hello.read_only);
  auto w = c.call(ro, OpCode::Create, create_req("/no"));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->err, ErrorCode::NotReadOnly);
  auto rd = c.call(ro, OpCode::Exists, pr::ExistsRequest{"/zookeeper", false});
  ASSERT_TRUE(rd.has_value());
  EXPECT_EQ(rd->err, ErrorCode::Ok);
  c.heal();
  ASSERT_TRUE(c.run_until([&] { return !c.node(f).read_only().has_value(); }));
  EXPECT_TRUE(c.closed(ro));  // comes back for a read-write session
  EXPECT_EQ(c.node(f).four_letter_word("isro"), "rw");
}

TEST(ReplicaCluster, ASessionResumedElsewhereEndsItsOldConnection) {
  Cluster c;
  c.elect();
  const ConnId first = c.open(1);
  const auto s = c.connect(first);
  const ConnId second = c.open(2);
  c.connect(second, s.session_id, s.password);
  ASSERT_TRUE(c.run_until([&] { return c.closed(first); }));
  EXPECT_EQ(c.node(1).stats().sessions_moved_away, 1u);
  EXPECT_FALSE(c.closed(second));
  auto r = c.call(second, OpCode::Create, create_req("/still", CreateMode::Ephemeral));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::Ok);
}

TEST(ReplicaCluster, LeadershipIsHandedToTheMostUpToDateVoter) {
  Cluster c;
  const NodeId old = c.elect();
  EXPECT_FALSE(c.node(a_follower(c)).transfer_leadership(NodeId(0), TimeMs(0), TimeMs(0)).ok());
  ASSERT_TRUE(c.node(old.value()).transfer_leadership(NodeId(0), TimeMs(0), TimeMs(0)).ok());
  ASSERT_TRUE(c.run_until([&] { return c.leader() != NodeId(0) && c.leader() != old; }));
  EXPECT_EQ(c.node(old.value()).four_letter_word("srvr").find("Mode: leader"), std::string::npos);
}

TEST(ReplicaCluster, TheLeaderReportsItsFollowersInMntr) {
  Cluster c;
  const NodeId l = c.elect();
  c.run_for(10 * kTickMs);
  const std::string mntr = c.node(l.value()).four_letter_word("mntr");
  EXPECT_NE(mntr.find("zk_server_state\tleader"), std::string::npos) << mntr;
  EXPECT_NE(mntr.find("zk_followers\t2"), std::string::npos) << mntr;
  EXPECT_NE(mntr.find("zk_synced_followers\t2"), std::string::npos) << mntr;
  const std::string fm = c.node(a_follower(c)).four_letter_word("mntr");
  EXPECT_NE(fm.find("zk_server_state\tfollower"), std::string::npos) << fm;
  EXPECT_EQ(fm.find("zk_followers"), std::string::npos) << fm;
}

}  // namespace
}  // namespace coord::core
