#include "replica_snapshot.h"

#include "coord/base/bytes.h"
#include "coord/base/checksum.h"

namespace coord::core {

namespace {

constexpr std::string_view kSnapshotMagic = "COORDRS1";

}  // namespace

std::string write_replica_snapshot(LogIndex applied, const SessionTable& sessions,
                                   const znode::DataTree& tree) {
  std::string body;
  put_be64(body, applied.value());
  sessions.write_snapshot(body);
  const std::string tree_bytes = tree.write_snapshot();
  put_be64(body, tree_bytes.size());
  body += tree_bytes;
  std::string out(kSnapshotMagic);
  put_be32(out, crc32c(body));
  out += body;
  return out;
}

Result<ReplicaSnapshot> read_replica_snapshot(std::string_view bytes,
                                              const znode::TreeConfig& tree_config, TimeMs now) {
  auto bad = [](const std::string& why) {
    return Status(ErrorCode::DataInconsistency, "replica snapshot: " + why);
  };
  if (!bytes.starts_with(kSnapshotMagic)) return bad("bad magic");
  bytes.remove_prefix(kSnapshotMagic.size());
  std::uint32_t crc = 0;
  if (!take_be32(bytes, crc) || crc != crc32c(bytes)) return bad("checksum mismatch");
  std::uint64_t index = 0;
  std::uint64_t count = 0;
  if (!take_be64(bytes, index) || !take_be64(bytes, count)) return bad("truncated header");
  auto restored = SessionTable::read_snapshot(bytes, count, now);
  if (!restored) return bad("truncated session table");
  std::uint64_t tree_len = 0;
  if (!take_be64(bytes, tree_len) || bytes.size() != tree_len) return bad("bad tree length");
  auto t = znode::DataTree::read_snapshot(bytes, tree_config);
  if (!t.ok()) return t.status();
  return ReplicaSnapshot{LogIndex(index), std::move(*restored), std::move(t).value()};
}

}  // namespace coord::core
