#include "coord/agent/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

#include "coord/base/limits.h"

namespace coord::agent {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

Result<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view hp) {
  std::size_t colon = hp.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status(ErrorCode::BadArguments, "expected host:port, got '" + std::string(hp) + "'");
  }
  std::string_view port_text = hp.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return Status(ErrorCode::BadArguments, "bad port in '" + std::string(hp) + "'");
  }
  std::string host(hp.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

Result<HttpResponse> http_request(const std::string& host, std::uint16_t port,
                                  std::string_view method, std::string_view target,
                                  std::string_view body, std::chrono::milliseconds timeout,
                                  std::string_view authorization) {
  std::string where = host + ":" + std::to_string(port);
  boost::asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::error_code ec;
  auto fail = [&](std::string_view what) {
    return Status(ErrorCode::ConnectionLoss,
                  where + ": " + std::string(what) + ": " + ec.message());
  };
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return fail("resolve");
  stream.expires_after(timeout);
  stream.connect(endpoints, ec);
  if (ec) return fail("connect");

  http::request<http::string_body> req;
  req.method(http::string_to_verb(beast::string_view(method.data(), method.size())));
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  req.set(http::field::host, where);
  req.set(http::field::user_agent, "coord");
  req.set(http::field::connection, "close");
  if (!authorization.empty()) {
    req.set(http::field::authorization,
            beast::string_view(authorization.data(), authorization.size()));
  }
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::string(body);
  }
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) return fail("send");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(limits::agent_http_response_bytes_max);
  http::read(stream, buffer, parser, ec);
  if (ec) return fail("read");
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  HttpResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
  return out;
}

}  // namespace coord::agent
