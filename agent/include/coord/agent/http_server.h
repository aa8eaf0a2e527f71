// A small HTTP/1.1 server for coord's daemons (coord-sidecar, coord-healer):
// status, discovery answers and metrics on a local port. It is not coordd's
// HTTP API: no TLS, no identities; it answers whoever reaches the address
// it is given, so daemons bind it to loopback by default.
//
// The server runs an event loop on a thread of its own and calls the
// handler there, one request at a time: a handler must answer from state
// it can read quickly (a snapshot under a lock), never wait on the network.
// Every connection is bounded: agent_http_connections_max at once (more are
// closed at accept), agent_http_body_bytes_max per request body,
// agent_http_idle_ms_max to deliver a request or take a reply. A handler
// that throws answers 500; the exception stays on the server's thread.
//
// Thread safety: start() and the destructor from one thread; port() from
// any.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "coord/base/status.h"

namespace coord::agent {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query, percent-decoded
  std::string query;   // after '?', as sent ("" when none)
  std::string body;
  std::string peer_ip;
};

struct HttpAnswer {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpAnswer(const HttpRequest&)>;

class HttpServer {
 public:
  // Listens on host:port (port 0: a free port chosen by the kernel).
  // ConnectionLoss with the reason when the address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> start(const std::string& host, std::uint16_t port,
                                                   HttpHandler handler);
  // Stops accepting, closes every connection and joins the thread.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port bound.
  std::uint16_t port() const;

  // Opaque: the event loop and its connections.
  struct State;

 private:
  explicit HttpServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Decodes a URL path: "%2F" gives "/"; '+' stays '+' (it is literal in a
// path). BadArguments for a truncated or non-hex escape.
Result<std::string> percent_decode(std::string_view text);

}  // namespace coord::agent
