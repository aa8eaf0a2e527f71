#include "coord/io/peer_transport.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <deque>
#include <mutex>
#include <random>
#include <set>

#include "coord/base/assert.h"
#include "coord/base/checksum.h"
#include "coord/base/log.h"
#include "coord/consensus/codec.h"
#include "coord/io/peer_handshake.h"

namespace coord::io {

namespace asio = boost::asio;
namespace hs = peer_handshake;
namespace codec = consensus::codec;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {

constexpr const char* component = "peer";
// Transport control frames share the codec's header; their types are above
// any consensus message type.
constexpr std::uint8_t frame_type_transport_min = 0xF0;
constexpr std::uint8_t frame_type_ping = 0xF0;
constexpr std::uint8_t frame_type_pong = 0xF1;
constexpr std::size_t control_body_bytes = 8;
// A consensus frame's body opens with the sender's and the recipient's ids.
constexpr std::size_t frame_ids_bytes = 16;
constexpr std::size_t read_chunk_bytes = 64 * 1024;

std::uint32_t le32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= std::uint32_t{static_cast<std::uint8_t>(p[i])} << (8 * i);
  return v;
}

std::uint64_t le64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= std::uint64_t{static_cast<std::uint8_t>(p[i])} << (8 * i);
  return v;
}

void put_le(char* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t frame_crc(std::string_view frame) {
  std::uint32_t crc = crc32c_extend(0, frame.data(), 8);
  return crc32c_extend(crc, frame.data() + codec::frame_header_bytes,
                       frame.size() - codec::frame_header_bytes);
}

std::string control_frame(std::uint8_t type, std::uint64_t value) {
  std::string f(codec::frame_header_bytes + control_body_bytes, '\0');
  put_le(f.data(), control_body_bytes, 4);
  f[4] = static_cast<char>(codec::peer_codec_version);
  f[5] = static_cast<char>(type);
  put_le(f.data() + codec::frame_header_bytes, value, 8);
  put_le(f.data() + 8, frame_crc(f), 4);
  return f;
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

std::int64_t ms_since(SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t).count();
}

std::string address_text(const PeerAddress& a) {
  return a.host + ":" + std::to_string(a.port);
}

}  // namespace

