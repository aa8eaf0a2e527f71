#include "coord/io/raft_storage.h"

#include <chrono>
#include <filesystem>

#include "coord/base/assert.h"
#include "coord/base/bytes.h"
#include "coord/base/limits.h"
#include "coord/base/log.h"

namespace coord::io {
namespace {

consensus::Entry to_entry(LogRecord r) {
  return consensus::Entry{r.term, r.index, static_cast<consensus::EntryType>(r.kind),
                          std::move(r.data)};
}

}  // namespace

std::string encode_conf_state(const consensus::ConfState& c) {
  std::string out;
  put_be64(out, c.voters.size());
  for (NodeId id : c.voters)
    put_be64(out, id.value());
  put_be64(out, c.learners.size());
  for (NodeId id : c.learners)
    put_be64(out, id.value());
  return out;
}

Result<consensus::ConfState> decode_conf_state(std::string_view bytes) {
  consensus::ConfState c;
  for (auto* list : {&c.voters, &c.learners}) {
    std::uint64_t n = 0;
    if (!take_be64(bytes, n) || n > limits::cluster_members_max) {
      return Status(ErrorCode::DataInconsistency, "configuration record is damaged");
    }
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t id = 0;
      if (!take_be64(bytes, id)) {
        return Status(ErrorCode::DataInconsistency, "configuration record is truncated");
      }
      list->push_back(NodeId(id));
    }
  }
  if (!bytes.empty()) return Status(ErrorCode::DataInconsistency, "configuration record too long");
  return c;
}

DiskReplicaStorage::DiskReplicaStorage(std::unique_ptr<LmdbLogStore> log, std::string snapshot_dir)
    : log_(std::move(log)), snapshots_(std::move(snapshot_dir)) {}

Result<std::unique_ptr<DiskReplicaStorage>> DiskReplicaStorage::open(const std::string& data_dir,
                                                                     consensus::ConfState initial,
                                                                     LmdbLogStore::Options options,
                                                                     bool recover_from_snapshot) {
  namespace fs = std::filesystem;
  auto log = LmdbLogStore::open((fs::path(data_dir) / "log").string(), options);
  if (!log.ok()) return log.status();
  std::unique_ptr<DiskReplicaStorage> s(
      new DiskReplicaStorage(std::move(log).value(), (fs::path(data_dir) / "snapshots").string()));
  if (auto hs = s->log_->hard_state()) {
    s->hard_state_ = consensus::HardState{hs->term, hs->vote, hs->commit};
  }
  if (auto meta = s->log_->snapshot_meta()) {
    auto conf = decode_conf_state(meta->config);
    if (!conf.ok())
      return Status(conf.code(), s->log_->file_path() + ": " + conf.status().message());
    s->snapshot_meta_ = consensus::SnapshotMeta{meta->index, meta->term, std::move(conf).value()};
  }
  COORD_RETURN_IF_ERROR(s->load_terms());
  if (!s->log_->hard_state() && !s->log_->snapshot_meta() && s->log_->last_index().value() == 0) {
    auto snapshots = s->snapshots_.list();
    if (!snapshots.ok()) return snapshots.status();
    if (!snapshots->empty()) {
      if (recover_from_snapshot) {
        COORD_RETURN_IF_ERROR(s->recover_from_snapshot(initial));
        return s;
      }
      return Status(ErrorCode::DataInconsistency,
                    s->log_->file_path() + " holds no log, but " + s->snapshots_.dir() + " holds " +
                        std::to_string(snapshots->size()) +
                        " snapshot file(s), the newest at index " +
                        std::to_string(snapshots->back().value()) +
                        ": refusing to start with an empty tree, which would lose them. Put "
                        "the log back, or start once with --recover-from-snapshot to rebuild it "
                        "from the newest valid snapshot (writes after that snapshot are lost)");
    }
    // A new data directory of a founding member: the configuration goes
    // into the log as committed bootstrap entries, as every member of the
    // cluster writes them (consensus/types.h).
    consensus::Ready boot;
    boot.entries = consensus::bootstrap_entries(initial);
    boot.hard_state = consensus::bootstrap_hard_state(initial);
    COORD_RETURN_IF_ERROR(s->persist(boot));
  }
  return s;
}

