// zk-c-bench: the ZooKeeper C client (libzookeeper_mt) driving a server
// with W asynchronous getData requests outstanding on one session, for
// comparison with `coord-bench --op get --sessions 1 --outstanding W`
// against the same server. It reads the keys coord-bench prepared
// (<root>/k00000000 ...), so run coord-bench once first.
//
//   zk-c-bench 127.0.0.1:2181 [outstanding=64] [duration_s=5] [keys=1000] [root=/coord-bench]
//
// Prints one JSON line with ops/s and latency percentiles (coord::Histogram).
#include <zookeeper/zookeeper.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "coord/base/histogram.h"
#include "coord/base/limits.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Run {
  zhandle_t* zh = nullptr;
  std::string root;
  int keys = 1000;
  Clock::time_point deadline;
  // Completions run on the C client's single completion thread.
  coord::Histogram latency_us;
  long long ops = 0;
  long long errors = 0;
  unsigned next_key = 0;
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::mutex connect_mu;
  std::condition_variable connect_cv;
  bool connected = false;
};

struct Request {
  Run* run;
  Clock::time_point t0;
};

void issue(Run* run);

void on_data(int rc, const char*, int, const Stat*, const void* data) {
  auto* req = static_cast<Request*>(const_cast<void*>(data));
  Run* run = req->run;
  run->latency_us.record(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - req->t0).count()));
  delete req;
  ++run->ops;
  if (rc != ZOK) ++run->errors;
  issue(run);
  std::lock_guard lock(run->mu);
  if (--run->in_flight == 0) run->cv.notify_all();
}

void issue(Run* run) {
  if (Clock::now() >= run->deadline) return;
  char path[512];
  std::snprintf(path, sizeof path, "%s/k%08u", run->root.c_str(),
                run->next_key++ % static_cast<unsigned>(run->keys));
  {
    std::lock_guard lock(run->mu);
    ++run->in_flight;
  }
  auto* req = new Request{run, Clock::now()};
  if (zoo_aget(run->zh, path, 0, on_data, req) != ZOK) {
    delete req;
    std::lock_guard lock(run->mu);
    ++run->errors;
    if (--run->in_flight == 0) run->cv.notify_all();
  }
}

void on_session(zhandle_t*, int type, int state, const char*, void* ctx) {
  auto* run = static_cast<Run*>(ctx);
  if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
    std::lock_guard lock(run->connect_mu);
    run->connected = true;
    run->connect_cv.notify_all();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: zk-c-bench host:port [outstanding=64] [duration_s=5] [keys=1000] "
                 "[root=/coord-bench]\n");
    return 2;
  }
  const int outstanding = argc > 2 ? std::atoi(argv[2]) : 64;
  const double duration_s = argc > 3 ? std::atof(argv[3]) : 5.0;
  Run run;
  run.keys = argc > 4 ? std::atoi(argv[4]) : 1000;
  run.root = argc > 5 ? argv[5] : "/coord-bench";
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  run.zh = zookeeper_init(argv[1], on_session,
                          static_cast<int>(coord::limits::bench_zk_c_session_timeout_ms), nullptr,
                          &run, 0);
  if (run.zh == nullptr) {
    std::perror("zookeeper_init");
    return 1;
  }
  {
    std::unique_lock lock(run.connect_mu);
    if (!run.connect_cv.wait_for(lock,
                                 std::chrono::milliseconds(coord::limits::bench_connect_ms_max),
                                 [&] { return run.connected; })) {
      std::fprintf(stderr, "zk-c-bench: not connected to %s\n", argv[1]);
      return 1;
    }
  }
  const auto start = Clock::now();
  run.deadline = start + std::chrono::microseconds(static_cast<long long>(duration_s * 1e6));
  for (int i = 0; i < outstanding; ++i)
    issue(&run);
  {
    std::unique_lock lock(run.mu);
    run.cv.wait(lock, [&] { return run.in_flight == 0; });
  }
  const double seconds =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count() / 1e6;
  zookeeper_close(run.zh);
  const auto& h = run.latency_us;
  std::printf(
      "{\"client\":\"zookeeper-c\",\"op\":\"get\",\"sessions\":1,\"outstanding\":%d,\"ops\":%lld,"
      "\"errors\":%lld,\"seconds\":%.3f,\"ops_per_s\":%.1f,\"latency_us\":{\"p50\":%llu,"
      "\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu}}\n",
      outstanding, run.ops, run.errors, seconds, run.ops / seconds,
      static_cast<unsigned long long>(h.percentile(50)),
      static_cast<unsigned long long>(h.percentile(90)),
      static_cast<unsigned long long>(h.percentile(99)),
      static_cast<unsigned long long>(h.percentile(99.9)),
      static_cast<unsigned long long>(h.max()));
  return run.errors == 0 ? 0 : 1;
}
