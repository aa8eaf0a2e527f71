#include "coord/healer/planner.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <unordered_set>

#include "coord/base/assert.h"

namespace coord::healer {

namespace {

constexpr std::int64_t kRateWindowMs = 60'000;

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

std::int64_t backoff_ms(const PlannerConfig& config, int failures) {
  if (failures <= 0) return 0;
  std::int64_t d = std::max<std::int64_t>(config.backoff_base_ms, 0);
  for (int i = 1; i < failures && d < config.backoff_cap_ms; ++i)
    d *= 2;
  return std::min(d, config.backoff_cap_ms);
}

Plan plan(const PlannerConfig& config, const PlannerInput& in) {
  COORD_ASSERT(config.desired >= 0, "desired workers cannot be negative");
  COORD_ASSERT(config.max_launches_per_min >= 1, "the launch cap must allow a launch");
  Plan p;
  p.consecutive_failures = in.consecutive_failures;
  p.last_failure_ms = in.last_failure_ms;
  p.next_id = in.next_id;
  p.alive = static_cast<int>(in.workers.size());

  std::unordered_set<std::string> registered;
  std::set<int> used;  // indexes held by a registered worker or a pending launch
  for (const auto& w : in.workers) {
    registered.insert(w.id);
    if (w.index && *w.index >= 0 && *w.index < config.desired) used.insert(*w.index);
  }

  // Registrations first: a launch that worked ends the streak before this
  // round's failures start a new one.
  std::vector<const Launch*> unregistered;
  for (const auto& l : in.in_flight) {
    if (registered.count(l.id) != 0) {
      p.decisions.push_back(decision::Registered{l.id, l.index});
      p.consecutive_failures = 0;
    } else {
      unregistered.push_back(&l);
    }
  }
  int pending = 0;
  std::optional<std::int64_t> earliest_deadline;
  for (const Launch* l : unregistered) {
    std::int64_t deadline = l->deadline_ms;
    if (config.grace_ms > 0) deadline = std::min(deadline, l->first_seen_ms + config.grace_ms);
    std::string reason;
    if (l->exit_status && *l->exit_status != 0) {
      reason = "its command exited with status " + std::to_string(*l->exit_status) +
               " before a worker registered";
    } else if (in.now_ms >= deadline) {
      reason = "no worker registered within the grace period";
    }
    if (!reason.empty()) {
      p.decisions.push_back(decision::GiveUp{l->id, l->index, std::move(reason)});
      ++p.consecutive_failures;
      p.last_failure_ms = in.now_ms;
      continue;
    }
    ++pending;
    used.insert(l->index);
    earliest_deadline = std::min(earliest_deadline.value_or(deadline), deadline);
  }

  if (p.alive > config.desired) p.decisions.push_back(decision::Excess{p.alive, config.desired});

  std::optional<decision::WaitUntil> wait;
  auto wait_for = [&](std::int64_t at, std::string why) {
    if (!wait || at < wait->at_ms) wait = decision::WaitUntil{at, std::move(why)};
  };
  if (earliest_deadline) wait_for(*earliest_deadline, "the deadline of a launch in flight");

  const int want = config.desired - p.alive - pending;
  if (want > 0) {
    int allowed = want;
    // The cap: launches that started within the last 60 s (a time ahead of
    // now, after the clock stepped back, counts as recent).
    std::vector<std::int64_t> window;
    for (std::int64_t t : in.recent_launches)
      if (t > in.now_ms - kRateWindowMs) window.push_back(t);
    std::sort(window.begin(), window.end());
    const int rate_left = config.max_launches_per_min - static_cast<int>(window.size());
    if (rate_left <= 0) {
      allowed = 0;
      p.held_back_why =
          "launch cap of " + std::to_string(config.max_launches_per_min) + " per minute reached";
      // The cap frees a place when the (size - cap + 1)-th oldest leaves.
      const auto freeing =
          window[window.size() - static_cast<std::size_t>(config.max_launches_per_min)];
      wait_for(freeing + kRateWindowMs, p.held_back_why);
    } else if (rate_left < allowed) {
      allowed = rate_left;
      p.held_back_why =
          "launch cap of " + std::to_string(config.max_launches_per_min) + " per minute reached";
      // After these launches the window is full; the oldest frees it.
      wait_for((window.empty() ? in.now_ms : window.front()) + kRateWindowMs, p.held_back_why);
    }
    if (allowed > 0 && p.consecutive_failures > 0) {
      const std::int64_t next_ok = p.last_failure_ms + backoff_ms(config, p.consecutive_failures);
      if (in.now_ms < next_ok) {
        allowed = 0;
        p.held_back_why = "backing off after " + std::to_string(p.consecutive_failures) +
                          " consecutive failed launches";
        wait_for(next_ok, p.held_back_why);
      } else if (pending > 0) {
        // While failing, one probe at a time: its outcome decides the next.
        allowed = 0;
        p.held_back_why = "a probe launch is in flight after failed launches";
      } else {
        allowed = 1;
        if (want > 1) p.held_back_why = "one launch at a time after failed launches";
      }
    }
    int index = 0;
    for (int k = 0; k < allowed; ++k) {
      while (used.count(index) != 0)
        ++index;
      COORD_ASSERT(index < config.desired, "no free index for a launch");
      used.insert(index);
      p.decisions.push_back(decision::Launch{in.id_prefix + std::to_string(p.next_id++), index});
      ++pending;
    }
    p.held_back = want - allowed;
    if (p.held_back == 0) p.held_back_why.clear();
  }
  if (wait) p.decisions.push_back(*wait);
  p.in_flight = pending;
  return p;
}

std::string describe(const Decision& d) {
  std::ostringstream os;
  std::visit(Overloaded{
                 [&](const decision::Registered& r) {
                   os << "launch " << r.id << " (index " << r.index << ") registered";
                 },
                 [&](const decision::GiveUp& g) {
                   os << "giving up on launch " << g.id << " (index " << g.index
                      << "): " << g.reason;
                 },
                 [&](const decision::Launch& l) {
                   os << "launching " << l.id << " (index " << l.index << ")";
                 },
                 [&](const decision::Excess& e) {
                   os << e.registered << " workers registered, " << e.desired
                      << " desired: leaving the extra ones alone";
                 },
                 [&](const decision::WaitUntil& w) {
                   os << "waiting until " << w.at_ms << " (" << w.why << ")";
                 },
             },
             d);
  return os.str();
}

}  // namespace coord::healer
