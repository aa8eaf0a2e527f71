// The replica driven the way coordd's network front drives it: raw
// ZooKeeper frames in, raw frames out, time advanced by hand. Each client
// below encodes requests and decodes replies with the protocol codec, so
// these tests check the bytes a real client would see.

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "coord/core/replica.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"

namespace coord::core {
namespace {

namespace pr = coord::protocol;
using pr::OpCode;

struct Received {
  pr::ReplyHeader header;
  std::optional<pr::WatcherEvent> event;
  std::optional<pr::ResponseBody> body;
};

class Server;

// Storage that loses nothing, until a test makes its writes fail, as a full
// disk does; it counts the writes tried.
class FailingStorage final : public ReplicaStorage {
 public:
  explicit FailingStorage(consensus::ConfState initial) : mem_(std::move(initial)) {}

  consensus::HardState hard_state() const override { return mem_.hard_state(); }
  const consensus::SnapshotMeta& snapshot_meta() const override { return mem_.snapshot_meta(); }
  LogIndex first_index() const override { return mem_.first_index(); }
  LogIndex last_index() const override { return mem_.last_index(); }
  Term term(LogIndex i) const override { return mem_.term(i); }
  void entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
               std::vector<consensus::Entry>& out) const override {
    mem_.entries(lo, hi, max_bytes, out);
  }
  consensus::Snapshot snapshot() const override { return mem_.snapshot(); }
  Status write(const consensus::Ready& rd) override {
    ++persists_;
    if (fail_all_) {
      return Status(ErrorCode::SystemError, "/data/log/data.mdb: commit: No space left on device");
    }
    return mem_.write(rd);
  }
  void written(consensus::Ready& rd) override { mem_.written(rd); }
  Status snapshot_saved(const consensus::SnapshotMeta& meta, std::string payload) override {
    return mem_.snapshot_saved(meta, std::move(payload));
  }

  void fail_writes_for_testing(bool fail) { fail_all_ = fail; }
  std::uint64_t persists() const { return persists_; }

 private:
  MemoryReplicaStorage mem_;
  bool fail_all_ = false;
  std::uint64_t persists_ = 0;
};

// One client connection, speaking frames.
class Client {
 public:
  Client(Server& server, ConnId id) : server_(server), id_(id) {}

  ConnId id() const { return id_; }
  bool closed() const { return closed_; }

  std::optional<pr::ConnectResponse> connect(std::int32_t timeout_ms = 10'000,
                                             SessionId session = SessionId(0),
                                             std::string password = std::string(16, '\0'),
                                             Zxid last_seen = Zxid(0),
                                             bool can_be_read_only = false);
  // The handshake's reply, once it came (connect() without the sending).
  std::optional<pr::ConnectResponse> connect_response();
  void send(OpCode op, const pr::RequestBody& body, std::int32_t xid = 0);
  // Everything received so far, decoded.
  std::vector<Received> take();
  // Sends one request and returns the frames it produced, reply last.
  std::vector<Received> call(OpCode op, const pr::RequestBody& body);
  Received call_one(OpCode op, const pr::RequestBody& body) {
    auto r = call(op, body);
    EXPECT_FALSE(r.empty());
    return r.empty() ? Received{} : r.back();
  }

  // For frames sent by hand (Server::deliver): how to decode xid's reply.
  void expect(std::int32_t xid, OpCode op) { ops_[xid] = op; }
  void on_bytes(const pr::Bytes& b) { inbox_.insert(inbox_.end(), b.begin(), b.end()); }
  void on_close() { closed_ = true; }

 private:
  Server& server_;
  ConnId id_;
  pr::Bytes inbox_;
  bool closed_ = false;
  bool handshaken_ = false;
  std::int32_t next_xid_ = 1;
  std::map<std::int32_t, OpCode> ops_;
};

class Server {
 public:
  explicit Server(std::string super_digest = "", znode::TreeConfig tree = {},
                  std::size_t sessions_max = 0)
      : Server([&](ReplicaConfig& c) {
          c.super_digest = std::move(super_digest);
          c.tree = tree;
          if (sessions_max != 0) c.sessions_max = sessions_max;
        }) {}
  explicit Server(const std::function<void(ReplicaConfig&)>& configure)
      : storage_(std::make_unique<FailingStorage>(consensus::ConfState{{NodeId(1)}, {}})) {
    config_.reap_interval_ms = 100;
    configure(config_);
    start();
  }

  void start(std::optional<std::string> snapshot = std::nullopt) {
    auto r = Replica::create(config_, *storage_, std::move(snapshot), Random(7), [this] {
      std::string p(16, '\0');
      for (char& ch : p)
        ch = static_cast<char>(rng_.below(256));
      return p;
    });
    ASSERT_TRUE(r.ok()) << r.status();
    replica_ = std::move(r).value();
    // Let the single voter elect itself.
    for (int i = 0; i < 50 && !replica_->ready(); ++i)
      advance(config_.tick_ms);
    ASSERT_TRUE(replica_->ready());
  }

  // Simulates a crash and restart over the same storage.
  void restart(bool with_snapshot) {
    std::optional<std::string> snap;
    if (with_snapshot) {
      auto meta = replica_->snapshot_meta();
      std::string payload = replica_->snapshot_payload();
      ASSERT_TRUE(storage_->snapshot_saved(meta, payload).ok());
      snap = payload;
    }
    clients_.clear();
    replica_.reset();
    start(std::move(snap));
  }

  Client& open(std::string ip = "127.0.0.1", std::uint16_t port = 0) {
    const ConnId id = next_conn_++;
    replica_->connection_opened(id, std::move(ip), steady_, wall_, port);
    auto [it, _] = clients_.emplace(id, std::make_unique<Client>(*this, id));
    flush();
    return *it->second;
  }

  void deliver(ConnId id, const pr::Bytes& bytes) {
    replica_->bytes_received(id, pr::ByteSpan(bytes), steady_, wall_);
    flush();
  }

  void drop(Client& c) {
    replica_->connection_closed(c.id());
    c.on_close();
    flush();
  }

  // Sets the wall clock alone back or forth, as an operator or NTP does.
  void jump_wall_clock(std::int64_t ms) { wall_ += ms; }

  // Moves the clocks without ticking, as they move while a process is down.
  void jump_clocks(std::int64_t ms) {
    steady_ += ms;
    wall_ += ms;
  }

  void advance(std::int64_t ms) {
    for (std::int64_t t = 0; t < ms; t += config_.tick_ms) {
      steady_ += config_.tick_ms;
      wall_ += config_.tick_ms;
      if (replica_) replica_->tick(steady_, wall_);
      flush();
    }
  }

  Replica& replica() { return *replica_; }
  FailingStorage& storage() { return *storage_; }
  // With ReplicaConfig::persist_async: runs as each Ready comes out for
  // writing, before the write (which then succeeds or fails as storage
  // says, and the replica hears of it).
  std::function<void(const consensus::Ready&)> before_write;
  // Runs when persisted_next() hands out the next Ready to write, before
  // the take_output() that applies what the last write committed.
  std::function<void(const consensus::Ready&)> next_write_out;
  // The replica's log lines so far.
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  // As coordd's host does: each write's successor is taken with
  // persisted_next() before what the write committed applies, in the
  // take_output() that follows.
  void flush() {
    if (!replica_) return;
    ReplicaOutput out = replica_->take_output();
    const consensus::Ready* rd = out.persist;
    deliver_output(out);
    while (rd != nullptr && replica_) {
      if (before_write) before_write(*rd);
      const Status written = storage_->write(*rd);
      rd = replica_->persisted_next(written, steady_, wall_);
      if (rd != nullptr && next_write_out) next_write_out(*rd);
      ReplicaOutput next = replica_->take_output();
      if (rd == nullptr) rd = next.persist;
      deliver_output(next);
    }
  }

