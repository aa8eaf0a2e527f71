// The znode tree: ZooKeeper's data model as a deterministic state machine.
//
// Writes enter only through apply(txn, caller, zxid, time); the same
// sequence of calls yields the same tree, results and events on every
// replica. Reads are const calls answered from the current state. The tree
// performs no I/O, starts no thread and reads no clock: time arrives in the
// txn's timestamp. Behaviour follows what ZooKeeper 3.8 clients observe
// (docs/PROTOCOL.md §3, §6–§8): path rules, Stat update rules
// (cversion, pzxid), sequential suffixes from a 64-bit per-parent counter,
// ephemeral ownership, containers and TTL nodes, ACLs (stored interned),
// multi, and the watch index of the connections of this server.
//
// Thread safety: none. One owner (the replica's apply loop) calls
// everything; views returned by reads are valid until the next mutation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/status.h"
#include "coord/znode/ops.h"

namespace coord::znode {

// How a tree applies txns. Every server of a cluster must use the same
// values: they decide results, so replicas with different ones diverge.
struct TreeConfig {
  // Refuse a create or setData that would take a subtree with a quota past
  // its hard limit (countHardLimit / byteHardLimit) with QuotaExceeded, as
  // ZooKeeper 3.8 does with zookeeper.enforceQuota=true. Off: hard limits
  // are only reported, like soft ones.
  bool enforce_quota = false;
};

// Quotas (ZooKeeper's scheme, maintained by the tree as 3.8's server does):
// a node `/zookeeper/quota<P>/zookeeper_limits` puts a quota on the subtree
// at P; its data holds the limits in ZooKeeper's text form
// ("count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"). The usage lives
// in the data of `/zookeeper/quota<P>/zookeeper_stats` as
// "count=N,bytes=N": N nodes (P itself included) and the sum of their data
// lengths. The tree recounts the subtree when the stats node is created and
// when the limits node is created or changed, and updates the usage of
// every quota at or above a node on each create, delete and setData of it,
// in the same txn (so it is replicated, in snapshots and in the digest).
// The stats node's version and mzxid stay as they are, and no watch fires
// for it, as in 3.8. A change that passes a limit is reported in
// ApplyResult::quota; with TreeConfig::enforce_quota, one that would pass a
// hard limit fails with QuotaExceeded (after the ACL check of setData and
// after every other check of create, as 3.8 orders them).
class DataTree {
 public:
  // A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`
  // as a fresh ZooKeeper 3.8 has them, last_zxid() = 0.
  explicit DataTree(TreeConfig config = {});
  ~DataTree();
  DataTree(DataTree&&) noexcept;
  DataTree& operator=(DataTree&&) noexcept;
  DataTree(const DataTree&) = delete;
  DataTree& operator=(const DataTree&) = delete;

  // ---- writes ----------------------------------------------------------

  // Applies one transaction. `zxid` must be greater than last_zxid();
  // `time` becomes ctime/mtime and is the "now" of TTL checks. Validation
  // (NoNode, BadVersion, NoAuth, ...) happens here, against the current
  // state; a failed txn changes nothing but last_zxid().
  ApplyResult apply(const Txn& txn, const Caller& caller, Zxid zxid, TimeMs time);

  // Sets the data of /zookeeper/config: the membership of a cluster, written
  // by the replica when a configuration change applies (no client may write
  // that node). Its version and mzxid move as for a setData and its data
  // watches fire; its mtime stays as it is, since configuration entries
  // carry no time. `zxid` must be greater than last_zxid().
  ApplyResult set_config(std::string_view data, Zxid zxid);

  // A hint that the nodes at `paths` are about to be read or written, e.g.
  // the txns of a batch of committed entries: their index slots, nodes and
  // data are brought toward the cache together, so that the lookups which
  // follow pay one overlapped memory round trip per batch rather than two
  // in turn per path. Changes nothing; any string is accepted.
  void prefetch(std::span<const std::string_view> paths) const;

  // ---- reads -------------------------------------------------------------
  // Read paths are not validated (as in ZooKeeper 3.8): a malformed path is
  // simply NoNode.

