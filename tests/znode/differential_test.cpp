// Randomized differential test of the data tree against a reference model.
//
// The model below is deliberately naive: a std::map from full path to node,
// whole-state copies for multi, linear scans for watches. It is written from
// ZooKeeper 3.8's observable behaviour (docs/PROTOCOL.md and answers of a
// real 3.8 server), not from the implementation, so that both have to agree
// on every result, Stat, error code and watch event.
//
// Error precedence follows what a real 3.8 server answers, which is the order
// of its request preparation, e.g. for create: TTL range, the path's last
// slash, ACL fix-up (InvalidAcl), parent (NoNode), CREATE on the parent
// (NoAuth), sequential suffix, full path rule (BadArguments), NodeExists,
// ephemeral parent (NoChildrenForEphemerals).
//
// Compared after every step: error codes, created paths, every Stat, multi
// per-op results, the watch events each watcher received (in order; as a
// set for a session close, which deletes in no defined order) and
// last_zxid; every 64 steps the whole tree, the ephemeral and reap indexes
// and the watch table. The digest must move exactly when the contents do.
// Two choices are coord's, not 3.8's: a one-shot and a persistent watch of
// one connection on one path stay independent (3.8 lets the later one
// replace the other, ZOOKEEPER-4466), and a stale ReapOp (an internal txn
// with no ZooKeeper counterpart) is only required to fail.
//
// Replay a failure with the seed it prints:
//   COORD_ZNODE_DIFF_SEED=<seed> COORD_ZNODE_DIFF_STEPS=<steps>
//     ./znode_test --gtest_filter='ZnodeDifferential.*'
// COORD_ZNODE_DIFF_SEEDS=<n> runs n seeds (from COORD_ZNODE_DIFF_FIRST_SEED,
// default 1) instead of the default eight; long campaigns just raise both.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "coord/base/limits.h"
#include "coord/base/random.h"
#include "coord/znode/ops.h"
#include "coord/znode/tree.h"

