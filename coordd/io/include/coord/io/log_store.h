// The durable Raft log of a coordd server, kept in LMDB.
//
// Holds the log entries (key: index), the hard state (term, vote, commit)
// and the metadata of the latest snapshot. Every record carries a CRC-32C
// over its key and value (LMDB 0.9 keeps no checksum of its own); a record
// that fails it is reported with the file and the index, never returned
// as data.
//
// A write of entries and hard state is one record appended to the log's
// journal (LogJournal) and so one flush, however many entries it carries:
// that is the group commit. It waits there, found by reads through an
// index kept in memory, until a checkpoint writes everything waiting into
// LMDB in one transaction: when the owner asks (the server does once half
// of log_journal_checkpoint_bytes wait, and once writes pause), with a
// write that would take the journal past log_journal_checkpoint_bytes,
// with every write that records a snapshot, every compaction and every
// write made without the journal (Options::sync off, or after the journal
// or a checkpoint failed, until a write to LMDB succeeds). Opening the
// store takes the journal's records back into its index; nothing is lost
// and nothing is written twice, because each checkpoint records, in the
// same transaction, the last journal record it took in.
//
// A snapshot ends the log's need for the entries it covers, but dropping
// them all in one transaction would hold up every write queued behind it
// (a snapshot covers 100,000 entries by default). So a write that records
// a snapshot only moves the log's start past it; the covered entries stay
// stored, unseen by first_index() and entries() callers that keep to the
// log, until compact_covered() drops them a bounded chunk at a time. A stop
// between chunks leaves a consistent store: open() finds the rest of them
// below the snapshot and compaction_pending() says so.
//
// A full map or a full disk fails the write with a clear error and leaves
// what was already stored readable; so does a file system with less free
// space than the reserve (Options::disk_free_bytes_min), checked before
// each write. A journal never holds more than the map's share
// (log_journal_map_share) could take in.
//
// Thread safety: one owner thread calls everything, but entry() and
// entries(), which one other thread may call at the same time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/status.h"

struct MDB_txn;
struct MDB_cursor;

namespace coord::io {

class LogJournal;
struct JournalRecord;

struct LogRecord {
  LogIndex index{0};
  Term term{0};
  std::uint8_t kind = 0;  // the consensus layer's entry type
  std::string data;
  friend bool operator==(const LogRecord&, const LogRecord&) = default;
};

struct HardState {
  Term term{0};
  NodeId vote{0};
  LogIndex commit{0};
  friend bool operator==(const HardState&, const HardState&) = default;
};

struct SnapshotMeta {
  LogIndex index{0};
  Term term{0};
  std::string config;  // the membership at `index`, encoded by the caller
  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

// A log entry to write, its data not copied: it must outlive the write.
struct LogEntryRef {
  LogIndex index{0};
  Term term{0};
  std::uint8_t kind = 0;
  std::string_view data;
};

// What one write() makes durable, atomically.
struct LogWrite {
  std::optional<HardState> hard_state;
  // Contiguous entries. Any stored entry at or after entries.front().index
  // is replaced (a follower overwriting a conflicting suffix, Raft §5.3).
  // entries.front().index must be at most last_index() + 1.
  std::vector<LogRecord> entries;
  // A snapshot now covers everything up to snapshot->index: the log starts
  // after it. Stored entries at or below it are left for compact_covered().
  std::optional<SnapshotMeta> snapshot;
  // With a snapshot: the stored entries after it are dropped too, not only
  // left behind (a follower installing its leader's snapshot, whose log
  // may conflict with the leader's, Raft §7).
  bool discard_log = false;
};

class LmdbLogStore {
 public:
  struct Options {
    // Upper bound of the memory map (sparse: costs nothing until used).
    std::size_t map_bytes = limits::log_map_bytes_default;
    // fsync on every write. Off only in benchmarks that measure the rest.
    bool sync = true;
    // write() fails at once while the file system has less free space
    // than this (0: no reserve).
    std::uint64_t disk_free_bytes_min = limits::log_disk_free_bytes_min_default;
    // The map's pages are released each time this many bytes of it may
    // have been brought in since the last release: the entries appended,
    // and a few pages per write for its copy on write (0: only after
    // snapshots and compaction).
    std::size_t map_release_bytes = limits::log_map_release_bytes;
  };

