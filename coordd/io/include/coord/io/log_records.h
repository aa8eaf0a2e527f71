// The bytes of the records the log store keeps in LMDB, apart from LMDB.
//
// Every value is sealed: crc32c(key || body) (4 bytes, big-endian), then
// the body, so a value that is damaged or stored under another key fails
// to unseal. The bodies:
//   log entry   key: index (8 bytes, big-endian, so LMDB's order is index
//               order); body: term (8) kind (1) data (the rest)
//   hard_state  term (8) vote (8) commit (8)
//   snapshot    index (8) term (8) configuration (the rest, the caller's)
// All integers big-endian. The decoders take bytes read from disk and so
// trust nothing: a record that does not fit is an error, never a crash.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "coord/base/status.h"
#include "coord/io/log_store.h"

namespace coord::io::records {

inline constexpr std::size_t seal_bytes = 4;
inline constexpr std::size_t index_key_bytes = 8;

std::string seal(std::string_view key, std::string_view body);
// The body of a sealed value, or nullopt when the checksum fails.
std::optional<std::string_view> unseal(std::string_view key, std::string_view value);

std::string index_key(LogIndex index);
std::string entry_body(const LogRecord& r);
// The sealed value of a log entry, written at `out` (sealed_entry_bytes of
// `data` long): the same bytes as seal(key, entry_body(...)), without
// building them elsewhere first.
inline constexpr std::size_t sealed_entry_bytes(std::size_t data_bytes) {
  return seal_bytes + 9 + data_bytes;
}
void seal_entry_at(char* out, std::string_view key, Term term, std::uint8_t kind,
                   std::string_view data);
// A stored log entry from its key and sealed value. The errors say what
// is wrong, without the file (the caller adds it).
Result<LogRecord> decode_entry(std::string_view key, std::string_view value);

std::string hard_state_body(const HardState& h);
Result<HardState> decode_hard_state(std::string_view body);

std::string snapshot_body(const SnapshotMeta& m);
Result<SnapshotMeta> decode_snapshot(std::string_view body);

}  // namespace coord::io::records
