#include "coord/election/lock.h"

#include <algorithm>

#include "coord/election/queue_node.h"
#include "queue_mutex.h"

namespace coord {
namespace recipe {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Longest single wait: a bound on what a lost wake-up could cost.
constexpr milliseconds kWaitSliceMax{1000};
// Pause after a step that failed for want of a connection.
constexpr milliseconds kRetryPause{100};
// Attempts at deleting a node that must not stay behind.
constexpr int kDeleteAttemptsMax = 5;

bool valid_path(const std::string& p) {
  return !p.empty() && p.front() == '/' && (p.size() == 1 || p.back() != '/');
}

}  // namespace

QueueMutex::QueueMutex(ManagedClient& client, std::string path, std::string name,
                       std::vector<std::string> names, VerdictFn verdict)
    : mc_(client),
      path_(std::move(path)),
      name_(std::move(name)),
      names_(std::move(names)),
      verdict_(std::move(verdict)),
      signal_(std::make_shared<Signal>()) {
  std::weak_ptr<Signal> weak = signal_;
  listener_ = mc_.add_listener([weak](ConnectionEvent, std::uint64_t) {
    if (auto s = weak.lock()) s->bump();
  });
}

QueueMutex::~QueueMutex() {
  mc_.remove_listener(listener_);
  std::map<std::thread::id, Hold> left;
  {
    std::lock_guard lock(mu_);
    left.swap(holds_);
  }
  for (auto& [tid, h] : left)
    delete_node(h.node, h.gen);
}

bool QueueMutex::owned_by_this_thread() const {
  std::lock_guard lock(mu_);
  return holds_.count(std::this_thread::get_id()) > 0;
}

bool QueueMutex::holds() const {
  std::uint64_t gen;
  {
    std::lock_guard lock(mu_);
    auto it = holds_.find(std::this_thread::get_id());
    if (it == holds_.end()) return false;
    gen = it->second.gen;
  }
  return gen == mc_.generation() && mc_.client()->state() != SessionState::Expired;
}

std::optional<std::int64_t> QueueMutex::token() const {
  std::lock_guard lock(mu_);
  auto it = holds_.find(std::this_thread::get_id());
  if (it == holds_.end()) return std::nullopt;
  return it->second.czxid;
}

Status QueueMutex::acquire(milliseconds timeout) {
  if (!valid_path(path_)) return Status(ErrorCode::BadArguments, "lock path: " + path_);
  {
    std::lock_guard lock(mu_);
    auto it = holds_.find(std::this_thread::get_id());
    if (it != holds_.end()) {
      ++it->second.count;
      return Status();
    }
  }
  auto h = enter(Clock::now() + timeout);
  if (!h.ok()) return h.status();
  std::lock_guard lock(mu_);
  holds_[std::this_thread::get_id()] = std::move(*h);
  return Status();
}

Status QueueMutex::release() {
  Hold h;
  {
    std::lock_guard lock(mu_);
    auto it = holds_.find(std::this_thread::get_id());
    if (it == holds_.end()) return Status(ErrorCode::ApiError, "this thread holds no lock here");
    if (--it->second.count > 0) return Status();
    h = std::move(it->second);
    holds_.erase(it);
  }
  delete_node(h.node, h.gen);
  return Status();
}

void QueueMutex::delete_node(const std::string& node, std::uint64_t gen) {
  for (int i = 0; i < kDeleteAttemptsMax; ++i) {
    if (gen != mc_.generation()) return;  // its session is gone, and the node with it
    auto c = mc_.client();
    const Status s = c->remove(child_path(path_, node));
    if (s.ok() || s.code() == ErrorCode::NoNode || s.code() == ErrorCode::SessionExpired ||
        s.code() == ErrorCode::Closing)
      return;
    (void)c->wait_connected(c->negotiated_timeout());
  }
}

Result<QueueMutex::Hold> QueueMutex::enter(Clock::time_point deadline) {
  std::string prefix;
  std::uint64_t prefix_gen = 0;
  std::optional<Hold> mine;
  auto pause = [&](std::uint64_t seen, milliseconds most) {
    std::unique_lock lock(signal_->mu);
    const auto until = std::min(deadline, Clock::now() + most);
    signal_->cv.wait_until(lock, until, [&] { return signal_->seq != seen; });
  };
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard lock(signal_->mu);
      seen = signal_->seq;
    }
    if (Clock::now() >= deadline) {
      if (mine) delete_node(mine->node, mine->gen);
      return Status(ErrorCode::OperationTimeout, "lock not acquired in time: " + path_);
    }
    auto c = mc_.client();
    const std::uint64_t gen = mc_.generation();
    if (mine && mine->gen != gen) mine.reset();  // expired with its session
    if (c->state() != SessionState::Connected) {
      pause(seen, kWaitSliceMax);
      continue;
    }
    if (!mine) {
      if (prefix_gen != gen) {
        prefix = new_protected_prefix();
        prefix_gen = gen;
      }
      auto made = create_queue_node(*c, path_, prefix, name_, std::string());
      if (!made.ok()) {
        if (made.code() == ErrorCode::NoAuth || made.code() == ErrorCode::BadArguments ||
            made.code() == ErrorCode::NoChildrenForEphemerals)
          return made.status();
        pause(seen, kRetryPause);
        continue;
      }
      mine = Hold{made->name, made->czxid, gen, 1};
    }
    auto children = c->get_children(path_);
    if (!children.ok()) {
      if (children.code() == ErrorCode::NoNode) mine.reset();
      pause(seen, kRetryPause);
      continue;
    }
    const auto ordered = order_children(std::move(*children), names_);
    const auto at = std::find(ordered.begin(), ordered.end(), mine->node);
    if (at == ordered.end()) {
      mine.reset();  // deleted by someone: queue again
      continue;
    }
    const Verdict v = verdict_(ordered, static_cast<std::size_t>(at - ordered.begin()));
    if (v.through) return *mine;
    std::weak_ptr<Signal> weak = signal_;
    auto ex = c->exists(child_path(path_, v.watch), [weak](const WatchEvent&) {
      if (auto s = weak.lock()) s->bump();
    });
    if (!ex.ok()) {
      pause(seen, kRetryPause);
      continue;
    }
    if (!*ex) continue;  // gone between the list and the watch: look again
    pause(seen, kWaitSliceMax);
  }
}

