// Throughput of the Raft core alone: a 3-node cluster in memory, messages
// delivered instantly, storage in memory, proposals batched. Measures how
// many small entries per second one core (one thread) can commit and apply
// on all three nodes — the ceiling the rest of coordd works under.
//
//   cmake --preset release && cmake --build --preset release -j2
//   ./build/release/bench/consensus/consensus-bench

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "coord/base/assert.h"
#include "coord/base/limits.h"
#include "coord/consensus/raft.h"
#include "coord/consensus/storage.h"

namespace coord::consensus {
namespace {

class Cluster3 {
 public:
  Cluster3() {
    ConfState conf;
    conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
    for (int i = 0; i < 3; ++i) {
      storage_[i] = std::make_unique<MemoryStorage>(conf);
      RaftConfig c;
      c.id = NodeId(i + 1);
      raft_[i] = std::make_unique<Raft>(c, *storage_[i], Random(i + 1));
    }
    raft_[0]->campaign();
    pump();
    COORD_ASSERT(raft_[0]->role() == Role::Leader, "no leader");
  }

  Raft& leader() { return *raft_[0]; }
  std::uint64_t applied(int i) const { return applied_[i]; }

  // Runs every node's Ready until the cluster is quiet: persist, deliver
  // the messages at once, apply, advance.
  void pump() {
    bool moved = true;
    while (moved) {
      moved = false;
      for (int i = 0; i < 3; ++i) {
        Raft& r = *raft_[i];
        if (!r.has_ready()) continue;
        moved = true;
        Ready rd = r.ready();
        storage_[i]->append(std::move(rd.entries));
        if (rd.hard_state) storage_[i]->set_hard_state(*rd.hard_state);
        for (Message& m : rd.messages) {
          const auto to = m.to.value();
          Status s = raft_[to - 1]->step(std::move(m));
          COORD_ASSERT(s.ok(), s.to_string());
        }
        if (!rd.committed_entries.empty()) {
          applied_[i] += rd.committed_entries.size();
          last_applied_[i] = rd.committed_entries.back().index;
        }
        r.advance();
        // Keep memory flat: snapshot and compact what every node applied.
        if (storage_[i]->entry_count() > limits::bench_raft_log_entries_max) {
          const LogIndex at = last_applied_[i];
          COORD_ASSERT(storage_[i]->create_snapshot(at, r.conf_state_at(at), {}).ok(), "");
          COORD_ASSERT(storage_[i]->compact(at).ok(), "");
        }
      }
    }
  }

 private:
  std::unique_ptr<MemoryStorage> storage_[3];
  std::unique_ptr<Raft> raft_[3];
  std::uint64_t applied_[3] = {0, 0, 0};
  LogIndex last_applied_[3];
};

// Entries of 16 bytes (a small znode write is of that order once encoded
// without its path), proposed `batch` at a time.
void BM_CommitBatched(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  Cluster3 c;
  const std::vector<std::string> payload(batch, std::string(16, 'x'));
  const std::uint64_t before = c.applied(2);
  for (auto _ : state) {
    Status s = c.leader().propose_batch(payload);
    COORD_ASSERT(s.ok(), s.to_string());
    c.pump();
  }
  const std::uint64_t done = c.applied(2) - before;
  COORD_ASSERT(done >= batch * state.iterations(), "not every entry was applied");
  state.SetItemsProcessed(static_cast<std::int64_t>(batch * state.iterations()));
  state.counters["entries/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommitBatched)->Arg(1)->Arg(64)->Arg(1024)->Arg(4096);

}  // namespace
}  // namespace coord::consensus

BENCHMARK_MAIN();
