// libcoord against real servers (label `integration`): one suite run
// against three backends, each a value of the test parameter:
//   Zk        a single Apache ZooKeeper 3.8 server,
//   Ensemble  three ZooKeeper 3.8 servers (QuorumPeerMain),
//   Coordd    a single coordd.
// Tests that leave the servers as they found them share one backend per
// suite and work below a chroot of their own ("/<test name>"); tests that
// kill servers start their own. ZooKeeper backends are skipped when java or
// the jars are missing, coordd when COORDD_BINARY is not set. Where coordd
// and ZooKeeper legitimately differ, the test says so.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "coord/client-lib/client.h"
#include "coord/testing/coord_server.h"
#include "coord/testing/skip.h"
#include "coord/testing/zk_ensemble.h"
#include "coord/testing/zk_server.h"

namespace coord {
namespace {

using namespace std::chrono_literals;
using testing::CoordServer;
using testing::CoordServerOptions;
using testing::ZkEnsemble;
using testing::ZkEnsembleOptions;
using testing::ZkServer;
using testing::ZkServerOptions;

// Collects strings from callbacks and lets the test wait for them.
class Recorder {
 public:
  void add(std::string s) {
    {
      std::lock_guard lock(mu_);
      items_.push_back(std::move(s));
    }
    cv_.notify_all();
  }
  // "<state> <code>: <message>" for each state change, with its reason.
  std::function<void(SessionState, const Status&)> state_reasons() {
    return [this](SessionState s, const Status& why) {
      add(std::string(session_state_name(s)) + " " + why.to_string());
    };
  }
  Watcher watcher(std::string tag) {
    return [this, tag](const WatchEvent& ev) {
      add(tag + " " + std::string(event_type_name(ev.type)) + " " + ev.path);
    };
  }
  // The first n items, waiting up to `timeout` for them.
  std::vector<std::string> wait(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return items_.size() >= n; });
    return items_;
  }
  std::vector<std::string> items() {
    std::lock_guard lock(mu_);
    return items_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> items_;
};

enum class Kind { Zk, Ensemble, Coordd };

std::string kind_name(Kind k) {
  switch (k) {
    case Kind::Zk:
      return "Zk";
    case Kind::Ensemble:
      return "Ensemble";
    case Kind::Coordd:
      return "Coordd";
  }
  return "?";
}

// ZooKeeper's tickTime in these tests: sessions may be 1 s to 10 s long.
constexpr int kZkTickMs = 500;

// One running backend of any kind.
class Backend {
 public:
  static std::string unavailable_reason(Kind k) {
    if (k == Kind::Coordd) return CoordServer::unavailable_reason();
    const std::string why = ZkServer::unavailable_reason();
    return why.empty() ? "" : "Apache ZooKeeper not available: " + why;
  }

  // zk_tick_ms: the single ZooKeeper's tickTime (the ensemble always uses
  // kZkTickMs).
  static std::unique_ptr<Backend> start(Kind k, std::string* error, int zk_tick_ms = kZkTickMs) {
    auto b = std::unique_ptr<Backend>(new Backend(k));
    b->zk_tick_ms_ = zk_tick_ms;
    switch (k) {
      case Kind::Zk: {
        ZkServerOptions o;
        o.tick_ms = zk_tick_ms;
        b->zk_ = ZkServer::start(o, error);
        if (!b->zk_) return nullptr;
        break;
      }
      case Kind::Ensemble: {
        ZkEnsembleOptions o;
        o.tick_ms = kZkTickMs;
        b->ensemble_ = ZkEnsemble::start(o, error);
        if (!b->ensemble_) return nullptr;
        break;
      }
      case Kind::Coordd: {
        CoordServerOptions o;
        // As short a session as the ZooKeeper backends allow.
        o.extra_args = {"--min-session-timeout-ms", "1000"};
        b->coordd_ = CoordServer::start(o, error);
        if (!b->coordd_) return nullptr;
        break;
      }
    }
    return b;
  }

  Kind kind() const { return kind_; }

  std::string connect_string() const {
    if (zk_) return zk_->address();
    if (ensemble_) return ensemble_->connect_string();
    return coordd_->address();
  }

  // The longest session the backend grants: 20 ticks for ZooKeeper,
  // coordd's default maximum.
  std::chrono::milliseconds session_timeout_max() const {
    if (coordd_) return std::chrono::milliseconds(limits::session_timeout_ms_max_default);
    return std::chrono::milliseconds(20 * (zk_ ? zk_tick_ms_ : kZkTickMs));
  }

  // Kills the server listening at `address`.
  void kill(const std::string& address) {
    if (zk_) zk_->kill();
    if (coordd_) coordd_->kill();
    if (ensemble_) {
      const int m = ensemble_->member_of(address);
      if (m >= 0) ensemble_->kill(m);
    }
  }
  bool restart(const std::string& address, std::string* error) {
    if (zk_) return zk_->restart(error);
    if (coordd_) return coordd_->restart(error);
    const int m = ensemble_->member_of(address);
    if (m < 0) {
      *error = address + " is no member";
      return false;
    }
    return ensemble_->restart(m, error);
  }
  void kill_all() {
    if (zk_) zk_->kill();
    if (coordd_) coordd_->kill();
    if (ensemble_) ensemble_->kill_all();
  }

