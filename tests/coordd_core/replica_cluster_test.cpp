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
      start(c, c.founding.members.empty()
                   ? std::make_unique<MemoryReplicaStorage>(consensus::ConfState{c.voters, {}})
                   : std::make_unique<MemoryReplicaStorage>(founding_changes(c.founding)));
    }
  }

  // Stops a server after it saved a snapshot of its state, and starts it
  // again from that snapshot (and its log after it).
  void restart_from_snapshot(std::uint64_t id) {
    Node& n = nodes_.at(NodeId(id));
    writing_.erase(NodeId(id));  // the write under way dies with the replica
    const consensus::SnapshotMeta meta = n.replica->snapshot_meta();
    std::string payload = n.replica->snapshot_payload();
    ASSERT_TRUE(n.storage->snapshot_saved(meta, payload).ok());
    const ReplicaConfig config = n.replica->config();
    n.replica.reset();
    auto r = Replica::create(config, *n.storage, payload, Random(id * 31),
                             [] { return std::string(16, 'p'); });
    ASSERT_TRUE(r.ok()) << r.status();
    n.replica = std::move(r).value();
  }

  // A server that starts empty and waits to be added.
  void start_joiner(std::uint64_t id, const std::function<void(ReplicaConfig&)>& configure) {
    ReplicaConfig c;
    c.id = NodeId(id);
    c.voters = {};
    c.tick_ms = kTickMs;
    c.reconfig_enabled = true;
    if (configure) configure(c);
    start(c, std::make_unique<MemoryReplicaStorage>(consensus::ConfState{}));
  }

  Replica& node(std::uint64_t id) { return *nodes_.at(NodeId(id)).replica; }
  MemoryReplicaStorage& storage(std::uint64_t id) { return *nodes_.at(NodeId(id)).storage; }

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
  // A node whose messages are lost on their way while it still hears the
  // others (a one-way failure): its links look up on both sides.
  void mute(std::uint64_t id) { muted_.insert(NodeId(id)); }

  // With ReplicaConfig::persist_async: a node's write waits while this
  // says so (a slow disk), and ends at the first flush after.
  std::function<bool(NodeId)> write_waits;

  void heal() {
    muted_.clear();
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
        if (out.persist != nullptr) writing_[id] = out.persist;
        warnings_.insert(warnings_.end(), out.warnings.begin(), out.warnings.end());
        for (auto& o : out.connections) {
          moved = true;
          auto& in = inbox_[o.conn];
          in.insert(in.end(), o.bytes.begin(), o.bytes.end());
          if (o.close && closed_.insert(o.conn).second) n.replica->connection_closed(o.conn);
        }
        for (auto& m : out.peer_messages) {
          if (cut_.contains(m.from) || cut_.contains(m.to) || muted_.contains(m.from) ||
              !nodes_.contains(m.to)) {
            continue;
          }
          moved = true;
          nodes_.at(m.to).replica->peer_message(m, steady_, wall_);
        }
        if (auto w = writing_.find(id); w != writing_.end() && !(write_waits && write_waits(id))) {
          const consensus::Ready* rd = w->second;
          writing_.erase(w);
          moved = true;
          n.replica->persisted(n.storage->write(*rd), steady_, wall_);
        }
      }
      if (!moved) return;
    }
  }

  void start(const ReplicaConfig& c, std::unique_ptr<MemoryReplicaStorage> storage) {
    auto& n = nodes_[c.id];
    n.storage = std::move(storage);
    auto r = Replica::create(c, *n.storage, std::nullopt, Random(c.id.value() * 7919), [this] {
      std::string p(16, '\0');
      for (char& ch : p)
        ch = static_cast<char>(rng_.below(256));
      return p;
    });
    EXPECT_TRUE(r.ok()) << r.status();
    n.replica = std::move(r).value();
  }

  std::map<NodeId, Node> nodes_;
  std::map<NodeId, const consensus::Ready*> writing_;  // persist_async writes under way
  std::set<NodeId> cut_;
  std::set<NodeId> muted_;
  std::map<ConnId, NodeId> at_;
  std::map<ConnId, pr::Bytes> inbox_;
  std::map<ConnId, pr::ConnectResponse> handshaken_;
  std::set<ConnId> closed_;
  ConnId next_conn_ = 1;
  std::int32_t next_xid_ = 1;
  TimeMs steady_{1'000};
  TimeMs wall_{1'700'000'000'000};
  Random rng_{5};

 public:
  std::vector<std::string> warnings_;
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
  // Where each server last heard the client: the follower holds it, the
  // leader knows it through the follower's relays, the third does not know.
  auto info_on = [&](std::uint64_t n) {
    for (const auto& i : c.node(n).sessions())
      if (i.id == s.session_id) return i;
    ADD_FAILURE() << "no session on server " << n;
    return SessionInfo{};
  };
  const std::uint64_t l = c.leader().value();
  EXPECT_TRUE(info_on(f).here);
  EXPECT_EQ(info_on(f).server, NodeId(f));
  EXPECT_FALSE(info_on(l).here);
  EXPECT_EQ(info_on(l).server, NodeId(f));
  const std::uint64_t third = 6 - f - l;
  EXPECT_FALSE(info_on(third).here);
  EXPECT_EQ(info_on(third).server, NodeId(0));
  EXPECT_EQ(info_on(l).timeout_ms, s.timeout_ms);
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

// A full disk on the leader: it cannot write, so it stops leading; its
// clients that cannot live with a read-only server are sent to the others,
// which elect a leader and take their writes. Kept here, such a client
// would be refused every write until the disk had room again.
TEST(ReplicaCluster, AServerThatCannotWriteSendsItsClientsToTheOthers) {
  Cluster c;
  const NodeId old = c.elect();
  const ConnId plain = c.open(old.value());
  const auto session = c.connect(plain);
  const ConnId ro = c.open(old.value());
  c.connect(ro, SessionId(0), {}, /*can_be_read_only=*/true);
  c.storage(old.value()).fail_writes_for_testing(true);
  auto refused = c.call(plain, OpCode::Create, create_req("/refused"));
  EXPECT_TRUE(!refused.has_value() || refused->err == ErrorCode::NotReadOnly);
  ASSERT_TRUE(c.run_until([&] { return c.closed(plain); }));
  EXPECT_TRUE(c.node(old.value()).storage_failed());
  // A client that accepts a read-only server stays and reads.
  EXPECT_FALSE(c.closed(ro));
  auto rd = c.call(ro, OpCode::Exists, pr::ExistsRequest{"/zookeeper", false});
  ASSERT_TRUE(rd.has_value());
  EXPECT_EQ(rd->err, ErrorCode::Ok);
  // The others lead, and the session goes on there with its writes.
  ASSERT_TRUE(c.run_until([&] {
    const NodeId l = c.leader();
    return l != NodeId(0) && l != old;
  }));
  const std::uint64_t other = c.leader().value();
  const ConnId moved = c.open(other);
  c.connect(moved, session.session_id, session.password);
  auto w = c.call(moved, OpCode::Create, create_req("/written"));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->err, ErrorCode::Ok);
  // Turned away again while the disk is full, as a read-only server does.
  const ConnId back = c.open(old.value());
  c.handshake(back, session.session_id, session.password, false);
  EXPECT_TRUE(c.run_until([&] { return c.closed(back); }));
  EXPECT_FALSE(c.connected(back).has_value());
}

