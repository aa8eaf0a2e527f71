// The inside of DataTree, shared by tree.cpp and snapshot.cpp.
//
// Layout, chosen for a million-node tree (see znode/README.md):
// * one Node allocation per znode, its full path stored inline after the
//   struct; children form an intrusive doubly linked sibling list, so a
//   child's name is never stored twice;
// * a flat open-addressing table of tagged Node pointers keyed by the full
//   path: a lookup hashes the path once and walks no levels;
// * ACL lists interned in an AclTable; a node holds a 4-byte reference;
// * data in its own buffer, reused in place by setData when it fits;
// * nodes and data buffers carved from an Arena on huge pages (arena.h).
// Thread safety: none.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "acl.h"
#include "arena.h"
#include "coord/znode/tree.h"
#include "hash.h"
#include "watches.h"

namespace coord::znode::detail {

enum class NodeKind : std::uint8_t { Persistent = 0, Ephemeral = 1, Container = 2, Ttl = 3 };

struct Node {
  Node* parent = nullptr;
  Node* first_child = nullptr;
  Node* next_sibling = nullptr;
  Node* prev_sibling = nullptr;
  char* data = nullptr;  // from TreeImpl::alloc_data, data_len bytes; null when empty
  std::int64_t czxid = 0;
  std::int64_t mzxid = 0;
  std::int64_t ctime = 0;
  std::int64_t mtime = 0;
  std::int64_t pzxid = 0;
  std::int64_t owner_or_ttl = 0;  // session of an ephemeral, TTL in ms of a TTL node
  std::uint64_t creates = 0;      // children ever created: ZooKeeper's internal cversion
  std::uint64_t hash = 0;         // contribution to the tree digest while linked
  std::int32_t version = 0;
  std::int32_t aversion = 0;
  std::uint32_t num_children = 0;
  std::uint32_t data_len = 0;
  AclRef acl = 0;
  // One word for the rest: a path is at most znode_path_bytes_max long.
  std::uint32_t path_len : 23 = 0;
  bool null_data : 1 = false;
  NodeKind kind : 8 = NodeKind::Persistent;

  std::string_view path() const { return {reinterpret_cast<const char*>(this + 1), path_len}; }
  std::string_view name() const {
    auto p = path();
    return p.substr(p.rfind('/') + 1);
  }
  std::optional<std::string_view> data_view() const {
    if (null_data) return std::nullopt;
    return std::string_view(data, data_len);
  }
};

// Two cache lines. A znode costs this, its path and its data (each rounded
// to the arena's 8 bytes) and about 10 bytes of index slot. The index finds
// a node's slot again from its path's hash, which it computes rather than
// keeps here (4 bytes more would take the struct to 136).
static_assert(sizeof(Node) == 128, "Node grew: recheck the per-znode memory budget");
static_assert(limits::znode_path_bytes_max < (std::size_t{1} << 23), "Node::path_len too narrow");

// The index keys on 32 bits of the path's 64-bit hash; the digest uses
// all 64, so one hash of a path serves both.
inline std::uint32_t fold32(std::uint64_t h) {
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}
inline std::uint32_t path_hash32(std::string_view path) {
  return fold32(hash_str(path));
}

// Open addressing, linear probing, backward-shift deletion. A slot is 0
// (empty) or a Node pointer with 16 bits of tag from its hash in the top
// bits, so most mismatches are rejected without touching the node. A node
// does not keep its hash: moving one (growth, deletion's backward shift)
// hashes its path again.
class NodeTable {
 public:
  NodeTable() { reset(kMinSlots); }
  ~NodeTable() { free_big(slots_); }
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;
  Node* find(std::string_view path) const { return find(path, path_hash32(path)); }
  Node* find(std::string_view path, std::uint32_t h) const;
  // Starts loading the slot where a lookup of `h` begins.
  void prefetch_slot(std::uint32_t h) const { __builtin_prefetch(&slots_[h & mask_]); }
  // The first node of `h`'s probe run whose tag matches, without reading any
  // node: likely, not surely, the node a find() would return.
  const Node* candidate(std::uint32_t h) const;
  void insert(Node* n);  // the path must be absent
  // Room for `nodes` nodes in all without growing (a snapshot's load).
  void reserve(std::size_t nodes);
  void erase(Node* n);
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return mask_ + 1; }
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i <= mask_; ++i) {
      if (slots_[i] != 0) fn(node_of(slots_[i]));
    }
  }
  void clear() {
    free_big(slots_);
    reset(kMinSlots);
    size_ = 0;
  }

 private:
  static constexpr std::size_t kMinSlots = 16;
  static constexpr std::uint64_t kPtrMask = (std::uint64_t{1} << 48) - 1;
  // The top half of the hash: the index uses its low bits, so in all but
  // the largest tables the tag adds bits the home slot does not share.
  static std::uint64_t tag_of(std::uint32_t h) { return static_cast<std::uint64_t>(h >> 16) << 48; }
  static Node* node_of(std::uint64_t slot) { return reinterpret_cast<Node*>(slot & kPtrMask); }
  // Points slots_ at `n` (a power of two) zeroed slots: a big table is
  // randomly accessed and lives on huge pages when the kernel allows.
  void reset(std::size_t n) {
    slots_ = static_cast<std::uint64_t*>(allocate_big(n * sizeof(std::uint64_t)));
    mask_ = n - 1;
  }
  void grow();
  void rehash(std::size_t slots);  // moves every node to a table of `slots`
  void place(Node* n, std::uint32_t h);

  std::uint64_t* slots_ = nullptr;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