 private:
  explicit Backend(Kind k) : kind_(k) {}
  Kind kind_;
  int zk_tick_ms_ = kZkTickMs;
  std::unique_ptr<ZkServer> zk_;
  std::unique_ptr<ZkEnsemble> ensemble_;
  std::unique_ptr<CoordServer> coordd_;
};

class BackendTest : public ::testing::TestWithParam<Kind> {
 protected:
  static void TearDownTestSuite() { shared_.reset(); }

  void SetUp() override {
    const std::string why = Backend::unavailable_reason(GetParam());
    if (!why.empty()) GTEST_SKIP() << why;
  }

  bool is(Kind k) const { return GetParam() == k; }

  // The suite's backend, and a chroot of this test's own on it.
  void use_shared() {
    if (!shared_ || shared_->kind() != GetParam()) {
      shared_.reset();
      std::string error;
      shared_ = Backend::start(GetParam(), &error);
      ASSERT_NE(shared_, nullptr) << error;
    }
    backend_ = shared_.get();
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& ch : name)
      if (ch == '/') ch = '-';
    chroot_ = "/" + name;
    auto root = connect_root();
    ASSERT_NE(root, nullptr);
    const Status s = root->create(chroot_, std::nullopt).status();
    ASSERT_TRUE(s.ok() || s.code() == ErrorCode::NodeExists) << s;
  }

  // A backend of this test's own, for tests that kill servers.
  void use_own(int zk_tick_ms = kZkTickMs) {
    std::string error;
    own_ = Backend::start(GetParam(), &error, zk_tick_ms);
    ASSERT_NE(own_, nullptr) << error;
    backend_ = own_.get();
    chroot_.clear();
  }

  std::unique_ptr<Client> connect(ClientOptions o = {}, std::string suffix = "") {
    if (o.servers.empty()) o.servers = backend_->connect_string() + chroot_ + suffix;
    return start_client(std::move(o));
  }
  std::unique_ptr<Client> connect_root() {
    ClientOptions o;
    o.servers = backend_->connect_string();
    return start_client(std::move(o));
  }

  Backend* backend_ = nullptr;
  std::string chroot_;
  std::unique_ptr<Backend> own_;
  static std::unique_ptr<Backend> shared_;

 private:
  static std::unique_ptr<Client> start_client(ClientOptions o) {
    auto c = Client::start(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return nullptr;
    const Status s = (*c)->wait_connected(20s);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) return nullptr;
    return std::move(*c);
  }
};

std::unique_ptr<Backend> BackendTest::shared_;

