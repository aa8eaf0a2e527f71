// The core side of the server: the replica, its storage, the REST client
// and the map from connection ids to sockets. Everything here runs on the
// loop thread, which the client connections share (`core` is its
// io_context); the storage and HTTP threads post to it.
// Thread safety: the loop thread only, except `ready`.
#pragma once

// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <sys/types.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "coord/base/clock.h"
#include "coord/core/replica.h"
#include "coord/io/http_api.h"
#include "coord/io/metrics_history.h"
#include "coord/io/raft_storage.h"
#include "coord/io/rest_client.h"

namespace coord::io {

class ClientConn;
class EventHub;
class PeerTransport;

struct CoreHost {
  boost::asio::io_context& core;
  core::ReplicaConfig config;
  std::unique_ptr<DiskReplicaStorage> storage;
  std::unique_ptr<core::Replica> replica;
#if COORD_FAULT_SEAMS
  // The wall clock a test can jump (--fault-clock-file), re-read each tick.
  OffsetWallClock clock;
  std::string fault_clock_file;
  // What the file last said, so that each change is logged once.
  std::string fault_clock_seen = "(not read)";
  void read_fault_clock();
#else
  SystemClock clock;
#endif
  std::unordered_map<core::ConnId, std::shared_ptr<ClientConn>> conns;
  std::set<core::ConnId> paused;
  // Replies and resumptions for client connections, gathered over a flush
  // and handed over at its end (send_to_net): replies written at once,
  // resumptions in one post for all of them rather than one each.
  struct NetOutput {
    std::shared_ptr<ClientConn> conn;
    protocol::Bytes bytes{};
    bool close_after = false;
    bool resume = false;  // no bytes: the session can take more input
  };
  std::vector<NetOutput> net_outbox;
  bool flush_scheduled = false;
  boost::asio::steady_timer ticker;
  std::atomic<bool> ready{false};
  HttpMetrics http_metrics;
  MetricsHistory metrics_history{limits::metrics_history_interval_ms};
  std::unique_ptr<RestClients> rest;
  // The HTTP API's login tokens and the event streams (GET /v1/events).
  LoginTokens logins;
  std::unique_ptr<EventHub> events;
  std::uint16_t client_port = 0;
  std::string client_address;  // bind:port, for the admin API
  std::size_t connections_per_address_max = 0;
  std::string data_dir;
  // What was last logged of read-only mode (rate-limited: a full disk
  // fails a write every tick).
  std::uint64_t storage_failures_logged = 0;
  std::chrono::steady_clock::time_point storage_failure_logged_at;
  bool read_only_logged = false;
  pid_t snapshot_child = 0;
  // After a snapshot fails (a full disk, most often), the next waits.
  std::chrono::steady_clock::time_point snapshot_not_before;
  consensus::SnapshotMeta snapshot_in_flight;
  std::chrono::steady_clock::time_point snapshot_started;
  std::int64_t fork_pause_ms = 0;
  // Set by drain(): the replica takes no more input and writes nothing.
  bool stopping = false;
  // Set by drain() until the write out with the storage thread is done:
  // no input from peers, so that the wait ends.
  bool draining = false;
  std::function<void()> on_drained;
  // The thread that makes the replica's Readies durable and compacts the
  // log (persist_async), so that reads, pings and peer messages never
  // wait for an fsync. It runs one job at a time, in the order posted, and
  // posts each result back to `core`.
  boost::asio::io_context storage_io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      storage_work;
  std::thread storage_thread;
  // On the storage thread: once no log write came for
  // limits::log_map_idle_release_ms, the log's map lets go of its pages.
  // Armed at a write when not armed already, so that a stream of writes
  // re-arms it once per period, not once per write.
  boost::asio::steady_timer map_idle_timer{storage_io};
  bool map_idle_timer_armed = false;
  std::chrono::steady_clock::time_point last_log_write;
  // Whether a chunk of log compaction is queued on the storage thread
  // (which alone reads and writes it).
  bool log_compaction_queued = false;
  // The compaction under way, for the line logged when it ends: chunks
  // run, their time in all and the longest (what a write may have waited).
  std::uint64_t log_compaction_chunks = 0;
  std::int64_t log_compaction_us = 0;
  std::int64_t log_compaction_chunk_us_max = 0;
  // The links to the other servers of the cluster; null for a single node.
  PeerTransport* peers = nullptr;
  HttpCluster cluster;
  // The --peers list (this server included): the peer set while the
  // membership is empty, and the address of a member recorded without one.
  PeerSet configured_peers;
  // The membership version and the configuration in force the peer set
  // was last computed for.
  std::optional<std::int64_t> membership_seen;
  std::optional<consensus::ConfState> conf_seen;
  // The admin API's super-user connections (reconfig), apart from the
  // callers' own REST sessions.
  std::unique_ptr<RestClients> admin_rest;
  std::uint64_t peer_frames_undecodable = 0;
  std::uint64_t peer_frames_unsent = 0;

  CoreHost(boost::asio::io_context& c, core::ReplicaConfig cfg);
  ~CoreHost();

  void opened(std::shared_ptr<ClientConn> conn);
  void bytes(core::ConnId id, protocol::ByteSpan b);
  // One flush after all inputs queued so far: every write that arrived
  // while the previous fsync ran goes into the next one.
  void schedule_flush();
  void closed(core::ConnId id);
  void start_storage_thread();
  // Waits for the job running, drops the others. After the core stopped.
  void stop_storage_thread();
  // On the storage thread: queues the next chunk of dropping the entries
  // the log's snapshot covers, if any remain, behind the jobs queued so
  // far; each chunk queues the next, so a log write waits for one chunk at
  // most. A chunk that fails is logged, and the next snapshot's record
  // queues the compaction again.
  void queue_log_compaction();
  // Hands the Ready to the storage thread; persist_done() carries on.
  void persist(const consensus::Ready* rd);
  // On the storage thread, after each log write.
  void log_written();
  void wait_for_idle_log(std::chrono::steady_clock::time_point due);
  void persist_done(const Status& st);
  // The connection proved an identity below the ZooKeeper protocol (a
  // verified TLS client certificate: scheme x509).
  void identity(core::ConnId id, const std::string& scheme, const std::string& name);
  // Frames from peers wait in the transport's inbox: step them into the
  // replica, a bounded number per turn.
  void peer_input();
  void peer_link(NodeId peer, bool up);
  // A leader of a cluster that is told to stop hands leadership to the
  // most up-to-date voter first and waits (at most two election timeouts)
  // until it has gone, so that clients see no election timeout; then
  // `done` runs. Anything else runs `done` at once.
  void hand_over_leadership(std::function<void()> done);
  void four_letter(std::shared_ptr<ClientConn> conn, std::string word);
  void flush();
  // Writes net_outbox's replies now and posts its resumptions.
  void send_to_net();
  // The peer set follows the membership the replica has applied: when its
  // version moved, links to new members open and those to removed ones
  // close. Cheap when nothing changed; called after every flush.
  void follow_membership();
  void send_to_peers(std::vector<consensus::Message>& messages);
  // Logs entering and leaving read-only mode, rate-limited.
  void report_read_only();
  void tick();
  // One sample of the metrics history per interval.
  void sample_metrics();
  void maybe_snapshot();
  void stop_snapshot_writer();
  // The server stops: answers everything read so far (writes persisted and
  // applied first, which may wait for the storage thread), then has every
  // connection close once its replies are written, then runs `done`.
  // Nothing is persisted after this.
  void drain(std::function<void()> done);
  void finish_drain();
};

}  // namespace coord::io
