// coord::Lock, coord::ReadWriteLock and coord::Semaphore: distributed
// mutual exclusion on the queue of election/ (coord/election/queue_node.h).
//
// Each acquire creates an ephemeral-sequential node under the lock's path
// and waits until the queue lets it through, watching one node only:
//   Lock           `_c_<uuid>-lock-<seq>`: through when first; watches its
//                  immediate predecessor. Curator's InterProcessMutex layout,
//                  so a Curator process and a coord process on the same path
//                  exclude each other.
//   ReadWriteLock  `_c_<uuid>-__READ__<seq>` / `_c_<uuid>-__WRIT__<seq>`
//                  (Curator's InterProcessReadWriteLock): a writer is through
//                  when first; a reader when no writer precedes it, and it
//                  watches the nearest writer before it. A thread holding
//                  the write lock may take the read lock too.
//   Semaphore      `_c_<uuid>-lease-<seq>` with N leases: through when among
//                  the first N; watches the node N places ahead.
//
// Holds are per thread and reentrant: a thread that holds the lock may
// acquire it again and must release it as many times; another thread of the
// same process queues like any other process (Curator's semantics).
//
// A hold lasts as long as the session that created its node. If the session
// expires the servers delete the node and another process may get the lock:
// holds() turns false and the hold's work must stop. The fencing token
// (the node's creation zxid) strictly increases from one holder of a Lock
// (or write lock) to the next, so a resource can refuse a stale holder.
//
// Timeouts: acquire waits at most `timeout`; on timeout its node is deleted
// so it blocks nobody. A lost connection during acquire is ridden out (the
// node is found again by its prefix); an expired session starts over with
// the next one, within the same timeout.
//
// Threading: blocking calls; never call them from a Client callback. Any
// thread may use the object; it must outlive its holds' use, and the
// ManagedClient must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "coord/base/status.h"
#include "coord/client-lib/managed_client.h"

namespace coord {

namespace recipe {
class QueueMutex;
}

class Lock {
 public:
  // `node_name` "lock-" is Curator's InterProcessMutex.
  Lock(ManagedClient& client, std::string path, std::string node_name = "lock-");
  // Releases what the threads still hold.
  ~Lock();
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  // Ok when held (again, if this thread held it already); OperationTimeout
  // when `timeout` passed first; BadArguments for an invalid path.
  Status acquire(std::chrono::milliseconds timeout);
  // Releases one level of this thread's hold; ApiError if it holds none.
  Status release();
  // This thread holds the lock and its session still lives.
  bool holds() const;
  // This thread's hold's fencing token.
  std::optional<std::int64_t> token() const;

 private:
  std::unique_ptr<recipe::QueueMutex> q_;
};

class ReadWriteLock {
 public:
  ReadWriteLock(ManagedClient& client, std::string path);
  ~ReadWriteLock();
  ReadWriteLock(const ReadWriteLock&) = delete;
  ReadWriteLock& operator=(const ReadWriteLock&) = delete;

  Status acquire_read(std::chrono::milliseconds timeout);
  Status release_read();
  Status acquire_write(std::chrono::milliseconds timeout);
  Status release_write();
  bool holds_read() const;
  bool holds_write() const;
  std::optional<std::int64_t> write_token() const;

 private:
  std::unique_ptr<recipe::QueueMutex> write_;
  std::unique_ptr<recipe::QueueMutex> read_;
};

class Semaphore {
 public:
  // At most `leases` holders at once (at least 1).
  Semaphore(ManagedClient& client, std::string path, int leases);
  ~Semaphore();
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // One lease for this thread (reentrant like Lock).
  Status acquire(std::chrono::milliseconds timeout);
  Status release();
  bool holds() const;

 private:
  std::unique_ptr<recipe::QueueMutex> q_;
};

}  // namespace coord