TEST_P(BackendTest, SessionAndEveryBasicOp) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  ClientOptions o;
  o.session_timeout = 100'000ms;
  auto c = connect(o);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->negotiated_timeout(), backend_->session_timeout_max())
      << "clamped to the server's maximum";
  EXPECT_NE(c->session_id().value(), 0);
  EXPECT_EQ(c->session_password().size(), 16u);
  EXPECT_NE(backend_->connect_string().find(c->connected_server()), std::string::npos)
      << c->connected_server();

  // create / exists / getData / setData / delete and their errors.
  ASSERT_EQ(c->create("/a", std::string("one")).value_or(""), "/a");
  EXPECT_EQ(c->create("/a", std::nullopt).code(), ErrorCode::NodeExists);
  EXPECT_EQ(c->create("/missing/x", std::nullopt).code(), ErrorCode::NoNode);
  EXPECT_EQ(c->create("bad", std::nullopt).code(), ErrorCode::BadArguments);
  auto d = c->get_data("/a");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->data, std::optional<std::string>("one"));
  EXPECT_EQ(d->stat.version, 0);
  auto st = c->set_data("/a", std::string("two"), 0);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->version, 1);
  EXPECT_EQ(c->set_data("/a", std::string("x"), 0).code(), ErrorCode::BadVersion);
  auto ex = c->exists("/a");
  ASSERT_TRUE(ex.ok());
  ASSERT_TRUE(ex->has_value());
  EXPECT_EQ((*ex)->data_length, 3);
  auto none = c->exists("/nope");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(c->get_data("/nope").code(), ErrorCode::NoNode);

  // Null data stays null.
  ASSERT_TRUE(c->create("/null", std::nullopt).ok());
  EXPECT_FALSE(c->get_data("/null")->data.has_value());

  // Sequential, ephemeral, container, TTL.
  auto s1 = c->create("/a/seq-", std::nullopt, CreateMode::PersistentSequential);
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(*s1, "/a/seq-0000000000");
  auto e = c->run(ops::Create{"/a/eph", std::string("e"), CreateMode::Ephemeral});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->stat.ephemeral_owner, c->session_id().value());
  auto cont = c->run(ops::Create{"/cont", std::nullopt, CreateMode::Container});
  ASSERT_TRUE(cont.ok()) << cont.status();
  auto ttl = c->run(
      ops::Create{"/ttl", std::nullopt, CreateMode::PersistentWithTtl, open_acl_unsafe(), 60'000});
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(ttl->stat.ephemeral_owner, 0);

  // Children.
  auto kids = c->get_children("/a");
  ASSERT_TRUE(kids.ok());
  EXPECT_EQ(std::set<std::string>(kids->begin(), kids->end()),
            (std::set<std::string>{"seq-0000000000", "eph"}));
  auto kids2 = c->run(ops::GetChildren2{"/a"});
  ASSERT_TRUE(kids2.ok());
  EXPECT_EQ(kids2->stat.num_children, 2);
  EXPECT_EQ(c->remove("/a").code(), ErrorCode::NotEmpty);
  auto total = c->run(ops::GetAllChildrenNumber{"/a"});
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(*total, 2);
  auto eph = c->run(ops::GetEphemerals{"/"});
  ASSERT_TRUE(eph.ok()) << eph.status();
  EXPECT_EQ(*eph, std::vector<std::string>{"/a/eph"});

  // sync.
  auto synced = c->run(ops::Sync{"/a"});
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(*synced, "/a");

  // ACLs and digest auth.
  ASSERT_TRUE(c->add_auth("digest", "alice:secret").ok());
  auto who = c->run(ops::WhoAmI{});
  ASSERT_TRUE(who.ok()) << who.status();
  bool alice = false;
  for (const auto& info : *who)
    alice |= info.auth_scheme == "digest" && info.user == "alice";
  EXPECT_TRUE(alice);
  ASSERT_TRUE(
      c->run(ops::Create{"/secret", std::string("s"), CreateMode::Persistent, creator_all_acl()})
          .ok());
  auto acl = c->run(ops::GetAcl{"/secret"});
  ASSERT_TRUE(acl.ok()) << acl.status();
  ASSERT_EQ(acl->acl.size(), 1u);
  EXPECT_EQ(acl->acl[0].id.scheme, "digest");
  EXPECT_EQ(acl->acl[0].id.id.substr(0, 6), "alice:");
  auto other = connect();
  ASSERT_NE(other, nullptr);
  // In an ensemble `other` may read from another member: sync first (a
  // ZooKeeper read sees a write of another session only after a sync).
  ASSERT_TRUE(other->run(ops::Sync{"/secret"}).ok());
  EXPECT_EQ(other->get_data("/secret").code(), ErrorCode::NoAuth);
  auto set_acl = c->run(ops::SetAcl{"/secret", open_acl_unsafe(), 0});
  ASSERT_TRUE(set_acl.ok()) << set_acl.status();
  EXPECT_EQ(set_acl->aversion, 1);
  ASSERT_TRUE(other->run(ops::Sync{"/secret"}).ok());
  EXPECT_TRUE(other->get_data("/secret").ok());

  // Delete.
  EXPECT_EQ(c->remove("/a/eph", 5).code(), ErrorCode::BadVersion);
  EXPECT_TRUE(c->remove("/a/eph").ok());
  EXPECT_EQ(c->remove("/a/eph").code(), ErrorCode::NoNode);
}

TEST_P(BackendTest, MultiAndMultiRead) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->create("/m", std::string("0")).ok());
  auto ok = c->multi(MultiBuilder()
                         .create("/m/a", std::string("a"))
                         .set_data("/m", std::string("1"), 0)
                         .check("/m", 1)
                         .create("/m/b", std::nullopt, CreateMode::EphemeralSequential));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->size(), 4u);
  EXPECT_EQ((*ok)[0].type, protocol::OpCode::Create);
  EXPECT_EQ((*ok)[0].path, "/m/a");
  EXPECT_EQ((*ok)[1].type, protocol::OpCode::SetData);
  EXPECT_EQ((*ok)[1].stat.version, 1);
  EXPECT_EQ((*ok)[3].path, "/m/b0000000001");

  // A failing op rolls back the whole multi and names the failure.
  auto bad = c->multi(MultiBuilder().create("/m/c", std::nullopt).remove("/m/none"));
  EXPECT_EQ(bad.code(), ErrorCode::NoNode);
  EXPECT_NE(bad.status().message().find("#1"), std::string::npos) << bad.status();
  EXPECT_FALSE(c->exists("/m/c")->has_value()) << "the create was rolled back";

  auto reads = c->run(ops::MultiRead{{"/m", "/none"}, {"/m"}});
  ASSERT_TRUE(reads.ok()) << reads.status();
  ASSERT_EQ(reads->size(), 3u);
  EXPECT_EQ((*reads)[0].type, protocol::OpCode::GetData);
  EXPECT_EQ((*reads)[0].data, std::optional<std::string>("1"));
  EXPECT_EQ((*reads)[1].type, protocol::OpCode::Error);
  EXPECT_EQ((*reads)[1].err, ErrorCode::NoNode);
  EXPECT_EQ((*reads)[2].children.size(), 2u);
}

