#include "coord/sidecar/schedule.h"

#include "coord/base/assert.h"

namespace coord::sidecar {

RenderSchedule::RenderSchedule(Ms debounce, Ms debounce_max, Ms retry_min, Ms retry_max)
    : debounce_(debounce),
      debounce_max_(debounce_max),
      retry_min_(retry_min),
      retry_max_(retry_max) {
  COORD_ASSERT(debounce_max >= debounce, "the longest hold-back covers the quiet time");
  COORD_ASSERT(retry_min.count() > 0 && retry_max >= retry_min, "retry pauses");
}

void RenderSchedule::changed(Time now) {
  if (!burst_start_) burst_start_ = now;
  last_change_ = now;
}

void RenderSchedule::rendered(Time now, bool files_changed) {
  burst_start_.reset();
  if (files_changed) {
    reload_pending_ = true;
    reload_at_ = now;
    reload_failures_ = 0;
  }
}

void RenderSchedule::reloaded(Time now, bool ok) {
  if (ok) {
    reload_pending_ = false;
    reload_failures_ = 0;
    return;
  }
  ++reload_failures_;
  reload_at_ = now + retry_delay(reload_failures_);
}

RenderSchedule::Ms RenderSchedule::retry_delay(int failures) const {
  Ms d = retry_min_;
  for (int i = 1; i < failures && d < retry_max_; ++i)
    d *= 2;
  return d < retry_max_ ? d : retry_max_;
}

RenderSchedule::Action RenderSchedule::next(Time now) const {
  std::optional<Time> due;
  if (burst_start_) {
    const Time quiet = last_change_ + debounce_;
    const Time latest = *burst_start_ + debounce_max_;
    const Time render_at = quiet < latest ? quiet : latest;
    if (render_at <= now) return {Kind::Render, now};
    due = render_at;
  }
  if (reload_pending_) {
    // A render about to run first would make this reload stale: it waits
    // for the render, which schedules its own.
    if (reload_at_ <= now && !burst_start_) return {Kind::Reload, now};
    if (!due || reload_at_ < *due) due = reload_at_ <= now ? *due : reload_at_;
  }
  if (due) return {Kind::Wait, *due};
  return {Kind::Idle, now};
}

}  // namespace coord::sidecar