  void deliver_output(ReplicaOutput& out) {
    warnings_.insert(warnings_.end(), out.warnings.begin(), out.warnings.end());
    for (auto& o : out.connections) {
      auto it = clients_.find(o.conn);
      if (it == clients_.end()) continue;
      it->second->on_bytes(o.bytes);
      if (o.close) {
        it->second->on_close();
        replica_->connection_closed(o.conn);
      }
    }
  }

  ReplicaConfig config_;
  std::unique_ptr<FailingStorage> storage_;
  std::unique_ptr<Replica> replica_;
  std::map<ConnId, std::unique_ptr<Client>> clients_;
  ConnId next_conn_ = 1;
  TimeMs steady_{1000};
  TimeMs wall_{1'700'000'000'000};
  Random rng_{99};
  std::vector<std::string> warnings_;
};

std::optional<pr::ConnectResponse> Client::connect(std::int32_t timeout_ms, SessionId session,
                                                   std::string password, Zxid last_seen,
                                                   bool can_be_read_only) {
  pr::ConnectRequest req;
  req.read_only = can_be_read_only;
  req.timeout_ms = timeout_ms;
  req.session_id = session;
  req.password = std::move(password);
  req.last_zxid_seen = last_seen;
  pr::Bytes frame;
  pr::append_connect_request_frame(frame, req);
  server_.deliver(id_, frame);
  return connect_response();
}

std::optional<pr::ConnectResponse> Client::connect_response() {
  auto cut = pr::cut_frame(pr::ByteSpan(inbox_));
  if (cut.state != pr::FrameState::Frame) return std::nullopt;
  auto resp = pr::decode_connect_response(cut.payload);
  EXPECT_TRUE(resp.ok()) << resp.status();
  inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(cut.consumed));
  handshaken_ = resp.ok();
  return resp.ok() ? std::optional(*resp) : std::nullopt;
}

void Client::send(OpCode op, const pr::RequestBody& body, std::int32_t xid) {
  if (xid == 0) xid = next_xid_++;
  ops_[xid] = op;
  pr::Bytes frame;
  pr::append_request_frame(frame, pr::RequestHeader{xid, op}, body);
  server_.deliver(id_, frame);
}

std::vector<Received> Client::take() {
  std::vector<Received> out;
  std::size_t pos = 0;
  for (;;) {
    auto cut = pr::cut_frame(pr::ByteSpan(inbox_).subspan(pos));
    if (cut.state != pr::FrameState::Frame) break;
    pos += cut.consumed;
    pr::JuteReader r(cut.payload);
    Received rec;
    auto h = pr::decode_reply_header(r);
    EXPECT_TRUE(h.ok()) << h.status();
    if (!h.ok()) break;
    rec.header = *h;
    if (h->xid == pr::xid_watch_event) {
      auto ev = pr::decode_watcher_event(r.rest());
      EXPECT_TRUE(ev.ok()) << ev.status();
      if (ev.ok()) rec.event = *ev;
    } else if (h->err == ErrorCode::Ok && ops_.contains(h->xid)) {
      auto body = pr::decode_response_body(ops_[h->xid], r.rest());
      EXPECT_TRUE(body.ok()) << body.status();
      if (body.ok()) rec.body = *body;
    }
    out.push_back(std::move(rec));
  }
  inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(pos));
  return out;
}

std::vector<Received> Client::call(OpCode op, const pr::RequestBody& body) {
  send(op, body);
  return take();
}

pr::CreateRequest create_req(std::string path, std::string data = "d",
                             CreateMode mode = CreateMode::Persistent) {
  return pr::CreateRequest{std::move(path), std::move(data), open_acl_unsafe(), mode};
}

TEST(Replica, NewSessionHandshakeNegotiatesTimeout) {
  Server server;
  Client& c = server.open();
  auto resp = c.connect(1);
  ASSERT_TRUE(resp.has_value());
  EXPECT_EQ(resp->timeout_ms, 4000);
  EXPECT_NE(resp->session_id.value(), 0);
  EXPECT_EQ(resp->password.size(), 16u);
  Client& d = server.open();
  auto resp2 = d.connect(1'000'000);
  ASSERT_TRUE(resp2.has_value());
  EXPECT_EQ(resp2->timeout_ms, 40000);
  EXPECT_NE(resp2->session_id, resp->session_id);
}

// coordd writes the log on a thread of its own, and requests keep coming
// meanwhile. A handshake that arrives while the Ready that reports this
// server's election is being written goes to the leader that Ready names:
// it is answered, not failed with the proposals made before the election.
TEST(Replica, AHandshakeWhileTheElectionIsWrittenIsAnswered) {
  Server server([](ReplicaConfig& c) { c.persist_async = true; });
  Client* during = nullptr;
  server.before_write = [&](const consensus::Ready& rd) {
    if (!rd.leader_changed || during != nullptr) return;
    during = &server.open();
    pr::Bytes frame;
    pr::ConnectRequest req;
    req.timeout_ms = 10'000;
    req.password = std::string(16, '\0');
    pr::append_connect_request_frame(frame, req);
    server.deliver(during->id(), frame);
    EXPECT_FALSE(during->connect_response().has_value()) << "answered before it was written";
  };
  server.restart(false);
  ASSERT_NE(during, nullptr);
  EXPECT_FALSE(during->closed());
  auto resp = during->connect_response();
  ASSERT_TRUE(resp.has_value());
  EXPECT_NE(resp->session_id.value(), 0);
  EXPECT_EQ(server.replica().stats().requests_outcome_unknown, 0u);
}

// coordd starts a log write as soon as the one before it is durable, and
// applies what that one committed while the disk writes: a write proposed
// during the first goes out before the first applies, and both are
// answered in order.
TEST(Replica, TheNextWriteGoesOutBeforeTheLastOneApplies) {
  Server server([](ReplicaConfig& c) { c.persist_async = true; });
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/n", "0")).header.err, ErrorCode::Ok);
  bool second_sent = false;
  int handed_out = 0;
  server.before_write = [&](const consensus::Ready& rd) {
    if (rd.entries.empty() || second_sent) return;
    second_sent = true;
    c.send(OpCode::SetData, pr::SetDataRequest{"/n", std::string("2"), -1}, 21);
  };
  server.next_write_out = [&](const consensus::Ready& rd) {
    ++handed_out;
    ASSERT_EQ(rd.entries.size(), 1u);
    EXPECT_TRUE(rd.committed_entries.empty()) << "a durable entry left in the Ready to write";
    // "1" is durable and committed, but not applied yet.
    EXPECT_EQ(server.replica().tree().get_data("/n", znode::Caller{}).value().data, "0");
    EXPECT_TRUE(c.take().empty()) << "answered before it applied";
  };
  c.send(OpCode::SetData, pr::SetDataRequest{"/n", std::string("1"), -1}, 20);
  EXPECT_TRUE(second_sent);
  EXPECT_EQ(handed_out, 1);
  auto r = c.take();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].header.xid, 20);
  EXPECT_EQ(r[1].header.xid, 21);
  EXPECT_EQ(r[0].header.err, ErrorCode::Ok);
  EXPECT_EQ(r[1].header.err, ErrorCode::Ok);
  EXPECT_LT(r[0].header.zxid, r[1].header.zxid);
  EXPECT_EQ(server.replica().tree().get_data("/n", znode::Caller{}).value().data, "2");
}