TEST_P(BackendTest, WatchesOfEveryKindAndOrdering) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  Recorder rec;  // outlives the clients whose watchers use it
  auto c = connect();
  auto other = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(c->create("/w", std::string("x")).ok());

  // A watch event reaches us before the reply of the request that caused it.
  ASSERT_TRUE(c->get_data("/w", rec.watcher("data")).ok());
  c->submit(ops::SetData{"/w", std::string("y")},
            [&rec](Result<Stat> r) { rec.add(r.ok() ? "reply" : "reply-error"); });
  EXPECT_EQ(rec.wait(2), (std::vector<std::string>{"data NodeDataChanged /w", "reply"}));

  // Exist watch on a missing node, child watch, delete.
  ASSERT_FALSE(c->exists("/w/k", rec.watcher("exist"))->has_value());
  ASSERT_TRUE(c->get_children("/w", rec.watcher("child")).ok());
  ASSERT_TRUE(other->create("/w/k", std::nullopt).ok());
  auto got = rec.wait(4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(std::set<std::string>(got.begin() + 2, got.end()),
            (std::set<std::string>{"exist NodeCreated /w/k", "child NodeChildrenChanged /w"}));
  ASSERT_TRUE(c->get_data("/w/k", rec.watcher("gone")).ok());
  ASSERT_TRUE(other->remove("/w/k").ok());
  EXPECT_EQ(rec.wait(5).at(4), "gone NodeDeleted /w/k");

  // Persistent recursive watch: every descendant, stays armed.
  ASSERT_TRUE(
      c->run(ops::AddWatch{"/w", AddWatchMode::PersistentRecursive, rec.watcher("rec")}).ok());
  ASSERT_TRUE(other->create("/w/r1", std::nullopt).ok());
  ASSERT_TRUE(other->set_data("/w/r1", std::string("z")).ok());
  auto rec_events = rec.wait(7);
  ASSERT_EQ(rec_events.size(), 7u);
  EXPECT_EQ(rec_events[5], "rec NodeCreated /w/r1");
  EXPECT_EQ(rec_events[6], "rec NodeDataChanged /w/r1");

  // checkWatches / removeWatches.
  EXPECT_TRUE(c->run(ops::CheckWatches{"/w", WatcherType::Any}).ok());
  EXPECT_EQ(c->run(ops::CheckWatches{"/w/none", WatcherType::Data}).code(), ErrorCode::NoWatcher);
  ASSERT_TRUE(c->get_data("/w/r1", rec.watcher("removed")).ok());
  ASSERT_TRUE(c->run(ops::RemoveWatches{"/w/r1", WatcherType::Data}).ok());
  EXPECT_EQ(rec.wait(8).at(7), "removed DataWatchRemoved /w/r1");
  ASSERT_TRUE(c->run(ops::RemoveWatches{"/w", WatcherType::Any}).ok());
  EXPECT_EQ(rec.wait(9).at(8), "rec PersistentWatchRemoved /w");
  ASSERT_TRUE(other->set_data("/w/r1", std::string("after")).ok());
  ASSERT_TRUE(c->run(ops::Sync{"/w"}).ok());
  EXPECT_EQ(rec.items().size(), 9u) << "no event after the watches were removed";
}

TEST_P(BackendTest, TenThousandPipelinedRequestsAnsweredInOrder) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->create("/p", std::nullopt).ok());
  constexpr int kRequests = 10'000;
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::int32_t> versions;
  std::promise<void> all_done;
  std::atomic<int> errors{0};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRequests; ++i) {
    c->submit(
        ops::SetData{"/p", std::string("v")},
        [&, i](Result<Stat> r) {
          std::lock_guard lock(mu);
          order.push_back(i);
          versions.push_back(r.ok() ? r->version : -1);
          if (!r.ok()) ++errors;
          if (static_cast<int>(order.size()) == kRequests) all_done.set_value();
        },
        60s);
  }
  ASSERT_EQ(all_done.get_future().wait_for(60s), std::future_status::ready);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  EXPECT_EQ(errors.load(), 0);
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(order[i], i) << "callbacks out of submission order";
    ASSERT_EQ(versions[i], i + 1) << "the server applied them out of order";
  }
  std::printf("10000 pipelined setData in %lld ms\n", static_cast<long long>(ms.count()));

  // Reads pipeline the same way (no disk sync on the server's side).
  std::atomic<int> reads{0};
  std::atomic<int> read_errors{0};
  std::promise<void> reads_done;
  const auto read_start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRequests; ++i) {
    c->submit(
        ops::GetData{"/p"},
        [&](Result<DataResult> r) {
          if (!r.ok() || r->stat.version != kRequests) ++read_errors;
          if (++reads == kRequests) reads_done.set_value();
        },
        60s);
  }
  ASSERT_EQ(reads_done.get_future().wait_for(60s), std::future_status::ready);
  EXPECT_EQ(read_errors.load(), 0);
  std::printf("10000 pipelined getData in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - read_start)
                                         .count()));
}

