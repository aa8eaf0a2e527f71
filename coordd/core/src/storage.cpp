#include "coord/core/storage.h"

namespace coord::core {

Status MemoryReplicaStorage::persist(const consensus::Ready& rd) {
  if (fail_writes_) return Status(ErrorCode::SystemError, "memory storage: writes fail (test)");
  if (rd.snapshot) COORD_RETURN_IF_ERROR(mem_.apply_snapshot(*rd.snapshot));
  if (!rd.entries.empty()) mem_.append(rd.entries);
  if (rd.hard_state) mem_.set_hard_state(*rd.hard_state);
  return Status();
}

Status MemoryReplicaStorage::snapshot_saved(const consensus::SnapshotMeta& meta,
                                            std::string payload) {
  COORD_RETURN_IF_ERROR(mem_.create_snapshot(meta.index, meta.conf, std::move(payload)));
  return mem_.compact(meta.index);
}

}  // namespace coord::core
