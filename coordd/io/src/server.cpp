#include "coord/io/server.h"

#include <openssl/rand.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <set>
#include <thread>
#include <unordered_map>

#include "coord/base/assert.h"
#include "coord/base/clock.h"
#include "coord/base/log.h"
#include "coord/io/host_facts.h"
#include "coord/io/http_api.h"
#include "coord/io/raft_storage.h"
#include "coord/io/rest_client.h"
#include "coord/protocol/frame.h"

namespace coord::io {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using protocol::Bytes;

namespace {

constexpr std::size_t read_chunk_bytes = 64 * 1024;
constexpr std::int64_t stop_grace_ms = 500;
// An HTTP connection that sends no complete request for this long is closed.
constexpr std::int64_t http_idle_ms_max = 30'000;
constexpr std::size_t http_body_bytes_max = limits::znode_data_bytes_max + 64 * 1024;

std::string fresh_password() {
  std::string p(limits::session_password_bytes, '\0');
  const int ok = RAND_bytes(reinterpret_cast<unsigned char*>(p.data()), static_cast<int>(p.size()));
  COORD_ASSERT(ok == 1, "the system has no randomness for session passwords");
  return p;
}

}  // namespace

struct CoreHost;

// One client socket. Lives on the network thread (its strand); the core
// refers to it by id and posts writes to it.
class ClientConn : public std::enable_shared_from_this<ClientConn> {
 public:
  ClientConn(core::ConnId id, tcp::socket socket, CoreHost& host, std::string ip,
             std::function<void(const std::string&)> on_gone)
      : id_(id),
        socket_(std::move(socket)),
        strand_(socket_.get_executor()),
        host_(host),
        ip_(std::move(ip)),
        on_gone_(std::move(on_gone)) {
    beast::error_code ec;
    port_ = socket_.remote_endpoint(ec).port();
  }

  core::ConnId id() const { return id_; }
  const std::string& ip() const { return ip_; }
  std::uint16_t port() const { return port_; }
  void start() { read_more(); }

  // From the core: bytes to send, then maybe close.
  void deliver(Bytes bytes, bool close_after);
  // From the core: the session can take more input.
  void resume() {
    asio::post(strand_, [self = shared_from_this()] { self->read_more(); });
  }
  void write_text_and_close(std::string text) {
    asio::post(strand_, [self = shared_from_this(), text = std::move(text)] {
      Bytes b(text.begin(), text.end());
      self->enqueue(std::move(b), true);
    });
  }
  void shutdown() {
    asio::post(strand_, [self = shared_from_this()] { self->close(); });
  }

 private:
  void read_more();
  void on_read(beast::error_code ec, std::size_t n);
  void enqueue(Bytes bytes, bool close_after);
  void write_next();
  void close();

  core::ConnId id_;
  tcp::socket socket_;
  asio::strand<tcp::socket::executor_type> strand_;
  CoreHost& host_;
  std::string ip_;
  std::uint16_t port_ = 0;
  std::function<void(const std::string&)> on_gone_;
  std::vector<std::uint8_t> buf_ = std::vector<std::uint8_t>(read_chunk_bytes);
  Bytes prefix_;  // the first bytes, until they are known not to be a 4lw
  bool decided_ = false;
  bool reading_ = false;
  bool closed_ = false;
  bool close_after_flush_ = false;
  bool writing_ = false;
  std::deque<Bytes> out_;
  std::size_t out_bytes_ = 0;
};

// The core side: everything here runs on the core thread.
struct CoreHost {
  asio::io_context& core;
  core::ReplicaConfig config;
  std::unique_ptr<DiskReplicaStorage> storage;
  std::unique_ptr<core::Replica> replica;
  SystemClock clock;
  std::unordered_map<core::ConnId, std::shared_ptr<ClientConn>> conns;
  std::set<core::ConnId> paused;
  bool flush_scheduled = false;
  asio::steady_timer ticker;
  std::atomic<bool> ready{false};
  HttpMetrics http_metrics;
  std::unique_ptr<RestClient> rest;
  std::uint16_t client_port = 0;
  std::string client_address;  // bind:port, for the admin API
  std::size_t connections_per_address_max = 0;
  std::string data_dir;
  pid_t snapshot_child = 0;
  consensus::SnapshotMeta snapshot_in_flight;
  std::chrono::steady_clock::time_point snapshot_started;
  std::int64_t fork_pause_ms = 0;

  CoreHost(asio::io_context& c, core::ReplicaConfig cfg)
      : core(c), config(std::move(cfg)), ticker(c) {}

  void opened(std::shared_ptr<ClientConn> conn) {
    const auto id = conn->id();
    replica->connection_opened(id, conn->ip(), clock.steady_ms(), clock.wall_ms(), conn->port());
    conns.emplace(id, std::move(conn));
    schedule_flush();
  }

