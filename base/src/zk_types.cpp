#include "coord/base/zk_types.h"

namespace coord {

std::string perm::to_letters(std::int32_t perms) {
  std::string s;
  if (perms & perm::create) s += 'c';
  if (perms & perm::remove) s += 'd';
  if (perms & perm::read) s += 'r';
  if (perms & perm::write) s += 'w';
  if (perms & perm::admin) s += 'a';
  return s;
}

std::optional<std::int32_t> perm::from_letters(std::string_view letters) {
  std::int32_t p = 0;
  for (char c : letters) {
    const std::size_t at = std::string_view("rwcda").find(c);
    if (at == std::string_view::npos) return std::nullopt;
    p |= std::int32_t{1} << at;
  }
  return p;
}

AclList open_acl_unsafe() {
  return {Acl{perm::all, Id{"world", "anyone"}}};
}
AclList creator_all_acl() {
  return {Acl{perm::all, Id{"auth", ""}}};
}
AclList read_acl_unsafe() {
  return {Acl{perm::read, Id{"world", "anyone"}}};
}

std::ostream& operator<<(std::ostream& os, const Stat& s) {
  return os << "czxid=" << s.czxid << " mzxid=" << s.mzxid << " ctime=" << s.ctime
            << " mtime=" << s.mtime << " version=" << s.version << " cversion=" << s.cversion
            << " aversion=" << s.aversion << " ephemeralOwner=" << s.ephemeral_owner
            << " dataLength=" << s.data_length << " numChildren=" << s.num_children
            << " pzxid=" << s.pzxid;
}

std::optional<CreateMode> create_mode_from_int(std::int32_t flags) {
  if (flags < 0 || flags > 6) return std::nullopt;
  return static_cast<CreateMode>(flags);
}

std::string_view create_mode_name(CreateMode m) {
  switch (m) {
    case CreateMode::Persistent:
      return "PERSISTENT";
    case CreateMode::Ephemeral:
      return "EPHEMERAL";
    case CreateMode::PersistentSequential:
      return "PERSISTENT_SEQUENTIAL";
    case CreateMode::EphemeralSequential:
      return "EPHEMERAL_SEQUENTIAL";
    case CreateMode::Container:
      return "CONTAINER";
    case CreateMode::PersistentWithTtl:
      return "PERSISTENT_WITH_TTL";
    case CreateMode::PersistentSequentialWithTtl:
      return "PERSISTENT_SEQUENTIAL_WITH_TTL";
  }
  return "UNKNOWN";
}

std::string_view event_type_name(EventType t) {
  switch (t) {
    case EventType::None:
      return "None";
    case EventType::NodeCreated:
      return "NodeCreated";
    case EventType::NodeDeleted:
      return "NodeDeleted";
    case EventType::NodeDataChanged:
      return "NodeDataChanged";
    case EventType::NodeChildrenChanged:
      return "NodeChildrenChanged";
    case EventType::DataWatchRemoved:
      return "DataWatchRemoved";
    case EventType::ChildWatchRemoved:
      return "ChildWatchRemoved";
    case EventType::PersistentWatchRemoved:
      return "PersistentWatchRemoved";
  }
  return "Unknown";
}

std::string_view keeper_state_name(KeeperState s) {
  switch (s) {
    case KeeperState::Unknown:
      return "Unknown";
    case KeeperState::Disconnected:
      return "Disconnected";
    case KeeperState::NoSyncConnected:
      return "NoSyncConnected";
    case KeeperState::SyncConnected:
      return "SyncConnected";
    case KeeperState::AuthFailed:
      return "AuthFailed";
    case KeeperState::ConnectedReadOnly:
      return "ConnectedReadOnly";
    case KeeperState::SaslAuthenticated:
      return "SaslAuthenticated";
    case KeeperState::Closed:
      return "Closed";
    case KeeperState::Expired:
      return "Expired";
  }
  return "Unknown";
}

}  // namespace coord
