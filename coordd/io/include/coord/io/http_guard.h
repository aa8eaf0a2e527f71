// What the HTTP port checks before it routes a request, as pure functions
// of the request's headers and the server's settings: HTTP Basic
// credentials, the Host a request names (against DNS rebinding: a page
// whose name resolves to this server still sends its own name) and the
// Origin and Content-Type of a state-changing request (against a page in a
// browser posting across sites, which needs no CORS preflight for a
// text/plain, form or multipart body).
//
// Host names compare without their port and case-insensitively; an IPv6
// literal is written in brackets in a Host or Origin ("[::1]:8080") and
// listed without them ("::1"). An Origin compares as scheme://host[:port]
// with the request's own Host and scheme, or with an allowed origin as
// listed. Nothing here trusts X-Forwarded-For or X-Real-IP: the caller's
// address is the socket's.
//
// Thread safety: pure functions; HttpGuardConfig is read-only once built.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/status.h"

namespace coord::io {

struct BasicCredentials {
  std::string user;
  std::string password;
  // "user:password", what `addauth digest` takes.
  std::string auth() const { return user + ":" + password; }
};

// The value of an Authorization header: "Basic <base64(user:password)>",
// the scheme in any case. BadArguments saying why for another scheme, bad
// base64, no colon, an empty user, control characters or more than
// limits::http_credentials_bytes_max decoded bytes.
Result<BasicCredentials> parse_basic_authorization(std::string_view value);

// The host name of a Host header or of an Origin's authority, lowercased,
// without port or IPv6 brackets; nullopt when it is not host[:port].
std::optional<std::string> host_name_of(std::string_view authority);

// Whether `host` (no brackets) is an IPv4 or IPv6 literal.
bool is_ip_literal(std::string_view host);
// Whether `host` is a loopback address or name (127/8, ::1, localhost).
bool is_loopback_host(std::string_view host);

// Decodes the %XX escapes of a URL's path or, with `query`, of a query
// parameter's value, where '+' is a space too; false on a malformed escape.
bool url_decode(std::string_view in, std::string& out, bool query = false);

struct HttpGuardConfig {
  // Names requests may give as Host besides the built-in ones (localhost,
  // 127.0.0.1, ::1) and the membership's addresses.
  std::vector<std::string> allowed_hosts;
  // --http-allowed-hosts '*': no Host check at all.
  bool any_host = false;
  // Bound to a wildcard address (0.0.0.0, ::): every address of the
  // machine is this server's own, so any IP literal is accepted as Host.
  // A literal is never a rebinding (that needs a name the attacker owns).
  bool any_ip_literal = false;
  // Origins (scheme://host[:port]) allowed besides the request's own.
  std::vector<std::string> allowed_origins;
  bool any_origin = false;
  // Basic credentials may arrive in clear over the network: plain HTTP on
  // an address other than loopback. Shown in /readyz.
  bool credentials_in_clear = false;
};

// Builds the configuration from the flags: `bind` is the HTTP listen
// address; `hosts` and `origins` are comma-separated lists (`*`: any).
HttpGuardConfig make_http_guard(std::string_view bind, std::string_view hosts,
                                std::string_view origins, bool tls);

// Whether a request naming `host_header` is one this server answers;
// `member_hosts` are the hosts of the membership's peer and client
// addresses. A request without a Host header (HTTP/1.0) passes: no
// browser sends one without it.
bool host_allowed(const HttpGuardConfig& config, std::string_view host_header,
                  const std::vector<std::string>& member_hosts);

// Whether a state-changing request with Origin `origin` may go on: its
// origin is the request's own (`secure` picks https) or an allowed one.
bool origin_allowed(const HttpGuardConfig& config, std::string_view origin,
                    std::string_view host_header, bool secure);

// Whether a Content-Type is one a browser sends across sites without a
// preflight: text/plain, application/x-www-form-urlencoded,
// multipart/form-data (parameters and case ignored).
bool is_cors_simple_content_type(std::string_view content_type);
// Whether a Content-Type is application/json (parameters ignored).
bool is_json_content_type(std::string_view content_type);

}  // namespace coord::io
