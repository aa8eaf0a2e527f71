// A small blocking HTTP/1.1 client (Boost.Beast) for coord's programs:
// coordctl's admin calls and a sidecar's HTTP health checks. One request per
// connection, every step bounded by one deadline.
// Thread safety: each call is independent.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "coord/base/status.h"

namespace coord::agent {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// Splits "host:port" (port required, 1..65535; "[v6]:port" gives "v6").
Result<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view host_port);

// Sends `method target` to host:port, with `body` as JSON when not empty
// and `authorization` as the Authorization header when not empty.
// ConnectionLoss with a message naming the step (resolve, connect, send,
// read) when the server cannot be reached or does not answer within
// `timeout` in all; a body past agent_http_response_bytes_max is a read
// error.
Result<HttpResponse> http_request(const std::string& host, std::uint16_t port,
                                  std::string_view method, std::string_view target,
                                  std::string_view body, std::chrono::milliseconds timeout,
                                  std::string_view authorization = {});

}  // namespace coord::agent
