// Throughput and memory of the data tree on a tree of a million znodes with
// 100-byte data: setData applies, getData, exists and create per second on
// one core, and resident bytes per znode beyond its name and data.
//
// Run in the release preset:
//   cmake --preset release && cmake --build --preset release --target coord-bench-znode
//   build/release/bench/znode/coord-bench-znode
// Targets: setData >= 2,000,000/s, getData >= 5,000,000/s,
// <= 200 bytes per znode beyond name and data (counter overhead_per_znode).
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coord/base/limits.h"
#include "coord/base/random.h"
#include "coord/znode/ops.h"
#include "coord/znode/tree.h"

namespace {

using coord::Id;
using coord::SessionId;
using coord::TimeMs;
using coord::Zxid;
using namespace coord::znode;

constexpr std::size_t kChildrenPerParent = 1000;

// COORD_BENCH_ZNODE_PARENTS scales the tree down for profiling under
// valgrind (the default, 1000, makes the million znodes of the targets).
std::size_t parents() {
  static const std::size_t n = [] {
    const char* v = std::getenv("COORD_BENCH_ZNODE_PARENTS");
    std::size_t x = v != nullptr ? std::strtoull(v, nullptr, 10) : 0;
    return x > 0 ? x : std::size_t{1000};
  }();
  return n;
}
constexpr std::size_t kDataBytes = 100;

// Resident set size of this process, from /proc/self/statm (pages).
std::int64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = 0;
  int n = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  if (n != 2) return -1;
  return static_cast<std::int64_t>(resident) * 4096;
}

void parent_name(char* buf, std::size_t i) {
  std::snprintf(buf, 32, "/n%04zu", i);
}

struct Fixture {
  DataTree tree;
  Caller caller{SessionId(1), {Id{"ip", "127.0.0.1"}}};
  std::int64_t zxid = 0;
  std::int64_t time = 1'700'000'000'000;
  std::size_t znodes = 0;      // built by the fixture
  std::size_t name_bytes = 0;  // last path component of each
  std::size_t path_bytes = 0;  // full path of each
  std::size_t data_bytes = 0;
  std::int64_t rss_growth = 0;
  std::vector<std::string> in_order;  // the leaves, in creation order
  std::vector<std::string> shuffled;  // the same, in a random order

  // Arg 0: random order (every access a cache miss); 1: creation order.
  const std::vector<std::string>& paths(const benchmark::State& state) const {
    return state.range(0) == 0 ? shuffled : in_order;
  }

  Fixture() {
    // Paths are built in one reused buffer so that only the tree grows
    // between the two RSS readings.
    std::string data(kDataBytes, 'd');
    std::int64_t before = resident_bytes();
    char parent[32];
    char child[32];
    for (std::size_t p = 0; p < parents(); ++p) {
      parent_name(parent, p);
      add(parent, std::string_view(parent).size() - 1, data);
      for (std::size_t c = 0; c < kChildrenPerParent; ++c) {
        std::snprintf(child, sizeof child, "/%06zu", c);
        std::string path = std::string(parent) + child;
        add(path, std::string_view(child).size() - 1, data);
      }
    }
    rss_growth = resident_bytes() - before;
    coord::Random rnd(42);
    in_order.reserve(parents() * kChildrenPerParent);
    for (std::size_t p = 0; p < parents(); ++p) {
      parent_name(parent, p);
      for (std::size_t c = 0; c < kChildrenPerParent; ++c) {
        std::snprintf(child, sizeof child, "/%06zu", c);
        in_order.push_back(std::string(parent) + child);
      }
    }
    shuffled = in_order;
    for (std::size_t i = shuffled.size() - 1; i > 0; --i) {
      std::swap(shuffled[i], shuffled[rnd.below(i + 1)]);
    }
  }

  void add(const std::string& path, std::size_t name_len, const std::string& data) {
    ApplyResult r =
        tree.apply(CreateOp{path, data, coord::open_acl_unsafe(), coord::CreateMode::Persistent, 0},
                   caller, Zxid(++zxid), TimeMs(time));
    if (r.err != coord::ErrorCode::Ok) {
      std::fprintf(stderr, "create %s failed\n", path.c_str());
      std::abort();
    }
    ++znodes;
    name_bytes += name_len;
    path_bytes += path.size();
    data_bytes += data.size();
  }
};

Fixture& fixture() {
  static auto* f = new Fixture();  // lives for the whole run
  return *f;
}

void BM_Memory(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state)
    benchmark::DoNotOptimize(f.tree.node_count());
  double n = static_cast<double>(f.znodes);
  double per = static_cast<double>(f.rss_growth) / n;
  state.counters["znodes"] = n;
  state.counters["rss_growth_MiB"] = static_cast<double>(f.rss_growth) / (1024.0 * 1024.0);
  state.counters["rss_per_znode"] = per;
  // The measure: beyond the node's own name and data bytes.
  state.counters["overhead_per_znode"] = per - static_cast<double>(f.name_bytes + f.data_bytes) / n;
  // Stricter: beyond its full path and data bytes.
  state.counters["overhead_beyond_path"] =
      per - static_cast<double>(f.path_bytes + f.data_bytes) / n;
}
BENCHMARK(BM_Memory)->Iterations(1);