  void bytes(core::ConnId id, const Bytes& b) {
    replica->bytes_received(id, protocol::ByteSpan(b), clock.steady_ms(), clock.wall_ms());
    // Reading goes on while the core persists, so that what arrives during
    // one fsync joins the next; a session with too many requests waiting
    // pauses until flush() finds it can take more.
    if (replica->accepts_input(id)) {
      if (auto it = conns.find(id); it != conns.end()) it->second->resume();
    } else {
      paused.insert(id);
    }
    schedule_flush();
  }

  // One flush after all inputs queued so far: every write that arrived
  // while the previous fsync ran goes into the next one.
  void schedule_flush() {
    if (flush_scheduled) return;
    flush_scheduled = true;
    asio::post(core, [this] {
      flush_scheduled = false;
      flush();
    });
  }

  void closed(core::ConnId id) {
    replica->connection_closed(id);
    conns.erase(id);
    paused.erase(id);
    schedule_flush();
  }

  void four_letter(std::shared_ptr<ClientConn> conn, std::string word) {
    if (!replica->four_letter_word_allowed(word)) {
      // The replica words the refusal as ZooKeeper does.
      conn->write_text_and_close(replica->four_letter_word(word));
      return;
    }
    std::string text;
    if (word == "dirs") {
      // What the host knows: the sizes of the snapshot files and the log.
      text = "datadir_size: " + std::to_string(storage->snapshot_bytes()) +
             "\nlogdir_size: " + std::to_string(storage->log_bytes()) + "\n";
    } else if (word == "conf") {
      // ZooKeeper's keys; coord keeps snapshots and log in one directory.
      text = "clientPort=" + std::to_string(client_port) +
             "\nsecureClientPort=-1\ndataDir=" + data_dir +
             "\ndataDirSize=" + std::to_string(storage->snapshot_bytes()) +
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

  void flush() {
    // Output for the REST client feeds back into the replica, which may
    // produce more output: repeat, a bounded number of rounds.
    for (int round = 0; round < 16; ++round) {
      core::ReplicaOutput out = replica->take_output();
      if (out.connections.empty()) break;
      for (auto& o : out.connections) {
        if (rest && o.conn == rest->id()) {
          rest->on_output(o);
          continue;
        }
        auto it = conns.find(o.conn);
        if (it == conns.end()) continue;
        it->second->deliver(std::move(o.bytes), o.close);
      }
    }
    for (auto it = paused.begin(); it != paused.end();) {
      auto c = conns.find(*it);
      if (c == conns.end()) {
        it = paused.erase(it);
      } else if (replica->accepts_input(*it)) {
        c->second->resume();
        it = paused.erase(it);
      } else {
        ++it;
      }
    }
    ready.store(replica->ready());
  }

  void tick() {
    replica->tick(clock.steady_ms(), clock.wall_ms());
    rest->tick();
    flush();
    maybe_snapshot();
    ticker.expires_after(std::chrono::milliseconds(config.tick_ms));
    ticker.async_wait([this](beast::error_code ec) {
      if (!ec) tick();
    });
  }

  // Snapshots are written by a forked child, which sees the tree exactly
  // as of the fork (copy-on-write) while this process goes on applying:
  // the apply loop pauses only for the fork itself, not for serializing
  // and writing the tree. The parent records the snapshot in the log once
  // the child reports success.
  void maybe_snapshot() {
    if (snapshot_child != 0) {
      int status = 0;
      const pid_t done = ::waitpid(snapshot_child, &status, WNOHANG);
      if (done == 0) return;  // still writing
      snapshot_child = 0;
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - snapshot_started)
                          .count();
      if (done < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        COORD_LOG_ERROR("coordd", "snapshot at zxid ", snapshot_in_flight.index,
                        " failed in its writer process (status ", status, ")");
        return;
      }
      Status st = storage->record_snapshot(snapshot_in_flight);
      if (!st.ok()) {
        COORD_LOG_ERROR("coordd", "snapshot at zxid ", snapshot_in_flight.index,
                        " written but not recorded: ", st);
        return;
      }
      replica->snapshot_done(snapshot_in_flight.index);
      COORD_LOG_INFO("coordd", "snapshot at zxid ", snapshot_in_flight.index, " written in ", ms,
                     " ms, apply paused ", fork_pause_ms, " ms");
      return;
    }
    if (!replica->snapshot_due()) return;
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
      ::_exit(st.ok() ? 0 : 1);
    }
    snapshot_child = pid;
    fork_pause_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - snapshot_started)
                        .count();
  }

