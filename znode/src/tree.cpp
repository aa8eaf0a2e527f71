#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>

#include "coord/base/assert.h"
#include "coord/base/limits.h"
#include "coord/znode/tree.h"
#include "tree_impl.h"

namespace coord::znode {

bool Caller::is_super() const {
  return detail::caller_is_super(*this);
}

bool acl_allows(const AclList& acl, const Caller& caller, std::int32_t perm) {
  if (caller.is_super()) return true;
  for (const auto& a : acl) {
    if ((a.perms & perm) != 0 && a.id.scheme == "world" && a.id.id == "anyone") return true;
  }
  return detail::identity_granted(acl, caller, perm);
}

bool MultiResult::ok() const {
  return std::all_of(results.begin(), results.end(),
                     [](const MultiOpResult& r) { return r.err == ErrorCode::Ok; });
}

namespace detail {

// ---------------------------------------------------------------------------
// NodeTable
// ---------------------------------------------------------------------------

namespace {

// Paths are mostly short: two overlapping word compares instead of a call.
bool same_path(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  if (n >= 8 && n <= 16) {
    return load_le64(reinterpret_cast<const unsigned char*>(a.data())) ==
               load_le64(reinterpret_cast<const unsigned char*>(b.data())) &&
           load_le64(reinterpret_cast<const unsigned char*>(a.data() + n - 8)) ==
               load_le64(reinterpret_cast<const unsigned char*>(b.data() + n - 8));
  }
  return a == b;
}

}  // namespace

Node* NodeTable::find(std::string_view path, std::uint32_t h) const {
  const std::uint64_t tag = tag_of(h);
  for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
    const std::uint64_t s = slots_[i];
    if (s == 0) return nullptr;
    if ((s & ~kPtrMask) == tag) {
      Node* n = node_of(s);
      if (same_path(n->path(), path)) return n;
    }
  }
}

const Node* NodeTable::candidate(std::uint32_t h) const {
  const std::uint64_t tag = tag_of(h);
  for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
    const std::uint64_t s = slots_[i];
    if (s == 0) return nullptr;
    if ((s & ~kPtrMask) == tag) return node_of(s);
  }
}

void NodeTable::place(Node* n, std::uint32_t h) {
  const auto p = reinterpret_cast<std::uint64_t>(n);
  COORD_ASSERT((p & ~kPtrMask) == 0, "node pointer beyond 48 bits");
  std::size_t i = h & mask_;
  while (slots_[i] != 0)
    i = (i + 1) & mask_;
  slots_[i] = p | tag_of(h);
}

void NodeTable::grow() {
  rehash((mask_ + 1) * 2);
}

void NodeTable::reserve(std::size_t nodes) {
  std::size_t slots = capacity();
  while (nodes * 8 > slots * 7)
    slots *= 2;
  if (slots != capacity()) rehash(slots);
}

void NodeTable::rehash(std::size_t slots) {
  std::uint64_t* old = slots_;
  const std::size_t old_size = mask_ + 1;
  COORD_ASSERT(slots <= (std::size_t{1} << 31), "node table too large");
  reset(slots);
  for (std::size_t i = 0; i < old_size; ++i) {
    if (old[i] != 0) {
      Node* n = node_of(old[i]);
      place(n, path_hash32(n->path()));
    }
  }
  free_big(old);
}

void NodeTable::insert(Node* n) {
  // Keep the load at most 7/8: linear probing stays short and tags reject
  // most foreign slots without a node access.
  if ((size_ + 1) * 8 > capacity() * 7) grow();
  place(n, path_hash32(n->path()));
  ++size_;
}

void NodeTable::erase(Node* n) {
  const std::size_t mask = mask_;
  std::size_t i = path_hash32(n->path()) & mask;
  while (node_of(slots_[i]) != n) {
    COORD_ASSERT(slots_[i] != 0, "erase of a node not in the table");
    i = (i + 1) & mask;
  }
  // Backward-shift: pull later members of the probe run into the hole.
  for (std::size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    const std::uint64_t s = slots_[j];
    if (s == 0) break;
    const std::size_t home = path_hash32(node_of(s)->path()) & mask;
    const bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      slots_[i] = s;
      i = j;
    }
  }
  slots_[i] = 0;
  --size_;
}

// ---------------------------------------------------------------------------
// TreeImpl: structure, digest, Stat
// ---------------------------------------------------------------------------

TreeImpl::TreeImpl() = default;

TreeImpl::~TreeImpl() {
  clear();
}

void TreeImpl::clear() {
  std::vector<Node*> all;
  all.reserve(table.size());
  table.for_each([&](Node* n) { all.push_back(n); });
  for (Node* n : all) {
    free_data(n->data, n->data_len);
    const std::size_t bytes = node_bytes(n->path_len);
    n->~Node();
    arena.deallocate(n, bytes);
  }
  table.clear();
  root = nullptr;
  acls.clear();
  ephemerals.clear();
  containers.clear();
  ttls.clear();
  quotas.clear();
  digest = 0;
  ephemeral_count = 0;
  data_bytes = 0;
}

Node* TreeImpl::alloc_node(std::string_view path) {
  COORD_ASSERT(path.size() <= limits::znode_path_bytes_max, "path too long");
  void* mem = arena.allocate(node_bytes(path.size()));
  Node* n = new (mem) Node();
  std::memcpy(reinterpret_cast<char*>(n + 1), path.data(), path.size());
  n->path_len = static_cast<std::uint32_t>(path.size());
  return n;
}

