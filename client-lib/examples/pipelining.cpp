// Asynchronous pipelining with libcoord: many requests outstanding on one
// session, completions in submission order on the event thread, and a
// window that keeps at most N requests in flight.
//
//   coord-client-pipelining 127.0.0.1:2181 [requests=10000] [window=64]
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <vector>

#include "coord/client-lib/client.h"

int main(int argc, char** argv) {
  coord::ClientOptions options;
  options.servers = argc > 1 ? argv[1] : "127.0.0.1:2181";
  const int requests = argc > 2 ? std::atoi(argv[2]) : 10'000;
  const int window = argc > 3 ? std::atoi(argv[3]) : 64;
  auto client = coord::Client::start(options);
  if (!client.ok() || !(*client)->wait_connected(std::chrono::seconds(10)).ok()) {
    std::fprintf(stderr, "cannot connect to %s\n", options.servers.c_str());
    return 1;
  }
  coord::Client& c = **client;
  (void)c.create("/example-pipeline", std::string("x"));

  // 1. Futures: submit a batch, then collect. Replies arrive in order.
  std::vector<std::future<coord::Result<coord::Stat>>> writes;
  for (int i = 0; i < 100; ++i) {
    writes.push_back(c.submit(coord::ops::SetData{"/example-pipeline", std::to_string(i)}));
  }
  int last_version = -1;
  for (auto& f : writes) {
    auto st = f.get();
    if (!st.ok()) {
      std::fprintf(stderr, "setData: %s\n", st.status().to_string().c_str());
      return 1;
    }
    last_version = st->version;  // 1, 2, ... 100: applied in submission order
  }
  std::printf("100 pipelined writes, last version %d\n", last_version);

  // 2. Callbacks with a window: each completion submits the next request,
  // so `window` stay in flight. Completions run one at a time on the event
  // thread, so the counters need no lock there; main waits on `done`.
  std::mutex mu;
  std::condition_variable cv;
  int submitted = 0;
  int completed = 0;
  int errors = 0;
  std::function<void()> next = [&] {
    c.submit(coord::ops::GetData{"/example-pipeline"}, [&](coord::Result<coord::DataResult> r) {
      std::lock_guard lock(mu);
      ++completed;
      if (!r.ok()) ++errors;
      if (submitted < requests) {
        ++submitted;
        next();
      }
      cv.notify_all();
    });
  };
  const auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu);
    for (; submitted < std::min(window, requests); ++submitted)
      next();
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return completed == requests; });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%d getData with %d in flight: %.0f ops/s, %d errors\n", requests, window,
              requests / s, errors);
  lock.unlock();
  (void)c.remove("/example-pipeline");
  return errors == 0 && c.close().ok() ? 0 : 1;
}
