// The replica under a seeded storm: random clients sending random requests
// (pipelined), dropping and resuming their connections, going silent until
// their sessions expire, and the server crashing and restarting from its
// storage, with and without a snapshot. One thread, one seed; a failure
// prints the seed and the command that replays it.
//
// Checked after every step (docs/TESTING.md, the simulator's checks, for one node):
//   - every ephemeral belongs to a live session;
//   - replies come in request order, and their zxids never go back;
//   - a watch event's zxid is above every reply zxid the client saw before
//     it (the event precedes any reply that reflects its change);
//   - every acknowledged write survives a crash: the tree restored from
//     storage has the digest the tree had at the same applied zxid.
//
//   COORD_SIM_SEEDS=n (default 40), COORD_SIM_SEED=s (one seed),
//   COORD_SIM_STEPS=n (default 400).

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "coord/core/replica.h"
#include "coord/protocol/codec.h"
#include "coord/protocol/frame.h"

namespace coord::core {
namespace {

namespace pr = coord::protocol;
using pr::OpCode;

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct SimClient {
  ConnId conn = 0;  // 0 = not connected
  SessionId session{0};
  std::string password;
  std::int32_t timeout_ms = 4000;
  bool silent = false;  // stops pinging so the session expires
  bool expired = false;
  pr::Bytes inbox;
  std::int32_t next_xid = 1;
  std::map<std::int32_t, OpCode> outstanding;  // xid -> op, in send order
  std::int64_t max_reply_zxid = 0;
  std::int64_t last_zxid_seen = 0;
};

class Sim {
 public:
  explicit Sim(std::uint64_t seed) : seed_(seed), rng_(seed) {
    config_.reap_interval_ms = 200;
    config_.snapshot_entries = 1'000'000;  // snapshots are taken by the sim itself
    storage_ = std::make_unique<MemoryReplicaStorage>(consensus::ConfState{{NodeId(1)}, {}});
    boot(std::nullopt);
    for (int i = 0; i < 4; ++i)
      clients_.emplace_back();
  }

  // Returns an empty string while all is well, else what broke.
  std::string run(std::uint64_t steps) {
    for (std::uint64_t step = 0; step < steps && failure_.empty(); ++step) {
      const std::uint64_t dice = rng_.below(100);
      SimClient& c = clients_[rng_.below(clients_.size())];
      if (dice < 55) {
        request(c);
      } else if (dice < 65) {
        advance(rng_.uniform(1, 5) * config_.tick_ms);
      } else if (dice < 72) {
        drop(c);
      } else if (dice < 75) {
        c.silent = !c.silent;
      } else if (dice < 77) {
        crash(/*with_snapshot=*/rng_.chance(1, 2));
      } else {
        connect(c);
      }
      check();
    }
    // Quiet phase: everyone reconnects and pings; the server must serve.
    for (auto& c : clients_)
      c.silent = false;
    for (int i = 0; i < 20 && failure_.empty(); ++i) {
      for (auto& c : clients_) {
        if (c.conn == 0) connect(c);
      }
      advance(config_.tick_ms);
      check();
    }
    return failure_;
  }

 private:
  void fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
  }

  void boot(std::optional<std::string> snapshot) {
    auto r =
        Replica::create(config_, *storage_, std::move(snapshot), Random(rng_.next_u64()), [this] {
          std::string p(16, '\0');
          for (char& ch : p)
            ch = static_cast<char>(rng_.below(256));
          return p;
        });
    if (!r.ok()) return fail("restart failed: " + r.status().to_string());
    replica_ = std::move(r).value();
    for (int i = 0; i < 50 && !replica_->ready(); ++i)
      advance(config_.tick_ms);
    if (!replica_->ready()) fail("no leader after boot");
  }

  void advance(std::int64_t ms) {
    for (std::int64_t t = 0; t < ms; t += config_.tick_ms) {
      steady_ += config_.tick_ms;
      wall_ += config_.tick_ms;
      replica_->tick(steady_, wall_);
      flush();
      for (auto& c : clients_) {
        if (c.conn != 0 && !c.silent && rng_.chance(1, 10))
          send(c, OpCode::Ping, pr::Empty{}, pr::xid_ping);
      }
    }
  }

  void flush() {
    ReplicaOutput out = replica_->take_output();
    for (auto& o : out.connections) {
      SimClient* c = by_conn(o.conn);
      if (c == nullptr) continue;
      c->inbox.insert(c->inbox.end(), o.bytes.begin(), o.bytes.end());
      read_frames(*c);
      if (o.close) {
        replica_->connection_closed(o.conn);
        forget_connection(*c);
      }
    }
  }

