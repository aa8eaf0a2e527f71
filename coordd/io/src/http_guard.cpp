#include "coord/io/http_guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "coord/base/limits.h"

namespace coord::io {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with padding (RFC 4648 §4), as browsers and curl send it;
// nullopt for anything else.
std::optional<std::string> decode_base64(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + static_cast<std::size_t>(k)];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = base64_value(c);
      if (v[k] < 0) return std::nullopt;
    }
    const std::uint32_t n =
        (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
        (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

// "scheme://authority" split; nullopt when it is not that shape.
struct Origin {
  std::string scheme;
  std::string authority;
};

std::optional<Origin> split_origin(std::string_view origin) {
  const auto sep = origin.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  Origin o{lower(origin.substr(0, sep)), lower(origin.substr(sep + 3))};
  if (o.authority.empty() || o.authority.find('/') != std::string::npos) return std::nullopt;
  return o;
}

// The authority with the scheme's default port spelled out, so that
// "http://a" and "http://a:80" compare equal.
std::string with_port(const Origin& o) {
  const bool bracketed_end = !o.authority.empty() && o.authority.back() == ']';
  const auto colon = o.authority.rfind(':');
  const bool has_port = colon != std::string::npos && !bracketed_end &&
                        (o.authority.front() != '[' || colon > o.authority.find(']'));
  if (has_port) return o.scheme + "://" + o.authority;
  return o.scheme + "://" + o.authority + (o.scheme == "https" ? ":443" : ":80");
}

// Host names equal, or IP literals of one address ("::1" and
// "0:0:0:0:0:0:0:1", as ZooKeeper prints IPv6).
bool same_host(const std::string& a, const std::string& b) {
  if (a == b) return true;
  unsigned char x[16];
  unsigned char y[16];
  if (::inet_pton(AF_INET6, a.c_str(), x) == 1 && ::inet_pton(AF_INET6, b.c_str(), y) == 1) {
    return std::equal(x, x + 16, y);
  }
  return false;
}

std::string_view media_type(std::string_view content_type) {
  return trim(content_type.substr(0, content_type.find(';')));
}

std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t end = std::min(list.find(',', start), list.size());
    const std::string_view item = trim(list.substr(start, end - start));
    if (!item.empty()) out.push_back(lower(item));
    start = end + 1;
  }
  return out;
}

}  // namespace

Result<BasicCredentials> parse_basic_authorization(std::string_view value) {
  value = trim(value);
  const auto space = value.find(' ');
  if (space == std::string_view::npos || lower(value.substr(0, space)) != "basic") {
    return Status(ErrorCode::BadArguments, "only Basic credentials are accepted");
  }
  const std::string_view encoded = trim(value.substr(space + 1));
  if (encoded.size() > 4 * ((limits::http_credentials_bytes_max + 2) / 3)) {
    return Status(
        ErrorCode::BadArguments,
        "credentials over " + std::to_string(limits::http_credentials_bytes_max) + " bytes");
  }
  auto decoded = decode_base64(encoded);
  if (!decoded) return Status(ErrorCode::BadArguments, "credentials are not base64");
  for (const char c : *decoded) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return Status(ErrorCode::BadArguments, "control characters in the credentials");
    }
  }
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) {
    return Status(ErrorCode::BadArguments, "credentials must be user:password");
  }
  if (colon == 0) return Status(ErrorCode::BadArguments, "the user name is empty");
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

std::optional<std::string> host_name_of(std::string_view authority) {
  authority = trim(authority);
  if (authority.empty()) return std::nullopt;
  std::string_view host;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    host = authority.substr(1, close - 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (host.empty()) return std::nullopt;
  }
  if (port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  for (const char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '-' || c == '.' || c == ':' || c == '_' || c == '%')) {
      return std::nullopt;
    }
  }
  std::string h = lower(host);
  // "localhost." and "localhost" are the same name.
  if (h.size() > 1 && h.back() == '.') h.pop_back();
  return h;
}

bool is_ip_literal(std::string_view host) {
  const std::string h(host);
  unsigned char buf[16];
  return ::inet_pton(AF_INET, h.c_str(), buf) == 1 || ::inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool is_loopback_host(std::string_view host) {
  const std::string h = lower(host);
  if (h == "localhost" || h == "::1") return true;
  unsigned char v4[4];
  return ::inet_pton(AF_INET, h.c_str(), v4) == 1 && v4[0] == 127;
}

HttpGuardConfig make_http_guard(std::string_view bind, std::string_view hosts,
                                std::string_view origins, bool tls) {
  HttpGuardConfig c;
  for (std::string& h : split_list(hosts)) {
    if (h == "*") {
      c.any_host = true;
      continue;
    }
    // Listed as an address may come with brackets or a port: keep the name.
    if (auto name = host_name_of(h)) c.allowed_hosts.push_back(*name);
  }
  for (std::string& o : split_list(origins)) {
    if (o == "*") {
      c.any_origin = true;
    } else {
      c.allowed_origins.push_back(o);
    }
  }
  const std::string b = lower(bind);
  if (b == "0.0.0.0" || b == "::" || b.empty()) {
    c.any_ip_literal = true;
  } else if (auto name = host_name_of(
                 b.find(':') != std::string::npos && b.front() != '[' ? "[" + b + "]" : b)) {
    c.allowed_hosts.push_back(*name);
  }
  c.credentials_in_clear = !tls && !is_loopback_host(b);
  return c;
}

bool host_allowed(const HttpGuardConfig& config, std::string_view host_header,
                  const std::vector<std::string>& member_hosts) {
  if (config.any_host || trim(host_header).empty()) return true;
  const auto name = host_name_of(host_header);
  if (!name) return false;
  if (*name == "localhost" || *name == "127.0.0.1" || *name == "::1") return true;
  if (config.any_ip_literal && is_ip_literal(*name)) return true;
  auto listed = [&](const std::string& h) {
    auto n = host_name_of(h.find(':') != std::string::npos && h.front() != '[' ? "[" + h + "]" : h);
    return n && same_host(*n, *name);
  };
  return std::any_of(config.allowed_hosts.begin(), config.allowed_hosts.end(), listed) ||
         std::any_of(member_hosts.begin(), member_hosts.end(), listed);
}

bool origin_allowed(const HttpGuardConfig& config, std::string_view origin,
                    std::string_view host_header, bool secure) {
  if (config.any_origin) return true;
  const auto o = split_origin(trim(origin));
  if (!o || !host_name_of(o->authority)) return false;  // "null", opaque origins
  const std::string mine = with_port(*o);
  if (!trim(host_header).empty() && host_name_of(host_header)) {
    const Origin own{secure ? "https" : "http", lower(trim(host_header))};
    if (with_port(own) == mine) return true;
  }
  return std::any_of(config.allowed_origins.begin(), config.allowed_origins.end(),
                     [&](const std::string& a) {
                       const auto listed = split_origin(a);
                       return listed && with_port(*listed) == mine;
                     });
}

bool is_cors_simple_content_type(std::string_view content_type) {
  const std::string t = lower(media_type(content_type));
  return t == "text/plain" || t == "application/x-www-form-urlencoded" ||
         t == "multipart/form-data";
}

bool is_json_content_type(std::string_view content_type) {
  return lower(media_type(content_type)) == "application/json";
}

bool url_decode(std::string_view in, std::string& out, bool query) {
  out.clear();
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+' && query) {
      out += ' ';
    } else if (in[i] != '%') {
      out += in[i];
    } else {
      if (i + 2 >= in.size()) return false;
      const int hi = hexval(in[i + 1]);
      const int lo = hexval(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return true;
}

}  // namespace coord::io