TEST(ReplicaCluster, ALeaderReplicatesWhileItWritesAndCountsItsOwnCopyOnceDurable) {
  Cluster c([](ReplicaConfig& cfg) { cfg.persist_async = true; });
  const std::uint64_t l = c.elect().value();
  const std::uint64_t a = a_follower(c);
  const std::uint64_t b = 6 - a - l;
  const ConnId conn = c.open(l);
  c.connect(conn);
  std::set<std::uint64_t> slow = {l, b};
  c.write_waits = [&](NodeId id) { return slow.contains(id.value()); };
  const LogIndex before = c.storage(a).last_index();
  const std::int32_t xid = c.send(conn, OpCode::Create, create_req("/x"));
  c.run_for(2 * kTickMs);  // well within an election timeout
  // The appends left while the leader's own write waits, and `a` stored
  // the entry...
  EXPECT_GT(c.storage(a).last_index(), before);
  // ...but a's copy alone is no majority: the leader counts its own only
  // once it is durable, so nothing committed or applied anywhere.
  EXPECT_FALSE(c.exists_on(a, "/x"));
  EXPECT_FALSE(c.exists_on(l, "/x"));
  EXPECT_TRUE(c.replies(conn).empty());
  slow = {b};
  std::optional<Reply> got;
  ASSERT_TRUE(c.run_until([&] {
    for (const Reply& r : c.replies(conn))
      if (r.xid == xid) got = r;
    return got.has_value() || c.closed(conn);
  }));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->err, ErrorCode::Ok);
  EXPECT_TRUE(c.exists_on(l, "/x"));
  slow.clear();
  ASSERT_TRUE(c.run_until([&] { return c.exists_on(a, "/x") && c.exists_on(b, "/x"); }));
}