// Sessions of one runtime against a real server: each pipelines writes to a
// node of its own, and one of them is destroyed with requests in flight.
// Every session's callbacks run in its own order on the one event thread,
// and the server applied each session's writes in order.
TEST_P(BackendTest, SessionsOfOneRuntimePipelineInTheirOwnOrder) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  auto runtime = ClientRuntime::start();
  constexpr int kSessions = 12;
  constexpr int kWrites = 300;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kSessions; ++i) {
    ClientOptions o;
    o.runtime = runtime;
    clients.push_back(connect(o));
    ASSERT_NE(clients.back(), nullptr);
    ASSERT_TRUE(clients.back()->create("/n" + std::to_string(i), std::nullopt).ok());
  }
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::vector<std::vector<std::int32_t>> versions(kSessions);
  std::atomic<int> errors{0};
  std::atomic<int> left{(kSessions - 1) * kWrites};
  std::promise<void> done;
  for (int k = 0; k < kWrites; ++k) {
    for (int i = 0; i < kSessions; ++i) {
      clients[i]->submit(
          ops::SetData{"/n" + std::to_string(i), std::string("v")},
          [&, i](Result<Stat> r) {
            std::lock_guard lock(mu);
            threads.insert(std::this_thread::get_id());
            if (i == 0) return;  // the session destroyed below
            if (!r.ok()) ++errors;
            versions[i].push_back(r.ok() ? r->version : -1);
            if (--left == 0) done.set_value();
          },
          60s);
    }
  }
  clients[0].reset();
  ASSERT_EQ(done.get_future().wait_for(60s), std::future_status::ready);
  EXPECT_EQ(errors.load(), 0);
  for (int i = 1; i < kSessions; ++i) {
    ASSERT_EQ(versions[i].size(), static_cast<std::size_t>(kWrites));
    for (int k = 0; k < kWrites; ++k)
      ASSERT_EQ(versions[i][k], k + 1) << "session " << i;
  }
  EXPECT_EQ(threads.size(), 1u);
}

// Requests made in callbacks are written by the event thread once the
// callbacks at hand have run; the rest of a write the socket did not take
// goes on the I/O thread. Callbacks and the test's thread submit at the
// same time, small and big requests mixed so that writes stay partial: the
// server must receive every byte, in submission order.
TEST_P(BackendTest, RequestsFromCallbacksAndOtherThreadsLeaveInSubmissionOrder) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->create("/q", std::nullopt).ok());
  constexpr int kRequests = 120;
  constexpr int kChainsFromTheTest = 4;
  // 10 B, 64 KiB, 400 KiB, in turn: several big ones in flight fill the
  // socket's buffer.
  auto payload = [](int i) {
    static constexpr std::size_t sizes[] = {10, 64 * 1024, 400 * 1024};
    return std::string(sizes[i % 3], static_cast<char>('a' + i % 26));
  };
  std::mutex mu;
  int submitted = 0;
  std::vector<std::string> created(kRequests);
  std::vector<std::string> failed;
  std::atomic<int> answered{0};
  std::promise<void> done;
  // Numbers the request and submits it under `mu`, so that the number is
  // its place in the client's submission order.
  std::function<void()> submit_next = [&] {
    std::lock_guard lock(mu);
    if (submitted == kRequests) return;
    const int i = submitted++;
    c->submit(
        ops::Create{"/q/n-", payload(i), CreateMode::PersistentSequential},
        [&, i](Result<ops::Create::Value> r) {
          {
            std::lock_guard lock(mu);
            if (r.ok()) {
              created[i] = r->path;
            } else {
              failed.push_back(r.status().to_string());
            }
          }
          // Two more from the callback: the chains grow until all are sent.
          submit_next();
          submit_next();
          if (++answered == kRequests) done.set_value();
        },
        60s);
  };
  for (int k = 0; k < kChainsFromTheTest; ++k) {
    submit_next();
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(done.get_future().wait_for(120s), std::future_status::ready);
  ASSERT_TRUE(failed.empty()) << failed.front();
  for (int i = 0; i < kRequests; ++i) {
    char want[32];
    std::snprintf(want, sizeof want, "/q/n-%010d", i);
    ASSERT_EQ(created[i], want) << "request " << i << " applied out of submission order";
    auto got = c->get_data(created[i]);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->data, payload(i)) << "request " << i << " arrived damaged";
  }
}

TEST_P(BackendTest, SlowCallbacksPauseReadingWithoutLosingReplies) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  ClientOptions o;
  o.event_queue_max = 8;  // the I/O thread stops reading beyond 8 waiting callbacks
  auto c = connect(o);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->create("/slow", std::string("x")).ok());
  constexpr int kRequests = 300;
  std::vector<int> order;
  std::promise<void> done;
  for (int i = 0; i < kRequests; ++i) {
    c->submit(ops::GetData{"/slow"}, [&, i](Result<DataResult> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      std::this_thread::sleep_for(1ms);  // a deliberately slow consumer
      order.push_back(i);
      if (i == kRequests - 1) done.set_value();
    });
  }
  ASSERT_EQ(done.get_future().wait_for(30s), std::future_status::ready);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i)
    ASSERT_EQ(order[i], i);
  EXPECT_EQ(c->state(), SessionState::Connected);
}

