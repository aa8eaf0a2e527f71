#include "coord/io/http_api.h"

#include "coord/io/metrics_history.h"

#include "coord/core/membership.h"
#include "coord/io/console_assets.h"
#include "coord/io/login_tokens.h"
#include "coord/protocol/op_table.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <variant>

namespace coord::io {

using nlohmann::json;

namespace {

json stat_json(const Stat& s) {
  return json{{"czxid", s.czxid},
              {"mzxid", s.mzxid},
              {"ctime", s.ctime},
              {"mtime", s.mtime},
              {"version", s.version},
              {"cversion", s.cversion},
              {"aversion", s.aversion},
              {"ephemeralOwner", s.ephemeral_owner},
              {"dataLength", s.data_length},
              {"numChildren", s.num_children},
              {"pzxid", s.pzxid}};
}

}  // namespace

HttpReply error_reply(int status, ErrorCode code, std::string message) {
  HttpReply r;
  r.status = status;
  r.body = json{{"error", std::string(error_name(code))},
                {"code", to_int(code)},
                {"message", std::move(message)}}
               .dump() +
           "\n";
  return r;
}

namespace {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    if (c < 0x80) {
      n = 0;
    } else if ((c >> 5) == 6) {
      n = 1;
    } else if ((c >> 4) == 14) {
      n = 2;
    } else if ((c >> 3) == 30) {
      n = 3;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n + 1;
  }
  return true;
}

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

int http_status_of(ErrorCode code) {
  switch (code) {
    case ErrorCode::NoNode:
      return 404;
    case ErrorCode::NoAuth:
      return 403;
    case ErrorCode::NodeExists:
    case ErrorCode::BadVersion:
    case ErrorCode::NotEmpty:
      return 409;
    case ErrorCode::BadArguments:
    case ErrorCode::InvalidAcl:
      return 400;
    case ErrorCode::NotReadOnly:
    case ErrorCode::ConnectionLoss:
      return 503;
    default:
      return 500;
  }
}

// The identities a request acts with: ip:<caller address> and, with Basic
// credentials, the digest identity they name, as `addauth digest` adds it
// (the super user's too when it is the super digest). Forwarding headers
// (X-Forwarded-For, X-Real-IP) never count: the address is the socket's.
znode::Caller caller_of(const HttpRequest& req, const std::optional<BasicCredentials>& creds,
                        const core::Replica& replica) {
  znode::Caller caller{SessionId(0), {Id{"ip", req.peer_ip}}};
  if (creds) {
    const std::string digest = core::digest_of(creds->auth());
    caller.identities.push_back(Id{"digest", digest});
    const std::string& super_digest = replica.config().super_digest;
    if (!super_digest.empty() && digest == super_digest)
      caller.identities.push_back(Id{"super", ""});
  }
  return caller;
}

// The token of an "Authorization: Bearer <token>" header (the scheme in
// any case, spaces around); nullopt for another scheme, "" for none given.
std::optional<std::string> bearer_token(std::string_view v) {
  auto trim = [](std::string_view t) {
    while (!t.empty() && t.front() == ' ')
      t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ')
      t.remove_suffix(1);
    return t;
  };
  v = trim(v);
  constexpr std::string_view bearer = "bearer";
  if (v.size() < bearer.size()) return std::nullopt;
  for (std::size_t i = 0; i < bearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != bearer[i]) return std::nullopt;
  }
  if (v.size() > bearer.size() && v[bearer.size()] != ' ') return std::nullopt;
  return std::string(trim(v.substr(bearer.size())));
}

// The credentials of a request: none, HTTP Basic, or those of the login a
// Bearer token (or `token`, from the URL of an event stream) names, so
// that it acts as the login's request would. The refusal when the header
// is malformed (400) or the token unknown or expired (401).
std::variant<std::optional<BasicCredentials>, HttpReply> credentials_of(
    const HttpRequest& req, std::string_view token_param, HttpMetrics& metrics,
    const HttpCluster& cluster) {
  std::string token(token_param);
  if (req.has_authorization) {
    if (auto bearer = bearer_token(req.authorization)) {
      if (bearer->empty()) {
        ++metrics.errors;
        ++metrics.auth_failures.malformed;
        return error_reply(400, ErrorCode::BadArguments, "Authorization: Bearer without a token");
      }
      token = std::move(*bearer);
    } else {
      auto parsed = parse_basic_authorization(req.authorization);
      if (!parsed.ok()) {
        ++metrics.errors;
        ++metrics.auth_failures.malformed;
        return error_reply(400, ErrorCode::BadArguments,
                           "Authorization: " + std::string(parsed.status().message()));
      }
      return std::optional<BasicCredentials>(std::move(parsed).value());
    }
  }
  if (token.empty()) return std::optional<BasicCredentials>();
  const Login* login = cluster.logins != nullptr && cluster.clock != nullptr
                           ? cluster.logins->find(token, cluster.clock->steady_ms())
                           : nullptr;
  if (login == nullptr) {
    ++metrics.errors;
    ++metrics.auth_failures.unauthenticated;
    return error_reply(401, ErrorCode::SessionExpired,
                       "unknown or expired login token: log in again (POST /v1/auth/login)");
  }
  return login->credentials;
}

json identities_json(const znode::Caller& caller) {
  json ids = json::array();
  for (const Id& id : caller.identities)
    ids.push_back(json{{"scheme", id.scheme}, {"id", id.id}});
  return ids;
}

// POST /v1/auth/login and /v1/auth/logout (the guards of a change passed).
void handle_auth(const HttpRequest& req, std::string_view path, const znode::Caller& caller,
                 const std::optional<BasicCredentials>& creds, HttpMetrics& metrics,
                 const HttpCluster& cluster, const HttpDone& done) {
  if (req.method != "POST") {
    ++metrics.errors;
    return done(error_reply(405, ErrorCode::BadArguments, "use POST"));
  }
  if (cluster.logins == nullptr || cluster.clock == nullptr) {
    return done(error_reply(503, ErrorCode::ConnectionLoss, "logins are not available"));
  }
  const TimeMs now = cluster.clock->steady_ms();
  if (path == "/v1/auth/logout") {
    // Reaching here with a Bearer token means it was known (and is now
    // renewed); anything else has nothing to log out of.
    const auto token = req.has_authorization ? bearer_token(req.authorization) : std::nullopt;
    if (!token || !cluster.logins->remove(*token)) {
      ++metrics.errors;
      return done(
          error_reply(400, ErrorCode::BadArguments, "logout needs Authorization: Bearer <token>"));
    }
    return done(HttpReply{200, "application/json", "{}\n"});
  }
  if (!req.body.empty()) {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      ++metrics.errors;
      return done(error_reply(400, ErrorCode::BadArguments, "the body must be a JSON object"));
    }
  }
  std::string token = random_login_token();
  if (token.empty()) {
    ++metrics.errors;
    return done(error_reply(503, ErrorCode::SystemError, "no random token could be drawn"));
  }
  cluster.logins->add(token, creds, now);
  json out{{"token", token},
           {"user", creds ? json(creds->user) : json(nullptr)},
           {"identities", identities_json(caller)},
           {"super", caller.is_super()},
           {"idle_timeout_ms", cluster.logins->idle_ms()}};
  done(HttpReply{200, "application/json", out.dump() + "\n"});
}

// A refusal for want of permission, counted.
HttpReply no_auth_reply(HttpMetrics& metrics, std::string message) {
  ++metrics.auth_failures.forbidden;
  return error_reply(403, ErrorCode::NoAuth, std::move(message));
}