TEST(ReplicaCluster, AWriteTheLeaderSentButFailedToStoreHasAnUnknownOutcome) {
  Cluster c;
  const NodeId old = c.elect();
  // A client that accepts a read-only server keeps its connection when the
  // disk fills: it is the one that would be told the outcome.
  const ConnId conn = c.open(old.value());
  c.connect(conn, SessionId(0), {}, /*can_be_read_only=*/true);
  c.storage(old.value()).fail_writes_for_testing(true);
  const auto got = c.call(conn, OpCode::Create, create_req("/sent"));
  // Not refused: the followers had the entry before the write failed, so
  // the client hears ConnectionLoss (a closed connection)...
  EXPECT_FALSE(got.has_value()) << "answered " << static_cast<int>(got->err);
  EXPECT_TRUE(c.closed(conn));
  // ...and indeed the others commit it without this server.
  ASSERT_TRUE(c.run_until([&] {
    const NodeId l = c.leader();
    return l != NodeId(0) && l != old && c.exists_on(l.value(), "/sent");
  }));
}

TEST(ReplicaCluster, ANewLeaderRenewsEverySessionEvenWhileItsFirstWriteWaits) {
  Cluster c([](ReplicaConfig& cfg) { cfg.persist_async = true; });
  const NodeId old = c.elect();
  const std::uint64_t f = a_follower(c);
  const std::uint64_t next = 6 - f - old.value();
  const ConnId conn = c.open(f);
  const auto s = c.connect(conn);
  // Pings to the follower for longer than the timeout. `next` has heard
  // nothing of the session since it applied its creation: relays go to
  // the leader alone.
  for (std::int64_t t = 0; t < s.timeout_ms + 2'000; t += 400) {
    c.send(conn, OpCode::Ping, pr::Empty{});
    c.run_for(400);
  }
  // `next` is elected, and the write of its first Ready as leader takes a
  // few ticks (fewer than an election timeout, or another election follows).
  bool disk_slow = true;
  c.write_waits = [&](NodeId id) {
    return disk_slow && id == NodeId(next) &&
           c.node(next).raft_status().role == consensus::Role::Leader;
  };
  ASSERT_TRUE(c.node(old.value()).transfer_leadership(NodeId(next), TimeMs(0), TimeMs(0)).ok());
  ASSERT_TRUE(c.run_until([&] { return c.leader() == NodeId(next); }));
  c.run_for(4 * kTickMs);
  disk_slow = false;
  for (std::int64_t t = 0; t < s.timeout_ms + 2'000; t += 400) {
    c.send(conn, OpCode::Ping, pr::Empty{});
    c.run_for(400);
  }
  EXPECT_EQ(c.leader(), NodeId(next));
  EXPECT_FALSE(c.closed(conn));
  for (std::uint64_t n = 1; n <= 3; ++n)
    EXPECT_TRUE(c.node(n).has_session(s.session_id)) << "server " << n;
}

