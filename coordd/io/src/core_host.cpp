#include "core_host.h"

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>

#include "client_conn.h"
#include "coord/base/log.h"
#include "coord/consensus/codec.h"
#include "coord/io/host_facts.h"
#include "coord/io/peer_transport.h"
#include "coord/io/server.h"
#include "event_stream.h"

namespace coord::io {

namespace asio = boost::asio;
using protocol::Bytes;

namespace {
constexpr std::chrono::milliseconds log_map_idle_release{limits::log_map_idle_release_ms};
}  // namespace

CoreHost::CoreHost(boost::asio::io_context& c, core::ReplicaConfig cfg)
    : core(c), config(std::move(cfg)), ticker(c) {}

CoreHost::~CoreHost() {
  stop_storage_thread();
}

void CoreHost::start_storage_thread() {
  storage_work.emplace(storage_io.get_executor());
  storage_thread = std::thread([this] { storage_io.run(); });
  // A stop between compaction chunks left entries below the snapshot.
  asio::post(storage_io, [this] { queue_log_compaction(); });
}

void CoreHost::queue_log_compaction() {
  if (log_compaction_queued || !storage->log_compaction_pending()) return;
  log_compaction_queued = true;
  asio::post(storage_io, [this] {
    log_compaction_queued = false;
    const auto t0 = std::chrono::steady_clock::now();
    auto more = storage->compact_log_chunk();
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    ++log_compaction_chunks;
    log_compaction_us += us;
    log_compaction_chunk_us_max = std::max<std::int64_t>(log_compaction_chunk_us_max, us);
    if (more.ok() && *more) {
      queue_log_compaction();
      return;
    }
    asio::post(
        core, [st = more.status(), chunks = log_compaction_chunks,
               total_ms = log_compaction_us / 1000, max_ms = log_compaction_chunk_us_max / 1000.0] {
          if (!st.ok()) {
            // The entries stay below the snapshot, harmless; the next
            // snapshot's record tries again.
            COORD_LOG_ERROR("coordd", "log compaction stopped after ", chunks, " chunks: ", st);
            return;
          }
          COORD_LOG_INFO("coordd", "log compacted in ", chunks, " chunks, ", total_ms,
                         " ms in all, the longest ", max_ms, " ms");
        });
    log_compaction_chunks = 0;
    log_compaction_us = 0;
    log_compaction_chunk_us_max = 0;
  });
}

void CoreHost::stop_storage_thread() {
  storage_work.reset();
  storage_io.stop();
  if (storage_thread.joinable()) storage_thread.join();
}

void CoreHost::persist(const consensus::Ready* rd) {
  // The guard keeps the core loop running until the answer is posted: a
  // draining core has no timer left, and its run() would return first.
  asio::post(storage_io, [this, rd, work = asio::make_work_guard(core)] {
    Status st = storage->write(*rd);
    const bool installed = st.ok() && rd->snapshot;
    asio::post(core, [this, st = std::move(st)] { persist_done(st); });
    // A leader's snapshot leaves the entries it covers to compaction.
    if (installed) queue_log_compaction();
    log_written();
    // Now that the answer is on its way. A checkpoint that fails is not
    // reported here: the write that finds the journal full takes it into
    // LMDB itself and fails the same way, as a write failure.
    (void)storage->checkpoint_log_if_due();
  });
}

void CoreHost::log_written() {
  last_log_write = std::chrono::steady_clock::now();
  if (map_idle_timer_armed) return;
  map_idle_timer_armed = true;
  wait_for_idle_log(last_log_write + log_map_idle_release);
}

void CoreHost::wait_for_idle_log(std::chrono::steady_clock::time_point due) {
  map_idle_timer.expires_at(due);
  map_idle_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) {
      map_idle_timer_armed = false;
      return;
    }
    const auto idle_from = last_log_write + log_map_idle_release;
    if (std::chrono::steady_clock::now() < idle_from) return wait_for_idle_log(idle_from);
    map_idle_timer_armed = false;
    if (Status st = storage->checkpoint_log_and_release_map(); !st.ok()) {
      asio::post(core, [st = std::move(st)] {
        COORD_LOG_WARN("coordd", "log checkpoint failed (the next write tries again): ", st);
      });
    }
    // A burst of writes leaves the heap with free blocks that malloc keeps
    // for the next one; at rest they go back to the system. Once per pause
    // in the writes, on this thread: 40 µs when there is little to give
    // back, about 10 ms after a million creates, during which an
    // allocation on the loop waits for the arena's lock.
    ::malloc_trim(0);
  });
}

