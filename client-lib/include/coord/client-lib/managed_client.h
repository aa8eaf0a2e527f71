// ManagedClient: a Client that outlives its sessions, for recipes.
//
// A Client's session ends for good at Expired; recipes (leader election,
// locks, the service registry) must then go on with a new session. A
// ManagedClient owns the current Client, opens a new session (a new Client,
// same options) when the current one expires, and tells every listener
// what happened to the connection, in the terms recipes reason in:
//
//   Connected    the first connection of a session (generation g)
//   Suspended    the connection is lost; the session may live on or may be
//                expiring on the servers: nothing held by it is certain
//   Reconnected  the same session is back; what it held still holds
//   Lost         the session expired: its ephemerals and watches are gone.
//                A new session (generation g+1) is being opened.
//   Closed       the client was closed or rejected (AuthFailed); final
//
// Each session has a generation number, counted from 1; a recipe that
// remembers the generation its node was created in can tell whether that
// node can still exist.
//
// Threading: listeners run on the event thread of the Client whose state
// changed (a Lost listener on the expired one's), never concurrently with
// another event of the same Client. They must not block and must not call
// blocking Client calls. An internal thread replaces expired Clients and
// destroys retired ones once nobody holds them, so no Client is ever
// destroyed from one of its own callbacks. Every member function may be
// called from any thread. The ManagedClient must outlive every recipe that
// uses it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "coord/base/status.h"
#include "coord/client-lib/client.h"

namespace coord {

enum class ConnectionEvent : std::uint8_t { Connected, Suspended, Reconnected, Lost, Closed };
std::string_view connection_event_name(ConnectionEvent e);

class ManagedClient {
 public:
  using Listener = std::function<void(ConnectionEvent, std::uint64_t generation)>;
  using ListenerId = std::uint64_t;

  // Validates the options (as Client::start) and opens the first session.
  // options.on_state, if set, is called too, for every Client in turn.
  // options.session_id / session_password resume a session only for the
  // first generation.
  static Result<std::unique_ptr<ManagedClient>> start(ClientOptions options);
  // Closes the current session (its ephemerals go at once) and joins.
  ~ManagedClient();
  ManagedClient(const ManagedClient&) = delete;
  ManagedClient& operator=(const ManagedClient&) = delete;

  // The current session's Client. Hold the pointer only for a call or a
  // few: a retired Client is destroyed once the last holder lets go.
  std::shared_ptr<Client> client() const;
  // The current session's generation (1 for the first).
  std::uint64_t generation() const;
  // True when the current Client is Connected.
  bool connected() const;
  // Ok once the current session is connected; ConnectionLoss on timeout;
  // Closing / AuthFailed when closed.
  Status wait_connected(std::chrono::milliseconds timeout) const;

  // A listener is called for every event after add_listener returns. After
  // remove_listener returns it is not called again, except by an event
  // already being delivered on another thread.
  ListenerId add_listener(Listener listener);
  void remove_listener(ListenerId id);

  // Closes the current session; no new one is opened. Later events: Closed.
  Status close(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

 private:
  struct Shared;
  explicit ManagedClient(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

}  // namespace coord
