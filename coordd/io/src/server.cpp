#include "coord/io/server.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "client_conn.h"
#include "coord/base/assert.h"
#include "coord/base/log.h"
#include "coord/io/host_facts.h"
#include "core_host.h"
#include "event_stream.h"
#include "http_session.h"
#include "network.h"

namespace coord::io {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

// Session passwords from OpenSSL's generator, drawn many at a time: each
// draw takes the generator's lock and a round of it, a few percent of a
// session open's CPU when paid for every password. What is handed out is
// wiped from the pool.
class PasswordSource {
 public:
  std::string operator()() {
    if (used_ == pool_.size()) {
      const int ok = RAND_bytes(pool_.data(), static_cast<int>(pool_.size()));
      COORD_ASSERT(ok == 1, "the system has no randomness for session passwords");
      used_ = 0;
    }
    unsigned char* next = pool_.data() + used_;
    std::string p(reinterpret_cast<const char*>(next), limits::session_password_bytes);
    OPENSSL_cleanse(next, limits::session_password_bytes);
    used_ += limits::session_password_bytes;
    return p;
  }

 private:
  static constexpr std::size_t passwords_per_draw = 64;
  std::array<unsigned char, passwords_per_draw * limits::session_password_bytes> pool_{};
  std::size_t used_ = pool_.size();
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// For certificate validity: the wall clock, in Unix seconds.
std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Accept failures that more accepts cannot cure right away: the listener
// stays readable, so retrying at once would spin.
bool out_of_resources(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory || ec.value() == ENFILE;
}

// The descriptor limit, raised to the hard limit first: a server that
// holds one descriptor per client wants all it may have.
std::size_t descriptor_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  if (rl.rlim_cur == RLIM_INFINITY) return std::size_t{1} << 20;
  return static_cast<std::size_t>(rl.rlim_cur);
}

}  // namespace

