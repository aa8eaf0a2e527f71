#include "coord/agent/http_server.h"

// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <thread>
#include <unordered_set>

#include "coord/base/assert.h"
#include "coord/base/limits.h"

namespace coord::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// After accept() fails for a reason that may pass (out of descriptors),
// wait this long before trying again rather than spin.
constexpr std::chrono::milliseconds accept_retry_ms{100};

}  // namespace

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) {
      return Status(ErrorCode::BadArguments, "truncated escape in '" + std::string(text) + "'");
    }
    int hi = hex_value(text[i + 1]);
    int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) {
      return Status(ErrorCode::BadArguments, "bad escape in '" + std::string(text) + "'");
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

class Session;

struct HttpServer::State {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  HttpHandler handler;
  std::uint16_t port = 0;
  // The event loop's own: the connections open now.
  std::unordered_set<Session*> sessions;
  std::thread thread;

  void accept();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::State& server)
      : stream_(std::move(socket)), server_(server) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    peer_ip_ = ec ? std::string("unknown") : ep.address().to_string();
    server_.sessions.insert(this);
  }
  ~Session() { server_.sessions.erase(this); }

  void read() {
    parser_.emplace();
    parser_->body_limit(limits::agent_http_body_bytes_max);
    stream_.expires_after(std::chrono::milliseconds(limits::agent_http_idle_ms_max));
    http::async_read(stream_, buf_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec == http::error::body_limit) {
                         return self->answer_error(413, "request body too large\n");
                       }
                       if (ec) return self->close();
                       self->dispatch();
                     });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

 private:
  void dispatch() {
    auto& req = parser_->get();
    HttpRequest r;
    r.method = std::string(req.method_string());
    std::string_view target(req.target().data(), req.target().size());
    std::size_t q = target.find('?');
    auto path = percent_decode(target.substr(0, q));
    if (!path) return answer_error(400, path.status().message() + "\n");
    r.path = std::move(*path);
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    r.body = std::move(req.body());
    r.peer_ip = peer_ip_;
    HttpAnswer a;
    try {
      a = server_.handler(r);
    } catch (const std::exception& e) {
      a = HttpAnswer{500, "text/plain; charset=utf-8",
                     std::string("internal error: ") + e.what() + "\n"};
    } catch (...) {
      a = HttpAnswer{500, "text/plain; charset=utf-8", "internal error\n"};
    }
    write(a, req.version(), req.keep_alive());
  }

  // A request that cannot be read whole is answered and the connection
  // closed: what follows it on the stream cannot be framed.
  void answer_error(unsigned status, std::string body) {
    write(HttpAnswer{status, "text/plain; charset=utf-8", std::move(body)}, 11, false);
  }

  void write(const HttpAnswer& a, unsigned version, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(a.status), version);
    res->set(http::field::server, "coord");
    res->set(http::field::content_type, a.content_type);
    res->keep_alive(keep_alive);
    res->body() = a.body;
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(limits::agent_http_idle_ms_max));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        if (ec || !res->keep_alive()) return self->close();
                        self->read();
                      });
  }

  beast::tcp_stream stream_;
  HttpServer::State& server_;
  std::string peer_ip_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

void HttpServer::State::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      accept_retry.expires_after(accept_retry_ms);
      accept_retry.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    if (sessions.size() >= limits::agent_http_connections_max) {
      beast::error_code close_ec;
      socket.close(close_ec);
    } else {
      std::make_shared<Session>(std::move(socket), *this)->read();
    }
    accept();
  });
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& host, std::uint16_t port,
                                                      HttpHandler handler) {
  COORD_ASSERT(handler);
  auto st = std::make_unique<State>();
  st->handler = std::move(handler);
  std::string where = host + ":" + std::to_string(port);
  beast::error_code ec;
  tcp::resolver resolver(st->io);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec || endpoints.empty()) {
    return Status(ErrorCode::ConnectionLoss, "cannot listen on " + where + ": " + ec.message());
  }
  tcp::endpoint ep = endpoints.begin()->endpoint();
  auto fail = [&](std::string_view step) {
    return Status(ErrorCode::ConnectionLoss,
                  "cannot listen on " + where + ": " + std::string(step) + ": " + ec.message());
  };
  if (st->acceptor.open(ep.protocol(), ec)) return fail("open");
  if (st->acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return fail("option");
  if (st->acceptor.bind(ep, ec)) return fail("bind");
  if (st->acceptor.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen");
  st->port = st->acceptor.local_endpoint(ec).port();
  if (ec) return fail("local endpoint");
  st->accept();
  State* s = st.get();
  st->thread = std::thread([s] { s->io.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(st)));
}

HttpServer::HttpServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

HttpServer::~HttpServer() {
  // Closing the acceptor, the retry timer and every connection leaves the
  // loop without work, so run() returns once their handlers have run.
  State* s = state_.get();
  asio::post(s->io, [s] {
    beast::error_code ec;
    s->acceptor.close(ec);
    s->accept_retry.cancel();
    for (Session* session : s->sessions)
      session->close();
  });
  s->thread.join();
  COORD_ASSERT(s->sessions.empty());
}

std::uint16_t HttpServer::port() const {
  return state_->port;
}

}  // namespace coord::agent
