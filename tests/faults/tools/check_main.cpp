// coord-faults-check: checks the histories of a fault-test run (check.h).
//
//   coord-faults-check [--json OUT] [--steps-max N] [--cache-max N] FILE...
//
// Prints a summary on stdout; with --json writes the verdict file. Exit
// code: 0 ok, 1 anomalies, 3 unknown (a search bound passed), 2 unreadable
// input (the message names FILE:LINE) or bad usage.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "check.h"
#include "history.h"

int main(int argc, char** argv) {
  using namespace coord::faults;
  CLI::App app{"Checks the histories of a fault-test run"};
  std::vector<std::string> files;
  std::string json_out;
  CheckOptions options;
  app.add_option("files", files, "history files (JSON lines)")->required();
  app.add_option("--json", json_out, "write the verdict as JSON to this file");
  app.add_option("--steps-max", options.steps_max,
                 "linearizability search steps per key before it is unknown")
      ->check(CLI::PositiveNumber);
  app.add_option("--cache-max", options.cache_entries_max,
                 "memoized search states per key before it is unknown")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : exit_unreadable;
  }

  std::vector<Record> records;
  for (const std::string& f : files) {
    std::string error;
    if (!load_file(f, records, error)) {
      std::fprintf(stderr, "coord-faults-check: %s\n", error.c_str());
      return exit_unreadable;
    }
  }
  const Report report = check(records, options);
  std::fputs(summary(report).c_str(), stdout);
  std::fflush(stdout);
  if (!json_out.empty()) {
    std::ofstream out(json_out, std::ios::trunc);
    out << to_json(report);
    out.close();
    if (!out) {
      std::fprintf(stderr, "coord-faults-check: cannot write %s\n", json_out.c_str());
      return exit_unreadable;
    }
  }
  return exit_code(report.verdict);
}