namespace {

// "host:port", the host of an IPv6 address in brackets; with `port_alone`
// a bare port is taken too (host `default_host`). nullopt with `why` set
// when it is neither.
std::optional<PeerAddress> parse_address(std::string_view address, bool port_alone,
                                         std::string_view default_host, std::string& why) {
  const std::size_t colon = address.rfind(':');
  std::string_view host = default_host;
  std::string_view port_text = address;
  if (colon != std::string_view::npos || !port_alone) {
    if (colon == std::string_view::npos || colon == 0) {
      why = "no host:port";
      return std::nullopt;
    }
    host = address.substr(0, colon);
    if (host.front() == '[') {
      if (host.back() != ']' || host.size() < 3) {
        why = "unbalanced brackets";
        return std::nullopt;
      }
      host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
      why = "an IPv6 address goes in brackets";
      return std::nullopt;
    }
    port_text = address.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [port_end, port_ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_ec != std::errc() || port_end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    why = "the port must be a number from 1 to 65535";
    return std::nullopt;
  }
  return PeerAddress{std::string(host), static_cast<std::uint16_t>(port)};
}

std::string bracketed(const PeerAddress& a) {
  const bool v6 = a.host.find(':') != std::string::npos;
  return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

}  // namespace

Result<PeerList> parse_peers(std::string_view list) {
  PeerList out;
  auto bad = [](std::string_view entry, std::string_view why) {
    return Status(ErrorCode::BadArguments,
                  "peer '" + std::string(entry) + "': " + std::string(why) +
                      " (expected id=host:peerport[;[clienthost:]clientport], for example "
                      "1=10.0.0.1:2888;10.0.0.1:2181)");
  };
  std::size_t at = 0;
  while (at <= list.size()) {
    std::size_t end = list.find(',', at);
    if (end == std::string_view::npos) end = list.size();
    std::string_view entry = list.substr(at, end - at);
    at = end + 1;
    while (!entry.empty() && entry.front() == ' ')
      entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ')
      entry.remove_suffix(1);
    if (entry.empty()) {
      if (end == list.size()) break;
      return bad(entry, "empty entry");
    }
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) return bad(entry, "no '='");
    std::uint64_t id = 0;
    const std::string_view id_text = entry.substr(0, eq);
    const auto [id_end, id_ec] =
        std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (id_ec != std::errc() || id_end != id_text.data() + id_text.size() || id == 0 ||
        id > limits::node_id_max) {
      return bad(entry, "the id must be a number from 1 to " + std::to_string(limits::node_id_max));
    }
    std::string_view address = entry.substr(eq + 1);
    std::optional<std::string_view> client_text;
    if (const std::size_t semi = address.find(';'); semi != std::string_view::npos) {
      client_text = address.substr(semi + 1);
      address = address.substr(0, semi);
    }
    std::string why;
    auto peer = parse_address(address, /*port_alone=*/false, "", why);
    if (!peer) return bad(entry, why);
    if (client_text) {
      // ZooKeeper's spec: a client port alone listens on every address.
      auto client = parse_address(*client_text, /*port_alone=*/true, "0.0.0.0", why);
      if (!client) return bad(entry, "client address: " + why);
      out.clients.emplace(NodeId(id), std::move(*client));
    }
    if (!out.peers.emplace(NodeId(id), std::move(*peer)).second) {
      return bad(entry, "id " + std::to_string(id) + " is listed twice");
    }
  }
  if (out.peers.empty()) return Status(ErrorCode::BadArguments, "the peer list is empty");
  return out;
}

Result<core::Membership> founding_membership(const PeerSet& peers,
                                             const std::map<NodeId, PeerAddress>& clients) {
  core::Membership m;
  for (const auto& [id, address] : peers) {
    // Through the spec parser, so that the member reads back from
    // /zookeeper/config exactly as it is recorded.
    std::string spec = bracketed(address) + ":0:participant";
    if (auto c = clients.find(id); c != clients.end()) spec += ";" + bracketed(c->second);
    auto member = core::parse_server_spec(id, spec);
    if (!member.ok()) {
      return Status(ErrorCode::BadArguments, "--peers entry of server " +
                                                 std::to_string(id.value()) + ": " +
                                                 std::string(member.status().message()));
    }
    m.members.push_back(std::move(member).value());
  }
  return m;
}

PeerSet peers_of(const core::Membership& membership, const PeerSet& configured,
                 const consensus::ConfState* in_force) {
  if (membership.members.empty()) return configured;
  PeerSet out;
  for (const core::Member& m : membership.members) {
    if (!m.peer.host.empty()) {
      out.emplace(m.id, PeerAddress{m.peer.host, m.peer.port});
    } else if (auto c = configured.find(m.id); c != configured.end()) {
      out.emplace(m.id, c->second);
    }
  }
  if (in_force != nullptr) {
    for (NodeId id : in_force->members()) {
      if (auto c = configured.find(id); c != configured.end()) out.emplace(id, c->second);
    }
  }
  return out;
}

// ---- Server -----------------------------------------------------------------------

struct Server::Impl {
  // First: connections and HTTP sessions that outlive the loops (in their
  // queues) count themselves out of it when they go.
  NetState net_state;
  ServerOptions options;
  // The event loop of the client connections, the peers and the core;
  // HTTP (the API, metrics, event streams) has a thread of its own (run()).
  asio::io_context loop{1};
  asio::io_context http{1};
  CoreHost host;
  tcp::acceptor client_acceptor{loop};
  tcp::acceptor http_acceptor{http};
  tcp::acceptor secure_acceptor{loop};
  // Where each acceptor puts the address of the client it accepts: from
  // accept() itself, saving a system call per connection.
  tcp::endpoint client_peer;
  tcp::endpoint secure_peer;
  asio::signal_set signals{loop, SIGINT, SIGTERM};
  // SIGHUP reloads the TLS files; registered only when TLS is on.
  asio::signal_set reload_signals{loop};
  std::unique_ptr<TlsServer> tls;
  bool plain_clients = true;  // the plain client port is open
  std::unique_ptr<PeerTransport> transport;
  core::ConnId next_conn = 1;
  std::unordered_map<std::string, std::size_t> per_address;
  // Every open client connection, to stop their reading at shutdown; and
  // how many of them are over the cap, taken for a four-letter word only.
  std::unordered_map<core::ConnId, std::weak_ptr<ClientConn>> open;
  std::size_t open_four_letter_only = 0;
  asio::steady_timer deadline_sweep{loop};
  std::chrono::milliseconds deadline_sweep_interval{connection_deadline_sweep_ms_max};
  std::size_t client_cap = 0;
  std::size_t http_cap = 0;
  std::size_t fd_limit = 0;
  // Kept open to be given up when descriptors run out, so that one waiting
  // connection can be accepted and closed instead of left hanging. Both
  // threads' acceptors use it.
  std::mutex reserve_mu;
  int reserve_fd = -1;
  LogLimiter accept_log{limits::network_log_interval_ms};
  // The HTTP thread's own.
  LogLimiter http_accept_log{limits::network_log_interval_ms};
  LogLimiter http_refuse_log{limits::network_log_interval_ms};
  std::atomic<bool> stopping{false};
  bool drained = false;  // the core has answered what it held
  std::uint16_t client_port = 0;
  std::uint16_t http_port = 0;
  std::uint16_t secure_port = 0;

