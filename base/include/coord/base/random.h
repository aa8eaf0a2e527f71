// The random seam: a small, fast, seeded generator (xoshiro256**, seeded
// through splitmix64). The same seed yields the same sequence on every
// machine and compiler, which the simulator and the randomized tests rely on
// to replay a failure from its printed seed. Not thread-safe: one owner.
// Not for secrets (session passwords take their bytes from the OS, at the
// edge).
#pragma once

#include <array>
#include <cstdint>

namespace coord {

class Random {
 public:
  explicit Random(std::uint64_t seed);

  std::uint64_t next_u64();
  // Uniform in [lo, hi], both inclusive; lo <= hi.
  std::uint64_t uniform(std::uint64_t lo, std::uint64_t hi);
  // Uniform in [0, n); n > 0.
  std::uint64_t below(std::uint64_t n) { return uniform(0, n - 1); }
  // True with probability numerator / denominator.
  bool chance(std::uint64_t numerator, std::uint64_t denominator);
  // Uniform in [0, 1).
  double unit();

  // A seed from the operating system, for programs that want fresh runs.
  static std::uint64_t entropy_seed();

 private:
  std::array<std::uint64_t, 4> s_{};
};

}  // namespace coord
