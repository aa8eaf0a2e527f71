// The checks of coord-faults-check over the records of a fault-test run
// (history.h, docs/formats/fault-history.md):
//
// - linearizability: the create / set / delete / read records of each key
//   are the history of a versioned register, checked with the search of
//   tests/coordd_core/linearizability.h (bounded per key in steps and
//   memoized states, and over the run by check_steps_total_max and
//   check_cache_bytes_max; a key past a bound is "unknown", not a pass).
//   The final reads of each server enter here like any read, which is how
//   a write acknowledged and then lost is caught.
// - sequential: per parent, the ok seq_create records returned distinct
//   paths whose sequence numbers respect real time; every seq_list holds
//   every child whose create was acknowledged before the listing started;
//   children no acknowledged create returned are no more than the creates
//   of unknown outcome; and all listings of a parent agree.
// - watches: per key, each watcher's versions never go back; the records
//   naming one version (watch_seen, ok create / set / read) agree on its
//   data; a watch_done that did not reach the final version is a lost watch.
//
// A verdict is "ok", "anomalies" (anything found, each with the records
// involved) or "unknown" (no anomaly, but some key's search passed a
// bound).
// Thread safety: pure functions over values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "history.h"

namespace coord::faults {

// Per key: steps of the linearizability search and memoized states.
inline constexpr std::uint64_t check_steps_max_default = 2'000'000;
inline constexpr std::size_t check_cache_entries_max_default = 1'000'000;
// Over the whole run: steps of every key's search together; keys after the
// budget is spent are unknown.
inline constexpr std::uint64_t check_steps_total_max = 200'000'000;
// Memory of one key's memoized states (each holds a bit per operation);
// the entry bound shrinks so that it fits.
inline constexpr std::size_t check_cache_bytes_max = 512 * 1024 * 1024;
// Anomalies reported in detail per check and key; beyond, they are counted.
inline constexpr std::size_t check_anomalies_per_key_max = 20;

struct CheckOptions {
  std::uint64_t steps_max = check_steps_max_default;
  std::size_t cache_entries_max = check_cache_entries_max_default;
  std::uint64_t steps_total_max = check_steps_total_max;
};

enum class Verdict : std::uint8_t { Ok, Anomalies, Unknown };
std::string_view verdict_name(Verdict v);
// 0 ok, 1 anomalies, 3 unknown (2 is an unreadable input, found before).
int exit_code(Verdict v);
inline constexpr int exit_unreadable = 2;

struct Anomaly {
  std::string check;  // "linearizability", "sequential", "watches"
  std::string key;
  std::string detail;  // names the records involved, one per line
};

struct LinKey {
  std::string key;
  std::string verdict;  // linearizable, not_linearizable, unknown
  std::size_t ops = 0;
  std::uint64_t steps = 0;
  std::string explanation;
};

struct LinSection {
  Verdict verdict = Verdict::Ok;
  std::size_t ops = 0;       // register records checked
  std::size_t left_out = 0;  // definite failures, and unknown reads: nothing to check
  std::uint64_t steps = 0;
  std::size_t unknown_keys = 0;
  std::vector<LinKey> keys;
};

struct SeqSection {
  Verdict verdict = Verdict::Ok;
  std::size_t parents = 0;
  std::size_t creates_ok = 0;
  std::size_t creates_unknown = 0;
  std::size_t lists = 0;
};

struct WatchSection {
  Verdict verdict = Verdict::Ok;
  std::size_t keys = 0;
  std::size_t seen = 0;
  std::size_t done = 0;
  // Keys whose data per version could not be compared (deleted during the
  // run: a version number then names more than one incarnation).
  std::vector<std::string> not_compared;
};

struct Report {
  Verdict verdict = Verdict::Ok;
  std::size_t ops = 0;  // records read
  LinSection lin;
  SeqSection seq;
  WatchSection watches;
  std::vector<Anomaly> anomalies;
};

Report check(const std::vector<Record>& records, const CheckOptions& options = {});

// For a human: per check what was checked, then every anomaly.
std::string summary(const Report& report);
// The verdict file of --json.
std::string to_json(const Report& report);

}  // namespace coord::faults
