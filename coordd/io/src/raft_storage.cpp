#include "coord/io/raft_storage.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
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

// Voters, learners, then the outgoing voters of a joint configuration
// (C_old of C_old,new, §4.3). The outgoing list is written only when there
// is one: records written before it existed, and every non-joint record
// since, end after the learners, so old records still decode and each
// configuration has exactly one encoding.
std::string encode_conf_state(const consensus::ConfState& c) {
  std::string out;
  auto put_list = [&](const std::vector<NodeId>& ids) {
    put_be64(out, ids.size());
    for (NodeId id : ids)
      put_be64(out, id.value());
  };
  put_list(c.voters);
  put_list(c.learners);
  if (c.joint()) put_list(c.voters_outgoing);
  return out;
}

Result<consensus::ConfState> decode_conf_state(std::string_view bytes) {
  consensus::ConfState c;
  auto take_list = [&](std::vector<NodeId>& list) -> Status {
    std::uint64_t n = 0;
    if (!take_be64(bytes, n) || n > limits::cluster_members_max) {
      return Status(ErrorCode::DataInconsistency, "configuration record is damaged");
    }
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t id = 0;
      if (!take_be64(bytes, id)) {
        return Status(ErrorCode::DataInconsistency, "configuration record is truncated");
      }
      list.push_back(NodeId(id));
    }
    return Status();
  };
  COORD_RETURN_IF_ERROR(take_list(c.voters));
  COORD_RETURN_IF_ERROR(take_list(c.learners));
  if (!bytes.empty()) {
    COORD_RETURN_IF_ERROR(take_list(c.voters_outgoing));
    // An empty outgoing list is never written (see encode_conf_state).
    if (c.voters_outgoing.empty()) {
      return Status(ErrorCode::DataInconsistency, "configuration record too long");
    }
  }
  if (!bytes.empty()) return Status(ErrorCode::DataInconsistency, "configuration record too long");
  return c;
}

std::string damaged_log_message(const std::string& data_dir, const Status& damage,
                                std::string_view what) {
  return "the " + std::string(what) + " in " + data_dir + " is damaged: " + damage.message() +
         ". This server will not apply, serve or send it. Keep the data directory aside for "
         "inspection, start this server with an empty one (same id, same --peers): it catches "
         "up from the leader (docs/OPERATIONS.md, \"Replacing a dead server\"); a single "
         "server is restored from a backup instead";
}

DiskReplicaStorage::DiskReplicaStorage(std::unique_ptr<LmdbLogStore> log, std::string data_dir)
    : log_(std::move(log)),
      data_dir_(data_dir),
      snapshots_((std::filesystem::path(data_dir) / "snapshots").string()) {}

void DiskReplicaStorage::stop_on_damaged_log(const Status& damage, std::string_view what) const {
  // The consensus core reads entries it was promised are there; there is
  // no going on without them, and nothing to gain from a core dump.
  COORD_LOG_ERROR("coordd", "stopping: ", damaged_log_message(data_dir_, damage, what));
  std::fflush(stderr);
  std::_Exit(damaged_log_exit_code);
}

Result<std::unique_ptr<DiskReplicaStorage>> DiskReplicaStorage::open(const std::string& data_dir,
                                                                     consensus::ConfState initial,
                                                                     LmdbLogStore::Options options,
                                                                     bool recover_from_snapshot) {
  std::vector<consensus::ConfChange> founding;
  for (NodeId id : initial.voters)
    founding.push_back(consensus::ConfChange{consensus::ConfChangeType::AddVoter, id});
  for (NodeId id : initial.learners)
    founding.push_back(consensus::ConfChange{consensus::ConfChangeType::AddLearner, id});
  return open(data_dir, founding, options, recover_from_snapshot);
}

