// The log's journal: the file in front of LMDB that makes a log write
// durable with one flush.
//
// An LMDB commit flushes twice, the pages it wrote and then the meta page
// that makes them current, and a client's write waits for both. The
// journal is a preallocated file of records appended one per log write,
// each made durable by a single synced write (O_DSYNC). LmdbLogStore keeps
// where each record and entry lies, reads them back from the file (the
// page cache, in practice) and writes them into LMDB later, many records
// in one transaction (a checkpoint), which also records the sequence
// number of the last record it took in; the next record then starts the
// file again from its beginning.
//
// A record, integers big-endian:
//   crc32c (4)   over the journal's id (8 bytes) and the rest of the record
//   body_bytes (4)
//   seq (8)      1 more than the record before it
//   body: flags (1, bit 0: a hard state follows), hard state (term, vote,
//         commit: 8 each) if flagged, entry count (4), then each entry:
//         index (8) term (8) kind (1) data_bytes (4) data
//
// The id is random, chosen with the LMDB file and kept in it: records left
// in the file by an LMDB file since replaced (deleted, or moved aside) fail
// their checksum and are never read as this log's.
//
// Recovery reads the records from the start of the file while each is
// whole, passes its checksum and follows the one before it in sequence:
// what lies after the last written record (preallocated zeros, a torn
// write, records of an earlier pass through the file, whose sequence
// numbers are lower) ends it. A record that fails its checksum but is
// followed by one that would have followed it is damage to an
// acknowledged write, reported rather than taken for the end.
//
// Thread safety: one owner thread, but read(), which other threads may
// call at the same time for records the owner no longer writes over.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/status.h"
#include "coord/io/log_store.h"

namespace coord::io {

// One record, its entries' data viewing the bytes it was decoded from.
struct JournalRecord {
  std::uint64_t seq = 0;
  std::optional<HardState> hard_state;
  std::vector<LogEntryRef> entries;
};

class LogJournal {
 public:
  static constexpr std::size_t header_bytes = 16;

  // Opens `path`, creating and preallocating it (and syncing its
  // directory) if missing.
  static Result<std::unique_ptr<LogJournal>> open(const std::string& path, std::uint64_t id);
  ~LogJournal();
  LogJournal(const LogJournal&) = delete;
  LogJournal& operator=(const LogJournal&) = delete;

  // Reads the records written since the one numbered `applied` (which LMDB
  // holds, with all before it) and hands each to `take`, in order, with its
  // offset in the file and the bytes it views. Afterwards appends go after
  // the last of them, or to the start of the file when there was none. A
  // gap between `applied` and the first record read, a damaged record, or
  // an error from `take` fails it.
  using Take =
      std::function<Status(const JournalRecord&, std::uint64_t offset, std::string_view bytes)>;
  Status recover(std::uint64_t applied, const Take& take);

  // The record that would be appended next, numbered last_seq() + 1, into
  // `out` (whose capacity is reused).
  void encode(const std::optional<HardState>& hard_state, const std::vector<LogEntryRef>& entries,
              std::string& out) const;
  // Writes an encoded record durably after the last, at end(). On failure
  // the journal takes no more records until restart(); its number is used
  // either way, so that what may have reached the file is older than any
  // checkpoint after it.
  Status append(std::string_view record);
  std::uint64_t end() const { return end_; }
  // `bytes` bytes at `offset`, written before, into `out`.
  Status read(std::uint64_t offset, std::size_t bytes, std::string& out) const;
  bool usable() const { return usable_; }
  // Every record so far is in LMDB: the next goes to the start of the file.
  void restart();
  std::uint64_t last_seq() const { return last_seq_; }
  const std::string& path() const { return path_; }

  // Decodes an encoded record (its checksum already checked, or just
  // written); the entries view `bytes`.
  static Result<JournalRecord> decode(std::string_view bytes);

 private:
  LogJournal(int fd, std::string path, std::uint64_t id);
  std::uint32_t checksum(std::string_view record) const;

  int fd_ = -1;
  std::string path_;
  std::uint64_t id_ = 0;
  std::uint64_t end_ = 0;  // where the next record goes
  std::uint64_t last_seq_ = 0;
  bool usable_ = true;
};

}  // namespace coord::io