  SimClient* by_conn(ConnId id) {
    for (auto& c : clients_) {
      if (c.conn == id) return &c;
    }
    return nullptr;
  }

  void forget_connection(SimClient& c) {
    c.conn = 0;
    c.inbox.clear();
    c.outstanding.clear();  // lost with the connection, as ConnectionLoss
  }

  void connect(SimClient& c) {
    if (c.conn != 0) return;
    c.conn = next_conn_++;
    replica_->connection_opened(c.conn, "10.0.0." + std::to_string(c.conn % 200), steady_, wall_);
    pr::ConnectRequest req;
    req.timeout_ms = c.timeout_ms;
    req.session_id = c.expired ? SessionId(0) : c.session;
    req.password = c.session.value() != 0 && !c.expired ? c.password : std::string(16, '\0');
    req.last_zxid_seen = Zxid(c.last_zxid_seen);
    pr::Bytes frame;
    pr::append_connect_request_frame(frame, req);
    awaiting_handshake_[c.conn] = true;
    replica_->bytes_received(c.conn, pr::ByteSpan(frame), steady_, wall_);
    flush();
  }

  void drop(SimClient& c) {
    if (c.conn == 0) return;
    replica_->connection_closed(c.conn);
    forget_connection(c);
    flush();
  }

  void crash(bool with_snapshot) {
    const Zxid zxid = replica_->applied_zxid();
    const std::uint64_t digest = replica_->tree().digest();
    std::optional<std::string> snap;
    if (with_snapshot) {
      snap = replica_->snapshot_payload();
      Status st = storage_->snapshot_saved(replica_->snapshot_meta(), *snap);
      if (!st.ok()) return fail("snapshot_saved: " + st.to_string());
    } else if (storage_->snapshot_meta().index.value() != 0) {
      // Restart from the snapshot the storage already holds.
      snap = last_snapshot_;
    }
    if (with_snapshot) last_snapshot_ = snap;
    for (auto& c : clients_)
      forget_connection(c);
    awaiting_handshake_.clear();
    replica_.reset();
    boot(snap);
    if (!failure_.empty()) return;
    // Everything applied before the crash was durable: the same tree at the
    // same zxid (the reboot may apply more, e.g. a leader's no-op entry).
    if (replica_->applied_zxid() < zxid) {
      return fail("restart lost entries: applied " +
                  std::to_string(replica_->applied_zxid().value()) + " < " +
                  std::to_string(zxid.value()));
    }
    if (replica_->applied_zxid() == zxid && replica_->tree().digest() != digest) {
      fail("restarted tree differs at zxid " + std::to_string(zxid.value()));
    }
  }

  std::string random_path() {
    static const char* names[] = {"a", "b", "c"};
    std::string p;
    const auto depth = 1 + rng_.below(2);
    for (std::uint64_t i = 0; i < depth; ++i)
      p += std::string("/") + names[rng_.below(3)];
    return p;
  }

  void send(SimClient& c, OpCode op, const pr::RequestBody& body, std::int32_t xid = 0) {
    if (c.conn == 0) return;
    if (xid == 0) xid = c.next_xid++;
    c.outstanding[xid] = op;
    order_[c.conn].push_back(xid);
    pr::Bytes frame;
    pr::append_request_frame(frame, pr::RequestHeader{xid, op}, body);
    replica_->bytes_received(c.conn, pr::ByteSpan(frame), steady_, wall_);
    flush();
  }

  void request(SimClient& c) {
    if (c.conn == 0 || awaiting_handshake_[c.conn]) return connect(c);
    const std::string path = random_path();
    switch (rng_.below(9)) {
      case 0:
      case 1: {
        const auto mode = static_cast<CreateMode>(rng_.below(5));  // incl. container
        return send(c, OpCode::Create2,
                    pr::CreateRequest{path, std::string("v"), open_acl_unsafe(), mode});
      }
      case 2:
        return send(c, OpCode::Delete, pr::DeleteRequest{path, -1});
      case 3:
        return send(
            c, OpCode::SetData,
            pr::SetDataRequest{path, std::to_string(rng_.below(1000)), rng_.chance(1, 4) ? 0 : -1});
      case 4:
        return send(c, OpCode::GetData, pr::GetDataRequest{path, rng_.chance(1, 2)});
      case 5:
        return send(c, OpCode::Exists, pr::ExistsRequest{path, rng_.chance(1, 2)});
      case 6:
        return send(c, OpCode::GetChildren2, pr::GetChildren2Request{path, rng_.chance(1, 2)});
      case 7: {
        pr::MultiRequest m;
        m.ops.push_back(pr::MultiOp{
            OpCode::Create,
            pr::CreateRequest{path, std::nullopt, open_acl_unsafe(), CreateMode::Ephemeral}});
        m.ops.push_back(pr::MultiOp{OpCode::SetData, pr::SetDataRequest{random_path(), "m", -1}});
        return send(c, OpCode::Multi, m);
      }
      default:
        return send(c, OpCode::Sync, pr::SyncRequest{path});
    }
  }