HttpReply metrics_text(const core::Replica& replica, const DiskReplicaStorage& storage,
                       const HttpMetrics& metrics, const HttpCluster& cluster) {
  const core::ReplicaStats& s = replica.stats();
  const auto raft = replica.raft_status();
  std::ostringstream os;
  auto gauge = [&](std::string_view name, std::string_view help, auto value) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n"
       << name << ' ' << value << '\n';
  };
  auto counter = [&](std::string_view name, std::string_view help, auto value) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
       << name << ' ' << value << '\n';
  };
  gauge("coord_znodes", "Znodes in the tree, built-in ones included.", replica.tree().node_count());
  gauge("coord_ephemerals", "Ephemeral znodes.", replica.tree().ephemeral_count());
  gauge("coord_watches", "Watches registered on this server.", replica.tree().watch_count());
  gauge("coord_sessions", "Live sessions.", replica.session_count());
  gauge("coord_connections", "Open client connections.", replica.connection_count());
  gauge("coord_applied_zxid", "Zxid of the last applied entry.", replica.applied_zxid().value());
  gauge("coord_raft_term", "Current Raft term.", raft.term.value());
  gauge("coord_raft_commit_index", "Raft commit index.", raft.commit.value());
  gauge("coord_log_bytes", "Bytes used by the LMDB log.", storage.log_bytes());
  gauge("coord_snapshot_bytes", "Bytes of snapshot files.", storage.snapshot_files_bytes());
  gauge("coord_storage_failed", "1 while storage refuses writes.",
        replica.storage_failed() ? 1 : 0);
  gauge("coord_read_only", "1 while the server serves reads only (ZooKeeper's read-only mode).",
        replica.read_only() ? 1 : 0);
  gauge("coord_local_sessions", "Sessions of read-only clients, held by this server only.",
        replica.local_session_count());
  counter("coord_storage_write_failures_total", "Log writes that failed, each retry counted.",
          s.writes_failed_storage);
  counter("coord_read_only_entered_total", "Times the server entered read-only mode.",
          s.read_only_entered);
  gauge("coord_data_bytes", "Approximate bytes of data and names.",
        replica.tree().approximate_data_bytes());
  counter("coord_packets_received_total", "Client frames received.", s.packets_received);
  counter("coord_packets_sent_total", "Client frames sent.", s.packets_sent);
  counter("coord_entries_applied_total", "Log entries applied.", s.requests_applied);
  counter("coord_http_requests_total", "HTTP requests served.", metrics.requests);
  gauge("coord_event_streams", "Event streams (GET /v1/events) open.", metrics.event_streams);
  counter("coord_events_sent_total", "Events handed to event streams, replays included.",
          metrics.events_sent);
  counter("coord_event_streams_cut_slow_total",
          "Event streams closed (1008) because their consumer did not keep up.",
          metrics.event_streams_cut_slow);
  {
    const HttpAuthFailures& f = metrics.auth_failures;
    os << "# HELP coord_http_auth_failures_total HTTP requests refused for their identity or "
          "origin: unauthenticated 401, forbidden and origin 403, malformed 400, host 421, "
          "content_type 415.\n# TYPE coord_http_auth_failures_total counter\n";
    const std::pair<std::string_view, std::uint64_t> reasons[] = {
        {"unauthenticated", f.unauthenticated},
        {"forbidden", f.forbidden},
        {"malformed", f.malformed},
        {"host", f.host},
        {"origin", f.origin},
        {"content_type", f.content_type}};
    for (const auto& [reason, n] : reasons)
      os << "coord_http_auth_failures_total{reason=\"" << reason << "\"} " << n << '\n';
  }
  gauge("coord_is_leader", "1 while this server leads the cluster.",
        raft.role == consensus::Role::Leader ? 1 : 0);
  gauge("coord_leader_id", "The leader this server knows (0: none).", raft.leader.value());
  counter("coord_leader_changes_total", "Times the leader this server knew changed or was lost.",
          s.leader_changes);
  counter("coord_elections_won_total", "Times this server became the leader.", s.elections_won);
  counter("coord_requests_forwarded_total",
          "Writes and session creations this server handed to the leader.", s.requests_forwarded);
  counter("coord_requests_outcome_unknown_total",
          "Connections closed because a request's outcome became unknown (leader change, "
          "broken link, stall).",
          s.requests_outcome_unknown);
  counter("coord_session_relays_total", "Session liveness relays sent to the leader.",
          s.session_relays_sent);
  if (raft.role == consensus::Role::Leader && !raft.progress.empty()) {
    os << "# HELP coord_follower_lag_entries Committed entries a member has not stored yet.\n"
          "# TYPE coord_follower_lag_entries gauge\n";
    for (const auto& p : raft.progress) {
      if (p.id == raft.id) continue;
      const std::uint64_t lag =
          raft.commit.value() > p.match.value() ? raft.commit.value() - p.match.value() : 0;
      os << "coord_follower_lag_entries{peer=\"" << p.id.value() << "\"} " << lag << '\n';
    }
  }
  if (cluster.transport != nullptr) {
    const PeerTransportStats links = cluster.transport->stats();
    os << "# HELP coord_peer_connected 1 while the link to a peer is up.\n"
          "# TYPE coord_peer_connected gauge\n";
    for (const PeerStats& l : links.peers)
      os << "coord_peer_connected{peer=\"" << l.id.value() << "\"} " << (l.connected ? 1 : 0)
         << '\n';
    os << "# HELP coord_peer_rtt_seconds Last ping round trip to a peer.\n"
          "# TYPE coord_peer_rtt_seconds gauge\n";
    for (const PeerStats& l : links.peers) {
      if (l.rtt_us >= 0)
        os << "coord_peer_rtt_seconds{peer=\"" << l.id.value() << "\"} " << l.rtt_us / 1e6 << '\n';
    }
    os << "# HELP coord_peer_messages_dropped_total Messages for a peer dropped (no link, queue "
          "full).\n# TYPE coord_peer_messages_dropped_total counter\n";
    for (const PeerStats& l : links.peers)
      os << "coord_peer_messages_dropped_total{peer=\"" << l.id.value() << "\"} "
         << l.messages_dropped << '\n';
    counter("coord_peer_handshakes_refused_total",
            "Peer connections refused at the handshake (stranger, wrong cluster or secret).",
            links.handshakes_refused);
  }
  if (const NetCounters* n = metrics.net) {
    gauge("coord_client_connections", "Client connections open.", n->client_connections.load());
    gauge("coord_http_connections", "HTTP connections open.", n->http_connections.load());
    gauge("coord_unread_output_bytes", "Replies queued for clients that have not read them.",
          n->unread_output_bytes.load());
    counter("coord_connections_refused_total",
            "Connections closed at accept: the connection cap was reached.",
            n->refused_at_cap.load());
    counter("coord_accept_failures_total", "Accepts that failed for want of descriptors or memory.",
            n->accept_failures.load());
    counter("coord_connections_cut_unread_total",
            "Connections cut off because the unread output of all connections was over budget.",
            n->closed_unread.load());
    counter("coord_connections_closed_handshake_total",
            "Connections closed for not completing the handshake in time.",
            n->closed_handshake.load());
    counter("coord_connections_closed_silent_total",
            "Connections closed after sending no request for longer than any session lives.",
            n->closed_silent.load());
    counter("coord_tls_handshakes_total", "TLS handshakes completed on the secure client port.",
            n->tls_handshakes.load());
    counter("coord_tls_handshake_failures_total",
            "TLS handshakes on the secure client port that failed or did not finish in time.",
            n->tls_handshake_failures.load());
  }
  os << "# HELP coord_replies_total Client replies by operation and result.\n"
        "# TYPE coord_replies_total counter\n";
  for (const auto& [key, n] : s.replies) {
    const auto op = static_cast<protocol::OpCode>(key.first);
    const auto name = protocol::op_name(op);
    const auto err = error_from_int(key.second);
    os << "coord_replies_total{op=\"" << (name.empty() ? "unknown" : name) << "\",result=\""
       << (err ? error_name(*err) : std::string_view("Unknown")) << "\"} " << n << '\n';
  }
  // Bucket bounds in seconds, as Prometheus expects.
  static constexpr std::uint64_t bounds_us[] = {
      100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};
  os << "# HELP coord_request_duration_seconds From a request's arrival to its reply.\n"
        "# TYPE coord_request_duration_seconds histogram\n";
  for (const auto& [op_int, h] : s.latency_us_by_op) {
    const auto name = protocol::op_name(static_cast<protocol::OpCode>(op_int));
    const std::string label = "op=\"" + std::string(name.empty() ? "unknown" : name) + "\"";
    for (std::uint64_t b : bounds_us) {
      os << "coord_request_duration_seconds_bucket{" << label << ",le=\"" << b / 1e6 << "\"} "
         << h.count_at_or_below(b) << '\n';
    }
    os << "coord_request_duration_seconds_bucket{" << label << ",le=\"+Inf\"} " << h.count() << '\n'
       << "coord_request_duration_seconds_sum{" << label << "} " << h.sum() / 1e6 << '\n'
       << "coord_request_duration_seconds_count{" << label << "} " << h.count() << '\n';
  }
  const Histogram& fsync = storage.fsync_latency_us();
  os << "# HELP coord_log_write_duration_seconds One synced write of the log (group commit).\n"
        "# TYPE coord_log_write_duration_seconds histogram\n";
  for (std::uint64_t b : bounds_us) {
    os << "coord_log_write_duration_seconds_bucket{le=\"" << b / 1e6 << "\"} "
       << fsync.count_at_or_below(b) << '\n';
  }
  os << "coord_log_write_duration_seconds_bucket{le=\"+Inf\"} " << fsync.count() << '\n'
     << "coord_log_write_duration_seconds_sum " << fsync.sum() / 1e6 << '\n'
     << "coord_log_write_duration_seconds_count " << fsync.count() << '\n';
  HttpReply r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = os.str();
  return r;
}

