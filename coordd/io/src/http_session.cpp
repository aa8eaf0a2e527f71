#include "http_session.h"

#include <chrono>

#include "core_host.h"
#include "event_stream.h"
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
  // GET /v1/events with Upgrade: websocket becomes an event stream once
  // the core admits it; without the upgrade the API answers 426.
  const std::string_view target_path = std::string_view(r.target).substr(0, r.target.find('?'));
  const bool events_upgrade =
      target_path == "/v1/events" && r.method == "GET" && beast::websocket::is_upgrade(req_);
  // Answering may take a while (a write waits for its log entry): the
  // idle limit applies again only to writing the reply.
  stream_.expires_never();
  ++net_.http_in_flight;
  // The answer is computed by the core, which owns the tree.
  asio::post(host_.core, [self = shared_from_this(), r = std::move(r), events_upgrade] {
    CoreHost& h = self->host_;
    auto reply_to = [self](HttpReply reply) {
      asio::post(self->stream_.get_executor(),
                 [self, reply = std::move(reply)] { self->write(reply); });
    };
    if (h.stopping) {
      return reply_to(HttpReply{503, "text/plain", "stopping\n"});
    }
    if (events_upgrade) return self->admit_event_stream(r, reply_to);
    handle_http(r, *h.replica, *h.storage, h.http_metrics, *h.rest, h.client_address, h.cluster,
                reply_to);
    h.flush();
  });
}

void HttpSession::admit_event_stream(const HttpRequest& r,
                                     const std::function<void(HttpReply)>& reply_to) {
  CoreHost& h = host_;
  if (!h.events) return reply_to(HttpReply{503, "text/plain", "no event streams here\n"});
  const auto q = r.target.find('?');
  auto params = parse_event_stream_query(
      q == std::string::npos ? std::string_view() : std::string_view(r.target).substr(q + 1));
  // Host and Origin are checked before the parameters are judged.
  znode::Caller caller;
  if (auto refused = io::admit_event_stream(r, params.ok() ? params->token : std::string_view(),
                                            *h.replica, h.http_metrics, h.cluster, caller)) {
    return reply_to(std::move(*refused));
  }
  if (!params.ok()) {
    ++h.http_metrics.errors;
    return reply_to(
        error_reply(400, ErrorCode::BadArguments, std::string(params.status().message())));
  }
  auto outbox = std::make_shared<EventOutbox>(stream_.get_executor());
  core::ConnId id = 0;
  if (auto refused = h.events->open(*params, std::move(caller), outbox, id)) {
    return reply_to(std::move(*refused));
  }
  asio::post(stream_.get_executor(),
             [self = shared_from_this(), outbox, id] { self->become_event_stream(outbox, id); });
}

void HttpSession::become_event_stream(std::shared_ptr<EventOutbox> outbox, std::uint64_t id) {
  --net_.http_in_flight;
  // The stream ends: its watch goes, by the core, which owns it.
  auto on_end = [&core = host_.core, &h = host_, id] {
    asio::post(core, [&h, id] {
      if (h.events) h.events->closed(id);
    });
  };
  if (tls_) {
    using Next = asio::ssl::stream<beast::tcp_stream&>&;
    auto s = std::make_shared<EventSocket<Next>>(shared_from_this(), *tls_, std::move(outbox),
                                                 std::move(on_end));
    s->start(req_);
  } else {
    auto s = std::make_shared<EventSocket<beast::tcp_stream&>>(
        shared_from_this(), stream_, std::move(outbox), std::move(on_end));
    s->start(req_);
  }
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
  if (!reply.upgrade.empty()) res->set(http::field::upgrade, reply.upgrade);
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
