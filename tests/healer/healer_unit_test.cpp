// The healer's planner and its record formats, without I/O: every decision
// rule on its own, then every small world (desired 0..4, registered and
// in-flight workers in every state, the launch history, the failure
// streak) checked against the invariants the planner promises.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "coord/healer/planner.h"
#include "coord/healer/records.h"

namespace coord::healer {
namespace {

constexpr std::int64_t kNow = 1'000'000;

PlannerConfig config(int desired, int cap = 60) {
  PlannerConfig c;
  c.desired = desired;
  c.max_launches_per_min = cap;
  c.backoff_base_ms = 1'000;
  c.backoff_cap_ms = 16'000;
  return c;
}

PlannerInput input() {
  PlannerInput in;
  in.now_ms = kNow;
  in.id_prefix = "h-";
  return in;
}

template <typename T>
std::vector<T> all(const Plan& p) {
  std::vector<T> out;
  for (const auto& d : p.decisions)
    if (const auto* x = std::get_if<T>(&d)) out.push_back(*x);
  return out;
}

std::vector<int> launch_indexes(const Plan& p) {
  std::vector<int> out;
  for (const auto& l : all<decision::Launch>(p))
    out.push_back(l.index);
  return out;
}

TEST(HealerPlanner, EmptyWorldLaunchesEveryIndexWithFreshIds) {
  auto in = input();
  in.next_id = 7;
  const Plan p = plan(config(3), in);
  const auto launches = all<decision::Launch>(p);
  ASSERT_EQ(launches.size(), 3u);
  EXPECT_EQ(launches[0].id, "h-7");
  EXPECT_EQ(launches[1].id, "h-8");
  EXPECT_EQ(launches[2].id, "h-9");
  EXPECT_EQ(launch_indexes(p), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(p.next_id, 10u);
  EXPECT_EQ(p.in_flight, 3);
  EXPECT_EQ(p.held_back, 0);
  EXPECT_TRUE(all<decision::WaitUntil>(p).empty());
}

TEST(HealerPlanner, FullWorldDoesNothing) {
  auto in = input();
  in.workers = {{"a", 0}, {"b", 1}, {"c", 2}};
  const Plan p = plan(config(3), in);
  EXPECT_TRUE(p.decisions.empty());
  EXPECT_EQ(p.alive, 3);
}

TEST(HealerPlanner, FillsTheLowestFreeIndexes) {
  auto in = input();
  in.workers = {{"a", 0}, {"c", 3}};
  in.in_flight = {{"x", 1, kNow + 5'000, std::nullopt}};
  const Plan p = plan(config(5), in);
  EXPECT_EQ(launch_indexes(p), (std::vector<int>{2, 4}));
  EXPECT_EQ(p.in_flight, 3);
}

TEST(HealerPlanner, WorkersWithoutIndexCountButHoldNoIndex) {
  auto in = input();
  in.workers = {{"manual", std::nullopt}, {"far", 99}};
  const Plan p = plan(config(3), in);
  EXPECT_EQ(launch_indexes(p), (std::vector<int>{0}));
}

TEST(HealerPlanner, LaunchesInFlightCountAsAlive) {
  auto in = input();
  in.workers = {{"a", 0}};
  in.in_flight = {{"x", 1, kNow + 5'000, std::nullopt}, {"y", 2, kNow + 6'000, 0}};
  const Plan p = plan(config(3), in);
  EXPECT_TRUE(all<decision::Launch>(p).empty());
  // An exit status 0 is a launcher that returned (ssh, systemd-run): the
  // launch waits for its worker until the deadline.
  EXPECT_TRUE(all<decision::GiveUp>(p).empty());
  const auto waits = all<decision::WaitUntil>(p);
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0].at_ms, kNow + 5'000);
  EXPECT_EQ(p.in_flight, 2);
}

TEST(HealerPlanner, RegistrationEndsTheLaunchAndTheFailureStreak) {
  auto in = input();
  in.workers = {{"x", 1}};
  in.in_flight = {{"x", 1, kNow + 5'000, std::nullopt}};
  in.consecutive_failures = 4;
  in.last_failure_ms = kNow - 1;
  const Plan p = plan(config(2), in);
  const auto reg = all<decision::Registered>(p);
  ASSERT_EQ(reg.size(), 1u);
  EXPECT_EQ(reg[0].id, "x");
  EXPECT_EQ(p.consecutive_failures, 0);
  // The streak is over, so the missing worker is launched at once.
  EXPECT_EQ(launch_indexes(p), (std::vector<int>{0}));
}

TEST(HealerPlanner, DeadlinePassedGivesUpAndBacksOff) {
  auto in = input();
  in.in_flight = {{"x", 0, kNow, std::nullopt}};
  const Plan p = plan(config(2), in);
  const auto gave_up = all<decision::GiveUp>(p);
  ASSERT_EQ(gave_up.size(), 1u);
  EXPECT_EQ(gave_up[0].id, "x");
  EXPECT_EQ(p.consecutive_failures, 1);
  EXPECT_EQ(p.last_failure_ms, kNow);
  EXPECT_TRUE(all<decision::Launch>(p).empty());
  const auto waits = all<decision::WaitUntil>(p);
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0].at_ms, kNow + 1'000);
  EXPECT_EQ(p.held_back, 2);
}

TEST(HealerPlanner, NonZeroExitBeforeRegisteringFailsAtOnce) {
  auto in = input();
  in.in_flight = {{"x", 0, kNow + 60'000, 3}};
  const Plan p = plan(config(1), in);
  const auto gave_up = all<decision::GiveUp>(p);
  ASSERT_EQ(gave_up.size(), 1u);
  EXPECT_NE(gave_up[0].reason.find("status 3"), std::string::npos);
  EXPECT_EQ(p.consecutive_failures, 1);
}

TEST(HealerPlanner, RegisteredThoughItsProcessFailedCountsAsRegistered) {
  auto in = input();
  in.workers = {{"x", 0}};
  in.in_flight = {{"x", 0, kNow - 1, 1}};
  const Plan p = plan(config(1), in);
  EXPECT_EQ(all<decision::Registered>(p).size(), 1u);
  EXPECT_TRUE(all<decision::GiveUp>(p).empty());
}

TEST(HealerPlanner, ADeadlineFarAheadWaitsOneGracePeriodFromFirstSight) {
  auto c = config(1);
  c.grace_ms = 10'000;
  auto in = input();
  // Written by a healer whose clock was an hour ahead.
  in.in_flight = {{"x", 0, kNow + 3'600'000, std::nullopt, kNow - 9'999}};
  Plan p = plan(c, in);
  EXPECT_TRUE(all<decision::GiveUp>(p).empty());
  ASSERT_EQ(all<decision::WaitUntil>(p).size(), 1u);
  EXPECT_EQ(all<decision::WaitUntil>(p)[0].at_ms, kNow + 1);
  in.in_flight[0].first_seen_ms = kNow - 10'000;
  p = plan(c, in);
  EXPECT_EQ(all<decision::GiveUp>(p).size(), 1u);
  // A nearer deadline of its own still counts.
  in.in_flight[0] = {"x", 0, kNow + 5, std::nullopt, kNow};
  p = plan(c, in);
  ASSERT_EQ(all<decision::WaitUntil>(p).size(), 1u);
  EXPECT_EQ(all<decision::WaitUntil>(p)[0].at_ms, kNow + 5);
}

TEST(HealerPlanner, BackoffDoublesUpToTheCap) {
  const auto c = config(1);
  EXPECT_EQ(backoff_ms(c, 0), 0);
  EXPECT_EQ(backoff_ms(c, 1), 1'000);
  EXPECT_EQ(backoff_ms(c, 2), 2'000);
  EXPECT_EQ(backoff_ms(c, 3), 4'000);
  EXPECT_EQ(backoff_ms(c, 5), 16'000);
  EXPECT_EQ(backoff_ms(c, 6), 16'000);
  EXPECT_EQ(backoff_ms(c, 1'000'000), 16'000);
}

TEST(HealerPlanner, AfterTheBackoffOneProbeAtATime) {
  auto in = input();
  in.consecutive_failures = 3;
  in.last_failure_ms = kNow - 3'999;
  Plan p = plan(config(4), in);
  EXPECT_TRUE(all<decision::Launch>(p).empty());
  ASSERT_EQ(all<decision::WaitUntil>(p).size(), 1u);
  EXPECT_EQ(all<decision::WaitUntil>(p)[0].at_ms, kNow + 1);

  in.last_failure_ms = kNow - 4'000;
  p = plan(config(4), in);
  EXPECT_EQ(launch_indexes(p), (std::vector<int>{0}));
  EXPECT_EQ(p.held_back, 3);

  // The probe in flight holds the others back until it resolves.
  in.in_flight = {{"h-0", 0, kNow + 5'000, std::nullopt}};
  p = plan(config(4), in);
  EXPECT_TRUE(all<decision::Launch>(p).empty());
  EXPECT_EQ(p.held_back, 3);
}

TEST(HealerPlanner, TheCapCountsTheLastMinuteOnly) {
  auto in = input();
  in.recent_launches = {kNow - 60'000, kNow - 59'999, kNow - 30'000, kNow - 10};
  // kNow - 60'000 is out of the window: three count against a cap of 4.
  Plan p = plan(config(5, 4), in);
  EXPECT_EQ(launch_indexes(p), (std::vector<int>{0}));
  EXPECT_EQ(p.held_back, 4);

  in.recent_launches.push_back(kNow - 5);
  p = plan(config(5, 4), in);
  EXPECT_TRUE(all<decision::Launch>(p).empty());
  const auto waits = all<decision::WaitUntil>(p);
  ASSERT_EQ(waits.size(), 1u);
  // The oldest launch in the window leaves it first.
  EXPECT_EQ(waits[0].at_ms, kNow - 59'999 + 60'000);
}

TEST(HealerPlanner, ExcessIsReportedNotKilled) {
  auto in = input();
  in.workers = {{"a", 0}, {"b", 1}, {"c", 0}};
  const Plan p = plan(config(2), in);
  const auto ex = all<decision::Excess>(p);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].registered, 3);
  EXPECT_TRUE(all<decision::Launch>(p).empty());
}

TEST(HealerPlanner, DescribeNamesEveryDecision) {
  EXPECT_EQ(describe(decision::Launch{"h-1", 2}), "launching h-1 (index 2)");
  EXPECT_EQ(describe(decision::Registered{"h-1", 2}), "launch h-1 (index 2) registered");
  EXPECT_NE(describe(decision::GiveUp{"h-1", 2, "why"}).find("why"), std::string::npos);
  EXPECT_NE(describe(decision::WaitUntil{5, "x"}).find("5"), std::string::npos);
  EXPECT_NE(describe(decision::Excess{3, 2}).find("3 workers"), std::string::npos);
}

// Every small world. Launch states: registered, exited non-zero, past its
// deadline, pending, pending after its launcher exited 0.
TEST(HealerPlanner, InvariantsOverEverySmallWorld) {
  enum State { Reg, ExitBad, Expired, Pending, PendingExited0, kStates };
  std::uint64_t worlds = 0;
  for (int desired = 0; desired <= 4; ++desired) {
    for (int workers = 0; workers <= desired + 1; ++workers) {
      for (int launches = 0; launches <= 3; ++launches) {
        int combos = 1;
        for (int i = 0; i < launches; ++i)
          combos *= kStates;
        for (int combo = 0; combo < combos; ++combo) {
          for (int recent : {0, 2, 3}) {
            for (int failures : {0, 1, 3}) {
              for (std::int64_t since_failure : {999, 10'000}) {
                PlannerConfig c = config(desired, 3);
                PlannerInput in = input();
                in.next_id = 100;
                // Workers: the first ones hold indexes 0.., one lacks an index.
                for (int w = 0; w < workers; ++w) {
                  std::optional<int> index;
                  if (w != 1) index = w;
                  in.workers.push_back({"w" + std::to_string(w), index});
                }
                int code = combo;
                int next_index = workers;
                std::map<std::string, State> states;
                for (int l = 0; l < launches; ++l) {
                  const auto st = static_cast<State>(code % kStates);
                  code /= kStates;
                  Launch launch;
                  launch.id = "l" + std::to_string(l);
                  launch.index = next_index++;
                  launch.deadline_ms = st == Expired ? kNow - 1 : kNow + 1'000 * (l + 1);
                  if (st == ExitBad) launch.exit_status = 1;
                  if (st == PendingExited0) launch.exit_status = 0;
                  if (st == Reg) in.workers.push_back({launch.id, launch.index});
                  states[launch.id] = st;
                  in.in_flight.push_back(launch);
                }
                for (int r = 0; r < recent; ++r)
                  in.recent_launches.push_back(kNow - 20'000 * r);
                in.consecutive_failures = failures;
                in.last_failure_ms = kNow - since_failure;
                ++worlds;

                const Plan p = plan(c, in);
                SCOPED_TRACE(
                    "desired=" + std::to_string(desired) + " workers=" + std::to_string(workers) +
                    " launches=" + std::to_string(launches) + " combo=" + std::to_string(combo) +
                    " recent=" + std::to_string(recent) + " failures=" + std::to_string(failures) +
                    " since=" + std::to_string(since_failure));
                // Every launch in flight is resolved exactly as its state says.
                int registered = 0, gave_up = 0, pending = 0;
                std::set<std::string> resolved;
                for (const auto& r : all<decision::Registered>(p)) {
                  EXPECT_EQ(states.at(r.id), Reg);
                  EXPECT_TRUE(resolved.insert(r.id).second);
                  ++registered;
                }
                for (const auto& g : all<decision::GiveUp>(p)) {
                  EXPECT_TRUE(states.at(g.id) == ExitBad || states.at(g.id) == Expired);
                  EXPECT_TRUE(resolved.insert(g.id).second);
                  ++gave_up;
                }
                for (const auto& [id, st] : states) {
                  if (st == Pending || st == PendingExited0) {
                    EXPECT_EQ(resolved.count(id), 0u);
                    ++pending;
                  }
                }
                EXPECT_EQ(registered + gave_up + pending, launches);
                // The streak.
                const int streak = gave_up > 0 ? (registered > 0 ? gave_up : failures + gave_up)
                                               : (registered > 0 ? 0 : failures);
                EXPECT_EQ(p.consecutive_failures, streak);
                // Never more than desired through a launch of this plan.
                const auto launched = all<decision::Launch>(p);
                const int alive = static_cast<int>(in.workers.size());
                const int k = static_cast<int>(launched.size());
                if (k > 0) {
                  EXPECT_LE(alive + pending + k, desired);
                }
                EXPECT_EQ(p.in_flight, pending + k);
                // The cap.
                EXPECT_LE(k + recent, std::max(3, recent));
                // The backoff and one probe at a time.
                if (streak > 0 && k > 0) {
                  EXPECT_EQ(k, 1);
                  EXPECT_EQ(pending, 0);
                  EXPECT_GE(kNow, p.last_failure_ms + backoff_ms(c, streak));
                }
                // Fresh, distinct indexes in range, not held by anyone.
                std::set<int> taken;
                for (const auto& w : in.workers)
                  if (w.index) taken.insert(*w.index);
                for (const auto& l : in.in_flight)
                  if (states.at(l.id) == Pending || states.at(l.id) == PendingExited0)
                    taken.insert(l.index);
                std::set<std::string> ids;
                for (const auto& l : launched) {
                  EXPECT_GE(l.index, 0);
                  EXPECT_LT(l.index, desired);
                  EXPECT_TRUE(taken.insert(l.index).second) << "index " << l.index;
                  EXPECT_TRUE(ids.insert(l.id).second);
                }
                EXPECT_EQ(p.next_id, 100u + static_cast<std::uint64_t>(k));
                // Nothing held back without a reason and a time to come back.
                const int want = std::max(0, desired - alive - pending);
                EXPECT_EQ(p.held_back, want - k);
                if (p.held_back > 0) {
                  EXPECT_FALSE(p.held_back_why.empty());
                  EXPECT_FALSE(all<decision::WaitUntil>(p).empty() && pending == 0 && k == 0);
                }
                // Past the backoff, with nothing in flight, a probe goes.
                if (streak > 0 && pending == 0 && want > 0 && recent < 3 &&
                    kNow >= p.last_failure_ms + backoff_ms(c, streak)) {
                  EXPECT_EQ(k, 1);
                }
                // Unconstrained, the plan fills the world.
                if (streak == 0 && recent + want <= 3) {
                  EXPECT_EQ(k, want);
                }
                // Excess exactly when too many are registered.
                EXPECT_EQ(all<decision::Excess>(p).size(), alive > desired ? 1u : 0u);
                // A wait is in the future, and there is at most one.
                const auto waits = all<decision::WaitUntil>(p);
                EXPECT_LE(waits.size(), 1u);
                for (const auto& w : waits)
                  EXPECT_GT(w.at_ms, kNow);
                // Deterministic (sampled: planning twice doubles the time).
                if (worlds % 7 != 0) continue;
                const Plan again = plan(c, in);
                ASSERT_EQ(again.decisions.size(), p.decisions.size());
                for (std::size_t i = 0; i < p.decisions.size(); ++i)
                  EXPECT_EQ(describe(again.decisions[i]), describe(p.decisions[i]));
              }
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(worlds, 56'160u);
}

TEST(HealerRecords, WorkerRoundTripAndForeignData) {
  WorkerRecord w{"h-3", 2, 1234, "box"};
  const auto back = decode_worker("h-3", encode_worker(w));
  EXPECT_EQ(back.id, "h-3");
  EXPECT_EQ(back.index, 2);
  EXPECT_EQ(back.pid, 1234);
  EXPECT_EQ(back.host, "box");
  // Data written by something else: alive, without an index.
  EXPECT_FALSE(decode_worker("x", "").index.has_value());
  EXPECT_FALSE(decode_worker("x", "not json").index.has_value());
  EXPECT_FALSE(decode_worker("x", "[1,2]").index.has_value());
  EXPECT_FALSE(decode_worker("x", R"({"index":"2"})").index.has_value());
  EXPECT_FALSE(decode_worker("x", R"({"index":-1})").index.has_value());
  EXPECT_EQ(decode_worker("x", R"({"index":4})").index, 4);
}

TEST(HealerRecords, LaunchRoundTripAndBadData) {
  LaunchRecord l{"h-9", 3, 1'000, 31'000, "healer-a"};
  auto back = decode_launch("h-9", encode_launch(l));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->index, 3);
  EXPECT_EQ(back->launched_ms, 1'000);
  EXPECT_EQ(back->deadline_ms, 31'000);
  EXPECT_EQ(back->healer, "healer-a");
  EXPECT_EQ(decode_launch("x", "").code(), ErrorCode::BadArguments);
  EXPECT_EQ(decode_launch("x", R"({"index":1})").code(), ErrorCode::BadArguments);
  EXPECT_EQ(decode_launch("x", R"({"deadline_ms":1})").code(), ErrorCode::BadArguments);
  EXPECT_EQ(decode_launch("x", R"({"index":-1,"deadline_ms":1})").code(), ErrorCode::BadArguments);
}

TEST(HealerRecords, CommandTemplate) {
  const std::vector<std::string> t = {"ssh", "host-{index}", "worker --id={id} --n {index}{index}",
                                      "{ID}"};
  EXPECT_EQ(expand_command(t, 4, "h-1"),
            (std::vector<std::string>{"ssh", "host-4", "worker --id=h-1 --n 44", "{ID}"}));
  // An id containing a placeholder is not expanded again.
  EXPECT_EQ(expand_command({"{id}"}, 1, "{index}"), (std::vector<std::string>{"{index}"}));
}

TEST(HealerRecords, WorkerIds) {
  EXPECT_TRUE(check_worker_id("h-1").ok());
  EXPECT_FALSE(check_worker_id("").ok());
  EXPECT_FALSE(check_worker_id("a/b").ok());
  EXPECT_FALSE(check_worker_id("..").ok());
  EXPECT_FALSE(check_worker_id("a b").ok());
  EXPECT_FALSE(check_worker_id(std::string(201, 'a')).ok());
}

}  // namespace
}  // namespace coord::healer