  Impl(const ServerOptions& o, const NetLimits& l)
      : net_state(l), options(o), host(loop, o.replica) {
    const std::int64_t shortest =
        std::min({l.handshake_ms_max, l.silence_ms_max, limits::tls_handshake_ms_max,
                  limits::shutdown_drain_ms_max});
    deadline_sweep_interval = std::chrono::milliseconds(
        std::clamp(shortest / connection_deadline_sweeps_per_limit,
                   connection_deadline_sweep_ms_min, connection_deadline_sweep_ms_max));
  }
  ~Impl() {
    if (reserve_fd >= 0) ::close(reserve_fd);
  }

  Status listen(tcp::acceptor& acceptor, std::uint16_t port, std::uint16_t* bound) {
    beast::error_code ec;
    auto address = asio::ip::make_address(options.bind, ec);
    if (ec) return Status(ErrorCode::BadArguments, "bad --bind address '" + options.bind + "'");
    tcp::endpoint ep(address, port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(ErrorCode::SystemError, "cannot listen on " + options.bind + ":" +
                                                std::to_string(port) + ": " + ec.message());
    }
    *bound = acceptor.local_endpoint().port();
    return Status();
  }

  // Splits the descriptors this process may hold between client and HTTP
  // connections, below the limit by what the rest of the server needs.
  Status plan_descriptors() {
    fd_limit = descriptor_limit();
    const std::size_t needed =
        limits::server_fds_reserved + limits::connections_over_cap_for_4lw_max + 2 * 4;
    if (fd_limit < needed) {
      return Status(ErrorCode::SystemError,
                    "the descriptor limit (RLIMIT_NOFILE) is " + std::to_string(fd_limit) +
                        "; coordd needs at least " + std::to_string(needed));
    }
    const std::size_t available =
        fd_limit - limits::server_fds_reserved - limits::connections_over_cap_for_4lw_max;
    http_cap = std::min(options.http_connections_max, available / 4);
    client_cap = std::min(options.connections_max, available - http_cap);
    net_state.client_cap = client_cap;
    reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return Status();
  }

  template <class Socket>
  void refuse(Socket& socket, std::string_view what, std::size_t open_now, std::size_t cap,
              LogLimiter& log) {
    beast::error_code ec;
    socket.close(ec);
    ++net_state.counters.refused_at_cap;
    if (log.due(now_ms())) {
      COORD_LOG_WARN("coordd", "refusing ", what, " connections: ", open_now, " open, the cap is ",
                     cap, " (", log.take_held(), " more refused since the last line)");
    }
  }

  // Accept failed for want of descriptors or memory: shed one waiting
  // connection with the reserve descriptor, say so now and then, and
  // accept again after a pause instead of at once. On the thread of
  // `acceptor`, whose own `log` it uses.
  void accept_failed(tcp::acceptor& acceptor, const beast::error_code& ec, LogLimiter& log,
                     std::function<void()> again) {
    ++net_state.counters.accept_failures;
    {
      std::lock_guard lock(reserve_mu);
      if (reserve_fd >= 0) {
        ::close(reserve_fd);
        const int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) ::close(fd);
        reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
    }
    if (log.due(now_ms())) {
      const auto open_fds = open_fd_count();
      COORD_LOG_ERROR("coordd", "cannot accept a connection: ", ec.message(), " (",
                      open_fds ? std::to_string(*open_fds) : std::string("?"),
                      " descriptors open, the limit is ", fd_limit, "; ", log.take_held(),
                      " more failures since the last line); accepting "
                      "again in ",
                      limits::accept_backoff_ms, " ms");
    }
    auto timer = std::make_shared<asio::steady_timer>(acceptor.get_executor());
    timer->expires_after(std::chrono::milliseconds(limits::accept_backoff_ms));
    timer->async_wait([this, timer, again = std::move(again)](beast::error_code) {
      if (!stopping) again();
    });
  }