// One step of a multi that can be undone (the multi is applied op by op,
// then rolled back if an op fails).
struct Undo {
  enum class Kind : std::uint8_t { Created, Deleted, Data, ParentStat } kind;
  Node* node = nullptr;
  Node* prev = nullptr;  // Deleted: siblings around the node when it was unlinked
  Node* next = nullptr;
  char* data = nullptr;  // Data: the previous buffer and Stat fields
  std::uint32_t data_len = 0;
  bool null_data = false;
  std::int32_t version = 0;
  std::int64_t mzxid = 0;
  std::int64_t mtime = 0;
  std::uint64_t creates = 0;  // ParentStat
  std::int64_t pzxid = 0;
};

// A change whose watches fire once the txn has applied.
struct Trigger {
  enum class Kind : std::uint8_t { Created, Deleted, DataChanged } kind;
  Node* node;
};

// The quota nodes of one quota root P (`/zookeeper/quota<P>/zookeeper_*`);
// either may be missing. P has a quota while its limits node exists.
struct QuotaRoot {
  Node* limits = nullptr;
  Node* stats = nullptr;
};

struct TreeImpl {
  TreeImpl();
  ~TreeImpl();

  // ---- structure ----
  Node* alloc_node(std::string_view path);
  void free_node(Node* n);  // n must be unlinked
  // Links an allocated node under `parent` (nullptr for the root) without
  // touching the parent's Stat: index, sibling list, counters, digest.
  void link(Node* n, Node* parent, Node* prev, Node* next);
  void unlink(Node* n);
  void set_data(Node* n, const Data& data);
  // Data buffers live in the arena; the size is the owner's data_len.
  char* alloc_data(std::size_t len) { return static_cast<char*>(arena.allocate(len)); }
  void free_data(char* p, std::size_t len) {
    if (p != nullptr) arena.deallocate(p, len);
  }
  static std::size_t node_bytes(std::size_t path_len) { return sizeof(Node) + path_len; }

  // ---- digest ----
  // A node's contribution is computed when it changes and kept in the node,
  // so an update costs one hash of the node, not two.
  // `data_hash` is hash_bytes() of the node's data, which a caller that
  // just copied the data may take from its source (in cache) rather than
  // from the node's buffer (perhaps still on its way from memory).
  // Likewise `path_hash` is hash_str() of its path, which a lookup has
  // computed already.
  std::uint64_t node_hash(const Node& n, std::uint64_t path_hash, std::uint64_t data_hash) const;
  std::uint64_t node_hash(const Node& n) const {
    return node_hash(n, hash_str(n.path()), hash_bytes(n.data, n.data_len));
  }
  void digest_add(Node& n) {
    n.hash = node_hash(n);
    digest += n.hash;
  }
  void digest_add(Node& n, std::uint64_t path_hash, std::uint64_t data_hash) {
    n.hash = node_hash(n, path_hash, data_hash);
    digest += n.hash;
  }
  void digest_remove(const Node& n) { digest -= n.hash; }

