// Snapshot of the replicated state of a DataTree.
//
// Layout (little-endian; str = u32 length + bytes):
//   header   "COORDZN\0", u32 format version (2), u64 body length
//   body     i64 last_zxid
//            u32 ACL count, then per ACL: u32 ref (0, 1, ... in order), u32 entries,
//                per entry: i32 perms, str scheme, str id
//            u64 node count, then per node in pre-order (a parent before
//                its children): str path, u8 kind, u8 null data, str data,
//                i64 czxid mzxid ctime mtime pzxid owner_or_ttl,
//                u64 creates, i32 version aversion, u32 ACL ref
//            u64 digest of the tree
//   trailer  u32 CRC-32C of header and body
// The length in the header tells truncation from corruption; the CRC
// catches corruption; the digest, recomputed on load, catches a writer bug.
// Watches are not part of it: they belong to this server's connections.
//
// Version 2 has the layout of version 1; it says that the quota stats nodes
// hold the usage the tree maintains. A version 1 snapshot predates that:
// its stats nodes are recounted after loading (as ZooKeeper recounts every
// quota when it loads a snapshot), so a server upgraded in place starts
// with true usage.
#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "coord/base/checksum.h"
#include "coord/base/limits.h"
#include "tree_impl.h"

namespace coord::znode::detail {
namespace {

constexpr char kMagic[8] = {'C', 'O', 'O', 'R', 'D', 'Z', 'N', '\0'};
constexpr std::uint32_t kFormatVersion = 2;
constexpr std::uint32_t kFormatVersionUncountedQuotas = 1;
constexpr std::size_t kHeaderBytes = 8 + 4 + 8;
constexpr std::size_t kTrailerBytes = 4;
// A node record's fields after its data, and the smallest record (empty
// path and data).
constexpr std::size_t kNodeFixedBytes = 6 * 8 + 8 + 4 + 4 + 4;
constexpr std::size_t kNodeRecordBytesMin = 4 + 1 + 1 + 4 + kNodeFixedBytes;
// Node records looked ahead of the one being loaded (read_snapshot).
constexpr int kNodesAhead = 16;

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  std::size_t left() const { return in_.size() - pos_; }
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(take(4)); }
  std::uint64_t u64() { return take(8); }
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  void skip(std::size_t n) {
    if (!ok_ || left() < n) {
      ok_ = false;
      return;
    }
    pos_ += n;
  }
  std::string_view str(std::size_t max) {
    std::uint32_t n = u32();
    if (!ok_ || n > max || n > left()) {
      ok_ = false;
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::uint64_t take(int n) {
    if (!ok_ || left() < static_cast<std::size_t>(n)) {
      ok_ = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i)
      v = (v << 8) | static_cast<unsigned char>(in_[pos_ + i]);
    pos_ += n;
    return v;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

Status corrupt(const std::string& what) {
  return Status(ErrorCode::DataInconsistency, "snapshot corrupt: " + what);
}

}  // namespace

std::string write_snapshot(const TreeImpl& t) {
  std::string out;
  out.reserve(kHeaderBytes + 64 + t.table.size() * 96 + t.data_bytes);
  out.append(kMagic, sizeof kMagic);
  Writer w(out);
  w.u32(kFormatVersion);
  w.u64(0);  // body length, patched below
  w.i64(t.last_zxid.value());
  w.u32(static_cast<std::uint32_t>(t.acls.live_count()));
  // References are written densely (0, 1, ...; released ACLs leave holes in
  // the table), so a reader can bound them by the entries it has read.
  std::unordered_map<AclRef, std::uint32_t> dense;
  t.acls.for_each([&](AclRef r, const AclTable::Entry& e) {
    const auto d = static_cast<std::uint32_t>(dense.size());
    dense.emplace(r, d);
    w.u32(d);
    w.u32(static_cast<std::uint32_t>(e.acl.size()));
    for (const Acl& a : e.acl) {
      w.i32(a.perms);
      w.str(a.id.scheme);
      w.str(a.id.id);
    }
  });
  w.u64(t.table.size());
  // Pre-order; siblings from the last to the first, so that the loader,
  // which links each node at the head of its parent's list, rebuilds the
  // same child order.
  std::vector<const Node*> stack{t.root};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    w.str(n->path());
    w.u8(static_cast<std::uint8_t>(n->kind));
    w.u8(n->null_data ? 1 : 0);
    w.str(std::string_view(n->data, n->data_len));
    w.i64(n->czxid);
    w.i64(n->mzxid);
    w.i64(n->ctime);
    w.i64(n->mtime);
    w.i64(n->pzxid);
    w.i64(n->owner_or_ttl);
    w.u64(n->creates);
    w.i32(n->version);
    w.i32(n->aversion);
    w.u32(dense.at(n->acl));
    for (const Node* c = n->first_child; c != nullptr; c = c->next_sibling)
      stack.push_back(c);
  }
  w.u64(t.digest);
  const std::uint64_t body = out.size() - kHeaderBytes;
  for (int i = 0; i < 8; ++i)
    out[12 + i] = static_cast<char>(body >> (8 * i));
  w.u32(crc32c(out.data(), out.size()));
  return out;
}

Status read_snapshot(std::string_view bytes, TreeImpl& t) {
  if (bytes.size() < kHeaderBytes + kTrailerBytes) {
    return corrupt("truncated: " + std::to_string(bytes.size()) +
                   " bytes is shorter than a header");
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return corrupt("not a coord znode snapshot (bad magic)");
  }
  Reader header(bytes.substr(8, 12));
  const std::uint32_t version = header.u32();
  const std::uint64_t body_len = header.u64();
  if (version != kFormatVersion && version != kFormatVersionUncountedQuotas) {
    return corrupt("unknown format version " + std::to_string(version));
  }
  const std::uint64_t expected = kHeaderBytes + body_len + kTrailerBytes;
  if (body_len > bytes.size() || bytes.size() < expected) {
    return corrupt("truncated: " + std::to_string(bytes.size()) + " bytes, header announces " +
                   std::to_string(expected));
  }
  if (bytes.size() > expected) {
    return corrupt(std::to_string(bytes.size() - expected) + " unexpected bytes after the end");
  }
  Reader trailer(bytes.substr(kHeaderBytes + body_len));
  const std::uint32_t stored_crc = trailer.u32();
  const std::uint32_t actual_crc = crc32c(bytes.data(), kHeaderBytes + body_len);
  if (stored_crc != actual_crc) return corrupt("checksum mismatch");

  Reader r(bytes.substr(kHeaderBytes, body_len));
  t.last_zxid = Zxid(r.i64());
  const std::uint32_t acl_count = r.u32();
  std::uint32_t acls_read = 0;
  for (std::uint32_t i = 0; i < acl_count && r.ok(); ++i) {
    const AclRef ref = r.u32();
    if (r.ok() && ref != i) return corrupt("ACL references out of order");
    const std::uint32_t entries = r.u32();
    if (!r.ok() || entries > limits::acl_entries_max) return corrupt("bad ACL entry count");
    AclList acl;
    for (std::uint32_t k = 0; k < entries && r.ok(); ++k) {
      Acl a;
      a.perms = r.i32();
      a.id.scheme = std::string(r.str(limits::frame_bytes_max));
      a.id.id = std::string(r.str(limits::frame_bytes_max));
      acl.push_back(std::move(a));
    }
    if (!r.ok()) break;
    COORD_RETURN_IF_ERROR(t.acls.restore(ref, std::move(acl)));
    ++acls_read;
  }
  const std::uint64_t node_count = r.u64();
  if (!r.ok()) return corrupt("truncated ACL table");
  // The index sized once for every node, rather than doubled twenty times
  // over a million of them; bounded by what the bytes left can hold, so a
  // count that lies costs nothing.
  t.table.reserve(static_cast<std::size_t>(
      std::min<std::uint64_t>(node_count, r.left() / kNodeRecordBytesMin + t.table.size())));
  // The nodes come in pre-order: a node's parent is the last node read or
  // one of its ancestors, found on this chain without a lookup.
  std::vector<Node*> chain;
  // The index is far larger than the cache and its slots are hit at random:
  // a scan some records ahead starts loading the slot of each path, so
  // that the lookup and the insert below find it there. The scan only
  // reads lengths and skips; what it makes of damaged bytes is never used.
  Reader ahead = r;
  const auto look_ahead = [&] {
    const std::string_view p = ahead.str(limits::znode_path_bytes_max);
    ahead.skip(2);
    ahead.str(limits::znode_data_bytes_max);
    ahead.skip(kNodeFixedBytes);
    if (ahead.ok()) t.table.prefetch_slot(path_hash32(p));
  };
  for (int k = 0; k < kNodesAhead; ++k)
    look_ahead();
  for (std::uint64_t i = 0; i < node_count; ++i) {
    look_ahead();
    const std::string_view path = r.str(limits::znode_path_bytes_max);
    const std::uint8_t kind = r.u8();
    const std::uint8_t null_data = r.u8();
    const std::string_view data = r.str(limits::znode_data_bytes_max);
    if (!r.ok()) return corrupt("truncated node record");
    if (kind > static_cast<std::uint8_t>(NodeKind::Ttl) || null_data > 1 ||
        (null_data && !data.empty())) {
      return corrupt("bad node record for " + std::string(path));
    }
    Node* parent = nullptr;
    if (i == 0) {
      if (path != "/") return corrupt("first node is not the root");
    } else {
      if (!validate_path(path).ok() || path == "/") return corrupt("bad path");
      const std::string_view want = parent_path(path);
      while (!chain.empty() && chain.back()->path() != want)
        chain.pop_back();
      // Not on the chain: a file not in pre-order, which loads all the
      // same, by lookups.
      parent = chain.empty() ? t.lookup(want) : chain.back();
      if (parent == nullptr) return corrupt("node before its parent: " + std::string(path));
      if (t.lookup(path) != nullptr) return corrupt("duplicate node " + std::string(path));
      if (chain.empty()) chain.push_back(parent);
    }
    Node* n = t.alloc_node(path);
    n->kind = static_cast<NodeKind>(kind);
    n->null_data = null_data != 0;
    if (!data.empty()) {
      n->data = t.alloc_data(data.size());
      std::memcpy(n->data, data.data(), data.size());
      n->data_len = static_cast<std::uint32_t>(data.size());
    }
    n->czxid = r.i64();
    n->mzxid = r.i64();
    n->ctime = r.i64();
    n->mtime = r.i64();
    n->pzxid = r.i64();
    n->owner_or_ttl = r.i64();
    n->creates = r.u64();
    n->version = r.i32();
    n->aversion = r.i32();
    n->acl = r.u32();
    Status held = !r.ok()               ? corrupt("truncated node record")
                  : n->acl >= acls_read ? corrupt("node refers to an unknown ACL")
                                        : t.acls.restore_ref(n->acl);
    if (!held.ok()) {
      t.free_data(n->data, n->data_len);
      const std::size_t bytes = TreeImpl::node_bytes(n->path_len);
      n->~Node();
      t.arena.deallocate(n, bytes);
      return held;
    }
    t.link(n, parent, nullptr, parent ? parent->first_child : nullptr);
    chain.push_back(n);
  }
  const std::uint64_t digest = r.u64();
  if (!r.ok()) return corrupt("truncated digest");
  if (r.left() != 0) return corrupt("unexpected bytes after the digest");
  t.acls.finish_restore();
  if (digest != t.digest) return corrupt("tree digest differs from the recorded one");
  if (version == kFormatVersionUncountedQuotas) t.quota_recount_all();
  return Status();
}

}  // namespace coord::znode::detail