// The `version=N` query parameter, -1 when absent; nullopt when malformed.
std::optional<std::int32_t> version_param(std::string_view query) {
  constexpr std::string_view key = "version=";
  for (std::size_t start = 0; start <= query.size();) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view part = query.substr(start, end - start);
    if (part.starts_with(key)) {
      const std::string_view digits = part.substr(key.size());
      std::int64_t v = 0;
      const auto [end_ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (ec != std::errc() || end_ptr != digits.data() + digits.size()) return std::nullopt;
      if (v < -1 || v > std::numeric_limits<std::int32_t>::max()) return std::nullopt;
      return static_cast<std::int32_t>(v);
    }
    start = end + 1;
  }
  return -1;
}

// Whether `query` holds the bare flag `name` (as in `?children&acl`).
bool query_flag(std::string_view query, std::string_view name) {
  for (std::size_t start = 0; start <= query.size();) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    if (query.substr(start, end - start) == name) return true;
    start = end + 1;
  }
  return false;
}

// The hosts of the membership's peer and client addresses, and of the
// configured peers: names this server may be reached by.
std::vector<std::string> member_hosts(const core::Replica& replica, const HttpCluster& cluster) {
  std::vector<std::string> hosts;
  for (const core::Member& m : replica.membership().members) {
    if (!m.peer.host.empty()) hosts.push_back(m.peer.host);
    if (m.client) hosts.push_back(m.client->host);
  }
  for (const auto& [id, address] : cluster.peers)
    hosts.push_back(address.host);
  return hosts;
}

HttpReply stat_reply(int status, const std::string& path, const Stat& stat) {
  return HttpReply{status, "application/json",
                   json{{"path", path}, {"stat", stat_json(stat)}}.dump() + "\n"};
}

// Answers a request refused before it reached the replica.
HttpReply refused_reply(const Status& st) {
  if (st.code() == ErrorCode::BadArguments) {
    return error_reply(413, ErrorCode::BadArguments, std::string(st.message()));
  }
  return error_reply(503, st.code(), std::string(st.message()));
}

// A znode request's error; NoAuth is counted.
HttpReply znode_error(HttpMetrics& metrics, ErrorCode err, const std::string& path) {
  if (err == ErrorCode::NoAuth) ++metrics.auth_failures.forbidden;
  ++metrics.errors;
  return error_reply(http_status_of(err), err, path);
}

void put_znode(RestClients& rest, HttpMetrics& metrics, RestCaller who, std::string path,
               std::string data, std::int32_t version, int attempts_left, HttpDone done) {
  namespace pr = coord::protocol;
  auto on_set = [&rest, &metrics, who, path, data, version, attempts_left, done](
                    ErrorCode err, const pr::ResponseBody& body) {
    if (err == ErrorCode::Ok) {
      return done(stat_reply(200, path, std::get<pr::SetDataResponse>(body).stat));
    }
    if (err != ErrorCode::NoNode || version != -1 || attempts_left == 0) {
      return done(znode_error(metrics, err, path));
    }
    auto on_create = [&rest, &metrics, who, path, data, attempts_left, done](
                         ErrorCode cerr, const pr::ResponseBody& cbody) {
      if (cerr == ErrorCode::Ok) {
        const auto& r = std::get<pr::Create2Response>(cbody);
        return done(stat_reply(201, r.path, r.stat));
      }
      if (cerr == ErrorCode::NodeExists) {
        // Created meanwhile by someone else: set it after all.
        return put_znode(rest, metrics, who, path, data, -1, attempts_left - 1, done);
      }
      done(znode_error(metrics, cerr, path));
    };
    Status st = rest.call(who, pr::OpCode::Create2,
                          pr::CreateRequest{path, data, open_acl_unsafe(), CreateMode::Persistent},
                          on_create);
    if (!st.ok()) done(refused_reply(st));
  };
  Status st = rest.call(who, pr::OpCode::SetData, pr::SetDataRequest{path, data, version}, on_set);
  if (!st.ok()) done(refused_reply(st));
}

