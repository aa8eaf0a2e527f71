// libcoord: coord's C++ client for the ZooKeeper protocol. It works against
// coordd and against Apache ZooKeeper 3.8 alike.
//
// A Client runs on two threads. The I/O thread owns the socket: it connects to
// the servers of the connect string in shuffled order, performs the
// handshake, opens or resumes the session, pings at a third of the
// negotiated timeout, matches replies to requests, re-registers watches and
// authentication after a reconnect and enforces timeouts. The event thread
// runs everything user code sees: completion callbacks, watchers and state
// changes, one at a time, in the order the I/O thread produced them (a
// watch event that the server sent before a reply is delivered before that
// reply's callback). User code never runs on the I/O thread, so a slow
// callback delays other callbacks but not the network; if callbacks fall
// behind by limits::client_event_queue_max, the I/O thread stops reading
// until they catch up. Requests made in callbacks are written by the event
// thread itself, in one write per connection, once the callbacks it has at
// hand have run. By default each Client starts its own two threads;
// Clients given one ClientRuntime share its two.
//
// Every operation exists in three forms, all built on one op struct from
// coord::ops:
//   client.submit(ops::GetData{"/a"}, [](Result<DataResult> r) {...});  // callback
//   std::future<Result<DataResult>> f = client.submit(ops::GetData{"/a"});
//   Result<DataResult> r = client.run(ops::GetData{"/a"});              // blocking
// plus short blocking helpers (get_data, create, ...). Many requests may be
// outstanding; they are sent in submission order and answered in that order.
// A blocking call made from a callback (the event thread) would wait for
// itself: it fails at once with ApiError instead.
//
// Errors: ConnectionLoss (the connection broke after the request was sent;
// it may or may not have been applied), OperationTimeout (no answer within
// the request's timeout), SessionExpired, AuthFailed and Closing (the client
// is in that final state), Throttled (more than pending_requests_max
// outstanding), BadArguments (invalid path), and the server's codes. The
// message of a ConnectionLoss or final-state error names the server and the
// cause; last_error() and on_state_change report the same reasons.
//
// Thread safety: every public member function may be called from any thread
// concurrently. Do not destroy a Client from one of its own callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/status.h"
#include "coord/base/zk_types.h"
#include "coord/client-lib/watch_table.h"
#include "coord/protocol/records.h"

namespace coord {

enum class SessionState : std::uint8_t {
  Connecting,    // no session yet
  Connected,     // session open on a live connection
  Disconnected,  // connection lost; the session may live on, reconnecting
  Expired,       // final: the session is gone (told by a server, or no server
                 // reached within the session timeout)
  Closed,        // final: close() was called
  AuthFailed,    // final: a server rejected our credentials
};
std::string_view session_state_name(SessionState s);

template <typename T>
using Callback = std::function<void(Result<T>)>;

// TLS to the servers' secure client port. The server's certificate chain
// must verify against `ca_file` (empty: the system's CAs). With
// `verify_server_name` the certificate must also name the host as the
// connect string gives it (a DNS name, or an IP address in its
// subjectAltName), as ZooKeeper's client checks by default; turn it off
// for servers whose certificates do not list the addresses they are
// reached by (the chain is still verified). A client certificate
// (`cert_file` and `key_file`, PEM) gives the session the identity
// x509:<its subject> on servers that verify client certificates.
struct ClientTls {
  bool enabled = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool verify_server_name = true;
};

// The I/O thread and the event thread that Clients run on. Clients given
// the same runtime share them: a process that holds many sessions (a load
// generator, a proxy, a test harness) needs two threads instead of two per
// session, and one readiness wait serves all their sockets. The callbacks
// of all these Clients run one at a time on the one event thread, each
// Client's in its own order, so a slow callback delays every Client of the
// runtime; a blocking call or close() from any of these callbacks fails with
// ApiError, as from a Client's own, and none of these Clients may be
// destroyed from them. Each Client holds its runtime: the threads stop when
// the last holder lets go, which must not be one of the runtime's callbacks.
class ClientRuntime {
 public:
  static std::shared_ptr<ClientRuntime> start();
  ~ClientRuntime();
  ClientRuntime(const ClientRuntime&) = delete;
  ClientRuntime& operator=(const ClientRuntime&) = delete;

