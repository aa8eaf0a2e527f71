// Hex helpers for byte-exact protocol tests: vectors are written as hex with
// spaces between fields, so a test reads like the wire layout tables.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "coord/base/assert.h"
#include "coord/protocol/jute.h"

namespace coord::protocol::testhex {

inline Bytes hex(std::string_view text) {
  Bytes out;
  int hi = -1;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '|') continue;
    int v = 0;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else {
      COORD_UNREACHABLE("bad hex character ", c);
    }
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  COORD_ASSERT(hi < 0, "odd number of hex digits");
  return out;
}

inline std::string to_hex(ByteSpan b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (std::uint8_t x : b) {
    s.push_back(kDigits[x >> 4]);
    s.push_back(kDigits[x & 15]);
  }
  return s;
}

// Hex of an ASCII string, for readable vectors: ascii("/a") == "2f61".
inline std::string ascii(std::string_view s) {
  return to_hex(ByteSpan(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

}  // namespace coord::protocol::testhex