class PeerTransport::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, PeerTransportOptions options)
      : options_(std::move(options)),
        strand_(asio::make_strand(io)),
        acceptor_(strand_),
        resolver_(strand_),
        accept_retry_(strand_),
        jitter_(std::random_device{}()) {
    for (const auto& [id, address] : options_.peers)
      links_[id].address = address;
  }

  Status listen() {
    error_code ec;
    const auto address = asio::ip::make_address(options_.bind, ec);
    if (ec) return Status(ErrorCode::BadArguments, "bad peer bind address '" + options_.bind + "'");
    const tcp::endpoint ep(address, options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(ErrorCode::SystemError, "cannot listen for peers on " + options_.bind + ":" +
                                                std::to_string(options_.port) + ": " +
                                                ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    return Status();
  }

  void start() {
    asio::post(strand_, [self = shared_from_this()] {
      COORD_LOG_INFO(component, "node ", self->options_.self, " of cluster '",
                     self->options_.cluster_id, "' listening for peers on ", self->options_.bind,
                     ":", self->port_, ", ", self->options_.peers.size(), " peers");
      if (self->options_.secret.empty()) {
        COORD_LOG_WARN(component,
                       "no cluster secret: peers are not authenticated; anyone who reaches "
                       "the peer port can claim to be a member");
      }
      self->reconcile();
      self->accept();
    });
  }

  std::uint16_t port() const { return port_; }

  SendResult send(NodeId to, std::string frame) {
    if (frame.size() < codec::frame_header_bytes + frame_ids_bytes ||
        frame.size() > limits::peer_message_bytes_max ||
        frame.size() > options_.send_queue_bytes_max) {
      return SendResult::BadFrame;
    }
    bool kick = false;
    {
      std::lock_guard lock(mu_);
      auto it = links_.find(to);
      if (it == links_.end()) return SendResult::UnknownPeer;
      Link& l = it->second;
      if (!l.established || stopped_) {
        ++l.stats.messages_dropped;
        l.stats.bytes_dropped += frame.size();
        return SendResult::NotConnected;
      }
      if (l.queued_messages + 1 > options_.send_queue_messages_max ||
          l.queued_bytes + frame.size() > options_.send_queue_bytes_max) {
        ++l.stats.messages_dropped;
        l.stats.bytes_dropped += frame.size();
        return SendResult::QueueFull;
      }
      ++l.queued_messages;
      l.queued_bytes += frame.size();
      l.queue.push_back(std::move(frame));
      if (l.writer_idle && !l.kick_posted) {
        l.kick_posted = true;
        kick = true;
      }
    }
    if (kick) asio::post(strand_, [self = shared_from_this(), to] { self->kick(to); });
    return SendResult::Queued;
  }

  std::size_t receive(std::vector<IncomingFrame>& out, std::size_t max) {
    std::size_t n = 0;
    bool resume = false;
    {
      std::lock_guard lock(mu_);
      while (n < max && !inbox_.empty()) {
        inbox_bytes_ -= inbox_.front().frame.size();
        out.push_back(std::move(inbox_.front()));
        inbox_.pop_front();
        ++n;
      }
      if (inbox_.empty()) wake_armed_ = true;
      if (!paused_.empty() && !resume_posted_ && !inbox_full()) {
        resume_posted_ = true;
        resume = true;
      }
    }
    if (resume) asio::post(strand_, [self = shared_from_this()] { self->resume_paused(); });
    return n;
  }

  void set_peers(PeerSet peers) {
    peers.erase(options_.self);
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      for (auto it = links_.begin(); it != links_.end();) {
        if (peers.count(it->first) == 0 && it->second.listed) {
          it = links_.erase(it);
        } else {
          ++it;
        }
      }
      for (const auto& [id, address] : peers) {
        Link& l = links_[id];
        l.address = address;
        l.listed = true;
      }
    }
    asio::post(strand_, [self = shared_from_this()] { self->reconcile(); });
  }

  PeerTransportStats stats() const {
    PeerTransportStats s;
    s.authenticated = !options_.secret.empty();
    std::lock_guard lock(mu_);
    for (const auto& [id, l] : links_) {
      PeerStats p = l.stats;
      p.id = id;
      p.address = l.address;
      p.listed = l.listed;
      p.connected = l.established;
      p.queued_messages = l.queued_messages;
      p.queued_bytes = l.queued_bytes;
      s.peers.push_back(std::move(p));
    }
    s.connections = connections_;
    s.handshakes_refused = handshakes_refused_;
    s.bad_frames = bad_frames_;
    s.inbox_messages = inbox_.size();
    s.inbox_bytes = inbox_bytes_;
    return s;
  }

  void stop() {
    {
      // Waits for a callback in progress; none starts after this.
      std::lock_guard lock(callback_mu_);
      callbacks_on_ = false;
    }
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    asio::post(strand_, [self = shared_from_this()] { self->shut_down(); });
  }

 private:
  // One TCP connection to or from a peer. Touched only on the strand.
  struct Conn {
    enum class State {
      Connecting,      // dialer: resolving and connecting
      AwaitHello,      // acceptor
      AwaitChallenge,  // dialer
      AwaitProof,      // acceptor
      AwaitWelcome,    // dialer
      Probing,         // acceptor: the peer's id is connected already; asking the old link
      Established,
      Closing,  // a Refuse is being written
      Closed,
    };

    Conn(const asio::strand<asio::io_context::executor_type>& strand, hs::Role r)
        : socket(strand), deadline(strand), ping_timer(strand), probe_timer(strand), role(r) {}

    bool handshaking() const {
      return state != State::Established && state != State::Closing && state != State::Closed;
    }

    tcp::socket socket;
    // TLS links: the context (kept: a reload replaces the server's) and the
    // stream over `socket` that every read and write then goes through.
    std::shared_ptr<asio::ssl::context> tls_ctx;
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
    asio::steady_timer deadline;
    asio::steady_timer ping_timer;
    asio::steady_timer probe_timer;
    hs::Role role;
    State state = State::Connecting;
    std::string address;  // the other end, for logs
    NodeId peer;          // dialed, or claimed in the Hello
    bool counts_as_pending = false;
    hs::Nonce nonce_mine{};
    hs::Nonce nonce_theirs{};
    // Input: bytes read and not yet consumed start at rpos.
    std::string rbuf;
    std::size_t rpos = 0;
    bool reading = false;
    bool paused = false;  // the inbox is full; guarded by mu_ as well when set
    // Output: handshake messages first, then ping and pong, then frames.
    std::deque<std::string> control;
    bool ping_due = false;
    bool pong_due = false;
    std::uint64_t pong_value = 0;
    std::vector<std::string> batch;  // being written
    bool writing = false;
    SteadyClock::time_point last_heard;
    SteadyClock::time_point established_at;
    // Set on an established link while a newer connection claiming the same
    // peer waits for this one to answer a ping.
    std::weak_ptr<Conn> probe_for;
  };
  using ConnPtr = std::shared_ptr<Conn>;

  // What the strand keeps per peer.
  struct Peer {
    PeerAddress address;
    // The connection this side dials (being dialed or established), or
    // the one it accepted (established only).
    ConnPtr conn;
    std::unique_ptr<asio::steady_timer> retry;
    int failures = 0;
    bool listed = true;  // false: linked, but not in the peer set (no address)
  };

  // What the sender (the core) and the strand share per peer; guarded by mu_.
  struct Link {
    PeerAddress address;
    bool listed = true;  // false: an unlisted peer's link, forgotten when it closes
    bool established = false;
    std::deque<std::string> queue;
    std::size_t queued_messages = 0;  // the queue and the frames being written
    std::size_t queued_bytes = 0;
    bool writer_idle = true;  // the writer found the queue empty last time
    bool kick_posted = false;
    PeerStats stats;
  };

  bool link_established(NodeId id) {
    std::lock_guard lock(mu_);
    auto it = links_.find(id);
    return it != links_.end() && it->second.established;
  }

  bool dials(NodeId peer) const { return options_.self < peer; }

  bool inbox_full() const {
    return inbox_.size() >= options_.inbox_messages_max || inbox_bytes_ >= options_.inbox_bytes_max;
  }

  template <typename F>
  void with_link(NodeId id, F&& f) {
    std::lock_guard lock(mu_);
    if (auto it = links_.find(id); it != links_.end()) f(it->second);
  }

  void notify_incoming() {
    std::lock_guard lock(callback_mu_);
    if (callbacks_on_ && options_.on_incoming) options_.on_incoming();
  }

  void notify_link(NodeId id, bool up) {
    std::lock_guard lock(callback_mu_);
    if (callbacks_on_ && options_.on_link) options_.on_link(id, up);
  }

  // ---- membership ------------------------------------------------------------

  // Brings the strand's peers in line with the links (the peer set).
  void reconcile() {
    if (stopping_) return;
    PeerSet want;
    std::set<NodeId> unlisted;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, l] : links_) {
        if (l.listed) {
          want[id] = l.address;
        } else {
          unlisted.insert(id);
        }
      }
    }
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (want.count(it->first) != 0 || (!it->second.listed && unlisted.count(it->first) != 0)) {
        ++it;
        continue;
      }
      ConnPtr c = it->second.conn;
      const NodeId id = it->first;
      it = peers_.erase(it);
      if (c) close(c, "node " + std::to_string(id.value()) + " left the peer set");
    }
    for (const auto& [id, address] : want) {
      auto [it, added] = peers_.try_emplace(id);
      Peer& p = it->second;
      if (added) {
        p.address = address;
        p.retry = std::make_unique<asio::steady_timer>(strand_);
        first_contact(id);
        continue;
      }
      if (!p.listed) {
        // An unlisted link the peer set now names: it stays up, and is
        // redialed like any other once it closes.
        p.listed = true;
        p.address = address;
        if (!p.conn) first_contact(id);
        continue;
      }
      if (p.conn && p.conn->state == Conn::State::Established && !link_established(id)) {
        // Removed and added again before this ran: the link starts afresh.
        close(p.conn, "node " + std::to_string(id.value()) + " rejoined the peer set");
      }
      if (p.address == address) continue;
      p.address = address;
      if (dials(id) && p.conn) {
        // Dial the new address; closing schedules the redial.
        p.failures = 0;
        close(p.conn, "its address changed to " + address_text(address));
      }
    }
  }

  // A peer new to the peer set: the lower id dials now; the higher waits
  // for that dial, and dials itself only when none comes.
  void first_contact(NodeId id) {
    if (dials(id)) return dial(id);
    schedule_redial(id, true);
  }

  // ---- dialing ----------------------------------------------------------------

  void dial(NodeId id) {
    auto it = peers_.find(id);
    if (stopping_ || it == peers_.end() || it->second.conn || !it->second.listed) return;
    Peer& p = it->second;
    auto c = std::make_shared<Conn>(strand_, hs::Role::Dialer);
    c->peer = id;
    c->address = address_text(p.address);
    p.conn = c;
    conns_.insert(c);
    arm_deadline(c);
    resolver_.async_resolve(
        p.address.host, std::to_string(p.address.port),
        [self = shared_from_this(), c](error_code ec, tcp::resolver::results_type results) {
          if (c->state == Conn::State::Closed) return;
          if (ec) return self->close(c, "cannot resolve: " + ec.message());
          asio::async_connect(c->socket, results,
                              [self, c](error_code ec2, const tcp::endpoint& ep) {
                                if (c->state == Conn::State::Closed) return;
                                if (ec2) return self->close(c, "cannot connect: " + ec2.message());
                                self->connected(c, ep);
                              });
        });
  }

  void connected(const ConnPtr& c, const tcp::endpoint& ep) {
    c->address = ep.address().to_string() + ":" + std::to_string(ep.port());
    error_code ignored;
    c->socket.set_option(tcp::no_delay(true), ignored);
    if (start_tls(c, asio::ssl::stream_base::client, [this, c] { send_hello(c); })) return;
    send_hello(c);
  }

  // With TLS on: starts the TLS handshake of `c` and runs `next` once it
  // succeeded (a failure refuses the connection); true. False without TLS.
  template <class Next>
  bool start_tls(const ConnPtr& c, asio::ssl::stream_base::handshake_type type, Next next) {
    if (!options_.tls) return false;
    c->tls_ctx = options_.tls();
    if (!c->tls_ctx) return false;
    c->tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(c->socket, *c->tls_ctx);
    c->tls->async_handshake(
        type, [self = shared_from_this(), c, next = std::move(next)](error_code ec) {
          if (c->state == Conn::State::Closed) return;
          if (ec) {
            const std::string why = "TLS handshake failed: " + ec.message();
            COORD_LOG_WARN(component, "refusing peer connection ", self->describe(c), ": ", why);
            self->count_refusal();
            return self->close(c, why);
          }
          next();
        });
    return true;
  }

  void send_hello(const ConnPtr& c) {
    c->nonce_mine = hs::fresh_nonce();
    hs::Hello hello;
    hello.authenticated = !options_.secret.empty();
    hello.dialer = options_.self;
    hello.acceptor = c->peer;
    hello.nonce = c->nonce_mine;
    hello.cluster_id = options_.cluster_id;
    c->control.push_back(hs::encode(hello));
    c->state = Conn::State::AwaitChallenge;
    write_next(c);
    read_more(c);
  }

  // Arms the next dial to a listed peer: after the backoff when this side
  // dials it, and after peer_reverse_dial_ms more when it should dial this
  // side (it may not know this server).
  void schedule_redial(NodeId id, bool link_was_healthy) {
    auto it = peers_.find(id);
    if (stopping_ || it == peers_.end() || !it->second.listed) return;
    Peer& p = it->second;
    p.failures = link_was_healthy ? 0 : std::min(p.failures + 1, 30);
    std::int64_t delay = reconnect_delay_ms(p.failures, options_.reconnect_backoff_ms_min,
                                            options_.reconnect_backoff_ms_max, jitter_());
    if (!dials(id)) delay += options_.reverse_dial_ms;
    p.retry->expires_after(std::chrono::milliseconds(delay));
    p.retry->async_wait([self = shared_from_this(), id](error_code ec) {
      if (!ec) self->dial(id);
    });
  }

  // ---- accepting --------------------------------------------------------------

  void accept() {
    if (stopping_) return;
    auto c = std::make_shared<Conn>(strand_, hs::Role::Acceptor);
    acceptor_.async_accept(c->socket, [self = shared_from_this(), c](error_code ec) {
      if (self->stopping_ || ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors, say: try again shortly instead of spinning.
        COORD_LOG_WARN(component, "cannot accept a peer connection: ", ec.message());
        self->accept_retry_.expires_after(
            std::chrono::milliseconds(self->options_.reconnect_backoff_ms_max));
        self->accept_retry_.async_wait([self](error_code ec2) {
          if (!ec2) self->accept();
        });
        return;
      }
      self->accepted(c);
      self->accept();
    });
  }

  void accepted(const ConnPtr& c) {
    error_code ec;
    const auto ep = c->socket.remote_endpoint(ec);
    c->address =
        ec ? std::string("unknown") : ep.address().to_string() + ":" + std::to_string(ep.port());
    conns_.insert(c);
    c->socket.set_option(tcp::no_delay(true), ec);
    if (pending_ >= options_.pending_handshakes_max) {
      arm_deadline(c);
      return refuse(c, hs::Refusal::Busy, "");
    }
    ++pending_;
    c->counts_as_pending = true;
    c->state = Conn::State::AwaitHello;
    arm_deadline(c);
    if (start_tls(c, asio::ssl::stream_base::server, [this, c] { read_more(c); })) return;
    read_more(c);
  }

  void arm_deadline(const ConnPtr& c) {
    c->deadline.expires_after(std::chrono::milliseconds(options_.handshake_timeout_ms));
    c->deadline.async_wait([self = shared_from_this(), c](error_code ec) {
      if (ec || c->state == Conn::State::Established || c->state == Conn::State::Closed) return;
      const std::string why = "no finished handshake within " +
                              std::to_string(self->options_.handshake_timeout_ms) + " ms";
      if (c->state == Conn::State::Connecting || c->state == Conn::State::Closing) {
        return self->close(c, why);
      }
      COORD_LOG_WARN(component, "refusing peer connection ", self->describe(c), ": ", why);
      self->count_refusal();
      self->close(c, why);
    });
  }

  // ---- reading ----------------------------------------------------------------

  void read_more(const ConnPtr& c) {
    if (c->reading || c->paused || c->state == Conn::State::Closing ||
        c->state == Conn::State::Closed) {
      return;
    }
    if (c->rpos == c->rbuf.size()) {
      c->rbuf.clear();
      c->rpos = 0;
    } else if (c->rpos > 0 && c->rpos >= c->rbuf.size() / 2) {
      c->rbuf.erase(0, c->rpos);
      c->rpos = 0;
    }
    const std::size_t old = c->rbuf.size();
    c->rbuf.resize(old + read_chunk_bytes);
    c->reading = true;
    auto done = [self = shared_from_this(), c, old](error_code ec, std::size_t n) {
      c->reading = false;
      c->rbuf.resize(old + (ec ? 0 : n));
      if (c->state == Conn::State::Closed) return;
      if (ec) {
        return self->close(
            c, ec == asio::error::eof ? std::string("closed by the peer") : ec.message());
      }
      c->last_heard = SteadyClock::now();
      self->process(c);
    };
    const auto into = asio::buffer(c->rbuf.data() + old, read_chunk_bytes);
    if (c->tls) {
      c->tls->async_read_some(into, std::move(done));
    } else {
      c->socket.async_read_some(into, std::move(done));
    }
  }

  // Consumes what is buffered: handshake messages, then frames.
  void process(const ConnPtr& c) {
    while (!c->paused) {
      const auto st = c->state;
      if (st == Conn::State::Closing || st == Conn::State::Closed) return;
      const std::string_view avail(c->rbuf.data() + c->rpos, c->rbuf.size() - c->rpos);
      if (st == Conn::State::Established) {
        if (avail.size() < codec::frame_header_bytes) break;
        auto size = codec::frame_size(avail);
        if (!size.ok()) return bad_frame(c, size.status().message());
        if (avail.size() < *size) break;
        c->rpos += *size;
        handle_frame(c, avail.substr(0, *size));
        continue;
      }
      if (avail.empty()) break;
      const hs::Scan s = hs::scan(avail);
      using S = hs::Scan::State;
      if (s.state == S::Incomplete) break;
      if (s.state == S::BadMagic) {
        // Not a coord peer (a port scan, a client at the wrong port): it
        // would not understand a Refuse.
        COORD_LOG_WARN(component, "refusing peer connection ", describe(c),
                       ": not the coord peer protocol");
        count_refusal();
        return close(c, "not the coord peer protocol");
      }
      if (s.state == S::BadVersion) {
        return refuse(c, hs::Refusal::Version,
                      "handshake version " + std::to_string(static_cast<std::uint8_t>(avail[4])));
      }
      if (s.state == S::BadLength) return refuse(c, hs::Refusal::Malformed, "oversized message");
      auto m = hs::decode(avail.substr(0, s.size));
      c->rpos += s.size;
      if (!m.ok()) return refuse(c, hs::Refusal::Malformed, m.status().message());
      handle_handshake(c, *m);
    }
    read_more(c);
  }

  void handle_handshake(const ConnPtr& c, const hs::Message& m) {
    if (const auto* r = std::get_if<hs::Refuse>(&m)) {
      if (r->reason == hs::Refusal::WrongDirection) {
        // This side's reverse dial reached a peer that knows it (routine).
        COORD_LOG_DEBUG(component, "peer ", describe(c),
                        " refused the handshake: ", hs::to_string(r->reason));
      } else {
        COORD_LOG_WARN(component, "peer ", describe(c),
                       " refused the handshake: ", hs::to_string(r->reason));
      }
      count_refusal();
      if (r->reason == hs::Refusal::BadProof || r->reason == hs::Refusal::ClusterMismatch ||
          r->reason == hs::Refusal::AuthMismatch) {
        if (c->peer != NodeId()) with_link(c->peer, [](Link& l) { ++l.stats.auth_failures; });
      }
      return close(c, "refused by the peer");
    }
    const bool secret = !options_.secret.empty();
    switch (c->state) {
      case Conn::State::AwaitHello: {
        const auto* h = std::get_if<hs::Hello>(&m);
        if (h == nullptr) return refuse(c, hs::Refusal::Malformed, "expected a hello");
        c->peer = h->dialer;
        if (h->cluster_id != options_.cluster_id) {
          return refuse(c, hs::Refusal::ClusterMismatch, "cluster '" + h->cluster_id + "'");
        }
        if (h->authenticated != secret) {
          return refuse(c, hs::Refusal::AuthMismatch,
                        secret ? "the peer has no cluster secret" : "this server has none");
        }
        if (h->acceptor != options_.self) {
          return refuse(c, hs::Refusal::WrongNode,
                        "it dialed node " + std::to_string(h->acceptor.value()));
        }
        if (h->dialer == options_.self) {
          return refuse(c, hs::Refusal::DuplicateNode, "it claims this server's own id");
        }
        const auto known = peers_.find(h->dialer);
        if (known == peers_.end()) {
          if (refused_as_unlisted(c)) return;
        } else if (known->second.listed && !(h->dialer < options_.self)) {
          return refuse(c, hs::Refusal::WrongDirection, "");
        }
        c->nonce_theirs = h->nonce;
        c->nonce_mine = hs::fresh_nonce();
        hs::Challenge ch;
        ch.authenticated = secret;
        ch.acceptor = options_.self;
        ch.dialer = c->peer;
        ch.nonce = c->nonce_mine;
        ch.proof = hs::prove(hs::Role::Acceptor, options_.secret, options_.cluster_id, c->peer,
                             options_.self, c->nonce_theirs, c->nonce_mine);
        c->control.push_back(hs::encode(ch));
        c->state = Conn::State::AwaitProof;
        return write_next(c);
      }
      case Conn::State::AwaitProof: {
        const auto* p = std::get_if<hs::ProofMessage>(&m);
        if (p == nullptr) return refuse(c, hs::Refusal::Malformed, "expected a proof");
        const hs::Proof expected =
            hs::prove(hs::Role::Dialer, options_.secret, options_.cluster_id, c->peer,
                      options_.self, c->nonce_theirs, c->nonce_mine);
        if (!hs::same_proof(expected, p->proof)) {
          with_link(c->peer, [](Link& l) { ++l.stats.auth_failures; });
          return refuse(c, hs::Refusal::BadProof, "");
        }
        auto it = peers_.find(c->peer);
        if (it == peers_.end()) {
          if (refused_as_unlisted(c)) return;
          it = add_unlisted(c->peer);
        }
        ConnPtr old = it->second.conn;
        if (old && old->state == Conn::State::Established) {
          if (old->probe_for.lock()) {
            return refuse(c, hs::Refusal::DuplicateNode, "another connection claims it already");
          }
          return start_probe(old, c);
        }
        return establish(c);
      }
      case Conn::State::AwaitChallenge: {
        const auto* ch = std::get_if<hs::Challenge>(&m);
        if (ch == nullptr) return refuse(c, hs::Refusal::Malformed, "expected a challenge");
        if (ch->acceptor != c->peer || ch->dialer != options_.self) {
          return refuse(c, hs::Refusal::WrongNode,
                        "it answers as node " + std::to_string(ch->acceptor.value()));
        }
        if (ch->authenticated != secret) {
          return refuse(c, hs::Refusal::AuthMismatch,
                        secret ? "the peer has no cluster secret" : "this server has none");
        }
        const hs::Proof expected =
            hs::prove(hs::Role::Acceptor, options_.secret, options_.cluster_id, options_.self,
                      c->peer, c->nonce_mine, ch->nonce);
        if (!hs::same_proof(expected, ch->proof)) {
          with_link(c->peer, [](Link& l) { ++l.stats.auth_failures; });
          return refuse(c, hs::Refusal::BadProof, "");
        }
        c->nonce_theirs = ch->nonce;
        hs::ProofMessage proof;
        proof.proof = hs::prove(hs::Role::Dialer, options_.secret, options_.cluster_id,
                                options_.self, c->peer, c->nonce_mine, c->nonce_theirs);
        c->control.push_back(hs::encode(proof));
        c->state = Conn::State::AwaitWelcome;
        return write_next(c);
      }
      case Conn::State::AwaitWelcome:
        if (!std::holds_alternative<hs::Welcome>(m)) {
          return refuse(c, hs::Refusal::Malformed, "expected a welcome");
        }
        return establish(c);
      default:
        return refuse(c, hs::Refusal::Malformed, "a message out of turn");
    }
  }

  // A newer connection proved it is `old->peer` while `old` is established:
  // either the peer restarted and `old` is dead without knowing it, or two
  // servers run with one id. A ping on `old` tells which.
  void start_probe(const ConnPtr& old, const ConnPtr& newer) {
    newer->state = Conn::State::Probing;
    old->probe_for = newer;
    old->ping_due = true;
    write_next(old);
    old->probe_timer.expires_after(std::chrono::milliseconds(options_.duplicate_probe_ms));
    old->probe_timer.async_wait([self = shared_from_this(), old](error_code ec) {
      if (ec || old->state != Conn::State::Established || !old->probe_for.lock()) return;
      self->close(old, "no answer to a ping while a new connection claims its id");
    });
  }

  void handle_frame(const ConnPtr& c, std::string_view f) {
    if (frame_crc(f) != le32(f.data() + 8)) return bad_frame(c, "checksum mismatch");
    const auto type = static_cast<std::uint8_t>(f[5]);
    const std::string_view body = f.substr(codec::frame_header_bytes);
    if (type >= frame_type_transport_min) {
      if (body.size() != control_body_bytes) return bad_frame(c, "control frame length");
      const std::uint64_t value = le64(body.data());
      if (type == frame_type_ping) {
        c->pong_due = true;
        c->pong_value = value;
        return write_next(c);
      }
      if (type == frame_type_pong) return pong(c, value);
      return bad_frame(c, "unknown transport frame type " + std::to_string(type));
    }
    if (body.size() < frame_ids_bytes) return bad_frame(c, "frame too short for its ids");
    const NodeId from(le64(body.data()));
    const NodeId to(le64(body.data() + 8));
    if (from != c->peer) {
      return bad_frame(c, "a frame from node " + std::to_string(from.value()) +
                              " on the link of node " + std::to_string(c->peer.value()));
    }
    if (to != options_.self) {
      return bad_frame(c, "a frame for node " + std::to_string(to.value()));
    }
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (auto it = links_.find(c->peer); it != links_.end()) {
        ++it->second.stats.messages_received;
        it->second.stats.bytes_received += f.size();
      }
      inbox_.push_back(IncomingFrame{from, std::string(f)});
      inbox_bytes_ += f.size();
      wake = wake_armed_;
      wake_armed_ = false;
      if (inbox_full()) {
        // Read no more until the core takes frames: TCP then pushes back.
        c->paused = true;
        paused_.push_back(c);
      }
    }
    if (wake) notify_incoming();
  }

  void pong(const ConnPtr& c, std::uint64_t sent_us) {
    const std::int64_t rtt = now_us() - static_cast<std::int64_t>(sent_us);
    if (rtt >= 0) with_link(c->peer, [rtt](Link& l) { l.stats.rtt_us = rtt; });
    if (auto newer = c->probe_for.lock()) {
      c->probe_for.reset();
      c->probe_timer.cancel();
      if (newer->state == Conn::State::Probing) {
        refuse(newer, hs::Refusal::DuplicateNode,
               "node " + std::to_string(c->peer.value()) + " is connected from " + c->address +
                   " and answers");
      }
    }
  }

  void resume_paused() {
    std::vector<std::weak_ptr<Conn>> paused;
    {
      std::lock_guard lock(mu_);
      paused.swap(paused_);
      resume_posted_ = false;
    }
    for (auto& w : paused) {
      ConnPtr c = w.lock();
      if (!c || c->state == Conn::State::Closed) continue;
      c->paused = false;
      process(c);
    }
  }

  // ---- writing ----------------------------------------------------------------

  void kick(NodeId id) {
    with_link(id, [](Link& l) { l.kick_posted = false; });
    auto it = peers_.find(id);
    if (it == peers_.end() || !it->second.conn) return;
    if (it->second.conn->state == Conn::State::Established) write_next(it->second.conn);
  }

  void write_next(const ConnPtr& c) {
    if (c->writing || c->state == Conn::State::Closed) return;
    std::vector<std::string> batch;
    for (auto& m : c->control)
      batch.push_back(std::move(m));
    c->control.clear();
    std::size_t frames = 0;
    std::size_t bytes = 0;
    if (c->state == Conn::State::Established) {
      if (c->ping_due)
        batch.push_back(control_frame(frame_type_ping, static_cast<std::uint64_t>(now_us())));
      if (c->pong_due) batch.push_back(control_frame(frame_type_pong, c->pong_value));
      c->ping_due = false;
      c->pong_due = false;
      std::lock_guard lock(mu_);
      if (auto it = links_.find(c->peer); it != links_.end()) {
        Link& l = it->second;
        while (!l.queue.empty() && (frames == 0 || bytes + l.queue.front().size() <=
                                                       limits::peer_write_batch_bytes_max)) {
          bytes += l.queue.front().size();
          ++frames;
          batch.push_back(std::move(l.queue.front()));
          l.queue.pop_front();
        }
        l.writer_idle = frames == 0;
      }
    }
    if (batch.empty()) {
      if (c->state == Conn::State::Closing) close(c, "refused");
      return;
    }
    c->writing = true;
    c->batch = std::move(batch);
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(c->batch.size());
    for (const auto& b : c->batch)
      buffers.push_back(asio::buffer(b));
    auto done = [self = shared_from_this(), c, frames, bytes](error_code ec, std::size_t) {
      c->writing = false;
      c->batch.clear();
      // Closing reset the queue's accounting already.
      if (c->state == Conn::State::Closed) return;
      if (ec) return self->close(c, "write failed: " + ec.message());
      if (frames > 0) {
        self->with_link(c->peer, [frames, bytes](Link& l) {
          l.queued_messages -= frames;
          l.queued_bytes -= bytes;
          l.stats.messages_sent += frames;
          l.stats.bytes_sent += bytes;
        });
      }
      self->write_next(c);
    };
    if (c->tls) {
      asio::async_write(*c->tls, buffers, std::move(done));
    } else {
      asio::async_write(c->socket, buffers, std::move(done));
    }
  }

  // ---- unlisted peers ---------------------------------------------------------

  std::size_t unlisted_links() const {
    std::size_t n = 0;
    for (const auto& [id, p] : peers_)
      n += p.listed ? 0 : 1;
    return n;
  }

  // Refuses `c`, a node not in the peer set, when the unlisted links are
  // at their bound; true then.
  bool refused_as_unlisted(const ConnPtr& c) {
    const std::size_t n = unlisted_links();
    if (n < options_.unlisted_links_max) return false;
    refuse(c, hs::Refusal::UnknownNode, std::to_string(n) + " unlisted links already");
    return true;
  }

  // A node that passed the handshake without being in the peer set. Should
  // set_peers() have named it meanwhile, it is listed already and the next
  // reconcile() finds it in place.
  std::map<NodeId, Peer>::iterator add_unlisted(NodeId id) {
    Peer p;
    p.retry = std::make_unique<asio::steady_timer>(strand_);
    {
      std::lock_guard lock(mu_);
      auto [l, added] = links_.try_emplace(id);
      if (added) l->second.listed = false;
      p.listed = l->second.listed;
      p.address = l->second.address;
    }
    if (!p.listed) {
      COORD_LOG_INFO(component, "node ", id,
                     " is not in this server's peer set: linking with it unlisted");
    }
    return peers_.emplace(id, std::move(p)).first;
  }

  // The link of an unlisted peer closed: nothing of it is kept.
  void forget_unlisted(NodeId id) {
    {
      std::lock_guard lock(mu_);
      auto l = links_.find(id);
      // Named by set_peers() meanwhile: reconcile() takes it over.
      if (l != links_.end() && l->second.listed) return;
      if (l != links_.end()) links_.erase(l);
    }
    peers_.erase(id);
  }

  // ---- life and death of a link -----------------------------------------------

  void establish(const ConnPtr& c) {
    auto it = peers_.find(c->peer);
    if (it != peers_.end() && it->second.conn && it->second.conn != c) {
      if (it->second.conn->state == Conn::State::Established) {
        // The peer linked the other way while this dial was under way.
        return close(c, "linked already");
      }
      // A dial under way while the peer's own connection made it first.
      ConnPtr dialing = std::move(it->second.conn);
      close(dialing, "linked the other way");
      it = peers_.find(c->peer);
    }
    bool known = false;
    if (it != peers_.end()) {
      std::lock_guard lock(mu_);
      if (auto l = links_.find(c->peer); l != links_.end()) {
        known = true;
        l->second.established = true;
        l->second.writer_idle = true;
        ++l->second.stats.links_established;
        if (l->second.stats.links_established > 1) ++l->second.stats.reconnects;
        ++connections_;
      }
    }
    // Removed from the peer set during the handshake.
    if (!known) return close(c, "not in the peer set any more");
    c->deadline.cancel();
    if (c->counts_as_pending) {
      c->counts_as_pending = false;
      --pending_;
    }
    c->state = Conn::State::Established;
    c->established_at = SteadyClock::now();
    c->last_heard = c->established_at;
    it->second.conn = c;
    if (c->role == hs::Role::Acceptor) c->control.push_back(hs::encode(hs::Welcome{}));
    COORD_LOG_INFO(component, "link to node ", c->peer, " at ", c->address, " up (",
                   options_.secret.empty() ? "not authenticated" : "authenticated", ")");
    notify_link(c->peer, true);
    schedule_ping(c);
    write_next(c);
  }

  void schedule_ping(const ConnPtr& c) {
    c->ping_timer.expires_after(std::chrono::milliseconds(options_.ping_interval_ms));
    c->ping_timer.async_wait([self = shared_from_this(), c](error_code ec) {
      if (ec || c->state != Conn::State::Established) return;
      // While the inbox is full this side reads nothing: the silence is
      // its own, not the peer's.
      if (c->paused) c->last_heard = SteadyClock::now();
      const std::int64_t silent = ms_since(c->last_heard);
      if (silent > self->options_.idle_timeout_ms) {
        return self->close(c, "nothing heard for " + std::to_string(silent) + " ms");
      }
      c->ping_due = true;
      self->write_next(c);
      self->schedule_ping(c);
    });
  }

  void refuse(const ConnPtr& c, hs::Refusal reason, const std::string& detail) {
    if (reason == hs::Refusal::WrongDirection) {
      // A higher id's reverse dial while this side dials it (routine).
      COORD_LOG_INFO(component, "refusing peer connection ", describe(c), ": ",
                     hs::to_string(reason));
    } else {
      COORD_LOG_WARN(component, "refusing peer connection ", describe(c), ": ",
                     hs::to_string(reason), detail.empty() ? "" : " (", detail,
                     detail.empty() ? "" : ")");
    }
    count_refusal();
    c->control.push_back(hs::encode(hs::Refuse{reason}));
    c->state = Conn::State::Closing;
    write_next(c);
  }

  void bad_frame(const ConnPtr& c, const std::string& what) {
    COORD_LOG_WARN(component, "closing the link to node ", c->peer, " at ", c->address,
                   ": bad frame: ", what);
    {
      std::lock_guard lock(mu_);
      ++bad_frames_;
    }
    close(c, "bad frame");
  }

  // By value: the caller's pointer may be the one this resets.
  void close(ConnPtr c, const std::string& why) {
    if (c->state == Conn::State::Closed) return;
    const auto was = c->state;
    c->state = Conn::State::Closed;
    error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
    c->deadline.cancel();
    c->ping_timer.cancel();
    c->probe_timer.cancel();
    conns_.erase(c);
    if (c->counts_as_pending) {
      c->counts_as_pending = false;
      --pending_;
    }
    ConnPtr newer = c->probe_for.lock();
    c->probe_for.reset();
    auto it = peers_.find(c->peer);
    const bool current = it != peers_.end() && it->second.conn == c;
    if (current) it->second.conn.reset();
    bool healthy = false;
    if (was == Conn::State::Established) {
      healthy = ms_since(c->established_at) >= options_.reconnect_backoff_ms_max;
      {
        std::lock_guard lock(mu_);
        --connections_;
        if (auto l = links_.find(c->peer); l != links_.end() && current) {
          Link& link = l->second;
          link.established = false;
          // What was queued for this link is lost with it (Raft resends).
          link.stats.messages_dropped += link.queued_messages;
          link.stats.bytes_dropped += link.queued_bytes;
          link.queue.clear();
          link.queued_messages = 0;
          link.queued_bytes = 0;
          link.writer_idle = true;
        }
      }
      COORD_LOG_INFO(component, "link to node ", c->peer, " at ", c->address, " down: ", why);
      notify_link(c->peer, false);
    } else if (c->role == hs::Role::Dialer) {
      COORD_LOG_DEBUG(component, "dialing node ", c->peer, " at ", c->address, " failed: ", why);
    }
    if (newer && newer->state == Conn::State::Probing) establish(newer);
    if (!current) return;
    it = peers_.find(c->peer);
    if (it == peers_.end() || it->second.conn) return;  // a newer connection took over
    if (it->second.listed) return schedule_redial(c->peer, healthy);
    forget_unlisted(c->peer);
  }

  void shut_down() {
    stopping_ = true;
    error_code ignored;
    acceptor_.close(ignored);
    resolver_.cancel();
    accept_retry_.cancel();
    for (auto& [id, p] : peers_)
      p.retry->cancel();
    const std::set<ConnPtr> conns = conns_;
    for (const auto& c : conns)
      close(c, "stopping");
    peers_.clear();
    COORD_LOG_INFO(component, "node ", options_.self, " stopped its peer transport");
  }

  void count_refusal() {
    std::lock_guard lock(mu_);
    ++handshakes_refused_;
  }

  std::string describe(const ConnPtr& c) const {
    std::string s = "from " + c->address;
    if (c->role == hs::Role::Dialer) s = "to " + c->address;
    if (c->peer != NodeId()) s += " (node " + std::to_string(c->peer.value()) + ")";
    return s;
  }

  const PeerTransportOptions options_;
  asio::strand<asio::io_context::executor_type> strand_;
  std::uint16_t port_ = 0;

  // Strand only.
  tcp::acceptor acceptor_;
  tcp::resolver resolver_;
  asio::steady_timer accept_retry_;
  std::map<NodeId, Peer> peers_;
  std::set<ConnPtr> conns_;
  std::size_t pending_ = 0;
  bool stopping_ = false;
  std::mt19937_64 jitter_;

  // Shared with the caller's threads.
  mutable std::mutex mu_;
  std::map<NodeId, Link> links_;
  std::deque<IncomingFrame> inbox_;
  std::size_t inbox_bytes_ = 0;
  bool wake_armed_ = true;
  std::vector<std::weak_ptr<Conn>> paused_;
  bool resume_posted_ = false;
  bool stopped_ = false;
  std::size_t connections_ = 0;
  std::uint64_t handshakes_refused_ = 0;
  std::uint64_t bad_frames_ = 0;

  std::mutex callback_mu_;
  bool callbacks_on_ = true;
};