TEST(ReplicaCluster, AFollowerTheLeaderCannotHearTurnsItsClientsAwayBeforeTheirSessionsExpire) {
  Cluster c;
  c.elect();
  const std::uint64_t f = a_follower(c);
  const NodeId leader = c.leader();
  const ConnId conn = c.open(f);
  const auto s = c.connect(conn);
  // The follower still hears the leader, so it knows of no trouble, but
  // nothing it sends arrives: neither its acknowledgements nor its relays
  // of the session, which the leader alone expires.
  c.mute(f);
  bool expired_while_served = false;
  for (std::int64_t t = 0; t < 2 * s.timeout_ms && !c.closed(conn); t += 100) {
    c.send(conn, OpCode::Ping, pr::Empty{});
    c.run_for(100);
    expired_while_served =
        expired_while_served || !c.node(leader.value()).has_session(s.session_id);
  }
  EXPECT_TRUE(c.closed(conn));
  EXPECT_FALSE(expired_while_served);
  ASSERT_TRUE(c.node(f).read_only().has_value());
  EXPECT_EQ(c.node(f).read_only()->reason, ReadOnlyReason::NoQuorum);
  EXPECT_NE(c.node(f).read_only()->detail.find("acknowledged nothing"), std::string::npos)
      << c.node(f).read_only()->detail;
  // Heard again: writable, and the session can resume here.
  c.heal();
  ASSERT_TRUE(c.run_until([&] { return !c.node(f).read_only().has_value(); }));
  EXPECT_EQ(c.node(leader.value()).raft_status().role, consensus::Role::Leader);
}

// A leader that proposes a session's expiry and is deposed before it
// commits must not have told anyone the session expired: the majority
// still holds it.
TEST(ReplicaCluster, AnExpiryThatNeverCommittedExpiresNoSession) {
  Cluster c;
  c.elect();
  const std::uint64_t l = c.leader().value();
  const std::uint64_t f = a_follower(c);
  const ConnId conn = c.open(f);
  const auto s = c.connect(conn);
  // Silent until just before the timeout; then the leader is cut off and,
  // still leading for an election timeout, proposes the expiry in vain.
  c.run_for(s.timeout_ms - 4 * kTickMs);
  ASSERT_EQ(c.leader(), NodeId(l));
  c.isolate(l, /*links_break=*/false);
  c.run_for(8 * kTickMs);
  ASSERT_EQ(c.node(l).raft_status().role, consensus::Role::Leader);
  // Resuming the session on that leader now is not answered "expired".
  const ConnId early = c.open(l);
  c.handshake(early, s.session_id, s.password);
  c.run_until([&] { return c.connected(early).has_value() || c.closed(early); });
  if (auto r = c.connected(early)) {
    EXPECT_EQ(r->session_id, s.session_id);
  }
  // The others elect a leader, which gives every session a fresh timeout;
  // the old leader follows it and still holds the session.
  ASSERT_TRUE(c.run_until([&] { return c.leader() != NodeId(0); }));
  c.heal();
  ASSERT_TRUE(
      c.run_until([&] { return c.node(l).raft_status().role == consensus::Role::Follower; }));
  const ConnId back = c.open(l);
  c.handshake(back, s.session_id, s.password);
  ASSERT_TRUE(c.run_until([&] { return c.connected(back).has_value() || c.closed(back); }));
  auto r = c.connected(back);
  ASSERT_TRUE(r.has_value()) << "connection closed";
  EXPECT_EQ(r->session_id, s.session_id);
  EXPECT_GT(r->timeout_ms, 0);
  for (std::uint64_t n = 1; n <= 3; ++n)
    EXPECT_TRUE(c.node(n).has_session(s.session_id)) << "server " << n;
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

// ---- membership ------------------------------------------------------------

Member member(std::uint64_t id, MemberRole role = MemberRole::Participant) {
  const auto port = static_cast<std::uint16_t>(id);
  return Member{NodeId(id), HostPort{"127.0.0.1", static_cast<std::uint16_t>(7000 + port)},
                static_cast<std::uint16_t>(7100 + port), role,
                HostPort{"127.0.0.1", static_cast<std::uint16_t>(2180 + port)}};
}

void founded_with_members(ReplicaConfig& c) {
  c.reconfig_enabled = true;
  c.founding = Membership{{member(1), member(2), member(3)}, 0};
}

pr::ReconfigRequest joining(const Member& m) {
  return pr::ReconfigRequest{m.line(), "", "", -1};
}

// Every server of `ids` shows `want` (members and version) in its
// membership and in /zookeeper/config.
void expect_membership_everywhere(Cluster& c, const std::vector<std::uint64_t>& ids,
                                  const std::vector<Member>& want) {
  const std::int64_t version = c.node(ids.front()).membership().version;
  for (std::uint64_t id : ids) {
    const Membership& m = c.node(id).membership();
    EXPECT_EQ(m.members, want) << "server " << id;
    EXPECT_EQ(m.version, version) << "server " << id;
    auto data = c.node(id).tree().get_data("/zookeeper/config", znode::Caller{});
    ASSERT_TRUE(data.ok());
    ASSERT_TRUE(data->data.has_value());
    EXPECT_EQ(std::string(*data->data), m.config_text()) << "server " << id;
  }
}

TEST(ReplicaMembership, FoundingMembersAreShownInZookeeperConfig) {
  Cluster c(founded_with_members);
  c.elect();
  expect_membership_everywhere(c, {1, 2, 3}, {member(1), member(2), member(3)});
  EXPECT_EQ(c.node(1).membership().version, 3);  // the last founding entry
  auto data = c.node(2).tree().get_data("/zookeeper/config", znode::Caller{});
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(std::string(*data->data),
            "server.1=127.0.0.1:7001:7101:participant;127.0.0.1:2181\n"
            "server.2=127.0.0.1:7002:7102:participant;127.0.0.1:2182\n"
            "server.3=127.0.0.1:7003:7103:participant;127.0.0.1:2183\n"
            "version=3");
}

TEST(ReplicaMembership, AServerAddedFromAFollowerCatchesUpAndVotes) {
  Cluster c(founded_with_members);
  c.elect();
  c.start_joiner(4, nullptr);
  const ConnId conn = c.open(a_follower(c));
  c.connect(conn);
  c.node(a_follower(c)).grant_super(conn);
  auto r = c.call(conn, OpCode::Reconfig, joining(member(4)));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::Ok);
  ASSERT_TRUE(c.run_until([&] { return c.node(4).membership().members.size() == 4; }));
  expect_membership_everywhere(c, {1, 2, 3, 4}, {member(1), member(2), member(3), member(4)});
  EXPECT_EQ(c.node(4).conf_state().voters.size(), 4u);
  // The new server votes: with a founder cut off, the other three (of
  // four) commit only with it.
  std::uint64_t cut = 1;
  while (NodeId(cut) == c.leader() || cut == a_follower(c))
    ++cut;
  c.isolate(cut);
  auto w = c.call(conn, OpCode::Create, create_req("/after"));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->err, ErrorCode::Ok);
  EXPECT_TRUE(c.exists_on(4, "/after"));
  // Its membership survives a restart from a snapshot.
  const Membership before = c.node(4).membership();
  c.restart_from_snapshot(4);
  EXPECT_EQ(c.node(4).membership(), before);
  EXPECT_TRUE(c.warnings_.empty()) << c.warnings_.front();
}

