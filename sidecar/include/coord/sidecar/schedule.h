// When to render the templates and when to run the reload command.
//
// Debounce: a change to a watched service starts (or extends) a quiet
// period of `debounce`; the render happens when no change came for that
// long, or at the latest `debounce_max` after the first change of the
// burst, so a steady trickle of changes cannot hold the files back
// forever. One render per burst; one reload per render that changed a
// file.
//
// Reload: a reload that fails is retried after `retry_min`, then twice as
// long each time up to `retry_max`, until it succeeds. A new render that
// changes a file replaces the pending retry with an immediate reload (the
// new content may be what fixes it).
//
// Pure: time comes in as arguments (a steady clock's time points in the
// program, any numbers in tests); next() says what to do and when.
// Thread safety: a value type; one owner.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace coord::sidecar {

class RenderSchedule {
 public:
  using Ms = std::chrono::milliseconds;
  using Time = std::chrono::steady_clock::time_point;

  enum class Kind : std::uint8_t { Idle, Wait, Render, Reload };
  struct Action {
    Kind kind = Kind::Idle;
    Time at{};  // Wait: when the next action is due
  };

  RenderSchedule(Ms debounce, Ms debounce_max, Ms retry_min, Ms retry_max);

  // A watched service changed (or the first render is wanted).
  void changed(Time now);
  // The render ran; `files_changed`: some file's content is new (a reload
  // is due). A failed render waits for the next change.
  void rendered(Time now, bool files_changed);
  // The reload command ran.
  void reloaded(Time now, bool ok);

  // What to do at `now`: Render or Reload now, Wait until `at`, or Idle
  // (nothing pending).
  Action next(Time now) const;

  // Consecutive failed reloads of the pending one (0 when none failed).
  int reload_failures() const { return reload_failures_; }
  // The pause before the next retry after `failures` failures.
  Ms retry_delay(int failures) const;

 private:
  Ms debounce_;
  Ms debounce_max_;
  Ms retry_min_;
  Ms retry_max_;
  std::optional<Time> burst_start_;  // first change not yet rendered
  Time last_change_{};
  bool reload_pending_ = false;
  Time reload_at_{};
  int reload_failures_ = 0;
};

}  // namespace coord::sidecar