void CoreHost::persist_done(const Status& st) {
  if (stopping) return;
  // The next write starts before what this one committed is applied.
  if (const consensus::Ready* next =
          replica->persisted_next(st, clock.steady_ms(), clock.wall_ms())) {
    persist(next);
  }
  flush();
  if (on_drained && !replica->persisting()) finish_drain();
}

void CoreHost::opened(std::shared_ptr<ClientConn> conn) {
  const auto id = conn->id();
  replica->connection_opened(id, conn->ip(), clock.steady_ms(), clock.wall_ms(), conn->port());
  conns.emplace(id, std::move(conn));
  schedule_flush();
}

void CoreHost::bytes(core::ConnId id, protocol::ByteSpan b) {
  if (stopping) return;  // read before the stop, arrived after the drain
  replica->bytes_received(id, b, clock.steady_ms(), clock.wall_ms());
  // Reading goes on while the core persists, so that what arrives during
  // one fsync joins the next; a session with too many requests waiting
  // pauses until flush() finds it can take more.
  if (replica->accepts_input(id)) {
    if (auto it = conns.find(id); it != conns.end()) {
      net_outbox.push_back({.conn = it->second, .resume = true});
    }
  } else {
    paused.insert(id);
  }
  schedule_flush();
}

void CoreHost::schedule_flush() {
  if (flush_scheduled || stopping) return;
  flush_scheduled = true;
  asio::post(core, [this] {
    flush_scheduled = false;
    flush();
  });
}

void CoreHost::closed(core::ConnId id) {
  replica->connection_closed(id);
  conns.erase(id);
  paused.erase(id);
  schedule_flush();
}

void CoreHost::identity(core::ConnId id, const std::string& scheme, const std::string& name) {
  replica->add_identity(id, Id{scheme, name});
}

void CoreHost::peer_input() {
  if (stopping || draining || peers == nullptr) return;
  std::vector<IncomingFrame> frames;
  const std::size_t n = peers->receive(frames, limits::peer_frames_per_turn_max);
  for (const IncomingFrame& f : frames) {
    auto m = consensus::codec::decode(f.frame);
    // The transport checked the checksum and the ids, so a frame that
    // does not decode comes from a server of another version.
    if (!m.ok() || m->from != f.from) {
      if (peer_frames_undecodable++ % 1000 == 0) {
        COORD_LOG_WARN("coordd", "a frame from server ", f.from, " does not decode: ",
                       m.ok() ? Status(ErrorCode::BadArguments, "wrong sender") : m.status(), " (",
                       peer_frames_undecodable, " so far)");
      }
      continue;
    }
    replica->peer_message(*m, clock.steady_ms(), clock.wall_ms());
  }
  // The transport calls back only once its inbox was left empty.
  if (n == limits::peer_frames_per_turn_max) asio::post(core, [this] { peer_input(); });
  schedule_flush();
}

void CoreHost::peer_link(NodeId peer, bool up) {
  if (stopping || draining) return;
  replica->peer_link_changed(peer, up, clock.steady_ms(), clock.wall_ms());
  schedule_flush();
}

void CoreHost::hand_over_leadership(std::function<void()> done) {
  const auto st = replica->transfer_leadership(NodeId(0), clock.steady_ms(), clock.wall_ms());
  if (!st.ok()) return done();
  flush();
  COORD_LOG_INFO("coordd", "stopping: handing leadership over first");
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(2 * config.tick_ms * config.election_ticks);
  auto timer = std::make_shared<asio::steady_timer>(core);
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [this, timer, poll, deadline, done = std::move(done)] {
    const auto status = replica->raft_status();
    const bool gone = status.leader != status.id;
    if (gone || std::chrono::steady_clock::now() >= deadline) {
      if (gone) {
        COORD_LOG_INFO("coordd", "leadership handed over to server ", status.leader);
      } else {
        COORD_LOG_WARN("coordd", "leadership was not taken over in time; stopping anyway");
      }
      auto finish = done;
      *poll = nullptr;  // breaks the cycle through the captured pointer
      return finish();
    }
    timer->expires_after(std::chrono::milliseconds(config.tick_ms));
    timer->async_wait([poll](boost::system::error_code) {
      if (*poll) (*poll)();
    });
  };
  (*poll)();
}