  // Opens or creates the store in directory `dir` (created if missing).
  // Fails on a record format it does not know or a corrupt meta record.
  static Result<std::unique_ptr<LmdbLogStore>> open(const std::string& dir, Options options);
  static Result<std::unique_ptr<LmdbLogStore>> open(const std::string& dir) {
    return open(dir, Options{});
  }
  ~LmdbLogStore();
  LmdbLogStore(const LmdbLogStore&) = delete;
  LmdbLogStore& operator=(const LmdbLogStore&) = delete;

  // Makes `w` durable: one journal record, or one LMDB transaction that
  // takes in the journal's waiting records too. On error nothing of `w` is
  // stored.
  // A write whose snapshot leaves no entry covered, or one that takes what
  // was written since the last release past Options::map_release_bytes,
  // also releases the map's pages (below).
  Status write(const LogWrite& w);
  // The same, the entries given by reference instead of in w.entries
  // (which must be empty): each is sealed straight into its LMDB page, so
  // the write copies no entry's data on the way.
  Status write(const LogWrite& w, const std::vector<LogEntryRef>& entries);
  // Writes what waits in the journal into LMDB, in one transaction, and
  // starts the journal again; nothing to do when nothing waits.
  Status checkpoint();
  // Whether half of log_journal_checkpoint_bytes (or of the map's share)
  // wait: time for a checkpoint before a write has to make one.
  bool checkpoint_due() const { return pending_bytes_ >= checkpoint_bytes_ / 2; }
  // Bytes of journal records waiting for a checkpoint.
  std::size_t journal_pending_bytes() const { return pending_bytes_; }
  // Drops the entries at or below `through` in one transaction (after a
  // checkpoint) and releases the map's pages.
  Status compact(LogIndex through);
  // Drops the oldest stored entries the snapshot covers, at most
  // `entries_max` of them and, past the first, at most `bytes_max` bytes of
  // records, in one transaction. Returns whether covered entries remain;
  // once none does, the map's pages are released.
  Result<bool> compact_covered(std::size_t entries_max, std::size_t bytes_max);
  // Every page of the log LMDB reads through its map stays resident in
  // this process (an append reads the rightmost leaf page it copies, so in
  // time every page is), counted in its RSS, until unmapped. The mapping
  // lets go of them here: on its own once a snapshot has dropped the
  // entries they held and after every Options::map_release_bytes written
  // (appended_since_release_), and whenever the owner calls (the server
  // does once writes pause). The file and the page cache are untouched,
  // and a page read again faults back in. Safe beside readers on other
  // threads: LMDB never rewrites a page a reader can see, so the page that
  // faults back holds what it held.
  void release_map_pages();
  // Whether entries the snapshot covers are still stored.
  bool compaction_pending() const { return covered_from_.has_value(); }

  // The entry at `index`: NoNode if it is not stored, DataInconsistency if
  // its checksum fails.
  Result<LogRecord> entry(LogIndex index) const;
  // Entries in [lo, hi), stopping early once `max_bytes` of data is
  // reached (at least one entry is returned when any is stored in range).
  Result<std::vector<LogRecord>> entries(LogIndex lo, LogIndex hi, std::size_t max_bytes) const;

  // Index of the first and last entries of the log, which starts after the
  // snapshot; when it holds none, first = snapshot index + 1 and last =
  // snapshot index. Entries the snapshot covers and compaction has not yet
  // dropped are not part of it.
  LogIndex first_index() const { return first_; }
  LogIndex last_index() const { return last_; }
  std::optional<HardState> hard_state() const { return hard_state_; }
  std::optional<SnapshotMeta> snapshot_meta() const { return snapshot_; }

