// The simulator as a ctest: many seeds must pass, a seed must replay
// exactly, and a core with a deliberately broken rule must be caught.
// COORD_SIM_SEEDS (default 500) and COORD_SIM_FIRST_SEED (default 1) choose
// the seeds; a failure prints the command that replays it.

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "raft_sim.h"

namespace coord::consensus::sim {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::stoull(v) : fallback;
}

TEST(RaftSimulation, EverySeedKeepsTheSafetyPropertiesAndConverges) {
  const std::uint64_t seeds = env_or("COORD_SIM_SEEDS", 500);
  const std::uint64_t first = env_or("COORD_SIM_FIRST_SEED", 1);
  int failures = 0;
  std::uint64_t committed = 0;
  for (std::uint64_t s = first; s < first + seeds && failures < 3; ++s) {
    SimOptions o;
    o.seed = s;
    SimResult r = run_simulation(o);
    committed += r.committed;
    if (!r.ok) {
      ++failures;
      ADD_FAILURE() << "seed " << s << ": " << r.failure << "\n  replay: " << replay_command(o);
    }
  }
  // A run that commits nothing checks nothing.
  EXPECT_GT(committed, seeds * 20) << "the simulated clusters made too little progress";
}

TEST(RaftSimulation, ASeedReplaysExactly) {
  SimOptions o;
  o.seed = 42;
  SimResult a = run_simulation(o);
  SimResult b = run_simulation(o);
  EXPECT_EQ(a.ok, b.ok);
  EXPECT_EQ(a.committed, b.committed);
  EXPECT_EQ(a.elections, b.elections);
  EXPECT_EQ(a.crashes, b.crashes);
  EXPECT_EQ(a.messages, b.messages);
}

// The checker must be able to fail: with the Figure 8 commit rule broken
// (entries of earlier terms committed by counting replicas) the simulator
// finds a safety violation within a few hundred seeds. The histories of
// Figure 8 need several leaders to fail at the right moments, so these runs
// have a longer fault phase (about 1 seed in 100 catches it).
TEST(RaftSimulation, CatchesACoreThatCommitsEarlierTermEntriesByCounting) {
  const std::uint64_t budget = 300;
  for (std::uint64_t s = 1; s <= budget; ++s) {
    SimOptions o;
    o.seed = s;
    o.fault_ticks = 1000;
    o.commit_by_counting_earlier_terms = true;
    SimResult r = run_simulation(o);
    if (!r.ok && r.failure.find("liveness") == std::string::npos) {
      std::printf("broken commit rule caught at seed %llu: %s\n",
                  static_cast<unsigned long long>(s), r.failure.c_str());
      return;
    }
  }
  ADD_FAILURE() << "a core that breaks the Figure 8 rule passed " << budget << " seeds";
}

}  // namespace
}  // namespace coord::consensus::sim