void CoreHost::four_letter(std::shared_ptr<ClientConn> conn, std::string word) {
  if (!replica->four_letter_word_allowed(word)) {
    // The replica words the refusal as ZooKeeper does.
    conn->write_text_and_close(replica->four_letter_word(word));
    return;
  }
  std::string text;
  if (word == "dirs") {
    // What the host knows: the sizes of the snapshot files and the log.
    text = "datadir_size: " + std::to_string(storage->snapshot_files_bytes()) +
           "\nlogdir_size: " + std::to_string(storage->log_bytes()) + "\n";
  } else if (word == "conf") {
    // ZooKeeper's keys; coord keeps snapshots and log in one directory.
    text = "clientPort=" + std::to_string(client_port) +
           "\nsecureClientPort=-1\ndataDir=" + data_dir +
           "\ndataDirSize=" + std::to_string(storage->snapshot_files_bytes()) +
           "\ndataLogDir=" + data_dir + "\ndataLogSize=" + std::to_string(storage->log_bytes()) +
           "\n" + replica->four_letter_word(word) +
           "maxClientCnxns=" + std::to_string(connections_per_address_max) +
           "\nclientPortListenBacklog=-1\n";
  } else if (word == "envi") {
    text = replica->four_letter_word(word);
    for (const auto& [key, value] : host_environment())
      text += key + "=" + value + "\n";
  } else if (word == "mntr") {
    text = replica->four_letter_word(word);
    if (auto open = open_fd_count()) {
      text += "zk_open_file_descriptor_count\t" + std::to_string(*open) + "\n";
    }
    if (auto max = max_fd_count()) {
      text += "zk_max_file_descriptor_count\t" + std::to_string(*max) + "\n";
    }
  } else {
    text = replica->four_letter_word(word);
  }
  conn->write_text_and_close(std::move(text));
}

void CoreHost::flush() {
  if (stopping) return;
  // Output for the REST clients feeds back into the replica, which may
  // produce more output: repeat, a bounded number of rounds.
  for (int round = 0; round < limits::core_flush_rounds_max; ++round) {
    core::ReplicaOutput out = replica->take_output();
    if (out.persist != nullptr) persist(out.persist);
    for (const auto& line : out.warnings)
      COORD_LOG_WARN("coordd", line);
    send_to_peers(out.peer_messages);
    if (out.connections.empty()) break;
    for (auto& o : out.connections) {
      if (rest && rest->owns(o.conn)) {
        rest->on_output(o);
        continue;
      }
      if (admin_rest && admin_rest->owns(o.conn)) {
        admin_rest->on_output(o);
        continue;
      }
      auto it = conns.find(o.conn);
      if (it == conns.end()) continue;
      net_outbox.push_back(
          {.conn = it->second, .bytes = std::move(o.bytes), .close_after = o.close});
    }
  }
  for (auto it = paused.begin(); it != paused.end();) {
    auto c = conns.find(*it);
    if (c == conns.end()) {
      it = paused.erase(it);
    } else if (replica->accepts_input(*it)) {
      net_outbox.push_back({.conn = c->second, .resume = true});
      it = paused.erase(it);
    } else {
      ++it;
    }
  }
  send_to_net();
  ready.store(replica->ready());
  report_read_only();
  follow_membership();
}

void CoreHost::send_to_net() {
  if (net_outbox.empty()) return;
  // The connections live on this thread: replies are written now, in
  // this turn. Resumptions read, which could feed the core more input in
  // the middle of its turn; they wait for the next one, all in one post.
  std::vector<std::shared_ptr<ClientConn>> resumed;
  std::vector<NetOutput> batch = std::move(net_outbox);
  net_outbox = {};
  for (NetOutput& o : batch) {
    if (o.resume) {
      resumed.push_back(std::move(o.conn));
    } else {
      o.conn->take_output(std::move(o.bytes), o.close_after);
    }
  }
  if (resumed.empty()) return;
  asio::post(core, [resumed = std::move(resumed)] {
    for (const auto& conn : resumed)
      conn->take_resume();
  });
}

