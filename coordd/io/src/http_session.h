// One HTTP connection on the network thread: reads a request, has the core
// thread answer it (handle_http), writes the reply, and reads the next
// while the client keeps the connection alive. A request that does not
// arrive whole, or a reply the client does not take, within the HTTP idle
// limit closes the connection. Counted in NetState while it lives.
// Thread safety: the network thread (its stream's executor) only.
#pragma once

// Before Asio, whose awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <string>

namespace coord::io {

struct CoreHost;
struct HttpReply;
struct NetState;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, CoreHost& host, NetState& net);
  ~HttpSession();

  void start() { read(); }

 private:
  std::string peer_ip();
  void read();
  void dispatch();
  void write(const HttpReply& reply);
  void close();

  boost::beast::tcp_stream stream_;
  CoreHost& host_;
  NetState& net_;
  std::string peer_ip_;
  boost::beast::flat_buffer buf_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::beast::http::request<boost::beast::http::string_body> req_;
};

}  // namespace coord::io
