#include "http_session.h"

#include <chrono>

#include "core_host.h"
#include "network.h"

namespace coord::io {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpSession::HttpSession(tcp::socket socket, CoreHost& host, NetState& net,
                         std::shared_ptr<asio::ssl::context> tls)
    : stream_(std::move(socket)),
      tls_ctx_(std::move(tls)),
      host_(host),
      net_(net),
      peer_ip_(peer_ip()) {
  if (tls_ctx_) tls_ = std::make_unique<asio::ssl::stream<beast::tcp_stream&>>(stream_, *tls_ctx_);
  ++net_.counters.http_connections;
}

void HttpSession::start() {
  if (!tls_) return read();
  stream_.expires_after(std::chrono::milliseconds(
      std::min(net_.limits.http_idle_ms_max, limits::tls_handshake_ms_max)));
  tls_->async_handshake(asio::ssl::stream_base::server,
                        [self = shared_from_this()](beast::error_code ec) {
                          if (ec) return self->close();
                          self->read();
                        });
}

HttpSession::~HttpSession() {
  --net_.counters.http_connections;
}

std::string HttpSession::peer_ip() {
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  return ec ? std::string("unknown") : ep.address().to_string();
}

void HttpSession::read() {
  req_ = {};
  parser_.emplace();
  parser_->body_limit(limits::http_body_bytes_max);
  stream_.expires_after(std::chrono::milliseconds(net_.limits.http_idle_ms_max));
  auto done = [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) return self->close();
    self->req_ = self->parser_->release();
    self->dispatch();
  };
  if (tls_) {
    http::async_read(*tls_, buf_, *parser_, std::move(done));
  } else {
    http::async_read(stream_, buf_, *parser_, std::move(done));
  }
}

void HttpSession::dispatch() {
  HttpRequest r;
  r.method = std::string(req_.method_string());
  r.target = std::string(req_.target());
  r.body = req_.body();
  r.peer_ip = peer_ip_;
  // What the guards read (http_guard.h). X-Forwarded-For and X-Real-IP
  // are never read: the caller is the socket's address.
  r.host = std::string(req_[http::field::host]);
  r.origin = std::string(req_[http::field::origin]);
  r.content_type = std::string(req_[http::field::content_type]);
  if (auto a = req_.find(http::field::authorization); a != req_.end()) {
    r.has_authorization = true;
    r.authorization = std::string(a->value());
  }
  r.custom_header = req_.find("X-Coord-Request") != req_.end();
  r.secure = tls_ != nullptr;  // the Origin a browser sends then says https
  // Answering may take a while (a write waits for its log entry): the
  // idle limit applies again only to writing the reply.
  stream_.expires_never();
  ++net_.http_in_flight;
  // The answer is computed on the core thread, which owns the tree.
  asio::post(host_.core, [self = shared_from_this(), r = std::move(r)] {
    CoreHost& h = self->host_;
    auto reply_to = [self](HttpReply reply) {
      asio::post(self->stream_.get_executor(),
                 [self, reply = std::move(reply)] { self->write(reply); });
    };
    if (h.stopping) {
      return reply_to(HttpReply{503, "text/plain", "stopping\n"});
    }
    handle_http(r, *h.replica, *h.storage, h.http_metrics, *h.rest, h.client_address, h.cluster,
                reply_to);
    h.flush();
  });
}

void HttpSession::write(const HttpReply& reply) {
  --net_.http_in_flight;
  auto res = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(reply.status), req_.version());
  res->set(http::field::server, "coordd");
  res->set(http::field::content_type, reply.content_type);
  if (!reply.www_authenticate.empty()) {
    res->set(http::field::www_authenticate, reply.www_authenticate);
  }
  for (const auto& [name, value] : reply.headers)
    res->set(name, value);
  res->keep_alive(req_.keep_alive());
  res->body() = reply.body;
  res->prepare_payload();
  stream_.expires_after(std::chrono::milliseconds(net_.limits.http_idle_ms_max));
  auto done = [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
    if (ec || !res->keep_alive()) return self->close();
    self->read();
  };
  if (tls_) {
    http::async_write(*tls_, *res, std::move(done));
  } else {
    http::async_write(stream_, *res, std::move(done));
  }
}

void HttpSession::close() {
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace coord::io
