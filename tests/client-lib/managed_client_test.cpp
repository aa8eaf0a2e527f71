// ManagedClient against real servers (label `integration`): the connection
// events a recipe sees, and a new session after an expiry. Run against a
// single ZooKeeper 3.8 and a single coordd.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "coord/client-lib/managed_client.h"
#include "coord/testing/recipe_support.h"

namespace coord {
namespace {

using namespace std::chrono_literals;
using recipe_test::eventually;
using recipe_test::Kind;
using recipe_test::Server;

class ManagedClientTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    const std::string why = Server::unavailable_reason(GetParam());
    if (!why.empty()) GTEST_SKIP() << why;
    std::string error;
    server_ = Server::start(GetParam(), &error);
    ASSERT_NE(server_, nullptr) << error;
  }
  std::unique_ptr<Server> server_;
};

struct Log {
  std::mutex mu;
  std::vector<std::string> events;
  std::vector<std::string> get() {
    std::lock_guard lock(mu);
    return events;
  }
};

TEST_P(ManagedClientTest, ReportsSuspensionReconnectionAndANewSessionAfterExpiry) {
  ClientOptions o;
  o.servers = server_->address();
  o.session_timeout = 2s;
  auto mc = ManagedClient::start(o);
  ASSERT_TRUE(mc.ok());
  Log log;
  (*mc)->add_listener([&](ConnectionEvent e, std::uint64_t g) {
    std::lock_guard lock(log.mu);
    log.events.push_back(std::string(connection_event_name(e)) + "/" + std::to_string(g));
  });
  ASSERT_TRUE((*mc)->wait_connected(20s).ok());
  EXPECT_EQ((*mc)->generation(), 1u);
  ASSERT_TRUE((*mc)->client()->create("/m", std::nullopt, CreateMode::Ephemeral).ok());
  const SessionId first = (*mc)->client()->session_id();

  // A short break: the same session comes back.
  (*mc)->client()->drop_connection_for_testing(100ms);
  ASSERT_TRUE(eventually(
      [&] {
        auto e = log.get();
        return e.size() >= 2 && e[e.size() - 2] == "Suspended/1" && e.back() == "Reconnected/1";
      },
      20s));
  EXPECT_EQ((*mc)->client()->session_id(), first);

  // A break longer than the session: Lost, then a new session, generation 2,
  // whose client works; the old session's ephemeral is gone.
  (*mc)->client()->drop_connection_for_testing(6s);
  ASSERT_TRUE(eventually(
      [&] {
        auto e = log.get();
        return !e.empty() && e.back() == "Connected/2";
      },
      30s))
      << ::testing::PrintToString(log.get());
  const auto e = log.get();
  EXPECT_NE(std::find(e.begin(), e.end(), "Lost/1"), e.end());
  EXPECT_EQ((*mc)->generation(), 2u);
  EXPECT_NE((*mc)->client()->session_id(), first);
  ASSERT_TRUE((*mc)->wait_connected(10s).ok());
  EXPECT_TRUE(eventually(
      [&] {
        auto st = (*mc)->client()->exists("/m");
        return st.ok() && !st->has_value();
      },
      10s));
  EXPECT_TRUE((*mc)->client()->create("/m", std::nullopt, CreateMode::Ephemeral).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, ManagedClientTest, ::testing::Values(Kind::Zk, Kind::Coordd),
                         [](const auto& info) { return recipe_test::kind_name(info.param); });

}  // namespace
}  // namespace coord
