#include "coord/io/server.h"

#include <openssl/rand.h>

#include <csignal>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <chrono>
#include <thread>
#include <unordered_map>

#include "client_conn.h"
#include "coord/base/assert.h"
#include "coord/base/log.h"
#include "core_host.h"
#include "http_session.h"

namespace coord::io {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr std::int64_t stop_grace_ms = 500;

std::string fresh_password() {
  std::string p(limits::session_password_bytes, '\0');
  const int ok = RAND_bytes(reinterpret_cast<unsigned char*>(p.data()), static_cast<int>(p.size()));
  COORD_ASSERT(ok == 1, "the system has no randomness for session passwords");
  return p;
}

}  // namespace

// ---- Server -----------------------------------------------------------------------

struct Server::Impl {
  ServerOptions options;
  asio::io_context net{1};
  asio::io_context core{1};
  CoreHost host;
  tcp::acceptor client_acceptor{net};
  tcp::acceptor http_acceptor{net};
  asio::signal_set signals{net, SIGINT, SIGTERM};
  core::ConnId next_conn = 1;
  std::unordered_map<std::string, std::size_t> per_address;
  std::atomic<bool> stopping{false};
  std::uint16_t client_port = 0;
  std::uint16_t http_port = 0;

  explicit Impl(const ServerOptions& o) : options(o), host(core, o.replica) {}

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

  void accept_clients() {
    client_acceptor.async_accept(
        asio::make_strand(net), [this](beast::error_code ec, tcp::socket socket) {
          if (ec) {
            if (!stopping) accept_clients();
            return;
          }
          beast::error_code ep_ec;
          const std::string ip = socket.remote_endpoint(ep_ec).address().to_string();
          std::size_t& count = per_address[ip];
          if (count >= options.connections_per_address_max) {
            COORD_LOG_WARN("coordd", "refusing a connection from ", ip, ": ", count,
                           " connections already");
            socket.close(ep_ec);
          } else {
            ++count;
            socket.set_option(tcp::no_delay(true), ep_ec);
            auto conn = std::make_shared<ClientConn>(
                next_conn++, std::move(socket), host, ip, [this](const std::string& gone_ip) {
                  asio::post(net, [this, gone_ip] {
                    auto it = per_address.find(gone_ip);
                    if (it != per_address.end() && --it->second == 0) per_address.erase(it);
                  });
                });
            asio::post(core, [this, conn] { host.opened(conn); });
            conn->start();
          }
          accept_clients();
        });
  }

  void accept_http() {
    http_acceptor.async_accept(asio::make_strand(net),
                               [this](beast::error_code ec, tcp::socket socket) {
                                 if (ec) {
                                   if (!stopping) accept_http();
                                   return;
                                 }
                                 std::make_shared<HttpSession>(std::move(socket), host)->start();
                                 accept_http();
                               });
  }

  void begin_stop() {
    if (stopping.exchange(true)) return;
    asio::post(net, [this] {
      COORD_LOG_INFO("coordd", "stopping: no new connections");
      beast::error_code ec;
      client_acceptor.close(ec);
      http_acceptor.close(ec);
      signals.cancel(ec);
      // Everything the core has accepted is already durable (persist is
      // synchronous); give the sockets a moment to flush the last replies.
      asio::post(core, [this] {
        host.ticker.cancel();
        host.stop_snapshot_writer();
        host.flush();
        for (auto& [id, c] : host.conns)
          c->shutdown();
      });
      auto grace = std::make_shared<asio::steady_timer>(net);
      grace->expires_after(std::chrono::milliseconds(stop_grace_ms));
      grace->async_wait([this, grace](beast::error_code) {
        core.stop();
        net.stop();
      });
    });
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::create(const ServerOptions& given) {
  ServerOptions options = given;
  options.replica.metrics_clock_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  auto impl = std::make_unique<Impl>(options);
  consensus::ConfState initial;
  initial.voters = options.replica.voters;
  LmdbLogStore::Options log_options;
  log_options.map_bytes = options.log_map_bytes;
  auto storage = DiskReplicaStorage::open(options.data_dir, initial, log_options);
  if (!storage.ok()) return storage.status();
  impl->host.storage = std::move(storage).value();
  auto snapshot = impl->host.storage->load_snapshot_payload();
  if (!snapshot.ok()) return snapshot.status();
  auto replica =
      core::Replica::create(options.replica, *impl->host.storage, std::move(snapshot).value(),
                            Random(Random::entropy_seed()), fresh_password);
  if (!replica.ok()) return replica.status();
  impl->host.replica = std::move(replica).value();
  // Connection ids of real clients count up from 1; the REST client's is
  // out of their reach.
  impl->host.rest = std::make_unique<RestClient>(*impl->host.replica, ~core::ConnId{0},
                                                 options.bind, impl->host.clock);
  COORD_RETURN_IF_ERROR(
      impl->listen(impl->client_acceptor, options.client_port, &impl->client_port));
  COORD_RETURN_IF_ERROR(impl->listen(impl->http_acceptor, options.http_port, &impl->http_port));
  impl->host.client_port = impl->client_port;
  impl->host.client_address = options.bind + ":" + std::to_string(impl->client_port);
  impl->host.connections_per_address_max = options.connections_per_address_max;
  impl->host.data_dir = options.data_dir;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::run() {
  Impl& m = *impl_;
  m.signals.async_wait([&m](beast::error_code ec, int sig) {
    if (ec) return;
    COORD_LOG_INFO("coordd", "signal ", sig, " received");
    m.begin_stop();
  });
  m.accept_clients();
  m.accept_http();
  asio::post(m.core, [&m] { m.host.tick(); });
  COORD_LOG_INFO("coordd", "serving ZooKeeper clients on ", m.options.bind, ":", m.client_port,
                 ", HTTP on ", m.options.bind, ":", m.http_port, ", data in ", m.options.data_dir,
                 ", zxid ", m.host.replica->applied_zxid());
  std::thread core_thread([&m] { m.core.run(); });
  m.net.run();
  m.core.stop();
  core_thread.join();
  COORD_LOG_INFO("coordd", "stopped at zxid ", m.host.replica->applied_zxid());
}

void Server::stop() {
  impl_->begin_stop();
}
std::uint16_t Server::client_port() const {
  return impl_->client_port;
}
std::uint16_t Server::http_port() const {
  return impl_->http_port;
}

}  // namespace coord::io