namespace coord::znode {
namespace {

// ===========================================================================
// Reference model
// ===========================================================================

// Java's String.split(":") keeps leading empty parts and drops trailing ones.
std::vector<std::string> java_split_colon(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : s) {
    if (c == ':') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  parts.push_back(cur);
  while (!parts.empty() && parts.back().empty())
    parts.pop_back();
  return parts;
}

// Dotted IPv4 "a.b.c.d", each part 0..255; nullopt otherwise.
std::optional<std::uint32_t> parse_ipv4(const std::string& s) {
  std::uint32_t out = 0;
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t j = s.find('.', i);
    std::string part = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (part.empty() || part.size() > 3) return std::nullopt;
    for (char c : part) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    int v = std::stoi(part);
    if (v > 255) return std::nullopt;
    out = (out << 8) | static_cast<std::uint32_t>(v);
    ++parts;
    if (j == std::string::npos) break;
    i = j + 1;
  }
  if (parts != 4) return std::nullopt;
  return out;
}

// An ip ACL id: "a.b.c.d" or "a.b.c.d/bits" with bits 0..32.
std::optional<std::pair<std::uint32_t, int>> parse_ip_acl(const std::string& s) {
  std::size_t slash = s.find('/');
  auto addr = parse_ipv4(s.substr(0, slash));
  if (!addr) return std::nullopt;
  int bits = 32;
  if (slash != std::string::npos) {
    std::string b = s.substr(slash + 1);
    if (b.empty() || b.size() > 2) return std::nullopt;
    for (char c : b) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    bits = std::stoi(b);
    if (bits > 32) return std::nullopt;
  }
  return std::make_pair(*addr, bits);
}

bool ip_matches(const std::string& caller_ip, const std::string& acl_id) {
  auto acl = parse_ip_acl(acl_id);
  auto ip = parse_ipv4(caller_ip);
  if (!acl || !ip) return false;
  std::uint32_t mask = acl->second == 0 ? 0 : ~std::uint32_t{0} << (32 - acl->second);
  return (acl->first & mask) == (*ip & mask);
}

// Java's PathUtils.validatePath, on the UTF-16 units a Java server sees.
// Malformed UTF-8 decodes to U+FFFD, which the rule refuses; code points
// past U+FFFF become surrogates, which it refuses too.
bool model_valid_path(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  if (path.size() == 1) return true;
  if (path.back() == '/') return false;
  std::vector<std::uint32_t> cps;
  for (std::size_t i = 0; i < path.size();) {
    auto b = static_cast<unsigned char>(path[i]);
    std::uint32_t cp = 0;
    int len = 0;
    if (b < 0x80) {
      cp = b;
      len = 1;
    } else if ((b & 0xE0) == 0xC0) {
      cp = b & 0x1F;
      len = 2;
    } else if ((b & 0xF0) == 0xE0) {
      cp = b & 0x0F;
      len = 3;
    } else if ((b & 0xF8) == 0xF0) {
      cp = b & 0x07;
      len = 4;
    } else {
      return false;
    }
    if (i + len > path.size()) return false;
    for (int k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(path[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    // Overlong forms and UTF-8-encoded surrogates are malformed too.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    if (cp >= 0x10000) return false;  // a surrogate pair in Java
    cps.push_back(cp);
    i += len;
  }
  for (std::size_t i = 1; i < cps.size(); ++i) {
    std::uint32_t c = cps[i];
    std::uint32_t last = cps[i - 1];
    bool at_end = i + 1 == cps.size();
    if (c == 0) return false;
    if (c == '/' && last == '/') return false;
    if (c == '.' && last == '.') {
      if (cps[i - 2] == '/' && (at_end || cps[i + 1] == '/')) return false;
    } else if (c == '.') {
      if (last == '/' && (at_end || cps[i + 1] == '/')) return false;
    } else if ((c > 0 && c <= 0x1F) || (c >= 0x7F && c <= 0x9F) || (c >= 0xD800 && c <= 0xF8FF) ||
               c >= 0xFFF0) {
      return false;
    }
  }
  return true;
}

std::string model_parent(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool is_special(const std::string& path) {
  return path == "/" || path == "/zookeeper" || path == "/zookeeper/quota" ||
         path == "/zookeeper/config";
}

struct MNode {
  Data data;
  AclList acl;
  std::int64_t czxid = 0, mzxid = 0, ctime = 0, mtime = 0, pzxid = 0;
  std::int32_t version = 0, aversion = 0;
  std::int64_t creates = 0;  // child creations ever (ZooKeeper's stored cversion)
  std::int64_t session = 0;  // ephemeral owner, 0 if not ephemeral
  CreateMode mode = CreateMode::Persistent;
  std::int64_t ttl = 0;
  std::set<std::string> children;
};

using WatchKey = std::tuple<WatcherId, std::string, WatchKind>;

class Model {
 public:
  Model() {
    MNode root;
    root.data = std::string();
    root.acl = open_acl_unsafe();
    root.children = {"zookeeper"};
    nodes_["/"] = root;
    MNode zk;
    zk.data = std::string();
    zk.acl = open_acl_unsafe();
    zk.children = {"config", "quota"};
    nodes_["/zookeeper"] = zk;
    MNode quota;
    quota.data = std::string();
    quota.acl = open_acl_unsafe();
    nodes_["/zookeeper/quota"] = quota;
    MNode config;
    config.data = std::string();
    config.acl = read_acl_unsafe();
    config.aversion = -1;
    nodes_["/zookeeper/config"] = config;
  }

  const std::map<std::string, MNode>& nodes() const { return nodes_; }
  std::int64_t last_zxid() const { return last_zxid_; }

  Stat stat_of(const MNode& n) const {
    Stat s;
    s.czxid = n.czxid;
    s.mzxid = n.mzxid;
    s.ctime = n.ctime;
    s.mtime = n.mtime;
    s.version = n.version;
    s.num_children = static_cast<std::int32_t>(n.children.size());
    s.cversion =
        static_cast<std::int32_t>(2 * n.creates - static_cast<std::int64_t>(n.children.size()));
    s.aversion = n.aversion;
    s.ephemeral_owner = n.session;
    s.data_length = n.data ? static_cast<std::int32_t>(n.data->size()) : 0;
    s.pzxid = n.pzxid;
    return s;
  }

  static bool allowed(const AclList& acl, std::int32_t perm, const Caller& c) {
    for (const Id& id : c.identities) {
      if (id.scheme == "super") return true;
    }
    if (acl.empty()) return true;
    for (const Acl& a : acl) {
      if ((a.perms & perm) == 0) continue;
      if (a.id.scheme == "world" && a.id.id == "anyone") return true;
      for (const Id& id : c.identities) {
        if (id.scheme != a.id.scheme) continue;
        if (a.id.scheme == "digest" && id.id == a.id.id) return true;
        if (a.id.scheme == "ip" && ip_matches(id.id, a.id.id)) return true;
      }
    }
    return false;
  }

  // ZooKeeper's fixupACL: remove duplicates, refuse empty, expand `auth` to
  // the caller's authenticated (digest) identities, validate the rest. The
  // expansion is not deduplicated again (a real 3.8 server keeps both).
  static std::optional<AclList> fixup(const AclList& in, const Caller& c) {
    AclList uniq;
    for (const Acl& a : in) {
      if (std::find(uniq.begin(), uniq.end(), a) == uniq.end()) uniq.push_back(a);
    }
    if (uniq.empty()) return std::nullopt;
    AclList out;
    for (const Acl& a : uniq) {
      if (a.id.scheme == "world" && a.id.id == "anyone") {
        out.push_back(a);
      } else if (a.id.scheme == "auth") {
        bool any = false;
        for (const Id& id : c.identities) {
          if (id.scheme == "digest") {
            out.push_back(Acl{a.perms, id});
            any = true;
          }
        }
        if (!any) return std::nullopt;
      } else if (a.id.scheme == "digest") {
        if (java_split_colon(a.id.id).size() != 2) return std::nullopt;
        out.push_back(a);
      } else if (a.id.scheme == "ip") {
        if (!parse_ip_acl(a.id.id)) return std::nullopt;
        out.push_back(a);
      } else {
        return std::nullopt;
      }
    }
    return out;
  }

  // ---- watches ----
  //
  // ZooKeeper 3.8 keeps two watch managers. The data side holds data and
  // exist one-shots, the child side child one-shots, and addWatch puts a
  // persistent or recursive watch in both. removeWatches(Data) or
  // (Children) takes it out of one side only; the other half keeps firing
  // (observed on a 3.8 server). A recursive watch fires, at its path or
  // below, for every event but NodeChildrenChanged. Unlike 3.8
  // (ZOOKEEPER-4466) a one-shot and a persistent watch of one connection on
  // one path are independent registrations.

  enum class Side : std::uint8_t {
    Data,
    Exist,
    Child,
    PersistentData,
    PersistentChild,
    RecursiveData,
    RecursiveChild
  };
  using Reg = std::tuple<WatcherId, std::string, Side>;

  static bool data_side(Side s) {
    return s == Side::Data || s == Side::Exist || s == Side::PersistentData ||
           s == Side::RecursiveData;
  }
  static bool one_shot(Side s) { return s == Side::Data || s == Side::Exist || s == Side::Child; }
  static bool recursive(Side s) { return s == Side::RecursiveData || s == Side::RecursiveChild; }

  // ZooKeeper walks a path's ancestors up to "/" (never ""), so only those
  // recursive watches fire.
  static bool is_ancestor(const std::string& a, const std::string& path) {
    if (a == "/") return true;
    return !a.empty() && path.size() > a.size() && path.compare(0, a.size(), a) == 0 &&
           path[a.size()] == '/';
  }

  // One manager's trigger: every registration of that side on `path`, and
  // recursive ones on an ancestor, except recursive ones for a children
  // change; one-shots on `path` are dropped (even when suppressed).
  std::set<WatcherId> trigger(bool data, const std::string& path, EventType type,
                              const std::set<WatcherId>& suppress, std::vector<WatchEvent>& out) {
    std::set<WatcherId> fired;
    std::vector<Reg> to_remove;
    for (const auto& [w, p, side] : regs_) {
      if (data_side(side) != data) continue;
      bool hit = false;
      if (recursive(side)) {
        hit = (p == path || is_ancestor(p, path)) && type != EventType::NodeChildrenChanged;
      } else if (p == path) {
        hit = true;
        if (one_shot(side)) to_remove.emplace_back(w, p, side);
      }
      if (hit && !suppress.count(w)) fired.insert(w);
    }
    for (const auto& r : to_remove)
      regs_.erase(r);
    for (WatcherId w : fired)
      out.push_back(WatchEvent{w, type, path, Zxid(cur_zxid_), std::nullopt});
    return fired;
  }

  std::set<WatcherId> trigger_data(const std::string& path, EventType type,
                                   std::vector<WatchEvent>& out) {
    return trigger(true, path, type, {}, out);
  }
  void trigger_child(const std::string& path, EventType type, const std::set<WatcherId>& suppress,
                     std::vector<WatchEvent>& out) {
    trigger(false, path, type, suppress, out);
  }

  static std::vector<Side> sides_of(WatchKind kind) {
    switch (kind) {
      case WatchKind::Data:
        return {Side::Data};
      case WatchKind::Exist:
        return {Side::Exist};
      case WatchKind::Child:
        return {Side::Child};
      case WatchKind::Persistent:
        return {Side::PersistentData, Side::PersistentChild};
      case WatchKind::PersistentRecursive:
        return {Side::RecursiveData, Side::RecursiveChild};
    }
    return {};
  }

  static bool type_covers(WatcherType type, Side s) {
    switch (type) {
      case WatcherType::Children:
        return !data_side(s);
      case WatcherType::Data:
        return data_side(s);
      case WatcherType::Any:
        return true;
      case WatcherType::Persistent:
        return s == Side::PersistentData || s == Side::PersistentChild;
      case WatcherType::PersistentRecursive:
        return recursive(s);
    }
    return false;
  }

  void insert_watch(WatcherId w, const std::string& path, WatchKind kind) {
    for (Side s : sides_of(kind))
      regs_.insert({w, path, s});
  }

  Status add_watch(WatcherId w, const std::string& path, WatchKind kind) {
    insert_watch(w, path, kind);
    return Status();
  }

  Status check_watches(WatcherId w, const std::string& path, WatcherType type) const {
    for (const auto& [ww, p, side] : regs_) {
      if (ww == w && p == path && type_covers(type, side)) return Status();
    }
    return Status(ErrorCode::NoWatcher);
  }

  Status remove_watches(WatcherId w, const std::string& path, WatcherType type) {
    std::vector<Reg> del;
    for (const auto& [ww, p, side] : regs_) {
      if (ww == w && p == path && type_covers(type, side)) del.emplace_back(ww, p, side);
    }
    if (del.empty()) return Status(ErrorCode::NoWatcher);
    for (const auto& r : del)
      regs_.erase(r);
    return Status();
  }

  void remove_watcher(WatcherId w) {
    for (auto it = regs_.begin(); it != regs_.end();) {
      it = std::get<0>(*it) == w ? regs_.erase(it) : std::next(it);
    }
  }

  std::vector<WatchEvent> set_watches(WatcherId w, const SetWatchesRequest& r,
                                      std::int64_t event_zxid) {
    std::vector<WatchEvent> out;
    auto fire = [&](EventType t, const std::string& p) {
      out.push_back(WatchEvent{w, t, p, Zxid(event_zxid), std::nullopt});
    };
    std::int64_t rel = r.relative_zxid.value();
    for (const auto& p : r.data) {
      auto it = nodes_.find(p);
      if (it == nodes_.end()) {
        fire(EventType::NodeDeleted, p);
      } else if (it->second.mzxid > rel) {
        fire(EventType::NodeDataChanged, p);
      } else {
        insert_watch(w, p, WatchKind::Data);
      }
    }
    for (const auto& p : r.exist) {
      if (nodes_.count(p)) {
        fire(EventType::NodeCreated, p);
      } else {
        insert_watch(w, p, WatchKind::Exist);
      }
    }
    for (const auto& p : r.child) {
      auto it = nodes_.find(p);
      if (it == nodes_.end()) {
        fire(EventType::NodeDeleted, p);
      } else if (it->second.pzxid > rel) {
        fire(EventType::NodeChildrenChanged, p);
      } else {
        insert_watch(w, p, WatchKind::Child);
      }
    }
    for (const auto& p : r.persistent)
      insert_watch(w, p, WatchKind::Persistent);
    for (const auto& p : r.persistent_recursive)
      insert_watch(w, p, WatchKind::PersistentRecursive);
    return out;
  }

  // The registrations as DataTree::for_each_watch reports them: a
  // persistent or recursive watch once, whichever of its halves remain.
  std::set<WatchKey> watches() const {
    std::set<WatchKey> out;
    for (const auto& [w, p, side] : regs_) {
      WatchKind k = side == Side::Data    ? WatchKind::Data
                    : side == Side::Exist ? WatchKind::Exist
                    : side == Side::Child ? WatchKind::Child
                    : recursive(side)     ? WatchKind::PersistentRecursive
                                          : WatchKind::Persistent;
      out.insert({w, p, k});
    }
    return out;
  }

  // ---- writes ----

  struct OpOutcome {
    ErrorCode err = ErrorCode::Ok;
    std::optional<CreateResult> create;
    std::optional<Stat> stat;
    OpOutcome() = default;
    OpOutcome(ErrorCode e) : err(e) {}  // NOLINT: implicit for brevity
    OpOutcome(ErrorCode e, std::optional<CreateResult> c, std::optional<Stat> s)
        : err(e), create(std::move(c)), stat(s) {}
  };

  OpOutcome create(const CreateOp& op, const Caller& c, std::vector<WatchEvent>& ev) {
    if (is_ttl(op.mode) &&
        (op.ttl_ms < limits::znode_ttl_ms_min || op.ttl_ms > limits::znode_ttl_ms_max))
      return {ErrorCode::BadArguments};
    std::size_t slash = op.path.rfind('/');
    if (slash == std::string::npos || op.path.find('\0') != std::string::npos)
      return {ErrorCode::BadArguments};
    if (op.data && op.data->size() > limits::znode_data_bytes_max) return {ErrorCode::BadArguments};
    std::string parent_path = slash == 0 ? "/" : op.path.substr(0, slash);
    auto acl = fixup(op.acl, c);
    if (!acl) return {ErrorCode::InvalidAcl};
    auto pit = nodes_.find(parent_path);
    if (pit == nodes_.end()) return {ErrorCode::NoNode};
    MNode& parent = pit->second;
    if (!allowed(parent.acl, perm::create, c)) return {ErrorCode::NoAuth};
    std::string path = op.path;
    if (is_sequential(op.mode)) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%010lld", static_cast<long long>(parent.creates));
      path += buf;
    }
    if (!model_valid_path(path)) return {ErrorCode::BadArguments};
    if (nodes_.count(path)) return {ErrorCode::NodeExists};
    if (parent.session != 0) return {ErrorCode::NoChildrenForEphemerals};

    MNode n;
    n.data = op.data;
    n.acl = *acl;
    n.czxid = n.mzxid = n.pzxid = cur_zxid_;
    n.ctime = n.mtime = cur_time_;
    n.session = is_ephemeral(op.mode) ? c.session.value() : 0;
    n.mode = op.mode;
    n.ttl = is_ttl(op.mode) ? op.ttl_ms : 0;
    parent.children.insert(path.substr(path.rfind('/') + 1));
    parent.creates += 1;
    parent.pzxid = cur_zxid_;
    nodes_[path] = n;
    trigger_data(path, EventType::NodeCreated, ev);
    trigger_child(parent_path, EventType::NodeChildrenChanged, {}, ev);
    return {ErrorCode::Ok, CreateResult{path, stat_of(nodes_[path])}, std::nullopt};
  }

  void remove_node(const std::string& path, std::vector<WatchEvent>& ev) {
    std::string parent_path = model_parent(path);
    MNode& parent = nodes_.at(parent_path);
    parent.children.erase(path.substr(path.rfind('/') + 1));
    parent.pzxid = cur_zxid_;
    nodes_.erase(path);
    auto fired = trigger_data(path, EventType::NodeDeleted, ev);
    trigger_child(path, EventType::NodeDeleted, fired, ev);
    trigger_child(parent_path, EventType::NodeChildrenChanged, {}, ev);
  }

  OpOutcome remove(const DeleteOp& op, const Caller& c, std::vector<WatchEvent>& ev) {
    std::size_t slash = op.path.rfind('/');
    if (slash == std::string::npos || op.path.find('\0') != std::string::npos ||
        is_special(op.path))
      return {ErrorCode::BadArguments};
    std::string parent_path = slash == 0 ? "/" : op.path.substr(0, slash);
    auto pit = nodes_.find(parent_path);
    if (pit == nodes_.end()) return {ErrorCode::NoNode};
    if (!allowed(pit->second.acl, perm::remove, c)) return {ErrorCode::NoAuth};
    auto it = nodes_.find(op.path);
    if (it == nodes_.end()) return {ErrorCode::NoNode};
    if (op.version != -1 && op.version != it->second.version) return {ErrorCode::BadVersion};
    if (!it->second.children.empty()) return {ErrorCode::NotEmpty};
    remove_node(op.path, ev);
    return {};
  }

  OpOutcome set_data(const SetDataOp& op, const Caller& c, std::vector<WatchEvent>& ev) {
    if (!model_valid_path(op.path)) return {ErrorCode::BadArguments};
    if (op.data && op.data->size() > limits::znode_data_bytes_max) return {ErrorCode::BadArguments};
    auto it = nodes_.find(op.path);
    if (it == nodes_.end()) return {ErrorCode::NoNode};
    MNode& n = it->second;
    if (!allowed(n.acl, perm::write, c)) return {ErrorCode::NoAuth};
    if (op.version != -1 && op.version != n.version) return {ErrorCode::BadVersion};
    n.data = op.data;
    n.version += 1;
    n.mzxid = cur_zxid_;
    n.mtime = cur_time_;
    trigger_data(op.path, EventType::NodeDataChanged, ev);
    return {ErrorCode::Ok, std::nullopt, stat_of(n)};
  }

  OpOutcome set_acl(const SetAclOp& op, const Caller& c) {
    if (!model_valid_path(op.path)) return {ErrorCode::BadArguments};
    auto acl = fixup(op.acl, c);
    if (!acl) return {ErrorCode::InvalidAcl};
    auto it = nodes_.find(op.path);
    if (it == nodes_.end()) return {ErrorCode::NoNode};
    MNode& n = it->second;
    if (!allowed(n.acl, perm::admin, c)) return {ErrorCode::NoAuth};
    if (op.version != -1 && op.version != n.aversion) return {ErrorCode::BadVersion};
    n.acl = *acl;
    n.aversion += 1;
    return {ErrorCode::Ok, std::nullopt, stat_of(n)};
  }

  OpOutcome check(const CheckOp& op, const Caller& c) {
    if (!model_valid_path(op.path)) return {ErrorCode::BadArguments};
    auto it = nodes_.find(op.path);
    if (it == nodes_.end()) return {ErrorCode::NoNode};
    if (!allowed(it->second.acl, perm::read, c)) return {ErrorCode::NoAuth};
    if (op.version != -1 && op.version != it->second.version) return {ErrorCode::BadVersion};
    return {ErrorCode::Ok, std::nullopt, stat_of(it->second)};
  }

  bool reapable(const std::string& path, std::int64_t now) const {
    auto it = nodes_.find(path);
    if (it == nodes_.end() || !it->second.children.empty()) return false;
    const MNode& n = it->second;
    if (is_container(n.mode)) return n.creates > 0;
    if (is_ttl(n.mode)) return now - n.mtime > n.ttl;
    return false;
  }

  std::vector<std::string> reap_candidates(std::int64_t now) const {
    std::vector<std::string> out;
    for (const auto& [p, n] : nodes_) {
      if (reapable(p, now)) out.push_back(p);
    }
    return out;
  }

  ApplyResult apply(const Txn& txn, const Caller& c, std::int64_t zxid, std::int64_t time) {
    cur_zxid_ = zxid;
    cur_time_ = time;
    last_zxid_ = zxid;
    ApplyResult r;
    auto take = [&](OpOutcome o) {
      r.err = o.err;
      r.create = std::move(o.create);
      r.stat = o.stat;
    };
    std::vector<WatchEvent> ev;
    if (auto* op = std::get_if<CreateOp>(&txn)) {
      take(create(*op, c, ev));
    } else if (auto* op = std::get_if<DeleteOp>(&txn)) {
      take(remove(*op, c, ev));
    } else if (auto* op = std::get_if<SetDataOp>(&txn)) {
      take(set_data(*op, c, ev));
    } else if (auto* op = std::get_if<SetAclOp>(&txn)) {
      take(set_acl(*op, c));
    } else if (auto* op = std::get_if<CheckOp>(&txn)) {
      take(check(*op, c));
    } else if (auto* op = std::get_if<CloseSessionOp>(&txn)) {
      std::vector<std::string> mine;
      for (const auto& [p, n] : nodes_) {
        if (n.session != 0 && n.session == op->session.value()) mine.push_back(p);
      }
      for (const auto& p : mine)
        remove_node(p, ev);
    } else if (auto* op = std::get_if<ReapOp>(&txn)) {
      if (reapable(op->path, time)) {
        remove_node(op->path, ev);
      } else {
        r.err = ErrorCode::NoNode;  // any error will do; compared loosely
      }
    } else if (auto* op = std::get_if<MultiOp>(&txn)) {
      Model trial = *this;
      MultiResult mr;
      std::size_t failed = op->ops.size();
      for (std::size_t i = 0; i < op->ops.size(); ++i) {
        OpOutcome o;
        const MultiSubOp& sub = op->ops[i];
        if (auto* s = std::get_if<CreateOp>(&sub)) {
          o = trial.create(*s, c, ev);
        } else if (auto* s = std::get_if<DeleteOp>(&sub)) {
          o = trial.remove(*s, c, ev);
        } else if (auto* s = std::get_if<SetDataOp>(&sub)) {
          o = trial.set_data(*s, c, ev);
        } else if (auto* s = std::get_if<CheckOp>(&sub)) {
          o = trial.check(*s, c);
          o.stat.reset();
        }
        if (o.err != ErrorCode::Ok) {
          failed = i;
          break;
        }
        mr.results.push_back(MultiOpResult{ErrorCode::Ok, o.create, o.stat});
      }
      if (failed < op->ops.size()) {
        ErrorCode e = ErrorCode::Ok;
        {
          // Recompute the failing op's code for the result vector.
          Model again = *this;
          std::vector<WatchEvent> ignored;
          for (std::size_t i = 0; i <= failed; ++i) {
            const MultiSubOp& sub = op->ops[i];
            OpOutcome o;
            if (auto* s = std::get_if<CreateOp>(&sub)) o = again.create(*s, c, ignored);
            if (auto* s = std::get_if<DeleteOp>(&sub)) o = again.remove(*s, c, ignored);
            if (auto* s = std::get_if<SetDataOp>(&sub)) o = again.set_data(*s, c, ignored);
            if (auto* s = std::get_if<CheckOp>(&sub)) o = again.check(*s, c);
            e = o.err;
          }
        }
        mr.results.clear();
        for (std::size_t i = 0; i < op->ops.size(); ++i) {
          MultiOpResult x;
          x.err = i < failed ? ErrorCode::Ok : i == failed ? e : ErrorCode::RuntimeInconsistency;
          mr.results.push_back(x);
        }
        ev.clear();
      } else {
        trial.cur_zxid_ = cur_zxid_;
        *this = std::move(trial);
      }
      r.err = ErrorCode::Ok;
      r.multi = std::move(mr);
    }
    r.events = std::move(ev);
    return r;
  }

  // ---- reads ----

  Result<Stat> exists(const std::string& path) const {
    auto it = nodes_.find(path);
    if (it == nodes_.end()) return ErrorCode::NoNode;
    return stat_of(it->second);
  }

  ErrorCode read_check(const std::string& path, const Caller& c, std::int32_t perm) const {
    auto it = nodes_.find(path);
    if (it == nodes_.end()) return ErrorCode::NoNode;
    if (!allowed(it->second.acl, perm, c)) return ErrorCode::NoAuth;
    return ErrorCode::Ok;
  }

  std::vector<std::string> children_of(const std::string& path) const {
    const auto& n = nodes_.at(path);
    return {n.children.begin(), n.children.end()};
  }

  Result<AclList> get_acl(const std::string& path, const Caller& c) const {
    ErrorCode e = read_check(path, c, perm::read | perm::admin);
    if (e != ErrorCode::Ok) return e;
    const MNode& n = nodes_.at(path);
    if (allowed(n.acl, perm::admin, c)) return n.acl;
    AclList masked = n.acl;
    for (Acl& a : masked) {
      if (a.id.scheme != "digest") continue;
      std::size_t colon = a.id.id.find(':');
      if (colon != std::string::npos) a.id.id = a.id.id.substr(0, colon) + ":x";
    }
    return masked;
  }

  std::int64_t count_descendants(const std::string& path) const {
    std::int64_t n = 0;
    for (const auto& [p, node] : nodes_) {
      (void)node;
      if (p == path) continue;
      if (path == "/" ||
          (p.size() > path.size() && p.compare(0, path.size(), path) == 0 && p[path.size()] == '/'))
        ++n;
    }
    return n;
  }

  std::vector<std::string> get_ephemerals(std::int64_t session, const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& [p, n] : nodes_) {
      if (n.session != session || n.session == 0) continue;
      if (prefix.empty() || prefix == "/" || p.compare(0, prefix.size(), prefix) == 0) {
        if (p.size() >= prefix.size()) out.push_back(p);
      }
    }
    return out;
  }

  std::vector<SessionId> sessions_with_ephemerals() const {
    std::set<std::int64_t> s;
    for (const auto& [p, n] : nodes_) {
      if (n.session != 0) s.insert(n.session);
    }
    std::vector<SessionId> out;
    for (auto v : s)
      out.push_back(SessionId(v));
    return out;
  }

  std::size_t ephemeral_count() const {
    std::size_t k = 0;
    for (const auto& [p, n] : nodes_)
      k += n.session != 0 ? 1 : 0;
    return k;
  }

  // Everything the digest covers, as text: equal exactly when contents are.
  std::string fingerprint() const {
    std::ostringstream os;
    for (const auto& [p, n] : nodes_) {
      os << p << '|'
         << (n.data ? "D" + std::to_string(std::hash<std::string>{}(*n.data)) : std::string("N"))
         << '|' << stat_of(n) << '|' << n.creates << '|' << static_cast<int>(n.mode) << '|' << n.ttl
         << '|';
      for (const auto& a : n.acl)
        os << a.perms << ',' << a.id.scheme << ',' << a.id.id << ';';
      os << '\n';
    }
    return os.str();
  }

 private:
  std::map<std::string, MNode> nodes_;
  std::set<Reg> regs_;
  std::int64_t last_zxid_ = 0;
  std::int64_t cur_zxid_ = 0;
  std::int64_t cur_time_ = 0;
};

// ===========================================================================
// Printing
// ===========================================================================

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      out.push_back(ch);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

std::string show_data(const Data& d) {
  if (!d) return "null";
  if (d->size() > 64) return "<" + std::to_string(d->size()) + " bytes>";
  return quote(*d);
}

std::string show_acl(const AclList& acl) {
  std::string s = "[";
  for (const auto& a : acl)
    s += std::to_string(a.perms) + ":" + a.id.scheme + ":" + a.id.id + " ";
  return s + "]";
}

std::string show_stat(const Stat& st) {
  std::ostringstream os;
  os << st;
  return os.str();
}

std::string show_caller(const Caller& c) {
  std::string s = "session=" + std::to_string(c.session.value()) + " ids={";
  for (const auto& id : c.identities)
    s += id.scheme + ":" + id.id + " ";
  return s + "}";
}

struct ShowSub {
  std::string operator()(const CreateOp& o) const {
    return "create " + quote(o.path) + " mode=" + std::string(create_mode_name(o.mode)) +
           " ttl=" + std::to_string(o.ttl_ms) + " data=" + show_data(o.data) +
           " acl=" + show_acl(o.acl);
  }
  std::string operator()(const DeleteOp& o) const {
    return "delete " + quote(o.path) + " v=" + std::to_string(o.version);
  }
  std::string operator()(const SetDataOp& o) const {
    return "setData " + quote(o.path) + " v=" + std::to_string(o.version) +
           " data=" + show_data(o.data);
  }
  std::string operator()(const SetAclOp& o) const {
    return "setACL " + quote(o.path) + " v=" + std::to_string(o.version) +
           " acl=" + show_acl(o.acl);
  }
  std::string operator()(const CheckOp& o) const {
    return "check " + quote(o.path) + " v=" + std::to_string(o.version);
  }
  std::string operator()(const MultiOp& o) const {
    std::string s = "multi {";
    for (const auto& sub : o.ops)
      s += " " + std::visit(*this, sub) + ";";
    return s + " }";
  }
  std::string operator()(const CloseSessionOp& o) const {
    return "closeSession " + std::to_string(o.session.value());
  }
  std::string operator()(const ReapOp& o) const { return "reap " + quote(o.path); }
};

std::string show_txn(const Txn& t) {
  return std::visit(ShowSub{}, t);
}

std::string show_events(const std::vector<WatchEvent>& ev) {
  std::string s;
  for (const auto& e : ev) {
    s += " [w" + std::to_string(e.watcher) + " " + std::string(event_type_name(e.type)) + " " +
         quote(e.path) + " z" + std::to_string(e.zxid.value()) + "]";
  }
  return s.empty() ? " (none)" : s;
}

std::string show_result(const ApplyResult& r) {
  std::string s = "err=" + std::string(error_name(r.err));
  if (r.create) s += " create{" + quote(r.create->path) + " " + show_stat(r.create->stat) + "}";
  if (r.stat) s += " stat{" + show_stat(*r.stat) + "}";
  if (r.multi) {
    s += " multi{";
    for (const auto& m : r.multi->results) {
      s += " " + std::string(error_name(m.err));
      if (m.create) s += "(" + quote(m.create->path) + " " + show_stat(m.create->stat) + ")";
      if (m.stat) s += "(" + show_stat(*m.stat) + ")";
    }
    s += " }";
  }
  return s + " events:" + show_events(r.events);
}

// Events grouped by watcher: ZooKeeper fixes the order per connection, not
// across connections. A session close deletes its ephemerals in no
// particular order, so there each watcher's events are compared as a set.
std::map<WatcherId, std::vector<std::string>> by_watcher(const std::vector<WatchEvent>& ev,
                                                         bool unordered) {
  std::map<WatcherId, std::vector<std::string>> m;
  for (const auto& e : ev) {
    m[e.watcher].push_back(std::string(event_type_name(e.type)) + " " + e.path + " z" +
                           std::to_string(e.zxid.value()));
  }
  if (unordered) {
    for (auto& [w, v] : m)
      std::sort(v.begin(), v.end());
  }
  return m;
}

// ===========================================================================
// Random inputs
// ===========================================================================

const std::vector<std::string> kNames = {"a", "b", "c", "d", "e"};

const Id kAlice{"digest", "alice:aGFzaC1hbGljZQ=="};
const Id kBob{"digest", "bob:aGFzaC1ib2I="};
const Id kSuperDigest{"digest", "super:aGFzaC1zdXBlcg=="};

std::vector<Caller> make_callers() {
  std::vector<Caller> v;
  v.push_back(Caller{SessionId(0), {Id{"ip", "127.0.0.1"}}});
  v.push_back(Caller{SessionId(0), {Id{"ip", "127.0.0.1"}, kAlice}});
  v.push_back(Caller{SessionId(0), {Id{"ip", "10.1.2.3"}, kBob}});
  v.push_back(Caller{SessionId(0), {Id{"ip", "10.9.9.9"}}});
  v.push_back(Caller{SessionId(0), {Id{"ip", "192.168.7.7"}, kAlice, kBob}});
  v.push_back(Caller{SessionId(0), {Id{"ip", "127.0.0.1"}, kSuperDigest, Id{"super", ""}}});
  return v;
}

const std::vector<std::int64_t> kSessions = {0x100000001, 0x100000002, 0x100000003,
                                             0x7fffffff00000004};

class Gen {
 public:
  // Seeds differ in how crowded the tree gets: 2 to 5 names per level.
  Gen(std::uint64_t seed, const Model& m)
      : rnd_(seed),
        m_(m),
        callers_(make_callers()),
        names_(kNames.begin(), kNames.begin() + 2 + static_cast<long>(seed % 4)) {}

  Random& rnd() { return rnd_; }
  bool chance(int pct) { return rnd_.chance(static_cast<std::uint64_t>(pct), 100); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[rnd_.below(v.size())];
  }

  Caller caller() {
    Caller c = chance(25) ? callers_[0] : pick(callers_);
    c.session = SessionId(pick(kSessions));
    return c;
  }

  std::string existing_path() {
    const auto& nodes = m_.nodes();
    auto it = nodes.begin();
    std::advance(it, static_cast<long>(rnd_.below(nodes.size())));
    return it->first;
  }

  std::string fresh_path() {
    std::string p;
    int depth = static_cast<int>(rnd_.uniform(1, 3));
    for (int i = 0; i < depth; ++i)
      p += "/" + pick(names_);
    return p;
  }

  std::string weird_path() {
    static const std::vector<std::string> w = {"",
                                               "a",
                                               "a/b",
                                               "/a/",
                                               "//a",
                                               "/a//b",
                                               "/a/.",
                                               "/a/..",
                                               "/.",
                                               "/..",
                                               "/a/./b",
                                               std::string("/a\0b", 4),
                                               "/a\x01",
                                               "/a\x7f",
                                               "/\xc3\xa9",
                                               "/\xc2\x80",
                                               "/\xff",
                                               "/\xef\xbf\xbd",
                                               "/\xf0\x9f\x98\x80",
                                               "/a/...",
                                               "/.a",
                                               "/zookeeper/x",
                                               "/zookeeper/quota/q",
                                               "/zookeeper/config",
                                               "/zookeeper",
                                               "/",
                                               "/a b"};
    return pick(w);
  }

  std::string path() {
    int r = static_cast<int>(rnd_.below(100));
    if (r < 55) return existing_path();
    if (r < 93) return fresh_path();
    return weird_path();
  }

  // A child path under an existing node, for creates that usually work.
  std::string child_path() {
    std::string parent = existing_path();
    std::string base = parent == "/" ? "" : parent;
    return base + "/" + pick(names_);
  }

  std::int32_t version_for(const std::string& p, bool acl_version) {
    int r = static_cast<int>(rnd_.below(100));
    if (r < 50) return -1;
    auto st = m_.exists(p);
    if (r < 85 && st.ok()) return acl_version ? st->aversion : st->version;
    return static_cast<std::int32_t>(rnd_.uniform(0, 4)) - (chance(10) ? 3 : 0);
  }

  Data data() {
    // The largest data is kept rare: every multi copies the model.
    int r = static_cast<int>(rnd_.below(10000));
    if (r < 800) return std::nullopt;
    if (r < 1600) return std::string();
    if (r < 1620) return std::string(limits::znode_data_bytes_max + 1, 'x');
    if (r < 1623) return std::string(limits::znode_data_bytes_max, 'y');
    std::string s;
    std::size_t n = rnd_.below(24);
    for (std::size_t i = 0; i < n; ++i)
      s.push_back(static_cast<char>(rnd_.below(256)));
    return s;
  }

  Acl acl_entry() {
    static const std::vector<Id> valid = {Id{"world", "anyone"},
                                          kAlice,
                                          kBob,
                                          Id{"ip", "127.0.0.1"},
                                          Id{"ip", "10.0.0.0/8"},
                                          Id{"ip", "10.1.2.3/32"},
                                          Id{"ip", "0.0.0.0/0"},
                                          Id{"auth", ""},
                                          Id{"digest", ":x"}};
    static const std::vector<Id> invalid = {
        Id{"world", "bob"},    Id{"digest", "alice"},   Id{"digest", "a:b:c"}, Id{"foo", "bar"},
        Id{"ip", "300.1.1.1"}, Id{"ip", "10.0.0.0/33"}, Id{"super", ""},       Id{"", ""},
        Id{"World", "anyone"}, Id{"ip", "1.2.3"}};
    std::int32_t perms = chance(60) ? perm::all : static_cast<std::int32_t>(rnd_.below(32));
    Id id = chance(4) ? pick(invalid) : pick(valid);
    return Acl{perms, id};
  }

  AclList acl() {
    int r = static_cast<int>(rnd_.below(100));
    if (r < 45) return open_acl_unsafe();
    if (r < 48) return {};
    if (r < 53) return creator_all_acl();
    if (r < 56) return read_acl_unsafe();
    if (r < 61)
      return {Acl{perm::read, Id{"world", "anyone"}}, Acl{perm::all, chance(50) ? kAlice : kBob}};
    AclList l;
    std::size_t n = rnd_.uniform(1, 3);
    for (std::size_t i = 0; i < n; ++i) {
      Acl a = acl_entry();
      // A real 3.8 server answers MarshallingError to two identical `auth`
      // entries (a quirk nobody relies on); the model does not cover it.
      if (a.id.scheme == "auth" && std::find(l.begin(), l.end(), a) != l.end()) continue;
      l.push_back(a);
    }
    if (chance(10) && !l.empty()) l.push_back(l.front());  // duplicates are removed
    if (l.size() > 1 && l.front().id.scheme == "auth" && l.back() == l.front()) l.pop_back();
    return l;
  }

  CreateOp create_op() {
    CreateOp op;
    op.path = chance(75) ? child_path() : path();
    op.data = data();
    op.acl = acl();
    op.mode = static_cast<CreateMode>(rnd_.below(7));
    if (is_ttl(op.mode)) {
      int r = static_cast<int>(rnd_.below(100));
      op.ttl_ms = r < 85   ? static_cast<std::int64_t>(rnd_.uniform(1, 3000))
                  : r < 90 ? 0
                  : r < 94 ? -5
                  : r < 97 ? limits::znode_ttl_ms_max
                           : limits::znode_ttl_ms_max + 1;
    }
    return op;
  }

  DeleteOp delete_op() {
    DeleteOp op;
    op.path = path();
    op.version = version_for(op.path, false);
    return op;
  }

  SetDataOp set_data_op() {
    SetDataOp op;
    op.path = path();
    op.data = data();
    op.version = version_for(op.path, false);
    return op;
  }

  SetAclOp set_acl_op() {
    SetAclOp op;
    op.path = path();
    op.acl = acl();
    op.version = version_for(op.path, true);
    return op;
  }

  CheckOp check_op() {
    CheckOp op;
    op.path = path();
    op.version = version_for(op.path, false);
    return op;
  }

  MultiOp multi_op() {
    MultiOp m;
    std::size_t n = rnd_.below(6);
    std::vector<std::string> made;
    for (std::size_t i = 0; i < n; ++i) {
      int r = static_cast<int>(rnd_.below(100));
      if (r < 40) {
        CreateOp op = create_op();
        if (!made.empty() && chance(50)) op.path = pick(made) + "/" + pick(names_);
        made.push_back(op.path);
        m.ops.push_back(op);
      } else if (r < 60) {
        DeleteOp op = delete_op();
        if (!made.empty() && chance(30)) op.path = pick(made);
        m.ops.push_back(op);
      } else if (r < 85) {
        SetDataOp op = set_data_op();
        if (!made.empty() && chance(30)) {
          op.path = pick(made);
          op.version = chance(50) ? 0 : -1;
        }
        m.ops.push_back(op);
      } else {
        m.ops.push_back(check_op());
      }
    }
    return m;
  }

  Txn txn(std::int64_t now) {
    int r = static_cast<int>(rnd_.below(100));
    if (r < 30) return create_op();
    if (r < 42) return delete_op();
    if (r < 57) return set_data_op();
    if (r < 63) return set_acl_op();
    if (r < 67) return check_op();
    if (r < 85) return multi_op();
    if (r < 90) return CloseSessionOp{SessionId(pick(kSessions))};
    auto cand = m_.reap_candidates(now);
    if (!cand.empty() && chance(75)) return ReapOp{pick(cand)};
    return ReapOp{path()};
  }

 private:
  Random rnd_;
  const Model& m_;
  std::vector<Caller> callers_;
  std::vector<std::string> names_;
};

// ===========================================================================
// The differential driver
// ===========================================================================

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 0);
}

using Coverage = std::map<std::string, int>;

const char* txn_kind(const Txn& t) {
  static const char* names[] = {"create", "delete", "setData",      "setACL",
                                "check",  "multi",  "closeSession", "reap"};
  return names[t.index()];
}

class Runner {
 public:
  Runner(std::uint64_t seed, Coverage& coverage)
      : seed_(seed), gen_(seed, model_), coverage_(coverage) {}

