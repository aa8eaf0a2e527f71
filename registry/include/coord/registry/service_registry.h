// coord::ServiceRegistry and coord::ServiceDiscovery: services announce
// their instances and clients find them, in Apache Curator x-discovery's
// layout so Java (Curator) and C++ (coord) services see each other.
//
// Layout: `<base>/<service>/<instance id>`, an ephemeral znode holding the
// instance's JSON (coord/registry/service_instance.h); `<base>` and
// `<base>/<service>` are containers made when missing. The default base is
// "/services".
//
// ServiceRegistry: register / update / unregister this process's
// instances. A registration lives as long as the session; after an expiry
// the registry registers every instance again with the next session (a
// leftover node of the old session is replaced). update() changes the data
// in place (same node, version + 1). Destruction unregisters everything.
//
// ServiceDiscovery: a cached view of one service, kept current by watches:
// a persistent recursive watch on `<base>/<service>` where the server has
// them (ZooKeeper 3.6+, coordd), one-shot child and data watches otherwise.
// After every (re)connect the whole list is read again, since persistent
// watches miss what changed while disconnected. Reads of the cache never
// touch the network: while the servers are unreachable the cache keeps
// answering with the last list it knew and says so (stale()). Instances
// whose data is not Curator's JSON are skipped (and counted).
//
// Threading: each object runs a thread of its own; callbacks (on_change)
// run on it, one at a time. All members may be called from any thread. The
// ManagedClient must outlive them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coord/base/status.h"
#include "coord/client-lib/managed_client.h"
#include "coord/registry/service_instance.h"

namespace coord {

class ServiceRegistry {
 public:
  static Result<std::unique_ptr<ServiceRegistry>> start(ManagedClient& client,
                                                        std::string base_path = "/services");
  // Unregisters every instance (when the session still lives) and joins.
  ~ServiceRegistry();
  ServiceRegistry(const ServiceRegistry&) = delete;
  ServiceRegistry& operator=(const ServiceRegistry&) = delete;

  // Creates the instance's node (BadArguments for an empty name or id, or
  // one with '/'). Registering an id again updates it. Blocking.
  Status register_instance(ServiceInstance instance);
  // Changes a registered instance's data in place. NoNode if not registered.
  Status update(ServiceInstance instance);
  Status unregister(const std::string& name, const std::string& id);
  // The path of an instance's node.
  std::string path_of(const std::string& name, const std::string& id) const;
  // Times the registry registered its instances again after an expiry.
  std::uint64_t reregistrations() const;

 private:
  struct State;
  explicit ServiceRegistry(std::shared_ptr<State> s);
  std::shared_ptr<State> state_;
};

enum class Selection : std::uint8_t { RoundRobin, Random, Sticky };

struct DiscoveryOptions {
  std::string base_path = "/services";
  std::string name;  // the service
  // Use a persistent recursive watch when the server has them.
  bool persistent_watch = true;
  // Called on the discovery's thread after the list changed.
  std::function<void(const std::vector<ServiceInstance>&)> on_change;
};

class ServiceDiscovery {
 public:
  static Result<std::unique_ptr<ServiceDiscovery>> start(ManagedClient& client,
                                                         DiscoveryOptions options);
  ~ServiceDiscovery();
  ServiceDiscovery(const ServiceDiscovery&) = delete;
  ServiceDiscovery& operator=(const ServiceDiscovery&) = delete;

  // The cached instances, ordered by id. Never blocks on the network.
  std::vector<ServiceInstance> instances() const;
  // True while the cache may be behind: never loaded, or the connection is
  // lost (the last known list is still returned).
  bool stale() const;
  // Ok once the first full read is done; OperationTimeout otherwise.
  Status await_loaded(std::chrono::milliseconds timeout) const;
  // One instance by the policy; nullopt when there is none. Sticky keeps
  // returning the same instance while it stays registered.
  std::optional<ServiceInstance> select(Selection policy);
  // Whether the persistent recursive watch is in use (false: one-shot).
  bool uses_persistent_watch() const;
  // Children whose data could not be read as an instance.
  std::uint64_t unreadable() const;

 private:
  struct State;
  explicit ServiceDiscovery(std::shared_ptr<State> s);
  std::shared_ptr<State> state_;
};

}  // namespace coord
