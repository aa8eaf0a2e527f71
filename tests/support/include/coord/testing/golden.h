// Golden-file tests for coord's state machines, in the style of etcd's
// datadriven scripts.
//
// A script is a sequence of cases. Each case is a command line, optional
// input lines, a `----` separator and the expected output, which ends at the
// first empty line:
//
//     # comments and blank lines between cases are ignored
//     create /a data=x mode=ephemeral session=1
//     ----
//     ok path=/a
//
// The runner calls the handler for each case and compares its output with
// the expected text (trailing spaces and a trailing newline ignored; empty
// lines in the actual output are shown as `<empty>` so they cannot end the
// block). With COORD_REWRITE_GOLDEN=1 in the environment the expected output
// is rewritten from the actual one instead, and the script saved.
// Not thread-safe; call from one test.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coord::testing {

struct GoldenCase {
  std::string file;
  int line = 0;                   // of the command
  std::string command;            // first word
  std::vector<std::string> args;  // the other words; "quoted words" keep spaces
  std::string input;              // lines between the command and ----
  std::string expected;

  // Value of a `key=value` argument, if present.
  std::optional<std::string> get(std::string_view key) const;
  std::string get_or(std::string_view key, std::string_view fallback) const;
  bool has_flag(std::string_view word) const;  // a bare word among args
  // Positional arguments: those without '='.
  std::vector<std::string> positional() const;
};

using GoldenHandler = std::function<std::string(const GoldenCase&)>;

// Runs one script; mismatches are reported as gtest failures naming file:line.
void run_golden_file(const std::string& path, const GoldenHandler& handler);

// Splits a command line into words at spaces and tabs; "quoted words"
// keep their spaces (the quotes are dropped).
std::vector<std::string> split_words(const std::string& line);

// The *.txt scripts in `dir`, sorted by name.
std::vector<std::string> golden_files(const std::string& dir);

}  // namespace coord::testing
