// coordd's HTTP API, as a pure function from a request to a reply, run by
// the core (it reads the replica's state):
//
//   GET /healthz                 200 "ok" while the process serves
//   GET /readyz                  200 when a leader is known, everything
//                                committed is applied and storage takes
//                                writes; 503 with the reason otherwise
//   GET /metrics                 Prometheus text
//   GET /v1/znodes/<path>        data and stat as JSON; `?children` adds the
//                                children's names, sorted, those starting
//                                with `prefix=P`, from `offset=N`, at most
//                                `limit=M`, and children_total (matches
//                                before paging); with `&detail` objects of
//                                name and a few Stat fields; `?acl` the ACL
//                                (digest hashes masked without ADMIN, as
//                                getACL)
//   POST /v1/znodes/<path>       create: {"data" | "data_base64", "mode"
//                                (persistent, persistent_sequential,
//                                ephemeral, ephemeral_sequential, container,
//                                ttl, ttl_sequential), "ttl_ms", "acl"};
//                                201 with the path created and its stat
//   PUT /v1/znodes/<path>        the body becomes the node's data: setData,
//                                or create (persistent, open ACL) when it is
//                                missing; `?version=N` sets only version N
//   PUT /v1/znodes/<path>?acl    setACL {"acl": [{"perms", "scheme", "id"}]},
//                                `version=N` compared with the aversion
//   DELETE /v1/znodes/<path>     delete; `?version=N` as above; with
//                                `?recursive` the whole subtree (at most
//                                rest_delete_nodes_max nodes, READ needed
//                                to list it), deepest first in multis that
//                                each check the top's version first
//   GET /v1/sessions             global sessions (paged: offset, limit):
//                                id, timeout, held here, the server last
//                                heard through (the leader knows it for
//                                all), ephemerals the caller may READ
//   GET /v1/metrics/history      the last ten minutes, a sample a second
//                                (metrics_history.h)
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
//                                Once the caller passed the admin check
//                                (below), both run as the super user on
//                                a session of their own and answer 200 with
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
//   GET /ui/, /ui/<file>         the web console, compiled in
//                                (console_assets.h), with its security
//                                headers; 404 for a file it does not have,
//                                405 for another method. `/` and `/ui`
//                                redirect (302) to /ui/.
//   POST /v1/auth/login          {} (application/json), with or without
//                                Basic credentials: a login token,
//                                {"token", "user", "identities", "super",
//                                "idle_timeout_ms"} (login_tokens.h)
//   POST /v1/auth/logout         with Authorization: Bearer: forgets it, {}
//   GET /v1/events               a WebSocket streaming the tree's changes
//                                as JSON (event_stream.h); without an
//                                upgrade 426
//
// Before routing, every request passes the guards (http_guard.h): a Host
// the server does not answer to is 421; a malformed Authorization header
// 400; a change (PUT, POST, DELETE) with a foreign Origin 403, a POST
// that is not application/json or a PUT or DELETE with a type a page may
// send across sites (text/plain, form, multipart) without X-Coord-Request
// 415. Each refusal is counted in coord_http_auth_failures_total.
//
// Identities: every request acts with ip:<socket address> (forwarding
// headers are never read) and, with HTTP Basic credentials, the digest
// identity `addauth digest user:password` gives, and super when that is
// the super digest. `Authorization: Bearer <token>` of a login acts with
// the credentials the login was made with; an unknown or expired token is
// 401 SessionExpired (code -112). Reads are checked against the node's ACL as getData
// is (403 NoAuth without READ). The admin API's changes (every non-GET on
// /v1/cluster/...) need super or ADMIN on /zookeeper/config for those
// identities: 401 with WWW-Authenticate when no credentials came, 403
// when those given fall short. Its GETs, /healthz, /readyz and /metrics
// are open. /readyz adds a warning line when credentials would cross the
// network in clear.
//
// Writes go through the replica's own client pipeline (RestClients), so
// they are log entries like any other, on a session per caller address
// and credentials. A PUT whose request would not fit in one client frame
// (frame_bytes_max: data of exactly 1 MiB does not) is answered 413; a
// write that cannot get a session in time 503.
// Errors are JSON objects {"error": "<ZooKeeper error name>", "code": n,
// "message": "..."} with a fitting HTTP status.
// Thread safety: the loop thread only (it reads the replica).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coord/base/clock.h"
#include "coord/core/replica.h"
#include "coord/io/http_guard.h"
#include "coord/io/login_tokens.h"
#include "coord/io/peer_transport.h"
#include "coord/io/raft_storage.h"
#include "coord/io/rest_client.h"