// One member of the Raft group as the admin API shows it: its role from
// this server's view, its progress as the leader knows it (null elsewhere),
// and the link from this server to it.
json member_status_json(const consensus::RaftStatus& st, const consensus::ConfState& conf,
                        const core::Membership& membership, NodeId id,
                        const consensus::ProgressInfo* progress, const HttpCluster& cluster,
                        const PeerTransportStats& links, const std::string& self_client_address) {
  const bool self = id == st.id;
  const bool voter = conf.is_voter(id);
  std::string role = voter ? "follower" : "observer";
  if (self && st.role != consensus::Role::Leader && st.role != consensus::Role::Follower) {
    role = std::string(consensus::to_string(st.role));
  }
  if (id == st.leader) role = "leader";
  json m{{"id", id.value()}, {"voter", voter}, {"role", role}, {"self", self}};
  // What the membership records (the addresses given when the server was
  // founded or added), else what this server knows.
  const core::Member* member = membership.find(id);
  m["member_role"] = member != nullptr ? std::string(core::to_string(member->role))
                     : voter           ? std::string("participant")
                                       : std::string("observer");
  if (member != nullptr && member->client) {
    m["client_address"] = core::to_string(*member->client);
  } else {
    m["client_address"] = self ? self_client_address : std::string();
  }
  if (member != nullptr && !member->peer.host.empty()) {
    m["peer_address"] = core::to_string(member->peer);
  } else if (auto p = cluster.peers.find(id); p != cluster.peers.end()) {
    m["peer_address"] = p->second.host + ":" + std::to_string(p->second.port);
  } else {
    m["peer_address"] = "";
  }
  if (progress != nullptr) {
    const LogIndex match = self ? st.last_index : progress->match;
    m["match_index"] = match.value();
    m["lag"] = st.commit.value() > match.value() ? st.commit.value() - match.value() : 0;
    m["replication"] = std::string(consensus::to_string(progress->state));
  } else {
    m["match_index"] = nullptr;
    m["lag"] = nullptr;
  }
  for (const PeerStats& l : links.peers) {
    if (l.id != id) continue;
    m["connected"] = l.connected;
    m["rtt_us"] = l.rtt_us;
  }
  return m;
}

json members_json(const core::Replica& replica, const consensus::RaftStatus& st,
                  const HttpCluster& cluster, const std::string& self_client_address) {
  const consensus::ConfState& conf = replica.conf_state();
  const PeerTransportStats links =
      cluster.transport ? cluster.transport->stats() : PeerTransportStats{};
  json members = json::array();
  for (NodeId id : conf.members()) {
    const consensus::ProgressInfo* progress = nullptr;
    for (const auto& p : st.progress)
      if (p.id == id) progress = &p;
    members.push_back(member_status_json(st, conf, replica.membership(), id, progress, cluster,
                                         links, self_client_address));
  }
  return members;
}

// Parses {"id": n, ...} from an admin request body; nullopt (with `why`)
// when the body is not such an object.
std::optional<json> admin_body(const std::string& body, std::string& why) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    why = "the body must be a JSON object";
    return std::nullopt;
  }
  if (!j.contains("id") || !j["id"].is_number_integer() || j["id"].get<std::int64_t>() <= 0) {
    why = "\"id\" must be a positive integer";
    return std::nullopt;
  }
  return j;
}

int reconfig_status_of(ErrorCode code) {
  switch (code) {
    case ErrorCode::ReconfigDisabled:
      return 501;
    case ErrorCode::BadArguments:
      return 400;
    case ErrorCode::NoAuth:
      return 403;
    case ErrorCode::BadVersion:
    case ErrorCode::ReconfigInProgress:
    case ErrorCode::NewConfigNoQuorum:
      return 409;
    case ErrorCode::ConnectionLoss:
    case ErrorCode::NotReadOnly:
      return 503;
    default:
      return 500;
  }
}

std::string reconfig_error_message(ErrorCode code) {
  switch (code) {
    case ErrorCode::ReconfigDisabled:
      return "membership does not change at run time on a single server: a cluster is started "
             "with --peers";
    case ErrorCode::BadArguments:
      return "the new membership is refused (a joiner without a client address or using another "
             "member's address, no participant left, or too many members)";
    case ErrorCode::NoAuth:
      return "the admin session may not change /zookeeper/config";
    case ErrorCode::BadVersion:
      return "the membership changed meanwhile";
    case ErrorCode::ReconfigInProgress:
      return "another membership change is under way; ask again once it is done";
    case ErrorCode::NewConfigNoQuorum:
      return "too few servers of the new membership are connected and caught up";
    case ErrorCode::ConnectionLoss:
      return "the outcome is unknown (the leader changed or the change took too long): read "
             "/zookeeper/config";
    default:
      return "reconfig failed";
  }
}

// Runs `request` as the super user on an admin session and answers with
// the membership it led to, read from the reply's /zookeeper/config data.
void reconfig(const HttpCluster& cluster, const std::string& ip, protocol::ReconfigRequest request,
              const HttpDone& done) {
  namespace pr = coord::protocol;
  if (cluster.admin == nullptr) {
    return done(error_reply(503, ErrorCode::ConnectionLoss, "no admin session available"));
  }
  auto on_reply = [done](ErrorCode err, const pr::ResponseBody& body) {
    if (err != ErrorCode::Ok) {
      return done(error_reply(reconfig_status_of(err), err, reconfig_error_message(err)));
    }
    const auto* data = std::get_if<pr::GetDataResponse>(&body);
    auto membership = data != nullptr && data->data
                          ? core::Membership::parse_config(*data->data)
                          : Result<core::Membership>(Status(ErrorCode::MarshallingError,
                                                            "the reply carries no configuration"));
    if (!membership.ok()) {
      return done(error_reply(500, membership.code(),
                              "reconfig applied, but its reply does not read: " +
                                  std::string(membership.status().message())));
    }
    json members = json::array();
    for (const core::Member& m : membership->members)
      members.push_back(json::parse(core::member_json(m)));
    char version[32];
    std::snprintf(version, sizeof version, "%llx",
                  static_cast<unsigned long long>(membership->version));
    json out{{"version", std::string(version)}, {"members", std::move(members)}};
    done(HttpReply{200, "application/json", out.dump() + "\n"});
  };
  Status st = cluster.admin->call(ip, pr::OpCode::Reconfig, request, on_reply);
  if (!st.ok()) done(refused_reply(st));
}

// Whether the caller may change the server: the super user, or ADMIN on
// /zookeeper/config for its identities (the ACL ZooKeeper guards reconfig
// with; world may only read it by default). A refusal is 401 asking for
// Basic credentials when none came, 403 when those given fall short.
std::optional<HttpReply> admin_refusal(const znode::Caller& caller, bool has_credentials,
                                       const core::Replica& replica, HttpMetrics& metrics) {
  if (caller.is_super() || replica.tree().allows("/zookeeper/config", caller, perm::admin)) {
    return std::nullopt;
  }
  if (!has_credentials) {
    ++metrics.auth_failures.unauthenticated;
    HttpReply r = error_reply(401, ErrorCode::NoAuth,
                              "the admin API needs the super user or ADMIN on /zookeeper/config: "
                              "send HTTP Basic credentials");
    r.www_authenticate = "Basic realm=\"coord\"";
    return r;
  }
  return no_auth_reply(metrics,
                       "these credentials have neither the super user nor ADMIN on "
                       "/zookeeper/config");
}

HttpReply with_console_headers(HttpReply r) {
  for (const auto& [name, value] : console_security_headers)
    r.headers.emplace_back(std::string(name), std::string(value));
  return r;
}

// `/`, `/ui` and everything under /ui/: the console's embedded files. Only
// names the build embedded are served (no file system is read), so no path
// can reach anything else.
HttpReply console_reply(const HttpRequest& req, std::string_view path) {
  if (path == "/" || path == "/ui") {
    HttpReply r{302, "text/plain", "the console is at /ui/\n"};
    r.headers.emplace_back("Location", "/ui/");
    return with_console_headers(std::move(r));
  }
  if (req.method != "GET") {
    return with_console_headers(error_reply(405, ErrorCode::BadArguments, "use GET"));
  }
  const ConsoleAsset* asset = find_console_asset(path.substr(std::string_view("/ui/").size()));
  if (asset == nullptr) {
    return with_console_headers(
        error_reply(404, ErrorCode::BadArguments, "no such console file: " + std::string(path)));
  }
  return with_console_headers(
      HttpReply{200, std::string(asset->content_type), std::string(asset->body)});
}