  void accept_clients() {
    client_acceptor.async_accept(
        loop.get_executor(), client_peer, [this](beast::error_code ec, ClientSocket socket) {
          if (stopping) return;
          if (ec) {
            if (out_of_resources(ec)) {
              return accept_failed(client_acceptor, ec, accept_log, [this] { accept_clients(); });
            }
            return accept_clients();
          }
          take_client(std::move(socket), client_peer, nullptr);
          accept_clients();
        });
  }

  // The secure port: the same connections, each with the context current
  // at its accept (a reload does not touch those already open).
  void accept_secure_clients() {
    secure_acceptor.async_accept(loop.get_executor(), secure_peer,
                                 [this](beast::error_code ec, ClientSocket socket) {
                                   if (stopping) return;
                                   if (ec) {
                                     if (out_of_resources(ec)) {
                                       return accept_failed(secure_acceptor, ec, accept_log,
                                                            [this] { accept_secure_clients(); });
                                     }
                                     return accept_secure_clients();
                                   }
                                   take_client(std::move(socket), secure_peer, tls->current());
                                   accept_secure_clients();
                                 });
  }

  void await_reload() {
    reload_signals.async_wait([this](beast::error_code ec, int) {
      if (ec || stopping) return;
      if (Status s = tls->reload(unix_now_s()); s.ok()) {
        COORD_LOG_INFO("coordd", "SIGHUP: TLS certificate, key and CA reloaded from ",
                       tls->files().cert_file, "; new connections use them");
      } else {
        COORD_LOG_ERROR("coordd",
                        "SIGHUP: TLS files not reloaded, the previous ones stay: ", s.message());
      }
      await_reload();
    });
  }

  void take_client(ClientSocket socket, const tcp::endpoint& peer,
                   std::shared_ptr<asio::ssl::context> tls_context) {
    beast::error_code ep_ec;
    const std::string ip = peer.address().to_string();
    bool four_letter_only = false;
    const std::size_t regular = open.size() - open_four_letter_only;
    if (regular >= client_cap) {
      // Full: a few more are let in to answer a four-letter word, so that
      // ruok and mntr still work; anything else is refused.
      if (open_four_letter_only >= limits::connections_over_cap_for_4lw_max) {
        return refuse(socket, "client", regular, client_cap, net_state.refuse_log);
      }
      four_letter_only = true;
    } else {
      std::size_t& count = per_address[ip];
      if (count >= options.connections_per_address_max) {
        if (net_state.refuse_log.due(now_ms())) {
          COORD_LOG_WARN("coordd", "refusing a connection from ", ip, ": ", count,
                         " connections already (", net_state.refuse_log.take_held(),
                         " more refused since the last line)");
        }
        socket.close(ep_ec);
        return;
      }
      ++count;
    }
    socket.set_option(tcp::no_delay(true), ep_ec);
    const core::ConnId id = next_conn++;
    auto conn = std::make_shared<ClientConn>(
        id, std::move(socket), host, net_state, ip, peer.port(), four_letter_only,
        [this, id](const std::string& gone_ip, bool gone_four_letter_only) {
          asio::post(loop, [this, id, gone_ip, gone_four_letter_only] {
            gone(id, gone_ip, gone_four_letter_only);
          });
        },
        std::move(tls_context));
    open.emplace(id, conn);
    if (four_letter_only) ++open_four_letter_only;
    net_state.counters.client_connections.store(open.size());
    // Before it reads: the core hears of the connection before its bytes.
    host.opened(conn);
    conn->start();
  }

