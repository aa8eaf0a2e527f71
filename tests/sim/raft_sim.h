// The deterministic simulator for the Raft core: N cores (3 or 5) over a
// simulated network (delay, drop, duplicate, reorder, partition, heal) and
// simulated disks (a Ready is written, then synced later; a crash loses
// what was not synced, and the messages of that Ready never leave), with
// crashes and restarts, random proposals, snapshots, ReadIndex requests and
// leadership transfers. One thread, one seed: a seed replays exactly.
//
// After every event it checks:
//   - election safety: at most one leader per term;
//   - log matching: entries with the same index and term are identical,
//     and (every 16 ticks, and at the end) so are the logs before them;
//   - leader completeness: a new leader holds every committed entry;
//   - state machine safety: no two nodes apply different entries at one
//     index (checked on entries and on snapshot state);
//   - ReadIndex: a read index covers everything committed before the read.
// After the fault phase, the network heals (in-order delivery, no loss),
// every node restarts and the cluster must elect a leader and commit every
// accepted proposal (clients retry lost ones) within liveness_ticks plus 4
// ticks per entry of backlog left by the faults.
// Not thread-safe; one Simulation per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace coord::consensus::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  int fault_ticks = 300;     // ticks with faults
  int liveness_ticks = 400;  // base bound for convergence once faults stop
  bool verbose = false;      // print every event to stderr
  // Test-only: every core breaks the Figure 8 commit rule.
  bool commit_by_counting_earlier_terms = false;
};

struct SimResult {
  bool ok = true;
  std::string failure;  // what broke, and when
  // Figures of the run, for the summary line.
  int nodes = 0;
  std::uint64_t committed = 0;
  std::uint64_t proposals = 0;
  std::uint64_t elections = 0;
  std::uint64_t crashes = 0;
  std::uint64_t messages = 0;
  std::uint64_t forwarded = 0;          // proposal batches a follower forwarded
  std::uint64_t failed_reads = 0;       // reads answered with a failure
  std::uint64_t chunks = 0;             // snapshot chunks written
  std::uint64_t chunked_snapshots = 0;  // snapshots installed from chunks
  std::uint64_t joint_changes = 0;      // joint membership changes proposed
};

SimResult run_simulation(const SimOptions& options);

// The command that replays one seed, for failure messages.
std::string replay_command(const SimOptions& options);

}  // namespace coord::consensus::sim
