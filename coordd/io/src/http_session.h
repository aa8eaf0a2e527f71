// One HTTP connection on the HTTP thread: reads a request, has the core
// (on the loop thread) answer it (handle_http), writes the reply, and reads the next
// while the client keeps the connection alive. A request that does not
// arrive whole, or a reply the client does not take, within the HTTP idle
// limit closes the connection. Counted in NetState while it lives.
// With a TLS context (--http-tls) the same exchange runs inside TLS, after
// a handshake that must also finish within the idle limit.
// A WebSocket upgrade of GET /v1/events that the core admits turns the
// connection into an event stream (event_stream.h) for the rest of its
// life; one refused is answered like any request.
// Thread safety: the HTTP thread (its stream's executor) only.
#pragma once

// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace coord::io {

struct CoreHost;
class EventOutbox;
struct HttpReply;
struct HttpRequest;
struct NetState;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, CoreHost& host, NetState& net,
              std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~HttpSession();

  void start();

 private:
  std::string peer_ip();
  void read();
  void dispatch();
  void write(const HttpReply& reply);
  // On the loop thread: checks an upgrade to GET /v1/events and opens its
  // stream, or answers the refusal.
  void admit_event_stream(const HttpRequest& r, const std::function<void(HttpReply)>& reply_to);
  // The core admitted the upgrade as stream `id`.
  void become_event_stream(std::shared_ptr<EventOutbox> outbox, std::uint64_t id);
  void close();

  boost::beast::tcp_stream stream_;
  // HTTPS: the context it was accepted with and the TLS stream over stream_
  // (whose timeouts apply to the TLS records too).
  std::shared_ptr<boost::asio::ssl::context> tls_ctx_;
  std::unique_ptr<boost::asio::ssl::stream<boost::beast::tcp_stream&>> tls_;
  CoreHost& host_;
  NetState& net_;
  std::string peer_ip_;
  boost::beast::flat_buffer buf_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::beast::http::request<boost::beast::http::string_body> req_;
};

}  // namespace coord::io