namespace coord::io {

struct HttpRequest {
  std::string method;
  std::string target;  // path and query, as sent
  std::string body;
  std::string peer_ip;  // the socket's; forwarding headers are never read
  // Headers the guards read (http_guard.h); empty when not sent.
  std::string host;
  std::string origin;
  std::string content_type;
  std::string authorization;
  bool has_authorization = false;
  // X-Coord-Request was sent: a browser sends no custom header across
  // sites without a preflight, which this server never grants.
  bool custom_header = false;
  // Came over TLS (the Origin's scheme is then https).
  bool secure = false;
};

struct HttpReply {
  HttpReply() = default;
  HttpReply(int status_, std::string content_type_, std::string body_)
      : status(status_), content_type(std::move(content_type_)), body(std::move(body_)) {}

  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Sent as WWW-Authenticate when not empty (401).
  std::string www_authenticate;
  // More headers, sent as given (the console's security headers, Location).
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent as Upgrade when not empty (426).
  std::string upgrade;
};

// What the network side counts, read by /metrics; atomic, so that it may
// be read from any thread.
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

// Requests refused by the guards or for want of permission, by reason
// (coord_http_auth_failures_total{reason=...}).
struct HttpAuthFailures {
  std::uint64_t unauthenticated = 0;  // 401: the admin API without credentials
  std::uint64_t forbidden = 0;        // 403: NoAuth with the identities given
  std::uint64_t malformed = 0;        // 400: an Authorization header that does not parse
  std::uint64_t host = 0;             // 421: a Host this server does not answer to
  std::uint64_t origin = 0;           // 403: a foreign Origin on a state change
  std::uint64_t content_type = 0;     // 415: a body type a page could send cross-site
};

class MetricsHistory;

struct HttpMetrics {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  // Event streams (event_stream.h): open now, events handed to them, and
  // streams closed because their consumer did not keep up.
  std::uint64_t event_streams = 0;
  std::uint64_t events_sent = 0;
  std::uint64_t event_streams_cut_slow = 0;
  HttpAuthFailures auth_failures;
  const NetCounters* net = nullptr;
  // GET /v1/metrics/history; null: answered 404.
  const MetricsHistory* history = nullptr;
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
  // Host, Origin and content-type checks (--http-allowed-hosts, ...).
  HttpGuardConfig guard;
  // The login tokens and the clock their idle expiry reads; null: the
  // login endpoints answer 503 and Bearer tokens are unknown.
  LoginTokens* logins = nullptr;
  const Clock* clock = nullptr;
};

// Answers `req`; `done` runs once, possibly later (after a write applied).
// `self_client_address` is where this server takes ZooKeeper clients.
void handle_http(const HttpRequest& req, const core::Replica& replica,
                 const DiskReplicaStorage& storage, HttpMetrics& metrics, RestClients& rest,
                 const std::string& self_client_address, const HttpCluster& cluster, HttpDone done);

// The checks of a WebSocket upgrade to GET /v1/events, the same as every
// request's: Host, then Origin (a page on another site can open a
// WebSocket to any server), then the credentials (Basic, Bearer, or
// `token`, the login token from the URL). nullopt with `caller` set to the
// identities the stream acts with, or the refusal to answer.
std::optional<HttpReply> admit_event_stream(const HttpRequest& req, std::string_view token,
                                            const core::Replica& replica, HttpMetrics& metrics,
                                            const HttpCluster& cluster, znode::Caller& caller);

// An error as the API answers it: {"error": "<name>", "code": n,
// "message": "..."} with HTTP status `status`.
HttpReply error_reply(int status, ErrorCode code, std::string message);

// The JSON of a Stat as the API shows it ("stat" of GET /v1/znodes).
std::string stat_json_text(const Stat& stat);

}  // namespace coord::io