Status DiskReplicaStorage::recover_from_snapshot(const consensus::ConfState& conf) {
  auto indexes = snapshots_.list();
  if (!indexes.ok()) return indexes.status();
  std::string rejected;
  for (auto it = indexes->rbegin(); it != indexes->rend(); ++it) {
    auto f = snapshots_.load(*it);
    if (!f.ok()) {
      COORD_LOG_WARN("coordd", "recovery skips ", f.status());
      rejected += "; " + f.status().message();
      continue;
    }
    // The snapshot becomes the start of a new log: everything up to its
    // index is committed, as it was when the snapshot was taken.
    LogWrite w;
    w.snapshot = SnapshotMeta{f->index, f->term, encode_conf_state(conf)};
    w.hard_state = HardState{f->term, NodeId(0), f->index};
    COORD_RETURN_IF_ERROR(log_->write(w));
    snapshot_meta_ = consensus::SnapshotMeta{f->index, f->term, conf};
    hard_state_ = consensus::HardState{f->term, NodeId(0), f->index};
    COORD_LOG_WARN("coordd", "recovered: the log now starts from ", snapshots_.path_of(f->index),
                   " (index ", f->index, ", term ", f->term, "); writes after it are lost");
    return load_terms();
  }
  return Status(
      ErrorCode::DataInconsistency,
      snapshots_.dir() + ": no snapshot file to recover from passes its checks" + rejected);
}

Status DiskReplicaStorage::load_terms() {
  terms_.clear();
  const LogIndex first = log_->first_index();
  const LogIndex last = log_->last_index();
  for (LogIndex lo = first; lo <= last;) {
    auto batch = log_->entries(lo, last.next(), limits::log_term_scan_batch_bytes);
    if (!batch.ok()) return batch.status();
    COORD_ASSERT(!batch->empty(), "log store returned nothing for [", lo, ", ", last, "]");
    for (const LogRecord& r : *batch) {
      if (r.index != lo) {
        return Status(ErrorCode::DataInconsistency,
                      log_->file_path() + ": entry " + std::to_string(lo.value()) + " is missing");
      }
      terms_.push_back(r.term);
      lo = lo.next();
    }
  }
  return Status();
}

Result<std::optional<std::string>> DiskReplicaStorage::load_snapshot_payload() const {
  if (snapshot_meta_.index.value() == 0) return std::optional<std::string>();
  // The file named by the log's own record, not merely the newest file: a
  // crash may have left a newer file whose record was never written.
  auto f = snapshots_.load(snapshot_meta_.index);
  if (!f.ok()) return f.status();
  return std::optional<std::string>(std::move(f->payload));
}

Term DiskReplicaStorage::term(LogIndex i) const {
  if (i == snapshot_meta_.index) return snapshot_meta_.term;
  const LogIndex first = log_->first_index();
  COORD_ASSERT(i >= first && i <= log_->last_index(), "term of ", i, " outside [", first, ", ",
               log_->last_index(), "]");
  return terms_[i - first];
}

void DiskReplicaStorage::entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
                                 std::vector<consensus::Entry>& out) const {
  auto batch = log_->entries(lo, hi, max_bytes);
  // The core cannot continue on a log it cannot read (storage.h).
  COORD_ASSERT(batch.ok(), "cannot read the log: ", batch.status());
  COORD_ASSERT(!batch->empty() && batch->front().index == lo, "log entries missing at ", lo);
  for (LogRecord& r : *batch)
    out.push_back(to_entry(std::move(r)));
}

consensus::Snapshot DiskReplicaStorage::snapshot() const {
  consensus::Snapshot snap;
  snap.meta = snapshot_meta_;
  if (snapshot_meta_.index.value() != 0) {
    auto f = snapshots_.load(snapshot_meta_.index);
    COORD_ASSERT(f.ok(), "cannot read the snapshot: ", f.status());
    snap.data = std::move(f->payload);
  }
  return snap;
}

std::uint64_t DiskReplicaStorage::snapshot_bytes() const {
  if (snapshot_meta_.index.value() == 0) return 0;
  auto n = snapshots_.payload_bytes(snapshot_meta_.index);
  COORD_ASSERT(n.ok(), "cannot read the snapshot: ", n.status());
  return *n;
}

void DiskReplicaStorage::read_snapshot(std::uint64_t offset, std::size_t max_bytes,
                                       std::string& out) const {
  COORD_ASSERT(snapshot_meta_.index.value() != 0, "read_snapshot without a snapshot");
  const Status s = snapshots_.read_payload(snapshot_meta_.index, offset, max_bytes, out);
  COORD_ASSERT(s.ok(), "cannot read the snapshot: ", s);
}