TEST_P(BackendTest, ReconnectResumesSessionAndRearmsWatches) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  Recorder states;
  ClientOptions o;
  o.on_state = [&states](SessionState s) { states.add(std::string(session_state_name(s))); };
  Recorder rec;
  auto c = connect(o);
  auto other = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_NE(other, nullptr);
  const SessionId sid = c->session_id();
  ASSERT_TRUE(c->create("/r", std::string("1")).ok());
  ASSERT_TRUE(c->create("/r/eph", std::nullopt, CreateMode::Ephemeral).ok());
  ASSERT_TRUE(c->get_data("/r", rec.watcher("data")).ok());
  ASSERT_FALSE(c->exists("/r/new", rec.watcher("exist"))->has_value());
  ASSERT_TRUE(
      c->run(ops::AddWatch{"/r", AddWatchMode::Persistent, rec.watcher("persistent")}).ok());

  c->drop_connection_for_testing(1500ms);
  // While c is away: change what it watches.
  ASSERT_TRUE(states.wait(2).size() >= 2);
  ASSERT_TRUE(other->set_data("/r", std::string("2")).ok());
  // A request submitted while disconnected waits for the next connection.
  // (The sync before it: in an ensemble c may come back through a member
  // that has not yet applied other's write.)
  auto synced = c->submit(ops::Sync{"/r"});
  auto queued = c->submit(ops::GetData{"/r"});
  ASSERT_TRUE(c->wait_connected(20s).ok());
  EXPECT_EQ(c->session_id(), sid) << "the session was resumed";
  ASSERT_TRUE(synced.get().ok());
  auto q = queued.get();
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->data, std::optional<std::string>("2"));
  // setWatches told the server our last zxid: the data watch fires at once,
  // and the persistent watch on the same path hears of it too.
  auto events = rec.wait(2);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(std::set<std::string>(events.begin(), events.begin() + 2),
            (std::set<std::string>{"data NodeDataChanged /r", "persistent NodeDataChanged /r"}));
  // The exist watch and the persistent watch were re-armed.
  ASSERT_TRUE(other->create("/r/new", std::nullopt).ok());
  events = rec.wait(4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(
      std::set<std::string>(events.begin() + 2, events.end()),
      (std::set<std::string>{"exist NodeCreated /r/new", "persistent NodeChildrenChanged /r"}));
  ASSERT_TRUE(other->run(ops::Sync{"/r"}).ok());
  EXPECT_TRUE(other->exists("/r/eph")->has_value()) << "the ephemeral survived the reconnect";
  EXPECT_EQ(states.items(), (std::vector<std::string>{"Connected", "Disconnected", "Connected"}));
}

TEST_P(BackendTest, ManyWatchesAreReArmedInSeveralSetWatchesFrames) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  Recorder rec;
  auto c = connect();
  auto other = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_NE(other, nullptr);
  // 3,000 exist watches on 60-byte paths: about 190 KiB of paths, more than
  // one setWatches frame may carry.
  constexpr int kWatches = 3000;
  const std::string prefix = "/watch-" + std::string(45, 'p') + "-";
  std::vector<std::future<Result<std::optional<Stat>>>> fs;
  for (int i = 0; i < kWatches; ++i) {
    fs.push_back(c->submit(ops::Exists{prefix + std::to_string(10000 + i), rec.watcher("w")}));
  }
  for (auto& f : fs)
    ASSERT_TRUE(f.get().ok());
  c->drop_connection_for_testing(500ms);
  ASSERT_TRUE(c->wait_connected(20s).ok());
  ASSERT_TRUE(c->run(ops::Sync{"/"}).ok());
  // Both the first and the last path were re-registered.
  ASSERT_TRUE(other->create(prefix + "10000", std::nullopt).ok());
  ASSERT_TRUE(other->create(prefix + std::to_string(10000 + kWatches - 1), std::nullopt).ok());
  const auto events = rec.wait(2);
  EXPECT_EQ(
      std::set<std::string>(events.begin(), events.end()),
      (std::set<std::string>{"w NodeCreated " + prefix + "10000",
                             "w NodeCreated " + prefix + std::to_string(10000 + kWatches - 1)}));
}