std::int64_t reconnect_delay_ms(int failures, std::int64_t min_ms, std::int64_t max_ms,
                                std::uint64_t random) {
  COORD_ASSERT(min_ms > 0 && max_ms >= min_ms, "bad backoff bounds");
  std::int64_t delay = min_ms;
  for (int i = 1; i < failures && delay < max_ms; ++i)
    delay *= 2;
  delay = std::min(delay, max_ms);
  const std::int64_t low = delay / 2;
  return low + static_cast<std::int64_t>(random % static_cast<std::uint64_t>(delay - low + 1));
}

PeerTransport::PeerTransport(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

PeerTransport::~PeerTransport() {
  impl_->stop();
}

Result<std::unique_ptr<PeerTransport>> PeerTransport::create(asio::io_context& io,
                                                             PeerTransportOptions options) {
  if (options.self == NodeId()) return Status(ErrorCode::BadArguments, "the node id must not be 0");
  if (options.cluster_id.empty() || options.cluster_id.size() > limits::peer_cluster_id_bytes_max) {
    return Status(ErrorCode::BadArguments, "the cluster id must have 1 to " +
                                               std::to_string(limits::peer_cluster_id_bytes_max) +
                                               " bytes");
  }
  if (!options.secret.empty() && (options.secret.size() < limits::peer_secret_bytes_min ||
                                  options.secret.size() > limits::peer_secret_bytes_max)) {
    return Status(ErrorCode::BadArguments,
                  "the cluster secret must have " + std::to_string(limits::peer_secret_bytes_min) +
                      " to " + std::to_string(limits::peer_secret_bytes_max) + " bytes");
  }
  if (options.send_queue_messages_max == 0 || options.inbox_messages_max == 0 ||
      options.send_queue_bytes_max == 0 || options.inbox_bytes_max == 0 ||
      options.handshake_timeout_ms <= 0 || options.reconnect_backoff_ms_min <= 0 ||
      options.reconnect_backoff_ms_max < options.reconnect_backoff_ms_min ||
      options.reverse_dial_ms <= 0 || options.ping_interval_ms <= 0 ||
      options.idle_timeout_ms <= options.ping_interval_ms || options.duplicate_probe_ms <= 0 ||
      options.pending_handshakes_max == 0) {
    return Status(ErrorCode::BadArguments, "peer transport limits out of range");
  }
  for (const auto& [id, address] : options.peers) {
    if (id == NodeId() || address.host.empty() || address.port == 0) {
      return Status(ErrorCode::BadArguments,
                    "bad peer address for node " + std::to_string(id.value()));
    }
  }
  options.peers.erase(options.self);
  auto impl = std::make_shared<Impl>(io, std::move(options));
  COORD_RETURN_IF_ERROR(impl->listen());
  impl->start();
  return std::unique_ptr<PeerTransport>(new PeerTransport(std::move(impl)));
}

std::uint16_t PeerTransport::port() const {
  return impl_->port();
}
SendResult PeerTransport::send(NodeId to, std::string frame) {
  return impl_->send(to, std::move(frame));
}
std::size_t PeerTransport::receive(std::vector<IncomingFrame>& out, std::size_t max) {
  return impl_->receive(out, max);
}
void PeerTransport::set_peers(PeerSet peers) {
  impl_->set_peers(std::move(peers));
}
PeerTransportStats PeerTransport::stats() const {
  return impl_->stats();
}
void PeerTransport::stop() {
  impl_->stop();
}

}  // namespace coord::io
