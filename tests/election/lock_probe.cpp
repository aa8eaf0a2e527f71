// lock-probe: one contending process for the lock tests.
//
//   lock-probe SERVERS PATH lock|write|read COUNTER_FILE ITERATIONS
//
// lock / write: ITERATIONS times, take the lock, read the number in
// COUNTER_FILE, pause, write it back plus one, release. With mutual
// exclusion the file ends at the sum of every process's iterations.
// read: take the read lock, read the number twice with a pause between and
// fail (exit 3) if a writer changed it meanwhile.
// Exit 0 on success, 1 when the servers cannot be used, 2 for bad usage.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "coord/election/lock.h"

namespace {

long read_counter(const std::string& file) {
  std::ifstream in(file);
  long v = 0;
  in >> v;
  return v;
}

void write_counter(const std::string& file, long v) {
  std::ofstream out(file, std::ios::trunc);
  out << v << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: lock-probe SERVERS PATH lock|write|read FILE ITERATIONS\n");
    return 2;
  }
  const std::string servers = argv[1], path = argv[2], mode = argv[3], file = argv[4];
  const int iterations = std::atoi(argv[5]);
  coord::ClientOptions o;
  o.servers = servers;
  o.session_timeout = std::chrono::seconds(10);
  auto mc = coord::ManagedClient::start(o);
  if (!mc.ok() || !(*mc)->wait_connected(std::chrono::seconds(20)).ok()) return 1;
  const auto timeout = std::chrono::seconds(60);
  const auto pause = std::chrono::milliseconds(2);

  if (mode == "lock") {
    coord::Lock lock(**mc, path);
    for (int i = 0; i < iterations; ++i) {
      if (auto s = lock.acquire(timeout); !s.ok()) {
        std::fprintf(stderr, "lock-probe: acquire: %s\n", s.to_string().c_str());
        return 1;
      }
      const long v = read_counter(file);
      std::this_thread::sleep_for(pause);
      write_counter(file, v + 1);
      (void)lock.release();
    }
    return 0;
  }
  coord::ReadWriteLock rw(**mc, path);
  for (int i = 0; i < iterations; ++i) {
    if (mode == "write") {
      if (auto s = rw.acquire_write(timeout); !s.ok()) return 1;
      const long v = read_counter(file);
      std::this_thread::sleep_for(pause);
      write_counter(file, v + 1);
      (void)rw.release_write();
    } else if (mode == "read") {
      if (auto s = rw.acquire_read(timeout); !s.ok()) return 1;
      const long a = read_counter(file);
      std::this_thread::sleep_for(pause * 2);
      const long b = read_counter(file);
      (void)rw.release_read();
      if (a != b) {
        std::fprintf(stderr, "lock-probe: a writer ran under the read lock (%ld -> %ld)\n", a, b);
        return 3;
      }
    } else {
      return 2;
    }
  }
  return 0;
}
