// Hashing for the data tree's index and digest: a fast, seedless 64-bit
// hash with good avalanche. Not cryptographic; the digest's promise is
// "equal contents, equal digest; different contents, different digest up
// to 64-bit collisions". Identical on every platform (little-endian loads
// are spelled out), because replicas compare digests.
// Thread safety: pure functions.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace coord::znode::detail {

constexpr std::uint64_t mix64(std::uint64_t x) {
  // splitmix64's finalizer.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Little-endian loads, spelled out so that every platform hashes alike.
inline std::uint64_t load_le64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native != std::endian::little) v = __builtin_bswap64(v);
  return v;
}

inline std::uint64_t load_le32(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native != std::endian::little) v = __builtin_bswap32(v);
  return v;
}

// The full 128-bit product of a and b with its halves xored: one multiply
// mixes 128 input bits, and independent products run in parallel.
inline std::uint64_t mul_fold(std::uint64_t a, std::uint64_t b) {
  __extension__ using u128 = unsigned __int128;
  const u128 r = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline constexpr std::uint64_t kHashK0 = 0xa0761d6478bd642fULL;
inline constexpr std::uint64_t kHashK1 = 0xe7037ed1a0b428dbULL;
inline constexpr std::uint64_t kHashK2 = 0x8ebc6af09c88c6e3ULL;
inline constexpr std::uint64_t kHashK3 = 0x589965cc75374cc3ULL;

// 16 bytes per multiply; short inputs (paths, small data) take one or two
// overlapping loads and no byte loop.
inline std::uint64_t hash_bytes(const void* data, std::size_t n, std::uint64_t seed = 0) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = seed ^ mul_fold(seed ^ kHashK0, n ^ kHashK1);
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (n <= 16) {
    if (n >= 8) {
      a = load_le64(p);
      b = load_le64(p + n - 8);
    } else if (n >= 4) {
      a = load_le32(p);
      b = load_le32(p + n - 4);
    } else if (n > 0) {
      a = (std::uint64_t{p[0]} << 16) | (std::uint64_t{p[n >> 1]} << 8) | p[n - 1];
    }
  } else {
    std::size_t left = n;
    while (left > 16) {
      h = mul_fold(load_le64(p) ^ kHashK2, load_le64(p + 8) ^ h);
      p += 16;
      left -= 16;
    }
    // The last 16 bytes, overlapping what came before when n is not a
    // multiple of 16.
    a = load_le64(p + left - 16);
    b = load_le64(p + left - 8);
  }
  return mix64(mul_fold(a ^ kHashK2, b ^ h ^ kHashK3) ^ n);
}

inline std::uint64_t hash_str(std::string_view s, std::uint64_t seed = 0) {
  return hash_bytes(s.data(), s.size(), seed);
}

// Hashes N words (N even) position by position: word i meets its own
// constant, pairs multiply independently (in parallel), and one final mix
// spreads the xor of the products. For fixed-shape records such as a node.
template <std::size_t N>
inline std::uint64_t hash_words(const std::uint64_t (&w)[N], std::uint64_t seed) {
  static_assert(N % 2 == 0, "hash_words takes pairs");
  static constexpr auto keys = [] {
    std::array<std::uint64_t, N> k{};
    for (std::size_t i = 0; i < N; ++i)
      k[i] = mix64(kHashK0 + i);
    return k;
  }();
  std::uint64_t acc = seed;
#pragma GCC unroll 16
  for (std::size_t i = 0; i < N; i += 2)
    acc ^= mul_fold(w[i] ^ keys[i], w[i + 1] ^ keys[i + 1]);
  return mix64(acc);
}

// Folds one more value into a running hash.
inline std::uint64_t hash_combine(std::uint64_t h, std::uint64_t v) {
  return mix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return hash_str(s); }
};

}  // namespace coord::znode::detail
