// coordd's HTTP API, as a pure function from a request to a reply, run on
// the core thread (it reads the replica's state):
//
//   GET /healthz                 200 "ok" while the process serves
//   GET /readyz                  200 when a leader is known, everything
//                                committed is applied and storage takes
//                                writes; 503 with the reason otherwise
//   GET /metrics                 Prometheus text
//   GET /v1/znodes/<path>        data and stat as JSON; `?children` adds the
//                                children's names
//   PUT /v1/znodes/<path>        the body becomes the node's data: setData,
//                                or create (persistent, open ACL) when it is
//                                missing; `?version=N` sets only version N
//   DELETE /v1/znodes/<path>     delete; `?version=N` as above
//   GET /v1/cluster              this server's id, the leader, term, commit
//                                and applied index, whether it is
//   GET /v1/cluster/status       read-only, and the members: id, role
//                                (leader, follower, observer as Raft sees
//                                it), member_role (participant or
//                                observer), peer and client address (from
//                                the membership), voter, match index and
//                                lag (as the leader knows them), link and
//                                round trip (from this server)
//   GET /v1/cluster/members      {"members": [...]}, the same members
//   POST /v1/cluster/members     {"id", "peer_address", "client_address",
//                                "role"} (core::member_from_json): adds the
//                                server (reconfig, joining its line)
//   DELETE /v1/cluster/members/N removes it (reconfig, leaving N)
//                                Both run as the super user on a session
//                                of their own and answer 200 with
//                                {"version": "<hex>", "members": [...]},
//                                the membership the reconfig led to; its
//                                errors map to ReconfigDisabled 501,
//                                BadArguments 400, NoAuth 403, BadVersion,
//                                ReconfigInProgress and NewConfigNoQuorum
//                                409, ConnectionLoss 503.
//   POST /v1/cluster/transfer-leader  {"id"}: on the leader, hands
//                                leadership to that voter (202; watch
//                                /v1/cluster for the outcome); elsewhere
//                                409 naming the leader
//
// Writes go through the replica's own client pipeline (RestClients), so
// they are log entries like any other; every request, read or write, acts
// with the caller's identity ip:<caller address>. A PUT whose request would
// not fit in one client frame (frame_bytes_max: data of exactly 1 MiB does
// not) is answered 413; a write that cannot get a session in time 503.
// Errors are JSON objects {"error": "<ZooKeeper error name>", "code": n,
// "message": "..."} with a fitting HTTP status.
// Thread safety: the core thread only (it reads the replica).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "coord/core/replica.h"
#include "coord/io/peer_transport.h"
#include "coord/io/raft_storage.h"
#include "coord/io/rest_client.h"

namespace coord::io {

struct HttpRequest {
  std::string method;
  std::string target;  // path and query, as sent
  std::string body;
  std::string peer_ip;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// What the network thread counts, read by /metrics on the core thread.
struct NetCounters {
  std::atomic<std::uint64_t> client_connections{0};   // open now
  std::atomic<std::uint64_t> http_connections{0};     // open now
  std::atomic<std::uint64_t> unread_output_bytes{0};  // queued, all connections
  std::atomic<std::uint64_t> refused_at_cap{0};       // client and HTTP
  std::atomic<std::uint64_t> accept_failures{0};      // out of descriptors or memory
  std::atomic<std::uint64_t> closed_unread{0};        // cut off for unread output
  std::atomic<std::uint64_t> closed_handshake{0};     // no handshake in time
  std::atomic<std::uint64_t> closed_silent{0};        // no frame for too long
  std::atomic<std::uint64_t> tls_handshakes{0};       // finished, secure client port
  std::atomic<std::uint64_t> tls_handshake_failures{0};
};

struct HttpMetrics {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  const NetCounters* net = nullptr;
};

using HttpDone = std::function<void(HttpReply)>;

// What the HTTP API knows of the cluster beyond the replica: where the
// other members are, the links to them, and the one change it can ask for.
// Empty for a single node.
struct HttpCluster {
  PeerSet peers;  // every member's peer address, this server's included
  const PeerTransport* transport = nullptr;
  std::function<Status(NodeId)> transfer_leadership;
  // Super-user sessions for the reconfigs of the admin API (never the
  // callers' own REST sessions); null: those requests are answered 503.
  RestClients* admin = nullptr;
};

// Answers `req`; `done` runs once, possibly later (after a write applied).
// `self_client_address` is where this server takes ZooKeeper clients.
void handle_http(const HttpRequest& req, const core::Replica& replica,
                 const DiskReplicaStorage& storage, HttpMetrics& metrics, RestClients& rest,
                 const std::string& self_client_address, const HttpCluster& cluster, HttpDone done);

}  // namespace coord::io