void TreeImpl::free_node(Node* n) {
  acls.unref(n->acl);
  free_data(n->data, n->data_len);
  const std::size_t bytes = node_bytes(n->path_len);
  n->~Node();
  arena.deallocate(n, bytes);
}

void TreeImpl::link(Node* n, Node* parent, Node* prev, Node* next) {
  n->parent = parent;
  if (parent != nullptr) {
    n->prev_sibling = prev;
    n->next_sibling = next;
    if (prev != nullptr) {
      prev->next_sibling = n;
    } else {
      parent->first_child = n;
    }
    if (next != nullptr) next->prev_sibling = n;
    ++parent->num_children;
  } else {
    root = n;
  }
  table.insert(n);
  quota_link(n);
  switch (n->kind) {
    case NodeKind::Ephemeral:
      ephemerals[n->owner_or_ttl].insert(n->path());
      ++ephemeral_count;
      break;
    case NodeKind::Container:
      containers.insert(n->path());
      break;
    case NodeKind::Ttl:
      ttls.insert(n->path());
      break;
    case NodeKind::Persistent:
      break;
  }
  data_bytes += n->path_len + n->data_len;
  digest_add(*n);
}

void TreeImpl::unlink(Node* n) {
  digest_remove(*n);
  data_bytes -= n->path_len + n->data_len;
  switch (n->kind) {
    case NodeKind::Ephemeral: {
      auto it = ephemerals.find(n->owner_or_ttl);
      COORD_ASSERT(it != ephemerals.end(), "ephemeral index out of step");
      it->second.erase(n->path());
      if (it->second.empty()) ephemerals.erase(it);
      --ephemeral_count;
      break;
    }
    case NodeKind::Container:
      containers.erase(n->path());
      break;
    case NodeKind::Ttl:
      ttls.erase(n->path());
      break;
    case NodeKind::Persistent:
      break;
  }
  table.erase(n);
  quota_unlink(n);
  Node* parent = n->parent;
  COORD_ASSERT(parent != nullptr, "unlink of the root");
  if (n->prev_sibling != nullptr) {
    n->prev_sibling->next_sibling = n->next_sibling;
  } else {
    parent->first_child = n->next_sibling;
  }
  if (n->next_sibling != nullptr) n->next_sibling->prev_sibling = n->prev_sibling;
  --parent->num_children;
}

void TreeImpl::set_data(Node* n, const Data& data) {
  // Called with the node's digest contribution removed and its data bytes
  // uncounted by the caller. The buffer is exactly data_len bytes (null when
  // empty): a same-size update, the common case, copies in place.
  const auto len = data ? static_cast<std::uint32_t>(data->size()) : 0u;
  if (len != n->data_len) {
    free_data(n->data, n->data_len);
    n->data = len > 0 ? alloc_data(len) : nullptr;
  }
  if (len > 0) std::memcpy(n->data, data->data(), len);
  n->data_len = len;
  n->null_data = !data.has_value();
}