  // Every client connection's deadlines are checked on this one timer, at
  // a fraction of the shortest of them: a connection is closed at most
  // that much late, and holds no timer of its own.
  void sweep_deadlines() {
    deadline_sweep.expires_after(deadline_sweep_interval);
    deadline_sweep.async_wait([this](beast::error_code ec) {
      if (ec) return;
      const auto now = std::chrono::steady_clock::now();
      // A connection that closes here leaves `open` by a post, not at once.
      for (auto& [id, weak] : open) {
        if (auto c = weak.lock()) c->check_deadlines(now);
      }
      sweep_deadlines();
    });
  }

  void gone(core::ConnId id, const std::string& ip, bool four_letter_only) {
    open.erase(id);
    if (four_letter_only) {
      --open_four_letter_only;
    } else if (auto it = per_address.find(ip); it != per_address.end() && --it->second == 0) {
      per_address.erase(it);
    }
    net_state.counters.client_connections.store(open.size());
    maybe_finish_stop();
  }

  // On the HTTP thread: its sessions live there, and only post to the
  // core (handle_http), which posts their replies back.
  void accept_http() {
    http_acceptor.async_accept(http, [this](beast::error_code ec, tcp::socket socket) {
      if (stopping) return;
      if (ec) {
        if (out_of_resources(ec)) {
          return accept_failed(http_acceptor, ec, http_accept_log, [this] { accept_http(); });
        }
        return accept_http();
      }
      const std::size_t open_now = net_state.counters.http_connections.load();
      if (open_now >= http_cap) {
        refuse(socket, "HTTP", open_now, http_cap, http_refuse_log);
      } else {
        std::make_shared<HttpSession>(std::move(socket), host, net_state,
                                      options.tls.http_tls ? tls->current() : nullptr)
            ->start();
      }
      accept_http();
    });
  }

  // Stopping (SIGTERM): no new connections and no more reading; the core
  // answers everything it has read (a write it took is persisted, applied
  // and answered) and then closes each connection once its replies are
  // written. The process ends when every connection is closed, or after
  // shutdown_drain_ms_max for clients that do not read their replies. A
  // write in flight thus either got its reply or was never applied.
  void begin_stop() {
    if (stopping.exchange(true)) return;
    // A leader hands over before it stops answering, so that the cluster
    // does not wait out an election timeout.
    asio::post(loop, [this] {
      host.hand_over_leadership([this] { asio::post(loop, [this] { stop_serving(); }); });
    });
  }

  void stop_serving() {
    {
      COORD_LOG_INFO("coordd", "stopping: no new connections, answering ", open.size(),
                     " connections what they sent");
      beast::error_code ec;
      client_acceptor.close(ec);
      asio::post(http, [this] {
        beast::error_code ignored;
        http_acceptor.close(ignored);
      });
      secure_acceptor.close(ec);
      signals.cancel(ec);
      reload_signals.cancel(ec);
      // Copied: a connection that closes here leaves `open` (by a post).
      std::vector<std::shared_ptr<ClientConn>> conns;
      for (auto& [id, weak] : open) {
        if (auto c = weak.lock()) conns.push_back(std::move(c));
      }
      for (auto& c : conns)
        c->stop_reading();
      // Their chunks reached the core as they were read; posted after what
      // they queued for it since (four-letter words), so that the core sees
      // all of it before it drains.
      asio::post(loop, [this] {
        host.drain([this] {
          asio::post(loop, [this] {
            drained = true;
            maybe_finish_stop();
          });
        });
      });
      auto deadline = std::make_shared<asio::steady_timer>(loop);
      deadline->expires_after(std::chrono::milliseconds(limits::shutdown_drain_ms_max));
      deadline->async_wait([this, deadline](beast::error_code) {
        if (!open.empty()) {
          COORD_LOG_WARN("coordd", "stopping: ", open.size(),
                         " connections did not take their replies in ",
                         limits::shutdown_drain_ms_max, " ms");
        }
        finish_stop();
      });
    }
  }