TEST(Replica, NewSessionsStopAtTheCapAndResumesStillWork) {
  Server server("", {}, 2);
  Client& a = server.open();
  auto ra = a.connect(10'000);
  ASSERT_TRUE(ra.has_value());
  Client& b = server.open();
  ASSERT_TRUE(b.connect(10'000).has_value());
  Client& full = server.open();
  EXPECT_FALSE(full.connect(10'000).has_value());
  EXPECT_TRUE(full.closed());
  EXPECT_EQ(server.replica().session_count(), 2u);
  // A session already held moves to a new connection at the cap.
  server.drop(a);
  Client& again = server.open();
  auto resumed = again.connect(10'000, ra->session_id, ra->password);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->session_id, ra->session_id);
  // Once a session ends, a new one fits again.
  ASSERT_EQ(again.call_one(OpCode::CloseSession, pr::Empty{}).header.err, ErrorCode::Ok);
  Client& later = server.open();
  EXPECT_TRUE(later.connect(10'000).has_value());
}

TEST(Replica, CreateThenReadSeesTheWrite) {
  Server server;
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  auto created = c.call_one(OpCode::Create2, create_req("/a", "hello"));
  ASSERT_EQ(created.header.err, ErrorCode::Ok);
  const auto& c2 = std::get<pr::Create2Response>(*created.body);
  EXPECT_EQ(c2.path, "/a");
  EXPECT_EQ(c2.stat.czxid, created.header.zxid.value());
  auto got = c.call_one(OpCode::GetData, pr::GetDataRequest{"/a", false});
  ASSERT_EQ(got.header.err, ErrorCode::Ok);
  EXPECT_EQ(std::get<pr::GetDataResponse>(*got.body).data, std::optional<std::string>("hello"));
  EXPECT_EQ(got.header.zxid, created.header.zxid);
}

TEST(Replica, PipelinedRequestsAreAnsweredInOrderAndReadsSeeEarlierWrites) {
  Server server;
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  // Sent back to back without waiting: create, read, set, read.
  c.send(OpCode::Create, create_req("/p", "1"), 10);
  c.send(OpCode::GetData, pr::GetDataRequest{"/p", false}, 11);
  c.send(OpCode::SetData, pr::SetDataRequest{"/p", std::string("2"), -1}, 12);
  c.send(OpCode::GetData, pr::GetDataRequest{"/p", false}, 13);
  c.send(OpCode::Delete, pr::DeleteRequest{"/missing", -1}, 14);
  auto r = c.take();
  ASSERT_EQ(r.size(), 5u);
  for (std::size_t i = 0; i < r.size(); ++i)
    EXPECT_EQ(r[i].header.xid, 10 + static_cast<int>(i));
  EXPECT_EQ(std::get<pr::GetDataResponse>(*r[1].body).data, std::optional<std::string>("1"));
  EXPECT_EQ(std::get<pr::GetDataResponse>(*r[3].body).data, std::optional<std::string>("2"));
  EXPECT_EQ(r[4].header.err, ErrorCode::NoNode);
  EXPECT_LT(r[0].header.zxid, r[2].header.zxid);
}

TEST(Replica, WatchEventArrivesBeforeTheReplyThatReflectsIt) {
  Server server;
  Client& a = server.open();
  Client& b = server.open();
  ASSERT_TRUE(a.connect());
  ASSERT_TRUE(b.connect());
  ASSERT_EQ(a.call_one(OpCode::Create, create_req("/w")).header.err, ErrorCode::Ok);
  ASSERT_EQ(b.call_one(OpCode::GetData, pr::GetDataRequest{"/w", true}).header.err, ErrorCode::Ok);
  ASSERT_EQ(a.call_one(OpCode::GetData, pr::GetDataRequest{"/w", true}).header.err, ErrorCode::Ok);
  // a changes the node it watches: its event comes before its own reply.
  auto r = a.call(OpCode::SetData, pr::SetDataRequest{"/w", std::string("x"), -1});
  ASSERT_EQ(r.size(), 2u);
  ASSERT_TRUE(r[0].event.has_value());
  EXPECT_EQ(r[0].event->type, EventType::NodeDataChanged);
  EXPECT_EQ(r[0].event->path, "/w");
  EXPECT_EQ(r[0].header.zxid, r[1].header.zxid);
  // b got its event too, once: watches are one-shot.
  auto rb = b.take();
  ASSERT_EQ(rb.size(), 1u);
  EXPECT_EQ(rb[0].event->type, EventType::NodeDataChanged);
  ASSERT_EQ(a.call_one(OpCode::SetData, pr::SetDataRequest{"/w", std::string("y"), -1}).header.err,
            ErrorCode::Ok);
  EXPECT_TRUE(b.take().empty());
}

TEST(Replica, AHostWatcherHearsOfChangesWhileTheyApply) {
  Server server;
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  struct Heard {
    EventType type;
    std::string path;
    Zxid zxid;
    std::optional<std::int32_t> version;  // read from the tree in the sink
  };
  std::vector<Heard> heard;
  const ConnId watcher = ~ConnId{0} - 5;
  server.replica().set_host_watch_sink(core::HostWatchSink{
      [&](const znode::WatchEvent& ev) {
        ASSERT_EQ(ev.watcher, watcher);
        EXPECT_EQ(server.replica().applied_zxid(), ev.zxid) << "the tree is as the entry left it";
        auto st = server.replica().tree().exists(ev.path);
        heard.push_back(Heard{ev.type, ev.path, ev.zxid,
                              st.ok() ? std::optional<std::int32_t>(st->version) : std::nullopt});
      },
      nullptr});
  ASSERT_TRUE(
      server.replica().add_host_watch(watcher, "/h", znode::WatchKind::PersistentRecursive).ok());
  const auto created = c.call_one(OpCode::Create, create_req("/h"));
  ASSERT_EQ(created.header.err, ErrorCode::Ok);
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/other")).header.err, ErrorCode::Ok);
  // Two sets in one batch: each event sees its own version, not the last.
  c.send(OpCode::SetData, pr::SetDataRequest{"/h", std::string("1"), -1}, 20);
  c.send(OpCode::SetData, pr::SetDataRequest{"/h", std::string("2"), -1}, 21);
  const auto sets = c.take();
  ASSERT_EQ(sets.size(), 2u);
  ASSERT_EQ(c.call_one(OpCode::Delete, pr::DeleteRequest{"/h", -1}).header.err, ErrorCode::Ok);
  ASSERT_EQ(heard.size(), 4u);
  EXPECT_EQ(heard[0].type, EventType::NodeCreated);
  EXPECT_EQ(heard[0].zxid, created.header.zxid);
  EXPECT_EQ(heard[0].version, 0);
  EXPECT_EQ(heard[1].type, EventType::NodeDataChanged);
  EXPECT_EQ(heard[1].zxid, sets[0].header.zxid);
  EXPECT_EQ(heard[1].version, 1);
  EXPECT_EQ(heard[2].zxid, sets[1].header.zxid);
  EXPECT_EQ(heard[2].version, 2);
  EXPECT_EQ(heard[3].type, EventType::NodeDeleted);
  EXPECT_EQ(heard[3].version, std::nullopt);
  // Its watch counts as any watch, and goes with it.
  EXPECT_EQ(server.replica().tree().watch_count(), 1u);
  server.replica().remove_host_watcher(watcher);
  EXPECT_EQ(server.replica().tree().watch_count(), 0u);
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/h")).header.err, ErrorCode::Ok);
  EXPECT_EQ(heard.size(), 4u);
}

TEST(Replica, ExpiredSessionLosesItsEphemeralsAndOthersAreTold) {
  Server server;
  Client& owner = server.open();
  Client& watcher = server.open();
  auto s = owner.connect(4000);
  ASSERT_TRUE(s);
  ASSERT_TRUE(watcher.connect(40000));
  ASSERT_EQ(
      owner.call_one(OpCode::Create, create_req("/eph", "", CreateMode::Ephemeral)).header.err,
      ErrorCode::Ok);
  ASSERT_EQ(watcher.call_one(OpCode::Exists, pr::ExistsRequest{"/eph", true}).header.err,
            ErrorCode::Ok);
  server.drop(owner);  // the socket is gone; the session lives until its timeout
  server.advance(2000);
  ASSERT_EQ(watcher.call_one(OpCode::Exists, pr::ExistsRequest{"/eph", false}).header.err,
            ErrorCode::Ok);
  watcher.call(OpCode::Ping, pr::Empty{});  // keeps the watcher's session alive
  server.advance(2500);
  auto events = watcher.take();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].event.has_value());
  EXPECT_EQ(events[0].event->type, EventType::NodeDeleted);
  EXPECT_EQ(watcher.call_one(OpCode::Exists, pr::ExistsRequest{"/eph", false}).header.err,
            ErrorCode::NoNode);
  // The expired session cannot be resumed.
  Client& again = server.open();
  auto resp = again.connect(4000, s->session_id, s->password);
  ASSERT_TRUE(resp.has_value());
  EXPECT_EQ(resp->timeout_ms, 0);
  EXPECT_EQ(resp->session_id.value(), 0);
  EXPECT_TRUE(again.closed());
}

TEST(Replica, ResumeOnANewConnectionEvictsTheOldOne) {
  Server server;
  Client& first = server.open();
  auto s = first.connect();
  ASSERT_TRUE(s);
  Client& second = server.open();
  auto resumed = second.connect(10'000, s->session_id, s->password);
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->session_id, s->session_id);
  EXPECT_TRUE(first.closed());
  EXPECT_FALSE(second.closed());
  EXPECT_EQ(second.call_one(OpCode::Exists, pr::ExistsRequest{"/", false}).header.err,
            ErrorCode::Ok);
}

TEST(Replica, WrongPasswordGetsTheInvalidSessionReply) {
  Server server;
  Client& first = server.open();
  auto s = first.connect();
  ASSERT_TRUE(s);
  Client& thief = server.open();
  auto resp = thief.connect(10'000, s->session_id, std::string(16, 'x'));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->timeout_ms, 0);
  EXPECT_EQ(resp->session_id.value(), 0);
  EXPECT_EQ(resp->password, std::string(16, '\0'));
  EXPECT_TRUE(thief.closed());
  EXPECT_FALSE(first.closed());
}

TEST(Replica, ClientThatSawTheFutureIsTurnedAwayWithoutReply) {
  Server server;
  Client& c = server.open();
  auto resp = c.connect(10'000, SessionId(0), std::string(16, '\0'), Zxid(1'000'000));
  EXPECT_FALSE(resp.has_value());
  EXPECT_TRUE(c.closed());
}

TEST(Replica, OversizedFrameClosesOnlyThatConnection) {
  Server server;
  Client& bad = server.open();
  Client& good = server.open();
  ASSERT_TRUE(bad.connect());
  ASSERT_TRUE(good.connect());
  pr::Bytes huge = {0x7f, 0xff, 0xff, 0xff};
  server.deliver(bad.id(), huge);
  EXPECT_TRUE(bad.closed());
  EXPECT_EQ(good.call_one(OpCode::Exists, pr::ExistsRequest{"/", false}).header.err, ErrorCode::Ok);
}

// As ZooKeeper 3.8: Unimplemented with zxid -1, then the connection
// closes. Requests before it are answered first; none after it is run.
TEST(Replica, UnknownOpcodeIsUnimplementedAndClosesTheConnection) {
  Server server;
  Client& c = server.open();
  Client& other = server.open();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(other.connect());
  pr::Bytes frames;
  pr::append_request_frame(frames, pr::RequestHeader{1, OpCode::Exists},
                           pr::ExistsRequest{"/", false});
  const pr::Bytes unknown = {0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0, 99};
  frames.insert(frames.end(), unknown.begin(), unknown.end());
  pr::append_request_frame(frames, pr::RequestHeader{3, OpCode::Create}, create_req("/after"));
  c.expect(1, OpCode::Exists);
  c.expect(3, OpCode::Create);
  server.deliver(c.id(), frames);
  auto r = c.take();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].header.xid, 1);
  EXPECT_EQ(r[0].header.err, ErrorCode::Ok);
  EXPECT_EQ(r[1].header.xid, 2);
  EXPECT_EQ(r[1].header.zxid, Zxid(-1));
  EXPECT_EQ(r[1].header.err, ErrorCode::Unimplemented);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(other.call_one(OpCode::Exists, pr::ExistsRequest{"/after", false}).header.err,
            ErrorCode::NoNode);
}

// A ConnectRequest on an open connection reads as a request of opcode 0
// (its protocol version is the xid): ZooKeeper answers -6 and closes.
TEST(Replica, SecondHandshakeIsUnimplementedAndClosesTheConnection) {
  Server server;
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  pr::Bytes frame;
  pr::append_connect_request_frame(frame, pr::ConnectRequest{});
  server.deliver(c.id(), frame);
  auto r = c.take();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].header.xid, 0);
  EXPECT_EQ(r[0].header.zxid, Zxid(-1));
  EXPECT_EQ(r[0].header.err, ErrorCode::Unimplemented);
  EXPECT_TRUE(c.closed());
}

// deleteContainer and createSession are ops ZooKeeper knows: answered, the
// connection stays.
TEST(Replica, InternalOpcodesKeepTheConnection) {
  Server server;
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  const pr::Bytes frame = {0, 0, 0, 8, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xf6};  // createSession
  server.deliver(c.id(), frame);
  auto r = c.take();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].header.err, ErrorCode::Unimplemented);
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{"/", false}).header.err, ErrorCode::Ok);
}