  // Returns false (after reporting) at the first disagreement.
  bool run(std::uint64_t steps) {
    for (step_ = 0; step_ < steps; ++step_) {
      if (!one_step()) return false;
      if (step_ % 64 == 63 && !compare_all()) return false;
    }
    return compare_all();
  }

 private:
  void note(std::string s) {
    history_.push_back("step " + std::to_string(step_) + ": " + std::move(s));
    if (history_.size() > 25) history_.pop_front();
  }

  bool fail(const std::string& what) {
    std::string h;
    for (const auto& line : history_)
      h += "  " + line + "\n";
    ADD_FAILURE() << "znode differential test diverged at step " << step_ << " (seed " << seed_
                  << "):\n  " << what << "\nlast steps:\n"
                  << h << "replay: COORD_ZNODE_DIFF_SEED=" << seed_
                  << " COORD_ZNODE_DIFF_STEPS=" << step_ + 1
                  << " ./znode_test --gtest_filter='ZnodeDifferential.*'";
    return false;
  }

  bool one_step() {
    Random& r = gen_.rnd();
    time_ += static_cast<std::int64_t>(r.below(400));
    if (gen_.chance(3)) time_ += 4000;
    int kind = static_cast<int>(r.below(100));
    if (kind < 55) return write_step();
    if (kind < 80) return read_step();
    return watch_step();
  }

