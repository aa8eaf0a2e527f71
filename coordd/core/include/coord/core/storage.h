// What the replica needs from durable storage: the Raft log as the
// consensus core reads it, plus a synced write of each Ready.
//
// persist(rd) takes a whole Ready, in this order:
//   1. rd.snapshot_chunks, each written at its offset of the snapshot its
//      meta names (raft.h, SnapshotChunk). A chunk at offset 0 starts that
//      snapshot over, discarding any partial one; any other chunk must
//      continue exactly where the partial snapshot held ends (same index
//      and term, offset = bytes held, and not after the last chunk), else
//      persist() fails and the partial snapshot is dropped. Chunks need not
//      be durable on their own: a partial snapshot may be lost at any time
//      (a restart loses it), and the leader then starts over.
//   2. rd.snapshot, installed: the log is reset to start after it. When
//      rd.snapshot_in_chunks is set its data is empty and the snapshot
//      installed is the bytes the chunks wrote, made durable first; without
//      a complete partial snapshot for the same index and term, persist()
//      fails and installs nothing. A snapshot older than the one held is
//      refused.
//   3. rd.entries (replacing any stored suffix from their first index on),
//      then rd.hard_state.
// Steps 2 and 3 are one synced write. On error nothing of them may be
// visible afterwards through the LogStorage view (the replica restores its
// Raft core from this view, which makes the leader resend what is lost).
// After a snapshot was installed, snapshot() returns it with its data, and
// snapshot_bytes() / read_snapshot() stream exactly that data.
//
// persist() is two steps, so that the synced write can run on a thread of
// its own while the replica goes on reading the log (ReplicaConfig::
// persist_async): write(rd) makes the Ready durable and changes nothing
// the LogStorage view reads; written(rd), on the owner's thread once
// write(rd) succeeded, makes the view show it. The Raft core reads only
// entries it holds as stable while a Ready is out, and those no write
// changes, so the view may be read while write() runs.
//
// The real implementation keeps the log in LMDB and snapshots in files
// (coordd/io); the simulator and the tests use MemoryReplicaStorage, which
// loses nothing.
// Thread safety: the replica's thread only, but write(), which one other
// thread may call while the owner reads the view (one write() at a time,
// each followed by written() before the next).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coord/base/status.h"
#include "coord/consensus/raft.h"
#include "coord/consensus/storage.h"

namespace coord::core {

class ReplicaStorage : public consensus::LogStorage {
 public:
  // Writes rd.snapshot_chunks, then makes rd.snapshot, rd.entries and
  // rd.hard_state durable, in that order, in one synced write (see the file
  // comment). On error nothing of it may be visible afterwards through the
  // LogStorage view, and the replica tries again later.
  // rd.entries may be taken (see written()).
  Status persist(consensus::Ready& rd) {
    COORD_RETURN_IF_ERROR(write(rd));
    written(rd);
    return Status();
  }
  Status persist(consensus::Ready&& rd) { return persist(rd); }
  // The first step of persist(): the synced write, on any one thread.
  virtual Status write(const consensus::Ready& rd) = 0;
  // The second, on the owner's thread after write(rd) returned OK. It may
  // move rd.entries out, to keep them without a copy: the caller has no
  // more use for them once they are durable.
  virtual void written(consensus::Ready& rd) = 0;
  // The application state at meta.index was saved (its bytes are
  // `payload`); the log up to meta.index may now be compacted.
  virtual Status snapshot_saved(const consensus::SnapshotMeta& meta, std::string payload) = 0;
};

// In memory; for tests, the simulator and benchmarks.
class MemoryReplicaStorage final : public ReplicaStorage {
 public:
  explicit MemoryReplicaStorage(consensus::ConfState initial) : mem_(std::move(initial)) {}
  explicit MemoryReplicaStorage(const std::vector<consensus::ConfChange>& founding)
      : mem_(founding) {}

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
  std::uint64_t snapshot_bytes() const override { return mem_.snapshot_bytes(); }
  void read_snapshot(std::uint64_t offset, std::size_t max_bytes, std::string& out) const override {
    mem_.read_snapshot(offset, max_bytes, out);
  }

  Status write(const consensus::Ready& rd) override;
  void written(consensus::Ready& rd) override;
  Status snapshot_saved(const consensus::SnapshotMeta& meta, std::string payload) override;

  // Makes the next persist() calls fail, as a full disk would.
  void fail_writes_for_testing(bool fail) { fail_writes_ = fail; }

 private:
  Status write_chunks(const std::vector<consensus::SnapshotChunk>& chunks);

  consensus::MemoryStorage mem_;
  bool fail_writes_ = false;
  // The snapshot being received in chunks: its meta, the bytes so far and
  // whether the last chunk arrived.
  std::optional<consensus::SnapshotMeta> incoming_meta_;
  std::string incoming_;
  bool incoming_last_ = false;
  // The snapshot write() assembled from chunks, for written() to install.
  std::optional<consensus::Snapshot> assembled_;
};

}  // namespace coord::core
