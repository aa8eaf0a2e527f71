// The records of a fault-test history, and their JSON-lines form
// (docs/formats/fault-history.md): what a client did, when, and what the
// reply said. coord-faults-workload writes them; the Python workloads of
// tests/faults write the same lines; coord-faults-check reads them all.
//
// Times are CLOCK_MONOTONIC nanoseconds, so the files of different
// processes on one machine compare. A record whose reply never came
// (outcome unknown) has no return time.
//
// Reading is strict about the shape (a missing or mistyped field, an
// unknown kind or outcome, a return before its call: the line is refused
// with the reason) and bounded (history_line_bytes_max per line,
// history_records_max per run), so a damaged file is reported, never
// half-checked.
// Thread safety: pure functions over values; load_file reads one file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coord::faults {

// Longest line accepted: a seq_list of a long run names many children.
inline constexpr std::size_t history_line_bytes_max = 16 * 1024 * 1024;
// Records of one run, over all its files; beyond, the input is refused
// rather than checked with unbounded memory.
inline constexpr std::size_t history_records_max = 2'000'000;

enum class Kind : std::uint8_t {
  Create,  // a versioned register per key: create, set, delete, read
  Set,
  Delete,
  Read,       // sync(key) then getData(key) on one session
  SeqCreate,  // PERSISTENT_SEQUENTIAL create under key (the parent)
  SeqList,    // the parent's children, read from one server at the end
  WatchSeen,  // a watcher read key after an event or a reconnect
  WatchDone,  // a watcher's last word: did it reach the final version
};
std::string_view kind_name(Kind k);
std::optional<Kind> kind_from_name(std::string_view name);

enum class Outcome : std::uint8_t {
  Ok,
  NodeExists,
  NoNode,
  BadVersion,
  Unknown,  // no reply (ConnectionLoss, OperationTimeout): may have happened
  Fail,     // a definite failure that did nothing (SessionExpired, NotReadOnly, ...)
};
std::string_view outcome_name(Outcome o);
std::optional<Outcome> outcome_from_name(std::string_view name);

struct Record {
  std::string process;
  Kind kind = Kind::Read;
  std::string key;
  std::string data;
  std::int32_t expected_version = -1;
  std::int32_t version = 0;
  Outcome outcome = Outcome::Ok;
  std::string error;  // the error's name, for unknown and fail
  std::uint64_t call_ns = 0;
  std::optional<std::uint64_t> ret_ns;  // nullopt exactly when unknown
  std::string server;
  std::string session;  // hex
  std::string note;
  std::string path;                   // seq_create ok: the created path
  std::vector<std::string> children;  // seq_list: names
  // watch_done
  bool reached = false;
  std::int32_t final_version = 0;

  // Where the record was read from, for reports; not part of the line.
  std::string file;
  std::size_t line = 0;
};

// One JSON object, no newline. Fields a kind does not use are left out.
std::string to_json_line(const Record& r);

// The record of one line, or the reason it is not one.
struct ParsedLine {
  std::optional<Record> record;
  std::string error;
};
ParsedLine parse_line(std::string_view line);

struct LoadLimits {
  std::size_t line_bytes_max = history_line_bytes_max;
  // Counted over `out`, so over every file of the run read into it.
  std::size_t records_max = history_records_max;
};

// Appends the records of `path` to `out` (blank lines are skipped). On
// failure, `error` is "FILE:LINE: reason" (or "FILE: reason") and `out`
// holds what was read before.
bool load_file(const std::string& path, std::vector<Record>& out, std::string& error,
               const LoadLimits& limits = {});

// "file:line process f key ..." for a report.
std::string describe(const Record& r);

}  // namespace coord::faults