TEST(ReplicaMembership, ARemovedServerLeavesEveryConfiguration) {
  Cluster c(founded_with_members);
  const NodeId l = c.elect();
  const std::uint64_t gone = l == NodeId(3) ? 2 : 3;
  const ConnId conn = c.open(l.value());
  c.connect(conn);
  c.node(l.value()).grant_super(conn);
  auto r = c.call(conn, OpCode::Reconfig, pr::ReconfigRequest{"", std::to_string(gone), "", -1});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::Ok);
  std::vector<std::uint64_t> left;
  std::vector<Member> want;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    if (id == gone) continue;
    left.push_back(id);
    want.push_back(member(id));
  }
  c.run_for(5 * kTickMs);
  expect_membership_everywhere(c, left, want);
  EXPECT_FALSE(c.node(left.front()).conf_state().is_member(NodeId(gone)));
}

TEST(ReplicaMembership, AParticipantTurnsObserverInTwoSteps) {
  Cluster c(founded_with_members);
  const NodeId l = c.elect();
  const std::uint64_t f = a_follower(c);
  const ConnId conn = c.open(l.value());
  c.connect(conn);
  c.node(l.value()).grant_super(conn);
  auto r = c.call(conn, OpCode::Reconfig, joining(member(f, MemberRole::Observer)));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::Ok);
  c.run_for(5 * kTickMs);
  EXPECT_TRUE(c.node(l.value()).conf_state().is_learner(NodeId(f)));
  EXPECT_EQ(c.node(f).membership().find(NodeId(f))->role, MemberRole::Observer);
  EXPECT_NE(c.node(f).four_letter_word("srvr").find("Mode: observer"), std::string::npos);
}

