// The session table's expiry (coordd/core/src/session_table.h): expired()
// looks through the sessions only once one may be due, so each change that
// can bring an expiry forward must still be seen on time.
#include <gtest/gtest.h>

#include <vector>

#include "coord/base/bytes.h"
#include "session_table.h"

namespace coord::core {
namespace {

using Ids = std::vector<SessionId>;

TEST(SessionTable, ExpiresEachSessionAtItsTimeoutAndNotBefore) {
  SessionTable t(NodeId(1));
  t.create(SessionId(1), 4000, "p", TimeMs(0));
  t.create(SessionId(2), 10000, "p", TimeMs(0));
  EXPECT_EQ(t.expired(TimeMs(4000)), Ids{});
  EXPECT_EQ(t.expired(TimeMs(4001)), Ids{SessionId(1)});
  t.mark_closing(SessionId(1));
  EXPECT_EQ(t.expired(TimeMs(4002)), Ids{});
  EXPECT_EQ(t.expired(TimeMs(10001)), Ids{SessionId(2)});
}

TEST(SessionTable, ASessionHeardFromLivesOn) {
  SessionTable t(NodeId(1));
  t.create(SessionId(1), 4000, "p", TimeMs(0));
  EXPECT_EQ(t.expired(TimeMs(3000)), Ids{});
  t.touch(SessionId(1), TimeMs(3000), NodeId(1));
  EXPECT_EQ(t.expired(TimeMs(6000)), Ids{});
  EXPECT_EQ(t.expired(TimeMs(7001)), Ids{SessionId(1)});
}

TEST(SessionTable, ANewSessionWithAShortTimeoutIsNotMissed) {
  SessionTable t(NodeId(1));
  t.create(SessionId(1), 30000, "p", TimeMs(0));
  // The look at 1000 learns that nothing is due before 30000.
  EXPECT_EQ(t.expired(TimeMs(1000)), Ids{});
  t.create(SessionId(2), 4000, "p", TimeMs(1000));
  EXPECT_EQ(t.expired(TimeMs(5001)), Ids{SessionId(2)});
}

TEST(SessionTable, ATimeoutNegotiatedDownOnResumeCountsAtOnce) {
  SessionTable t(NodeId(1));
  Session& s = t.create(SessionId(1), 30000, "p", TimeMs(0));
  EXPECT_EQ(t.expired(TimeMs(1000)), Ids{});
  // As the replica resumes a session: the new timeout, then the touch.
  s.effective_timeout_ms = 4000;
  t.touch(SessionId(1), TimeMs(1000), NodeId(1));
  EXPECT_EQ(t.expired(TimeMs(5000)), Ids{});
  EXPECT_EQ(t.expired(TimeMs(5001)), Ids{SessionId(1)});
}

TEST(SessionTable, ExpiriesForgottenAreFoundAgainAtOnce) {
  SessionTable t(NodeId(1));
  t.create(SessionId(1), 4000, "p", TimeMs(0));
  t.create(SessionId(2), 30000, "p", TimeMs(0));
  EXPECT_EQ(t.expired(TimeMs(5000)), Ids{SessionId(1)});
  t.mark_closing(SessionId(1));
  EXPECT_EQ(t.expired(TimeMs(5100)), Ids{});
  // The proposal was lost (a new Raft core): the expiry is due again now,
  // although the last look found nothing before 30000.
  t.clear_closing();
  EXPECT_EQ(t.expired(TimeMs(5200)), Ids{SessionId(1)});
}

TEST(SessionTable, ANewLeaderGivesEverySessionAFreshTimeout) {
  SessionTable t(NodeId(1));
  t.create(SessionId(1), 4000, "p", TimeMs(0));
  t.touch_all(TimeMs(3000));
  EXPECT_EQ(t.expired(TimeMs(7000)), Ids{});
  EXPECT_EQ(t.expired(TimeMs(7001)), Ids{SessionId(1)});
}

TEST(SessionTable, SessionsFromASnapshotAreLookedAtAfresh) {
  SessionTable t(NodeId(1));
  t.create(SessionId(1), 30000, "p", TimeMs(0));
  EXPECT_EQ(t.expired(TimeMs(1000)), Ids{});
  std::string bytes;
  SessionTable other(NodeId(2));
  other.create(SessionId(7), 4000, "q", TimeMs(0));
  other.write_snapshot(bytes);
  std::string_view rest(bytes);
  std::uint64_t count = 0;
  ASSERT_TRUE(take_be64(rest, count));
  auto restored = SessionTable::read_snapshot(rest, count, TimeMs(1000));
  ASSERT_TRUE(restored.has_value());
  t.replace_global(std::move(*restored));
  EXPECT_EQ(t.expired(TimeMs(5001)), Ids{SessionId(7)});
}

}  // namespace
}  // namespace coord::core
