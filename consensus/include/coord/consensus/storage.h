// LogStorage: the durable half of a Raft log as the core sees it, and
// MemoryStorage, an in-memory implementation for tests, the simulator and
// benchmarks.
//
// The core only reads a LogStorage. It holds the entries the application has
// not yet persisted itself (Ready::entries) and reads everything else from
// here, so a LogStorage must contain exactly what the application wrote and
// synced before it called Raft::advance(). The application writes through
// the implementation's own methods (MemoryStorage: append, set_hard_state,
// apply_snapshot, create_snapshot, compact).
//
// The log starts after a compaction point: the first stored entry is
// `first_index()` and the term of the entry just before it is still known, so
// the entry after it can be checked (§5.3). The latest snapshot covers at
// least everything before first_index() (a fresh cluster: index 0 and an
// empty configuration, the founding one being in the log, see
// bootstrap_entries); entries it covers may still be kept for followers that
// are only a little behind.
//
// Reading outside [first_index() - 1, last_index()] is a broken invariant of the
// caller. A storage that fails to read (a disk error) must stop the process:
// the core cannot continue safely on a log it cannot read.
// Thread safety: none; the core and the application share it from one thread.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "coord/base/assert.h"
#include "coord/base/ids.h"
#include "coord/base/status.h"
#include "coord/consensus/types.h"

namespace coord::consensus {

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  virtual HardState hard_state() const = 0;
  virtual const SnapshotMeta& snapshot_meta() const = 0;
  // First stored entry; at most snapshot_meta().index + 1.
  virtual LogIndex first_index() const = 0;
  // Last stored entry; first_index() - 1 when none is stored.
  virtual LogIndex last_index() const = 0;
  // Term of entry i, for i in [first_index() - 1, last_index()].
  virtual Term term(LogIndex i) const = 0;
  // Appends entries [lo, hi) to `out`, stopping before the total data size
  // passes max_bytes but always returning at least one entry.
  // first_index() <= lo < hi <= last_index() + 1.
  virtual void entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
                       std::vector<Entry>& out) const = 0;
  // The latest snapshot, whole (a legacy InstallSnapshot; the core itself
  // streams snapshots through the two methods below).
  virtual Snapshot snapshot() const = 0;

  // Streaming the latest snapshot (the one snapshot_meta() describes) to a
  // follower, one chunk at a time, so that neither side holds it whole: the
  // size of its data, and up to max_bytes of it from `offset` (< size)
  // appended to `out`. The defaults go through snapshot(), which reads it
  // whole; a storage with large snapshots overrides both to read from its
  // file at the offset.
  virtual std::uint64_t snapshot_bytes() const { return snapshot().data.size(); }
  virtual void read_snapshot(std::uint64_t offset, std::size_t max_bytes, std::string& out) const {
    const Snapshot s = snapshot();
    COORD_ASSERT(offset < s.data.size() || (offset == 0 && s.data.empty()),
                 "read_snapshot past the end");
    out.append(s.data, static_cast<std::size_t>(offset), max_bytes);
  }
};

class MemoryStorage final : public LogStorage {
 public:
  // A storage for a new member: empty log, empty configuration (it learns
  // its configuration from the leader).
  MemoryStorage() = default;
  // A storage for a founding member of a cluster with this configuration:
  // holds bootstrap_entries(initial) and bootstrap_hard_state(initial).
  explicit MemoryStorage(ConfState initial);
  // The same with the founding entries' own changes (contexts included).
  explicit MemoryStorage(const std::vector<ConfChange>& founding);

  HardState hard_state() const override { return hard_state_; }
  const SnapshotMeta& snapshot_meta() const override { return snapshot_.meta; }
  LogIndex first_index() const override { return entries_.front().index.next(); }
  LogIndex last_index() const override;
  Term term(LogIndex i) const override;
  void entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
               std::vector<Entry>& out) const override;
  Snapshot snapshot() const override { return snapshot_; }
  std::uint64_t snapshot_bytes() const override { return snapshot_.data.size(); }
  void read_snapshot(std::uint64_t offset, std::size_t max_bytes, std::string& out) const override;

  void set_hard_state(const HardState& hs) { hard_state_ = hs; }
  // Appends Ready::entries: an entry at an index already stored replaces it
  // and everything after it (the core only sends such a batch after it
  // checked the conflict, §5.3). Entries below the snapshot are skipped.
  void append(const std::vector<Entry>& entries);
  // The same, moving the entries in (the Ready is not needed afterwards).
  void append(std::vector<Entry>&& entries);
  // Installs a snapshot received from the leader (Ready::snapshot): drops
  // the whole log. A snapshot older than the current one is refused.
  Status apply_snapshot(const Snapshot& snapshot);
  // The application made a snapshot of its state as of `index` (already
  // applied, so stored): remember it. Entries are kept until compact().
  Status create_snapshot(LogIndex index, ConfState conf, std::string data);
  // Drops entries up to and including `index`, which must not pass the
  // latest snapshot (the log must stay rebuildable from snapshot + entries).
  Status compact(LogIndex index);

  std::size_t entry_count() const { return entries_.size() - 1; }

 private:
  const Entry& at(LogIndex i) const { return entries_[i - entries_.front().index]; }

  HardState hard_state_;
  Snapshot snapshot_;
  // entries_.front() is a placeholder for the compaction point: its index
  // and term are those of the last dropped entry (or the snapshot's).
  std::deque<Entry> entries_{Entry{}};
};

}  // namespace coord::consensus
