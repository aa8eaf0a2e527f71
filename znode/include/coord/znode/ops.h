// The inputs and outputs of the data tree: who is calling, the write
// transactions the replicated log carries, their results, and the watch
// events they fire. Plain value types: the replica builds them from decoded
// requests (and, for the log, serializes them); the tree consumes them.
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "coord/base/error.h"
#include "coord/base/ids.h"
#include "coord/base/zk_types.h"

namespace coord::znode {

// The caller of an operation: its session and the identities its connection
// holds (`ip:<addr>` always; `digest:<user>:<hash>` after digest auth;
// `super:` for the super user, which bypasses every ACL check). Write
// entries carry the caller so every server decides NoAuth alike.
struct Caller {
  SessionId session{0};
  std::vector<Id> identities;

  bool is_super() const;
  friend bool operator==(const Caller&, const Caller&) = default;
};

// ---------------------------------------------------------------------------
// Write transactions. One Txn is applied at one zxid with one timestamp.
// ---------------------------------------------------------------------------

struct CreateOp {
  std::string path;  // for sequential modes, the prefix the suffix is appended to
  Data data;
  AclList acl;
  CreateMode mode = CreateMode::Persistent;
  std::int64_t ttl_ms = 0;  // TTL modes only: znode_ttl_ms_min .. znode_ttl_ms_max
  friend bool operator==(const CreateOp&, const CreateOp&) = default;
};

struct DeleteOp {
  std::string path;
  std::int32_t version = -1;  // -1 = any
  friend bool operator==(const DeleteOp&, const DeleteOp&) = default;
};

struct SetDataOp {
  std::string path;
  Data data;
  std::int32_t version = -1;
  friend bool operator==(const SetDataOp&, const SetDataOp&) = default;
};

struct SetAclOp {
  std::string path;
  AclList acl;
  std::int32_t version = -1;  // checked against aversion
  friend bool operator==(const SetAclOp&, const SetAclOp&) = default;
};

struct CheckOp {
  std::string path;
  std::int32_t version = -1;
  friend bool operator==(const CheckOp&, const CheckOp&) = default;
};

using MultiSubOp = std::variant<CreateOp, DeleteOp, SetDataOp, CheckOp>;

// All or nothing, at one zxid; ops validated in order against the state the
// previous ops left (docs/PROTOCOL.md §7).
struct MultiOp {
  std::vector<MultiSubOp> ops;
  friend bool operator==(const MultiOp&, const MultiOp&) = default;
};

// Deletes every ephemeral of the caller's session (close or expiry), firing
// their watches as deletes do.
struct CloseSessionOp {
  SessionId session{0};
  friend bool operator==(const CloseSessionOp&, const CloseSessionOp&) = default;
};

// Removes a container or TTL node that reap_candidates() reported. The
// condition is checked again at apply time (a child may have been created
// since), so a stale proposal fails harmlessly.
struct ReapOp {
  std::string path;
  friend bool operator==(const ReapOp&, const ReapOp&) = default;
};

using Txn =
    std::variant<CreateOp, DeleteOp, SetDataOp, SetAclOp, CheckOp, MultiOp, CloseSessionOp, ReapOp>;

// The path of the node a txn looks up first (a create's parent, a multi's
// first op's), for DataTree::prefetch; empty when there is none.
std::string_view txn_first_path(const Txn& txn);

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

struct CreateResult {
  std::string path;  // actual path, with the sequential suffix
  Stat stat;
  friend bool operator==(const CreateResult&, const CreateResult&) = default;
};

// One op of a multi: err is Ok for every op of a multi that succeeded; when
// op k failed, ops before k carry Ok, op k its error and ops after it
// RuntimeInconsistency, and nothing was applied.
struct MultiOpResult {
  ErrorCode err = ErrorCode::Ok;
  std::optional<CreateResult> create;  // create ops that succeeded
  std::optional<Stat> stat;            // setData ops that succeeded
  friend bool operator==(const MultiOpResult&, const MultiOpResult&) = default;
};

struct MultiResult {
  std::vector<MultiOpResult> results;
  bool ok() const;  // every op applied
  friend bool operator==(const MultiResult&, const MultiResult&) = default;
};

// ---------------------------------------------------------------------------
// Watches. They belong to connections (WatcherId), not to sessions, are not
// replicated and are not part of a snapshot or the digest.
// ---------------------------------------------------------------------------

using WatcherId = std::uint64_t;

enum class WatchKind : std::uint8_t {
  Data,                 // getData / exists on an existing node
  Exist,                // exists on a missing node
  Child,                // getChildren
  Persistent,           // addWatch PERSISTENT
  PersistentRecursive,  // addWatch PERSISTENT_RECURSIVE
};

struct WatchEvent {
  WatcherId watcher = 0;
  EventType type = EventType::None;
  std::string path;
  Zxid zxid{0};  // of the change that fired it
  // The ACL of the node the event tells about (the parent's, for a child
  // event) as it stood when the event fired, deleted nodes included: a
  // server shows the event only to connections that may READ that node.
  // Unset when there is nothing to protect (a setWatches catch-up about a
  // node that is gone).
  std::optional<AclList> acl;