namespace {

const std::string kRead = "__READ__";
const std::string kWrite = "__WRIT__";

VerdictFn first_n(std::size_t n) {
  return [n](const std::vector<std::string>& ordered, std::size_t mine) {
    if (mine < n) return Verdict{true, {}};
    return Verdict{false, ordered[mine - n]};
  };
}

}  // namespace
}  // namespace recipe

Lock::Lock(ManagedClient& client, std::string path, std::string node_name)
    : q_(std::make_unique<recipe::QueueMutex>(client, std::move(path), node_name,
                                              std::vector<std::string>{node_name},
                                              recipe::first_n(1))) {}
Lock::~Lock() = default;
Status Lock::acquire(std::chrono::milliseconds timeout) {
  return q_->acquire(timeout);
}
Status Lock::release() {
  return q_->release();
}
bool Lock::holds() const {
  return q_->holds();
}
std::optional<std::int64_t> Lock::token() const {
  return q_->token();
}

ReadWriteLock::ReadWriteLock(ManagedClient& client, std::string path) {
  const std::vector<std::string> names{recipe::kRead, recipe::kWrite};
  write_ =
      std::make_unique<recipe::QueueMutex>(client, path, recipe::kWrite, names, recipe::first_n(1));
  recipe::QueueMutex* w = write_.get();
  read_ = std::make_unique<recipe::QueueMutex>(
      client, path, recipe::kRead, names,
      [w](const std::vector<std::string>& ordered, std::size_t mine) {
        if (w->owned_by_this_thread()) return recipe::Verdict{true, {}};
        // Through unless a writer comes before; then wait for the nearest.
        for (std::size_t i = mine; i-- > 0;) {
          if (ordered[i].find(recipe::kWrite) != std::string::npos)
            return recipe::Verdict{false, ordered[i]};
        }
        return recipe::Verdict{true, {}};
      });
}
ReadWriteLock::~ReadWriteLock() = default;
Status ReadWriteLock::acquire_read(std::chrono::milliseconds t) {
  return read_->acquire(t);
}
Status ReadWriteLock::release_read() {
  return read_->release();
}
Status ReadWriteLock::acquire_write(std::chrono::milliseconds t) {
  return write_->acquire(t);
}
Status ReadWriteLock::release_write() {
  return write_->release();
}
bool ReadWriteLock::holds_read() const {
  return read_->holds();
}
bool ReadWriteLock::holds_write() const {
  return write_->holds();
}
std::optional<std::int64_t> ReadWriteLock::write_token() const {
  return write_->token();
}

Semaphore::Semaphore(ManagedClient& client, std::string path, int leases)
    : q_(std::make_unique<recipe::QueueMutex>(
          client, std::move(path), "lease-", std::vector<std::string>{"lease-"},
          recipe::first_n(static_cast<std::size_t>(std::max(leases, 1))))) {}
Semaphore::~Semaphore() = default;
Status Semaphore::acquire(std::chrono::milliseconds timeout) {
  return q_->acquire(timeout);
}
Status Semaphore::release() {
  return q_->release();
}
bool Semaphore::holds() const {
  return q_->holds();
}

}  // namespace coord
