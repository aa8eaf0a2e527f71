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
// Thread safety: one owner; the files themselves may be written by a
// background writer as long as only one writes at a time.
#pragma once

#include <cstddef>
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
  // The payload size of the snapshot at `index`, from its header; and up
  // to `max_bytes` of that payload from `offset` appended to `out`. For
  // streaming a snapshot to a follower without reading it whole: the
  // checksum is not checked here (load() checks it; the receiver checks
  // what it decodes).
  Result<std::uint64_t> payload_bytes(LogIndex index) const;
  Status read_payload(LogIndex index, std::uint64_t offset, std::size_t max_bytes,
                      std::string& out) const;

  // The snapshot in a file's bytes, checked (header, length, checksum, and
  // that it holds the snapshot at `index`, which its name says); errors
  // name `path`.
  static Result<SnapshotFile> decode(std::string_view bytes, LogIndex index,
                                     const std::string& path);
  // A file's bytes (for tests and fuzzing; save() writes them in two parts).
  static std::string encode(LogIndex index, Term term, std::string_view payload);

  const std::string& dir() const { return dir_; }
  std::string path_of(LogIndex index) const;

 private:
  std::string dir_;
};

}  // namespace coord::io