  bool write_step() {
    Txn txn = gen_.txn(time_);
    Caller c = gen_.caller();
    zxid_ += static_cast<std::int64_t>(gen_.rnd().uniform(1, 3));
    const std::string before = fingerprint_;
    std::uint64_t digest_before = tree_.digest();
    ApplyResult want = model_.apply(txn, c, zxid_, time_);
    ApplyResult got = tree_.apply(txn, c, Zxid(zxid_), TimeMs(time_));
    note("apply z" + std::to_string(zxid_) + " t" + std::to_string(time_) + " " + show_txn(txn) +
         " by " + show_caller(c) + " -> " + show_result(got));
    bool is_reap = std::holds_alternative<ReapOp>(txn);
    bool same = false;
    if (is_reap && want.err != ErrorCode::Ok) {
      same = got.err != ErrorCode::Ok && got.events.empty() && !got.create && !got.stat;
    } else {
      same = want.err == got.err && want.create == got.create && want.stat == got.stat &&
             want.multi == got.multi;
    }
    bool unordered = std::holds_alternative<CloseSessionOp>(txn);
    if (!same || by_watcher(want.events, unordered) != by_watcher(got.events, unordered)) {
      return fail("apply " + show_txn(txn) + " by " + show_caller(c) +
                  "\n  model: " + show_result(want) + "\n  tree:  " + show_result(got));
    }
    count(want, txn);
    if (tree_.last_zxid() != Zxid(zxid_)) {
      return fail("last_zxid " + std::to_string(tree_.last_zxid().value()) +
                  " after applying zxid " + std::to_string(zxid_));
    }
    // The digest moves exactly when the contents do, and equal contents
    // always hash alike.
    fingerprint_ = model_.fingerprint();
    const std::string& after = fingerprint_;
    std::uint64_t digest_after = tree_.digest();
    if ((before == after) != (digest_before == digest_after)) {
      return fail("digest " +
                  std::string(before == after ? "changed though the contents did not"
                                              : "unchanged though the contents changed") +
                  " after " + show_txn(txn));
    }
    auto [it, inserted] = digest_of_.emplace(after, digest_after);
    if (!inserted && it->second != digest_after) {
      return fail("equal contents seen before with another digest");
    }
    auto [it2, inserted2] = contents_of_.emplace(digest_after, after);
    if (!inserted2 && it2->second != after) return fail("two different trees share a digest");
    return true;
  }

