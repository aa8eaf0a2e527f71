// registry/ against real servers (label `integration`): ServiceRegistry and
// ServiceDiscovery against a single Apache ZooKeeper 3.8 and a single
// coordd, with Apache Curator's x-discovery (Debian 5.4 jars, through
// tests/curator/CuratorPeer.java) on the other side where interoperation is
// tested. Skipped without java / the jars, or without COORDD_BINARY.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "coord/registry/service_registry.h"
#include "coord/testing/recipe_support.h"

namespace coord {
namespace {

using namespace std::chrono_literals;
using recipe_test::eventually;
using recipe_test::Kind;
using recipe_test::Process;
using recipe_test::Server;

constexpr std::chrono::milliseconds kSession{2000};

std::vector<std::string> ids_of(const std::vector<ServiceInstance>& v) {
  std::vector<std::string> out;
  for (const auto& i : v)
    out.push_back(i.id);
  return out;
}

TEST(ServiceInstanceJson, WritesCuratorsLayoutAndReadsItBack) {
  ServiceInstance i;
  i.name = "web";
  i.id = "web-1";
  i.address = "10.0.0.7";
  i.port = 8080;
  i.metadata = {{"zone", "eu-1"}};
  i.registration_time_utc_ms = 1733400000000;
  const std::string json = to_curator_json(i);
  EXPECT_EQ(json, R"({"name":"web","id":"web-1","address":"10.0.0.7","port":8080,"sslPort":null,)"
                  R"("payload":{"@class":"java.util.LinkedHashMap","zone":"eu-1"},)"
                  R"("registrationTimeUTC":1733400000000,"serviceType":"DYNAMIC","uriSpec":null})");
  auto back = parse_curator_json(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, i);
}

TEST(ServiceInstanceJson, RejectsWhatIsNotAnInstance) {
  EXPECT_EQ(parse_curator_json("not json").code(), ErrorCode::BadArguments);
  EXPECT_EQ(parse_curator_json("[]").code(), ErrorCode::BadArguments);
  EXPECT_EQ(parse_curator_json(R"({"id":"x"})").code(), ErrorCode::BadArguments);  // no name
  EXPECT_EQ(parse_curator_json(R"({"name":"a","id":"x","port":70000})").code(),
            ErrorCode::BadArguments);
  // A payload that is not a map of strings is kept as it is.
  auto odd = parse_curator_json(R"({"name":"a","id":"x","payload":[1,2]})");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->payload_json, "[1,2]");
  EXPECT_NE(to_curator_json(*odd).find(R"("payload":[1,2])"), std::string::npos);
}

class RegistryTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    const std::string why = Server::unavailable_reason(GetParam());
    if (!why.empty()) GTEST_SKIP() << why;
    std::string error;
    server_ = Server::start(GetParam(), &error);
    ASSERT_NE(server_, nullptr) << error;
    dir_ = ::testing::TempDir() + "coord-registry-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& ch : dir_)
      if (ch == '/' && &ch > dir_.data() + ::testing::TempDir().size()) ch = '-';
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<ManagedClient> session() {
    ClientOptions o;
    o.servers = server_->address();
    o.session_timeout = kSession;
    auto mc = ManagedClient::start(o);
    EXPECT_TRUE(mc.ok());
    EXPECT_TRUE((*mc)->wait_connected(20s).ok());
    return std::move(*mc);
  }

  ServiceInstance instance(const std::string& id, int port) {
    ServiceInstance i;
    i.name = "web";
    i.id = id;
    i.address = "127.0.0.1";
    i.port = port;
    i.metadata = {{"zone", "cpp"}};
    return i;
  }

  std::vector<std::string> java(std::string* why) {
    return recipe_test::curator_peer(COORD_CURATOR_PEER_SOURCE, dir_, why);
  }

  std::unique_ptr<Server> server_;
  std::string dir_;
};

