// The clock seam: every reading of time in coord goes through a Clock, so
// the pure cores never read one and the simulator drives time exactly.
//
// wall_ms() is time since the Unix epoch (ctime/mtime of znodes, shown to
// users); steady_ms() is monotonic (timeouts, expiry). Implementations must
// be safe to call from any thread.
#pragma once

#include <atomic>

#include "coord/base/ids.h"

namespace coord {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs wall_ms() const = 0;
  virtual TimeMs steady_ms() const = 0;
};

// The real clocks of the machine.
class SystemClock final : public Clock {
 public:
  TimeMs wall_ms() const override;
  TimeMs steady_ms() const override;
};

// The machine's clocks with the wall clock shifted by an offset that may
// change at any time (fault-injection test builds jump it; set_offset_ms
// from any thread). Steady time is the machine's, untouched: it is
// monotonic by contract. wall_ms() reads an atomic, never a file.
class OffsetWallClock final : public Clock {
 public:
  TimeMs wall_ms() const override;
  TimeMs steady_ms() const override { return system_.steady_ms(); }

  void set_offset_ms(std::int64_t offset_ms) { offset_ms_.store(offset_ms); }
  std::int64_t offset_ms() const { return offset_ms_.load(); }

 private:
  SystemClock system_;
  std::atomic<std::int64_t> offset_ms_{0};
};

// A clock that moves only when told to; for tests and the simulator. Both
// readings advance together. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs wall_start = TimeMs(1'700'000'000'000),
                       TimeMs steady_start = TimeMs(0))
      : wall_(wall_start.value()), steady_(steady_start.value()) {}

  TimeMs wall_ms() const override { return TimeMs(wall_.load()); }
  TimeMs steady_ms() const override { return TimeMs(steady_.load()); }

  void advance_ms(std::int64_t delta_ms);

 private:
  std::atomic<std::int64_t> wall_;
  std::atomic<std::int64_t> steady_;
};

}  // namespace coord
