// Big-endian integers in byte strings: the fixed-width fields of coord's
// own record formats (log records, snapshots, commands). Readers that take
// from the front of a view report a short input instead of reading past it.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace coord {

// Appends the low `bytes` bytes of v, most significant first.
inline void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out.push_back(static_cast<char>(v >> (8 * i)));
}
inline void put_be64(std::string& out, std::uint64_t v) {
  put_be(out, v, 8);
}
inline void put_be32(std::string& out, std::uint32_t v) {
  put_be(out, v, 4);
}

// Reads `bytes` bytes at p, most significant first.
inline std::uint64_t get_be(const void* p, int bytes) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | b[i];
  return v;
}
inline std::uint64_t get_be64(const void* p) {
  return get_be(p, 8);
}
inline std::uint32_t get_be32(const void* p) {
  return static_cast<std::uint32_t>(get_be(p, 4));
}

// Takes a field from the front of `in`; false (and `in` untouched) when
// fewer bytes are left.
inline bool take_be64(std::string_view& in, std::uint64_t& v) {
  if (in.size() < 8) return false;
  v = get_be64(in.data());
  in.remove_prefix(8);
  return true;
}
inline bool take_be32(std::string_view& in, std::uint32_t& v) {
  if (in.size() < 4) return false;
  v = get_be32(in.data());
  in.remove_prefix(4);
  return true;
}

}  // namespace coord
