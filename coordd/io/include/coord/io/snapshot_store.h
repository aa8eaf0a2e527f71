// Snapshot files of a coordd server: the serialized tree and the Raft
// metadata at one log index, one file per snapshot.
//
// A file is written under a temporary name, fsync'ed, renamed into place
// and the directory fsync'ed, so a crash leaves either the old set of
// snapshots or the new one, never a half-written file under a real name.
// Each file carries a header (magic, version, index, term, length) and a
// CRC-32C over header and payload; a corrupt or truncated file is reported
// with its name.
//
// A snapshot streamed by a leader arrives in pieces and is never held
// whole in memory: IncomingSnapshot appends the pieces to a partial file
// (`incoming.snap.part`) and, once all arrived, checks it, writes its
// header and renames it into place, after which it is a snapshot file like
// any other. Going the other way, SnapshotPayloadReader reads a file's
// payload piece by piece. A partial file never outlives its process: a
// transfer interrupted by a crash starts over, and the file is removed
// when the store is next opened (remove_incoming).
//
// Thread safety: one owner; the files themselves may be written by a
// background writer as long as only one writes at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/status.h"

namespace coord::io {

struct SnapshotFile {
  LogIndex index{0};
  Term term{0};
  std::string payload;
};

// A snapshot file mapped into memory and checked whole (SnapshotStore::map):
// its payload is read where the file's pages are, never copied, which for
// a tree of a million znodes is most of what a start would otherwise spend
// before building it. Move-only: owns the mapping, which ends with it.
class MappedSnapshot {
 public:
  MappedSnapshot(MappedSnapshot&& other) noexcept;
  MappedSnapshot& operator=(MappedSnapshot&& other) noexcept;
  MappedSnapshot(const MappedSnapshot&) = delete;
  MappedSnapshot& operator=(const MappedSnapshot&) = delete;
  ~MappedSnapshot();

  LogIndex index() const { return index_; }
  Term term() const { return term_; }
  // Valid while this object lives.
  std::string_view payload() const { return payload_; }

 private:
  friend class SnapshotStore;
  MappedSnapshot(void* map, std::size_t bytes) : map_(map), bytes_(bytes) {}
  void unmap();

  void* map_ = nullptr;
  std::size_t bytes_ = 0;
  LogIndex index_{0};
  Term term_{0};
  std::string_view payload_;
};

// A snapshot being received in pieces (SnapshotStore::start_incoming).
// Move-only: owns the partial file's descriptor. Destroying it closes the
// file and leaves it for SnapshotStore::remove_incoming.
class IncomingSnapshot {
 public:
  IncomingSnapshot(IncomingSnapshot&& other) noexcept;
  IncomingSnapshot& operator=(IncomingSnapshot&& other) noexcept;
  IncomingSnapshot(const IncomingSnapshot&) = delete;
  IncomingSnapshot& operator=(const IncomingSnapshot&) = delete;
  ~IncomingSnapshot();

  LogIndex index() const { return index_; }
  Term term() const { return term_; }
  // Payload bytes appended so far.
  std::uint64_t payload_bytes() const { return size_; }

  // Appends the next bytes of the payload (not synced: install() is).
  Status append(std::string_view bytes);
  // Makes the payload appended so far the snapshot at index(): reads the
  // file back and checks it holds exactly what was appended (a file
  // damaged meanwhile is DataInconsistency and nothing is installed),
  // writes the header with the checksum of the whole file, fsyncs it,
  // renames it to its final name and fsyncs the directory. Spent after it,
  // whatever the outcome.
  Status install();

 private:
  friend class SnapshotStore;
  IncomingSnapshot(int fd, std::string path, std::string final_path, std::string dir,
                   LogIndex index, Term term);
  void close();

