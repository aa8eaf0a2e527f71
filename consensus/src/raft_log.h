// RaftLog: the core's view of the log, stable part (LogStorage) followed by
// the unstable part the application has not persisted yet (an optional
// snapshot received from the leader and a run of entries).
//
// Internal to the core. Not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "coord/consensus/storage.h"
#include "coord/consensus/types.h"

namespace coord::consensus::detail {

class RaftLog {
 public:
  explicit RaftLog(const LogStorage& storage);

  LogIndex first_index() const;
  LogIndex last_index() const;
  Term last_term() const;
  // Term of entry i when it is still known (not compacted, not past the end).
  std::optional<Term> term(LogIndex i) const;
  bool match_term(LogIndex i, Term t) const {
    auto x = term(i);
    return x && *x == t;
  }
  // §5.4.1: a candidate's log is at least as up to date as ours.
  bool is_up_to_date(LogIndex last, Term last_term) const;

  // Index of the first entry of `entries` that is not in the log (absent or
  // with another term); nullopt when all are present.
  std::optional<LogIndex> find_conflict(const std::vector<Entry>& entries) const;
  // The largest index <= index whose term is <= term (or the first index we
  // can no longer read): where a leader's and a follower's logs may agree.
  // An index below the compacted part is returned as it is: the logs agree
  // there at best, and the caller must not take our compaction point for a
  // place the other log reaches.
  LogIndex find_conflict_by_term(LogIndex index, Term term) const;

  // Appends entries[from..] (moving them out), starting at
  // entries[from].index and replacing everything from that index on. Must
  // not touch committed entries.
  void append(std::vector<Entry>& entries, std::size_t from);
  // Leader append: entries already carry their term and index.
  void append_one(Entry e);

  // Entries [lo, hi), at most max_count and (past the first) max_bytes of
  // data. False when lo was compacted.
  bool entries(LogIndex lo, LogIndex hi, std::size_t max_count, std::size_t max_bytes,
               std::vector<Entry>& out) const;

  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }
  void commit_to(LogIndex i);
  void applied_to(LogIndex i);

  const std::vector<Entry>& unstable_entries() const { return unstable_; }
  // The last index the application has persisted (of storage, while a
  // snapshot received waits to be).
  LogIndex stable_last_index() const {
    if (unstable_snapshot_) return storage_.last_index();
    return LogIndex(offset_.value() - 1);
  }
  const std::shared_ptr<const Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  // The application persisted everything up to (i, t) / the snapshot at i.
  void stable_to(LogIndex i, Term t);
  void stable_snapshot_to(LogIndex i);
  // Replace the whole log by a snapshot from the leader (§5, InstallSnapshot).
  void restore(std::shared_ptr<const Snapshot> snapshot);

  // Snapshot to send to a follower that needs entries we compacted.
  Snapshot snapshot_to_send() const { return storage_.snapshot(); }

 private:
  const LogStorage& storage_;
  std::shared_ptr<const Snapshot> unstable_snapshot_;
  std::vector<Entry> unstable_;
  LogIndex offset_;  // index of unstable_[0] (or of the next entry when empty)
  LogIndex committed_;
  LogIndex applied_;
};

}  // namespace coord::consensus::detail