void discovery_follows_the_registry(ManagedClient& a, ManagedClient& b, bool persistent) {
  auto reg = ServiceRegistry::start(a);
  ASSERT_TRUE(reg.ok());
  DiscoveryOptions o;
  o.name = "web";
  o.persistent_watch = persistent;
  std::atomic<int> changes{0};
  o.on_change = [&](const std::vector<ServiceInstance>&) { ++changes; };
  auto d = ServiceDiscovery::start(b, o);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE((*d)->await_loaded(10s).ok());
  EXPECT_TRUE((*d)->instances().empty());
  EXPECT_EQ((*d)->uses_persistent_watch(), persistent);

  ServiceInstance i1, i2;
  i1.name = i2.name = "web";
  i1.id = "w1";
  i2.id = "w2";
  i1.port = 1001;
  i2.port = 1002;
  ASSERT_TRUE((*reg)->register_instance(i1).ok());
  ASSERT_TRUE((*reg)->register_instance(i2).ok());
  auto has = [&](std::vector<std::string> want) {
    return eventually([&] { return ids_of((*d)->instances()) == want; }, 10s);
  };
  ASSERT_TRUE(has({"w1", "w2"}));
  EXPECT_FALSE((*d)->stale());

  // Updated in place: same node, new data.
  i1.port = 2001;
  ASSERT_TRUE((*reg)->update(i1).ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto v = (*d)->instances();
        return v.size() == 2 && v[0].port == 2001;
      },
      10s));

  // Selection.
  auto r1 = (*d)->select(Selection::RoundRobin);
  auto r2 = (*d)->select(Selection::RoundRobin);
  ASSERT_TRUE(r1 && r2);
  EXPECT_NE(r1->id, r2->id);
  auto s1 = (*d)->select(Selection::Sticky);
  for (int k = 0; k < 5; ++k)
    EXPECT_EQ((*d)->select(Selection::Sticky)->id, s1->id);

  ASSERT_TRUE((*reg)->unregister("web", "w2").ok());
  ASSERT_TRUE(has({"w1"}));
  reg->reset();  // closing the registry deregisters the rest
  ASSERT_TRUE(has({}));
  EXPECT_GE(changes.load(), 4);
}

TEST_P(RegistryTest, DiscoveryFollowsRegistrationsWithPersistentWatches) {
  auto a = session();
  auto b = session();
  discovery_follows_the_registry(*a, *b, true);
}

TEST_P(RegistryTest, DiscoveryFollowsRegistrationsWithOneShotWatches) {
  auto a = session();
  auto b = session();
  discovery_follows_the_registry(*a, *b, false);
}

TEST_P(RegistryTest, RegistrationComesBackAfterSessionExpiry) {
  auto a = session();
  auto b = session();
  auto reg = ServiceRegistry::start(*a);
  ASSERT_TRUE(reg.ok());
  ASSERT_TRUE((*reg)->register_instance(instance("w1", 1001)).ok());
  DiscoveryOptions o;
  o.name = "web";
  auto d = ServiceDiscovery::start(*b, o);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(eventually([&] { return (*d)->instances().size() == 1; }, 10s));
  // a's connection is cut for longer than its session: the server expires
  // it (the instance disappears), then the registry registers it again.
  a->client()->drop_connection_for_testing(kSession * 3);
  ASSERT_TRUE(eventually([&] { return (*reg)->reregistrations() >= 1; }, 30s));
  ASSERT_TRUE(eventually([&] { return (*d)->instances().size() == 1; }, 10s));
  auto st = b->client()->exists((*reg)->path_of("web", "w1"));
  ASSERT_TRUE(st.ok() && st->has_value());
  EXPECT_EQ((*st)->ephemeral_owner, a->client()->session_id().value());
}