  // Bytes the map uses (pages in use × page size).
  std::size_t used_bytes() const;
  const std::string& file_path() const { return file_; }

  // Overwrites the raw value stored for `index` (after a checkpoint),
  // bypassing the checksum, so tests can show that corruption is detected.
  Status corrupt_entry_for_testing(LogIndex index, std::string raw_value);

 private:
  struct Env;
  LmdbLogStore(std::unique_ptr<Env> env, std::string file);
  Status load();
  // Sets covered_from_ from what is stored: the lowest entry if the
  // snapshot covers it.
  Status find_covered();
  // Opens the journal (creating it when `create`) and takes its records
  // written since the last checkpoint back into memory.
  Status open_journal(std::uint64_t id, bool create);
  // What a write of `w` and `entries` does to the log's bounds.
  void check_write(const LogWrite& w, const std::vector<LogEntryRef>& entries) const;
  // One journal record, its contents kept until the next checkpoint.
  Status write_journal(const std::optional<HardState>& hard_state,
                       const std::vector<LogEntryRef>& entries);
  // A journal record, at `offset` in the journal, joins what waits.
  void add_pending(const JournalRecord& record, std::uint64_t offset, std::string_view bytes);
  // One LMDB transaction: what waits in the journal, then `w`.
  Status write_lmdb(const LogWrite& w, const std::vector<LogEntryRef>& entries);
  // Puts what waits in the journal into `txn` (but entries at or below
  // `skip_through`, which the caller drops) with the number of the last
  // journal record.
  Status put_pending(MDB_txn* txn, MDB_cursor* cursor, LogIndex skip_through);
  // After the transaction that took them in committed.
  void pending_written();

  std::unique_ptr<Env> env_;
  std::string file_;
  std::string dir_;
  std::uint64_t disk_free_bytes_min_ = 0;
  std::size_t map_release_bytes_ = 0;
  // Bytes of the map written or read since its pages were last released:
  // the entries appended, and for each write the pages its transaction
  // read to copy them (a few per B-tree it changed: the log's, the meta
  // records', LMDB's free list).
  std::size_t appended_since_release_ = 0;
  static constexpr std::size_t map_pages_read_per_write = 16;
  std::size_t page_bytes_ = 4096;
  LogIndex first_{1};
  LogIndex last_{0};
  // The lowest stored entry at or below the snapshot's index, while any is.
  std::optional<LogIndex> covered_from_;
  std::optional<HardState> hard_state_;
  std::optional<SnapshotMeta> snapshot_;

  // Null when the store was opened without sync and found no journal.
  std::unique_ptr<LogJournal> journal_;
  bool journal_writes_ = false;  // Options::sync
  // A checkpoint failed: writes go to LMDB until one succeeds.
  bool checkpoint_failed_ = false;
  std::size_t checkpoint_bytes_ = 0;
  // What the journal holds and LMDB does not yet: where its records lie,
  // where their entries' data lies (contiguous entries, the last at last_)
  // and the latest hard state among them. Guarded by pending_mu_ where
  // entry() and entries() read them.
  struct PendingRecord {
    std::uint64_t offset = 0;
    std::size_t bytes = 0;
  };
  struct PendingEntry {
    LogIndex index{0};
    Term term{0};
    std::uint8_t kind = 0;
    std::uint64_t data_offset = 0;
    std::size_t data_bytes = 0;
  };
  mutable std::mutex pending_mu_;
  std::vector<PendingRecord> pending_records_;
  std::deque<PendingEntry> pending_;
  std::optional<HardState> pending_hard_state_;
  std::size_t pending_bytes_ = 0;
  // A waiting entry, its data read back from the journal.
  Result<LogRecord> pending_entry(const PendingEntry& e) const;
  // The record being written or read back by the owner (its capacity is
  // kept from one to the next).
  std::string record_buf_;
};

}  // namespace coord::io