// The server the client is connected to dies. Ensemble: the client moves
// to another member at once and keeps its session, ephemerals and watches.
// Single server (ZooKeeper or coordd): the server comes back on the same
// port within the session timeout and the client resumes its session.
TEST_P(BackendTest, ConnectedServerKilledSessionSurvives) {
  // A restarted ZooKeeper JVM has taken up to half a minute on a loaded
  // machine: ticks of 3 s allow the 60 s session that covers it.
  ASSERT_NO_FATAL_FAILURE(use_own(3000));
  Recorder states;
  Recorder reasons;
  Recorder rec;
  ClientOptions o;
  o.session_timeout = 60'000ms;
  o.on_state = [&states](SessionState s) { states.add(std::string(session_state_name(s))); };
  o.on_state_change = reasons.state_reasons();
  auto c = connect(o);
  ASSERT_NE(c, nullptr);
  const SessionId sid = c->session_id();
  ASSERT_TRUE(c->create("/k", std::string("1")).ok());
  ASSERT_TRUE(c->create("/k/eph", std::nullopt, CreateMode::Ephemeral).ok());
  ASSERT_TRUE(c->get_data("/k", rec.watcher("data")).ok());
  ASSERT_TRUE(
      c->run(ops::AddWatch{"/k", AddWatchMode::PersistentRecursive, rec.watcher("tree")}).ok());

  const std::string victim = c->connected_server();
  EXPECT_TRUE(c->last_error().ok()) << c->last_error();
  backend_->kill(victim);
  ASSERT_EQ(states.wait(2).size(), 2u);
  // The reason for the loss reaches the state callback and last_error():
  // which server, and what the socket said.
  const auto why = reasons.wait(2);
  ASSERT_EQ(why.size(), 2u);
  EXPECT_EQ(why[0], "Connected Ok");
  EXPECT_TRUE(why[1].starts_with("Disconnected ConnectionLoss: " + victim + ": connection lost: "))
      << why[1];
  EXPECT_NE(why[1].find("read: "), std::string::npos) << why[1];
  EXPECT_EQ(c->last_error().code(), ErrorCode::ConnectionLoss);
  // In flight across the outage: waits for a server.
  auto queued = c->submit(ops::SetData{"/k", std::string("2")}, 90s);
  if (!is(Kind::Ensemble)) {
    const auto begin = std::chrono::steady_clock::now();
    std::string error;
    ASSERT_TRUE(backend_->restart(victim, &error)) << error;
    std::printf("the server was back in %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - begin)
                                           .count()));
  }
  const Status up = c->wait_connected(60s);
  ASSERT_TRUE(up.ok()) << up << " (the client's reason says which server and why)";
  EXPECT_EQ(c->session_id(), sid);
  if (is(Kind::Ensemble)) {
    EXPECT_NE(c->connected_server(), victim) << "moved to another member";
  }
  auto st = queued.get();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->version, 1);
  auto events = rec.wait(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::set<std::string>(events.begin(), events.end()),
            (std::set<std::string>{"data NodeDataChanged /k", "tree NodeDataChanged /k"}))
      << "the re-registered watches saw the queued write";
  auto eph = c->exists("/k/eph");
  ASSERT_TRUE(eph.ok());
  EXPECT_TRUE(eph->has_value()) << "the session and its ephemeral survived";
  // The persistent watch stays armed on the new connection; another
  // session's write reaches it.
  auto other = connect();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->create("/k/new", std::nullopt).ok());
  EXPECT_EQ(rec.wait(3).at(2), "tree NodeCreated /k/new");
  EXPECT_EQ(states.items(), (std::vector<std::string>{"Connected", "Disconnected", "Connected"}));
}

TEST_P(BackendTest, SessionExpiryAndClose) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  Recorder states;
  ClientOptions o;
  o.on_state = [&states](SessionState s) { states.add(std::string(session_state_name(s))); };
  auto a = connect(o);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->create("/e", std::nullopt, CreateMode::Ephemeral).ok());

  // While a is away, another client takes over a's session and closes it;
  // a's reconnect is then answered "session expired".
  a->drop_connection_for_testing(3000ms);
  ASSERT_EQ(states.wait(2).size(), 2u);
  ClientOptions thief;
  thief.session_id = a->session_id();
  thief.session_password = a->session_password();
  auto b = connect(thief);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->session_id(), a->session_id());
  ASSERT_TRUE(b->close().ok());
  EXPECT_EQ(b->state(), SessionState::Closed);
  EXPECT_EQ(b->get_data("/").code(), ErrorCode::Closing);

  const auto seen = states.wait(3, 20s);
  EXPECT_EQ(seen, (std::vector<std::string>{"Connected", "Disconnected", "Expired"}));
  EXPECT_EQ(a->state(), SessionState::Expired);
  EXPECT_EQ(a->last_error().code(), ErrorCode::SessionExpired);
  EXPECT_NE(a->last_error().message().find("reports the session expired"), std::string::npos)
      << a->last_error();
  EXPECT_EQ(a->get_data("/").code(), ErrorCode::SessionExpired) << "calls fail fast";
  EXPECT_EQ(a->wait_connected(1s).code(), ErrorCode::SessionExpired);

  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->run(ops::Sync{"/"}).ok());
  EXPECT_FALSE(c->exists("/e")->has_value()) << "the expired session's ephemeral is gone";
}

// Every server down for longer than the session timeout: the client
// declares the session expired itself, reports Expired once, and every
// later call fails at once.
TEST_P(BackendTest, AllServersDownLongerThanTheTimeoutExpiresLocally) {
  ASSERT_NO_FATAL_FAILURE(use_own());
  Recorder states;
  ClientOptions o;
  o.session_timeout = 2000ms;
  o.on_state = [&states](SessionState s) { states.add(std::string(session_state_name(s))); };
  auto c = connect(o);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->negotiated_timeout(), 2000ms);
  backend_->kill_all();
  // A request while nobody answers times out instead of hanging.
  auto slow = c->run(ops::GetData{"/"}, 300ms);
  EXPECT_TRUE(slow.code() == ErrorCode::OperationTimeout ||
              slow.code() == ErrorCode::ConnectionLoss)
      << slow.status();
  const auto seen = states.wait(3, 10s);
  EXPECT_EQ(seen, (std::vector<std::string>{"Connected", "Disconnected", "Expired"}));
  const auto t0 = std::chrono::steady_clock::now();
  const Status expired = c->get_data("/").status();
  EXPECT_EQ(expired.code(), ErrorCode::SessionExpired);
  EXPECT_NE(expired.message().find("no server reached within the session timeout"),
            std::string::npos)
      << expired;
  EXPECT_NE(expired.message().find(" (the last attempt: ConnectionLoss: 127.0.0.1:"),
            std::string::npos)
      << "says why the last attempt failed: " << expired;
  EXPECT_EQ(c->last_error().to_string(), expired.to_string()) << "the reason stays queryable";
  EXPECT_EQ(c->create("/x", std::nullopt).code(), ErrorCode::SessionExpired);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "calls fail fast";
  // Still once after a while (no second Expired from later attempts).
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(states.items(), seen);
}