TEST_P(RegistryTest, DiscoveryKeepsTheLastListWhileTheServerIsDown) {
  auto a = session();
  auto b = session();
  auto reg = ServiceRegistry::start(*a);
  ASSERT_TRUE(reg.ok());
  ASSERT_TRUE((*reg)->register_instance(instance("w1", 1001)).ok());
  ASSERT_TRUE((*reg)->register_instance(instance("w2", 1002)).ok());
  DiscoveryOptions o;
  o.name = "web";
  auto d = ServiceDiscovery::start(*b, o);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(eventually([&] { return (*d)->instances().size() == 2; }, 10s));
  server_->kill();
  ASSERT_TRUE(eventually([&] { return (*d)->stale(); }, 10s));
  // Reads answer at once, with the last list, for longer than a session.
  for (int k = 0; k < 20; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(ids_of((*d)->instances()), (std::vector<std::string>{"w1", "w2"}));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 250ms);  // no network wait
    std::this_thread::sleep_for(150ms);
  }
  EXPECT_TRUE((*d)->select(Selection::Random).has_value());
  std::string error;
  ASSERT_TRUE(server_->restart(&error)) << error;
  // Back: both sessions expired while the server was down; the registry
  // registers again and the cache follows.
  ASSERT_TRUE(eventually([&] { return !(*d)->stale() && (*d)->instances().size() == 2; }, 30s));
}

TEST_P(RegistryTest, CuratorAndCoordFindEachOther) {
  std::string why;
  auto cmd = java(&why);
  if (cmd.empty()) GTEST_SKIP() << why;
  auto a = session();
  auto reg = ServiceRegistry::start(*a);
  ASSERT_TRUE(reg.ok());
  ASSERT_TRUE((*reg)->register_instance(instance("cpp-1", 7001)).ok());

  // Curator's ServiceCache sees coord's instance ...
  auto args = cmd;
  args.insert(args.end(), {"discover", server_->address(), "/services", "web"});
  Process discover(args, dir_ + "/discover.log");
  ASSERT_TRUE(eventually(
      [&] { return discover.log().find("instances: cpp-1@127.0.0.1:7001") != std::string::npos; },
      60s))
      << discover.log();

  // ... coord's discovery sees Curator's, with its payload ...
  args = cmd;
  args.insert(args.end(),
              {"register", server_->address(), "/services", "web", "java-1", "127.0.0.2", "7002"});
  Process reg_java(args, dir_ + "/register.log");
  DiscoveryOptions o;
  o.name = "web";
  auto d = ServiceDiscovery::start(*a, o);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(eventually([&] { return (*d)->instances().size() == 2; }, 60s)) << reg_java.log();
  const auto v = (*d)->instances();
  EXPECT_EQ(v[1].id, "java-1");
  EXPECT_EQ(v[1].address, "127.0.0.2");
  EXPECT_EQ(v[1].port, 7002);
  EXPECT_EQ(v[1].metadata.at("zone"), "java");
  EXPECT_EQ((*d)->unreadable(), 0u);
  // ... and Curator's own cache lists both.
  ASSERT_TRUE(eventually(
      [&] {
        return discover.log().find("instances: cpp-1@127.0.0.1:7001,java-1@127.0.0.2:7002") !=
               std::string::npos;
      },
      30s))
      << discover.log();

  // Both ways, departures too.
  reg_java.close_stdin();  // Curator unregisters and exits
  EXPECT_EQ(reg_java.wait_exit(30s), 0) << reg_java.log();
  ASSERT_TRUE(eventually([&] { return (*d)->instances().size() == 1; }, 10s));
  ASSERT_TRUE((*reg)->unregister("web", "cpp-1").ok());
  ASSERT_TRUE(eventually(
      [&] {
        const std::string l = discover.log();
        return l.size() >= 12 && l.rfind("instances: \n") == l.size() - 12;
      },
      30s))
      << discover.log();
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryTest, ::testing::Values(Kind::Zk, Kind::Coordd),
                         [](const auto& info) { return recipe_test::kind_name(info.param); });

}  // namespace
}  // namespace coord