  void read_frames(SimClient& c) {
    std::size_t pos = 0;
    for (;;) {
      auto cut = pr::cut_frame(pr::ByteSpan(c.inbox).subspan(pos));
      if (cut.state != pr::FrameState::Frame) break;
      pos += cut.consumed;
      if (awaiting_handshake_[c.conn]) {
        awaiting_handshake_[c.conn] = false;
        auto resp = pr::decode_connect_response(cut.payload);
        if (!resp.ok()) return fail("bad handshake reply: " + resp.status().to_string());
        if (resp->session_id.value() == 0) {
          c.expired = true;  // reconnect with a new session next time
          c.session = SessionId(0);
        } else {
          if (c.session.value() != 0 && !c.expired && resp->session_id != c.session) {
            return fail("resumed a different session");
          }
          c.session = resp->session_id;
          c.password = resp->password;
          c.expired = false;
        }
        continue;
      }
      pr::JuteReader r(cut.payload);
      auto h = pr::decode_reply_header(r);
      if (!h.ok()) return fail("undecodable reply header");
      if (h->xid == pr::xid_watch_event) {
        if (h->zxid.value() <= c.max_reply_zxid) {
          std::ostringstream os;
          os << "watch event at zxid " << h->zxid.value() << " after a reply at zxid "
             << c.max_reply_zxid << " on connection " << c.conn;
          return fail(os.str());
        }
        continue;
      }
      auto& order = order_[c.conn];
      if (order.empty() || order.front() != h->xid) {
        return fail("reply xid " + std::to_string(h->xid) + " out of order on connection " +
                    std::to_string(c.conn));
      }
      order.erase(order.begin());
      c.outstanding.erase(h->xid);
      if (h->zxid.value() > 0) {
        if (h->zxid.value() < c.max_reply_zxid && h->xid > 0) {
          return fail("reply zxid went back on connection " + std::to_string(c.conn));
        }
        c.max_reply_zxid = std::max(c.max_reply_zxid, h->zxid.value());
        c.last_zxid_seen = std::max(c.last_zxid_seen, h->zxid.value());
      }
    }
    c.inbox.erase(c.inbox.begin(), c.inbox.begin() + static_cast<std::ptrdiff_t>(pos));
  }

  void check() {
    if (!failure_.empty() || !replica_) return;
    for (SessionId s : replica_->tree().sessions_with_ephemerals()) {
      if (!replica_->has_session(s)) {
        return fail("ephemerals of dead session " + std::to_string(s.value()));
      }
    }
  }

  std::uint64_t seed_;
  Random rng_;
  ReplicaConfig config_;
  std::unique_ptr<MemoryReplicaStorage> storage_;
  std::unique_ptr<Replica> replica_;
  std::optional<std::string> last_snapshot_;
  std::vector<SimClient> clients_;
  std::map<ConnId, bool> awaiting_handshake_;
  std::map<ConnId, std::vector<std::int32_t>> order_;
  ConnId next_conn_ = 1;
  TimeMs steady_{1000};
  TimeMs wall_{1'700'000'000'000};
  std::string failure_;
};

TEST(ReplicaSim, SeedsKeepEveryInvariant) {
  const std::uint64_t steps = env_or("COORD_SIM_STEPS", 400);
  std::vector<std::uint64_t> seeds;
  if (const char* one = std::getenv("COORD_SIM_SEED")) {
    seeds.push_back(std::strtoull(one, nullptr, 10));
  } else {
    const std::uint64_t n = env_or("COORD_SIM_SEEDS", 40);
    for (std::uint64_t s = 1; s <= n; ++s)
      seeds.push_back(s);
  }
  for (std::uint64_t seed : seeds) {
    Sim sim(seed);
    const std::string failure = sim.run(steps);
    ASSERT_TRUE(failure.empty()) << "seed " << seed << ": " << failure
                                 << "\nreplay: COORD_SIM_SEED=" << seed
                                 << " COORD_SIM_STEPS=" << steps << " coordd_sim_test";
  }
}

}  // namespace
}  // namespace coord::core