TEST(Replica, ExistsOfAPathWithNulIsBadArgumentsOtherReadsNoNode) {
  Server server;
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  const std::string nul("/zookeeper\0x", 12);
  EXPECT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{nul, true}).header.err,
            ErrorCode::BadArguments);
  EXPECT_EQ(c.call_one(OpCode::GetData, pr::GetDataRequest{nul, false}).header.err,
            ErrorCode::NoNode);
  EXPECT_EQ(server.replica().tree().watch_count(), 0u);
}

TEST(Replica, MultiFailureHasZooKeepersResultShape) {
  Server server;
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  pr::MultiRequest m;
  m.ops.push_back(pr::MultiOp{OpCode::Create, create_req("/m1")});
  m.ops.push_back(pr::MultiOp{OpCode::Delete, pr::DeleteRequest{"/nope", -1}});
  m.ops.push_back(pr::MultiOp{OpCode::Create, create_req("/m2")});
  auto r = c.call_one(OpCode::Multi, m);
  ASSERT_EQ(r.header.err, ErrorCode::Ok);
  const auto& res = std::get<pr::MultiResponse>(*r.body).results;
  ASSERT_EQ(res.size(), 3u);
  EXPECT_EQ(res[0].type, OpCode::Error);
  EXPECT_EQ(res[0].err, ErrorCode::Ok);
  EXPECT_EQ(res[1].err, ErrorCode::NoNode);
  EXPECT_EQ(res[2].err, ErrorCode::RuntimeInconsistency);
  EXPECT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{"/m1", false}).header.err,
            ErrorCode::NoNode);
}

