// coordd's server: the ZooKeeper client front (Asio, TCP), the replica,
// and the disk storage under it.
//
// Threads and ownership:
//   loop thread      one event loop with two sides. The network side
//                    accepts client connections and owns their sockets and
//                    the peers'; a client connection hands the raw bytes
//                    it reads to the core side and writes back what the
//                    core gives it. The core side owns the Replica: applies
//                    inputs one at a time, ticks the Raft clock, forks the
//                    snapshot writer. A read is taken, answered and written
//                    in one turn of the loop, with no wake-up between
//                    threads. At most one chunk of a connection is with the
//                    core at a time, and reading pauses while its session
//                    has too many requests waiting.
//   HTTP thread      the HTTP port: API, metrics, console, event streams.
//                    A request is posted to the loop, which answers it;
//                    an event stream's messages are posted back one each.
//   storage thread   makes each Ready durable and compacts the log
//                    (CoreHost::persist), posting each result back.
//
// What a client can cost is bounded: connections (client and HTTP) by caps
// under the descriptor limit, a connection's life by a handshake deadline
// and a silence limit, unread output per connection and over all of them
// (the connections holding the most are cut off). Running out of
// descriptors anyway sheds a connection, logs, and pauses accepting.
// No lock guards the tree: only the loop thread touches it.
//
// Thread safety: create() and run() from one thread; stop() from any.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "coord/base/status.h"
#include "coord/core/replica.h"
#include "coord/io/peer_transport.h"
#include "coord/io/tls.h"

namespace coord::io {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t client_port = 2181;  // 0 = any free port
  std::uint16_t http_port = 8080;    // 0 = any free port
  std::string data_dir = "./coord-data";
  std::size_t log_map_bytes = limits::log_map_bytes_default;
  std::uint64_t log_disk_free_bytes_min = limits::log_disk_free_bytes_min_default;
  // An empty log next to snapshot files is rebuilt from the newest valid
  // snapshot instead of refused (DiskReplicaStorage::open).
  bool recover_from_snapshot = false;
  std::size_t connections_per_address_max = limits::connections_per_address_max_default;
  // Client connections at once; lowered to fit the descriptor limit
  // (RLIMIT_NOFILE, raised to its hard limit at start) with HTTP's share.
  std::size_t connections_max = limits::connections_per_server_max;
  std::size_t http_connections_max = limits::http_connections_max_default;
  // A new connection's whole handshake frame must arrive within this.
  std::int64_t handshake_ms_max = limits::connection_handshake_ms_max_default;
  std::int64_t http_idle_ms_max = limits::http_idle_ms_max_default;
  // Host names HTTP requests may name besides the built-in ones and the
  // membership's, comma-separated; "*" turns the Host check off.
  std::string http_allowed_hosts;
  // Origins (scheme://host[:port]) a state-changing request may come from
  // besides the server's own, comma-separated; "*": any.
  std::string http_allowed_origins;
  // Unread output of all client connections together.
  std::size_t unread_output_bytes_max = limits::connections_outbound_bytes_total_max_default;
  core::ReplicaConfig replica;
  // The secure client port and HTTPS, with the files they use. With a
  // secure port, client_port 0 means no plain port (not any free port).
  TlsOptions tls;

  // The cluster. Empty: a single node. Otherwise the servers with their
  // peer addresses, this server (replica.id) included. A founding server
  // takes them as the founding membership (every founding server must be
  // given the same list: its log starts with them); a joining server
  // takes them as the members to accept links from until the log it
  // receives names the members (see `join`).
  PeerSet peers;
  // Where each server of `peers` takes ZooKeeper clients, for those whose
  // --peers entry names it; shown in /zookeeper/config and the admin API.
  std::map<NodeId, PeerAddress> client_addresses;
  // This server joins a running cluster: a new data directory starts with
  // an empty log and no configuration, and the server waits until a
  // member adds it (reconfig, or the admin API) and the leader sends it
  // the log. A data directory that holds a log already is opened as it is.
  bool join = false;
  // Where this server listens for its peers; 0 = the port its own entry
  // in `peers` names. Bound on `peer_bind` (default: `bind`).
  std::uint16_t peer_port = 0;
  std::string peer_bind;
  // Peers must agree on both; see peer_transport.h. An empty secret
  // leaves the peers unauthenticated (a warning says so at start).
  std::string cluster_id = "coord";
  std::string cluster_secret;
#if COORD_FAULT_SEAMS
  // Test builds only: a file holding a wall-clock offset in ms, read every
  // tick (missing or unreadable: 0). Only the wall clock moves.
  std::string fault_clock_file;
#endif
};

// The --peers list: peer addresses and the client addresses given.
struct PeerList {
  PeerSet peers;
  std::map<NodeId, PeerAddress> clients;
};

// "1=host:peerport,2=host:peerport,..." (IPv6 hosts in brackets), each
// entry optionally followed by its client address as in ZooKeeper's server
// spec: "1=host:peerport;clientport" (client host 0.0.0.0) or
// "1=host:peerport;clienthost:clientport". BadArguments naming the entry
// at fault.
Result<PeerList> parse_peers(std::string_view list);

// The founding membership a --peers list stands for: every server a
// participant with its peer address, election port 0 and its client
// address when given, in ZooKeeper's spelling (IPv6 in its long form).
// BadArguments for an address /zookeeper/config could not show.
Result<core::Membership> founding_membership(const PeerSet& peers,
                                             const std::map<NodeId, PeerAddress>& clients);

// The peers to keep links with once the replica knows `membership`: each
// member's peer address, or its address in `configured` (--peers) when its
// entry carries none; `configured` itself while the membership is empty.
// Also each member of `in_force`, the configuration in force (the latest
// in the log, applied or not), that `configured` gives an address: a
// restarted server applies its log again only once a leader has told it
// the commit index, and until then its applied membership may lack a
// member its log added, which must still reach it.
PeerSet peers_of(const core::Membership& membership, const PeerSet& configured,
                 const consensus::ConfState* in_force = nullptr);

class Server {
 public:
  // Opens the data directory, restores the replica and binds the ports.
  // Errors (a port in use, a damaged log) are reported, nothing is served.
  static Result<std::unique_ptr<Server>> create(const ServerOptions& options);
  ~Server();

  // Serves until stop() or SIGINT/SIGTERM, then stops gracefully: stops
  // accepting and reading, lets the core answer everything it read (writes
  // persisted and applied), writes those replies out, then returns; after
  // shutdown_drain_ms_max it closes what clients left unread.
  void run();
  void stop();

  std::uint16_t client_port() const;
  std::uint16_t http_port() const;
  // 0 when there is none.
  std::uint16_t secure_client_port() const;
  // 0 for a single node.
  std::uint16_t peer_port() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coord::io
