#include "coord/consensus/storage.h"

#include <utility>

namespace coord::consensus {

MemoryStorage::MemoryStorage(ConfState initial) {
  append(bootstrap_entries(initial));
  hard_state_ = bootstrap_hard_state(initial);
}

MemoryStorage::MemoryStorage(const std::vector<ConfChange>& founding) {
  append(bootstrap_entries(founding));
  hard_state_ = HardState{Term(1), NodeId(0), LogIndex(founding.size())};
}

LogIndex MemoryStorage::last_index() const {
  return entries_.front().index + (entries_.size() - 1);
}

Term MemoryStorage::term(LogIndex i) const {
  COORD_ASSERT(i >= entries_.front().index && i <= last_index(), "term(", i,
               ") outside the stored log");
  return at(i).term;
}

void MemoryStorage::entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
                            std::vector<Entry>& out) const {
  COORD_ASSERT(lo >= first_index() && lo < hi && hi <= last_index().next(), "entries(", lo, ", ",
               hi, ") outside the stored log");
  std::size_t bytes = 0;
  out.reserve(out.size() + (hi - lo));
  for (LogIndex i = lo; i < hi; ++i) {
    const Entry& e = at(i);
    bytes += e.data.size();
    if (i != lo && bytes > max_bytes) break;
    out.push_back(e);
  }
}

void MemoryStorage::read_snapshot(std::uint64_t offset, std::size_t max_bytes,
                                  std::string& out) const {
  COORD_ASSERT(offset < snapshot_.data.size() || (offset == 0 && snapshot_.data.empty()),
               "read_snapshot past the end");
  out.append(snapshot_.data, static_cast<std::size_t>(offset), max_bytes);
}

void MemoryStorage::append(const std::vector<Entry>& entries) {
  std::vector<Entry> copy = entries;
  append(std::move(copy));
}

void MemoryStorage::append(std::vector<Entry>&& entries) {
  if (entries.empty()) return;
  const LogIndex first = first_index();
  std::size_t skip = 0;
  while (skip < entries.size() && entries[skip].index < first)
    ++skip;
  if (skip == entries.size()) return;
  const LogIndex start = entries[skip].index;
  COORD_ASSERT(start <= last_index().next(), "append leaves a gap: ", start, " after ",
               last_index());
  // Drop the stored suffix the new entries replace.
  entries_.resize(start - entries_.front().index);
  for (std::size_t k = skip; k < entries.size(); ++k) {
    COORD_ASSERT(entries[k].index == last_index().next(), "append: entries not contiguous");
    entries_.push_back(std::move(entries[k]));
  }
}

Status MemoryStorage::apply_snapshot(const Snapshot& snapshot) {
  if (snapshot.meta.index < snapshot_.meta.index) {
    return Status(ErrorCode::BadArguments, "snapshot older than the one held");
  }
  snapshot_ = snapshot;
  entries_.clear();
  entries_.push_back(Entry{snapshot.meta.term, snapshot.meta.index, EntryType::Normal, {}});
  if (hard_state_.commit < snapshot.meta.index) hard_state_.commit = snapshot.meta.index;
  return Status();
}

Status MemoryStorage::create_snapshot(LogIndex index, ConfState conf, std::string data) {
  if (index <= snapshot_.meta.index) {
    return Status(ErrorCode::BadArguments, "snapshot not newer than the one held");
  }
  if (index > last_index()) return Status(ErrorCode::BadArguments, "snapshot past the log");
  if (index < entries_.front().index) return Status(ErrorCode::BadArguments, "index compacted");
  snapshot_.meta = SnapshotMeta{index, at(index).term, std::move(conf)};
  snapshot_.data = std::move(data);
  return Status();
}

Status MemoryStorage::compact(LogIndex index) {
  if (index > snapshot_.meta.index) {
    return Status(ErrorCode::BadArguments, "compaction past the latest snapshot");
  }
  if (index <= entries_.front().index) return Status();
  const Term t = at(index).term;
  entries_.erase(entries_.begin(),
                 entries_.begin() + static_cast<std::ptrdiff_t>(index - entries_.front().index));
  entries_.front() = Entry{t, index, EntryType::Normal, {}};
  return Status();
}

}  // namespace coord::consensus