void TreeImpl::prefetch(std::span<const std::string_view> paths) const {
  constexpr std::size_t kLineBytes = 64;
  auto prefetch_lines = [](const void* p, std::size_t bytes) {
    bytes = std::min(bytes, limits::znode_prefetch_block_bytes_max);
    const char* c = static_cast<const char*>(p);
    for (std::size_t off = 0; off < bytes; off += kLineBytes)
      __builtin_prefetch(c + off);
    __builtin_prefetch(c + bytes - 1);
  };
  // Three passes over a few paths at a time, each starting the loads the
  // next one needs: index slots, then nodes, then data. Each pass waits
  // about one memory round trip for the loads of the previous one, all of
  // which were in flight together.
  std::uint32_t hashes[limits::znode_prefetch_paths_max];
  const Node* nodes[limits::znode_prefetch_paths_max];
  while (!paths.empty()) {
    const std::size_t n = std::min(paths.size(), limits::znode_prefetch_paths_max);
    for (std::size_t i = 0; i < n; ++i) {
      hashes[i] = path_hash32(paths[i]);
      table.prefetch_slot(hashes[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      nodes[i] = table.candidate(hashes[i]);
      if (nodes[i] != nullptr) prefetch_lines(nodes[i], node_bytes(paths[i].size()));
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Node* c = nodes[i];
      if (c != nullptr && c->data != nullptr) {
        prefetch_lines(c->data, c->data_len);
      }
    }
    paths = paths.subspan(n);
  }
}

std::uint64_t TreeImpl::node_hash(const Node& n, std::uint64_t path_hash,
                                  std::uint64_t data_hash) const {
  const std::uint64_t words[] = {
      path_hash,
      static_cast<std::uint64_t>(n.kind) | (n.null_data ? 0x100u : 0u),
      data_hash,
      static_cast<std::uint64_t>(n.czxid),
      static_cast<std::uint64_t>(n.mzxid),
      static_cast<std::uint64_t>(n.ctime),
      static_cast<std::uint64_t>(n.mtime),
      static_cast<std::uint64_t>(n.pzxid),
      static_cast<std::uint64_t>(n.owner_or_ttl),
      n.creates,
      (static_cast<std::uint64_t>(static_cast<std::uint32_t>(n.version)) << 32) |
          static_cast<std::uint32_t>(n.aversion),
      acls.get(n.acl).hash,
  };
  return hash_words(words, 0x7a6e6f6465);
}

Stat TreeImpl::stat_of(const Node& n) const {
  Stat s;
  s.czxid = n.czxid;
  s.mzxid = n.mzxid;
  s.ctime = n.ctime;
  s.mtime = n.mtime;
  s.version = n.version;
  // ZooKeeper shows 2 * (children created) - (children now): creates plus
  // deletes (docs/PROTOCOL.md §3.2). Wraps like ZooKeeper's int.
  s.cversion =
      static_cast<std::int32_t>(static_cast<std::uint32_t>(2 * n.creates - n.num_children));
  s.aversion = n.aversion;
  s.ephemeral_owner = n.kind == NodeKind::Ephemeral ? n.owner_or_ttl : 0;
  s.data_length = static_cast<std::int32_t>(n.data_len);
  s.num_children = static_cast<std::int32_t>(n.num_children);
  s.pzxid = n.pzxid;
  return s;
}

void TreeImpl::build_builtins() {
  auto add = [&](std::string_view path, Node* parent, const AclList& acl, std::int32_t aversion) {
    Node* n = alloc_node(path);
    n->acl = acls.intern(acl);
    n->aversion = aversion;
    link(n, parent, nullptr, parent ? parent->first_child : nullptr);
    return n;
  };
  Node* r = add("/", nullptr, open_acl_unsafe(), 0);
  Node* zk = add("/zookeeper", r, open_acl_unsafe(), 0);
  // Linked at the head: config first so that quota lists first, as in
  // ZooKeeper's own listing.
  add("/zookeeper/config", zk, read_acl_unsafe(), -1);
  add("/zookeeper/quota", zk, open_acl_unsafe(), 0);
}

}  // namespace detail

// ---------------------------------------------------------------------------
// DataTree::Impl: the operations
// ---------------------------------------------------------------------------

using detail::Node;
using detail::NodeKind;
using detail::Trigger;
using detail::Undo;

struct DataTree::Impl : detail::TreeImpl {
  bool allowed(const Node& n, const Caller& caller, bool is_super, std::int32_t perm) const {
    return acls.world_allows(n.acl, perm) || acls.allows(n.acl, caller, is_super, perm);
  }
  // For reads, which learn whether the caller is super only when the
  // world entries do not already grant `perm`.
  bool read_allowed(const Node& n, const Caller& caller, std::int32_t perm) const {
    return acls.world_allows(n.acl, perm) || acls.allows(n.acl, caller, caller.is_super(), perm);
  }

  Node* parent_for_write(std::string_view parent) const {
    // ZooKeeper files the root under "" too: the parent of "/x" is "".
    return parent.empty() ? root : lookup(parent);
  }

  static bool is_special(std::string_view path) {
    return path == "/" || path == "/zookeeper" || path == "/zookeeper/quota" ||
           path == "/zookeeper/config";
  }

  static bool version_matches(std::int32_t expected, std::int32_t actual) {
    return expected == -1 || expected == actual;
  }

  static std::int32_t next_version(std::int32_t v) {
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(v) + 1u);
  }

  // Records the parent's Stat fields a create or delete changes.
  static void save_parent(Node* p, std::vector<Undo>* undo) {
    if (undo == nullptr) return;
    Undo u{Undo::Kind::ParentStat};
    u.node = p;
    u.creates = p->creates;
    u.pzxid = p->pzxid;
    undo->push_back(u);
  }

  // ---- create (ZooKeeper 3.8's check order, PrepRequestProcessor) ----
  ErrorCode create(const CreateOp& op, const Caller& caller, bool is_super, Zxid zxid, TimeMs time,
                   std::vector<Undo>* undo, CreateResult* out) {
    const auto mode = create_mode_from_int(static_cast<std::int32_t>(op.mode));
    if (!mode) return ErrorCode::BadArguments;
    if (is_ttl(*mode) &&
        (op.ttl_ms < limits::znode_ttl_ms_min || op.ttl_ms > limits::znode_ttl_ms_max)) {
      return ErrorCode::BadArguments;
    }
    if (is_ephemeral(*mode) && caller.session.value() == 0) return ErrorCode::BadArguments;
    if (op.data && op.data->size() > limits::znode_data_bytes_max) return ErrorCode::BadArguments;
    const auto slash = op.path.rfind('/');
    if (slash == std::string::npos || op.path.find('\0') != std::string::npos) {
      return ErrorCode::BadArguments;
    }
    auto acl = detail::fixup_acl(op.acl, caller);
    if (!acl.ok()) return acl.code();
    Node* parent = parent_for_write(std::string_view(op.path).substr(0, slash));
    if (parent == nullptr) return ErrorCode::NoNode;
    if (!allowed(*parent, caller, is_super, perm::create)) return ErrorCode::NoAuth;
    std::string path = op.path;
    if (is_sequential(*mode)) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, "%0*" PRIu64, limits::sequential_suffix_digits,
                    parent->creates);
      path += suffix;
    }
    if (!validate_path(path).ok()) return ErrorCode::BadArguments;
    if (lookup(path) != nullptr) return ErrorCode::NodeExists;
    if (parent->kind == NodeKind::Ephemeral) return ErrorCode::NoChildrenForEphemerals;
    const auto data_len = static_cast<std::int64_t>(op.data ? op.data->size() : 0);
    if (auto e = quota_check(path, 1, data_len); e != ErrorCode::Ok) return e;

    Node* n = alloc_node(path);
    n->czxid = n->mzxid = n->pzxid = zxid.value();
    n->ctime = n->mtime = time.value();
    n->acl = acls.intern(*acl);
    if (is_ephemeral(*mode)) {
      n->kind = NodeKind::Ephemeral;
      n->owner_or_ttl = caller.session.value();
    } else if (is_container(*mode)) {
      n->kind = NodeKind::Container;
    } else if (is_ttl(*mode)) {
      n->kind = NodeKind::Ttl;
      n->owner_or_ttl = op.ttl_ms;
    }
    set_data(n, op.data);
    save_parent(parent, undo);
    digest_remove(*parent);
    ++parent->creates;
    parent->pzxid = zxid.value();
    link(n, parent, nullptr, parent->first_child);
    digest_add(*parent);
    if (undo != nullptr) {
      Undo u{Undo::Kind::Created};
      u.node = n;
      undo->push_back(u);
    }
    triggers.push_back(Trigger{Trigger::Kind::Created, n});
    if (out != nullptr) {
      out->path = std::move(path);
      out->stat = stat_of(*n);  // before a new stats node is counted, as 3.8 replies
    }
    if (!quotas.empty()) {
      quota_account(n->path(), 1, data_len, undo);
      quota_node_written(n, true, undo);
    }
    return ErrorCode::Ok;
  }

  // Unlinks `n` as a delete does and queues its watches.
  void remove_node(Node* n, Zxid zxid, std::vector<Undo>* undo) {
    Node* parent = n->parent;
    save_parent(parent, undo);
    Node* prev = n->prev_sibling;
    Node* next = n->next_sibling;
    digest_remove(*parent);
    unlink(n);
    parent->pzxid = std::max(parent->pzxid, zxid.value());
    digest_add(*parent);
    if (!quotas.empty()) quota_account(n->path(), -1, -std::int64_t{n->data_len}, undo);
    if (undo != nullptr) {
      Undo u{Undo::Kind::Deleted};
      u.node = n;
      u.prev = prev;
      u.next = next;
      undo->push_back(u);
    } else {
      graveyard.push_back(n);
    }
    triggers.push_back(Trigger{Trigger::Kind::Deleted, n});
  }

  ErrorCode remove(const DeleteOp& op, const Caller& caller, bool is_super, Zxid zxid,
                   std::vector<Undo>* undo) {
    const auto slash = op.path.rfind('/');
    if (slash == std::string::npos || op.path.find('\0') != std::string::npos ||
        is_special(op.path)) {
      return ErrorCode::BadArguments;
    }
    Node* parent = parent_for_write(std::string_view(op.path).substr(0, slash));
    if (parent == nullptr) return ErrorCode::NoNode;
    if (!allowed(*parent, caller, is_super, perm::remove)) return ErrorCode::NoAuth;
    Node* n = lookup(op.path);
    if (n == nullptr) return ErrorCode::NoNode;
    if (!version_matches(op.version, n->version)) return ErrorCode::BadVersion;
    if (n->num_children > 0) return ErrorCode::NotEmpty;
    remove_node(n, zxid, undo);
    return ErrorCode::Ok;
  }

  ErrorCode set(const SetDataOp& op, const Caller& caller, bool is_super, Zxid zxid, TimeMs time,
                std::vector<Undo>* undo, Stat* out) {
    // A path the index holds was valid when its node was made, so the path
    // rule is checked only on a miss; the error order stays path → size →
    // NoNode.
    const std::uint64_t path_hash = detail::hash_str(op.path);
    Node* n = op.path.empty() ? nullptr : table.find(op.path, detail::fold32(path_hash));
    if (n == nullptr && !validate_path(op.path).ok()) return ErrorCode::BadArguments;
    if (op.data && op.data->size() > limits::znode_data_bytes_max) return ErrorCode::BadArguments;
    if (n == nullptr) return ErrorCode::NoNode;
    if (!allowed(*n, caller, is_super, perm::write)) return ErrorCode::NoAuth;
    const std::int64_t bytes_diff =
        static_cast<std::int64_t>(op.data ? op.data->size() : 0) - std::int64_t{n->data_len};
    if (auto e = quota_check(op.path, 0, bytes_diff); e != ErrorCode::Ok) return e;
    if (!version_matches(op.version, n->version)) return ErrorCode::BadVersion;
    digest_remove(*n);
    data_bytes -= n->data_len;
    if (undo != nullptr) {
      Undo u{Undo::Kind::Data};
      u.node = n;
      u.data = n->data;
      u.data_len = n->data_len;
      u.null_data = n->null_data;
      u.version = n->version;
      u.mzxid = n->mzxid;
      u.mtime = n->mtime;
      undo->push_back(u);
      // The old buffer now belongs to the undo record.
      n->data = nullptr;
      n->data_len = 0;
    }
    set_data(n, op.data);
    data_bytes += n->data_len;
    n->version = next_version(n->version);
    n->mzxid = zxid.value();
    n->mtime = time.value();
    digest_add(*n, path_hash,
               op.data ? detail::hash_str(*op.data) : detail::hash_bytes(nullptr, 0));
    triggers.push_back(Trigger{Trigger::Kind::DataChanged, n});
    if (out != nullptr) *out = stat_of(*n);
    if (!quotas.empty()) {
      quota_account(n->path(), 0, bytes_diff, undo);
      quota_node_written(n, false, undo);
    }
    return ErrorCode::Ok;
  }

  ErrorCode check(const CheckOp& op, const Caller& caller, bool is_super, Stat* out) {
    Node* n = lookup(op.path);  // a hit is a valid path (see set())
    if (n == nullptr)
      return validate_path(op.path).ok() ? ErrorCode::NoNode : ErrorCode::BadArguments;
    if (!allowed(*n, caller, is_super, perm::read)) return ErrorCode::NoAuth;
    if (!version_matches(op.version, n->version)) return ErrorCode::BadVersion;
    if (out != nullptr) *out = stat_of(*n);
    return ErrorCode::Ok;
  }

  ErrorCode set_acl(const SetAclOp& op, const Caller& caller, bool is_super, Stat* out) {
    Node* n = lookup(op.path);  // a hit is a valid path (see set())
    if (n == nullptr && !validate_path(op.path).ok()) return ErrorCode::BadArguments;
    auto acl = detail::fixup_acl(op.acl, caller);
    if (!acl.ok()) return acl.code();
    if (n == nullptr) return ErrorCode::NoNode;
    if (!allowed(*n, caller, is_super, perm::admin)) return ErrorCode::NoAuth;
    if (!version_matches(op.version, n->aversion)) return ErrorCode::BadVersion;
    digest_remove(*n);
    const detail::AclRef old = n->acl;
    n->acl = acls.intern(*acl);
    acls.unref(old);
    n->aversion = next_version(n->aversion);
    digest_add(*n);
    if (out != nullptr) *out = stat_of(*n);
    return ErrorCode::Ok;
  }

  ErrorCode reap(const ReapOp& op, Zxid zxid, TimeMs time) {
    Node* n = lookup(op.path);
    if (n == nullptr) return ErrorCode::NoNode;
    if (n->kind != NodeKind::Container && n->kind != NodeKind::Ttl) return ErrorCode::BadArguments;
    if (n->num_children > 0) return ErrorCode::NotEmpty;
    if (!reapable(*n, time)) return ErrorCode::BadVersion;
    remove_node(n, zxid, nullptr);
    return ErrorCode::Ok;
  }

  static bool reapable(const Node& n, TimeMs now) {
    if (n.num_children > 0) return false;
    if (n.kind == NodeKind::Container) return n.creates > 0;
    if (n.kind == NodeKind::Ttl) return now.value() - n.mtime > n.owner_or_ttl;
    return false;
  }

  void close_session(SessionId session, Zxid zxid) {
    auto it = ephemerals.find(session.value());
    if (it == ephemerals.end()) return;
    std::vector<Node*> doomed;
    doomed.reserve(it->second.size());
    for (std::string_view p : it->second)
      doomed.push_back(lookup(p));
    for (Node* n : doomed)
      remove_node(n, zxid, nullptr);
  }

  // ---- multi ----
  void rollback(std::vector<Undo>& undo) {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
      Undo& u = *it;
      Node* n = u.node;
      switch (u.kind) {
        case Undo::Kind::Created: {
          Node* parent = n->parent;
          digest_remove(*parent);
          unlink(n);
          digest_add(*parent);
          free_node(n);
          break;
        }
        case Undo::Kind::Deleted: {
          Node* parent = n->parent;
          digest_remove(*parent);
          link(n, parent, u.prev, u.next);
          digest_add(*parent);
          break;
        }
        case Undo::Kind::Data:
          digest_remove(*n);
          data_bytes -= n->data_len;
          free_data(n->data, n->data_len);
          n->data = u.data;
          n->data_len = u.data_len;
          n->null_data = u.null_data;
          data_bytes += n->data_len;
          n->version = u.version;
          n->mzxid = u.mzxid;
          n->mtime = u.mtime;
          digest_add(*n);
          break;
        case Undo::Kind::ParentStat:
          digest_remove(*n);
          n->creates = u.creates;
          n->pzxid = u.pzxid;
          digest_add(*n);
          break;
      }
    }
    undo.clear();
  }

  void commit(std::vector<Undo>& undo) {
    for (Undo& u : undo) {
      if (u.kind == Undo::Kind::Deleted) graveyard.push_back(u.node);
      if (u.kind == Undo::Kind::Data) free_data(u.data, u.data_len);
    }
    undo.clear();
  }

  void multi(const MultiOp& op, const Caller& caller, bool is_super, Zxid zxid, TimeMs time,
             ApplyResult& res) {
    MultiResult mr;
    mr.results.resize(op.ops.size());
    std::vector<Undo> undo;
    std::size_t failed = op.ops.size();
    for (std::size_t i = 0; i < op.ops.size() && failed == op.ops.size(); ++i) {
      MultiOpResult& r = mr.results[i];
      std::visit(
          [&](const auto& sub) {
            using T = std::decay_t<decltype(sub)>;
            if constexpr (std::is_same_v<T, CreateOp>) {
              CreateResult cr;
              r.err = create(sub, caller, is_super, zxid, time, &undo, &cr);
              if (r.err == ErrorCode::Ok) r.create = std::move(cr);
            } else if constexpr (std::is_same_v<T, DeleteOp>) {
              r.err = remove(sub, caller, is_super, zxid, &undo);
            } else if constexpr (std::is_same_v<T, SetDataOp>) {
              Stat st;
              r.err = set(sub, caller, is_super, zxid, time, &undo, &st);
              if (r.err == ErrorCode::Ok) r.stat = st;
            } else {
              r.err = check(sub, caller, is_super, nullptr);
            }
          },
          op.ops[i]);
      if (r.err != ErrorCode::Ok) failed = i;
    }
    if (failed < op.ops.size()) {
      rollback(undo);
      triggers.clear();
      // Nothing was applied: only a refusal still tells something.
      std::erase_if(notices, [](const QuotaNotice& q) { return !q.refused; });
      for (std::size_t i = 0; i < mr.results.size(); ++i) {
        if (i == failed) continue;
        mr.results[i] =
            MultiOpResult{i < failed ? ErrorCode::Ok : ErrorCode::RuntimeInconsistency, {}, {}};
      }
    } else {
      commit(undo);
    }
    res.multi = std::move(mr);
  }

  // ---- watches ----
  void fire(Zxid zxid, std::vector<WatchEvent>& out) {
    if (!watches.empty()) {
      for (const Trigger& t : triggers) {
        const std::string_view path = t.node->path();
        const std::string_view parent = parent_path(path);
        // Nodes deleted by this txn are still allocated (graveyard), so
        // their ACLs and parents can be read here. Each event carries the
        // ACL of the node it tells about.
        std::size_t first = out.size();
        auto stamp = [&](const Node& about) {
          const AclList& acl = acls.get(about.acl).acl;
          for (std::size_t i = first; i < out.size(); ++i)
            out[i].acl = acl;
          first = out.size();
        };
        switch (t.kind) {
          case Trigger::Kind::Created:
            watches.trigger_data(path, EventType::NodeCreated, zxid, out, nullptr);
            stamp(*t.node);
            watches.trigger_child(parent, EventType::NodeChildrenChanged, zxid, out, nullptr);
            stamp(*t.node->parent);
            break;
          case Trigger::Kind::Deleted:
            fired.clear();
            watches.trigger_data(path, EventType::NodeDeleted, zxid, out, &fired);
            watches.trigger_child(path, EventType::NodeDeleted, zxid, out, &fired);
            stamp(*t.node);
            watches.trigger_child(parent, EventType::NodeChildrenChanged, zxid, out, nullptr);
            stamp(*t.node->parent);
            break;
          case Trigger::Kind::DataChanged:
            watches.trigger_data(path, EventType::NodeDataChanged, zxid, out, nullptr);
            stamp(*t.node);
            break;
        }
      }
    }
    triggers.clear();
    for (Node* n : graveyard)
      free_node(n);
    graveyard.clear();
  }
};