  void count(const ApplyResult& r, const Txn& txn) {
    std::string kind = txn_kind(txn);
    if (r.multi) {
      ++coverage_[kind + (r.multi->ok() ? ":ok" : ":failed")];
    } else {
      ++coverage_[kind + ":" + std::string(error_name(r.err))];
    }
    if (r.create)
      ++coverage_["mode:" + std::string(create_mode_name(std::get<CreateOp>(txn).mode))];
    if (std::holds_alternative<CloseSessionOp>(txn) && !r.events.empty())
      ++coverage_["closeSession:fired"];
    for (const auto& e : r.events)
      ++coverage_["event:" + std::string(event_type_name(e.type))];
  }

  bool compare_stat_result(const std::string& what, const Result<Stat>& want,
                           const Result<Stat>& got) {
    if (want.code() != got.code() || (want.ok() && *want != *got)) {
      return fail(what + ": model " +
                  (want.ok() ? show_stat(*want) : std::string(error_name(want.code()))) + " tree " +
                  (got.ok() ? show_stat(*got) : std::string(error_name(got.code()))));
    }
    return true;
  }

  bool compare_data(const std::string& p, const Caller& c) {
    auto got = tree_.get_data(p, c);
    ErrorCode want_err = model_.read_check(p, c, perm::read);
    std::string what = "get_data " + quote(p) + " by " + show_caller(c);
    if (want_err != got.code()) {
      return fail(what + ": model " + std::string(error_name(want_err)) + " tree " +
                  std::string(error_name(got.code())));
    }
    if (!got.ok()) return true;
    const MNode& n = model_.nodes().at(p);
    Data got_data;
    if (got->data) got_data = std::string(*got->data);
    if (got_data != n.data || got->stat != model_.stat_of(n)) {
      return fail(what + ": model " + show_data(n.data) + " " + show_stat(model_.stat_of(n)) +
                  " tree " + show_data(got_data) + " " + show_stat(got->stat));
    }
    return true;
  }

