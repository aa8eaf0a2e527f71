// A small synchronous HTTP/1.1 client (Boost.Beast) for coordd's admin API:
// one request per connection, every step bounded by one deadline.
// Thread safety: each call is independent.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "coord/base/status.h"

namespace coord::cli {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// Splits "host:port" (port required, 1..65535).
Result<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view hp);

// Sends `method target` with a JSON body (when not empty) to host:port.
// ConnectionLoss with a message when the server cannot be reached or does
// not answer within `timeout`.
Result<HttpResponse> http_request(const std::string& host, std::uint16_t port,
                                  std::string_view method, std::string_view target,
                                  std::string_view json_body, std::chrono::milliseconds timeout);

}  // namespace coord::cli