TEST(Replica, DigestAuthAndSuperUser) {
  const std::string super = digest_of("super:secret");
  Server server("super:" + super.substr(super.find(':') + 1));
  Client& alice = server.open();
  ASSERT_TRUE(alice.connect());
  alice.send(OpCode::Auth, pr::AuthPacket{0, "digest", "alice:pw"}, pr::xid_auth);
  ASSERT_EQ(alice.take().back().header.err, ErrorCode::Ok);
  auto req = create_req("/private");
  req.acl = creator_all_acl();
  ASSERT_EQ(alice.call_one(OpCode::Create, req).header.err, ErrorCode::Ok);
  Client& eve = server.open();
  ASSERT_TRUE(eve.connect());
  EXPECT_EQ(eve.call_one(OpCode::GetData, pr::GetDataRequest{"/private", false}).header.err,
            ErrorCode::NoAuth);
  eve.send(OpCode::Auth, pr::AuthPacket{0, "digest", "super:secret"}, pr::xid_auth);
  ASSERT_EQ(eve.take().back().header.err, ErrorCode::Ok);
  EXPECT_EQ(eve.call_one(OpCode::GetData, pr::GetDataRequest{"/private", false}).header.err,
            ErrorCode::Ok);
  auto who = alice.call_one(OpCode::WhoAmI, pr::Empty{});
  const auto& info = std::get<pr::WhoAmIResponse>(*who.body).client_info;
  ASSERT_EQ(info.size(), 2u);
  EXPECT_EQ(info[1].auth_scheme, "digest");
  EXPECT_EQ(info[1].user, "alice");
  // An unknown scheme fails and closes the connection.
  eve.send(OpCode::Auth, pr::AuthPacket{0, "kerberos", "x"}, pr::xid_auth);
  EXPECT_EQ(eve.take().back().header.err, ErrorCode::AuthFailed);
  EXPECT_TRUE(eve.closed());
}

TEST(Replica, AWriteThatMeetsAStorageFailureIsAnsweredAndNeverApplies) {
  Server server;
  Client& c = server.open();
  Client& other = server.open();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(other.connect());
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/keep", "v")).header.err, ErrorCode::Ok);
  server.storage().fail_writes_for_testing(true);
  // The write that meets the failure is answered at once, and the ping
  // behind it too: nothing waits for the disk.
  c.send(OpCode::Create, create_req("/refused-first"), 50);
  c.send(OpCode::Ping, pr::Empty{}, 51);
  auto r = c.take();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].header.xid, 50);
  EXPECT_EQ(r[0].header.err, ErrorCode::NotReadOnly);
  EXPECT_EQ(r[1].header.xid, 51);
  EXPECT_EQ(r[1].header.err, ErrorCode::Ok);
  EXPECT_TRUE(server.replica().storage_failed());
  ASSERT_TRUE(server.replica().read_only().has_value());
  EXPECT_EQ(server.replica().read_only()->reason, ReadOnlyReason::StorageRefusesWrites);
  // The storage error, with its file, is what the host logs and shows.
  EXPECT_NE(server.replica().read_only()->detail.find("/data/log/data.mdb"), std::string::npos);
  EXPECT_FALSE(server.replica().ready());
  // Other sessions read; their writes and syncs are refused at once.
  EXPECT_EQ(other.call_one(OpCode::GetData, pr::GetDataRequest{"/keep", false}).header.err,
            ErrorCode::Ok);
  EXPECT_EQ(other.call_one(OpCode::Create, create_req("/refused")).header.err,
            ErrorCode::NotReadOnly);
  EXPECT_EQ(other.call_one(OpCode::Sync, pr::SyncRequest{"/"}).header.err, ErrorCode::NotReadOnly);
  // Each tick tries once more, and no more than once.
  const std::uint64_t before = server.storage().persists();
  server.advance(200);
  EXPECT_EQ(server.storage().persists() - before, 4u);
  EXPECT_GE(server.replica().stats().writes_failed_storage, 5u);
  EXPECT_EQ(server.replica().stats().read_only_entered, 1u);
  EXPECT_TRUE(server.replica().storage_failed());
  // Writes resume by themselves once storage takes them.
  server.storage().fail_writes_for_testing(false);
  server.advance(100);
  EXPECT_FALSE(server.replica().read_only().has_value());
  EXPECT_TRUE(server.replica().ready());
  EXPECT_FALSE(c.closed());
  EXPECT_TRUE(c.take().empty());
  // The refused write never happened.
  EXPECT_EQ(other.call_one(OpCode::Exists, pr::ExistsRequest{"/refused-first", false}).header.err,
            ErrorCode::NoNode);
  EXPECT_EQ(c.call_one(OpCode::Create, create_req("/later")).header.err, ErrorCode::Ok);
  EXPECT_EQ(other.call_one(OpCode::Exists, pr::ExistsRequest{"/later", false}).header.err,
            ErrorCode::Ok);
}

TEST(Replica, ReadOnlyModeServesReadOnlyClientsWithLocalSessions) {
  Server server;
  Client& old = server.open();
  ASSERT_TRUE(old.connect());
  ASSERT_EQ(old.call_one(OpCode::Create, create_req("/keep", "v")).header.err, ErrorCode::Ok);
  const std::size_t global_sessions = server.replica().session_count();
  server.storage().fail_writes_for_testing(true);
  ASSERT_EQ(old.call_one(OpCode::SetData, pr::SetDataRequest{"/keep", "w", -1}).header.err,
            ErrorCode::NotReadOnly);
  ASSERT_TRUE(server.replica().read_only().has_value());
  EXPECT_EQ(server.replica().four_letter_word("isro"), "ro");
  EXPECT_NE(server.replica().four_letter_word("mntr").find("zk_server_state\tread-only\n"),
            std::string::npos);
  EXPECT_NE(server.replica().four_letter_word("srvr").find("Mode: read-only\n"), std::string::npos);

  // A client that did not set canBeReadOnly is turned away without a reply.
  Client& rw = server.open();
  EXPECT_FALSE(rw.connect());
  EXPECT_TRUE(rw.closed());

  // One that did gets a session of this server alone, marked read-only.
  Client& ro = server.open();
  auto resp = ro.connect(10'000, SessionId(0), std::string(16, '\0'), Zxid(0), true);
  ASSERT_TRUE(resp);
  EXPECT_TRUE(resp->read_only);
  EXPECT_NE(resp->session_id.value(), 0);
  EXPECT_EQ(resp->password.size(), 16u);
  EXPECT_EQ(server.replica().local_session_count(), 1u);
  EXPECT_EQ(server.replica().session_count(), global_sessions);
  EXPECT_FALSE(server.replica().has_session(resp->session_id));
  auto got = ro.call_one(OpCode::GetData, pr::GetDataRequest{"/keep", false});
  ASSERT_EQ(got.header.err, ErrorCode::Ok);
  EXPECT_EQ(std::get<pr::GetDataResponse>(*got.body).data, std::optional<std::string>("v"));
  EXPECT_EQ(ro.call_one(OpCode::Ping, pr::Empty{}).header.err, ErrorCode::Ok);
  EXPECT_EQ(ro.call_one(OpCode::Create, create_req("/ro")).header.err, ErrorCode::NotReadOnly);
  // A read-only client may come back to its local session, with its password.
  Client& again = server.open();
  auto resumed = again.connect(10'000, resp->session_id, resp->password, Zxid(0), true);
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->session_id, resp->session_id);
  EXPECT_TRUE(resumed->read_only);
  EXPECT_TRUE(ro.closed());  // the session moved
  // The session that existed before goes on; its writes are refused.
  EXPECT_EQ(old.call_one(OpCode::Ping, pr::Empty{}).header.err, ErrorCode::Ok);

  // Storage back: the mode ends, local sessions with it.
  server.storage().fail_writes_for_testing(false);
  server.advance(100);
  EXPECT_FALSE(server.replica().read_only().has_value());
  EXPECT_TRUE(again.closed());
  EXPECT_EQ(server.replica().local_session_count(), 0u);
  EXPECT_EQ(server.replica().four_letter_word("isro"), "rw");
  EXPECT_FALSE(old.closed());
  EXPECT_EQ(old.call_one(OpCode::SetData, pr::SetDataRequest{"/keep", "w", -1}).header.err,
            ErrorCode::Ok);
  // The local session means nothing now.
  Client& late = server.open();
  auto expired = late.connect(10'000, resp->session_id, resp->password, Zxid(0), true);
  ASSERT_TRUE(expired);
  EXPECT_EQ(expired->timeout_ms, 0);
  EXPECT_FALSE(expired->read_only);
  Client& fresh = server.open();
  auto rw_again = fresh.connect();
  ASSERT_TRUE(rw_again);
  EXPECT_FALSE(rw_again->read_only);
}

TEST(Replica, LocalSessionExpiresAndClosingItNeedsNoLog) {
  Server server;
  Client& old = server.open();
  ASSERT_TRUE(old.connect());
  server.storage().fail_writes_for_testing(true);
  ASSERT_EQ(old.call_one(OpCode::Create, create_req("/x")).header.err, ErrorCode::NotReadOnly);
  Client& a = server.open();
  ASSERT_TRUE(a.connect(4'000, SessionId(0), std::string(16, '\0'), Zxid(0), true));
  Client& b = server.open();
  ASSERT_TRUE(b.connect(4'000, SessionId(0), std::string(16, '\0'), Zxid(0), true));
  EXPECT_EQ(server.replica().local_session_count(), 2u);
  auto closed = b.call(OpCode::CloseSession, pr::Empty{});
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].header.err, ErrorCode::Ok);
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(server.replica().local_session_count(), 1u);
  // `a` goes silent past its timeout.
  server.advance(4'200);
  EXPECT_TRUE(a.closed());
  EXPECT_EQ(server.replica().local_session_count(), 0u);
}

TEST(Replica, RestartReplaysTheLogAndASnapshot) {
  for (bool with_snapshot : {false, true}) {
    Server server;
    {
      Client& c = server.open();
      ASSERT_TRUE(c.connect());
      for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(c.call_one(OpCode::Create, create_req("/n" + std::to_string(i))).header.err,
                  ErrorCode::Ok);
      }
    }
    const std::uint64_t digest = server.replica().tree().digest();
    const Zxid zxid = server.replica().applied_zxid();
    server.restart(with_snapshot);
    EXPECT_EQ(server.replica().tree().digest(), digest) << "snapshot=" << with_snapshot;
    EXPECT_GE(server.replica().applied_zxid(), zxid);
    Client& c = server.open();
    ASSERT_TRUE(c.connect());
    EXPECT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{"/n19", false}).header.err,
              ErrorCode::Ok);
  }
}

// zkCli's setquota, as requests: the limits node, then the stats node the
// server counts.
void set_quota(Client& c, const std::string& root, const std::string& limits) {
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/zookeeper/quota" + root, "")).header.err,
            ErrorCode::Ok);
  ASSERT_EQ(c.call_one(OpCode::Create,
                       create_req("/zookeeper/quota" + root + "/zookeeper_limits", limits))
                .header.err,
            ErrorCode::Ok);
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/zookeeper/quota" + root + "/zookeeper_stats",
                                                  "count=0,bytes=0"))
                .header.err,
            ErrorCode::Ok);
}