  bool compare_children(const std::string& p, const Caller& c) {
    auto got = tree_.get_children(p, c);
    ErrorCode want_err = model_.read_check(p, c, perm::read);
    std::string what = "get_children " + quote(p) + " by " + show_caller(c);
    if (want_err != got.code()) {
      return fail(what + ": model " + std::string(error_name(want_err)) + " tree " +
                  std::string(error_name(got.code())));
    }
    if (!got.ok()) return true;
    std::vector<std::string> names(got->children.begin(), got->children.end());
    std::sort(names.begin(), names.end());
    auto want = model_.children_of(p);
    Stat want_stat = model_.stat_of(model_.nodes().at(p));
    if (names != want || got->stat != want_stat) {
      std::string a, b;
      for (const auto& s : want)
        a += s + ",";
      for (const auto& s : names)
        b += s + ",";
      return fail(what + ": model [" + a + "] " + show_stat(want_stat) + " tree [" + b + "] " +
                  show_stat(got->stat));
    }
    return true;
  }

  bool compare_acl(const std::string& p, const Caller& c) {
    auto got = tree_.get_acl(p, c);
    auto want = model_.get_acl(p, c);
    std::string what = "get_acl " + quote(p) + " by " + show_caller(c);
    if (want.code() != got.code()) {
      return fail(what + ": model " + std::string(error_name(want.code())) + " tree " +
                  std::string(error_name(got.code())));
    }
    if (!got.ok()) return true;
    Stat want_stat = model_.stat_of(model_.nodes().at(p));
    for (const auto& a : *want) {
      if (a.id.scheme == "digest" && a.id.id.size() > 2 && a.id.id.ends_with(":x")) {
        ++coverage_["getACL:masked"];
      }
    }
    if (got->acl != *want || got->stat != want_stat) {
      return fail(what + ": model " + show_acl(*want) + " " + show_stat(want_stat) + " tree " +
                  show_acl(got->acl) + " " + show_stat(got->stat));
    }
    return true;
  }

  bool read_step() {
    Caller c = gen_.caller();
    std::string p = gen_.path();
    int kind = static_cast<int>(gen_.rnd().below(100));
    bool watch = gen_.chance(40);
    WatcherId w = gen_.rnd().uniform(1, 4);
    note("read kind=" + std::to_string(kind) + " " + quote(p) + " by " + show_caller(c) +
         (watch ? " watch w" + std::to_string(w) : ""));
    if (kind < 20) {
      auto want = model_.exists(p);
      if (!compare_stat_result("exists " + quote(p), want, tree_.exists(p))) return false;
      if (watch) {
        WatchKind k = want.ok() ? WatchKind::Data : WatchKind::Exist;
        return add_watch(w, p, k);
      }
      return true;
    }
    if (kind < 40) {
      if (!compare_data(p, c)) return false;
      if (watch && model_.read_check(p, c, perm::read) == ErrorCode::Ok)
        return add_watch(w, p, WatchKind::Data);
      return true;
    }
    if (kind < 60) {
      if (!compare_children(p, c)) return false;
      if (watch && model_.read_check(p, c, perm::read) == ErrorCode::Ok)
        return add_watch(w, p, WatchKind::Child);
      return true;
    }
    if (kind < 70) return compare_acl(p, c);
    if (kind < 78) {
      auto got = tree_.get_all_children_number(p, c);
      ErrorCode e = model_.read_check(p, c, perm::read);
      if (e != got.code() || (got.ok() && *got != model_.count_descendants(p))) {
        return fail(
            "get_all_children_number " + quote(p) + ": model " + std::string(error_name(e)) + " " +
            std::to_string(e == ErrorCode::Ok ? model_.count_descendants(p) : -1) + " tree " +
            std::string(error_name(got.code())) + " " + std::to_string(got.ok() ? *got : -1));
      }
      return true;
    }
    if (kind < 86) {
      static const std::vector<std::string> prefixes = {"",     "/", "/a",     "/a/", "/b",
                                                        "/a/b", "a", "/c/d/a", "/zz"};
      std::string prefix = gen_.chance(50) ? gen_.pick(prefixes) : p;
      SessionId s(gen_.pick(kSessions));
      auto got = tree_.get_ephemerals(s, prefix);
      auto want = model_.get_ephemerals(s.value(), prefix);
      if (got != want) {
        std::string a, b;
        for (const auto& x : want)
          a += x + ",";
        for (const auto& x : got)
          b += x + ",";
        return fail("get_ephemerals " + std::to_string(s.value()) + " " + quote(prefix) +
                    ": model [" + a + "] tree [" + b + "]");
      }
      return true;
    }
    // multiRead
    std::vector<ReadOp> ops;
    std::size_t n = gen_.rnd().below(5);
    for (std::size_t i = 0; i < n; ++i) {
      ReadOp op;
      op.kind = gen_.chance(50) ? ReadOp::Kind::GetData : ReadOp::Kind::GetChildren;
      op.path = gen_.path();
      ops.push_back(op);
    }
    auto got = tree_.multi_read(ops, c);
    if (got.size() != ops.size()) return fail("multi_read: result count differs");
    for (std::size_t i = 0; i < ops.size(); ++i) {
      ErrorCode e = model_.read_check(ops[i].path, c, perm::read);
      std::string what = "multi_read[" + std::to_string(i) + "] " + quote(ops[i].path);
      if (e != got[i].err) {
        return fail(what + ": model " + std::string(error_name(e)) + " tree " +
                    std::string(error_name(got[i].err)));
      }
      if (e != ErrorCode::Ok) continue;
      const MNode& node = model_.nodes().at(ops[i].path);
      if (ops[i].kind == ReadOp::Kind::GetData) {
        Data d;
        if (got[i].data && got[i].data->data) d = std::string(*got[i].data->data);
        if (!got[i].data || d != node.data || got[i].data->stat != model_.stat_of(node))
          return fail(what + ": data or stat differ");
      } else {
        std::vector<std::string> names(got[i].children.begin(), got[i].children.end());
        std::sort(names.begin(), names.end());
        if (names != model_.children_of(ops[i].path)) return fail(what + ": children differ");
      }
    }
    return true;
  }

  bool add_watch(WatcherId w, const std::string& p, WatchKind k) {
    Status want = model_.add_watch(w, p, k);
    Status got = tree_.add_watch(w, p, k);
    if (want.code() != got.code()) {
      return fail("add_watch w" + std::to_string(w) + " " + quote(p) + " kind " +
                  std::to_string(static_cast<int>(k)) + ": tree " + got.to_string());
    }
    return true;
  }