// ---------------------------------------------------------------------------
// DataTree
// ---------------------------------------------------------------------------

DataTree::DataTree(TreeConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->build_builtins();
}
DataTree::~DataTree() = default;
DataTree::DataTree(DataTree&&) noexcept = default;
DataTree& DataTree::operator=(DataTree&&) noexcept = default;

ApplyResult DataTree::apply(const Txn& txn, const Caller& caller, Zxid zxid, TimeMs time) {
  Impl& t = *impl_;
  COORD_ASSERT(zxid > t.last_zxid, "zxid ", zxid, " not after ", t.last_zxid);
  t.last_zxid = zxid;
  const bool is_super = caller.is_super();
  ApplyResult res;
  std::visit(
      [&](const auto& op) {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, CreateOp>) {
          CreateResult cr;
          res.err = t.create(op, caller, is_super, zxid, time, nullptr, &cr);
          if (res.err == ErrorCode::Ok) res.create = std::move(cr);
        } else if constexpr (std::is_same_v<T, DeleteOp>) {
          res.err = t.remove(op, caller, is_super, zxid, nullptr);
        } else if constexpr (std::is_same_v<T, SetDataOp>) {
          Stat st;
          res.err = t.set(op, caller, is_super, zxid, time, nullptr, &st);
          if (res.err == ErrorCode::Ok) res.stat = st;
        } else if constexpr (std::is_same_v<T, SetAclOp>) {
          Stat st;
          res.err = t.set_acl(op, caller, is_super, &st);
          if (res.err == ErrorCode::Ok) res.stat = st;
        } else if constexpr (std::is_same_v<T, CheckOp>) {
          Stat st;
          res.err = t.check(op, caller, is_super, &st);
          if (res.err == ErrorCode::Ok) res.stat = st;
        } else if constexpr (std::is_same_v<T, MultiOp>) {
          if (op.ops.size() > limits::multi_ops_max) {
            res.err = ErrorCode::BadArguments;
          } else {
            t.multi(op, caller, is_super, zxid, time, res);
          }
        } else if constexpr (std::is_same_v<T, CloseSessionOp>) {
          t.close_session(op.session, zxid);
        } else {
          static_assert(std::is_same_v<T, ReapOp>);
          res.err = t.reap(op, zxid, time);
        }
      },
      txn);
  t.fire(zxid, res.events);
  res.quota = std::move(t.notices);
  t.notices.clear();
  return res;
}

