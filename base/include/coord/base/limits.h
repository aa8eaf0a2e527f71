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
// Connections and sessions one server holds.
inline constexpr std::size_t connections_per_server_max = 60'000;
inline constexpr std::size_t sessions_per_server_max = 100'000;
// Watches registered by one connection.
inline constexpr std::size_t watches_per_connection_max = 1'000'000;
// Bytes of one four-letter word's answer: longer lists (wchc, wchp, cons,
// stat, dump) stop there with a truncation line, so that no word holds the
// core thread or memory in proportion to the number of watches or sessions.
inline constexpr std::size_t four_letter_word_bytes_max = 1024 * 1024;
// Bytes queued for a connection that does not read before it is cut off.
inline constexpr std::size_t connection_outbound_bytes_max = 64 * 1024 * 1024;

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
// Committed entries handed to the application in one Ready, in count and in
// bytes; the rest follow in the next Ready.
inline constexpr std::size_t ready_committed_entries_max = 65'536;
inline constexpr std::size_t ready_committed_bytes_max = 64 * 1024 * 1024;
// Bytes of one snapshot carried by an InstallSnapshot message (sent whole).
inline constexpr std::size_t snapshot_bytes_max = peer_message_bytes_max - 1024 * 1024;

// ---------------------------------------------------------------------------
// Storage and snapshots (coordd/io)
// ---------------------------------------------------------------------------

// The longest a snapshot may stop the apply loop.
inline constexpr std::int64_t snapshot_pause_ms_max = 50;

// ---------------------------------------------------------------------------
// Shell (cli/)
// ---------------------------------------------------------------------------

// Body of one admin API response coordctl reads.
inline constexpr std::size_t cli_http_body_bytes_max = 4 * 1024 * 1024;
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

}  // namespace coord::limits
