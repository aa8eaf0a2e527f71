#include "coord/base/clock.h"

#include <chrono>

#include "coord/base/assert.h"

namespace coord {

TimeMs SystemClock::wall_ms() const {
  using namespace std::chrono;
  return TimeMs(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

TimeMs SystemClock::steady_ms() const {
  using namespace std::chrono;
  return TimeMs(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

TimeMs OffsetWallClock::wall_ms() const {
  return TimeMs(system_.wall_ms().value() + offset_ms_.load(std::memory_order_relaxed));
}

void ManualClock::advance_ms(std::int64_t delta_ms) {
  COORD_ASSERT(delta_ms >= 0, "time only moves forward, got ", delta_ms);
  wall_.fetch_add(delta_ms);
  steady_.fetch_add(delta_ms);
}

}  // namespace coord
