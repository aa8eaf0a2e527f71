#include "raft_log.h"

#include <algorithm>
#include <utility>

#include "coord/base/assert.h"

namespace coord::consensus::detail {

RaftLog::RaftLog(const LogStorage& storage)
    : storage_(storage), offset_(storage.last_index().next()) {
  // Everything before the first stored entry was applied into a snapshot.
  committed_ = storage.first_index().prev();
  applied_ = committed_;
}

LogIndex RaftLog::first_index() const {
  if (unstable_snapshot_) return unstable_snapshot_->meta.index.next();
  return storage_.first_index();
}

LogIndex RaftLog::last_index() const {
  if (!unstable_.empty()) return offset_ + (unstable_.size() - 1);
  if (unstable_snapshot_) return unstable_snapshot_->meta.index;
  return storage_.last_index();
}

Term RaftLog::last_term() const {
  auto t = term(last_index());
  COORD_ASSERT(t.has_value(), "term of the last entry is unknown");
  return *t;
}

std::optional<Term> RaftLog::term(LogIndex i) const {
  if (unstable_snapshot_ && i == unstable_snapshot_->meta.index) {
    return unstable_snapshot_->meta.term;
  }
  if (!unstable_.empty() && i >= offset_) {
    if (i - offset_ < unstable_.size()) return unstable_[i - offset_].term;
    return std::nullopt;
  }
  // After a restore the stored log is stale until the snapshot is persisted.
  if (unstable_snapshot_) return std::nullopt;
  if (i < storage_.first_index().prev() || i > storage_.last_index()) return std::nullopt;
  return storage_.term(i);
}

bool RaftLog::is_up_to_date(LogIndex last, Term lt) const {
  const Term mine = last_term();
  return lt > mine || (lt == mine && last >= last_index());
}

std::optional<LogIndex> RaftLog::find_conflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!match_term(e.index, e.term)) return e.index;
  }
  return std::nullopt;
}

LogIndex RaftLog::find_conflict_by_term(LogIndex index, Term t) const {
  const LogIndex floor = first_index().prev();
  if (index <= floor) return index;
  for (LogIndex i = std::min(index, last_index()); i > floor; i = i.prev()) {
    auto x = term(i);
    if (!x || *x <= t) return i;
  }
  return floor;
}

void RaftLog::append(std::vector<Entry>& entries, std::size_t from) {
  if (from >= entries.size()) return;
  const LogIndex start = entries[from].index;
  COORD_ASSERT(start > committed_, "append would overwrite committed entry ", start, " (commit ",
               committed_, ")");
  COORD_ASSERT(start <= last_index().next(), "append leaves a gap at ", start);
  if (start == offset_ + unstable_.size()) {
    // Common case: extends the unstable run.
  } else if (start <= offset_) {
    // Replaces all unstable entries (and, once persisted, a stored suffix).
    offset_ = start;
    unstable_.clear();
  } else {
    unstable_.resize(start - offset_);
  }
  unstable_.insert(unstable_.end(),
                   std::make_move_iterator(entries.begin() + static_cast<std::ptrdiff_t>(from)),
                   std::make_move_iterator(entries.end()));
}

void RaftLog::append_one(Entry e) {
  COORD_ASSERT(e.index == last_index().next(), "leader append out of order");
  if (unstable_.empty()) offset_ = e.index;
  unstable_.push_back(std::move(e));
}

bool RaftLog::entries(LogIndex lo, LogIndex hi, std::size_t max_count, std::size_t max_bytes,
                      std::vector<Entry>& out) const {
  if (lo < first_index()) return false;
  hi = std::min(hi, last_index().next());
  if (lo >= hi) return true;
  const std::size_t start = out.size();
  out.reserve(start + std::min<std::size_t>(hi - lo, max_count));
  if (lo < offset_ && !unstable_snapshot_) {
    const LogIndex stable_hi = std::min(hi, offset_);
    storage_.entries(lo, std::min(stable_hi, lo + max_count), max_bytes, out);
    if (out.size() - start < std::min<std::size_t>(stable_hi - lo, max_count)) {
      return true;  // the byte limit stopped the storage read
    }
    lo = stable_hi;
  }
  std::size_t bytes = 0;
  for (std::size_t k = start; k < out.size(); ++k)
    bytes += out[k].data.size();
  for (LogIndex i = std::max(lo, offset_); i < hi; ++i) {
    if (out.size() - start >= max_count) break;
    const Entry& e = unstable_[i - offset_];
    bytes += e.data.size();
    if (out.size() > start && bytes > max_bytes) break;
    out.push_back(e);
  }
  return true;
}

void RaftLog::commit_to(LogIndex i) {
  if (i <= committed_) return;
  COORD_ASSERT(i <= last_index(), "commit ", i, " past the last index ", last_index());
  committed_ = i;
}

void RaftLog::applied_to(LogIndex i) {
  if (i <= applied_) return;
  COORD_ASSERT(i <= committed_, "applied ", i, " past commit ", committed_);
  applied_ = i;
}

void RaftLog::stable_to(LogIndex i, Term t) {
  if (unstable_.empty() || i < offset_) return;
  auto x = term(i);
  // The entry was replaced since that Ready: wait for the newer one.
  if (!x || *x != t) return;
  const std::size_t n = i - offset_ + 1;
  if (n >= unstable_.size()) {
    unstable_.clear();
  } else {
    unstable_.erase(unstable_.begin(), unstable_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  offset_ = i.next();
}

void RaftLog::stable_snapshot_to(LogIndex i) {
  if (unstable_snapshot_ && unstable_snapshot_->meta.index == i) unstable_snapshot_.reset();
}

void RaftLog::restore(std::shared_ptr<const Snapshot> snapshot) {
  const LogIndex i = snapshot->meta.index;
  COORD_ASSERT(i > committed_, "restore below commit");
  committed_ = i;
  offset_ = i.next();
  unstable_.clear();
  unstable_snapshot_ = std::move(snapshot);
}

}  // namespace coord::consensus::detail
