// A linearizability checker for histories of znodes used as versioned
// registers: create, setData (with an expected version or -1), delete (the
// same) and linearizable reads, each with the time it was called and the
// time its reply arrived.
//
// The search is Wing & Gong's, with the memoization of Lowe and of
// Porcupine: operations are linearized one at a time in an order that
// respects real time, backtracking when the model refuses one, and a
// (set of linearized operations, register state) pair already explored is
// never explored again. Histories are split per znode first, which keeps
// each search small (linearizability is compositional).
//
// An operation whose outcome is unknown (its connection was lost before
// the reply) may have taken effect at any time after its call, or never:
// its reply time is "never", and the model lets it happen with whatever
// effect the state allows. Never happening is linearizing it after
// everything else, where nothing observes it.
//
// The search is bounded in steps and memoized states; a key whose search
// passes a bound is reported Unknown, which is not a pass.
// Thread safety: pure functions over values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace coord::testing::lin {

// The reply time of an operation whose outcome is unknown.
inline constexpr std::uint64_t never = std::numeric_limits<std::uint64_t>::max();

enum class Kind : std::uint8_t { Create, Set, Delete, Read };

// What the reply said. Anything else (SessionExpired, NotReadOnly, ...)
// means the operation did nothing and is left out of the history.
enum class Outcome : std::uint8_t {
  Ok,
  NodeExists,  // create of a node that exists
  NoNode,      // set, delete or read of a node that does not exist
  BadVersion,  // set or delete whose expected version did not match
  Unknown,     // no reply: may have happened, or not
};

struct Op {
  std::string key;
  Kind kind = Kind::Read;
  // Create, Set: the bytes written. Read with Ok: the bytes read.
  std::string data;
  // Set, Delete: the expected version, -1 for any.
  std::int32_t expected_version = -1;
  // Set with Ok: the version after it. Read with Ok: the version read.
  std::int32_t version = 0;
  Outcome outcome = Outcome::Ok;
  std::uint64_t call = 0;
  std::uint64_t ret = never;  // `never` exactly when outcome is Unknown
  // Shown in a report ("client 3 session 0x.. xid 17").
  std::string label;
};

struct Limits {
  // Steps of the search (linearization attempts) per key.
  std::uint64_t steps_max = 2'000'000;
  // Memoized (linearized set, state) pairs per key.
  std::size_t cache_entries_max = 1'000'000;
};

enum class Verdict : std::uint8_t { Linearizable, NotLinearizable, Unknown };
std::string_view to_string(Verdict v);

struct KeyResult {
  std::string key;
  Verdict verdict = Verdict::Linearizable;
  std::size_t ops = 0;
  std::uint64_t steps = 0;
  // NotLinearizable: the longest linearizable prefix found and the
  // operations none of which could come next, for a human to read.
  std::string explanation;
};

struct Result {
  // NotLinearizable if any key is; else Unknown if any key is; else
  // Linearizable.
  Verdict verdict = Verdict::Linearizable;
  std::vector<KeyResult> keys;
  std::size_t unknown_keys = 0;
};

// Checks every key's history; each key starts absent.
Result check(const std::vector<Op>& history, const Limits& limits = {});

std::string describe(const Op& op);

}  // namespace coord::testing::lin
