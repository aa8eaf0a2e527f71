// coord::healer::plan: what the active healer does next, as a pure function.
//
// The planner has no I/O, threads or clocks. Its input is a picture of the
// world taken by the caller (the workers registered under the workers path,
// the launches recorded in coord and not yet registered, the history of
// launches and failures, the time now) and its output is a list of
// decisions for the caller to carry out, in order:
//
//   Registered  a recorded launch whose worker has registered: the launch
//               is over and its record can go; the failure streak ends.
//   GiveUp      a recorded launch that failed: its deadline passed before
//               its worker registered, or its local process exited with a
//               non-zero status first. The caller stops whatever is left
//               of it (so a late worker cannot make N+1) and drops the
//               record; it counts as a failure.
//   Launch      start one worker with this index and fresh id.
//   Excess      more workers are registered than desired (started by hand,
//               or registered late); reported, never killed.
//   WaitUntil   nothing else can change before this time unless the input
//               does (a watch fires, a process exits): call again then.
//
// Counting. A launch in flight occupies a place exactly like a registered
// worker, so registered + in flight never exceeds `desired` because of a
// launch decided here. Indexes run from 0 to desired-1; each Launch takes
// the lowest index that no registered worker and no launch in flight holds.
//
// Pacing. At most `max_launches_per_min` launches start in any window of
// 60 s (the history is `recent_launches`). After f consecutive failures
// the next launch waits until last_failure + min(backoff_cap, backoff_base
// * 2^(f-1)), and while the streak lasts launches go one at a time, so a
// command that always fails is tried at a falling rate and never N at once.
//
// Times are milliseconds on one clock of the caller's choice; the healer
// uses the wall clock, because deadlines are shared between healers
// through coord. Thread safety: a pure function of its arguments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace coord::healer {

struct PlannerConfig {
  int desired = 1;                       // N: workers to keep alive
  int max_launches_per_min = 60;         // the cap over any 60 s window
  std::int64_t backoff_base_ms = 1'000;  // the delay after one failure
  std::int64_t backoff_cap_ms = 60'000;  // the longest delay
  // A launch's deadline is at most this long after the caller first saw
  // its record (0: no bound), so a record written by a healer whose clock
  // was ahead cannot hold a place for longer than one grace period.
  std::int64_t grace_ms = 0;
};

// A worker registered under the workers path.
struct Worker {
  std::string id;            // its node's name
  std::optional<int> index;  // from its node's data, when it says
};

// A launch recorded in coord and not yet registered.
struct Launch {
  std::string id;
  int index = 0;
  std::int64_t deadline_ms = 0;  // registered by then, or failed
  // Set when the launch's local process has exited (it may have been a
  // wrapper such as ssh that exits 0 at once); nullopt while it runs or
  // when it is not a process of this healer.
  std::optional<int> exit_status;
  std::int64_t first_seen_ms = 0;  // when the caller first read its record
};

struct PlannerInput {
  std::vector<Worker> workers;
  std::vector<Launch> in_flight;
  // Start times of launches, any age (older than 60 s are ignored).
  std::vector<std::int64_t> recent_launches;
  int consecutive_failures = 0;  // failures since the last registration
  std::int64_t last_failure_ms = 0;
  std::int64_t now_ms = 0;
  // Fresh ids are id_prefix + a sequence number from next_id.
  std::string id_prefix;
  std::uint64_t next_id = 0;
};

namespace decision {
struct Registered {
  std::string id;
  int index = 0;
};
struct GiveUp {
  std::string id;
  int index = 0;
  std::string reason;
};
struct Launch {
  std::string id;
  int index = 0;
};
struct Excess {
  int registered = 0;
  int desired = 0;
};
struct WaitUntil {
  std::int64_t at_ms = 0;
  std::string why;
};
}  // namespace decision

using Decision = std::variant<decision::Registered, decision::GiveUp, decision::Launch,
                              decision::Excess, decision::WaitUntil>;

struct Plan {
  std::vector<Decision> decisions;
  // The history after the plan is carried out as decided.
  int consecutive_failures = 0;
  std::int64_t last_failure_ms = 0;
  std::uint64_t next_id = 0;
  // What the status page shows.
  int alive = 0;      // registered workers
  int in_flight = 0;  // launches still pending after this plan
  // Launches this plan wanted and held back, and why ("" when none).
  int held_back = 0;
  std::string held_back_why;
};

// The delay before the next launch after `failures` consecutive failures
// (0 for none).
std::int64_t backoff_ms(const PlannerConfig& config, int failures);

// The decisions for `input`. Deterministic: the same input gives the same
// plan.
Plan plan(const PlannerConfig& config, const PlannerInput& input);

// One line describing a decision, for the log.
std::string describe(const Decision& d);

}  // namespace coord::healer
