// The vocabulary of ZooKeeper's data model, shared by the tree (znode/), the
// wire codec (protocol/), the SDK and the shell: Stat, ACLs, create modes,
// watch event types and keeper states, with ZooKeeper 3.8's numeric values
// (docs/PROTOCOL.md §3, §8).
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace coord {

// Permission bits of an ACL entry.
namespace perm {
inline constexpr std::int32_t read = 1 << 0;
inline constexpr std::int32_t write = 1 << 1;
inline constexpr std::int32_t create = 1 << 2;
inline constexpr std::int32_t remove = 1 << 3;  // ZooKeeper's DELETE
inline constexpr std::int32_t admin = 1 << 4;
inline constexpr std::int32_t all = read | write | create | remove | admin;

// The letters zkCli uses, in its order: "cdrwa".
std::string to_letters(std::int32_t perms);
// Letters from "rwcda" in any order; nullopt for another letter.
std::optional<std::int32_t> from_letters(std::string_view letters);
}  // namespace perm

// An identity: (scheme, id), e.g. ("digest", "alice:<base64 sha1>"),
// ("ip", "127.0.0.1"), ("world", "anyone").
struct Id {
  std::string scheme;
  std::string id;
  friend bool operator==(const Id&, const Id&) = default;
  friend auto operator<=>(const Id&, const Id&) = default;
};

struct Acl {
  std::int32_t perms = 0;
  Id id;
  friend bool operator==(const Acl&, const Acl&) = default;
  friend auto operator<=>(const Acl&, const Acl&) = default;
};

using AclList = std::vector<Acl>;

// [(ALL, world:anyone)]
AclList open_acl_unsafe();
// [(ALL, auth:)] — expanded at create/setACL time to the caller's identities.
AclList creator_all_acl();
// [(READ, world:anyone)]
AclList read_acl_unsafe();

// The eleven fields clients see, in wire order. Times are ms since the Unix
// epoch; zxids are coord's 64-bit log indexes.
struct Stat {
  std::int64_t czxid = 0;
  std::int64_t mzxid = 0;
  std::int64_t ctime = 0;
  std::int64_t mtime = 0;
  std::int32_t version = 0;
  std::int32_t cversion = 0;
  std::int32_t aversion = 0;
  std::int64_t ephemeral_owner = 0;
  std::int32_t data_length = 0;
  std::int32_t num_children = 0;
  std::int64_t pzxid = 0;
  friend bool operator==(const Stat&, const Stat&) = default;
};

std::ostream& operator<<(std::ostream& os, const Stat& s);

// Znode data: nullopt is ZooKeeper's null buffer, distinct from "".
using Data = std::optional<std::string>;

enum class CreateMode : std::int32_t {
  Persistent = 0,
  Ephemeral = 1,
  PersistentSequential = 2,
  EphemeralSequential = 3,
  Container = 4,
  PersistentWithTtl = 5,
  PersistentSequentialWithTtl = 6,
};

std::optional<CreateMode> create_mode_from_int(std::int32_t flags);
constexpr bool is_ephemeral(CreateMode m) {
  return m == CreateMode::Ephemeral || m == CreateMode::EphemeralSequential;
}
constexpr bool is_sequential(CreateMode m) {
  return m == CreateMode::PersistentSequential || m == CreateMode::EphemeralSequential ||
         m == CreateMode::PersistentSequentialWithTtl;
}
constexpr bool is_container(CreateMode m) {
  return m == CreateMode::Container;
}
constexpr bool is_ttl(CreateMode m) {
  return m == CreateMode::PersistentWithTtl || m == CreateMode::PersistentSequentialWithTtl;
}
std::string_view create_mode_name(CreateMode m);

// WatcherEvent.type.
enum class EventType : std::int32_t {
  None = -1,
  NodeCreated = 1,
  NodeDeleted = 2,
  NodeDataChanged = 3,
  NodeChildrenChanged = 4,
  DataWatchRemoved = 5,
  ChildWatchRemoved = 6,
  PersistentWatchRemoved = 7,
};
std::string_view event_type_name(EventType t);

// WatcherEvent.state. The server always sends SyncConnected.
enum class KeeperState : std::int32_t {
  Unknown = -1,
  Disconnected = 0,
  NoSyncConnected = 1,
  SyncConnected = 3,
  AuthFailed = 4,
  ConnectedReadOnly = 5,
  SaslAuthenticated = 6,
  Closed = 7,
  Expired = -112,
};
std::string_view keeper_state_name(KeeperState s);

// checkWatches / removeWatches type.
enum class WatcherType : std::int32_t {
  Children = 1,
  Data = 2,
  Any = 3,
  Persistent = 4,
  PersistentRecursive = 5,
};

// addWatch mode.
enum class AddWatchMode : std::int32_t {
  Persistent = 0,
  PersistentRecursive = 1,
};

}  // namespace coord
