// QueueMutex: the acquire / release loop shared by Lock, ReadWriteLock and
// Semaphore. A Verdict function decides, from the ordered queue and this
// node's place in it, whether the node is through or which node to watch.
// Holds are kept per thread (reentrant). Thread safety: all members may be
// called from any thread; acquire blocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coord/base/status.h"
#include "coord/client-lib/managed_client.h"

namespace coord::recipe {

struct Verdict {
  bool through = false;
  std::string watch;  // when not through: the node to wait for
};
// ordered: the queue's children in order; mine: this node's index in it.
using VerdictFn = std::function<Verdict(const std::vector<std::string>& ordered, std::size_t mine)>;

class QueueMutex {
 public:
  // `names`: every node name that takes part in the ordering (a read-write
  // lock's readers and writers share one queue); `name`: this mutex's.
  QueueMutex(ManagedClient& client, std::string path, std::string name,
             std::vector<std::string> names, VerdictFn verdict);
  ~QueueMutex();

  Status acquire(std::chrono::milliseconds timeout);
  Status release();
  bool holds() const;
  std::optional<std::int64_t> token() const;
  // This thread holds it (whatever its session's fate).
  bool owned_by_this_thread() const;

 private:
  struct Hold {
    std::string node;
    std::int64_t czxid = 0;
    std::uint64_t gen = 0;
    int count = 0;
  };
  struct Signal {
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t seq = 0;
    void bump() {
      {
        std::lock_guard lock(mu);
        ++seq;
      }
      cv.notify_all();
    }
  };

  Result<Hold> enter(std::chrono::steady_clock::time_point deadline);
  void delete_node(const std::string& node, std::uint64_t gen);

  ManagedClient& mc_;
  const std::string path_;
  const std::string name_;
  const std::vector<std::string> names_;
  const VerdictFn verdict_;
  std::shared_ptr<Signal> signal_;
  ManagedClient::ListenerId listener_ = 0;

  mutable std::mutex mu_;
  std::map<std::thread::id, Hold> holds_;
};

}  // namespace coord::recipe