  Status start_peers() {
    const auto self = options.peers.find(options.replica.id);
    PeerTransportOptions po;
    po.self = options.replica.id;
    po.cluster_id = options.cluster_id;
    po.secret = options.cluster_secret;
    po.bind = options.peer_bind.empty() ? options.bind : options.peer_bind;
    po.port = options.peer_port != 0 ? options.peer_port : self->second.port;
    // The log may name other members than --peers already (servers added
    // or removed since it was written).
    po.peers = peers_of(host.replica->membership(), options.peers, &host.replica->conf_state());
    host.cluster.peers = po.peers;
    host.configured_peers = options.peers;
    host.membership_seen = host.replica->membership().version;
    host.conf_seen = host.replica->conf_state();
    po.peers.erase(options.replica.id);
    po.on_incoming = [this] { asio::post(loop, [this] { host.peer_input(); }); };
    if (options.tls.peer_tls) {
      // Each new link takes the context current then: SIGHUP rotates
      // peer certificates as it does the others.
      po.tls = [this] { return tls->peer_current(); };
    }
    po.on_link = [this](NodeId peer, bool up) {
      if (up) {
        COORD_LOG_INFO("coordd", "link to server ", peer, " is up");
      } else {
        COORD_LOG_WARN("coordd", "link to server ", peer, " is down");
      }
      asio::post(loop, [this, peer, up] { host.peer_link(peer, up); });
    };
    auto t = PeerTransport::create(loop, std::move(po));
    if (!t.ok()) return t.status();
    transport = std::move(t).value();
    host.peers = transport.get();
    host.cluster.transport = transport.get();
    host.cluster.transfer_leadership = [this](NodeId target) {
      return host.replica->transfer_leadership(target, host.clock.steady_ms(),
                                               host.clock.wall_ms());
    };
    return Status();
  }

  void maybe_finish_stop() {
    if (stopping && drained && open.empty() && net_state.http_in_flight == 0) finish_stop();
  }

