// The watch index of a DataTree: which connection watches which path, and
// how. ZooKeeper 3.8 keeps two managers: the data side holds data, exist,
// persistent and recursive registrations, the child side child, persistent
// and recursive ones (a persistent or recursive watch is registered in
// both). This index keeps one map path -> registrations with a bit per
// kind and side (a PathTable of WatchedPaths, each path stored once
// however many watch it), and triggers either side as DataTree does
// (docs/PROTOCOL.md §8.2–§8.3): a recursive watcher never receives
// NodeChildrenChanged. Keeping the two halves apart reproduces what
// removeWatches(Data) or (Children) does to a persistent watch on 3.8 (it
// drops one half; observed). Within one trigger every connection gets at
// most one event; events of one trigger are ordered by watcher id.
// Thread safety: none; owned by one DataTree.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coord/base/limits.h"
#include "coord/base/status.h"
#include "coord/znode/ops.h"
#include "hash.h"
#include "watch_containers.h"

namespace coord::znode::detail {

class WatchIndex {
 public:
  static constexpr std::uint8_t kData = 1;
  static constexpr std::uint8_t kExist = 2;
  static constexpr std::uint8_t kChild = 4;
  static constexpr std::uint8_t kPersistentData = 8;
  static constexpr std::uint8_t kPersistentChild = 16;
  static constexpr std::uint8_t kRecursiveData = 32;
  static constexpr std::uint8_t kRecursiveChild = 64;
  static constexpr std::uint8_t kPersistentAny = kPersistentData | kPersistentChild;
  static constexpr std::uint8_t kRecursiveAny = kRecursiveData | kRecursiveChild;
  static constexpr std::uint8_t kAll = 0x7f;

  // Bits a registration of `kind` sets.
  static std::uint8_t bits_of(WatchKind kind);
  // Bits a check/removeWatches of `type` covers.
  static std::uint8_t bits_of(WatcherType type);

  Status add(WatcherId w, std::string_view path, WatchKind kind);
  bool has(WatcherId w, std::string_view path, std::uint8_t bits) const;
  // Clears `bits` of w's registration on path; false if none was set.
  bool remove(WatcherId w, std::string_view path, std::uint8_t bits);
  void remove_watcher(WatcherId w);
  std::size_t count() const { return total_; }
  bool empty() const { return by_path_.empty(); }
  std::size_t paths() const { return by_path_.size(); }
  std::size_t watchers() const { return by_watcher_.size(); }
  // Registrations (counted as count() counts them) one watcher may hold;
  // add() refuses one more with Throttled.
  void set_per_watcher_max(std::size_t n) { per_watcher_max_ = n; }
  void for_each(const std::function<void(WatcherId, std::string_view, WatchKind)>& fn) const;
  // Each (path, watcher) pair once, grouped by path / by watcher, in no
  // particular order, until fn returns false: the cost is what was
  // visited, with nothing collected or sorted first.
  void visit_by_path(const std::function<bool(std::string_view, WatcherId)>& fn) const;
  void visit_by_watcher(const std::function<bool(WatcherId, std::string_view)>& fn) const;

  // Data side: data, exist and persistent watchers of `path`, and
  // persistent-recursive watchers of `path` or an ancestor. One-shot
  // registrations fire once and are dropped. Appends the watchers that got
  // an event to `fired` when given.
  void trigger_data(std::string_view path, EventType type, Zxid zxid, std::vector<WatchEvent>& out,
                    std::vector<WatcherId>* fired);
  // Child side: child and persistent watchers of `path`, except those in
  // `suppress` (already told about this change).
  void trigger_child(std::string_view path, EventType type, Zxid zxid, std::vector<WatchEvent>& out,
                     const std::vector<WatcherId>* suppress);

 private:
  // The paths a watcher has registrations on, as pointers to by_path_'s
  // entries: a path is stored once however many watch it.
  struct PerWatcher {
    PointerSet<WatchedPath> paths;
    std::size_t count = 0;
  };

  // Registrations counted by kind (a persistent or recursive watch counts
  // once whichever halves it has).
  static std::size_t kinds(std::uint8_t bits);
  // Sets the bits of registration `index` of `e`, keeping every count and
  // the per-watcher index in step; a registration left with no bit is
  // removed (the path entry itself is left to the caller).
  void set_bits(WatchedPath* e, std::size_t index, std::uint8_t bits);
  // Clears `bits` of w's registration on `e`, dropping `e` once no
  // registration is left; false if none of them was set.
  bool remove(WatcherId w, WatchedPath* e, std::uint8_t bits);
  // Collects into scratch_ the watchers of `path` whose bits meet `match`
  // and of its ancestors whose bits meet `ancestor_match`, minus
  // `suppress`; clears `clear` at `path` (one-shot registrations).
  void trigger(std::string_view path, std::uint8_t match, std::uint8_t clear,
               std::uint8_t ancestor_match, const std::vector<WatcherId>* suppress);
  void emit(EventType type, std::string_view path, Zxid zxid, std::vector<WatchEvent>& out);

  PathTable by_path_;
  std::unordered_map<WatcherId, PerWatcher> by_watcher_;
  std::size_t total_ = 0;
  std::size_t recursive_ = 0;
  std::size_t per_watcher_max_ = limits::watches_per_connection_max;
  std::vector<WatcherId> scratch_;
};

}  // namespace coord::znode::detail