  Stat stat_of(const Node& n) const;
  Node* lookup(std::string_view path) const {
    if (path.empty()) return nullptr;
    return table.find(path);
  }
  // noipa: the function only reads memory, so GCC would otherwise find it
  // pure and drop every call to it, prefetches and all.
  [[gnu::noipa]] void prefetch(std::span<const std::string_view> paths) const;

  void build_builtins();
  void clear();

  // ---- quotas (quota.cpp) ----
  // Keep `quotas` in step with the limits and stats nodes; link() and
  // unlink() call them for every node.
  void quota_link(Node* n);
  void quota_unlink(Node* n);
  // QuotaExceeded when, with enforcement on, a change of `count` nodes and
  // `bytes` bytes at `path` would pass a hard limit of a quota at or above
  // it (only growth is refused). Records the refusal in `notices`.
  ErrorCode quota_check(std::string_view path, std::int64_t count, std::int64_t bytes);
  // Adds a change at `path` to the usage of every quota at or above it and
  // reports limits the change went past.
  void quota_account(std::string_view path, std::int64_t count, std::int64_t bytes,
                     std::vector<Undo>* undo);
  // After a create (`created`) or setData of `n`: a new stats node, or a
  // limits node created or changed, has its subtree counted.
  void quota_node_written(Node* n, bool created, std::vector<Undo>* undo);
  // Writes the true usage of the subtree at `root` into its stats node.
  void quota_recount(std::string_view root, std::vector<Undo>* undo);
  void quota_recount_all();
  // Replaces a stats node's data as the tree's own bookkeeping: Stat
  // version and mzxid stay, no watch fires.
  void quota_write_stats(Node* stats, const std::string& text, std::vector<Undo>* undo);

  Arena arena;  // nodes and data buffers; declared first, destroyed last
  NodeTable table;
  Node* root = nullptr;
  AclTable acls;
  WatchIndex watches;
  std::map<std::int64_t, std::set<std::string_view>> ephemerals;  // session -> paths
  std::set<std::string_view> containers;
  std::set<std::string_view> ttls;
  // Quota roots by path (P, not the quota node's path). Small: one entry
  // per quota.
  std::map<std::string, QuotaRoot, std::less<>> quotas;
  TreeConfig config;
  Zxid last_zxid{0};
  std::uint64_t digest = 0;
  std::size_t ephemeral_count = 0;
  std::size_t data_bytes = 0;

  // Scratch of one apply.
  std::vector<Trigger> triggers;
  std::vector<Node*> graveyard;
  std::vector<WatcherId> fired;
  std::vector<QuotaNotice> notices;
};

}  // namespace coord::znode::detail

namespace coord::znode::detail {

// Quota data text as ZooKeeper's StatsTrack reads and writes it: pairs
// `key=value` separated by runs of ',' or ';', written as
// "count=C,bytes=B" followed, when there are other keys, by "=" and
// ";key=value" for each in key order. A missing key reads as -1.
class QuotaText {
 public:
  // nullopt when ZooKeeper could not parse the text either (a pair
  // without '=', a value that is not a 64-bit integer).
  static std::optional<QuotaText> parse(std::string_view text);
  bool has(std::string_view key) const;
  std::int64_t get(std::string_view key) const;
  void set(std::string_view key, std::int64_t value);
  std::string format() const;

 private:
  std::map<std::string, std::int64_t, std::less<>> fields_;
};

// Snapshot byte layout: see snapshot.cpp and znode/README.md.
std::string write_snapshot(const TreeImpl& t);
// Loads into an empty `t`; on error `t` is left for the caller to discard.
Status read_snapshot(std::string_view bytes, TreeImpl& t);

}  // namespace coord::znode::detail
