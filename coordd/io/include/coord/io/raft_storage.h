// The replica's durable storage on disk: the Raft log and hard state in
// LMDB (LmdbLogStore) and the snapshots in files (SnapshotStore), seen by
// the consensus core through the LogStorage interface.
//
// Terms of the stored entries are cached in memory (8 bytes an entry, the
// log is compacted after each snapshot) because the core asks for them on
// every append. The entries last written are kept too, up to
// log_recent_entries_bytes_max: the core reads them back at once, to apply
// them and to send them to followers, and need not look them up in LMDB
// and check them again. Older entries are read from LMDB.
//
// Snapshots stream through files in both directions, so that neither side
// holds one whole for the transfer: a leader reads the chunks it sends
// from its snapshot file at their offsets (snapshot_bytes, read_snapshot),
// and a follower appends the chunks it receives to a partial file that
// installing turns into an ordinary snapshot file (SnapshotStore's
// IncomingSnapshot). Opening removes a partial file a crash left.
//
// A log record that fails its checksum is never applied, served or sent.
// Found at open (every stored entry is read then), it fails open() with a
// message naming the data directory, the entry and the way out; found
// later (the file damaged under a running server), the process logs the
// same and exits with damaged_log_exit_code, since the consensus core
// cannot go on without its log. So does a snapshot file that cannot be
// read back when it is to be sent.
//
// Thread safety: the replica's thread only, but write(),
// write_snapshot_record(), compact_log_chunk() and log_compaction_pending(),
// which one other thread may run in turn (the store and the snapshot files
// are theirs; the view is the owner's).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/histogram.h"
#include "coord/core/storage.h"
#include "coord/io/log_store.h"
#include "coord/io/snapshot_store.h"

namespace coord::io {

// The exit status of a server that stops on a damaged log while running.
inline constexpr int damaged_log_exit_code = 3;

// `damage` (what is wrong with the log, or with `what` else, naming its
// file) with what an operator does about it: the data directory `data_dir`
// is moved aside and the server started empty, to catch up from the leader.
std::string damaged_log_message(const std::string& data_dir, const Status& damage,
                                std::string_view what = "log");

class DiskReplicaStorage final : public core::ReplicaStorage {
 public:
  // Opens `data_dir`/log (LMDB) and `data_dir`/snapshots. A new data
  // directory starts with `initial` as its configuration.
  //
  // A log that holds nothing (deleted, or cut to zero bytes) next to
  // snapshot files is refused: starting from an empty tree would serve
  // none of the data and, its own snapshots being older than the files
  // there, lose them. With `recover_from_snapshot` the log is rebuilt from
  // the newest snapshot file that passes its checks instead (configuration
  // `initial`); what was written after that snapshot is gone.
  static Result<std::unique_ptr<DiskReplicaStorage>> open(const std::string& data_dir,
                                                          consensus::ConfState initial,
                                                          LmdbLogStore::Options options,
                                                          bool recover_from_snapshot = false);
  // The same, the new log starting with consensus::bootstrap_entries of
  // `founding` (AddVoter and AddLearner changes, which may carry contexts)
  // and the configuration they make. With no changes at all (a server
  // that joins a running cluster) a new directory starts with an empty
  // log and no hard state: the leader sends it everything.
  static Result<std::unique_ptr<DiskReplicaStorage>> open(
      const std::string& data_dir, const std::vector<consensus::ConfChange>& founding,
      LmdbLogStore::Options options, bool recover_from_snapshot = false);

  // The payload of the snapshot the log starts from, if any.
  Result<std::optional<std::string>> load_snapshot_payload() const;
  // The same file mapped, not copied: what a start builds the tree from.
  Result<std::optional<MappedSnapshot>> map_snapshot_payload() const;

  consensus::HardState hard_state() const override { return hard_state_; }
  const consensus::SnapshotMeta& snapshot_meta() const override { return snapshot_meta_; }
  LogIndex first_index() const override { return first_; }
  LogIndex last_index() const override { return last_; }
  Term term(LogIndex i) const override;
  void entries(LogIndex lo, LogIndex hi, std::size_t max_bytes,
               std::vector<consensus::Entry>& out) const override;
  consensus::Snapshot snapshot() const override;
  // The payload of the snapshot file snapshot_meta() names, read at an
  // offset; the file is checked whole (checksum) once, when first read.
  // A file that cannot be read stops the process (LogStorage's contract).
  std::uint64_t snapshot_bytes() const override;
  void read_snapshot(std::uint64_t offset, std::size_t max_bytes, std::string& out) const override;