  // True inside a callback of one of the runtime's Clients.
  bool on_event_thread() const;

  class Core;  // the threads; libcoord's own
  Core& core() const { return *core_; }

 private:
  explicit ClientRuntime(std::unique_ptr<Core> core);
  std::unique_ptr<Core> core_;
};

struct ClientOptions {
  // "host:port,host:port[/chroot]".
  std::string servers;
  // Off by default: plain TCP, as to any ZooKeeper client port.
  ClientTls tls;
  std::chrono::milliseconds session_timeout{10'000};
  // Default per-request timeout; each request may override it.
  std::chrono::milliseconds request_timeout{10'000};
  // Per connection attempt (resolve + TCP + handshake); 0 = session
  // timeout divided by the number of servers, or by 3 when there are fewer,
  // at least 500 ms.
  std::chrono::milliseconds connect_timeout{0};
  // Resume an existing session instead of opening one.
  SessionId session_id{0};
  std::string session_password;
  std::size_t pending_requests_max = limits::client_pending_requests_max;
  std::size_t event_queue_max = limits::client_event_queue_max;
  // Seed for shuffling the server list; 0 = a random seed.
  std::uint64_t seed = 0;
  // Called on the event thread at every state change.
  std::function<void(SessionState)> on_state;
  // The same, with the reason: Ok for Connecting and Connected; for
  // Disconnected the ConnectionLoss that broke the connection (its message
  // names the server and the cause); for a final state the Status that
  // every later call fails with. May be set together with on_state.
  std::function<void(SessionState, const Status& reason)> on_state_change;
  // The threads to run on; none: the Client starts its own.
  std::shared_ptr<ClientRuntime> runtime;
};

struct CreateResult {
  std::string path;  // with the sequence suffix, relative to the chroot
  Stat stat;
};
struct DataResult {
  Data data{};
  Stat stat;
};
struct ChildrenResult {
  std::vector<std::string> children;
  Stat stat;
};
struct AclResult {
  AclList acl;
  Stat stat;
};
// One op's outcome in multi / multiRead (fields as protocol::MultiResult;
// paths relative to the chroot).
using OpResult = protocol::MultiResult;

// Collects the ops of one atomic multi.
class MultiBuilder {
 public:
  MultiBuilder& create(std::string path, Data data, CreateMode mode = CreateMode::Persistent,
                       AclList acl = open_acl_unsafe());
  MultiBuilder& create_ttl(std::string path, Data data, std::int64_t ttl_ms,
                           CreateMode mode = CreateMode::PersistentWithTtl,
                           AclList acl = open_acl_unsafe());
  MultiBuilder& remove(std::string path, std::int32_t version = -1);
  MultiBuilder& set_data(std::string path, Data data, std::int32_t version = -1);
  MultiBuilder& check(std::string path, std::int32_t version);
  const std::vector<protocol::MultiOp>& ops() const { return ops_; }

 private:
  std::vector<protocol::MultiOp> ops_;
};

// The operations. Each names its result type `Value`. A non-empty watcher
// asks the server to set a watch; it is registered only when the server
// confirms it.
namespace ops {
struct Create {
  std::string path;
  Data data{};
  CreateMode mode = CreateMode::Persistent;
  AclList acl = open_acl_unsafe();
  std::int64_t ttl_ms = 0;  // TTL modes only
  using Value = CreateResult;
};
struct Delete {
  std::string path;
  std::int32_t version = -1;
  using Value = std::monostate;
};
// nullopt when the node does not exist (with a watcher: an exist watch,
// fired by NodeCreated).
struct Exists {
  std::string path;
  Watcher watcher{};
  using Value = std::optional<Stat>;
};
struct GetData {
  std::string path;
  Watcher watcher{};
  using Value = DataResult;
};
struct SetData {
  std::string path;
  Data data{};
  std::int32_t version = -1;
  using Value = Stat;
};
struct GetAcl {
  std::string path;
  using Value = AclResult;
};
struct SetAcl {
  std::string path;
  AclList acl;
  std::int32_t version = -1;
  using Value = Stat;
};
struct GetChildren {
  std::string path;
  Watcher watcher{};
  using Value = std::vector<std::string>;
};
struct GetChildren2 {
  std::string path;
  Watcher watcher{};
  using Value = ChildrenResult;
};
struct Sync {
  std::string path;
  using Value = std::string;
};
// Fails as a whole with the failing op's code (message names its index).
struct Multi {
  MultiBuilder ops;
  using Value = std::vector<OpResult>;
};
// getData / getChildren of several paths at once; each result carries its
// own error code (type Error) and the call itself does not fail for them.
struct MultiRead {
  std::vector<std::string> get_data;
  std::vector<std::string> get_children;
  using Value = std::vector<OpResult>;
};
// Remembered and replayed after every reconnect. A rejection makes the
// client AuthFailed.
struct AddAuth {
  std::string scheme;  // "digest"
  std::string auth;    // "user:password"
  using Value = std::monostate;
};
struct WhoAmI {
  using Value = std::vector<protocol::ClientInfo>;
};
struct GetEphemerals {
  std::string prefix = "/";
  using Value = std::vector<std::string>;
};
struct GetAllChildrenNumber {
  std::string path;
  using Value = std::int32_t;
};
struct AddWatch {
  std::string path;
  AddWatchMode mode = AddWatchMode::Persistent;
  Watcher watcher{};
  using Value = std::monostate;
};
// Removes this client's watchers of `type` on path; each receives a
// DataWatchRemoved / ChildWatchRemoved / PersistentWatchRemoved event.
struct RemoveWatches {
  std::string path;
  WatcherType type = WatcherType::Any;
  using Value = std::monostate;
};
struct CheckWatches {
  std::string path;
  WatcherType type = WatcherType::Any;
  using Value = std::monostate;
};
}  // namespace ops

namespace client_detail {
struct Call;
struct CallDeleter {
  void operator()(Call* c) const;
};
using CallPtr = std::unique_ptr<Call, CallDeleter>;
CallPtr make_call(ops::Create&& op, Callback<CreateResult>&& cb);
CallPtr make_call(ops::Delete&& op, Callback<std::monostate>&& cb);
CallPtr make_call(ops::Exists&& op, Callback<std::optional<Stat>>&& cb);
CallPtr make_call(ops::GetData&& op, Callback<DataResult>&& cb);
CallPtr make_call(ops::SetData&& op, Callback<Stat>&& cb);
CallPtr make_call(ops::GetAcl&& op, Callback<AclResult>&& cb);
CallPtr make_call(ops::SetAcl&& op, Callback<Stat>&& cb);
CallPtr make_call(ops::GetChildren&& op, Callback<std::vector<std::string>>&& cb);
CallPtr make_call(ops::GetChildren2&& op, Callback<ChildrenResult>&& cb);
CallPtr make_call(ops::Sync&& op, Callback<std::string>&& cb);
CallPtr make_call(ops::Multi&& op, Callback<std::vector<OpResult>>&& cb);
CallPtr make_call(ops::MultiRead&& op, Callback<std::vector<OpResult>>&& cb);
CallPtr make_call(ops::AddAuth&& op, Callback<std::monostate>&& cb);
CallPtr make_call(ops::WhoAmI&& op, Callback<std::vector<protocol::ClientInfo>>&& cb);
CallPtr make_call(ops::GetEphemerals&& op, Callback<std::vector<std::string>>&& cb);
CallPtr make_call(ops::GetAllChildrenNumber&& op, Callback<std::int32_t>&& cb);
CallPtr make_call(ops::AddWatch&& op, Callback<std::monostate>&& cb);
CallPtr make_call(ops::RemoveWatches&& op, Callback<std::monostate>&& cb);
CallPtr make_call(ops::CheckWatches&& op, Callback<std::monostate>&& cb);
}  // namespace client_detail

class Client {
 public:
  // Validates the options, starts the two threads (unless options.runtime
  // gives them) and begins connecting; does not wait for the connection
  // (see wait_connected).
  static Result<std::unique_ptr<Client>> start(ClientOptions options);
  // Closes the session (bounded by the request timeout); every outstanding
  // callback has run and the Client's own threads are joined when it
  // returns.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Ok once Connected; the final state's code (SessionExpired, AuthFailed,
  // Closing) or ConnectionLoss when `timeout` passes first.
  Status wait_connected(std::chrono::milliseconds timeout);
  // Sends closeSession and waits for the reply (at most `timeout`); the
  // server deletes the session's ephemerals. Later calls fail with Closing.
  Status close(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

  SessionState state() const;
  SessionId session_id() const;
  std::string session_password() const;
  std::chrono::milliseconds negotiated_timeout() const;
  Zxid last_zxid_seen() const;
  // "host:port" of the server currently connected, "" when none.
  std::string connected_server() const;
  // Why the client last lost a connection, failed a connection attempt or
  // entered a final state: ConnectionLoss, SessionExpired, AuthFailed or
  // Closing, with a message naming the server and the cause ("127.0.0.1:2181:
  // connect: Connection refused", "...: no reply within 2/3 of the session
  // timeout"). Ok until the first such event; a successful handshake does
  // not clear it.
  Status last_error() const;

  // timeout 0 = options.request_timeout.
  template <typename Op>
  void submit(Op op, Callback<typename Op::Value> cb,
              std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    submit_call(client_detail::make_call(std::move(op), std::move(cb)), timeout);
  }
  template <typename Op>
  std::future<Result<typename Op::Value>> submit(
      Op op, std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    using V = typename Op::Value;
    auto promise = std::make_shared<std::promise<Result<V>>>();
    auto future = promise->get_future();
    submit(
        std::move(op), [promise](Result<V> r) { promise->set_value(std::move(r)); }, timeout);
    return future;
  }
  template <typename Op>
  Result<typename Op::Value> run(Op op,
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    if (on_event_thread()) {
      return Status(ErrorCode::ApiError, "a blocking call from a callback would deadlock");
    }
    return submit(std::move(op), timeout).get();
  }

  // Blocking helpers.
  Result<std::string> create(std::string path, Data data, CreateMode mode = CreateMode::Persistent,
                             AclList acl = open_acl_unsafe());
  Status remove(std::string path, std::int32_t version = -1);
  Result<std::optional<Stat>> exists(std::string path, Watcher watcher = {});
  Result<DataResult> get_data(std::string path, Watcher watcher = {});
  Result<Stat> set_data(std::string path, Data data, std::int32_t version = -1);
  Result<std::vector<std::string>> get_children(std::string path, Watcher watcher = {});
  Result<std::vector<OpResult>> multi(MultiBuilder ops);
  Status add_auth(std::string scheme, std::string auth);

  // Closes the current connection as if the network broke and waits
  // `pause` before reconnecting. For tests of reconnect behaviour.
  void drop_connection_for_testing(std::chrono::milliseconds pause);

 private:
  class Impl;
  Client(std::shared_ptr<ClientRuntime> runtime, std::shared_ptr<Impl> impl);
  void submit_call(client_detail::CallPtr call, std::chrono::milliseconds timeout);
  bool on_event_thread() const;

  // Released after the Impl is gone: its last handler may run on these
  // threads.
  std::shared_ptr<ClientRuntime> runtime_;
  // The Client's hold on its Impl. Callbacks still running while the
  // Client is destroyed may use the Client: impl_ stays valid until the
  // last of them, which holds the Impl too, has run.
  std::shared_ptr<Impl> hold_;
  Impl* const impl_;
};

}  // namespace coord
