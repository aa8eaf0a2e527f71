// The client side of watches: who is waiting for which event on which path.
//
// The Client keeps one WatchTable on its I/O thread. A watcher is added when
// the server confirms the registration (getData/exists/getChildren with a
// watcher succeeded, exists answered NoNode, addWatch succeeded). An event
// from the server is turned into the list of watchers to call with
// ZooKeeper's rules: one-shot watchers are removed as they fire, persistent
// ones stay, recursive ones match every descendant but never see
// NodeChildrenChanged. After a reconnect, paths() lists what to re-register
// with setWatches / setWatches2.
//
// Paths here are server paths (chroot included). Every registration is a
// separate watcher: registering the same callback twice calls it twice,
// while the server keeps one watch.
// Thread safety: none; owned by one thread.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "coord/base/zk_types.h"

namespace coord {

struct WatchEvent {
  EventType type = EventType::None;
  KeeperState state = KeeperState::SyncConnected;
  std::string path;  // relative to the client's chroot
};

using Watcher = std::function<void(const WatchEvent&)>;

enum class WatchKind : std::uint8_t { None, Data, Exist, Child, Persistent, PersistentRecursive };

class WatchTable {
 public:
  void add(WatchKind kind, const std::string& path, Watcher w);

  // Removes the one-shot watchers `type` on `path` triggers and returns
  // them together with the persistent watchers it reaches.
  std::vector<Watcher> trigger(EventType type, const std::string& path);

  // Removes the watchers of `type` on `path` (removeWatches); returns each
  // with the local event it should now receive (DataWatchRemoved, ...).
  std::vector<std::pair<Watcher, EventType>> remove(const std::string& path, WatcherType type);
  bool contains(const std::string& path, WatcherType type) const;

  struct Paths {
    std::vector<std::string> data, exist, child, persistent, persistent_recursive;
  };
  Paths paths() const;
  std::size_t size() const;
  bool empty() const { return size() == 0; }
  void clear();

 private:
  using Map = std::map<std::string, std::vector<Watcher>>;
  static void take(Map& m, const std::string& path, std::vector<Watcher>& out);
  Map data_, exist_, child_, persistent_, recursive_;
};

}  // namespace coord
