#include "runtime.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "coord/base/assert.h"

namespace coord {

namespace {

// Sleeps while *word is `expected`; returns at once if it is not.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void futex_wake_one(std::atomic<std::uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

}  // namespace

ClientRuntime::Core::Core()
    : work_(boost::asio::make_work_guard(io_)),
      event_thread_([this] { event_loop(); }),
      io_thread_([this] { io_.run(); }) {}

ClientRuntime::Core::~Core() {
  COORD_ASSERT(!on_event_thread() && !on_io_thread(),
               "a ClientRuntime must not be destroyed on its own threads");
  // Every Client of the runtime is gone (each holds the runtime), and with
  // it every handler and event of theirs.
  work_.reset();
  io_.stop();
  io_thread_.join();
  bool wake = false;
  {
    std::lock_guard lock(ev_mu_);
    ev_stop_ = true;
    wake = take_sleeper();
  }
  if (wake) ring();
  event_thread_.join();
}

void ClientRuntime::Core::post_event(std::shared_ptr<client_detail::EventOwner> owner,
                                     std::function<void()> task) {
  push(Event{std::move(owner), std::move(task), nullptr});
}

void ClientRuntime::Core::post_completion(std::shared_ptr<client_detail::EventOwner> owner,
                                          client_detail::CallPtr call) {
  COORD_ASSERT(call && call->result.has_value(), "a completion without its result");
  push(Event{std::move(owner), nullptr, std::move(call)});
}

void ClientRuntime::Core::send_after_batch(std::shared_ptr<client_detail::EventOwner> owner) {
  COORD_ASSERT(on_event_thread(), "send_after_batch off the event thread");
  send_after_.push_back(std::move(owner));
}

void ClientRuntime::Core::push(Event e) {
  COORD_ASSERT(e.owner, "an event without its owner");
  bool wake = false;
  {
    std::lock_guard lock(ev_mu_);
    ev_q_.push_back(std::move(e));
    wake = take_sleeper();
  }
  // A busy event thread looks at the queue again before it sleeps: only a
  // sleeping one needs the (system call) wake-up.
  if (!wake) return;
  if (on_io_thread() && wake_held_) {
    wake_due_ = true;
  } else {
    ring();
  }
}

ClientRuntime::Core::WakeHold::WakeHold(Core& core) : core_(core) {
  COORD_ASSERT(core_.on_io_thread() && !core_.wake_held_, "a WakeHold off the I/O thread");
  core_.wake_held_ = true;
}

ClientRuntime::Core::WakeHold::~WakeHold() {
  core_.wake_held_ = false;
  if (core_.wake_due_) {
    core_.wake_due_ = false;
    core_.ring();
  }
}

bool ClientRuntime::Core::take_sleeper() {
  const bool sleeping = ev_sleeping_;
  ev_sleeping_ = false;
  return sleeping;
}

void ClientRuntime::Core::ring() {
  ev_bell_.store(1, std::memory_order_release);
  futex_wake_one(ev_bell_);
}

void ClientRuntime::Core::event_loop() {
  event_thread_id_.store(std::this_thread::get_id());
  std::vector<Event> batch;
  while (true) {
    {
      std::lock_guard lock(ev_mu_);
      if (ev_q_.empty()) {
        if (ev_stop_) return;  // stopping and drained
        ev_sleeping_ = true;
      } else {
        batch.swap(ev_q_);
      }
    }
    if (batch.empty()) {
      // Whoever finds ev_sleeping_ set clears it and rings, after this
      // thread let go of the lock: before the wait (which then returns at
      // once) or during it.
      while (ev_bell_.load(std::memory_order_acquire) == 0)
        futex_wait(ev_bell_, 0);
      ev_bell_.store(0, std::memory_order_relaxed);
      continue;
    }
    // One at a time, in order; the lock is not taken per callback.
    for (Event& e : batch) {
      if (e.call) {
        e.call->complete(std::move(*e.call->result));
        e.call.reset();
      } else {
        e.task();
        e.task = nullptr;
      }
      // The callback and its captures are gone before the owner is told,
      // and before the owner itself may go.
      e.owner->event_ran();
      e.owner.reset();
    }
    batch.clear();
    for (auto& owner : send_after_)
      owner->send_requests();
    send_after_.clear();
  }
}

ClientRuntime::ClientRuntime(std::unique_ptr<Core> core) : core_(std::move(core)) {}

ClientRuntime::~ClientRuntime() = default;

std::shared_ptr<ClientRuntime> ClientRuntime::start() {
  return std::shared_ptr<ClientRuntime>(new ClientRuntime(std::make_unique<Core>()));
}

bool ClientRuntime::on_event_thread() const {
  return core_->on_event_thread();
}

}  // namespace coord
