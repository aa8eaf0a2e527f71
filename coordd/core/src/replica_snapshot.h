// The replica's snapshot payload: what a snapshot of the log stands for,
// the applied index, the global session table and the znode tree, in one
// checksummed blob (docs/formats/snapshots.md has the bytes). Pure functions over
// values; safe from any thread for distinct arguments.
#pragma once

#include <string>
#include <string_view>

#include "coord/base/ids.h"
#include "coord/base/status.h"
#include "coord/znode/tree.h"
#include "session_table.h"

namespace coord::core {

std::string write_replica_snapshot(LogIndex applied, const SessionTable& sessions,
                                   const znode::DataTree& tree);

struct ReplicaSnapshot {
  LogIndex applied{0};
  SessionTable::Map sessions;
  znode::DataTree tree;
};

// DataInconsistency for anything that is not a whole, intact payload. The
// sessions count as heard from at `now`.
Result<ReplicaSnapshot> read_replica_snapshot(std::string_view bytes,
                                              const znode::TreeConfig& tree_config, TimeMs now);

}  // namespace coord::core