Result<std::unique_ptr<DiskReplicaStorage>> DiskReplicaStorage::open(
    const std::string& data_dir, const std::vector<consensus::ConfChange>& founding,
    LmdbLogStore::Options options, bool recover_from_snapshot) {
  namespace fs = std::filesystem;
  consensus::ConfState initial;
  for (const consensus::ConfChange& cc : founding) {
    COORD_ASSERT(cc.type == consensus::ConfChangeType::AddVoter ||
                     cc.type == consensus::ConfChangeType::AddLearner,
                 "a founding change adds a member");
    (cc.type == consensus::ConfChangeType::AddVoter ? initial.voters : initial.learners)
        .push_back(cc.node);
  }
  // A damaged log says how to get out of it; other errors (permissions, a
  // full disk) speak for themselves.
  const auto damaged = [&](const Status& st) {
    return st.code() == ErrorCode::DataInconsistency
               ? Status(st.code(), damaged_log_message(data_dir, st))
               : st;
  };
  auto log = LmdbLogStore::open((fs::path(data_dir) / "log").string(), options);
  if (!log.ok()) return damaged(log.status());
  std::unique_ptr<DiskReplicaStorage> s(new DiskReplicaStorage(std::move(log).value(), data_dir));
  // A snapshot transfer a crash interrupted is not resumed: the leader
  // starts it over.
  COORD_RETURN_IF_ERROR(s->snapshots_.remove_incoming());
  if (auto hs = s->log_->hard_state()) {
    s->hard_state_ = consensus::HardState{hs->term, hs->vote, hs->commit};
  }
  if (auto meta = s->log_->snapshot_meta()) {
    auto conf = decode_conf_state(meta->config);
    if (!conf.ok())
      return Status(conf.code(), s->log_->file_path() + ": " + conf.status().message());
    s->snapshot_meta_ = consensus::SnapshotMeta{meta->index, meta->term, std::move(conf).value()};
  }
  // Reads every stored entry: a record that fails its checksum stops the
  // server here, before anything is applied or sent.
  if (Status st = s->load_terms(); !st.ok()) return damaged(st);
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
    // A server that joins a running cluster writes nothing: its log is
    // the leader's, from the first entry.
    if (founding.empty()) return s;
    consensus::Ready boot;
    boot.entries = consensus::bootstrap_entries(founding);
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
  first_ = first;
  last_ = last;
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

Result<std::optional<MappedSnapshot>> DiskReplicaStorage::map_snapshot_payload() const {
  if (snapshot_meta_.index.value() == 0) return std::optional<MappedSnapshot>();
  auto m = snapshots_.map(snapshot_meta_.index);
  if (!m.ok()) return m.status();
  return std::optional<MappedSnapshot>(std::move(m).value());
}

Term DiskReplicaStorage::term(LogIndex i) const {
  if (i == snapshot_meta_.index) return snapshot_meta_.term;
  COORD_ASSERT(i >= first_ && i <= last_, "term of ", i, " outside [", first_, ", ", last_, "]");
  return terms_[i - first_];
}

void DiskReplicaStorage::entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
                                 std::vector<consensus::Entry>& out) const {
  // LogStorage's contract: stop before the data passes max_bytes (the
  // leader's append must fit a peer frame), but give at least one entry.
  std::size_t bytes = 0;
  auto fits = [&](const std::string& data, bool first) {
    bytes += data.size();
    return first || bytes <= max_bytes;
  };
  if (!recent_.empty() && lo >= recent_.front().index && lo <= recent_.back().index) {
    for (auto it = recent_.begin() + static_cast<std::ptrdiff_t>(lo - recent_.front().index);
         it != recent_.end() && it->index < hi && fits(it->data, it->index == lo); ++it)
      out.push_back(*it);
    return;
  }
  auto batch = log_->entries(lo, hi, max_bytes);
  // The core cannot continue on a log it cannot read (storage.h).
  if (!batch.ok()) stop_on_damaged_log(batch.status());
  COORD_ASSERT(!batch->empty() && batch->front().index == lo, "log entries missing at ", lo);
  for (LogRecord& r : *batch) {
    // LmdbLogStore's batch ends with the entry that reached max_bytes.
    if (!fits(r.data, r.index == lo)) break;
    out.push_back(to_entry(std::move(r)));
  }
}

consensus::Snapshot DiskReplicaStorage::snapshot() const {
  consensus::Snapshot snap;
  snap.meta = snapshot_meta_;
  if (snapshot_meta_.index.value() != 0) {
    auto f = snapshots_.load(snapshot_meta_.index);
    if (!f.ok()) stop_on_damaged_log(f.status(), "snapshot");
    snap.data = std::move(f->payload);
  }
  return snap;
}

std::uint64_t DiskReplicaStorage::snapshot_bytes() const {
  if (snapshot_meta_.index.value() == 0) return 0;
  return payload_reader().payload_bytes();
}

void DiskReplicaStorage::read_snapshot(std::uint64_t offset, std::size_t max_bytes,
                                       std::string& out) const {
  Status s = payload_reader().read(offset, max_bytes, out);
  if (!s.ok()) stop_on_damaged_log(s, "snapshot");
}

const SnapshotPayloadReader& DiskReplicaStorage::payload_reader() const {
  COORD_ASSERT(snapshot_meta_.index.value() != 0, "no snapshot to read");
  if (!reader_ || reader_->index() != snapshot_meta_.index) {
    reader_.reset();
    auto r = snapshots_.open_payload(snapshot_meta_.index);
    if (!r.ok()) stop_on_damaged_log(r.status(), "snapshot");
    reader_.emplace(std::move(r).value());
  }
  return *reader_;
}

