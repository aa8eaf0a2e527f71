// What the replica needs from durable storage: the Raft log as the
// consensus core reads it, plus a synced write of each Ready.
//
// The real implementation keeps the log in LMDB (coordd/io); the simulator
// and the tests use MemoryReplicaStorage, which loses nothing.
// Thread safety: the replica's thread only.
#pragma once

#include <string>

#include "coord/base/status.h"
#include "coord/consensus/raft.h"
#include "coord/consensus/storage.h"

namespace coord::core {

class ReplicaStorage : public consensus::LogStorage {
 public:
  // Makes rd.snapshot, rd.entries and rd.hard_state durable, in that order,
  // in one synced write. On error nothing of it may be visible afterwards
  // through the LogStorage view, and the replica tries again later.
  virtual Status persist(const consensus::Ready& rd) = 0;
  // The application state at meta.index was saved (its bytes are
  // `payload`); the log up to meta.index may now be compacted.
  virtual Status snapshot_saved(const consensus::SnapshotMeta& meta, std::string payload) = 0;
};

// In memory; for tests, the simulator and benchmarks.
class MemoryReplicaStorage final : public ReplicaStorage {
 public:
  explicit MemoryReplicaStorage(consensus::ConfState initial) : mem_(std::move(initial)) {}

  consensus::HardState hard_state() const override { return mem_.hard_state(); }
  const consensus::SnapshotMeta& snapshot_meta() const override { return mem_.snapshot_meta(); }
  LogIndex first_index() const override { return mem_.first_index(); }
  LogIndex last_index() const override { return mem_.last_index(); }
  Term term(LogIndex i) const override { return mem_.term(i); }
  void entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
               std::vector<consensus::Entry>& out) const override {
    mem_.entries(lo, hi, max_bytes, out);
  }
  consensus::Snapshot snapshot() const override { return mem_.snapshot(); }

  Status persist(const consensus::Ready& rd) override;
  Status snapshot_saved(const consensus::SnapshotMeta& meta, std::string payload) override;

  // Makes the next persist() calls fail, as a full disk would.
  void fail_writes_for_testing(bool fail) { fail_writes_ = fail; }

 private:
  consensus::MemoryStorage mem_;
  bool fail_writes_ = false;
};

}  // namespace coord::core
