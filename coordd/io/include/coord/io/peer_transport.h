// The peer transport: TCP links between the servers of one cluster, which
// carry the frames of the consensus peer codec (consensus/codec.h).
//
// Links. One connection per pair of servers: the lower node id dials, the
// higher accepts, so two servers never dial each other at once. Before any
// frame flows, both sides run the handshake of peer_handshake.h: same
// cluster id, expected node ids, and with a secret a challenge-response
// proof in both directions. A dialer that loses its link dials again after
// an exponential backoff with jitter (limits::peer_reconnect_backoff_ms_*).
//
// Unlisted peers. A server restarted on an old configuration may not know
// a member added since, and only that member knows the current one. So, as
// Raft has servers answer messages without consulting their configuration,
// a server links with any node that passes the handshake, listed or not
// (up to limits::peer_unlisted_links_max of them). An unlisted link works
// like any other while it lasts; it is forgotten when it closes, and
// becomes an ordinary one when set_peers() names its node. For the same
// reason a server that has had no link to a lower id for
// limits::peer_reverse_dial_ms dials it itself: the lower one refuses
// (wrong direction) when it knows the dialer, and links otherwise.
// Each live link is pinged; the pong gives the round trip, and a link on
// which nothing arrives for the idle timeout is closed. A second connection
// claiming the id of a connected peer is refused when the first still
// answers a ping and replaces it otherwise (the peer restarted).
//
// Frames. send() takes one whole frame made by codec::encode and hands it
// to the transport's strand; the transport never decodes the message. Each
// peer's queue is bounded in frames and bytes: a frame for a peer that is
// not connected, or that does not fit, is dropped and counted (Raft
// retransmits). An arriving frame is checked (length, codec version,
// CRC-32C, sender and recipient ids against the authenticated pair) and put
// in the inbox; a bad frame closes that link, logged with the peer's
// address. The inbox is bounded too: past its bound the links stop reading
// until the core takes frames, so TCP pushes back to the senders.
//
// TLS. With a context source (options.tls), every link runs inside mutual
// TLS first: each side presents its certificate and requires one that
// chains to the context's CA (the cluster's own); the handshake above then
// runs inside it, unchanged. A connection whose TLS handshake fails is
// refused and logged like any other refusal. Names in the certificates are
// not checked: membership of the cluster is what the CA vouches for.
//
// Frame types 0xF0 and above are the transport's own (ping, pong) and never
// reach the inbox; the consensus codec must not use them.
//
// Threads. The transport lives on the io_context it is created on
// (coordd's loop; any number of threads may run it: the transport keeps to
// its own strand). send(), receive(), set_peers(), stats() and stop() may be
// called from any thread, typically the core that owns the Raft replica.
// The callbacks run on the io_context's threads, never after stop() has
// returned, and must not call stop(). Destroying the transport stops it;
// handlers still queued on the io_context keep its state alive until they
// run or the io_context is destroyed.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/status.h"

namespace boost::asio::ssl {
class context;
}

namespace coord::io {

struct PeerAddress {
  std::string host;  // a name or an IP address
  std::uint16_t port = 0;

  friend bool operator==(const PeerAddress&, const PeerAddress&) = default;
};

// The other members of the cluster; an entry for the server itself is ignored.
using PeerSet = std::map<NodeId, PeerAddress>;

struct PeerTransportOptions {
  NodeId self;
  // Both sides of a link must have the same cluster id (1 to
  // limits::peer_cluster_id_bytes_max bytes) and the same secret.
  std::string cluster_id;
  // Empty: peers are checked by cluster id and node id only, and a warning
  // says so at start. Otherwise limits::peer_secret_bytes_min or more.
  std::string secret;
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = any free port
  PeerSet peers;