void DiskReplicaStorage::discard_incoming() {
  incoming_.reset();
  incoming_last_ = false;
  Status s = snapshots_.remove_incoming();
  if (!s.ok()) COORD_LOG_WARN("coordd", "cannot remove a partial snapshot: ", s);
}

// Chunks go to the partial file at their offsets (raft.h, SnapshotChunk).
// Anything out of order is a broken promise of the core's, refused rather
// than written where it does not belong; the partial snapshot is dropped,
// which the leader answers by starting over.
Status DiskReplicaStorage::write_chunks(const std::vector<consensus::SnapshotChunk>& chunks) {
  for (const consensus::SnapshotChunk& c : chunks) {
    if (c.offset == 0) {
      incoming_.reset();
      incoming_last_ = false;
      auto started = snapshots_.start_incoming(c.meta.index, c.meta.term);
      if (!started.ok()) {
        discard_incoming();
        return started.status();
      }
      incoming_.emplace(std::move(started).value());
    } else if (!incoming_ || incoming_last_ || incoming_->index() != c.meta.index ||
               incoming_->term() != c.meta.term || incoming_->payload_bytes() != c.offset) {
      const std::string held = incoming_ ? std::to_string(incoming_->payload_bytes()) +
                                               " bytes of the snapshot at " +
                                               std::to_string(incoming_->index().value()) +
                                               (incoming_last_ ? ", complete" : "")
                                         : "nothing";
      discard_incoming();
      return Status(ErrorCode::BadArguments, "snapshot chunk at offset " +
                                                 std::to_string(c.offset) + " of the snapshot at " +
                                                 std::to_string(c.meta.index.value()) +
                                                 " does not follow what is held (" + held + ")");
    }
    Status s = incoming_->append(c.data);
    if (!s.ok()) {
      discard_incoming();
      return s;
    }
    incoming_last_ = c.last;
  }
  return Status();
}

Status DiskReplicaStorage::install_incoming(const consensus::SnapshotMeta& meta) {
  if (!incoming_ || !incoming_last_ || incoming_->index() != meta.index ||
      incoming_->term() != meta.term) {
    discard_incoming();
    return Status(ErrorCode::BadArguments, "no complete snapshot received for index " +
                                               std::to_string(meta.index.value()) + " term " +
                                               std::to_string(meta.term.value()));
  }
  Status s = incoming_->install();
  incoming_.reset();
  incoming_last_ = false;
  if (!s.ok()) discard_incoming();
  return s;
}

void DiskReplicaStorage::remember(std::vector<consensus::Entry>&& written) {
  if (written.empty()) return;
  const LogIndex from = written.front().index;
  // The suffix the write replaced goes first.
  while (!recent_.empty() && recent_.back().index >= from) {
    recent_bytes_ -= recent_.back().data.size();
    recent_.pop_back();
  }
  if (!recent_.empty() && recent_.back().index.next() != from) {
    recent_.clear();
    recent_bytes_ = 0;
  }
  for (consensus::Entry& e : written) {
    recent_bytes_ += e.data.size();
    recent_.push_back(std::move(e));
  }
  while (recent_.size() > 1 && recent_bytes_ > limits::log_recent_entries_bytes_max) {
    recent_bytes_ -= recent_.front().data.size();
    recent_.pop_front();
  }
  COORD_ASSERT(recent_.back().index == last_, "recent entries end at ",
               recent_.back().index.value(), ", the log at ", last_.value());
}

void DiskReplicaStorage::forget_recent_before(LogIndex first) {
  while (!recent_.empty() && recent_.front().index < first) {
    recent_bytes_ -= recent_.front().data.size();
    recent_.pop_front();
  }
}