void CoreHost::follow_membership() {
  if (peers == nullptr) return;
  const core::Membership& m = replica->membership();
  const consensus::ConfState& in_force = replica->conf_state();
  if (membership_seen == m.version && conf_seen == in_force) return;
  membership_seen = m.version;
  conf_seen = in_force;
  PeerSet next = peers_of(m, configured_peers, &in_force);
  if (next == cluster.peers) return;
  std::string names;
  for (const auto& [id, address] : next) {
    names += (names.empty() ? "" : ", ") + std::to_string(id.value()) + "=" + address.host + ":" +
             std::to_string(address.port);
  }
  COORD_LOG_INFO("coordd", "membership version ", m.version, ": peers now ", names);
  peers->set_peers(next);
  cluster.peers = std::move(next);
}

void CoreHost::send_to_peers(std::vector<consensus::Message>& messages) {
  // A single node has nobody to tell; Raft copes with any message lost.
  if (peers == nullptr) return;
  for (const consensus::Message& m : messages) {
    auto frame = consensus::codec::encode(m);
    if (!frame.ok()) {
      if (peer_frames_unsent++ % 1000 == 0) {
        COORD_LOG_ERROR("coordd", "a message for server ", m.to,
                        " cannot be encoded: ", frame.status(), " (", peer_frames_unsent,
                        " so far)");
      }
      continue;
    }
    peers->send(m.to, std::move(frame).value());
  }
}

void CoreHost::report_read_only() {
  const auto& ro = replica->read_only();
  const std::uint64_t failures = replica->stats().writes_failed_storage;
  const auto now = std::chrono::steady_clock::now();
  if (ro && ro->reason == core::ReadOnlyReason::NoQuorum) {
    if (!read_only_logged) {
      COORD_LOG_WARN("coordd", "read-only: ", ro->detail,
                     "; clients that accept a read-only server are served reads, the others "
                     "are turned away until a leader is back");
      read_only_logged = true;
    }
    return;
  }
  if (ro && failures != storage_failures_logged &&
      (!read_only_logged || now - storage_failure_logged_at >=
                                std::chrono::milliseconds(limits::storage_error_log_interval_ms))) {
    COORD_LOG_ERROR("coordd", "read-only: ", core::to_string(ro->reason), ": ", ro->detail, " (",
                    failures - storage_failures_logged,
                    " failed writes since the last report); reads go on, writes are refused "
                    "with NotReadOnly and retried every tick");
    storage_failures_logged = failures;
    storage_failure_logged_at = now;
    read_only_logged = true;
  } else if (!ro && read_only_logged) {
    if (failures == storage_failures_logged) {
      COORD_LOG_INFO("coordd", "writable again: a leader is back");
    } else {
      COORD_LOG_INFO("coordd", "writable again: the log accepts writes (",
                     failures - storage_failures_logged, " more failed writes before it did)");
    }
    storage_failures_logged = failures;
    read_only_logged = false;
  }
}

#if COORD_FAULT_SEAMS
void CoreHost::read_fault_clock() {
  if (fault_clock_file.empty()) return;
  std::int64_t offset = 0;
  std::string seen;
  std::ifstream in(fault_clock_file);
  if (!in) {
    seen = "missing";
  } else if (!(in >> offset) || !(in >> std::ws).eof()) {
    offset = 0;
    seen = "unreadable";
  } else {
    seen = std::to_string(offset);
  }
  clock.set_offset_ms(offset);
  if (seen == fault_clock_seen) return;
  fault_clock_seen = seen;
  if (seen == "missing" || seen == "unreadable") {
    COORD_LOG_WARN("coordd", "fault seam: clock file ", fault_clock_file, " is ", seen,
                   ": wall-clock offset 0");
  } else {
    COORD_LOG_WARN("coordd", "fault seam: wall-clock offset now ", offset, " ms");
  }
}
#endif