ApplyResult DataTree::set_config(std::string_view data, Zxid zxid) {
  Impl& t = *impl_;
  COORD_ASSERT(zxid > t.last_zxid, "zxid ", zxid, " not after ", t.last_zxid);
  t.last_zxid = zxid;
  static constexpr std::string_view path = "/zookeeper/config";
  const Node* n = t.lookup(path);
  COORD_ASSERT(n != nullptr, "the tree has no ", path);
  const TimeMs mtime(n->mtime);
  ApplyResult res;
  Stat st;
  res.err = t.set(SetDataOp{std::string(path), std::string(data), -1}, Caller{}, true, zxid, mtime,
                  nullptr, &st);
  COORD_ASSERT(res.err == ErrorCode::Ok, "setting ", path, ": ", res.err);
  res.stat = st;
  t.fire(zxid, res.events);
  res.quota = std::move(t.notices);
  t.notices.clear();
  return res;
}

std::string_view txn_first_path(const Txn& txn) {
  auto of_sub = [](const auto& op) -> std::string_view {
    using T = std::decay_t<decltype(op)>;
    if constexpr (std::is_same_v<T, CreateOp>) {
      return parent_path(op.path);
    } else if constexpr (std::is_same_v<T, MultiOp> || std::is_same_v<T, CloseSessionOp>) {
      return {};
    } else {
      return op.path;
    }
  };
  if (const auto* m = std::get_if<MultiOp>(&txn)) {
    return m->ops.empty() ? std::string_view() : std::visit(of_sub, m->ops.front());
  }
  return std::visit(of_sub, txn);
}

