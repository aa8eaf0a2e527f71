// The login tokens of the HTTP API (POST /v1/auth/login): a token stands
// for the credentials it was made with (HTTP Basic user and password, or
// none), so that a request carrying `Authorization: Bearer <token>` acts as
// one carrying those credentials would. The web console keeps the token
// for the browser tab only; it is also its CSRF token, since it travels
// only in a header or a WebSocket URL no other site can make a browser
// send.
//
// Bounded: at most `capacity` tokens live; a new one beyond them replaces
// the one unused longest. A token unused for `idle_ms` is forgotten (each
// lookup renews it). Tokens and credentials live in memory only and are
// never logged. Time arrives as an input (steady milliseconds), so the
// table reads no clock; the tokens themselves come from the caller.
//
// Thread safety: none; coordd's loop thread owns the table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/io/http_guard.h"

namespace coord::io {

struct Login {
  // The credentials the login was made with; none: ip identity only.
  std::optional<BasicCredentials> credentials;
  TimeMs last_used{0};
};

class LoginTokens {
 public:
  explicit LoginTokens(std::size_t capacity = limits::login_tokens_max,
                       std::int64_t idle_ms = limits::login_token_idle_ms_max);

  // Records a login under `token` (fresh and unguessable: the caller draws
  // it from a cryptographic source).
  void add(const std::string& token, std::optional<BasicCredentials> credentials, TimeMs now);
  // The login of `token`, renewed; nullptr when unknown or idle too long
  // (then it is forgotten). Valid until the next call that changes the table.
  const Login* find(const std::string& token, TimeMs now);
  // Forgets `token`; false when it was not known.
  bool remove(const std::string& token);
  // Forgets every token idle for longer than the idle limit.
  void expire(TimeMs now);

  std::size_t size() const { return logins_.size(); }
  std::int64_t idle_ms() const { return idle_ms_; }

 private:
  bool expired(const Login& l, TimeMs now) const {
    return now.value() - l.last_used.value() > idle_ms_;
  }

  std::size_t capacity_;
  std::int64_t idle_ms_;
  std::unordered_map<std::string, Login> logins_;
};

// 32 lowercase hex digits from 16 bytes of OpenSSL's RAND_bytes; empty
// when the generator fails (then no token is issued).
std::string random_login_token();

}  // namespace coord::io
