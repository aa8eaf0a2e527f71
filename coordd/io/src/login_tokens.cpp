#include "coord/io/login_tokens.h"

#include <openssl/rand.h>

#include <algorithm>

#include "coord/base/assert.h"

namespace coord::io {

LoginTokens::LoginTokens(std::size_t capacity, std::int64_t idle_ms)
    : capacity_(capacity), idle_ms_(idle_ms) {
  COORD_ASSERT(capacity_ > 0, "a login table holds at least one token");
}

void LoginTokens::add(const std::string& token, std::optional<BasicCredentials> credentials,
                      TimeMs now) {
  if (logins_.size() >= capacity_ && !logins_.contains(token)) {
    expire(now);
    if (logins_.size() >= capacity_) {
      // Linear, but only when the table is full of live logins.
      auto oldest =
          std::min_element(logins_.begin(), logins_.end(), [](const auto& a, const auto& b) {
            return a.second.last_used.value() < b.second.last_used.value();
          });
      logins_.erase(oldest);
    }
  }
  logins_[token] = Login{std::move(credentials), now};
}

const Login* LoginTokens::find(const std::string& token, TimeMs now) {
  auto it = logins_.find(token);
  if (it == logins_.end()) return nullptr;
  if (expired(it->second, now)) {
    logins_.erase(it);
    return nullptr;
  }
  it->second.last_used = now;
  return &it->second;
}

bool LoginTokens::remove(const std::string& token) {
  return logins_.erase(token) > 0;
}

void LoginTokens::expire(TimeMs now) {
  std::erase_if(logins_, [&](const auto& e) { return expired(e.second, now); });
}

std::string random_login_token() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

}  // namespace coord::io
