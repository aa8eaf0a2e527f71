#include "coord/core/storage.h"

#include "coord/base/assert.h"

namespace coord::core {

Status MemoryReplicaStorage::write_chunks(const std::vector<consensus::SnapshotChunk>& chunks) {
  for (const consensus::SnapshotChunk& c : chunks) {
    if (c.offset == 0) {
      incoming_meta_ = c.meta;
      incoming_.clear();
    } else if (!incoming_meta_ || incoming_last_ || incoming_meta_->index != c.meta.index ||
               incoming_meta_->term != c.meta.term || incoming_.size() != c.offset) {
      const std::string held = incoming_meta_ ? std::to_string(incoming_.size()) +
                                                    " bytes of the snapshot at " +
                                                    std::to_string(incoming_meta_->index.value()) +
                                                    (incoming_last_ ? ", complete" : "")
                                              : "nothing";
      incoming_meta_.reset();
      incoming_.clear();
      incoming_last_ = false;
      return Status(ErrorCode::BadArguments, "snapshot chunk at offset " +
                                                 std::to_string(c.offset) + " of the snapshot at " +
                                                 std::to_string(c.meta.index.value()) +
                                                 " does not follow what is held (" + held + ")");
    }
    incoming_ += c.data;
    incoming_last_ = c.last;
  }
  return Status();
}

Status MemoryReplicaStorage::write(const consensus::Ready& rd) {
  if (fail_writes_) return Status(ErrorCode::SystemError, "memory storage: writes fail (test)");
  COORD_RETURN_IF_ERROR(write_chunks(rd.snapshot_chunks));
  assembled_.reset();
  if (!rd.snapshot) return Status();
  const consensus::SnapshotMeta& meta = rd.snapshot->meta;
  if (rd.snapshot_in_chunks) {
    const bool complete = incoming_meta_ && incoming_last_ && incoming_meta_->index == meta.index &&
                          incoming_meta_->term == meta.term;
    consensus::Snapshot assembled{meta, std::move(incoming_)};
    incoming_meta_.reset();
    incoming_.clear();
    incoming_last_ = false;
    if (!complete) {
      return Status(ErrorCode::BadArguments, "no complete snapshot received for index " +
                                                 std::to_string(meta.index.value()) + " term " +
                                                 std::to_string(meta.term.value()));
    }
    assembled_ = std::move(assembled);
  }
  if (meta.index < mem_.snapshot_meta().index) {
    assembled_.reset();
    return Status(ErrorCode::BadArguments, "snapshot at " + std::to_string(meta.index.value()) +
                                               " is older than the one held");
  }
  return Status();
}

void MemoryReplicaStorage::written(consensus::Ready& rd) {
  if (rd.snapshot) {
    Status st = mem_.apply_snapshot(assembled_ ? *assembled_ : *rd.snapshot);
    COORD_ASSERT(st.ok(), "a snapshot write() took does not install: ", st);
    assembled_.reset();
  }
  if (!rd.entries.empty()) mem_.append(rd.entries);
  if (rd.hard_state) mem_.set_hard_state(*rd.hard_state);
}

Status MemoryReplicaStorage::snapshot_saved(const consensus::SnapshotMeta& meta,
                                            std::string payload) {
  COORD_RETURN_IF_ERROR(mem_.create_snapshot(meta.index, meta.conf, std::move(payload)));
  return mem_.compact(meta.index);
}

}  // namespace coord::core