void handle_cluster(const HttpRequest& req, std::string_view path, const core::Replica& replica,
                    const std::string& self_client_address, const HttpCluster& cluster,
                    const znode::Caller& caller, bool has_credentials, HttpMetrics& metrics,
                    const HttpDone& done) {
  const consensus::RaftStatus st = replica.raft_status();
  if (path == "/v1/cluster" || path == "/v1/cluster/status") {
    if (req.method != "GET") return done(error_reply(405, ErrorCode::BadArguments, "use GET"));
    const auto& ro = replica.read_only();
    json out{{"node_id", st.id.value()},
             {"leader_id", st.leader.value()},
             {"role", std::string(consensus::to_string(st.role))},
             {"term", st.term.value()},
             {"commit_index", st.commit.value()},
             {"applied_index", st.applied.value()},
             {"read_only", ro ? json(std::string(core::to_string(ro->reason))) : json(nullptr)},
             {"members", members_json(replica, st, cluster, self_client_address)}};
    return done(HttpReply{200, "application/json", out.dump() + "\n"});
  }
  const bool members_path = path == "/v1/cluster/members";
  if (members_path && req.method == "GET") {
    json out{{"members", members_json(replica, st, cluster, self_client_address)}};
    return done(HttpReply{200, "application/json", out.dump() + "\n"});
  }
  // Everything else that is not a GET changes the server.
  if (req.method != "GET") {
    if (auto refused = admin_refusal(caller, has_credentials, replica, metrics)) {
      return done(std::move(*refused));
    }
  }
  std::string why;
  if (members_path) {
    if (req.method != "POST")
      return done(error_reply(405, ErrorCode::BadArguments, "use GET or POST"));
    auto member = core::member_from_json(req.body);
    if (!member.ok()) {
      return done(
          error_reply(400, ErrorCode::BadArguments, std::string(member.status().message())));
    }
    protocol::ReconfigRequest r;
    r.joining_servers = member->line();
    return reconfig(cluster, req.peer_ip, std::move(r), done);
  }
  constexpr std::string_view member_prefix = "/v1/cluster/members/";
  if (path.starts_with(member_prefix)) {
    if (req.method != "DELETE")
      return done(error_reply(405, ErrorCode::BadArguments, "use DELETE"));
    std::int64_t id = 0;
    const std::string_view digits = path.substr(member_prefix.size());
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc() || end != digits.data() + digits.size() || id <= 0) {
      return done(
          error_reply(400, ErrorCode::BadArguments, "member id must be a positive integer"));
    }
    if (!replica.conf_state().is_member(NodeId(id))) {
      return done(error_reply(404, ErrorCode::BadArguments, "no member " + std::to_string(id)));
    }
    if (replica.conf_state().size() == 1) {
      return done(error_reply(409, ErrorCode::BadArguments, "cannot remove the only member"));
    }
    protocol::ReconfigRequest r;
    r.leaving_servers = std::to_string(id);
    return reconfig(cluster, req.peer_ip, std::move(r), done);
  }
  if (path == "/v1/cluster/transfer-leader") {
    if (req.method != "POST") return done(error_reply(405, ErrorCode::BadArguments, "use POST"));
    auto body = admin_body(req.body, why);
    if (!body) return done(error_reply(400, ErrorCode::BadArguments, why));
    const NodeId target((*body)["id"].get<std::int64_t>());
    if (!replica.conf_state().is_voter(target)) {
      return done(
          error_reply(404, ErrorCode::BadArguments, "no voter " + std::to_string(target.value())));
    }
    if (st.leader == target) {
      json out{{"leader_id", target.value()}, {"message", "already the leader"}};
      return done(HttpReply{200, "application/json", out.dump() + "\n"});
    }
    if (st.leader != st.id || !cluster.transfer_leadership) {
      return done(error_reply(409, ErrorCode::InvalidState,
                              "this server does not lead; the leader is " +
                                  std::to_string(st.leader.value()) + " (0: none known)"));
    }
    const Status ts = cluster.transfer_leadership(target);
    if (!ts.ok()) return done(error_reply(409, ts.code(), ts.message()));
    json out{{"leader_id", st.id.value()},
             {"target_id", target.value()},
             {"message", "handing leadership over; GET /v1/cluster shows the outcome"}};
    return done(HttpReply{202, "application/json", out.dump() + "\n"});
  }
  done(error_reply(404, ErrorCode::BadArguments, "no such admin endpoint"));
}

// A query parameter's raw value (`key=value`); nullopt when absent.
std::optional<std::string_view> query_value(std::string_view query, std::string_view key) {
  for (std::size_t start = 0; start <= query.size();) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view part = query.substr(start, end - start);
    if (part.size() > key.size() && part.starts_with(key) && part[key.size()] == '=') {
      return part.substr(key.size() + 1);
    }
    start = end + 1;
  }
  return std::nullopt;
}

// A count parameter: `fallback` when absent, nullopt when not a
// non-negative integer.
std::optional<std::uint64_t> count_param(std::string_view query, std::string_view key,
                                         std::uint64_t fallback) {
  const auto v = query_value(query, key);
  if (!v) return fallback;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
  return n;
}

std::string child_path(std::string_view parent, std::string_view name) {
  std::string p(parent);
  if (p != "/") p += '/';
  p += name;
  return p;
}

// Adds `?children` to a node's answer: the names sorted, only those that
// start with `prefix=`, paged by `offset=` and `limit=` (every match
// without a limit), with their count before paging; `&detail` lists each
// with a few fields of its Stat. An error reply when a parameter is bad.
std::optional<HttpReply> add_children(json& out, const znode::DataTree& tree,
                                      const std::string& znode, const znode::Caller& caller,
                                      std::string_view query) {
  const auto offset = count_param(query, "offset", 0);
  const auto limit = count_param(query, "limit", std::numeric_limits<std::uint64_t>::max());
  if (!offset || !limit) {
    return error_reply(400, ErrorCode::BadArguments, "offset and limit must be integers >= 0");
  }
  std::string prefix;
  if (const auto p = query_value(query, "prefix"); p && !url_decode(*p, prefix, /*query=*/true)) {
    return error_reply(400, ErrorCode::BadArguments, "malformed escape in prefix");
  }
  auto ch = tree.get_children(znode, caller);
  if (!ch.ok()) return std::nullopt;  // the node's own answer already said why
  std::vector<std::string_view> names;
  names.reserve(ch->children.size());
  for (std::string_view n : ch->children)
    if (n.starts_with(prefix)) names.push_back(n);
  std::sort(names.begin(), names.end());
  out["children_total"] = names.size();
  const std::size_t from = std::min<std::uint64_t>(*offset, names.size());
  const std::size_t to = from + std::min<std::uint64_t>(*limit, names.size() - from);
  json list = json::array();
  const bool detail = query_flag(query, "detail");
  for (std::size_t i = from; i < to; ++i) {
    if (!detail) {
      list.push_back(std::string(names[i]));
      continue;
    }
    // exists needs no permission, as in ZooKeeper.
    json item{{"name", std::string(names[i])}};
    if (auto st = tree.exists(child_path(znode, names[i])); st.ok()) {
      item["numChildren"] = st->num_children;
      item["dataLength"] = st->data_length;
      item["ephemeralOwner"] = st->ephemeral_owner;
      item["mzxid"] = st->mzxid;
    }
    list.push_back(std::move(item));
  }
  out["children"] = std::move(list);
  return std::nullopt;
}

