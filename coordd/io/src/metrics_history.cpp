#include "coord/io/metrics_history.h"

#include <nlohmann/json.hpp>

#include "coord/base/assert.h"
#include "coord/base/limits.h"

namespace coord::io {

MetricsHistory::MetricsHistory(std::int64_t interval_ms) : interval_ms_(interval_ms) {
  COORD_ASSERT(interval_ms > 0, "metrics history interval ", interval_ms);
}

void MetricsHistory::maybe_sample(const MetricsNow& now) {
  COORD_ASSERT(now.latency_us != nullptr && now.fsync_us != nullptr, "metrics without histograms");
  if (have_baseline_ && now.steady_ms - last_steady_ms_ < interval_ms_) return;
  if (have_baseline_) {
    const Histogram latency = now.latency_us->since(last_latency_);
    const Histogram fsync = now.fsync_us->since(last_fsync_);
    const double seconds = static_cast<double>(now.steady_ms - last_steady_ms_) / 1000.0;
    MetricsSample s;
    s.wall_ms = now.wall_ms;
    s.requests_per_s = static_cast<double>(latency.count()) / seconds;
    s.latency_p50_us = latency.percentile(50);
    s.latency_p99_us = latency.percentile(99);
    s.fsync_p50_us = fsync.percentile(50);
    s.fsync_p99_us = fsync.percentile(99);
    s.commit_index = now.commit_index;
    s.applied_index = now.applied_index;
    s.connections = now.connections;
    samples_.push_back(s);
    if (samples_.size() > limits::metrics_history_samples_max) samples_.pop_front();
  }
  have_baseline_ = true;
  last_steady_ms_ = now.steady_ms;
  last_latency_ = *now.latency_us;
  last_fsync_ = *now.fsync_us;
}

std::string MetricsHistory::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const MetricsSample& s : samples_) {
    list.push_back({{"t", s.wall_ms},
                    {"requests_per_s", s.requests_per_s},
                    {"latency_p50_us", s.latency_p50_us},
                    {"latency_p99_us", s.latency_p99_us},
                    {"fsync_p50_us", s.fsync_p50_us},
                    {"fsync_p99_us", s.fsync_p99_us},
                    {"commit_index", s.commit_index},
                    {"applied_index", s.applied_index},
                    {"connections", s.connections}});
  }
  return nlohmann::json{{"interval_ms", interval_ms_}, {"samples", std::move(list)}}.dump() + "\n";
}

}  // namespace coord::io