void DataTree::prefetch(std::span<const std::string_view> paths) const {
  impl_->prefetch(paths);
}

Result<Stat> DataTree::exists(std::string_view path) const {
  const Node* n = impl_->lookup(path);
  if (n == nullptr) return ErrorCode::NoNode;
  return impl_->stat_of(*n);
}

Result<DataView> DataTree::get_data(std::string_view path, const Caller& caller) const {
  const Node* n = impl_->lookup(path);
  if (n == nullptr) return ErrorCode::NoNode;
  if (!impl_->read_allowed(*n, caller, perm::read)) return ErrorCode::NoAuth;
  return Result<DataView>(std::in_place, n->data_view(), impl_->stat_of(*n));
}

Result<ChildrenView> DataTree::get_children(std::string_view path, const Caller& caller) const {
  const Node* n = impl_->lookup(path);
  if (n == nullptr) return ErrorCode::NoNode;
  if (!impl_->read_allowed(*n, caller, perm::read)) return ErrorCode::NoAuth;
  ChildrenView v;
  v.children.reserve(n->num_children);
  for (const Node* c = n->first_child; c != nullptr; c = c->next_sibling)
    v.children.push_back(c->name());
  v.stat = impl_->stat_of(*n);
  return v;
}

bool DataTree::allows(std::string_view path, const Caller& caller, std::int32_t perms) const {
  const Node* n = impl_->lookup(path);
  return n != nullptr && impl_->allowed(*n, caller, caller.is_super(), perms);
}

