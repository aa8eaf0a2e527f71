// The threads behind ClientRuntime: an io_context run by one I/O thread,
// and the event thread with its FIFO of callbacks.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "call.h"
#include "coord/client-lib/client.h"

namespace coord {

namespace client_detail {

// What queues events: told after each of its events has run, on the event
// thread. Its events keep it alive until then.
class EventOwner {
 public:
  virtual void event_ran() = 0;
  // On the event thread, once the events it had at hand have run, for an
  // owner that asked with Core::send_after_batch.
  virtual void send_requests() = 0;

 protected:
  ~EventOwner() = default;
};

}  // namespace client_detail

class ClientRuntime::Core {
 public:
  Core();
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  boost::asio::io_context& io() { return io_; }
  bool on_event_thread() const { return std::this_thread::get_id() == event_thread_id_.load(); }
  bool on_io_thread() const { return std::this_thread::get_id() == io_thread_.get_id(); }

  // Queue for the event thread, behind every event queued before: `task`,
  // or the completion of `call` with its result.
  void post_event(std::shared_ptr<client_detail::EventOwner> owner, std::function<void()> task);
  void post_completion(std::shared_ptr<client_detail::EventOwner> owner,
                       client_detail::CallPtr call);
  // Event thread only: `owner` is told to send_requests() when the events
  // at hand have run. The requests callbacks make so leave in one write per
  // connection, from the event thread itself, instead of waking the I/O
  // thread for each batch of them.
  void send_after_batch(std::shared_ptr<client_detail::EventOwner> owner);

  // On the I/O thread, while one lives: events queued for a sleeping event
  // thread wake it when the hold ends, not at once. A handler holds one
  // outside the lock it runs under, so that the event thread, woken, does
  // not find that lock still taken.
  class WakeHold {
   public:
    explicit WakeHold(Core& core);
    ~WakeHold();
    WakeHold(const WakeHold&) = delete;
    WakeHold& operator=(const WakeHold&) = delete;

   private:
    Core& core_;
  };

 private:
  struct Event {
    std::shared_ptr<client_detail::EventOwner> owner;
    std::function<void()> task;
    client_detail::CallPtr call;
  };
  void push(Event e);
  void event_loop();
  // With ev_mu_ held: whether the event thread is asleep and must be woken
  // by ring() once the lock is released.
  bool take_sleeper();
  void ring();

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;

  std::mutex ev_mu_;
  // Vectors swapped between the threads keep their capacity: no memory is
  // taken on one thread and given back on the other per event.
  std::vector<Event> ev_q_;
  bool ev_stop_ = false;
  bool ev_sleeping_ = false;
  // The sleeping event thread waits on this word (a futex): 1 once rung.
  // A condition variable cost one more system call per wake-up, the
  // contended unlock of its mutex after every wait.
  std::atomic<std::uint32_t> ev_bell_{0};
  // Event thread only.
  std::vector<std::shared_ptr<client_detail::EventOwner>> send_after_;
  // I/O thread only: a WakeHold lives, and a wake-up waits for its end.
  bool wake_held_ = false;
  bool wake_due_ = false;
  std::atomic<std::thread::id> event_thread_id_{};

  // Last: they start once everything they use exists.
  std::thread event_thread_;
  std::thread io_thread_;
};

}  // namespace coord