  void stop_snapshot_writer() {
    if (snapshot_child == 0) return;
    // An unfinished snapshot is abandoned; its temporary file is removed by
    // the next prune.
    ::kill(snapshot_child, SIGKILL);
    int status = 0;
    ::waitpid(snapshot_child, &status, 0);
    snapshot_child = 0;
  }
};

void ClientConn::read_more() {
  if (closed_ || reading_) return;
  reading_ = true;
  socket_.async_read_some(asio::buffer(buf_),
                          asio::bind_executor(strand_, [self = shared_from_this()](
                                                           beast::error_code ec, std::size_t n) {
                            self->on_read(ec, n);
                          }));
}

void ClientConn::on_read(beast::error_code ec, std::size_t n) {
  reading_ = false;
  if (ec) return close();
  Bytes chunk(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n));
  if (!decided_) {
    // The first four bytes may be a four-letter word instead of a length.
    prefix_.insert(prefix_.end(), chunk.begin(), chunk.end());
    if (prefix_.size() < protocol::frame_length_prefix_bytes) return read_more();
    decided_ = true;
    if (auto word = protocol::four_letter_word(protocol::ByteSpan(prefix_).first(4))) {
      asio::post(host_.core, [self = shared_from_this(), w = std::string(*word)] {
        self->host_.four_letter(self, w);
      });
      return;
    }
    chunk = std::move(prefix_);
  }
  // The core answers with resume() when it can take more.
  asio::post(host_.core, [self = shared_from_this(), b = std::move(chunk)] {
    self->host_.bytes(self->id_, b);
  });
}

void ClientConn::deliver(Bytes bytes, bool close_after) {
  asio::post(strand_, [self = shared_from_this(), b = std::move(bytes), close_after]() mutable {
    self->enqueue(std::move(b), close_after);
  });
}

void ClientConn::enqueue(Bytes bytes, bool close_after) {
  if (closed_) return;
  if (close_after) close_after_flush_ = true;
  if (!bytes.empty()) {
    out_bytes_ += bytes.size();
    out_.push_back(std::move(bytes));
  }
  if (out_bytes_ > limits::connection_outbound_bytes_max) {
    // A client that does not read is cut off, not buffered without end.
    COORD_LOG_WARN("coordd", "closing ", ip_, ": ", out_bytes_, " bytes unread");
    return close();
  }
  if (!writing_) write_next();
}

void ClientConn::write_next() {
  if (out_.empty()) {
    writing_ = false;
    if (close_after_flush_) close();
    return;
  }
  writing_ = true;
  asio::async_write(
      socket_, asio::buffer(out_.front()),
      asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (self->closed_) {
          // Closed while this write was in flight: its buffer was kept
          // alive until now, and nothing more is written.
          self->writing_ = false;
          self->out_.clear();
          return;
        }
        if (ec) return self->close();
        self->out_bytes_ -= self->out_.front().size();
        self->out_.pop_front();
        self->write_next();
      }));
}

void ClientConn::close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  // A write in flight still reads out_.front(); its completion clears.
  if (!writing_) out_.clear();
  on_gone_(ip_);
  asio::post(host_.core, [self = shared_from_this()] { self->host_.closed(self->id_); });
}

// ---- HTTP -------------------------------------------------------------------------

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, CoreHost& host)
      : stream_(std::move(socket)), host_(host), peer_ip_(peer_ip()) {}

  void start() { read(); }

 private:
  std::string peer_ip() {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    return ec ? std::string("unknown") : ep.address().to_string();
  }

  void read() {
    req_ = {};
    parser_.emplace();
    parser_->body_limit(http_body_bytes_max);
    stream_.expires_after(std::chrono::milliseconds(http_idle_ms_max));
    http::async_read(stream_, buf_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->close();
                       self->req_ = self->parser_->release();
                       self->dispatch();
                     });
  }

  void dispatch() {
    HttpRequest r;
    r.method = std::string(req_.method_string());
    r.target = std::string(req_.target());
    r.body = req_.body();
    r.peer_ip = peer_ip_;
    // The answer is computed on the core thread, which owns the tree.
    asio::post(host_.core, [self = shared_from_this(), r = std::move(r)] {
      CoreHost& h = self->host_;
      handle_http(r, *h.replica, *h.storage, h.http_metrics, *h.rest, h.client_address,
                  [self](HttpReply reply) {
                    asio::post(self->stream_.get_executor(),
                               [self, reply = std::move(reply)] { self->write(reply); });
                  });
      h.flush();
    });
  }

  void write(const HttpReply& reply) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(reply.status), req_.version());
    res->set(http::field::server, "coordd");
    res->set(http::field::content_type, reply.content_type);
    res->keep_alive(req_.keep_alive());
    res->body() = reply.body;
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        if (ec || !res->keep_alive()) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  CoreHost& host_;
  std::string peer_ip_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
};

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