// Decodes standard base64 (with padding); false when malformed.
bool base64_decode(std::string_view in, std::string& out) {
  if (in.size() % 4 != 0) return false;
  out.assign(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return false;
  std::size_t size = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  for (std::size_t i = in.size(); i > 0 && in[i - 1] == '='; --i)
    --size;
  out.resize(size);
  return true;
}

// An ACL as JSON ([{"perms", "scheme", "id"}, ...]); nullopt with `why`.
std::optional<AclList> acl_from_json(const json& j, std::string& why) {
  if (!j.is_array()) {
    why = "acl must be a list of {\"perms\", \"scheme\", \"id\"}";
    return std::nullopt;
  }
  AclList acl;
  for (const json& e : j) {
    if (!e.is_object() || !e.contains("perms") || !e["perms"].is_number_integer() ||
        !e.contains("scheme") || !e["scheme"].is_string() || !e.contains("id") ||
        !e["id"].is_string()) {
      why = "each ACL entry needs integer perms and string scheme and id";
      return std::nullopt;
    }
    const auto perms = e["perms"].get<std::int64_t>();
    if (perms < 0 || perms > perm::all) {
      why = "perms must be in 0.." + std::to_string(perm::all);
      return std::nullopt;
    }
    acl.push_back(Acl{static_cast<std::int32_t>(perms),
                      Id{e["scheme"].get<std::string>(), e["id"].get<std::string>()}});
  }
  return acl;
}

std::optional<json> json_object_body(const std::string& body, std::string& why) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    why = "the body must be a JSON object";
    return std::nullopt;
  }
  return j;
}

// POST /v1/znodes/<path>: create in any mode, as the caller.
void create_znode(RestClients& rest, HttpMetrics& metrics, const RestCaller& who,
                  const std::string& znode, const std::string& body, HttpDone done) {
  namespace pr = coord::protocol;
  std::string why;
  const auto j = json_object_body(body, why);
  if (!j) return done(error_reply(400, ErrorCode::BadArguments, why));
  std::string data;
  if (j->contains("data_base64")) {
    const json& b = (*j)["data_base64"];
    if (!b.is_string() || !base64_decode(b.get<std::string>(), data)) {
      return done(error_reply(400, ErrorCode::BadArguments, "data_base64 is not base64"));
    }
  } else if (j->contains("data") && !(*j)["data"].is_null()) {
    if (!(*j)["data"].is_string()) {
      return done(error_reply(400, ErrorCode::BadArguments, "data must be a string"));
    }
    data = (*j)["data"].get<std::string>();
  }
  if (data.size() > limits::znode_data_bytes_max) {
    return done(error_reply(413, ErrorCode::BadArguments, "data over 1 MiB"));
  }
  static const std::map<std::string, CreateMode, std::less<>> modes{
      {"persistent", CreateMode::Persistent},
      {"persistent_sequential", CreateMode::PersistentSequential},
      {"ephemeral", CreateMode::Ephemeral},
      {"ephemeral_sequential", CreateMode::EphemeralSequential},
      {"container", CreateMode::Container},
      {"ttl", CreateMode::PersistentWithTtl},
      {"ttl_sequential", CreateMode::PersistentSequentialWithTtl}};
  CreateMode mode = CreateMode::Persistent;
  if (j->contains("mode")) {
    const json& m = (*j)["mode"];
    const auto it = m.is_string() ? modes.find(m.get<std::string>()) : modes.end();
    if (it == modes.end()) {
      return done(error_reply(400, ErrorCode::BadArguments,
                              "mode must be one of persistent, persistent_sequential, ephemeral, "
                              "ephemeral_sequential, container, ttl, ttl_sequential"));
    }
    mode = it->second;
  }
  AclList acl = open_acl_unsafe();
  if (j->contains("acl")) {
    auto parsed = acl_from_json((*j)["acl"], why);
    if (!parsed) return done(error_reply(400, ErrorCode::BadArguments, why));
    acl = std::move(*parsed);
  }
  const bool ttl =
      mode == CreateMode::PersistentWithTtl || mode == CreateMode::PersistentSequentialWithTtl;
  std::int64_t ttl_ms = 0;
  if (ttl) {
    if (!j->contains("ttl_ms") || !(*j)["ttl_ms"].is_number_integer() ||
        (ttl_ms = (*j)["ttl_ms"].get<std::int64_t>()) <= 0) {
      return done(error_reply(400, ErrorCode::BadArguments, "a ttl mode needs ttl_ms > 0"));
    }
  }
  auto on_created = [&metrics, znode, done](ErrorCode err, const pr::ResponseBody& reply) {
    if (err != ErrorCode::Ok) return done(znode_error(metrics, err, znode));
    const auto& r = std::get<pr::Create2Response>(reply);
    done(stat_reply(201, r.path, r.stat));
  };
  Status st;
  if (ttl) {
    st = rest.call(who, pr::OpCode::CreateTtl,
                   pr::CreateTtlRequest{znode, std::move(data), std::move(acl), mode, ttl_ms},
                   on_created);
  } else {
    st = rest.call(
        who, mode == CreateMode::Container ? pr::OpCode::CreateContainer : pr::OpCode::Create2,
        pr::CreateRequest{znode, std::move(data), std::move(acl), mode}, on_created);
  }
  if (!st.ok()) done(refused_reply(st));
}

// PUT /v1/znodes/<path>?acl: setACL, `version` compared with aversion.
void set_acl(RestClients& rest, HttpMetrics& metrics, const RestCaller& who,
             const std::string& znode, const std::string& body, std::int32_t version,
             HttpDone done) {
  namespace pr = coord::protocol;
  std::string why;
  const auto j = json_object_body(body, why);
  if (!j) return done(error_reply(400, ErrorCode::BadArguments, why));
  auto acl = acl_from_json(j->contains("acl") ? (*j)["acl"] : json(), why);
  if (!acl) return done(error_reply(400, ErrorCode::BadArguments, why));
  Status st = rest.call(who, pr::OpCode::SetAcl, pr::SetAclRequest{znode, std::move(*acl), version},
                        [&metrics, znode, done](ErrorCode err, const pr::ResponseBody& reply) {
                          if (err != ErrorCode::Ok) return done(znode_error(metrics, err, znode));
                          done(stat_reply(200, znode, std::get<pr::SetAclResponse>(reply).stat));
                        });
  if (!st.ok()) done(refused_reply(st));
}

// The subtree's paths, every node after its parent; NoAuth when a node's
// children may not be read, BadArguments past rest_delete_nodes_max.
Result<std::vector<std::string>> subtree_of(const znode::DataTree& tree, const std::string& top,
                                            const znode::Caller& caller) {
  std::vector<std::string> paths{top};
  for (std::size_t i = 0; i < paths.size(); ++i) {
    auto ch = tree.get_children(paths[i], caller);
    if (!ch.ok()) {
      if (ch.code() == ErrorCode::NoNode && i > 0) continue;  // a node without children
      return Status(ch.code(), paths[i]);
    }
    if (paths.size() + ch->children.size() > limits::rest_delete_nodes_max) {
      return Status(ErrorCode::BadArguments, "the subtree has more than " +
                                                 std::to_string(limits::rest_delete_nodes_max) +
                                                 " nodes: delete it in parts");
    }
    for (std::string_view name : ch->children)
      paths.push_back(child_path(paths[i], name));
  }
  return paths;
}

