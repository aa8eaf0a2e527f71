// The nodes coord-healer keeps in coord, and the launch command template.
//
// Layout, for a workers path W (default /healer/workers):
//   W/<id>              ephemeral, one per live worker, created by the
//                       worker (or by `coord-healer wrap` for it). Data:
//                       {"id":..., "index":..., "pid":..., "host":...};
//                       only "index" matters to the healer, and a worker
//                       without it still counts as alive.
//   W-launches/<id>     persistent, one per launch in flight, created by
//                       the active healer BEFORE it runs the launch command
//                       and deleted once the worker registered or the
//                       launch was given up. Data: {"id", "index",
//                       "launched_ms", "deadline_ms", "healer"} (wall-clock
//                       milliseconds). A healer that takes over reads them,
//                       so launches of its predecessor still count.
//   W-election/         the healers' LeaderElection (coord::LeaderElection).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/status.h"

namespace coord::healer {

struct WorkerRecord {
  std::string id;
  std::optional<int> index;
  std::int64_t pid = 0;
  std::string host;
};

std::string encode_worker(const WorkerRecord& w);
// Never fails: what cannot be read is left out (a worker registered by
// another tool, with other data, is alive all the same).
WorkerRecord decode_worker(std::string_view id, std::string_view data);

struct LaunchRecord {
  std::string id;
  int index = 0;
  std::int64_t launched_ms = 0;
  std::int64_t deadline_ms = 0;
  std::string healer;  // the id of the healer that launched it
};

std::string encode_launch(const LaunchRecord& l);
// BadArguments when the data is not a launch record.
Result<LaunchRecord> decode_launch(std::string_view id, std::string_view data);

// The launch command with every "{index}" and "{id}" replaced, in every
// argument.
std::vector<std::string> expand_command(const std::vector<std::string>& command_template, int index,
                                        std::string_view id);

// Validates a worker id (a node name: not empty, no '/', not "." or "..",
// printable ASCII, at most 200 bytes).
Status check_worker_id(std::string_view id);

}  // namespace coord::healer
