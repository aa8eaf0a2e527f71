// Strong types for identities and instants, so that a term can never be
// passed where a log index is expected (ScyllaDB's raft does the same).
//
// Each is a thin wrapper over an integer with comparisons, a successor and
// hashing. Arithmetic is deliberately narrow: adding a plain count moves an
// index or an instant, subtracting two of the same type gives a plain count.
// Thread safety: value types.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace coord {

template <typename Tag, typename Rep>
class StrongInt {
 public:
  using rep_type = Rep;

  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : v_(v) {}

  constexpr Rep value() const { return v_; }
  constexpr StrongInt next() const { return StrongInt(v_ + 1); }
  constexpr StrongInt prev() const { return StrongInt(v_ - 1); }

  constexpr StrongInt& operator++() {
    ++v_;
    return *this;
  }
  constexpr StrongInt& operator+=(Rep d) {
    v_ += d;
    return *this;
  }
  constexpr StrongInt& operator-=(Rep d) {
    v_ -= d;
    return *this;
  }
  friend constexpr StrongInt operator+(StrongInt a, Rep d) { return StrongInt(a.v_ + d); }
  friend constexpr StrongInt operator-(StrongInt a, Rep d) { return StrongInt(a.v_ - d); }
  friend constexpr Rep operator-(StrongInt a, StrongInt b) { return a.v_ - b.v_; }

  friend constexpr auto operator<=>(StrongInt, StrongInt) = default;
  friend constexpr bool operator==(StrongInt, StrongInt) = default;

  friend std::ostream& operator<<(std::ostream& os, StrongInt x) { return os << x.v_; }

 private:
  Rep v_{};
};

// A Raft term. 0 = before any election.
using Term = StrongInt<struct TermTag, std::uint64_t>;
// A position in the Raft log; 0 = before the first entry.
using LogIndex = StrongInt<struct LogIndexTag, std::uint64_t>;
// A ZooKeeper transaction id. coord uses the Raft log index of the entry, so
// it is 64-bit, strictly increasing and never rolls over. Signed because the
// wire form is a Jute long.
using Zxid = StrongInt<struct ZxidTag, std::int64_t>;
// A server of the cluster (Raft member id); 0 = none.
using NodeId = StrongInt<struct NodeIdTag, std::uint64_t>;
// A client session; 0 = no session. Also the ephemeralOwner of its nodes.
using SessionId = StrongInt<struct SessionIdTag, std::int64_t>;
// An instant in milliseconds: wall time since the Unix epoch for ctime and
// mtime, or a monotonic reading for timeouts (the Clock says which).
using TimeMs = StrongInt<struct TimeMsTag, std::int64_t>;

}  // namespace coord

template <typename Tag, typename Rep>
struct std::hash<coord::StrongInt<Tag, Rep>> {
  std::size_t operator()(coord::StrongInt<Tag, Rep> x) const noexcept {
    return std::hash<Rep>{}(x.value());
  }
};