std::string stats_of(Client& c, const std::string& root) {
  auto r = c.call_one(OpCode::GetData,
                      pr::GetDataRequest{"/zookeeper/quota" + root + "/zookeeper_stats", false});
  if (r.header.err != ErrorCode::Ok || !r.body) return "(none)";
  return std::get<pr::GetDataResponse>(*r.body).data.value_or("(null)");
}

// The server's --enforce-quota reaches the tree: past a hard limit a write
// is answered QuotaExceeded (-125) and changes nothing; without it the
// write goes through and the limit is only logged. The usage survives a
// restart from the log and from a snapshot.
TEST(Replica, QuotaHardLimitIsEnforcedOnlyWhenConfigured) {
  for (bool enforce : {false, true}) {
    Server server("", znode::TreeConfig{enforce});
    Client& c = server.open();
    ASSERT_TRUE(c.connect());
    ASSERT_EQ(c.call_one(OpCode::Create, create_req("/q", "abc")).header.err, ErrorCode::Ok);
    set_quota(c, "/q", "count=-1,bytes=-1=;byteHardLimit=8;countHardLimit=2");
    ASSERT_EQ(c.call_one(OpCode::Create, create_req("/q/a", "de")).header.err, ErrorCode::Ok);
    EXPECT_EQ(stats_of(c, "/q"), "count=2,bytes=5");
    EXPECT_TRUE(server.warnings().empty());

    auto r = c.call_one(OpCode::Create, create_req("/q/b", ""));
    EXPECT_EQ(r.header.err, enforce ? ErrorCode::QuotaExceeded : ErrorCode::Ok);
    EXPECT_EQ(static_cast<int>(r.header.err), enforce ? -125 : 0);
    auto s = c.call_one(OpCode::SetData, pr::SetDataRequest{"/q/a", std::string("defghi"), -1});
    EXPECT_EQ(s.header.err, enforce ? ErrorCode::QuotaExceeded : ErrorCode::Ok);
    EXPECT_EQ(stats_of(c, "/q"), enforce ? "count=2,bytes=5" : "count=3,bytes=9");
    // One line for the quota in the interval, however many writes passed it.
    ASSERT_EQ(server.warnings().size(), 1u);
    EXPECT_NE(server.warnings()[0].find("quota of /q"), std::string::npos) << server.warnings()[0];
    EXPECT_NE(server.warnings()[0].find(enforce ? "refused" : "not enforced"), std::string::npos)
        << server.warnings()[0];
    server.jump_clocks(limits::quota_log_interval_ms);
    (void)c.call_one(OpCode::Create, create_req("/q/c", ""));
    ASSERT_EQ(server.warnings().size(), 2u);
    EXPECT_NE(server.warnings()[1].find("(and 1 more"), std::string::npos) << server.warnings()[1];

    const std::string before = stats_of(c, "/q");
    const std::uint64_t digest = server.replica().tree().digest();
    for (bool with_snapshot : {false, true}) {
      server.restart(with_snapshot);
      EXPECT_EQ(server.replica().tree().digest(), digest) << "snapshot=" << with_snapshot;
      EXPECT_EQ(server.replica().tree().config().enforce_quota, enforce);
      Client& again = server.open();
      ASSERT_TRUE(again.connect());
      EXPECT_EQ(stats_of(again, "/q"), before);
    }
  }
}

// A restart happens at some steady time far from 0: the restored sessions
// get a fresh timeout from then, and expire only if nobody resumes them.
TEST(Replica, SessionsSurviveARestartWithinTheirTimeout) {
  for (bool with_snapshot : {false, true}) {
    Server server;
    Client& c = server.open();
    auto resp = c.connect(10'000);
    ASSERT_TRUE(resp.has_value());
    ASSERT_EQ(c.call_one(OpCode::Create, create_req("/eph", "", CreateMode::Ephemeral)).header.err,
              ErrorCode::Ok);
    server.jump_clocks(3'600'000);
    server.restart(with_snapshot);
    server.advance(2'000);
    Client& again = server.open();
    auto resumed = again.connect(10'000, resp->session_id, resp->password);
    ASSERT_TRUE(resumed.has_value());
    EXPECT_EQ(resumed->session_id, resp->session_id) << "snapshot=" << with_snapshot;
    EXPECT_EQ(again.call_one(OpCode::Exists, pr::ExistsRequest{"/eph", false}).header.err,
              ErrorCode::Ok);
    // Unheard from for longer than the timeout, the session expires.
    server.drop(again);
    server.advance(15'000);
    EXPECT_FALSE(server.replica().has_session(resp->session_id));
  }
}

// A container /box holding /box/item, created half a second ago.
void make_box_with_item(Server& server, Client& c) {
  ASSERT_TRUE(c.connect());
  ASSERT_EQ(
      c.call_one(OpCode::CreateContainer, create_req("/box", "", CreateMode::Container)).header.err,
      ErrorCode::Ok);
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/box/item")).header.err, ErrorCode::Ok);
  server.advance(500);
}

TEST(Replica, ContainerIsReapedAfterItsLastChildGoes) {
  Server server;
  Client& c = server.open();
  ASSERT_NO_FATAL_FAILURE(make_box_with_item(server, c));
  EXPECT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{"/box", false}).header.err, ErrorCode::Ok);
  ASSERT_EQ(c.call_one(OpCode::Delete, pr::DeleteRequest{"/box/item", -1}).header.err,
            ErrorCode::Ok);
  server.advance(500);
  EXPECT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{"/box", false}).header.err,
            ErrorCode::NoNode);
}

