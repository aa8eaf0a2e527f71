#include "coord/sidecar/health.h"

#include "coord/base/assert.h"

namespace coord::sidecar {

HealthMachine::HealthMachine(int rise, int fall) : rise_(rise), fall_(fall) {
  COORD_ASSERT(rise >= 1 && fall >= 1, "rise and fall are at least 1");
}

Change HealthMachine::observe(bool passed) {
  if (passed == up_) {
    streak_ = 0;  // agrees with the state: the count toward a change starts over
    return Change::None;
  }
  ++streak_;
  if (streak_ < (up_ ? fall_ : rise_)) return Change::None;
  up_ = !up_;
  streak_ = 0;
  return up_ ? Change::Up : Change::Down;
}

}  // namespace coord::sidecar
