// coord::sidecar::Sidecar: everything coord-sidecar does, as one object.
//
// - Health: the check runs every `interval` (start to start) on a thread of
//   its own; HealthMachine turns results into up and down.
// - Registration: a second thread makes the registry follow the health:
//   registered (coord::ServiceRegistry, Curator's JSON) while up, removed
//   when down. It alone blocks on the servers, so checks keep their beat
//   while the servers are slow or gone; what failed is retried. The
//   registry itself registers again after a session expiry.
// - Discovery: one coord::ServiceDiscovery per watched service; the watch
//   loop publishes their lists (and whether each is stale) as soon as one
//   changes, and at least every 200 ms for staleness.
// - Rendering: the watch loop renders the templates after a change, per
//   RenderSchedule (debounce, then reload with retries), writes changed
//   files atomically and runs the reload command.
// - HTTP (coord::agent::HttpServer): GET /v1/services, /v1/services/NAME,
//   /healthz, /metrics.
//
// Every decision is logged as one line (component "sidecar").
// shutdown() deregisters first (bounded by limits::sidecar_deregister_ms_max:
// past it the session is closed, which removes the node as well), then
// stops everything. Thread safety: every member may be called from any
// thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "coord/base/status.h"
#include "coord/sidecar/config.h"

namespace coord::sidecar {

class Sidecar {
 public:
  // Loads the templates (BadArguments when one does not parse), connects
  // (without waiting: the sidecar works and retries while the servers are
  // away) and starts serving HTTP.
  static Result<std::unique_ptr<Sidecar>> start(Config config);
  ~Sidecar();  // shutdown()
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  // Deregisters, then stops every thread. Idempotent.
  void shutdown();

  std::uint16_t http_port() const;

 private:
  struct State;
  explicit Sidecar(std::shared_ptr<State> s);
  std::shared_ptr<State> state_;
};

}  // namespace coord::sidecar