  bool watch_step() {
    WatcherId w = gen_.rnd().uniform(1, 4);
    std::string p = gen_.path();
    int kind = static_cast<int>(gen_.rnd().below(100));
    if (kind < 30) {
      WatchKind k = gen_.chance(50) ? WatchKind::Persistent : WatchKind::PersistentRecursive;
      note("add_watch w" + std::to_string(w) + " " + quote(p) + " " +
           (k == WatchKind::Persistent ? "persistent" : "recursive"));
      return add_watch(w, p, k);
    }
    if (kind < 65) {
      auto type = static_cast<WatcherType>(gen_.rnd().uniform(1, 5));
      bool remove = gen_.chance(50);
      // Aim at registered paths most of the time, or nothing would match.
      const auto registered = model_.watches();
      if (!registered.empty() && gen_.chance(70)) {
        auto it = registered.begin();
        std::advance(it, static_cast<long>(gen_.rnd().below(registered.size())));
        w = std::get<0>(*it);
        p = std::get<1>(*it);
      }
      note(std::string(remove ? "remove_watches" : "check_watches") + " w" + std::to_string(w) +
           " " + quote(p) + " type " + std::to_string(static_cast<int>(type)));
      if (remove && (type == WatcherType::Data || type == WatcherType::Children) &&
          (registered.count({w, p, WatchKind::Persistent}) ||
           registered.count({w, p, WatchKind::PersistentRecursive}))) {
        ++coverage_["removeWatches:one side of a persistent watch"];
      }
      Status want = remove ? model_.remove_watches(w, p, type) : model_.check_watches(w, p, type);
      Status got = remove ? tree_.remove_watches(w, p, type) : tree_.check_watches(w, p, type);
      if (want.code() != got.code()) {
        return fail(
            std::string(remove ? "remove_watches" : "check_watches") + " w" + std::to_string(w) +
            " " + quote(p) + " type " + std::to_string(static_cast<int>(type)) + ": model " +
            std::string(error_name(want.code())) + " tree " + std::string(error_name(got.code())));
      }
      return true;
    }
    if (kind < 72) {
      note("remove_watcher w" + std::to_string(w));
      model_.remove_watcher(w);
      tree_.remove_watcher(w);
      return true;
    }
    // setWatches after a "reconnect": relative to a zxid the client saw.
    SetWatchesRequest req;
    req.relative_zxid = Zxid(static_cast<std::int64_t>(gen_.rnd().uniform(0, zxid_ + 1)));
    auto some = [&](std::vector<std::string>& v) {
      std::size_t n = gen_.rnd().below(3);
      for (std::size_t i = 0; i < n; ++i)
        v.push_back(gen_.path());
    };
    some(req.data);
    some(req.exist);
    some(req.child);
    if (gen_.chance(30)) some(req.persistent);
    if (gen_.chance(30)) some(req.persistent_recursive);
    std::string desc =
        "set_watches w" + std::to_string(w) + " rel=" + std::to_string(req.relative_zxid.value());
    auto list = [&](const char* name, const std::vector<std::string>& v) {
      desc += std::string(" ") + name + "={";
      for (const auto& x : v)
        desc += quote(x) + " ";
      desc += "}";
    };
    list("data", req.data);
    list("exist", req.exist);
    list("child", req.child);
    list("persistent", req.persistent);
    list("recursive", req.persistent_recursive);
    note(desc);
    auto want = model_.set_watches(w, req, tree_.last_zxid().value());
    if (!want.empty()) ++coverage_["setWatches:fired"];
    auto got = tree_.set_watches(w, req);
    if (by_watcher(want, false) != by_watcher(got, false)) {
      return fail(desc + "\n  model:" + show_events(want) + "\n  tree: " + show_events(got));
    }
    return true;
  }

  // Every node, child list, ACL and counter, and the watch table.
  bool compare_all() {
    Caller super_caller{SessionId(0), {Id{"super", ""}}};
    for (const auto& [p, n] : model_.nodes()) {
      if (!compare_stat_result("exists " + quote(p), model_.stat_of(n), tree_.exists(p)))
        return false;
      if (!compare_data(p, super_caller) || !compare_children(p, super_caller) ||
          !compare_acl(p, super_caller))
        return false;
    }
    if (tree_.node_count() != model_.nodes().size()) {
      return fail("node_count: model " + std::to_string(model_.nodes().size()) + " tree " +
                  std::to_string(tree_.node_count()));
    }
    if (tree_.ephemeral_count() != model_.ephemeral_count()) {
      return fail("ephemeral_count: model " + std::to_string(model_.ephemeral_count()) + " tree " +
                  std::to_string(tree_.ephemeral_count()));
    }
    auto sessions = tree_.sessions_with_ephemerals();
    std::sort(sessions.begin(), sessions.end());
    if (sessions != model_.sessions_with_ephemerals())
      return fail("sessions_with_ephemerals differ");
    for (std::int64_t ahead : {0, 500, 5000}) {
      auto want = model_.reap_candidates(time_ + ahead);
      auto got = tree_.reap_candidates(TimeMs(time_ + ahead));
      if (want != got) {
        std::string a, b;
        for (const auto& x : want)
          a += x + ",";
        for (const auto& x : got)
          b += x + ",";
        return fail("reap_candidates at t" + std::to_string(time_ + ahead) + ": model [" + a +
                    "] tree [" + b + "]");
      }
    }
    std::set<WatchKey> got_watches;
    tree_.for_each_watch([&](WatcherId w, std::string_view p, WatchKind k) {
      got_watches.insert({w, std::string(p), k});
    });
    if (got_watches != model_.watches()) {
      std::string a, b;
      for (const auto& [w, p, k] : model_.watches())
        a += "w" + std::to_string(w) + ":" + p + ":" + std::to_string(static_cast<int>(k)) + " ";
      for (const auto& [w, p, k] : got_watches)
        b += "w" + std::to_string(w) + ":" + p + ":" + std::to_string(static_cast<int>(k)) + " ";
      return fail("watch tables differ: model {" + a + "} tree {" + b + "}");
    }
    if (tree_.watch_count() != model_.watches().size()) {
      return fail("watch_count: model " + std::to_string(model_.watches().size()) + " tree " +
                  std::to_string(tree_.watch_count()));
    }
    return true;
  }

  std::uint64_t seed_;
  Model model_;
  DataTree tree_;
  Gen gen_;
  std::uint64_t step_ = 0;
  std::int64_t zxid_ = 0;
  std::int64_t time_ = 1'700'000'000'000;
  std::deque<std::string> history_;
  std::map<std::string, std::uint64_t> digest_of_;
  std::map<std::uint64_t, std::string> contents_of_;
  Coverage& coverage_;
  std::string fingerprint_ = Model().fingerprint();
};

TEST(ZnodeDifferential, RandomOpsAgreeWithReferenceModel) {
  Coverage coverage;
  constexpr std::uint64_t default_steps = 2500;
  std::uint64_t steps = env_u64("COORD_ZNODE_DIFF_STEPS", default_steps);
  if (const char* s = std::getenv("COORD_ZNODE_DIFF_SEED"); s != nullptr && *s != '\0') {
    Runner(std::strtoull(s, nullptr, 0), coverage).run(steps);
    return;
  }
  std::uint64_t seeds = env_u64("COORD_ZNODE_DIFF_SEEDS", 8);
  std::uint64_t first = env_u64("COORD_ZNODE_DIFF_FIRST_SEED", 1);
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    if (!Runner(seed, coverage).run(steps)) return;
  }
  // The walk must keep reaching every outcome, or agreement proves little.
  if (steps < default_steps || seeds < 5) return;
  for (const char* key : {"create:Ok",
                          "create:NoNode",
                          "create:NodeExists",
                          "create:NoAuth",
                          "create:InvalidAcl",
                          "create:BadArguments",
                          "create:NoChildrenForEphemerals",
                          "delete:Ok",
                          "delete:NoNode",
                          "delete:NoAuth",
                          "delete:BadVersion",
                          "delete:NotEmpty",
                          "delete:BadArguments",
                          "setData:Ok",
                          "setData:NoAuth",
                          "setData:BadVersion",
                          "setData:BadArguments",
                          "setACL:Ok",
                          "setACL:InvalidAcl",
                          "setACL:NoAuth",
                          "setACL:BadVersion",
                          "check:Ok",
                          "check:BadVersion",
                          "check:NoAuth",
                          "multi:ok",
                          "multi:failed",
                          "closeSession:fired",
                          "reap:Ok",
                          "mode:PERSISTENT_SEQUENTIAL",
                          "mode:EPHEMERAL",
                          "mode:EPHEMERAL_SEQUENTIAL",
                          "mode:CONTAINER",
                          "mode:PERSISTENT_WITH_TTL",
                          "mode:PERSISTENT_SEQUENTIAL_WITH_TTL",
                          "event:NodeCreated",
                          "event:NodeDeleted",
                          "event:NodeDataChanged",
                          "event:NodeChildrenChanged",
                          "setWatches:fired",
                          "getACL:masked",
                          "removeWatches:one side of a persistent watch"}) {
    EXPECT_GT(coverage[key], 0) << "the random walk never produced " << key;
  }
}

// ===========================================================================
// Digest: equal trees hash alike whatever the order that built them;
// trees that differ in one field hash differently.
// ===========================================================================

const Caller kAnon{SessionId(0x100000001), {Id{"ip", "127.0.0.1"}}};
const Caller kAliceCaller{SessionId(0x100000002), {Id{"ip", "127.0.0.1"}, kAlice}};

CreateOp mk_create(std::string path, Data data = std::string("x"),
                   CreateMode mode = CreateMode::Persistent, AclList acl = open_acl_unsafe(),
                   std::int64_t ttl = 0) {
  return CreateOp{std::move(path), std::move(data), std::move(acl), mode, ttl};
}

void apply_ok(DataTree& t, const Txn& txn, std::int64_t zxid, const Caller& c = kAnon,
              std::int64_t time = 1000) {
  ApplyResult r = t.apply(txn, c, Zxid(zxid), TimeMs(time));
  ASSERT_EQ(r.err, ErrorCode::Ok) << show_txn(txn);
  if (r.multi) {
    ASSERT_TRUE(r.multi->ok()) << show_txn(txn) << " " << show_result(r);
  }
}