TEST(ReplicaMembership, AServerWaitingToJoinIsNoStandaloneServer) {
  Cluster c(founded_with_members);
  c.elect();
  c.start_joiner(4, nullptr);
  c.run_for(30 * kTickMs);
  // It has heard from no leader: read-only, as a server cut off from its
  // cluster is, not a standalone server with an empty tree.
  EXPECT_TRUE(c.node(4).read_only().has_value());
  EXPECT_NE(c.node(4).four_letter_word("srvr").find("Mode: read-only"), std::string::npos);
  // Its tree is not the cluster's: even a read-only client is turned away.
  for (bool can_be_read_only : {false, true}) {
    const ConnId conn = c.open(4);
    c.handshake(conn, SessionId(0), {}, can_be_read_only);
    c.run_for(5 * kTickMs);
    EXPECT_TRUE(c.closed(conn)) << "canBeReadOnly " << can_be_read_only;
  }
}

TEST(ReplicaMembership, WritesSentAfterAReconfigApplyAfterIt) {
  Cluster c(founded_with_members);
  c.elect();
  c.start_joiner(4, nullptr);
  c.start_joiner(5, nullptr);
  const std::uint64_t f = a_follower(c);
  const ConnId conn = c.open(f);
  c.connect(conn);
  c.node(f).grant_super(conn);
  // Two participants at once: a joint entry, then the leader's own entry
  // that leaves it; a write proposed between them would apply first.
  const std::int32_t reconfig =
      c.send(conn, OpCode::Reconfig,
             pr::ReconfigRequest{member(4).line() + "," + member(5).line(), "", "", -1});
  const std::int32_t create = c.send(conn, OpCode::Create, create_req("/next"));
  std::map<std::int32_t, Reply> got;
  ASSERT_TRUE(c.run_until([&] {
    for (const Reply& r : c.replies(conn))
      got[r.xid] = r;
    return got.size() == 2;
  }));
  EXPECT_EQ(got[reconfig].err, ErrorCode::Ok);
  EXPECT_EQ(got[create].err, ErrorCode::Ok);
  EXPECT_LT(got[reconfig].zxid, got[create].zxid);
  const auto st = c.node(f).tree().exists("/next");
  ASSERT_TRUE(st.ok());
  EXPECT_GT(st->czxid, c.node(f).membership().version);
}

TEST(ReplicaMembership, RefusalsComeInZooKeepersOrder) {
  Cluster c(founded_with_members);
  c.elect();
  const ConnId conn = c.open(a_follower(c));
  c.connect(conn);
  // Not the super user: world may only read /zookeeper/config.
  auto r = c.call(conn, OpCode::Reconfig, joining(member(4)));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::NoAuth);
  // A stale version is refused before the permission is looked at.
  r = c.call(conn, OpCode::Reconfig, pr::ReconfigRequest{member(4).line(), "", "", 1});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::BadVersion);
  // No participant left.
  c.node(a_follower(c)).grant_super(conn);
  r = c.call(conn, OpCode::Reconfig, pr::ReconfigRequest{"", "1,2,3", "", -1});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::BadArguments);
  // Three new participants of six with only the three founders in sync:
  // no majority of the new membership is.
  r = c.call(conn, OpCode::Reconfig,
             pr::ReconfigRequest{member(4).line() + "," + member(5).line() + "," + member(6).line(),
                                 "", "", -1});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::NewConfigNoQuorum);
  EXPECT_EQ(c.node(1).membership().members.size(), 3u);
}

TEST(ReplicaMembership, WithoutReconfigTheServerAnswersReconfigDisabled) {
  Cluster c;
  c.elect();
  const ConnId conn = c.open(1);
  c.connect(conn);
  c.node(1).grant_super(conn);
  auto r = c.call(conn, OpCode::Reconfig, joining(member(4)));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ErrorCode::ReconfigDisabled);
  EXPECT_TRUE(c.node(1).membership().members.empty());
}

}  // namespace
}  // namespace coord::core
