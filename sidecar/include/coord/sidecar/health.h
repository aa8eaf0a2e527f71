// The health of the local instance as its checks see it: rise and fall.
//
// The instance starts down. `rise` passing checks in a row bring it up
// (it is registered), `fall` failing checks in a row take it down (it is
// removed). A result that agrees with the state resets the opposite
// count, so a single flapping check never changes anything unless it
// repeats `rise` or `fall` times in a row. Pure: no clock, no I/O; the
// caller feeds results in order.
// Thread safety: a value type; one owner.
#pragma once

#include <cstdint>

namespace coord::sidecar {

enum class Change : std::uint8_t { None, Up, Down };

class HealthMachine {
 public:
  HealthMachine(int rise, int fall);

  // One check's result; Up or Down when the state changes with it.
  Change observe(bool passed);

  bool up() const { return up_; }
  // Passes (while down) or failures (while up) counted toward a change.
  int streak() const { return streak_; }

 private:
  int rise_;
  int fall_;
  bool up_ = false;
  int streak_ = 0;
};

}  // namespace coord::sidecar