  // ReplicaStorage's contract; chunks go to the partial file (unsynced:
  // a partial snapshot may be lost), which is synced when installed.
  // write() touches the LMDB store and the snapshot files only, written()
  // the view (the members below the store).
  Status write(const consensus::Ready& rd) override;
  void written(consensus::Ready& rd) override;
  Status snapshot_saved(const consensus::SnapshotMeta& meta, std::string payload) override;

  // snapshot_saved() in two steps, so that the file can be written by a
  // child process while the replica goes on: first the file (safe to call
  // in a forked child: it touches only the file system), then, back in the
  // owner, the record that makes it the log's starting point. A snapshot
  // not newer than the one the log starts from (one from the leader was
  // installed while the file was written) is refused.
  Status write_snapshot_file(const consensus::SnapshotMeta& meta, std::string_view payload);
  Status record_snapshot(const consensus::SnapshotMeta& meta);
  // record_snapshot() in steps, as write() and written() in reverse: the
  // view first starts after the snapshot (on the owner's thread; the
  // entries it drops stay readable in the store until the record is
  // written), then the record, on the thread that runs write(), queued
  // behind the writes before it; then, on that thread again, the
  // compaction, one compact_log_chunk() at a time with writes between.
  Status begin_record_snapshot(const consensus::SnapshotMeta& meta);
  Status write_snapshot_record(const consensus::SnapshotMeta& meta);
  // Drops one chunk (limits::log_compaction_chunk_entries and _bytes) of
  // the entries the log's snapshot covers; returns whether some remain.
  // A stop between chunks leaves them stored, below the snapshot, where a
  // restart finds them and log_compaction_pending() says so. A write that
  // installs a leader's snapshot leaves such entries too.
  Result<bool> compact_log_chunk();
  bool log_compaction_pending() const { return log_->compaction_pending(); }
  // Once writes pause: writes what waits in the log's journal into LMDB,
  // then lets go of the log's pages resident in this process
  // (LmdbLogStore::release_map_pages); on the thread that writes.
  Status checkpoint_log_and_release_map() {
    Status st = log_->checkpoint();
    log_->release_map_pages();
    return st;
  }
  // After a write, on the thread that writes: a checkpoint of the log's
  // journal once enough of it waits, so that the next write need not take
  // the journal into LMDB itself.
  Status checkpoint_log_if_due() { return log_->checkpoint_due() ? log_->checkpoint() : Status(); }

  std::size_t log_bytes() const { return log_->used_bytes(); }
  // Duration of each synced log write, in microseconds (recorded by
  // written()).
  const Histogram& fsync_latency_us() const { return fsync_us_; }
  // Bytes of all snapshot files, for metrics.
  std::size_t snapshot_files_bytes() const { return snapshots_.total_bytes(); }
  const std::string& log_file() const { return log_->file_path(); }

 private:
  DiskReplicaStorage(std::unique_ptr<LmdbLogStore> log, std::string data_dir);
  [[noreturn]] void stop_on_damaged_log(const Status& damage, std::string_view what = "log") const;
  Status load_terms();
  Status recover_from_snapshot(const consensus::ConfState& conf);
  Status write_chunks(const std::vector<consensus::SnapshotChunk>& chunks);
  Status install_incoming(const consensus::SnapshotMeta& meta);
  void discard_incoming();
  const SnapshotPayloadReader& payload_reader() const;

  std::unique_ptr<LmdbLogStore> log_;
  std::string data_dir_;
  SnapshotStore snapshots_;
  // The view: what written() and begin_record_snapshot() have shown.
  consensus::HardState hard_state_;
  consensus::SnapshotMeta snapshot_meta_;
  LogIndex first_{1};
  LogIndex last_{0};
  // terms_[k] is the term of entry first_index() + k.
  std::deque<Term> terms_;
  // The entries last written, consecutive, the last of them at
  // last_index(); their data bytes in recent_bytes_.
  std::deque<consensus::Entry> recent_;
  std::size_t recent_bytes_ = 0;
  void remember(std::vector<consensus::Entry>&& written);
  void forget_recent_before(LogIndex first);
  Histogram fsync_us_;
  // How long the last write() took, for written() to record.
  std::uint64_t write_us_ = 0;
  // The snapshot being received in chunks, and whether its last chunk
  // arrived.
  std::optional<IncomingSnapshot> incoming_;
  bool incoming_last_ = false;
  // The snapshot file being streamed to followers (reopened when
  // snapshot_meta() moves on).
  mutable std::optional<SnapshotPayloadReader> reader_;
};

std::string encode_conf_state(const consensus::ConfState& c);
Result<consensus::ConfState> decode_conf_state(std::string_view bytes);

}  // namespace coord::io