  // Equal when a client would receive the same notification; `acl` only
  // routes it.
  friend bool operator==(const WatchEvent& a, const WatchEvent& b) {
    return a.watcher == b.watcher && a.type == b.type && a.path == b.path && a.zxid == b.zxid;
  }
};

// True when the caller holds every bit of `perm` on a node with this ACL
// (super bypasses; world:anyone entries match everyone). Lets a server
// filter events against WatchEvent::acl.
bool acl_allows(const AclList& acl, const Caller& caller, std::int32_t perm);

// A quota limit that a change went past (see DataTree's quota contract).
// Not replicated state: the server turns it into a log line.
struct QuotaNotice {
  enum class Kind : std::uint8_t { Count, Bytes };
  std::string path;  // the quota's root, e.g. "/app"
  Kind kind = Kind::Count;
  bool hard = false;       // the hard limit (countHardLimit / byteHardLimit), else the soft one
  bool refused = false;    // the change was refused with QuotaExceeded
  std::int64_t usage = 0;  // nodes or bytes after the change (had it been applied)
  std::int64_t limit = 0;
  friend bool operator==(const QuotaNotice&, const QuotaNotice&) = default;
};

// One line for the log, e.g. "quota of /app: 6 nodes, over its soft limit of 5".
std::string describe(const QuotaNotice& notice);

// The outcome of applying one Txn. `err` is the op's error (Ok for a multi
// even when one of its ops failed, as ZooKeeper replies; look at `multi`).
// `events` are the watch notifications the change fired, in order; a failed
// op fires none.
struct ApplyResult {
  ErrorCode err = ErrorCode::Ok;
  std::optional<CreateResult> create;  // create
  std::optional<Stat> stat;            // setData, setACL, check
  std::optional<MultiResult> multi;    // multi
  std::vector<WatchEvent> events;
  // Quota limits passed or enforced by this txn, in order; empty unless
  // it touched a subtree with a quota.
  std::vector<QuotaNotice> quota;
};

// Paths given to setWatches / setWatches2 after a reconnect (docs/PROTOCOL.md §8.5).
struct SetWatchesRequest {
  Zxid relative_zxid{0};
  std::vector<std::string> data;
  std::vector<std::string> exist;
  std::vector<std::string> child;
  std::vector<std::string> persistent;
  std::vector<std::string> persistent_recursive;
};

// ---------------------------------------------------------------------------
// Read results. Views point into the tree and stay valid until the next
// apply() or snapshot load; copy what must outlive that.
// ---------------------------------------------------------------------------

struct DataView {
  std::optional<std::string_view> data;  // nullopt = null data
  Stat stat;
};

struct ChildrenView {
  std::vector<std::string_view> children;  // names, in no particular order
  Stat stat;
};

struct AclView {
  AclList acl;  // digest ids masked as `user:x` when the caller lacks ADMIN
  Stat stat;
};

// multiRead: each op independently yields its result or its error.
struct ReadOp {
  enum class Kind : std::uint8_t { GetData, GetChildren } kind = Kind::GetData;
  std::string path;
};

struct ReadOpResult {
  ErrorCode err = ErrorCode::Ok;
  std::optional<DataView> data;            // GetData
  std::vector<std::string_view> children;  // GetChildren
};

}  // namespace coord::znode