// Resident memory of the watch index: a data watch on every znode of the
// fixture, held by kWatchers connections in turn (the shape of clients
// caching a subtree: many paths per connection, one or few connections per
// path), then dropped again so the benchmarks after this one see the tree
// alone.
constexpr std::size_t kWatchers = 1000;

void BM_WatchMemory(benchmark::State& state) {
  Fixture& f = fixture();
  f.tree.set_watches_per_connection_max(f.in_order.size());
  std::int64_t growth = 0;
  for (auto _ : state) {
    std::int64_t before = resident_bytes();
    for (std::size_t i = 0; i < f.in_order.size(); ++i) {
      auto st = f.tree.add_watch(WatcherId(i % kWatchers + 1), f.in_order[i], WatchKind::Data);
      if (!st.ok()) {
        state.SkipWithError("add_watch failed");
        return;
      }
    }
    growth = resident_bytes() - before;
    state.PauseTiming();
    for (std::size_t w = 1; w <= kWatchers; ++w)
      f.tree.remove_watcher(WatcherId(w));
    state.ResumeTiming();
  }
  state.counters["watches"] = static_cast<double>(f.in_order.size());
  state.counters["rss_per_watch"] =
      static_cast<double>(growth) / static_cast<double>(f.in_order.size());
}
BENCHMARK(BM_WatchMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_SetData(benchmark::State& state) {
  Fixture& f = fixture();
  const auto& paths = f.paths(state);
  Txn txn = SetDataOp{paths[0], std::string(kDataBytes, 's'), -1};
  auto& op = std::get<SetDataOp>(txn);
  std::size_t i = 0;
  for (auto _ : state) {
    op.path.assign(paths[i]);
    ApplyResult r = f.tree.apply(txn, f.caller, Zxid(++f.zxid), TimeMs(f.time));
    benchmark::DoNotOptimize(r);
    if (++i == paths.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_SetData)->ArgName("in_order")->Arg(0)->Arg(1);

void BM_GetData(benchmark::State& state) {
  Fixture& f = fixture();
  const auto& paths = f.paths(state);
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = f.tree.get_data(paths[i], f.caller);
    benchmark::DoNotOptimize(r);
    if (++i == paths.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_GetData)->ArgName("in_order")->Arg(0)->Arg(1);

// The replica's way: a batch of committed setData txns applied after one
// prefetch hint for all their paths (DataTree::prefetch).
constexpr std::size_t kBatch = coord::limits::znode_prefetch_paths_max;

// The next kBatch paths from `paths`, starting at `i`, as views.
std::span<const std::string_view> next_batch(const std::vector<std::string>& paths, std::size_t& i,
                                             std::array<std::string_view, kBatch>& out) {
  for (auto& v : out) {
    v = paths[i];
    if (++i == paths.size()) i = 0;
  }
  return out;
}

void BM_SetDataBatch(benchmark::State& state) {
  Fixture& f = fixture();
  const auto& paths = f.paths(state);
  Txn txn = SetDataOp{paths[0], std::string(kDataBytes, 'b'), -1};
  auto& op = std::get<SetDataOp>(txn);
  std::array<std::string_view, kBatch> batch;
  std::size_t i = 0;
  for (auto _ : state) {
    f.tree.prefetch(next_batch(paths, i, batch));
    for (std::string_view p : batch) {
      op.path.assign(p);
      ApplyResult r = f.tree.apply(txn, f.caller, Zxid(++f.zxid), TimeMs(f.time));
      benchmark::DoNotOptimize(r);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_SetDataBatch)->ArgName("in_order")->Arg(0)->Arg(1);

void BM_GetDataBatch(benchmark::State& state) {
  Fixture& f = fixture();
  const auto& paths = f.paths(state);
  std::array<std::string_view, kBatch> batch;
  std::size_t i = 0;
  for (auto _ : state) {
    f.tree.prefetch(next_batch(paths, i, batch));
    for (std::string_view p : batch) {
      auto r = f.tree.get_data(p, f.caller);
      benchmark::DoNotOptimize(r);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_GetDataBatch)->ArgName("in_order")->Arg(0)->Arg(1);

void BM_Exists(benchmark::State& state) {
  Fixture& f = fixture();
  const auto& paths = f.paths(state);
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = f.tree.exists(paths[i]);
    benchmark::DoNotOptimize(r);
    if (++i == paths.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Exists)->ArgName("in_order")->Arg(0)->Arg(1);

void BM_Create(benchmark::State& state) {
  Fixture& f = fixture();
  static int run = 0;
  std::string parent = "/create" + std::to_string(run++);
  f.add(parent, parent.size() - 1, "");
  Txn txn = CreateOp{parent, std::string(kDataBytes, 'c'), coord::open_acl_unsafe(),
                     coord::CreateMode::Persistent, 0};
  auto& op = std::get<CreateOp>(txn);
  std::size_t k = 0;
  char name[24];
  for (auto _ : state) {
    std::snprintf(name, sizeof name, "/%010zu", k++);
    op.path.assign(parent).append(name);
    ApplyResult r = f.tree.apply(txn, f.caller, Zxid(++f.zxid), TimeMs(f.time));
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Create);

}  // namespace

BENCHMARK_MAIN();