Result<AclView> DataTree::get_acl(std::string_view path, const Caller& caller) const {
  const Node* n = impl_->lookup(path);
  if (n == nullptr) return ErrorCode::NoNode;
  const bool is_super = caller.is_super();
  if (!impl_->allowed(*n, caller, is_super, perm::read | perm::admin)) return ErrorCode::NoAuth;
  const AclList& acl = impl_->acls.get(n->acl).acl;
  AclView v;
  v.acl = impl_->allowed(*n, caller, is_super, perm::admin) ? acl : detail::mask_digests(acl);
  v.stat = impl_->stat_of(*n);
  return v;
}

Result<std::int64_t> DataTree::get_all_children_number(std::string_view path,
                                                       const Caller& caller) const {
  const Node* n = impl_->lookup(path);
  if (n == nullptr) return ErrorCode::NoNode;
  if (!impl_->read_allowed(*n, caller, perm::read)) return ErrorCode::NoAuth;
  if (n == impl_->root) return static_cast<std::int64_t>(impl_->table.size()) - 1;
  std::int64_t count = 0;
  std::vector<const Node*> stack{n};
  while (!stack.empty()) {
    const Node* x = stack.back();
    stack.pop_back();
    for (const Node* c = x->first_child; c != nullptr; c = c->next_sibling) {
      ++count;
      if (c->first_child != nullptr) stack.push_back(c);
    }
  }
  return count;
}

std::vector<std::string> DataTree::get_ephemerals(SessionId session,
                                                  std::string_view prefix) const {
  std::vector<std::string> out;
  auto it = impl_->ephemerals.find(session.value());
  if (it == impl_->ephemerals.end()) return out;
  for (std::string_view p : it->second) {
    if (p.starts_with(prefix)) out.emplace_back(p);
  }
  return out;
}

void DataTree::visit_ephemerals(SessionId session, std::string_view prefix,
                                const std::function<bool(std::string_view)>& fn) const {
  auto it = impl_->ephemerals.find(session.value());
  if (it == impl_->ephemerals.end()) return;
  for (std::string_view p : it->second) {
    if (p.starts_with(prefix) && !fn(p)) return;
  }
}

