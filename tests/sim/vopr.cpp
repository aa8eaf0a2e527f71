// coord-vopr: runs the Raft simulator over many seeds, or replays one.
//
//   coord-vopr [--seeds=N] [--first-seed=S]   N seeds from S (default 1000 from 1)
//   coord-vopr --seed=S [--verbose]           one seed, every event printed
//   options: --fault-ticks=T  --broken-commit-for-testing
//
// Exit status 0 when every seed passed; 1 otherwise, after printing each
// failing seed with the command that replays it.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "raft_sim.h"

namespace {

bool flag_value(const char* arg, const char* name, std::string& out) {
  const std::size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) == 0 && arg[n] == '=') {
    out = arg + n + 1;
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using coord::consensus::sim::SimOptions;
  SimOptions base;
  std::uint64_t seeds = 1000, first = 1;
  bool single = false;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (flag_value(argv[i], "--seeds", v)) {
      seeds = std::stoull(v);
    } else if (flag_value(argv[i], "--first-seed", v)) {
      first = std::stoull(v);
    } else if (flag_value(argv[i], "--seed", v)) {
      first = std::stoull(v);
      seeds = 1;
      single = true;
    } else if (flag_value(argv[i], "--fault-ticks", v)) {
      base.fault_ticks = std::stoi(v);
    } else if (std::strcmp(argv[i], "--verbose") == 0) {
      base.verbose = true;
    } else if (std::strcmp(argv[i], "--broken-commit-for-testing") == 0) {
      base.commit_by_counting_earlier_terms = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seeds=N] [--first-seed=S] [--seed=S] [--verbose]\n"
                   "          [--fault-ticks=T] [--broken-commit-for-testing]\n",
                   argv[0]);
      return 2;
    }
  }
  std::uint64_t failed = 0, committed = 0, elections = 0, crashes = 0, messages = 0;
  std::uint64_t forwarded = 0, failed_reads = 0, chunks = 0, chunked = 0, joint = 0;
  for (std::uint64_t s = first; s < first + seeds; ++s) {
    SimOptions o = base;
    o.seed = s;
    auto r = coord::consensus::sim::run_simulation(o);
    committed += r.committed;
    elections += r.elections;
    crashes += r.crashes;
    messages += r.messages;
    forwarded += r.forwarded;
    failed_reads += r.failed_reads;
    chunks += r.chunks;
    chunked += r.chunked_snapshots;
    joint += r.joint_changes;
    if (!r.ok) {
      ++failed;
      std::printf("seed %llu FAILED: %s\n  replay: %s\n", static_cast<unsigned long long>(s),
                  r.failure.c_str(), coord::consensus::sim::replay_command(o).c_str());
    } else if (single) {
      std::printf(
          "seed %llu ok: %d nodes, %llu committed, %llu elections, %llu crashes\n",
          static_cast<unsigned long long>(s), r.nodes, static_cast<unsigned long long>(r.committed),
          static_cast<unsigned long long>(r.elections), static_cast<unsigned long long>(r.crashes));
    }
  }
  std::printf(
      "%llu seed(s), %llu failed; %llu entries committed, %llu elections, %llu crashes, "
      "%llu messages\n",
      static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(failed),
      static_cast<unsigned long long>(committed), static_cast<unsigned long long>(elections),
      static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(messages));
  std::printf(
      "  %llu forwarded proposal batches, %llu failed reads, %llu snapshot chunks, "
      "%llu snapshots installed from chunks, %llu joint changes\n",
      static_cast<unsigned long long>(forwarded), static_cast<unsigned long long>(failed_reads),
      static_cast<unsigned long long>(chunks), static_cast<unsigned long long>(chunked),
      static_cast<unsigned long long>(joint));
  return failed == 0 ? 0 : 1;
}