// The wall time a replica uses never goes back, so after the clock is set
// back an hour it stands still for that hour; reaping must go on.
TEST(Replica, ContainerIsReapedAfterTheWallClockWentBack) {
  Server server;
  Client& c = server.open();
  ASSERT_NO_FATAL_FAILURE(make_box_with_item(server, c));
  server.jump_wall_clock(-3'600'000);
  ASSERT_EQ(c.call_one(OpCode::Delete, pr::DeleteRequest{"/box/item", -1}).header.err,
            ErrorCode::Ok);
  server.advance(500);
  EXPECT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{"/box", false}).header.err,
            ErrorCode::NoNode);
}

TEST(Replica, FourLetterWordsAnswer) {
  Server server;
  EXPECT_EQ(server.replica().four_letter_word("ruok"), "imok");
  const std::string srvr = server.replica().four_letter_word("srvr");
  EXPECT_NE(srvr.find("Mode: standalone"), std::string::npos) << srvr;
  EXPECT_NE(srvr.find("Node count: 4"), std::string::npos) << srvr;
  EXPECT_NE(server.replica().four_letter_word("envi").find("zookeeper.version=3.8.0"),
            std::string::npos);
  EXPECT_NE(server.replica().four_letter_word("mntr").find("zk_znode_count\t4"), std::string::npos);
  EXPECT_EQ(server.replica().four_letter_word("xyzw"), "");
}

// cons shows ZooKeeper's per-connection fields; srst and crst reset what
// the words report, while the Prometheus counters keep counting.
TEST(Replica, FourLetterWordStatisticsAndTheirReset) {
  Server server([](ReplicaConfig& c) { c.four_letter_whitelist = "*"; });
  Client& c = server.open("127.0.0.1", 40123);
  ASSERT_TRUE(c.connect().has_value());
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/s")).header.err, ErrorCode::Ok);
  const std::string cons = server.replica().four_letter_word("cons");
  EXPECT_NE(cons.find(" /127.0.0.1:40123[1](queued=0,recved=2,sent=2,sid=0x"), std::string::npos)
      << cons;
  for (const char* field :
       {",lcxid=0x", ",lzxid=0x", ",lresp=", ",llat=", ",minlat=", ",avglat=", ",maxlat="}) {
    EXPECT_NE(cons.find(field), std::string::npos) << field << " in " << cons;
  }
  EXPECT_EQ(server.replica().four_letter_word("srst"), "Server stats reset.\n");
  EXPECT_NE(server.replica().four_letter_word("srvr").find("Received: 0\n"), std::string::npos);
  EXPECT_EQ(server.replica().stats().packets_received, 2u);
  EXPECT_EQ(server.replica().four_letter_word("crst"), "Connection stats reset.\n");
  EXPECT_NE(server.replica().four_letter_word("cons").find("(queued=0,recved=0,sent=0,"),
            std::string::npos);
}

// ---- bounded replies ---------------------------------------------------------

// A multiRead naming one large node many times is refused while it is
// built (every op's result MarshallingError, header Ok, as any failed
// multi), not assembled in full; the node stays readable alone.
TEST(Replica, MultiReadPastTheReplyLimitIsRefusedOpByOp) {
  Server server;
  Client& c = server.open();
  Client& other = server.open();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(other.connect());
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/big", std::string(600'000, 'b'))).header.err,
            ErrorCode::Ok);
  pr::MultiRequest one;
  one.ops.push_back(pr::MultiOp{OpCode::GetData, pr::GetDataRequest{"/big", false}});
  auto ok = c.call_one(OpCode::MultiRead, one);
  ASSERT_EQ(ok.header.err, ErrorCode::Ok);
  ASSERT_EQ(std::get<pr::MultiResponse>(*ok.body).results.size(), 1u);
  EXPECT_EQ(std::get<pr::MultiResponse>(*ok.body).results[0].data->size(), 600'000u);

  pr::MultiRequest many;
  for (int i = 0; i < 300; ++i)
    many.ops.push_back(pr::MultiOp{OpCode::GetData, pr::GetDataRequest{"/big", false}});
  auto refused = c.call_one(OpCode::MultiRead, many);
  ASSERT_EQ(refused.header.err, ErrorCode::Ok);
  const auto& results = std::get<pr::MultiResponse>(*refused.body).results;
  ASSERT_EQ(results.size(), 300u);
  for (const auto& r : results) {
    EXPECT_EQ(r.type, OpCode::Error);
    EXPECT_EQ(r.err, ErrorCode::MarshallingError);
  }
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(c.call_one(OpCode::GetData, pr::GetDataRequest{"/big", false}).header.err,
            ErrorCode::Ok);
  EXPECT_EQ(other.call_one(OpCode::Exists, pr::ExistsRequest{"/big", false}).header.err,
            ErrorCode::Ok);
}