std::vector<ReadOpResult> DataTree::multi_read(const std::vector<ReadOp>& ops,
                                               const Caller& caller) const {
  std::vector<ReadOpResult> out;
  out.reserve(ops.size());
  for (const ReadOp& op : ops) {
    ReadOpResult r;
    if (op.kind == ReadOp::Kind::GetData) {
      auto d = get_data(op.path, caller);
      r.err = d.code();
      if (d.ok()) r.data = std::move(d).value();
    } else {
      auto c = get_children(op.path, caller);
      r.err = c.code();
      if (c.ok()) r.children = std::move(c).value().children;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<SessionId> DataTree::sessions_with_ephemerals() const {
  std::vector<SessionId> out;
  for (const auto& [s, paths] : impl_->ephemerals)
    out.emplace_back(s);
  return out;
}

std::vector<std::string> DataTree::reap_candidates(TimeMs now) const {
  std::vector<std::string> out;
  for (const auto* set : {&impl_->containers, &impl_->ttls}) {
    for (std::string_view p : *set) {
      const Node* n = impl_->lookup(p);
      if (Impl::reapable(*n, now)) out.emplace_back(p);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Zxid DataTree::last_zxid() const {
  return impl_->last_zxid;
}
std::size_t DataTree::node_count() const {
  return impl_->table.size();
}
std::size_t DataTree::ephemeral_count() const {
  return impl_->ephemeral_count;
}
std::size_t DataTree::approximate_data_bytes() const {
  return impl_->data_bytes;
}

Status DataTree::add_watch(WatcherId watcher, std::string_view path, WatchKind kind) {
  return impl_->watches.add(watcher, path, kind);
}

void DataTree::set_watches_per_connection_max(std::size_t n) {
  impl_->watches.set_per_watcher_max(n);
}

Status DataTree::check_watches(WatcherId watcher, std::string_view path, WatcherType type) const {
  const std::uint8_t bits = detail::WatchIndex::bits_of(type);
  if (bits == 0 || !impl_->watches.has(watcher, path, bits)) return ErrorCode::NoWatcher;
  return Status();
}

Status DataTree::remove_watches(WatcherId watcher, std::string_view path, WatcherType type) {
  const std::uint8_t bits = detail::WatchIndex::bits_of(type);
  if (bits == 0 || !impl_->watches.remove(watcher, path, bits)) return ErrorCode::NoWatcher;
  return Status();
}

std::vector<WatchEvent> DataTree::set_watches(WatcherId watcher, const SetWatchesRequest& req,
                                              Status* refused) {
  Impl& t = *impl_;
  std::vector<WatchEvent> out;
  const std::int64_t rel = req.relative_zxid.value();
  // A catch-up event about a live node carries its ACL, as a fired one
  // does; one about a node that is gone has nothing left to protect.
  auto event = [&](EventType type, const std::string& path, const Node* about = nullptr) {
    out.push_back(WatchEvent{watcher, type, path, t.last_zxid, std::nullopt});
    if (about != nullptr) out.back().acl = t.acls.get(about->acl).acl;
  };
  // A registration refused by the per-connection limit is skipped and
  // reported; catch-up events take no registration and still go out.
  auto add = [&](const std::string& p, WatchKind kind) {
    Status st = t.watches.add(watcher, p, kind);
    if (!st.ok() && refused != nullptr) *refused = st;
  };
  for (const auto& p : req.data) {
    const Node* n = t.lookup(p);
    if (n == nullptr) {
      event(EventType::NodeDeleted, p);
    } else if (n->mzxid > rel) {
      event(EventType::NodeDataChanged, p, n);
    } else {
      add(p, WatchKind::Data);
    }
  }
  for (const auto& p : req.exist) {
    if (const Node* n = t.lookup(p); n != nullptr) {
      event(EventType::NodeCreated, p, n);
    } else {
      add(p, WatchKind::Exist);
    }
  }
  for (const auto& p : req.child) {
    const Node* n = t.lookup(p);
    if (n == nullptr) {
      event(EventType::NodeDeleted, p);
    } else if (n->pzxid > rel) {
      event(EventType::NodeChildrenChanged, p, n);
    } else {
      add(p, WatchKind::Child);
    }
  }
  for (const auto& p : req.persistent)
    add(p, WatchKind::Persistent);
  for (const auto& p : req.persistent_recursive)
    add(p, WatchKind::PersistentRecursive);
  return out;
}

void DataTree::remove_watcher(WatcherId watcher) {
  impl_->watches.remove_watcher(watcher);
}

std::size_t DataTree::watch_count() const {
  return impl_->watches.count();
}

std::size_t DataTree::watched_path_count() const {
  return impl_->watches.paths();
}

std::size_t DataTree::watching_connection_count() const {
  return impl_->watches.watchers();
}

void DataTree::visit_watches_by_path(
    const std::function<bool(std::string_view, WatcherId)>& fn) const {
  impl_->watches.visit_by_path(fn);
}

void DataTree::visit_watches_by_watcher(
    const std::function<bool(WatcherId, std::string_view)>& fn) const {
  impl_->watches.visit_by_watcher(fn);
}

void DataTree::for_each_watch(
    const std::function<void(WatcherId, std::string_view path, WatchKind)>& fn) const {
  impl_->watches.for_each(fn);
}

std::uint64_t DataTree::digest() const {
  return impl_->digest;
}

}  // namespace coord::znode

namespace coord::znode {

std::string DataTree::write_snapshot() const {
  return detail::write_snapshot(*impl_);
}

const TreeConfig& DataTree::config() const {
  return impl_->config;
}

Result<DataTree> DataTree::read_snapshot(std::string_view bytes, TreeConfig config) {
  DataTree t(config);
  t.impl_->clear();
  Status s = detail::read_snapshot(bytes, *t.impl_);
  if (!s.ok()) return s;
  return t;
}

}  // namespace coord::znode