  Result<Stat> exists(std::string_view path) const;
  Result<DataView> get_data(std::string_view path, const Caller& caller) const;
  Result<ChildrenView> get_children(std::string_view path, const Caller& caller) const;
  Result<AclView> get_acl(std::string_view path, const Caller& caller) const;
  // Whether `caller` holds every permission of `perms` (perm::write...) on
  // the node at `path`; false when there is no such node.
  bool allows(std::string_view path, const Caller& caller, std::int32_t perms) const;
  // Number of descendants, the node itself excluded.
  Result<std::int64_t> get_all_children_number(std::string_view path, const Caller& caller) const;
  // Paths of `session`'s ephemerals starting with `prefix` (plain string
  // prefix; "" or "/" = all), sorted.
  std::vector<std::string> get_ephemerals(SessionId session, std::string_view prefix) const;
  // The same paths, in the same order, handed to fn one at a time until it
  // returns false (a caller that bounds its reply stops early).
  void visit_ephemerals(SessionId session, std::string_view prefix,
                        const std::function<bool(std::string_view)>& fn) const;
  std::vector<ReadOpResult> multi_read(const std::vector<ReadOp>& ops, const Caller& caller) const;

  // Sessions that own at least one ephemeral.
  std::vector<SessionId> sessions_with_ephemerals() const;

  // Containers and TTL nodes due for removal at `now` (sorted), for the
  // leader to propose ReapOps: a container with no children that has had
  // at least one; a TTL node with no children unmodified for longer than
  // its TTL.
  std::vector<std::string> reap_candidates(TimeMs now) const;

  Zxid last_zxid() const;
  std::size_t node_count() const;  // including the built-in nodes
  std::size_t ephemeral_count() const;
  // Bytes of data and names held, for `mntr`'s approximate data size.
  std::size_t approximate_data_bytes() const;

  // ---- watches (per connection, local to this server) ------------------

  // Registers a watch. Errors: Throttled past the per-connection limit.
  Status add_watch(WatcherId watcher, std::string_view path, WatchKind kind);
  // The per-connection limit (default watches_per_connection_max); a tree
  // read from a snapshot starts with the default again.
  void set_watches_per_connection_max(std::size_t n);
  // Ok if `watcher` has a watch of `type` on `path`, else NoWatcher.
  Status check_watches(WatcherId watcher, std::string_view path, WatcherType type) const;
  // Removes them; NoWatcher if there was none to remove.
  Status remove_watches(WatcherId watcher, std::string_view path, WatcherType type);
  // Re-arms watches after a reconnect (docs/PROTOCOL.md §8.5) and returns the events that
  // fire at once, in the order of the lists. A registration refused by the
  // per-connection limit is skipped and `refused`, when given, is set to
  // Throttled; the rest of the lists is still handled.
  std::vector<WatchEvent> set_watches(WatcherId watcher, const SetWatchesRequest& request,
                                      Status* refused = nullptr);
  // Drops every watch of a closed connection.
  void remove_watcher(WatcherId watcher);
  std::size_t watch_count() const;
  // Paths watched, and connections holding at least one watch (wchs).
  std::size_t watched_path_count() const;
  std::size_t watching_connection_count() const;
  // Each (path, connection) pair once, grouped by path (wchp) or by
  // connection (wchc), in no particular order, until fn returns false.
  void visit_watches_by_path(const std::function<bool(std::string_view, WatcherId)>& fn) const;
  void visit_watches_by_watcher(const std::function<bool(WatcherId, std::string_view)>& fn) const;
  // Every registration, for the wchc / wchp / wchs four-letter words.
  void for_each_watch(
      const std::function<void(WatcherId, std::string_view path, WatchKind)>& fn) const;

  // ---- snapshot and digest -----------------------------------------------

  // The whole replicated state (nodes, data, Stat, ACLs, ephemeral owners,
  // counters, TTLs, last_zxid) as bytes, versioned and checksummed.
  // Watches are not included.
  std::string write_snapshot() const;
  // Rebuilds a tree; a truncated, corrupt or unknown-version snapshot is
  // an error with a clear message, never a partial tree.
  static Result<DataTree> read_snapshot(std::string_view bytes, TreeConfig config = {});

  const TreeConfig& config() const;

  // An order-independent hash of the replicated state, kept up to date
  // incrementally: equal on two trees exactly when their contents are
  // equal (up to hash collisions).
  std::uint64_t digest() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ZooKeeper's path rule for writes (docs/PROTOCOL.md §3.4): absolute, no trailing '/', no
// empty, "." or ".." component, no NUL or disallowed characters, at most
// znode_path_bytes_max bytes. BadArguments otherwise.
Status validate_path(std::string_view path);

// "/a/b" -> "/a"; "/a" -> "/"; "/" -> "".
std::string_view parent_path(std::string_view path);

}  // namespace coord::znode