Status DiskReplicaStorage::write(const consensus::Ready& rd) {
  COORD_RETURN_IF_ERROR(write_chunks(rd.snapshot_chunks));
  LogWrite w;
  if (rd.snapshot) {
    const consensus::SnapshotMeta& meta = rd.snapshot->meta;
    // The log store's own record, not the view's: this may run beside the
    // owner moving the view on to a snapshot of its own.
    const auto held = log_->snapshot_meta();
    if (held && meta.index < held->index) {
      if (rd.snapshot_in_chunks) discard_incoming();
      return Status(ErrorCode::BadArguments, "snapshot at " + std::to_string(meta.index.value()) +
                                                 " is older than the one held, at " +
                                                 std::to_string(held->index.value()));
    }
    // A snapshot from the leader: its file first (assembled from the
    // chunks, or written whole), then the record that points at it, in the
    // same write as the entries that follow it.
    if (rd.snapshot_in_chunks) {
      COORD_RETURN_IF_ERROR(install_incoming(meta));
    } else {
      COORD_RETURN_IF_ERROR(snapshots_.save(meta.index, meta.term, rd.snapshot->data));
    }
    w.snapshot = SnapshotMeta{meta.index, meta.term, encode_conf_state(meta.conf)};
    w.discard_log = true;
  }
  std::vector<LogEntryRef> refs;
  refs.reserve(rd.entries.size());
  for (const consensus::Entry& e : rd.entries) {
    refs.push_back(LogEntryRef{e.index, e.term, static_cast<std::uint8_t>(e.type), e.data});
  }
  if (rd.hard_state) {
    w.hard_state = HardState{rd.hard_state->term, rd.hard_state->vote, rd.hard_state->commit};
  }
  const auto t0 = std::chrono::steady_clock::now();
  COORD_RETURN_IF_ERROR(log_->write(w, refs));
  write_us_ = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  if (rd.snapshot) {
    // As after a snapshot of its own; what is written stays written if
    // this fails, and the next snapshot prunes again. A snapshot of its own
    // being written meanwhile may lose its temporary file here: it is older
    // than this one, and its record would be refused anyway.
    Status pruned = snapshots_.prune(limits::snapshot_files_kept, rd.snapshot->meta.index);
    if (!pruned.ok()) COORD_LOG_WARN("coordd", "cannot prune snapshot files: ", pruned);
  }
  return Status();
}

void DiskReplicaStorage::written(consensus::Ready& rd) {
  fsync_us_.record(write_us_);
  if (rd.snapshot) {
    snapshot_meta_ = rd.snapshot->meta;
    first_ = snapshot_meta_.index.next();
    last_ = snapshot_meta_.index;
    terms_.clear();
    recent_.clear();
    recent_bytes_ = 0;
  }
  if (!rd.entries.empty()) {
    const LogIndex from = rd.entries.front().index;
    COORD_ASSERT(from <= last_.next(), "entries from ", from, " do not follow the log at ", last_);
    // Drop cached terms of the replaced suffix, then append.
    const std::size_t keep = from > first_ ? static_cast<std::size_t>(from - first_) : 0;
    if (terms_.size() > keep) terms_.resize(keep);
    for (const auto& e : rd.entries)
      terms_.push_back(e.term);
    last_ = rd.entries.back().index;
    if (first_ > from) first_ = from;
  }
  remember(std::move(rd.entries));
  if (rd.hard_state) hard_state_ = *rd.hard_state;
  COORD_ASSERT(terms_.size() == last_.value() + 1 - first_.value(),
               "term cache out of step with the log");
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
  COORD_RETURN_IF_ERROR(begin_record_snapshot(meta));
  COORD_RETURN_IF_ERROR(write_snapshot_record(meta));
  for (;;) {
    auto more = compact_log_chunk();
    if (!more.ok()) return more.status();
    if (!*more) return Status();
  }
}

Result<bool> DiskReplicaStorage::compact_log_chunk() {
  return log_->compact_covered(limits::log_compaction_chunk_entries,
                               limits::log_compaction_chunk_bytes);
}

Status DiskReplicaStorage::begin_record_snapshot(const consensus::SnapshotMeta& meta) {
  // A snapshot from the leader may have been installed while this one was
  // being written: the log already starts after it, and cannot go back.
  if (meta.index <= snapshot_meta_.index) {
    return Status(ErrorCode::BadArguments,
                  "snapshot at " + std::to_string(meta.index.value()) +
                      " is not newer than the one the log starts from, at " +
                      std::to_string(snapshot_meta_.index.value()));
  }
  COORD_ASSERT(meta.index <= last_, "snapshot at ", meta.index, " past the log's end at ", last_);
  const LogIndex new_first = std::max(first_, meta.index.next());
  const std::size_t dropped = static_cast<std::size_t>(new_first - first_);
  terms_.erase(terms_.begin(),
               terms_.begin() + static_cast<std::ptrdiff_t>(std::min(dropped, terms_.size())));
  first_ = new_first;
  forget_recent_before(new_first);
  snapshot_meta_ = meta;
  return Status();
}

Status DiskReplicaStorage::write_snapshot_record(const consensus::SnapshotMeta& meta) {
  // The leader's snapshot, installed by a write() queued before this one,
  // may be newer: the log store never goes back.
  const auto held = log_->snapshot_meta();
  if (held && meta.index <= held->index) {
    return Status(ErrorCode::BadArguments, "snapshot at " + std::to_string(meta.index.value()) +
                                               " is not newer than the one the log holds, at " +
                                               std::to_string(held->index.value()));
  }
  LogWrite w;
  w.snapshot = SnapshotMeta{meta.index, meta.term, encode_conf_state(meta.conf)};
  COORD_RETURN_IF_ERROR(log_->write(w));
  return snapshots_.prune(limits::snapshot_files_kept, meta.index);
}

}  // namespace coord::io