// Deletes `paths` (children before parents, the top node last) in multis,
// one after another, each checking the top's `version` first.
void delete_batches(RestClients& rest, HttpMetrics& metrics, const RestCaller& who,
                    std::shared_ptr<std::vector<std::string>> paths, std::size_t from,
                    std::int32_t version, HttpDone done) {
  namespace pr = coord::protocol;
  const std::string& top = paths->back();
  if (from == paths->size()) {
    return done(HttpReply{200, "application/json",
                          json{{"path", top}, {"deleted", paths->size()}}.dump() + "\n"});
  }
  pr::MultiRequest multi;
  // Every batch first checks the top node's version: a change to it made
  // since it was shown stops the deletion before the batch.
  if (version != -1) {
    multi.ops.push_back(pr::MultiOp{pr::OpCode::Check, pr::CheckVersionRequest{top, version}});
  }
  std::size_t bytes = 0;
  std::size_t next = from;
  while (
      next < paths->size() && multi.ops.size() < limits::rest_delete_batch_ops_max &&
      (multi.ops.empty() || bytes + (*paths)[next].size() <= limits::rest_delete_batch_bytes_max)) {
    multi.ops.push_back(pr::MultiOp{pr::OpCode::Delete, pr::DeleteRequest{(*paths)[next], -1}});
    bytes += (*paths)[next].size();
    ++next;
  }
  auto on_done = [&rest, &metrics, who, paths, next, version, done](ErrorCode err,
                                                                    const pr::ResponseBody& reply) {
    if (err == ErrorCode::Ok) {
      // A multi that failed names its failing op among the results.
      if (const auto* r = std::get_if<pr::MultiResponse>(&reply)) {
        for (const pr::MultiResult& res : r->results) {
          if (res.type == pr::OpCode::Error && res.err != ErrorCode::Ok &&
              res.err != ErrorCode::RuntimeInconsistency) {
            err = res.err;
            break;
          }
        }
      }
    }
    if (err != ErrorCode::Ok) return done(znode_error(metrics, err, paths->back()));
    delete_batches(rest, metrics, who, paths, next, version, done);
  };
  Status st = rest.call(who, pr::OpCode::Multi, multi, on_done);
  if (!st.ok()) done(refused_reply(st));
}

// GET /v1/sessions: the global sessions, paged, with the ephemerals the
// caller may read.
HttpReply sessions_reply(const core::Replica& replica, const znode::Caller& caller,
                         std::string_view query) {
  const auto offset = count_param(query, "offset", 0);
  const auto limit = count_param(query, "limit", limits::http_sessions_page_max);
  if (!offset || !limit) {
    return error_reply(400, ErrorCode::BadArguments, "offset and limit must be integers >= 0");
  }
  const std::vector<core::SessionInfo> all = replica.sessions();
  const std::size_t from = std::min<std::uint64_t>(*offset, all.size());
  const std::size_t to =
      from + std::min<std::uint64_t>({*limit, limits::http_sessions_page_max, all.size() - from});
  json list = json::array();
  char id[24];
  for (std::size_t i = from; i < to; ++i) {
    const core::SessionInfo& s = all[i];
    std::snprintf(id, sizeof id, "0x%llx",
                  static_cast<unsigned long long>(static_cast<std::uint64_t>(s.id.value())));
    json ephemerals = json::array();
    std::size_t hidden = 0;
    replica.tree().visit_ephemerals(s.id, "", [&](std::string_view p) {
      if (ephemerals.size() >= limits::http_session_ephemerals_max) return false;
      if (replica.tree().get_data(p, caller).ok()) {
        ephemerals.push_back(std::string(p));
      } else {
        ++hidden;
      }
      return true;
    });
    json item{{"id", id},
              {"timeout_ms", s.timeout_ms},
              {"here", s.here},
              {"server", s.server.value() == 0 ? json(nullptr) : json(s.server.value())},
              {"ephemerals", std::move(ephemerals)}};
    if (hidden != 0) item["ephemerals_hidden"] = hidden;
    list.push_back(std::move(item));
  }
  json out{{"sessions", std::move(list)},
           {"total", all.size()},
           {"server", replica.config().id.value()}};
  return HttpReply{200, "application/json", out.dump() + "\n"};
}

}  // namespace

std::string stat_json_text(const Stat& stat) {
  return stat_json(stat).dump();
}

std::optional<HttpReply> admit_event_stream(const HttpRequest& req, std::string_view token,
                                            const core::Replica& replica, HttpMetrics& metrics,
                                            const HttpCluster& cluster, znode::Caller& caller) {
  ++metrics.requests;
  if (!host_allowed(cluster.guard, req.host, member_hosts(replica, cluster))) {
    ++metrics.errors;
    ++metrics.auth_failures.host;
    return error_reply(
        421, ErrorCode::BadArguments,
        "Host '" + req.host + "' is not a name this server answers to (--http-allowed-hosts)");
  }
  // A page on any site may open a WebSocket here (no CORS applies to it),
  // and its browser would send this server's cookies or Basic credentials
  // along: only this server's own pages and the allowed origins may.
  if (!req.origin.empty() && !origin_allowed(cluster.guard, req.origin, req.host, req.secure)) {
    ++metrics.errors;
    ++metrics.auth_failures.origin;
    return error_reply(
        403, ErrorCode::NoAuth,
        "Origin '" + req.origin + "' is neither this server nor in --http-allowed-origins");
  }
  auto resolved = credentials_of(req, token, metrics, cluster);
  if (auto* refused = std::get_if<HttpReply>(&resolved)) return std::move(*refused);
  caller = caller_of(req, std::get<std::optional<BasicCredentials>>(resolved), replica);
  return std::nullopt;
}

