// Every limit of coord, in one place, each named with its unit last.
//
// A limit is checked at the edge where input arrives, answered with a clear
// error, and asserted inside. Parts add their limits to their own section
// below; nothing else in the tree hard-codes a bound.
#pragma once

#include <cstddef>
#include <cstdint>

namespace coord::limits {

// ---------------------------------------------------------------------------
// Client protocol (protocol/, coordd front, client-lib)
// ---------------------------------------------------------------------------

// Largest frame accepted on a client connection, as ZooKeeper's default
// jute.maxbuffer (0xfffff). A larger announced length closes the connection.
inline constexpr std::size_t frame_bytes_max = 0xfffff;
// Slack allowed on top of frame_bytes_max for one decoded string or buffer
// (ZooKeeper's jute extra size).
inline constexpr std::size_t jute_extra_bytes = 1024;
// Elements of one decoded vector (children, ACL entries, watch paths).
inline constexpr std::size_t jute_vector_elements_max = 1'000'000;
// Ops in one multi or multiRead request.
inline constexpr std::size_t multi_ops_max = 100'000;
// Longest string or buffer one Jute decoder accepts.
inline constexpr std::size_t jute_string_bytes_max = frame_bytes_max + jute_extra_bytes;
// Payload bytes of one reply frame. Replies that grow with the tree or with
// the request (children lists, multiRead, multi, getEphemerals, ...) are
// measured while they are built and answered MarshallingError past this;
// the slack over frame_bytes_max lets a getData of the largest node a
// request can create (its data plus a Stat) still fit.
inline constexpr std::size_t reply_bytes_max = frame_bytes_max + jute_extra_bytes;
// libcoord: requests one client may have outstanding (queued or sent).
inline constexpr std::size_t client_pending_requests_max = 100'000;
// libcoord: callbacks and events waiting for the event thread before the
// I/O thread stops reading from the server (backpressure).
inline constexpr std::size_t client_event_queue_max = 100'000;
// libcoord: watch paths carried by one setWatches frame after a reconnect
// (the Java client's batch size).
inline constexpr std::size_t client_set_watches_frame_bytes_max = 128 * 1024;
// libcoord: servers in one connect string.
inline constexpr std::size_t client_servers_max = 256;
// libcoord: the shortest default connection attempt (resolve, TCP and
// handshake), when the session timeout split over the servers is shorter.
inline constexpr std::int64_t client_connect_attempt_ms_min = 500;
// libcoord: the default attempt is at most the session timeout divided by
// this, so that a client of one server whose attempt hangs (a handshake
// never answered) still tries again before its session expires.
inline constexpr std::size_t client_connect_attempts_per_session_min = 3;
// libcoord: after a full round of failed attempts over every server, the
// next round waits this long plus a random part of up to
// client_reconnect_jitter_ms, so an unreachable ensemble does not spin.
inline constexpr std::int64_t client_reconnect_pause_ms_min = 100;
inline constexpr std::int64_t client_reconnect_jitter_ms = 400;
// libcoord: period of the I/O thread's timer (pings, read timeout, request
// deadlines, reconnects): the resolution of every client-side timeout.
inline constexpr std::int64_t client_tick_ms = 20;
// libcoord: bytes read from the socket in one read.
inline constexpr std::size_t client_read_chunk_bytes = 64 * 1024;
// libcoord: how long ~Client waits for its closeSession to be answered.
inline constexpr std::int64_t client_destructor_close_ms_max = 2'000;
// libcoord: how long close() waits beyond its timeout for the I/O thread to
// report the outcome.
inline constexpr std::int64_t client_close_grace_ms = 1'000;

// ---------------------------------------------------------------------------
// Data tree (znode/)
// ---------------------------------------------------------------------------

// Data held by one znode.
inline constexpr std::size_t znode_data_bytes_max = 1024 * 1024;
// Length of a path, in bytes. ZooKeeper bounds it only by the frame size.
inline constexpr std::size_t znode_path_bytes_max = frame_bytes_max;
// Entries in one ACL list.
inline constexpr std::size_t acl_entries_max = 1024;
// TTL of a TTL node, in ms: ZooKeeper's range is 1 .. 2^40 - 1.
inline constexpr std::int64_t znode_ttl_ms_min = 1;
inline constexpr std::int64_t znode_ttl_ms_max = (std::int64_t{1} << 40) - 1;
// Digits of a sequential node's suffix (ZooKeeper's %010d). coord's counter
// is 64-bit and never wraps; past 10 digits the suffix simply grows.
inline constexpr int sequential_suffix_digits = 10;
// The tree's node arena: memory is taken from the system in chunks of this
// size, aligned to it, and offered to the kernel as one transparent huge
// page (random access over a large tree is bound by TLB misses otherwise).
inline constexpr std::size_t znode_arena_chunk_bytes = 2 * 1024 * 1024;
// Blocks up to this size (a node with its path, a data buffer) come from the
// arena; larger ones from the general heap.
inline constexpr std::size_t znode_arena_block_bytes_max = 512;
// Paths a prefetch hint works on at once: enough to overlap that many
// memory round trips, few enough that the lines fetched for the first are
// still cached when its lookup runs.
inline constexpr std::size_t znode_prefetch_paths_max = 32;
// Bytes of a node's block, and of its data, a prefetch hint brings toward
// the cache (the head is what a lookup and a Stat read; a bogus long path
// must not cost thousands of prefetches).
inline constexpr std::size_t znode_prefetch_block_bytes_max = 256;
// A quota's limit passed again and again is logged at most once per this
// interval (with the count of repeats held back), as ZooKeeper rate-limits
// its quota warnings.
inline constexpr std::int64_t quota_log_interval_ms = 10'000;
// Quotas whose last report a server remembers for that; past this many,
// those reported longer than an interval ago are forgotten.
inline constexpr std::size_t quota_log_roots_max = 1024;

// ---------------------------------------------------------------------------
// Sessions and connections (coordd)
// ---------------------------------------------------------------------------

inline constexpr std::int64_t session_timeout_ms_min_default = 4'000;
inline constexpr std::int64_t session_timeout_ms_max_default = 40'000;
// Session passwords are this many bytes; the C client parses a fixed-size
// handshake reply, so it is not a choice.
inline constexpr std::size_t session_password_bytes = 16;
// Requests of one session waiting to be answered.
inline constexpr std::size_t session_pending_requests_max = 10'000;
// Connections from one client address (ZooKeeper's 60 is a known pain).
inline constexpr std::size_t connections_per_address_max_default = 1'000;
// Connections and sessions one server holds: far past the 100,000 idle
// sessions a server is built to hold (about 1.5 KB of memory each). The
// descriptor limit usually binds first: client connections get a share of
// it (docs/ARCHITECTURE.md, "Connections").
inline constexpr std::size_t connections_per_server_max = 1'000'000;
inline constexpr std::size_t sessions_per_server_max = 1'000'000;
// Watches registered by one connection.
inline constexpr std::size_t watches_per_connection_max = 1'000'000;
// Bytes of one four-letter word's answer: longer lists (wchc, wchp, cons,
// stat, dump) stop there with a truncation line, so that no word holds the
// core thread or memory in proportion to the number of watches or sessions.
inline constexpr std::size_t four_letter_word_bytes_max = 1024 * 1024;
// Bytes queued for a connection that does not read before it is cut off.
inline constexpr std::size_t connection_outbound_bytes_max = 64 * 1024 * 1024;
// Unread output of all client connections together, the default of
// --max-unread-output-bytes: past it the connections holding the most are
// cut off until the total is back under it.
inline constexpr std::size_t connections_outbound_bytes_total_max_default = 256 * 1024 * 1024;
// Its smallest setting: a few replies of the largest size must fit.
inline constexpr std::size_t connections_outbound_bytes_total_min = 8 * 1024 * 1024;
// A new connection must deliver its whole handshake frame within this time
// (ZooKeeper closes a connection without a session after 10 s).
inline constexpr std::int64_t connection_handshake_ms_max_default = 10'000;
// A connection that sends no complete frame for the largest session timeout
// granted plus this margin is closed: its session is expired, or would be on
// a leader, so nothing it could say would be answered with its session.
inline constexpr std::int64_t connection_silence_grace_ms = 2'000;
// A write or session creation proposed (or forwarded to the leader) that
// has not applied after this long is given up: its connection closes, and
// the client learns the outcome is unknown (ConnectionLoss).
inline constexpr std::int64_t proposal_wait_ms_max_default = 10'000;
// A command a follower forwarded that has not applied after this long is
// taken as lost on the way to the leader (which then takes nothing more of
// that forwarding stream): the follower starts a new stream.
inline constexpr std::int64_t forward_wait_ms_max_default = 2'000;
// Session ids one liveness relay to the leader carries per entry.
inline constexpr std::size_t session_relay_ids_per_entry_max = 8'192;
// Bytes read from a client socket at a time. The network thread reads
// every client socket into one buffer of this size, copying out what came,
// so that a connection holds no read buffer of its own while it waits.
inline constexpr std::size_t connection_read_chunk_bytes = 64 * 1024;
// Capacity a connection's frame buffer keeps once every frame in it is
// taken; a larger one (grown by a large frame or a burst) is given back.
inline constexpr std::size_t frame_buffer_idle_bytes_max = 1024;
// Connections accepted beyond the connection cap only to answer a
// four-letter word (ruok, mntr), so that monitoring works when the server is
// full; any other first bytes close them.
inline constexpr std::size_t connections_over_cap_for_4lw_max = 16;
// File descriptors kept for everything but client and HTTP connections
// (the log, snapshots, pipes, the snapshot writer, the reserve descriptor
// that lets an accept loop shed a connection when descriptors run out).
inline constexpr std::size_t server_fds_reserved = 64;
// After accept fails for want of descriptors or memory, the loop waits this
// long before it accepts again (instead of spinning on a ready listener).
inline constexpr std::int64_t accept_backoff_ms = 100;
// One log line per this interval for a repeated network condition
// (descriptors exhausted, connections refused at the cap).
inline constexpr std::int64_t network_log_interval_ms = 10'000;
// On SIGTERM: the longest the server waits for replies to be written out
// before it closes what is left.
inline constexpr std::int64_t shutdown_drain_ms_max = 5'000;
// Rounds of take_output in one flush of the core (the REST clients' output
// feeds back into the replica and may produce more output).
inline constexpr int core_flush_rounds_max = 16;

// ---------------------------------------------------------------------------
// HTTP API (coordd/io)
// ---------------------------------------------------------------------------

// HTTP connections open at once (default of --max-http-connections); more
// are closed at accept. Kept under a quarter of the descriptors available.
inline constexpr std::size_t http_connections_max_default = 512;
// An HTTP connection that does not deliver a complete request, or take its
// reply, within this time is closed (default of --http-idle-timeout-ms).
inline constexpr std::int64_t http_idle_ms_max_default = 30'000;
// Body of one HTTP request: a znode's data and some slack.
inline constexpr std::size_t http_body_bytes_max = znode_data_bytes_max + 64 * 1024;
// Decoded bytes of one request's HTTP Basic credentials (user:password);
// longer ones are refused as malformed.
inline constexpr std::size_t http_credentials_bytes_max = 1024;
// Login tokens of the HTTP API (POST /v1/auth/login): at most this many
// live at once (a new login beyond them replaces the one unused longest),
// and one unused for login_token_idle_ms_max is forgotten.
inline constexpr std::size_t login_tokens_max = 1024;
inline constexpr std::int64_t login_token_idle_ms_max = 1'800'000;
// Event streams (GET /v1/events, WebSocket) open at once; more are refused
// with 503 before the upgrade.
inline constexpr std::size_t event_streams_max = 256;
// Messages and bytes queued for one event stream and not yet taken by its
// consumer; past either, the stream is closed with 1008 rather than
// buffered without end.
inline constexpr std::size_t event_stream_queued_messages_max = 4096;
inline constexpr std::size_t event_stream_queued_bytes_max = 1024 * 1024;
// Bytes of one message an event stream's client may send (it has nothing
// to say; pings and close frames fit).
inline constexpr std::size_t event_stream_read_bytes_max = 4096;
// A stream being closed whose close frame the consumer does not take in
// this long is torn down.
inline constexpr std::int64_t event_stream_close_ms_max = 5'000;
// Recent changes the server keeps to replay to a stream that resumes
// (from_zxid), by count and by approximate bytes; older ones get "resync".
inline constexpr std::size_t event_history_entries_max = 50'000;
inline constexpr std::size_t event_history_bytes_max = 4 * 1024 * 1024;
// The history is kept while a stream is open and this long after the last
// one closed (a console reconnecting resumes); then its watch and memory go.
inline constexpr std::int64_t event_history_keep_ms = 600'000;
// Events one resume replays at most, in one turn of the core thread, and
// their bytes: the replay goes out through the stream's queue, and must
// leave room there for the live events behind it. A resume that would need
// more gets "resync".
inline constexpr std::size_t event_replay_events_max = 2048;
inline constexpr std::size_t event_replay_bytes_max = event_stream_queued_bytes_max / 2;
// REST requests run in internal sessions, one per caller address, so that
// each acts with its caller's identity. At most this many at once; one
// unused for rest_session_idle_ms_max is closed.
inline constexpr std::size_t rest_sessions_max = 64;
// The log entries last written, kept in memory to be applied and sent to
// followers without reading them back from LMDB. One Ready's entries are
// far fewer; a follower further behind is served from LMDB.
inline constexpr std::size_t log_recent_entries_bytes_max = 1024 * 1024;
// DELETE /v1/znodes/<path>?recursive: a subtree of more nodes is refused
// (delete it in parts); its deletes go as multis of at most these many ops
// and bytes of paths, deepest first.
inline constexpr std::size_t rest_delete_nodes_max = 100'000;
inline constexpr std::size_t rest_delete_batch_ops_max = 1'000;
inline constexpr std::size_t rest_delete_batch_bytes_max = 256 * 1024;
// GET /v1/sessions answers at most this many sessions a page, and this
// many ephemeral paths per session.
inline constexpr std::size_t http_sessions_page_max = 1'000;
inline constexpr std::size_t http_session_ephemerals_max = 1'000;
// GET /v1/metrics/history: one sample a second, ten minutes of them.
inline constexpr std::int64_t metrics_history_interval_ms = 1'000;
inline constexpr std::size_t metrics_history_samples_max = 600;
inline constexpr std::int64_t rest_session_idle_ms_max = 60'000;
// Timeout of a REST session: pings keep it while it is used; one left
// behind by a crash does not linger.
inline constexpr std::int32_t rest_session_timeout_ms = 30'000;
inline constexpr std::int64_t rest_ping_interval_ms = 5'000;
// A REST request not answered within this time gets 503 (its write may
// still apply, as a ZooKeeper client's after ConnectionLoss).
inline constexpr std::int64_t rest_request_ms_max = 15'000;

// ---------------------------------------------------------------------------
// Consensus (consensus/)
// ---------------------------------------------------------------------------

// Bytes of one encoded peer message, entries included.
inline constexpr std::size_t peer_message_bytes_max = 64 * 1024 * 1024;
// Entries carried by one AppendEntries message.
inline constexpr std::size_t append_entries_per_message_max = 4096;
// Bytes of entries carried by one AppendEntries message.
inline constexpr std::size_t append_entry_bytes_per_message_max = 4 * 1024 * 1024;
// AppendEntries messages in flight to one follower (pipelining window).
inline constexpr std::size_t append_inflight_messages_max = 256;
// Members of one cluster, voters and learners together.
inline constexpr std::size_t cluster_members_max = 64;
// Bytes of the opaque context one configuration change carries (coordd
// puts the member's server spec there: a host name of up to 253 bytes
// twice, ports and a role fit with room to spare).
inline constexpr std::size_t conf_change_context_bytes_max = 1024;
// Committed entries handed to the application in one Ready, in count and in
// bytes; the rest follow in the next Ready.
inline constexpr std::size_t ready_committed_entries_max = 65'536;
inline constexpr std::size_t ready_committed_bytes_max = 64 * 1024 * 1024;
// Bytes of one snapshot carried by an InstallSnapshot message (sent whole).
inline constexpr std::size_t snapshot_bytes_max = peer_message_bytes_max - 1024 * 1024;
// Bytes of snapshot data in one SnapshotChunk message: what a leader reads
// and a follower holds per chunk of a streamed snapshot, whatever its size.
inline constexpr std::size_t snapshot_chunk_bytes = 1024 * 1024;
// ReadIndex requests a follower has forwarded and not yet heard back about;
// past it the oldest is failed.
inline constexpr std::size_t forwarded_reads_max = 65'536;

// ---------------------------------------------------------------------------
// Storage and snapshots (coordd/io)
// ---------------------------------------------------------------------------

// The longest a snapshot may stop the apply loop.
inline constexpr std::int64_t snapshot_pause_ms_max = 50;
// While storage refuses writes, one ERROR line at most this often (each
// tick's retry fails too); it counts the failures in between.
inline constexpr std::int64_t storage_error_log_interval_ms = 10'000;
// Free space the log's file system keeps: a log write that finds less is
// refused before it starts (the server turns read-only until there is
// more), so that LMDB never meets a full disk halfway through a commit.
inline constexpr std::uint64_t log_disk_free_bytes_min_default = 16 * 1024 * 1024;
// After a snapshot fails, the next is tried no sooner than this.
inline constexpr std::int64_t snapshot_retry_interval_ms = 10'000;
// Entries read at a time when the log's terms are loaded at start.
inline constexpr std::size_t log_term_scan_batch_bytes = std::size_t{64} << 20;
// After a snapshot, the log entries it covers are dropped in chunks of at
// most this many entries and bytes, one LMDB transaction each on the
// storage thread, so that a log write queued meanwhile waits for one chunk
// at most, not for all the entries of the snapshot.
inline constexpr std::size_t log_compaction_chunk_entries = 4096;
inline constexpr std::size_t log_compaction_chunk_bytes = std::size_t{4} << 20;
// The LMDB log's map (sparse: costs nothing until used) by default.
inline constexpr std::size_t log_map_bytes_default = std::size_t{16} << 30;
// Log bytes appended between two releases of the LMDB map's resident
// pages (LmdbLogStore) under a steady stream of writes: about the most of
// the log that stays mapped into the process between snapshots. Each
// release costs the next writes a page fault for every page they read
// again, so a smaller figure trades CPU for memory (docs/PERFORMANCE.md).
inline constexpr std::size_t log_map_release_bytes = std::size_t{8} << 20;
// Once no log write came for this long, the storage thread releases the
// map's pages: a server at rest keeps none of its log resident.
inline constexpr std::int64_t log_map_idle_release_ms = 500;
// The log's journal (LogJournal): each log write is one record appended
// to it and made durable with one flush, where an LMDB commit takes two.
// Its records reach LMDB, in one transaction (a checkpoint), before more
// than this many bytes of them wait (or the map's bytes /
// log_journal_map_share, if smaller, so that a small map fails a write
// rather than hold a journal it cannot take in); the server checkpoints
// once half of it waits, and whenever log writes pause
// (log_map_idle_release_ms). LMDB keeps the pages of its largest
// transaction allocated for the next, so a larger figure costs about as
// much memory for good, for no measurable gain in CPU per write.
inline constexpr std::size_t log_journal_checkpoint_bytes = std::size_t{1} << 20;
inline constexpr std::size_t log_journal_map_share = 8;
// The journal's file is allocated this large when created (all it ever
// holds at once), so that a record appended to it changes no file size
// that its flush would also have to write.
inline constexpr std::size_t log_journal_preallocate_bytes = log_journal_checkpoint_bytes;
// A journal record's body; a larger one is damage, not a record.
inline constexpr std::size_t log_journal_record_bytes_max = std::size_t{1} << 30;
// Snapshot files kept: the one the log's record names and older ones.
inline constexpr std::size_t snapshot_files_kept = 2;
// Depth of the LMDB B-trees the log's start-up check walks; a deeper one
// is damaged (LMDB's own cursors stop at 32 levels).
inline constexpr std::size_t log_btree_depth_max = 32;

// ---------------------------------------------------------------------------
// Peer transport (coordd/io/peer_transport)
// ---------------------------------------------------------------------------

// Frames queued for one peer and not yet written, in count and in bytes: a
// slow or dead peer drops what does not fit (Raft retransmits). The bytes
// leave room for one largest message beside the pipelined appends.
inline constexpr std::size_t peer_send_queue_messages_max = 4096;
inline constexpr std::size_t peer_send_queue_bytes_max = peer_message_bytes_max + 32 * 1024 * 1024;
// Frames received from all peers and not yet taken by the core thread;
// past either bound the links stop reading (TCP pushes back to the sender).
inline constexpr std::size_t peer_inbox_messages_max = 8192;
inline constexpr std::size_t peer_inbox_bytes_max = 2 * peer_message_bytes_max;
// Bytes of frames gathered into one socket write.
inline constexpr std::size_t peer_write_batch_bytes_max = 1024 * 1024;
// Time from a dial (or an accept) to a finished handshake; a peer slower
// than this is refused.
inline constexpr std::int64_t peer_handshake_timeout_ms = 3'000;
// Connections accepted and not yet authenticated, held at once.
inline constexpr std::size_t peer_pending_handshakes_max = 64;
// Delay before dialing a peer again: doubles per failure between these
// bounds, with jitter, so restarted servers are not all dialed in step.
inline constexpr std::int64_t peer_reconnect_backoff_ms_min = 25;
inline constexpr std::int64_t peer_reconnect_backoff_ms_max = 1'000;
// A server dials a lower id itself after this long without a link to it
// (then again with the backoff above): the lower one may have restarted on
// a configuration that does not name this server, and would never dial.
inline constexpr std::int64_t peer_reverse_dial_ms = 2'000;
// Links from servers that passed the handshake but are not in this
// server's peer set (it may be behind on the membership), held at once.
inline constexpr std::size_t peer_unlisted_links_max = 16;
// A live link sends a ping this often (its pong gives the round trip) and
// is closed when nothing at all arrives on it for the idle timeout.
inline constexpr std::int64_t peer_ping_interval_ms = 200;
inline constexpr std::int64_t peer_idle_timeout_ms = 2'000;
// A second connection claiming a connected peer's id waits this long for
// the first to answer a ping: an answer means a duplicate id (refused),
// silence means the first was dead (replaced).
inline constexpr std::int64_t peer_duplicate_probe_ms = 500;
// Peer frames the core decodes and steps per turn before it lets client
// input in again.
inline constexpr std::size_t peer_frames_per_turn_max = 256;
// The cluster id, in bytes (sent in the clear in the handshake).
// Server ids of a cluster: 1 to this (local session ids carry the id in
// eight bits, as ZooKeeper's session ids do).
inline constexpr std::uint64_t node_id_max = 255;
inline constexpr std::size_t peer_cluster_id_bytes_max = 128;
// The shared cluster secret, in bytes: short secrets are guessable offline
// from one recorded handshake.
inline constexpr std::size_t peer_secret_bytes_min = 16;
inline constexpr std::size_t peer_secret_bytes_max = 4096;

// ---------------------------------------------------------------------------
// Daemons' HTTP (agent/: coord-sidecar, coord-healer)
// ---------------------------------------------------------------------------

// Connections a daemon's status server holds at once; more are closed at
// accept. Its callers are a load balancer's checks and a metrics scraper.
inline constexpr std::size_t agent_http_connections_max = 64;
// A connection that does not deliver a whole request, or take its reply,
// within this time is closed.
inline constexpr std::int64_t agent_http_idle_ms_max = 10'000;
// Body of one request a status server reads.
inline constexpr std::size_t agent_http_body_bytes_max = 64 * 1024;
// Body of one response the daemons' HTTP client reads (coordctl's admin
// calls, a sidecar's health checks).
inline constexpr std::size_t agent_http_response_bytes_max = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Shell (cli/)
// ---------------------------------------------------------------------------

// Lines kept in the shell's history, in memory and in the history file.
inline constexpr std::size_t cli_history_entries_max = 1'000;
// Bytes of one line the shell's editor or script reader accepts.
inline constexpr std::size_t cli_line_bytes_max = 64 * 1024;
// Znodes one recursive command (ls -R, deleteall, setAcl -R) visits.
inline constexpr std::size_t cli_tree_nodes_max = 1'000'000;
// Completion candidates shown for one tab.
inline constexpr std::size_t cli_completion_candidates_max = 200;
// Nested redo commands (redo of a redo ...).
inline constexpr std::size_t cli_redo_depth_max = 8;
// The longest timeout a timeout flag (-t, --connect-timeout-ms, ...) takes.
inline constexpr std::int64_t cli_timeout_ms_max = 3'600'000;
// How long the shell waits for its closeSession (quit, close, connect).
inline constexpr std::int64_t cli_close_ms_max = 2'000;
// One connection attempt of the shell, whatever the connect timeout: with
// several servers, a dead one must not hold up the others.
inline constexpr std::int64_t cli_connect_attempt_ms_max = 2'000;
// The getChildren behind a tab completion: a slow server must not freeze
// the line being typed.
inline constexpr std::int64_t cli_completion_request_ms_max = 2'000;

// ---------------------------------------------------------------------------
// Discovery sidecar (sidecar/)
// ---------------------------------------------------------------------------

// Time between two health checks, and the most one check may take.
inline constexpr std::int64_t sidecar_interval_ms_min = 10;
inline constexpr std::int64_t sidecar_interval_ms_max = 3'600'000;
inline constexpr std::int64_t sidecar_check_timeout_ms_min = 1;
inline constexpr std::int64_t sidecar_check_timeout_ms_max = 600'000;
// Consecutive passes (rise) or failures (fall) that change the state.
inline constexpr std::int64_t sidecar_threshold_max = 1'000;
// Services one sidecar watches, and templates it renders.
inline constexpr std::size_t sidecar_watches_max = 256;
inline constexpr std::size_t sidecar_templates_max = 64;
// Largest template file, and largest rendered file.
inline constexpr std::size_t sidecar_template_bytes_max = std::size_t{1} << 20;
inline constexpr std::size_t sidecar_rendered_bytes_max = std::size_t{16} << 20;
// Quiet time after a change before rendering, and the longest a burst of
// changes may hold a render back.
inline constexpr std::int64_t sidecar_debounce_ms_max = 600'000;
// A reload command that fails is run again after a pause that doubles
// from the first to at most the second.
inline constexpr std::int64_t sidecar_reload_retry_ms_min = 1'000;
inline constexpr std::int64_t sidecar_reload_retry_ms_max = 60'000;
// The most a reload command may run before it is killed (and counted failed).
inline constexpr std::int64_t sidecar_reload_timeout_ms_max = 600'000;
// Output of a check or reload command kept for the log line.
inline constexpr std::size_t sidecar_command_output_bytes_max = 512;
// On SIGTERM, the most the deregistration may wait for the servers.
inline constexpr std::int64_t sidecar_deregister_ms_max = 5'000;

// ---------------------------------------------------------------------------
// Benchmarks (bench/)
// ---------------------------------------------------------------------------

// coord-bench and coord-zk-load flags: sessions, keys, payload and run time.
inline constexpr std::int64_t bench_sessions_max = 10'000;
// coord-bench's idle-sessions mode: raw sessions on one thread, a
// descriptor each (and bench_spare_fds for the rest), spread over at most
// bench_source_addresses_max loopback addresses.
inline constexpr std::int64_t bench_idle_sessions_max = 1'000'000;
inline constexpr std::size_t bench_spare_fds = 256;
inline constexpr int bench_source_addresses_max = 254;
// coord-bench: libcoord runtimes (two threads each) the ops mode's sessions share.
inline constexpr int bench_runtimes_max = 64;
inline constexpr std::int64_t bench_keys_max = 10'000'000;
inline constexpr std::size_t bench_payload_bytes_max = std::size_t{1} << 20;
inline constexpr double bench_duration_s_max = 86'400.0;
// coord-bench: requests in flight per session; coord-zk-load keeps its own
// pipeline per socket and allows fewer.
inline constexpr std::int64_t bench_outstanding_per_session_max = 100'000;
inline constexpr std::int64_t bench_raw_outstanding_per_session_max = 10'000;
// coord-zk-load's run time.
inline constexpr double bench_raw_duration_s_max = 3'600.0;
// coord-bench: the session timeouts --session-timeout-ms accepts.
inline constexpr std::int64_t bench_session_timeout_ms_min = 1'000;
inline constexpr std::int64_t bench_session_timeout_ms_max = 600'000;
// How long a bench waits to connect, for one request, and for the watch
// event its own write fired.
inline constexpr std::int64_t bench_connect_ms_max = 20'000;
inline constexpr std::int64_t bench_request_ms_max = 30'000;
inline constexpr std::int64_t bench_watch_event_ms_max = 10'000;
// Session timeout that coord-zk-load and zk-c-bench request.
inline constexpr std::int64_t bench_raw_session_timeout_ms = 30'000;
inline constexpr std::int64_t bench_zk_c_session_timeout_ms = 10'000;
// coord-bench-raft: entries one simulated node keeps before it snapshots and
// compacts, so memory stays flat however long the run.
inline constexpr std::size_t bench_raft_log_entries_max = 200'000;

// ---------------------------------------------------------------------------
// Auto-healer (healer/)
// ---------------------------------------------------------------------------

// Bytes of a worker id (a node name under the workers path).
inline constexpr std::size_t healer_worker_id_bytes_max = 200;
// Workers one healer keeps alive (--count).
inline constexpr std::int64_t healer_workers_max = 10'000;
// --max-launches-per-min. The launch times of the last minute are kept in
// one znode's data (about 15 bytes each), well under its size limit.
inline constexpr std::int64_t healer_launches_per_min_max = 10'000;
// --grace-ms: how long a launched worker has to register.
inline constexpr std::int64_t healer_grace_ms_min = 100;
inline constexpr std::int64_t healer_grace_ms_max = 3'600'000;
// The crash-loop backoff after the first failed launch, and its cap.
inline constexpr std::int64_t healer_backoff_ms_default = 1'000;
inline constexpr std::int64_t healer_backoff_cap_ms_default = 60'000;
// Launch times read back from the history (at least the largest cap).
inline constexpr std::size_t healer_launch_history_max = 10'000;
// The longest the active healer goes without reading the workers path,
// whatever its watches say.
inline constexpr std::int64_t healer_poll_ms = 1'000;
// How long a wrapped child or a stopped launch has after SIGTERM before
// SIGKILL.
inline constexpr std::int64_t healer_stop_grace_ms = 5'000;
// A launch's process may start only this soon after its record was
// written: a healer paused longer than that may have been replaced.
inline constexpr std::int64_t healer_launch_fence_ms = 1'000;

// ---------------------------------------------------------------------------
// TLS (secure client port, HTTPS, libcoord)
// ---------------------------------------------------------------------------

// A TLS connection must finish its handshake within this time, whatever
// the protocol's own handshake limit: a stalled handshake holds OpenSSL
// state as well as a socket.
inline constexpr std::int64_t tls_handshake_ms_max = 5'000;
// Decrypted bytes one read of a TLS client connection takes at most: one
// TLS record's plaintext. Each TLS connection holds a buffer of this size
// (besides OpenSSL's own), unlike plain ones, which share one.
inline constexpr std::size_t tls_read_chunk_bytes = 16 * 1024;
// Certificate, key and CA files read at start and on SIGHUP: anything
// larger is not a PEM file an operator meant.
inline constexpr std::size_t tls_file_bytes_max = 1024 * 1024;
// Failed handshakes logged at most once per this interval (each counted).
inline constexpr std::int64_t tls_log_interval_ms = 10'000;

}  // namespace coord::limits