  int fd_ = -1;
  std::string path_;
  std::string final_path_;
  std::string dir_;
  LogIndex index_{0};
  Term term_{0};
  std::uint64_t size_ = 0;
  // CRC-32C of the payload alone, as appended: install() compares the
  // file's bytes with it.
  std::uint32_t payload_crc_ = 0;
};

// One snapshot file opened for reading its payload piece by piece
// (SnapshotStore::open_payload). Move-only: owns the descriptor; the file
// stays readable through it even once pruned.
class SnapshotPayloadReader {
 public:
  SnapshotPayloadReader(SnapshotPayloadReader&& other) noexcept;
  SnapshotPayloadReader& operator=(SnapshotPayloadReader&& other) noexcept;
  SnapshotPayloadReader(const SnapshotPayloadReader&) = delete;
  SnapshotPayloadReader& operator=(const SnapshotPayloadReader&) = delete;
  ~SnapshotPayloadReader();

  LogIndex index() const { return index_; }
  Term term() const { return term_; }
  std::uint64_t payload_bytes() const { return size_; }
  // Appends up to max_bytes of the payload from `offset` (at most
  // payload_bytes()) to `out`: exactly those bytes of the payload
  // SnapshotStore::load returns.
  Status read(std::uint64_t offset, std::size_t max_bytes, std::string& out) const;

 private:
  friend class SnapshotStore;
  SnapshotPayloadReader(int fd, std::string path, LogIndex index, Term term, std::uint64_t size)
      : fd_(fd), path_(std::move(path)), index_(index), term_(term), size_(size) {}

  int fd_ = -1;
  std::string path_;
  LogIndex index_{0};
  Term term_{0};
  std::uint64_t size_ = 0;
};

class SnapshotStore {
 public:
  // Uses (and creates) directory `dir`.
  explicit SnapshotStore(std::string dir);

  // Durably stores a snapshot; replaces one at the same index.
  Status save(LogIndex index, Term term, std::string_view payload);
  // The newest snapshot, nullopt when there is none. A newest file that
  // fails its checksum is an error naming the file: an older snapshot
  // cannot stand in for it once the log before it was compacted.
  Result<std::optional<SnapshotFile>> load_latest() const;
  // The snapshot at `index`; NoNode if there is no such file.
  Result<SnapshotFile> load(LogIndex index) const;
  // The same, mapped rather than copied, with the same checks.
  Result<MappedSnapshot> map(LogIndex index) const;
  // Indexes of the stored snapshots, ascending.
  Result<std::vector<LogIndex>> list() const;
  // Keeps the snapshot at `named` (the one the log's record names: the log
  // starts from it) and the `keep` - 1 newest below it; removes the older
  // ones and stray temporary files. Files above `named` are left alone: no
  // record names them, so they are not this log's to judge (a crash
  // between writing a file and recording it leaves one, which the next
  // snapshot's prune removes once it is below).
  Status prune(std::size_t keep, LogIndex named);
  // Bytes of all snapshot files, for metrics.
  std::size_t total_bytes() const;

  // Starts receiving the snapshot at (index, term) in pieces: creates the
  // partial file, replacing any earlier one. One at a time: an earlier
  // IncomingSnapshot must be dropped first (its file is the one truncated).
  Result<IncomingSnapshot> start_incoming(LogIndex index, Term term);
  // Removes the partial file, if there is one.
  Status remove_incoming();
  // Opens the snapshot at `index` for reading its payload in pieces, after
  // checking the whole file (header, length and checksum, as load() does)
  // in one pass of bounded memory. NoNode if there is no such file.
  Result<SnapshotPayloadReader> open_payload(LogIndex index) const;

  // The snapshot in a file's bytes, checked (header, length, checksum, and
  // that it holds the snapshot at `index`, which its name says); errors
  // name `path`.
  static Result<SnapshotFile> decode(std::string_view bytes, LogIndex index,
                                     const std::string& path);
  // A file's bytes (for tests and fuzzing; save() writes them in two parts).
  static std::string encode(LogIndex index, Term term, std::string_view payload);

  const std::string& dir() const { return dir_; }
  std::string path_of(LogIndex index) const;
  std::string incoming_path() const;

 private:
  struct Checked {
    LogIndex index{0};
    Term term{0};
    std::string_view payload;  // within the bytes checked
  };
  static Result<Checked> check(std::string_view bytes, LogIndex index, const std::string& path);

  std::string dir_;
};

}  // namespace coord::io