void handle_http(const HttpRequest& req, const core::Replica& replica,
                 const DiskReplicaStorage& storage, HttpMetrics& metrics, RestClients& rest,
                 const std::string& self_client_address, const HttpCluster& cluster,
                 HttpDone done) {
  namespace pr = coord::protocol;
  ++metrics.requests;
  const auto q = req.target.find('?');
  const std::string_view target(req.target);
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string::npos ? "" : target.substr(q + 1);

  // The guards, before anything is read or changed. A page whose name
  // resolves to this server (DNS rebinding) still sends its own name.
  if (!host_allowed(cluster.guard, req.host, member_hosts(replica, cluster))) {
    ++metrics.errors;
    ++metrics.auth_failures.host;
    return done(error_reply(
        421, ErrorCode::BadArguments,
        "Host '" + req.host + "' is not a name this server answers to (--http-allowed-hosts)"));
  }
  auto resolved = credentials_of(req, "", metrics, cluster);
  if (auto* refused = std::get_if<HttpReply>(&resolved)) return done(std::move(*refused));
  const std::optional<BasicCredentials> creds =
      std::get<std::optional<BasicCredentials>>(std::move(resolved));
  const bool changes = req.method == "PUT" || req.method == "POST" || req.method == "DELETE";
  if (changes) {
    // A page may send a POST with one of the CORS "simple" types, or with
    // no type at all, to any site without a preflight; PUT and DELETE
    // always need one, which this server never grants.
    const bool content_refused =
        req.method == "POST" ? !is_json_content_type(req.content_type)
                             : is_cors_simple_content_type(req.content_type) && !req.custom_header;
    if (content_refused) {
      ++metrics.errors;
      ++metrics.auth_failures.content_type;
      return done(error_reply(
          415, ErrorCode::BadArguments,
          req.method == "POST"
              ? "a POST needs Content-Type: application/json"
              : "Content-Type '" + req.content_type +
                    "' is refused on a change (a browser sends it across sites); use "
                    "application/octet-stream or application/json, or send X-Coord-Request"));
    }
    if (!req.origin.empty() && !origin_allowed(cluster.guard, req.origin, req.host, req.secure)) {
      ++metrics.errors;
      ++metrics.auth_failures.origin;
      return done(error_reply(
          403, ErrorCode::NoAuth,
          "Origin '" + req.origin + "' is neither this server nor in --http-allowed-origins"));
    }
  }
  const znode::Caller caller = caller_of(req, creds, replica);

  if (path == "/v1/auth/login" || path == "/v1/auth/logout") {
    return handle_auth(req, path, caller, creds, metrics, cluster, done);
  }
  if (path == "/v1/events") {
    // A WebSocket upgrade never gets here: the HTTP session hands it to
    // the event stream (event_stream.h).
    ++metrics.errors;
    HttpReply r = error_reply(426, ErrorCode::BadArguments,
                              "GET /v1/events is a WebSocket: send Upgrade: websocket");
    r.upgrade = "websocket";
    return done(std::move(r));
  }
  if (path == "/healthz") return done(HttpReply{200, "text/plain", "ok\n"});
  if (path == "/" || path == "/ui" || path.starts_with("/ui/")) {
    return done(console_reply(req, path));
  }
  if (path == "/readyz") {
    const std::string warning =
        cluster.guard.credentials_in_clear
            ? "warning: HTTP Basic credentials are accepted in clear on a non-loopback address\n"
            : "";
    if (const auto& ro = replica.read_only()) {
      return done(HttpReply{503, "text/plain",
                            "read-only: " + std::string(core::to_string(ro->reason)) + ": " +
                                ro->detail + "\n" + warning});
    }
    if (!replica.ready()) {
      return done(HttpReply{503, "text/plain", "no leader or applying the log\n" + warning});
    }
    return done(HttpReply{200, "text/plain", "ready\n" + warning});
  }
  if (path.starts_with("/v1/cluster/") || path == "/v1/cluster") {
    return handle_cluster(req, path, replica, self_client_address, cluster, caller,
                          creds.has_value(), metrics, done);
  }
  if (path == "/metrics") {
    if (req.method != "GET") return done(error_reply(405, ErrorCode::BadArguments, "use GET"));
    return done(metrics_text(replica, storage, metrics, cluster));
  }
  if (path == "/v1/sessions") {
    if (req.method != "GET") return done(error_reply(405, ErrorCode::BadArguments, "use GET"));
    return done(sessions_reply(replica, caller, query));
  }
  if (path == "/v1/metrics/history") {
    if (req.method != "GET") return done(error_reply(405, ErrorCode::BadArguments, "use GET"));
    if (metrics.history == nullptr) {
      return done(error_reply(404, ErrorCode::BadArguments, "no metrics history here"));
    }
    return done(HttpReply{200, "application/json", metrics.history->to_json()});
  }
  constexpr std::string_view prefix = "/v1/znodes";
  if (!path.starts_with(prefix) || (path.size() > prefix.size() && path[prefix.size()] != '/')) {
    ++metrics.errors;
    return done(
        error_reply(404, ErrorCode::BadArguments, "no such endpoint: " + std::string(path)));
  }
  std::string znode;
  if (!url_decode(path.substr(prefix.size()), znode)) {
    ++metrics.errors;
    return done(error_reply(400, ErrorCode::BadArguments, "malformed escape in the path"));
  }
  if (znode.empty()) znode = "/";
  const auto version = version_param(query);
  if (!version) {
    ++metrics.errors;
    return done(error_reply(400, ErrorCode::BadArguments, "version must be an integer >= -1"));
  }
  const RestCaller who{req.peer_ip, creds ? creds->auth() : std::string()};

  if (req.method == "POST") return create_znode(rest, metrics, who, znode, req.body, done);
  if (req.method == "PUT" && query_flag(query, "acl")) {
    return set_acl(rest, metrics, who, znode, req.body, *version, done);
  }
  if (req.method == "DELETE" && query_flag(query, "recursive")) {
    if (znode == "/") {
      return done(error_reply(400, ErrorCode::BadArguments, "the root cannot be deleted"));
    }
    auto paths = subtree_of(replica.tree(), znode, caller);
    if (!paths.ok()) {
      if (paths.code() == ErrorCode::BadArguments) {
        ++metrics.errors;
        return done(error_reply(400, ErrorCode::BadArguments, paths.status().message()));
      }
      return done(znode_error(metrics, paths.code(), znode));
    }
    // Deepest first: every node after its parent, so reversed, before it.
    auto order = std::make_shared<std::vector<std::string>>(std::move(paths).value());
    std::reverse(order->begin(), order->end());
    return delete_batches(rest, metrics, who, std::move(order), 0, *version, done);
  }
  if (req.method == "PUT") {
    if (req.body.size() > limits::znode_data_bytes_max) {
      ++metrics.errors;
      return done(error_reply(413, ErrorCode::BadArguments, "data over 1 MiB"));
    }
    return put_znode(rest, metrics, who, znode, req.body, *version, 1, std::move(done));
  }
  if (req.method == "DELETE") {
    Status st = rest.call(who, pr::OpCode::Delete, pr::DeleteRequest{znode, *version},
                          [znode, done, &metrics](ErrorCode err, const pr::ResponseBody&) {
                            if (err != ErrorCode::Ok) return done(znode_error(metrics, err, znode));
                            done(HttpReply{200, "application/json",
                                           json{{"path", znode}, {"deleted", true}}.dump() + "\n"});
                          });
    if (!st.ok()) done(refused_reply(st));
    return;
  }
  if (req.method != "GET") {
    ++metrics.errors;
    return done(error_reply(405, ErrorCode::BadArguments, "use GET, POST, PUT or DELETE"));
  }

  // Checked as getData would be: READ on the node for these identities.
  auto v = replica.tree().get_data(znode, caller);
  if (!v.ok()) return done(znode_error(metrics, v.code(), znode));
  json out{{"path", znode}, {"stat", stat_json(v->stat)}};
  if (!v->data) {
    out["data"] = nullptr;
  } else if (valid_utf8(*v->data)) {
    out["data"] = std::string(*v->data);
  } else {
    out["data"] = nullptr;
    out["data_base64"] = base64(*v->data);
  }
  if (query_flag(query, "children")) {
    if (auto bad = add_children(out, replica.tree(), znode, caller, query)) {
      ++metrics.errors;
      return done(std::move(*bad));
    }
  }
  if (query_flag(query, "acl")) {
    // As getACL answers: digest hashes shown only to who has ADMIN.
    auto acl = replica.tree().get_acl(znode, caller);
    if (acl.ok()) {
      json list = json::array();
      for (const Acl& a : acl->acl)
        list.push_back(json{{"perms", a.perms}, {"scheme", a.id.scheme}, {"id", a.id.id}});
      out["acl"] = std::move(list);
    }
  }
  done(HttpReply{200, "application/json", out.dump() + "\n"});
}

}  // namespace coord::io