TEST(ZnodeDigest, MultiOpOrderDoesNotMatter) {
  // The same independent ops inside one multi, in every order: equal trees.
  std::vector<MultiSubOp> ops = {
      mk_create("/a"), mk_create("/b", std::nullopt),
      mk_create("/c", std::string(), CreateMode::Container),
      mk_create("/d", std::string("ttl"), CreateMode::PersistentWithTtl, open_acl_unsafe(), 50)};
  std::vector<std::size_t> order = {0, 1, 2, 3};
  std::optional<std::uint64_t> first;
  int trees = 0;
  do {
    DataTree t;
    MultiOp m;
    for (auto i : order)
      m.ops.push_back(ops[i]);
    apply_ok(t, m, 7);
    // Then setData on two nodes in either order, in one multi.
    MultiOp m2;
    m2.ops.push_back(SetDataOp{"/a", std::string("A"), -1});
    m2.ops.push_back(SetDataOp{"/b", std::string("B"), -1});
    if (order[0] % 2 == 1) std::swap(m2.ops[0], m2.ops[1]);
    apply_ok(t, m2, 9);
    if (!first) first = t.digest();
    EXPECT_EQ(t.digest(), *first) << "order " << order[0] << order[1] << order[2] << order[3];
    ++trees;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(trees, 24);
}

TEST(ZnodeDigest, FailedOpsWatchesAndReadsDoNotMatter) {
  DataTree a, b;
  apply_ok(a, mk_create("/a"), 1);
  apply_ok(b, mk_create("/a"), 1);
  // b also sees failed writes, a failed multi, reads and watches.
  EXPECT_NE(b.apply(mk_create("/a"), kAnon, Zxid(2), TimeMs(5)).err, ErrorCode::Ok);
  EXPECT_NE(b.apply(SetDataOp{"/a", std::string("z"), 7}, kAnon, Zxid(3), TimeMs(5)).err,
            ErrorCode::Ok);
  MultiOp bad;
  bad.ops.push_back(mk_create("/n"));
  bad.ops.push_back(DeleteOp{"/missing", -1});
  ApplyResult r = b.apply(bad, kAnon, Zxid(4), TimeMs(5));
  ASSERT_TRUE(r.multi.has_value());
  EXPECT_FALSE(r.multi->ok());
  EXPECT_TRUE(b.add_watch(1, "/a", WatchKind::Data).ok());
  EXPECT_TRUE(b.add_watch(2, "/", WatchKind::PersistentRecursive).ok());
  (void)b.get_data("/a", kAnon);
  // Both end with the same successful write at the same zxid.
  apply_ok(a, SetDataOp{"/a", std::string("v"), -1}, 6);
  apply_ok(b, SetDataOp{"/a", std::string("v"), -1}, 6);
  EXPECT_EQ(a.digest(), b.digest());
  // A check changes nothing either.
  std::uint64_t before = b.digest();
  apply_ok(b, CheckOp{"/a", 1}, 8);
  EXPECT_EQ(b.digest(), before);
}

TEST(ZnodeDigest, SessionCloseOrderDoesNotMatter) {
  Caller s1{SessionId(11), {Id{"ip", "127.0.0.1"}}};
  Caller s2{SessionId(22), {Id{"ip", "127.0.0.1"}}};
  auto build = [&](bool swap) {
    DataTree t;
    MultiOp m;
    m.ops.push_back(mk_create("/p"));
    t.apply(m, kAnon, Zxid(1), TimeMs(1));
    apply_ok(t, mk_create("/p/e1", std::string("1"), CreateMode::Ephemeral), 2, s1);
    apply_ok(t, mk_create("/p/e2", std::string("2"), CreateMode::Ephemeral), 3, s2);
    apply_ok(t, mk_create("/p/k", std::string("3"), CreateMode::Ephemeral), 4, s2);
    // Closing both sessions in one step each, in either order, but the last
    // at the same zxid: the contents differ only by the pzxid of /p.
    if (swap) {
      apply_ok(t, CloseSessionOp{SessionId(22)}, 5);
      apply_ok(t, CloseSessionOp{SessionId(11)}, 6);
    } else {
      apply_ok(t, CloseSessionOp{SessionId(11)}, 5);
      apply_ok(t, CloseSessionOp{SessionId(22)}, 6);
    }
    return t.digest();
  };
  EXPECT_EQ(build(false), build(true));
}

TEST(ZnodeDigest, TreesThatDifferInOneFieldDiffer) {
  // A base tree, then one variant per field of the replicated state.
  auto base = [](DataTree& t) {
    apply_ok(t, mk_create("/a"), 1);
    apply_ok(t, mk_create("/a/b", std::string("data")), 2);
  };
  std::set<std::uint64_t> seen;
  std::vector<std::string> names;
  auto variant = [&](const std::string& name, const std::function<void(DataTree&)>& last) {
    DataTree t;
    base(t);
    last(t);
    names.push_back(name);
    EXPECT_TRUE(seen.insert(t.digest()).second)
        << "variant '" << name << "' has the digest of an earlier one";
  };
  variant("plain", [](DataTree& t) { apply_ok(t, mk_create("/c"), 3, kAnon, 500); });
  variant("other name", [](DataTree& t) { apply_ok(t, mk_create("/d"), 3, kAnon, 500); });
  variant("other zxid", [](DataTree& t) { apply_ok(t, mk_create("/c"), 4, kAnon, 500); });
  variant("other time", [](DataTree& t) { apply_ok(t, mk_create("/c"), 3, kAnon, 501); });
  variant("null data",
          [](DataTree& t) { apply_ok(t, mk_create("/c", std::nullopt), 3, kAnon, 500); });
  variant("empty data",
          [](DataTree& t) { apply_ok(t, mk_create("/c", std::string()), 3, kAnon, 500); });
  variant("one data byte",
          [](DataTree& t) { apply_ok(t, mk_create("/c", std::string("y")), 3, kAnon, 500); });
  variant("other acl", [](DataTree& t) {
    apply_ok(t, mk_create("/c", std::string("x"), CreateMode::Persistent, read_acl_unsafe()), 3,
             kAnon, 500);
  });
  variant("other acl perms", [](DataTree& t) {
    apply_ok(t,
             mk_create("/c", std::string("x"), CreateMode::Persistent,
                       {Acl{perm::all & ~perm::admin, Id{"world", "anyone"}}}),
             3, kAnon, 500);
  });
  variant("ephemeral", [](DataTree& t) {
    apply_ok(t, mk_create("/c", std::string("x"), CreateMode::Ephemeral), 3, kAnon, 500);
  });
  variant("ephemeral of another session", [](DataTree& t) {
    apply_ok(t, mk_create("/c", std::string("x"), CreateMode::Ephemeral), 3, kAliceCaller, 500);
  });
  variant("container", [](DataTree& t) {
    apply_ok(t, mk_create("/c", std::string("x"), CreateMode::Container), 3, kAnon, 500);
  });
  variant("ttl", [](DataTree& t) {
    apply_ok(
        t, mk_create("/c", std::string("x"), CreateMode::PersistentWithTtl, open_acl_unsafe(), 100),
        3, kAnon, 500);
  });
  variant("other ttl", [](DataTree& t) {
    apply_ok(
        t, mk_create("/c", std::string("x"), CreateMode::PersistentWithTtl, open_acl_unsafe(), 101),
        3, kAnon, 500);
  });
  variant("set data", [](DataTree& t) {
    apply_ok(t, SetDataOp{"/a/b", std::string("datb"), -1}, 3);
  });
  variant("set acl", [](DataTree& t) { apply_ok(t, SetAclOp{"/a/b", read_acl_unsafe(), -1}, 3); });
  variant("delete", [](DataTree& t) { apply_ok(t, DeleteOp{"/a/b", -1}, 3); });
  variant("create counter", [](DataTree& t) {
    // Create and delete a child: /a ends with the same children but a
    // higher create counter (cversion) and pzxid; pzxid pinned by zxid.
    MultiOp m;
    m.ops.push_back(mk_create("/a/t"));
    m.ops.push_back(DeleteOp{"/a/t", -1});
    apply_ok(t, m, 3);
  });
  variant("nothing", [](DataTree&) {});
  EXPECT_EQ(seen.size(), names.size());
}

// A few fixed facts the random walk depends on, checked by name so that a
// failure reads plainly.
TEST(ZnodeDifferentialModel, FreshTreeMatchesRealZooKeeper) {
  Model m;
  DataTree t;
  for (const auto& [p, n] : m.nodes()) {
    auto st = t.exists(p);
    ASSERT_TRUE(st.ok()) << p;
    EXPECT_EQ(*st, m.stat_of(n)) << p;
    auto acl = t.get_acl(p, kAnon);
    ASSERT_TRUE(acl.ok()) << p;
    EXPECT_EQ(acl->acl, n.acl) << p;
    auto d = t.get_data(p, kAnon);
    ASSERT_TRUE(d.ok()) << p;
    ASSERT_TRUE(d->data.has_value()) << p << ": built-in nodes hold empty, not null, data";
    EXPECT_EQ(*d->data, "") << p;
  }
  EXPECT_EQ(t.node_count(), 4u);
}

TEST(ZnodeDifferentialModel, PathRuleMatchesRealZooKeeper) {
  // Answers of a real 3.8 server to create of these paths under `/`.
  for (std::string ok : {"/\xc3\xa9", "/\xc2\xa0", "/a b", "/.a", "/a.", "/..a", "/..."}) {
    EXPECT_TRUE(model_valid_path(ok)) << quote(ok);
    EXPECT_TRUE(validate_path(ok).ok()) << quote(ok);
  }
  for (std::string bad : {"/\xc2\x80", "/\xf0\x9f\x98\x80", "/\x7f", "/\xef\xa3\xbf",
                          "/\xee\x80\x80", "/\xef\xbf\xb0", "/\xef\xbf\xbd", "/\xc2\x9f", "/\x1f",
                          "/a/", "//a", "/a/.", "/a/..", "a", "", "/\xff", "/\xc0\xaf"}) {
    EXPECT_FALSE(model_valid_path(bad)) << quote(bad);
    EXPECT_EQ(validate_path(bad).code(), ErrorCode::BadArguments) << quote(bad);
  }
}

}  // namespace
}  // namespace coord::znode