Status DiskReplicaStorage::persist(const consensus::Ready& rd) {
  LogWrite w;
  // A snapshot streamed by the leader: its chunks come in order and
  // contiguous; one at offset 0 starts it over. They are gathered here
  // until the last one, whose Ready carries the snapshot to install.
  for (const consensus::SnapshotChunk& c : rd.snapshot_chunks) {
    if (c.offset == 0 || c.meta.index != incoming_meta_.index ||
        c.meta.term != incoming_meta_.term) {
      incoming_.clear();
      incoming_meta_ = c.meta;
    }
    COORD_ASSERT(c.offset == incoming_.size(), "snapshot chunk at ", c.offset, " after ",
                 incoming_.size(), " bytes");
    incoming_.append(c.data);
  }
  if (rd.snapshot) {
    // A snapshot from the leader: its file first, then the record that
    // points at it, in the same write as the entries that follow it.
    const bool chunked = rd.snapshot_in_chunks;
    COORD_ASSERT(!chunked || (incoming_meta_.index == rd.snapshot->meta.index &&
                              incoming_meta_.term == rd.snapshot->meta.term),
                 "a streamed snapshot without its chunks");
    COORD_RETURN_IF_ERROR(snapshots_.save(rd.snapshot->meta.index, rd.snapshot->meta.term,
                                          chunked ? incoming_ : rd.snapshot->data));
    if (chunked) {
      incoming_.clear();
      incoming_.shrink_to_fit();
      incoming_meta_ = consensus::SnapshotMeta{};
    }
    w.snapshot = SnapshotMeta{rd.snapshot->meta.index, rd.snapshot->meta.term,
                              encode_conf_state(rd.snapshot->meta.conf)};
    w.discard_log = true;
  }
  w.entries.reserve(rd.entries.size());
  for (const consensus::Entry& e : rd.entries) {
    w.entries.push_back(LogRecord{e.index, e.term, static_cast<std::uint8_t>(e.type), e.data});
  }
  if (rd.hard_state) {
    w.hard_state = HardState{rd.hard_state->term, rd.hard_state->vote, rd.hard_state->commit};
  }
  const LogIndex old_first = log_->first_index();
  const auto t0 = std::chrono::steady_clock::now();
  COORD_RETURN_IF_ERROR(log_->write(w));
  fsync_us_.record(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count()));

  if (rd.snapshot) {
    snapshot_meta_ = rd.snapshot->meta;
    terms_.clear();
  } else if (log_->first_index() != old_first) {
    terms_.clear();
  }
  if (!rd.entries.empty()) {
    const LogIndex from = rd.entries.front().index;
    const LogIndex first = log_->first_index();
    // Drop cached terms of the replaced suffix, then append.
    const std::size_t keep = from > first ? static_cast<std::size_t>(from - first) : 0;
    if (terms_.size() > keep) terms_.resize(keep);
    for (const auto& e : rd.entries)
      terms_.push_back(e.term);
  }
  if (rd.hard_state) hard_state_ = *rd.hard_state;
  COORD_ASSERT(terms_.size() == log_->last_index().value() + 1 - log_->first_index().value(),
               "term cache out of step with the log");
  return Status();
}

Status DiskReplicaStorage::snapshot_saved(const consensus::SnapshotMeta& meta,
                                          std::string payload) {
  COORD_RETURN_IF_ERROR(write_snapshot_file(meta, payload));
  return record_snapshot(meta);
}

Status DiskReplicaStorage::write_snapshot_file(const consensus::SnapshotMeta& meta,
                                               std::string_view payload) {
  return snapshots_.save(meta.index, meta.term, payload);
}

Status DiskReplicaStorage::record_snapshot(const consensus::SnapshotMeta& meta) {
  const LogIndex old_first = log_->first_index();
  LogWrite w;
  w.snapshot = SnapshotMeta{meta.index, meta.term, encode_conf_state(meta.conf)};
  COORD_RETURN_IF_ERROR(log_->write(w));
  const LogIndex new_first = log_->first_index();
  const std::size_t dropped = static_cast<std::size_t>(new_first - old_first);
  terms_.erase(terms_.begin(),
               terms_.begin() + static_cast<std::ptrdiff_t>(std::min(dropped, terms_.size())));
  snapshot_meta_ = meta;
  return snapshots_.prune(limits::snapshot_files_kept, meta.index);
}

}  // namespace coord::io
