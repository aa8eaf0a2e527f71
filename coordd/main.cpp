// coordd: a coord server. With no flags it serves a single node on
// 127.0.0.1: ZooKeeper clients on port 2181, HTTP on 8080, data in
// ./coord-data. With --id and --peers it is one server of a cluster.
// Every flag can also come from a config file (--config).

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "coord/base/log.h"
#include "coord/base/malloc_tuning.h"
#include "coord/io/server.h"

int main(int argc, char** argv) {
  coord::tune_malloc_or_restart(argv);
  coord::io::ServerOptions o;
  std::string log_level = "info";
  // Short ticks and election timeouts: a cluster notices a dead leader
  // and elects another within a few hundred milliseconds.
  std::int64_t tick_ms = 25;
  std::int64_t election_timeout_ms = 150;
  std::uint64_t id = 1;
  std::string peers;
  std::string secret_file;
  std::string tls_client_auth = "none";
  int secure_client_port = -1;  // none

  CLI::App app{"coordd: a ZooKeeper-compatible coordination server"};
  app.set_config("--config", "", "Read flags from this file (TOML or INI: key = value)");
  // A misspelt key in a config file must stop the server, not be ignored:
  // the setting it meant would silently keep its default.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--bind", o.bind, "Address to listen on")->capture_default_str();
  app.add_option("--client-port", o.client_port,
                 "ZooKeeper client port (0: any free port; with --secure-client-port, 0 means "
                 "no plain port)")
      ->capture_default_str();
  app.add_option("--secure-client-port", secure_client_port,
                 "ZooKeeper client port over TLS, as ZooKeeper's secureClientPort (0: any "
                 "free port); needs --tls-cert-file and --tls-key-file")
      ->check(CLI::Range(0, 65535));
  app.add_option("--tls-cert-file", o.tls.files.cert_file,
                 "PEM file: this server's certificate, then any intermediate certificates "
                 "(re-read on SIGHUP)");
  app.add_option("--tls-key-file", o.tls.files.key_file,
                 "PEM file: the unencrypted private key of --tls-cert-file (re-read on SIGHUP)");
  app.add_option("--tls-ca-file", o.tls.files.ca_file,
                 "PEM file: the CAs client certificates must chain to (re-read on SIGHUP)");
  app.add_option("--tls-client-auth", tls_client_auth,
                 "Client certificates on TLS ports: none (not asked for), want (verified when "
                 "sent), need (required); a verified one adds the identity x509:<subject>")
      ->check(CLI::IsMember({"none", "want", "need"}))
      ->capture_default_str();
  app.add_flag("--http-tls", o.tls.http_tls, "Serve HTTPS on --http-port, with the --tls-* files");
  app.add_flag("--peer-tls", o.tls.peer_tls,
               "Mutual TLS between the servers of the cluster: each presents --tls-cert-file and "
               "requires a certificate that chains to --tls-ca-file (the cluster's CA); use it "
               "on every server");
  app.add_option("--http-port", o.http_port, "HTTP port: health, metrics, REST (0: any free port)")
      ->capture_default_str();
  app.add_option("--data-dir", o.data_dir, "Directory for the log and snapshots")
      ->capture_default_str();
  app.add_option("--tick-ms", tick_ms, "Length of one Raft tick (heartbeats, timers), in ms")
      ->check(CLI::Range(1, 10'000))
      ->capture_default_str();
  app.add_option("--election-timeout-ms", election_timeout_ms,
                 "A follower that hears no leader for this long (up to twice, at random) starts "
                 "an election; a server without a leader for this long turns read-only")
      ->check(CLI::Range(std::int64_t{10}, std::int64_t{60'000}))
      ->capture_default_str();
  app.add_option("--id", id, "This server's id in the cluster (1-255)")
      ->check(CLI::Range(std::uint64_t{1}, coord::limits::node_id_max))
      ->capture_default_str();
  app.add_option("--peers", peers,
                 "The servers of the cluster, this one included: "
                 "1=host:peerport,2=host:peerport,3=host:peerport, each optionally with its "
                 "client address as 1=host:peerport;clientport or "
                 "1=host:peerport;clienthost:clientport (none: a single node). Founding servers "
                 "must all be given the same list: it is the cluster's first membership");
  app.add_flag("--join", o.join,
               "Join a running cluster instead of founding one: start with an empty log and wait "
               "until a member adds this server (reconfig or POST /v1/cluster/members); --peers "
               "then lists the current members and this server. Ignored when the data directory "
               "holds a log already");
  app.add_option("--peer-port", o.peer_port,
                 "Port for the other servers (default: the one --peers gives this server)");
  app.add_option("--peer-bind", o.peer_bind, "Address for the other servers (default: --bind)");
  app.add_option("--cluster-id", o.cluster_id,
                 "Name of the cluster; servers of another cluster are refused")
      ->capture_default_str();
  app.add_option("--cluster-secret-file", secret_file,
                 "File holding the secret the servers prove to each other (at least 16 bytes; "
                 "without it peers are not authenticated)");
  app.add_flag("--read-only-mode,!--no-read-only-mode", o.replica.read_only_on_quorum_loss,
               "Serve reads to read-only clients while the quorum is lost (ZooKeeper's "
               "readonlymode.enabled)")
      ->capture_default_str();
  app.add_option("--min-session-timeout-ms", o.replica.session_timeout_ms_min,
                 "Smallest session timeout granted")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 31))
      ->capture_default_str();
  app.add_option("--max-session-timeout-ms", o.replica.session_timeout_ms_max,
                 "Largest session timeout granted")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 31))
      ->capture_default_str();
  app.add_option("--super-digest", o.replica.super_digest,
                 "user:<base64 sha1 of user:password> of the super user, as ZooKeeper's "
                 "superDigest (a bare hash means user 'super'); it may also change the "
                 "server through the HTTP admin API, with Basic credentials");
  app.add_option("--http-allowed-hosts", o.http_allowed_hosts,
                 "Host names HTTP requests may name besides localhost, 127.0.0.1, [::1], the "
                 "listen address and the members' addresses, comma-separated; * turns the "
                 "Host check off (and with it the defence against DNS rebinding)");
  app.add_option("--http-allowed-origins", o.http_allowed_origins,
                 "Origins (scheme://host:port) whose pages may send changes to the HTTP API "
                 "besides the server's own, comma-separated; * allows any");
  app.add_option("--snapshot-entries", o.replica.snapshot_entries,
                 "Write a snapshot after this many log entries")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--snapshot-log-bytes", o.replica.snapshot_log_bytes,
                 "... or after this many bytes of log entries")
      ->check(CLI::Range(std::uint64_t{1} << 10, std::uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-connections-per-address", o.connections_per_address_max,
                 "Connections accepted from one client address")
      ->capture_default_str();
  app.add_option("--max-connections", o.connections_max,
                 "Client connections at once (lowered to fit the descriptor limit)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  app.add_option("--max-http-connections", o.http_connections_max,
                 "HTTP connections at once (lowered to fit the descriptor limit)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--handshake-timeout-ms", o.handshake_ms_max,
                 "A new connection that has not sent its handshake by then is closed")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{600'000}))
      ->capture_default_str();
  app.add_option("--http-idle-timeout-ms", o.http_idle_ms_max,
                 "An HTTP connection idle (no whole request, reply not taken) this long is closed")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--max-unread-output-bytes", o.unread_output_bytes_max,
                 "Replies all clients together may leave unread; past it the largest holders are "
                 "cut off")
      ->check(CLI::Range(coord::limits::connections_outbound_bytes_total_min, std::size_t{1} << 40))
      ->capture_default_str();
  app.add_option(
         "--4lw-whitelist", o.replica.four_letter_whitelist,
         "Four-letter words answered, comma-separated, or * for all (ZooKeeper's "
         "4lw.commands.whitelist; srvr always); others get ZooKeeper's \"not in the whitelist\" "
         "line")
      ->capture_default_str();
  app.add_option("--log-map-bytes", o.log_map_bytes, "Largest size of the LMDB log file")
      ->capture_default_str();
  app.add_flag("--enforce-quota", o.replica.tree.enforce_quota,
               "Refuse writes past a quota's hard limit (ZooKeeper's zookeeper.enforceQuota); "
               "use the same setting on every server");
  app.add_option("--log-disk-reserve-bytes", o.log_disk_free_bytes_min,
                 "Free space kept on the log's file system: below it, log writes are refused "
                 "and the server is read-only until there is more (0: none)")
      ->capture_default_str();
  app.add_flag("--recover-from-snapshot", o.recover_from_snapshot,
               "When the log is missing or empty but snapshot files exist, rebuild the log from "
               "the newest valid snapshot (writes after it are lost) instead of refusing to start");
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->capture_default_str();
#if COORD_FAULT_SEAMS
  // Only in test builds (COORD_FAULT_SEAMS); a release build has no such
  // flags and refuses them as unknown.
  std::string planted_bug;
  auto* seams = app.add_option_group("fault seams (test builds only)");
  seams->add_option("--fault-clock-file", o.fault_clock_file,
                    "File holding one integer, a wall-clock offset in ms (may be negative), "
                    "re-read every tick; missing or unreadable: 0. Steady time is not moved");
  seams
      ->add_option("--fault-plant-bug", planted_bug,
                   "Plant a known bug to prove a checker catches it. stale-sync: sync is "
                   "answered at once, without confirming leadership (reads after it can be "
                   "stale)")
      ->check(CLI::IsMember({"stale-sync"}));
#endif
  CLI11_PARSE(app, argc, argv);

  coord::LogLevel level;
  if (!coord::parse_log_level(log_level, &level)) {
    std::fprintf(stderr, "coordd: unknown --log-level '%s'\n", log_level.c_str());
    return 2;
  }
  coord::set_log_level(level);
#if COORD_FAULT_SEAMS
  if (planted_bug == "stale-sync") {
    o.replica.sync_without_read_index_for_testing = true;
    COORD_LOG_WARN("coordd",
                   "a bug is planted (--fault-plant-bug stale-sync): sync is answered without "
                   "the ReadIndex round, so reads after a sync may be stale");
  }
#endif
  o.tls.files.client_auth = coord::io::parse_tls_client_auth(tls_client_auth).value();
  if (secure_client_port >= 0) {
    o.tls.secure_client_port = static_cast<std::uint16_t>(secure_client_port);
  }
  if (o.replica.session_timeout_ms_min > o.replica.session_timeout_ms_max) {
    std::fprintf(stderr, "coordd: --min-session-timeout-ms is above --max-session-timeout-ms\n");
    return 2;
  }
  o.replica.tick_ms = tick_ms;
  o.replica.election_ticks =
      static_cast<int>(std::max<std::int64_t>(2, election_timeout_ms / tick_ms));
  o.replica.heartbeat_ticks = std::max(1, o.replica.election_ticks / 6);
  o.replica.id = coord::NodeId(id);
  o.replica.voters = {coord::NodeId(id)};
  if (!peers.empty()) {
    auto parsed = coord::io::parse_peers(peers);
    if (!parsed.ok()) {
      std::fprintf(stderr, "coordd: --peers: %s\n", parsed.status().message().c_str());
      return 2;
    }
    o.peers = std::move(parsed->peers);
    o.client_addresses = std::move(parsed->clients);
  }
  if (!secret_file.empty()) {
    struct stat st {};
    std::ifstream in(secret_file, std::ios::binary);
    if (!in || ::stat(secret_file.c_str(), &st) != 0) {
      std::fprintf(stderr, "coordd: cannot read --cluster-secret-file %s\n", secret_file.c_str());
      return 2;
    }
    std::ostringstream text;
    text << in.rdbuf();
    o.cluster_secret = text.str();
    while (!o.cluster_secret.empty() &&
           (o.cluster_secret.back() == '\n' || o.cluster_secret.back() == '\r')) {
      o.cluster_secret.pop_back();
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      COORD_LOG_WARN("coordd", "the cluster secret file ", secret_file,
                     " can be read by other users: chmod 600 it");
    }
  }
  // ZooKeeper's superDigest names any user ("admin:<hash>"); a bare hash
  // is the user "super"'s.
  if (!o.replica.super_digest.empty() && o.replica.super_digest.find(':') == std::string::npos) {
    o.replica.super_digest = "super:" + o.replica.super_digest;
  }

  auto server = coord::io::Server::create(o);
  if (!server.ok()) {
    COORD_LOG_ERROR("coordd", "cannot start: ", server.status());
    return 1;
  }
  (*server)->run();
  return 0;
}