// Completions of different ops, successes and failures, blocking and
// asynchronous forms mixed: callbacks run in submission order.
TEST_P(BackendTest, CallbacksOrderedAcrossOpsAndErrors) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  auto c = connect();
  ASSERT_NE(c, nullptr);
  std::mutex mu;
  std::vector<std::string> order;
  auto note = [&](std::string what) {
    std::lock_guard lock(mu);
    order.push_back(std::move(what));
  };
  constexpr int kRounds = 200;
  std::vector<std::string> expected;
  std::promise<void> done;
  for (int i = 0; i < kRounds; ++i) {
    const std::string p = "/o" + std::to_string(i);
    c->submit(ops::Create{p, std::string("x")}, [&, i](Result<CreateResult> r) {
      note("create " + std::to_string(i) + " " + std::string(r.ok() ? "ok" : "err"));
    });
    c->submit(ops::Create{p, std::nullopt}, [&, i](Result<CreateResult> r) {
      note("dup " + std::to_string(i) + " " + std::string(error_name(r.code())));
    });
    c->submit(ops::Exists{p + "/none"}, [&, i](Result<std::optional<Stat>> r) {
      note("exists " + std::to_string(i) + " " + (r.ok() && !r->has_value() ? "none" : "?"));
    });
    c->submit(ops::SetData{p, std::string("y"), 0}, [&, i](Result<Stat> r) {
      note("set " + std::to_string(i) + " " + (r.ok() ? std::to_string(r->version) : "err"));
    });
    c->submit(ops::Delete{p, 0}, [&, i](Result<std::monostate> r) {
      note("delete " + std::to_string(i) + " " + std::string(error_name(r.code())));
    });
    c->submit(ops::Delete{p}, [&, i](Result<std::monostate> r) {
      note("gone " + std::to_string(i) + " " + std::string(error_name(r.code())));
      if (i == kRounds - 1) done.set_value();
    });
    const std::string n = std::to_string(i);
    expected.insert(expected.end(),
                    {"create " + n + " ok", "dup " + n + " NodeExists", "exists " + n + " none",
                     "set " + n + " 1", "delete " + n + " BadVersion", "gone " + n + " Ok"});
  }
  ASSERT_EQ(done.get_future().wait_for(60s), std::future_status::ready);
  std::lock_guard lock(mu);
  EXPECT_EQ(order, expected);
}

TEST_P(BackendTest, ChrootAndAuthFailure) {
  ASSERT_NO_FATAL_FAILURE(use_shared());
  Recorder states;
  auto root = connect();
  ASSERT_NE(root, nullptr);
  ASSERT_TRUE(root->create("/app", std::nullopt).ok());
  Recorder rec;
  auto c = connect({}, "/app");
  ASSERT_NE(c, nullptr);
  ASSERT_FALSE(c->exists("/x", rec.watcher("exist"))->has_value());
  auto created = c->create("/x", std::string("in-chroot"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, "/x");
  EXPECT_EQ(rec.wait(1).at(0), "exist NodeCreated /x");
  ASSERT_TRUE(root->run(ops::Sync{"/app"}).ok());
  EXPECT_EQ(root->get_data("/app/x")->data, std::optional<std::string>("in-chroot"));
  auto kids = c->get_children("/");
  ASSERT_TRUE(kids.ok());
  EXPECT_EQ(*kids, std::vector<std::string>{"x"});

  // An auth scheme the server does not know ends the session's usability.
  ClientOptions o;
  o.on_state = [&states](SessionState s) { states.add(std::string(session_state_name(s))); };
  auto bad = connect(o);
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->add_auth("nosuchscheme", "x").code(), ErrorCode::AuthFailed);
  EXPECT_EQ(bad->state(), SessionState::AuthFailed);
  EXPECT_EQ(bad->get_data("/").code(), ErrorCode::AuthFailed);
  EXPECT_EQ(bad->last_error().code(), ErrorCode::AuthFailed);
  EXPECT_NE(bad->last_error().message().find("rejected the credentials (AuthFailed)"),
            std::string::npos)
      << bad->last_error();
}

INSTANTIATE_TEST_SUITE_P(, BackendTest, ::testing::Values(Kind::Zk, Kind::Ensemble, Kind::Coordd),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return kind_name(info.param);
                         });

}  // namespace
}  // namespace coord

// A backend that cannot run here (no Java or ZooKeeper jars) makes ctest
// report "Skipped" with the reason, not "Passed".
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return coord::testing::exit_code(RUN_ALL_TESTS());
}