void CoreHost::tick() {
#if COORD_FAULT_SEAMS
  read_fault_clock();
#endif
  replica->tick(clock.steady_ms(), clock.wall_ms());
  rest->tick();
  logins.expire(clock.steady_ms());
  if (events) events->tick(clock.steady_ms());
  if (admin_rest) admin_rest->tick();
  flush();
  maybe_snapshot();
  sample_metrics();
  ticker.expires_after(std::chrono::milliseconds(config.tick_ms));
  ticker.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

void CoreHost::sample_metrics() {
  const auto raft = replica->raft_status();
  MetricsNow now;
  now.wall_ms = clock.wall_ms().value();
  now.steady_ms = clock.steady_ms().value();
  now.latency_us = &replica->stats().latency_us;
  now.fsync_us = &storage->fsync_latency_us();
  now.commit_index = raft.commit.value();
  now.applied_index = raft.applied.value();
  now.connections = http_metrics.net ? http_metrics.net->client_connections.load() : 0;
  metrics_history.maybe_sample(now);
}

// Snapshots are written by a forked child, which sees the tree exactly
// as of the fork (copy-on-write) while this process goes on applying:
// the apply loop pauses only for the fork itself, not for serializing
// and writing the tree. The parent records the snapshot in the log once
// the child reports success.
void CoreHost::maybe_snapshot() {
  if (snapshot_child != 0) {
    int status = 0;
    const pid_t done = ::waitpid(snapshot_child, &status, WNOHANG);
    if (done == 0) return;  // still writing
    snapshot_child = 0;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - snapshot_started)
                        .count();
    const auto retry_later = [&] {
      snapshot_not_before = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(limits::snapshot_retry_interval_ms);
    };
    if (done < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      COORD_LOG_ERROR("coordd", "snapshot at zxid ", snapshot_in_flight.index,
                      " failed in its writer process (status ", status, "); next try in ",
                      limits::snapshot_retry_interval_ms, " ms");
      retry_later();
      return;
    }
    // The log starts after the snapshot at once; the record and then the
    // dropping of the entries it covers, in chunks, wait their turns on the
    // storage thread.
    Status st = storage->begin_record_snapshot(snapshot_in_flight);
    if (!st.ok()) {
      COORD_LOG_ERROR("coordd", "snapshot at zxid ", snapshot_in_flight.index,
                      " written but not recorded: ", st, "; next try in ",
                      limits::snapshot_retry_interval_ms, " ms");
      retry_later();
      return;
    }
    asio::post(storage_io, [this, meta = snapshot_in_flight] {
      Status recorded = storage->write_snapshot_record(meta);
      if (recorded.ok()) {
        queue_log_compaction();
        return;
      }
      asio::post(core, [meta, recorded] {
        // The view already starts after it; the next snapshot's record
        // drops the entries instead, and a restart reads the last record
        // written, with the entries it did not drop.
        COORD_LOG_ERROR("coordd", "snapshot at zxid ", meta.index,
                        " not recorded in the log: ", recorded);
      });
    });
    replica->snapshot_done(snapshot_in_flight.index);
    COORD_LOG_INFO("coordd", "snapshot at zxid ", snapshot_in_flight.index, " written in ", ms,
                   " ms, apply paused ", fork_pause_ms, " ms");
    return;
  }
  if (!replica->snapshot_due() || std::chrono::steady_clock::now() < snapshot_not_before) return;
  snapshot_in_flight = replica->snapshot_meta();
  snapshot_started = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    COORD_LOG_ERROR("coordd", "cannot fork a snapshot writer: ", std::strerror(errno));
    return;
  }
  if (pid == 0) {
    // The child: only this thread exists here. Serialize, write, leave
    // without running destructors that belong to the parent.
    Status st = storage->write_snapshot_file(snapshot_in_flight, replica->snapshot_payload());
    if (!st.ok()) {
      // The reason (it names the file) goes to the parent's log stream.
      const std::string line = "coordd: snapshot writer: " + st.message() + "\n";
      [[maybe_unused]] const auto n = ::write(STDERR_FILENO, line.data(), line.size());
    }
    ::_exit(st.ok() ? 0 : 1);
  }
  snapshot_child = pid;
  fork_pause_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - snapshot_started)
                      .count();
}

void CoreHost::drain(std::function<void()> done) {
  ticker.cancel();
  stop_snapshot_writer();
  draining = true;
  on_drained = std::move(done);
  flush();
  if (!replica->persisting()) finish_drain();
}

void CoreHost::finish_drain() {
  stopping = true;
  if (events) events->stop();
  for (auto& [id, c] : conns)
    net_outbox.push_back({.conn = c, .close_after = true});
  // Before `done`: every connection is told to close first.
  send_to_net();
  auto done = std::move(on_drained);
  on_drained = nullptr;
  if (done) done();
}

void CoreHost::stop_snapshot_writer() {
  if (snapshot_child == 0) return;
  // An unfinished snapshot is abandoned; its temporary file is removed by
  // the next prune.
  ::kill(snapshot_child, SIGKILL);
  int status = 0;
  ::waitpid(snapshot_child, &status, 0);
  snapshot_child = 0;
}

}  // namespace coord::io