// Children lists, getEphemerals and a multi's results are measured too
// (a small limit stands in for a node with 200,000 children).
TEST(Replica, EveryGrowingReplyIsBoundedByTheLimit) {
  Server server([](ReplicaConfig& c) { c.reply_bytes_max = 2'000; });
  Client& c = server.open();
  Client& writer = server.open();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(writer.connect());
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/kids")).header.err, ErrorCode::Ok);
  auto create_kids = [&](const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(c.call_one(OpCode::Create, create_req("/kids/" + prefix + std::to_string(1000 + i),
                                                      "", CreateMode::Ephemeral))
                    .header.err,
                ErrorCode::Ok);
    }
  };
  create_kids("child-", 100);
  // 100 names of 10 bytes: 1,420 bytes, within the limit.
  auto listed = c.call_one(OpCode::GetChildren, pr::GetChildrenRequest{"/kids", false});
  ASSERT_EQ(listed.header.err, ErrorCode::Ok);
  EXPECT_EQ(std::get<pr::GetChildrenResponse>(*listed.body).children.size(), 100u);
  create_kids("more-", 50);
  // 150 children: past the limit, with or without a watch; no watch is left.
  EXPECT_EQ(c.call_one(OpCode::GetChildren, pr::GetChildrenRequest{"/kids", true}).header.err,
            ErrorCode::MarshallingError);
  EXPECT_EQ(c.call_one(OpCode::GetChildren2, pr::GetChildren2Request{"/kids", false}).header.err,
            ErrorCode::MarshallingError);
  EXPECT_EQ(server.replica().tree().watch_count(), 0u);
  EXPECT_EQ(c.call_one(OpCode::GetEphemerals, pr::GetEphemeralsRequest{"/"}).header.err,
            ErrorCode::MarshallingError);
  auto few = c.call_one(OpCode::GetEphemerals, pr::GetEphemeralsRequest{"/kids/child-100"});
  ASSERT_EQ(few.header.err, ErrorCode::Ok);
  EXPECT_EQ(std::get<pr::GetEphemeralsResponse>(*few.body).ephemerals.size(), 10u);
  pr::MultiRequest lists;
  lists.ops.push_back(pr::MultiOp{OpCode::GetChildren, pr::GetChildrenRequest{"/kids", false}});
  auto mr = c.call_one(OpCode::MultiRead, lists);
  ASSERT_EQ(mr.header.err, ErrorCode::Ok);
  EXPECT_EQ(std::get<pr::MultiResponse>(*mr.body).results.at(0).err, ErrorCode::MarshallingError);

  // A multi whose results could pass the limit is refused before it is
  // proposed: nothing of it applies.
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/v")).header.err, ErrorCode::Ok);
  pr::MultiRequest sets;
  for (int i = 0; i < 40; ++i)
    sets.ops.push_back(
        pr::MultiOp{OpCode::SetData, pr::SetDataRequest{"/v", std::string("x"), -1}});
  auto refused = c.call_one(OpCode::Multi, sets);
  ASSERT_EQ(refused.header.err, ErrorCode::Ok);
  const auto& results = std::get<pr::MultiResponse>(*refused.body).results;
  ASSERT_EQ(results.size(), 40u);
  EXPECT_EQ(results[0].err, ErrorCode::MarshallingError);
  auto v = writer.call_one(OpCode::Exists, pr::ExistsRequest{"/v", false});
  EXPECT_EQ(std::get<pr::ExistsResponse>(*v.body).stat.version, 0);
  sets.ops.resize(10);
  EXPECT_EQ(c.call_one(OpCode::Multi, sets).header.err, ErrorCode::Ok);
  v = writer.call_one(OpCode::Exists, pr::ExistsRequest{"/v", false});
  EXPECT_EQ(std::get<pr::ExistsResponse>(*v.body).stat.version, 10);
  EXPECT_FALSE(c.closed());
}

// ---- the per-connection watch limit ----------------------------------------------

// A watch the limit refuses is an error, never an Ok with the watch
// silently dropped; other connections are not affected.
TEST(Replica, WatchPastTheConnectionLimitIsAnError) {
  Server server([](ReplicaConfig& c) { c.watches_per_connection_max = 3; });
  Client& c = server.open();
  Client& other = server.open();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(other.connect());
  ASSERT_EQ(c.call_one(OpCode::Create, create_req("/a")).header.err, ErrorCode::Ok);
  ASSERT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{"/a", true}).header.err, ErrorCode::Ok);
  ASSERT_EQ(c.call_one(OpCode::GetData, pr::GetDataRequest{"/", true}).header.err, ErrorCode::Ok);
  ASSERT_EQ(c.call_one(OpCode::GetChildren, pr::GetChildrenRequest{"/", true}).header.err,
            ErrorCode::Ok);
  EXPECT_EQ(server.replica().tree().watch_count(), 3u);
  // The fourth, by every way of asking.
  EXPECT_EQ(c.call_one(OpCode::Exists, pr::ExistsRequest{"/missing", true}).header.err,
            ErrorCode::BadArguments);
  EXPECT_EQ(c.call_one(OpCode::GetData, pr::GetDataRequest{"/a", false}).header.err, ErrorCode::Ok);
  EXPECT_EQ(c.call_one(OpCode::GetChildren2, pr::GetChildren2Request{"/a", true}).header.err,
            ErrorCode::BadArguments);
  EXPECT_EQ(
      c.call_one(OpCode::AddWatch, pr::AddWatchRequest{"/b", AddWatchMode::Persistent}).header.err,
      ErrorCode::BadArguments);
  pr::SetWatches sw;
  sw.relative_zxid = server.replica().applied_zxid();
  sw.exist_watches = {"/x", "/y"};
  c.send(OpCode::SetWatches, sw, pr::xid_set_watches);
  auto r = c.take();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].header.err, ErrorCode::BadArguments);
  EXPECT_EQ(server.replica().tree().watch_count(), 3u);
  // A watch already held is not a new one.
  EXPECT_EQ(c.call_one(OpCode::GetData, pr::GetDataRequest{"/a", true}).header.err, ErrorCode::Ok);
  EXPECT_EQ(other.call_one(OpCode::Exists, pr::ExistsRequest{"/missing", true}).header.err,
            ErrorCode::NoNode);
  EXPECT_FALSE(c.closed());
}

// ---- four-letter words ------------------------------------------------------------

TEST(Replica, FourLetterWhitelistRefusesAsZooKeeperDoes) {
  Server server;
  EXPECT_EQ(server.replica().four_letter_word("ruok"), "imok");
  for (const char* word : {"srvr", "stat", "mntr", "conf", "envi", "cons", "isro", "wchs", "dirs"})
    EXPECT_TRUE(server.replica().four_letter_word_allowed(word)) << word;
  for (const char* word : {"wchc", "wchp", "dump", "srst", "crst", "gtmk", "stmk"}) {
    EXPECT_FALSE(server.replica().four_letter_word_allowed(word)) << word;
    EXPECT_EQ(server.replica().four_letter_word(word),
              std::string(word) + " is not executed because it is not in the whitelist.\n");
  }
  EXPECT_EQ(server.replica().four_letter_word("xyzw"), "");

  Server all([](ReplicaConfig& c) { c.four_letter_whitelist = "*"; });
  EXPECT_TRUE(all.replica().four_letter_word_allowed("dump"));
  Server some([](ReplicaConfig& c) { c.four_letter_whitelist = " ruok , wchc,"; });
  EXPECT_TRUE(some.replica().four_letter_word_allowed("wchc"));
  EXPECT_FALSE(some.replica().four_letter_word_allowed("mntr"));
  EXPECT_TRUE(some.replica().four_letter_word_allowed("srvr"));  // always, as ZooKeeper's

  ReplicaConfig bad;
  bad.four_letter_whitelist = "ruok,nope";
  MemoryReplicaStorage storage(consensus::ConfState{{NodeId(1)}, {}});
  auto r =
      Replica::create(bad, storage, std::nullopt, Random(1), [] { return std::string(16, 'p'); });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nope"), std::string::npos) << r.status();
}

// wchs counts without listing; wchc and wchp stop at the byte limit with
// a line that says so.
TEST(Replica, WatchWordsAreBounded) {
  Server server([](ReplicaConfig& c) {
    c.four_letter_whitelist = "*";
    c.four_letter_word_bytes_max = 300;
  });
  Client& c = server.open();
  ASSERT_TRUE(c.connect());
  for (int i = 0; i < 60; ++i) {
    ASSERT_EQ(
        c.call_one(OpCode::Exists, pr::ExistsRequest{"/w" + std::to_string(i), true}).header.err,
        ErrorCode::NoNode);
  }
  EXPECT_EQ(server.replica().four_letter_word("wchs"),
            "1 connections watching 60 paths\nTotal watches:60\n");
  for (const char* word : {"wchc", "wchp"}) {
    const std::string out = server.replica().four_letter_word(word);
    EXPECT_LT(out.size(), 400u) << word;
    EXPECT_NE(out.find("... truncated: this answer is limited to 300 bytes\n"), std::string::npos)
        << word << ":\n"
        << out;
  }
  Server roomy([](ReplicaConfig& cfg) { cfg.four_letter_whitelist = "*"; });
  Client& d = roomy.open();
  ASSERT_TRUE(d.connect());
  ASSERT_EQ(d.call_one(OpCode::Exists, pr::ExistsRequest{"/w", true}).header.err,
            ErrorCode::NoNode);
  EXPECT_NE(roomy.replica().four_letter_word("wchp").find("/w\n\t0x"), std::string::npos);
  EXPECT_EQ(roomy.replica().four_letter_word("wchc").find("truncated"), std::string::npos);
}

}  // namespace
}  // namespace coord::core