  void finish_stop() {
    if (transport) transport->stop();
    http.stop();
    loop.stop();
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::create(const ServerOptions& given) {
  ServerOptions options = given;
  // Log writes run on the host's storage thread (CoreHost::persist).
  options.replica.persist_async = true;
  options.replica.metrics_clock_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  NetLimits net_limits;
  net_limits.handshake_ms_max = options.handshake_ms_max;
  // A client pings well within its session's timeout; one silent for longer
  // than any timeout granted has no session left to speak for.
  net_limits.silence_ms_max =
      options.replica.session_timeout_ms_max + limits::connection_silence_grace_ms;
  net_limits.unread_bytes_max = options.unread_output_bytes_max;
  net_limits.http_idle_ms_max = options.http_idle_ms_max;
  if (options.join && options.peers.empty()) {
    return Status(ErrorCode::BadArguments,
                  "--join needs --peers: the members of the cluster and this server");
  }
  // The changes a new data directory's log starts with: none for a server
  // that joins (the leader sends it the log), the founding members
  // otherwise.
  std::vector<consensus::ConfChange> founding_changes;
  if (!options.peers.empty()) {
    if (!options.peers.contains(options.replica.id)) {
      return Status(ErrorCode::BadArguments, "--peers must list this server too (--id " +
                                                 std::to_string(options.replica.id.value()) + ")");
    }
    for (const auto& [id, address] : options.client_addresses) {
      if (!options.peers.contains(id)) {
        return Status(ErrorCode::BadArguments, "a client address for server " +
                                                   std::to_string(id.value()) +
                                                   ", which --peers does not list");
      }
    }
    auto founding = founding_membership(options.peers, options.client_addresses);
    if (!founding.ok()) return founding.status();
    options.replica.reconfig_enabled = true;
    options.replica.voters.clear();
    if (options.join) {
      options.replica.founding = core::Membership{};
    } else {
      options.replica.founding = std::move(founding).value();
      for (const auto& [id, address] : options.peers)
        options.replica.voters.push_back(id);
      founding_changes = core::founding_changes(options.replica.founding);
    }
  } else {
    for (NodeId id : options.replica.voters)
      founding_changes.push_back(consensus::ConfChange{consensus::ConfChangeType::AddVoter, id});
  }
  COORD_RETURN_IF_ERROR(check_tls_options(options.tls, options.client_port));
  auto impl = std::make_unique<Impl>(options, net_limits);
  COORD_RETURN_IF_ERROR(impl->plan_descriptors());
  // Before the data directory: a server whose certificate is unusable
  // does not start at all.
  if (tls_wanted(options.tls)) {
    auto tls = TlsServer::create(options.tls.files, options.tls.peer_tls, unix_now_s());
    if (!tls.ok()) return tls.status();
    impl->tls = std::move(tls).value();
  }
  LmdbLogStore::Options log_options;
  log_options.map_bytes = options.log_map_bytes;
  log_options.disk_free_bytes_min = options.log_disk_free_bytes_min;
  // How long each step of a start takes goes to the log: with a big tree
  // the start is a figure operators watch.
  using start_clock = std::chrono::steady_clock;
  const auto ms_since = [](start_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(start_clock::now() - t).count();
  };
  const auto log_started = start_clock::now();
  auto storage = DiskReplicaStorage::open(options.data_dir, founding_changes, log_options,
                                          options.recover_from_snapshot);
  if (!storage.ok()) return storage.status();
  impl->host.storage = std::move(storage).value();
  const auto log_ms = ms_since(log_started);
  impl->host.start_storage_thread();
  const auto snapshot_started = start_clock::now();
  auto snapshot = impl->host.storage->map_snapshot_payload();
  if (!snapshot.ok()) return snapshot.status();
  const auto map_ms = ms_since(snapshot_started);
  std::optional<std::string_view> payload;
  if (*snapshot) payload = (*snapshot)->payload();
  const std::size_t payload_bytes = payload ? payload->size() : 0;
  const auto tree_started = start_clock::now();
  auto replica = core::Replica::create(options.replica, *impl->host.storage, payload,
                                       Random(Random::entropy_seed()), PasswordSource());
  // The tree is built: the file's pages need not stay mapped.
  snapshot->reset();
  if (!replica.ok()) return replica.status();
  impl->host.replica = std::move(replica).value();
  {
    const DiskReplicaStorage& s = *impl->host.storage;
    COORD_LOG_INFO("coordd", "loaded in ", ms_since(log_started), " ms: the log (",
                   s.last_index().value() + 1 - s.first_index().value(),
                   " entries after the snapshot) in ", log_ms, " ms, the snapshot file at zxid ",
                   s.snapshot_meta().index, " (", payload_bytes, " bytes) read and checked in ",
                   map_ms, " ms, the tree built from it in ", ms_since(tree_started), " ms");
  }
  // Connection ids of real clients count up from 1; the REST clients' count
  // down from the top, out of their reach.
  impl->host.rest =
      std::make_unique<RestClients>(*impl->host.replica, impl->host.clock, ~core::ConnId{0});
  // The admin API's reconfigs act as the super user, on connections of
  // their own, their ids far below the callers' REST sessions'.
  impl->host.admin_rest = std::make_unique<RestClients>(*impl->host.replica, impl->host.clock,
                                                        ~core::ConnId{0} - (core::ConnId{1} << 32),
                                                        /*super_user=*/true);
  impl->host.cluster.admin = impl->host.admin_rest.get();
  impl->host.cluster.logins = &impl->host.logins;
  impl->host.cluster.clock = &impl->host.clock;
  // The event streams' watchers, their ids below the admin API's.
  impl->host.events = std::make_unique<EventHub>(*impl->host.replica, impl->host.http_metrics,
                                                 ~core::ConnId{0} - (core::ConnId{2} << 32));
  impl->host.cluster.guard = make_http_guard(options.bind, options.http_allowed_hosts,
                                             options.http_allowed_origins, options.tls.http_tls);
  if (impl->host.cluster.guard.credentials_in_clear) {
    COORD_LOG_WARN("coordd", "HTTP on ", options.bind,
                   " is plain and not loopback: Basic credentials sent to it cross the network "
                   "in clear (/readyz says so too)");
  }
  impl->host.http_metrics.net = &impl->net_state.counters;
  impl->host.http_metrics.history = &impl->host.metrics_history;
  if (options.tls.secure_client_port && options.client_port == 0) {
    impl->plain_clients = false;
  } else {
    COORD_RETURN_IF_ERROR(
        impl->listen(impl->client_acceptor, options.client_port, &impl->client_port));
  }
  if (options.tls.secure_client_port) {
    COORD_RETURN_IF_ERROR(
        impl->listen(impl->secure_acceptor, *options.tls.secure_client_port, &impl->secure_port));
  }
  COORD_RETURN_IF_ERROR(impl->listen(impl->http_acceptor, options.http_port, &impl->http_port));
  // What the server reports as its client address: the plain port, or the
  // secure one when it has no other.
  const std::uint16_t advertised = impl->plain_clients ? impl->client_port : impl->secure_port;
  impl->host.client_port = advertised;
  impl->host.client_address = options.bind + ":" + std::to_string(advertised);
  impl->host.connections_per_address_max = options.connections_per_address_max;
  impl->host.data_dir = options.data_dir;
#if COORD_FAULT_SEAMS
  impl->host.fault_clock_file = options.fault_clock_file;
  // Before the first input: the replica's first reading of the wall clock
  // is already shifted.
  impl->host.read_fault_clock();
#endif
  if (!options.peers.empty()) COORD_RETURN_IF_ERROR(impl->start_peers());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::run() {
  Impl& m = *impl_;
  m.signals.async_wait([&m](beast::error_code ec, int sig) {
    if (ec) return;
    COORD_LOG_INFO("coordd", "signal ", sig, " received");
    m.begin_stop();
  });
  m.sweep_deadlines();
  if (m.plain_clients) m.accept_clients();
  if (m.tls) {
    if (m.options.tls.secure_client_port) m.accept_secure_clients();
    m.reload_signals.add(SIGHUP);
    m.await_reload();
  }
  m.accept_http();
  asio::post(m.loop, [&m] { m.host.tick(); });
  COORD_LOG_INFO("coordd", "serving ZooKeeper clients on ",
                 m.plain_clients ? m.options.bind + ":" + std::to_string(m.client_port)
                                 : std::string("the TLS port only"),
                 ", HTTP on ", m.options.bind, ":", m.http_port, ", data in ", m.options.data_dir,
                 ", zxid ", m.host.replica->applied_zxid());
  if (m.tls) {
    COORD_LOG_INFO("coordd", "TLS: ",
                   m.options.tls.secure_client_port ? "ZooKeeper clients on " + m.options.bind +
                                                          ":" + std::to_string(m.secure_port)
                                                    : std::string("no secure client port"),
                   m.options.tls.http_tls ? ", HTTPS" : ", plain HTTP",
                   m.options.tls.peer_tls ? ", peers over mutual TLS" : "",
                   ", client certificates ", to_string(m.options.tls.files.client_auth),
                   m.plain_clients ? "" : "; no plain client port");
  }
  COORD_LOG_INFO("coordd", "descriptor limit ", m.fd_limit, ": up to ", m.client_cap,
                 " client connections and ", m.http_cap, " HTTP connections");
  // HTTP on a thread of its own: an event stream's WebSocket writes one
  // message at a time, and beside the core on one thread it would fall
  // behind each apply that fires thousands of events.
  std::thread http_thread([&m] { m.http.run(); });
  // This thread alone runs the loop: the client and peer sockets and the
  // core. Connections rely on it instead of strands, and a request is read,
  // answered and written without waking another thread; only log writes
  // leave it, for the storage thread, and HTTP requests come to it.
  m.loop.run();
  m.http.stop();
  http_thread.join();
  m.host.stop_storage_thread();
  // A clean stop leaves the whole log in LMDB and nothing in its journal
  // for the next start to take back.
  if (Status st = m.host.storage->checkpoint_log_and_release_map(); !st.ok()) {
    COORD_LOG_WARN("coordd",
                   "log checkpoint at stop failed (the next start takes the journal "
                   "back): ",
                   st);
  }
  COORD_LOG_INFO("coordd", "stopped at zxid ", m.host.replica->applied_zxid());
}

void Server::stop() {
  impl_->begin_stop();
}
std::uint16_t Server::client_port() const {
  return impl_->client_port;
}
std::uint16_t Server::secure_client_port() const {
  return impl_->secure_port;
}
std::uint16_t Server::http_port() const {
  return impl_->http_port;
}
std::uint16_t Server::peer_port() const {
  return impl_->transport ? impl_->transport->port() : 0;
}

}  // namespace coord::io