  // Limits; the defaults are the production ones, tests shrink them.
  std::size_t send_queue_messages_max = limits::peer_send_queue_messages_max;
  std::size_t send_queue_bytes_max = limits::peer_send_queue_bytes_max;
  std::size_t inbox_messages_max = limits::peer_inbox_messages_max;
  std::size_t inbox_bytes_max = limits::peer_inbox_bytes_max;
  std::int64_t handshake_timeout_ms = limits::peer_handshake_timeout_ms;
  std::size_t pending_handshakes_max = limits::peer_pending_handshakes_max;
  std::int64_t reconnect_backoff_ms_min = limits::peer_reconnect_backoff_ms_min;
  std::int64_t reconnect_backoff_ms_max = limits::peer_reconnect_backoff_ms_max;
  std::int64_t reverse_dial_ms = limits::peer_reverse_dial_ms;
  std::size_t unlisted_links_max = limits::peer_unlisted_links_max;
  std::int64_t ping_interval_ms = limits::peer_ping_interval_ms;
  std::int64_t idle_timeout_ms = limits::peer_idle_timeout_ms;
  std::int64_t duplicate_probe_ms = limits::peer_duplicate_probe_ms;

  // On the io_context: the inbox received a frame after receive() had left
  // it empty. The consumer then calls receive() until it leaves the inbox
  // empty again (typically it posts that to the core).
  std::function<void()> on_incoming;
  // Network thread: the link to a peer came up (true) or went down (false).
  std::function<void(NodeId, bool)> on_link;
  // Network thread: the TLS context for a link made now (so that a reload
  // applies to the next link); empty: links are plain TCP.
  std::function<std::shared_ptr<boost::asio::ssl::context>()> tls;
};

enum class SendResult {
  Queued,
  NotConnected,  // dropped: no live link to that peer
  QueueFull,     // dropped: the peer's queue is at its bound
  UnknownPeer,   // dropped: not in the peer set
  BadFrame,      // refused: not a whole codec frame, or larger than any queue
};

struct IncomingFrame {
  NodeId from;
  std::string frame;  // one whole codec frame, checksum verified
};

struct PeerStats {
  NodeId id;
  PeerAddress address;  // empty for an unlisted peer
  bool listed = true;   // false: linked, but not in the peer set
  bool connected = false;
  std::int64_t rtt_us = -1;  // last ping round trip; -1 before the first pong
  std::uint64_t messages_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t messages_dropped = 0;  // not connected, queue full, or lost with a link
  std::uint64_t bytes_dropped = 0;
  std::uint64_t links_established = 0;
  std::uint64_t reconnects = 0;  // links established after the first
  std::uint64_t auth_failures = 0;
  std::size_t queued_messages = 0;  // waiting or being written now
  std::size_t queued_bytes = 0;
};

struct PeerTransportStats {
  bool authenticated = false;            // a cluster secret is in use
  std::vector<PeerStats> peers;          // by node id
  std::size_t connections = 0;           // links established now
  std::uint64_t handshakes_refused = 0;  // by this side or by the other
  std::uint64_t bad_frames = 0;
  std::size_t inbox_messages = 0;
  std::size_t inbox_bytes = 0;
};

// The delay before the next dial to a peer after `failures` failed
// attempts in a row: `min_ms` doubled per failure after the first, capped at
// `max_ms`, then a pick in its upper half chosen by `random` (any 64-bit
// random number), so servers that lost the same peer do not dial in step.
std::int64_t reconnect_delay_ms(int failures, std::int64_t min_ms, std::int64_t max_ms,
                                std::uint64_t random);

class PeerTransport {
 public:
  // Validates the options, binds the peer port, then accepts peers and
  // dials those with a higher id. Errors (a port in use, a short secret)
  // are returned and nothing runs.
  static Result<std::unique_ptr<PeerTransport>> create(boost::asio::io_context& io,
                                                       PeerTransportOptions options);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  std::uint16_t port() const;

  // Hands one codec frame to the peer's queue; never blocks.
  SendResult send(NodeId to, std::string frame);

  // Moves up to `max` frames from the inbox to `out`, in arrival order
  // (per peer: the order the peer sent them); returns how many.
  std::size_t receive(std::vector<IncomingFrame>& out, std::size_t max);

  // Replaces the peer set (a membership change): links to removed peers
  // close and their queues drop, new peers are dialed or accepted, a
  // changed address is dialed anew. Unlisted links stay; those the new set
  // names become ordinary links.
  void set_peers(PeerSet peers);

  PeerTransportStats stats() const;

  // Closes every link and the listening socket; idempotent. Once the
  // handlers it triggers have run, the transport holds no work on the
  // io_context.
  void stop();

 private:
  class Impl;
  explicit PeerTransport(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace coord::io
