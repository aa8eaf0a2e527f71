// The last minutes of a few of coordd's own figures, one sample a second,
// so that the console can draw them without a Prometheus: request rate,
// request latency and log fsync percentiles over each interval, Raft
// progress and connections. A ring of metrics_history_samples_max samples.
//
// Percentiles are of the requests (or fsyncs) that finished within the
// interval, from the difference of the cumulative histograms at its two
// ends; an interval without any gives 0.
//
// Thread safety: none; the loop thread samples and reads it.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "coord/base/histogram.h"

namespace coord::io {

struct MetricsSample {
  std::int64_t wall_ms = 0;  // when it was taken (Unix ms)
  double requests_per_s = 0;
  std::uint64_t latency_p50_us = 0;
  std::uint64_t latency_p99_us = 0;
  std::uint64_t fsync_p50_us = 0;
  std::uint64_t fsync_p99_us = 0;
  std::uint64_t commit_index = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t connections = 0;
};

// What the server counts at one moment; the history keeps differences.
struct MetricsNow {
  std::int64_t wall_ms = 0;
  std::int64_t steady_ms = 0;
  const Histogram* latency_us = nullptr;  // every request, since start
  const Histogram* fsync_us = nullptr;    // every log write, since start
  std::uint64_t commit_index = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t connections = 0;
};

class MetricsHistory {
 public:
  explicit MetricsHistory(std::int64_t interval_ms);

  // Takes a sample when an interval has passed since the last; the first
  // call only sets the baseline.
  void maybe_sample(const MetricsNow& now);

  std::int64_t interval_ms() const { return interval_ms_; }
  const std::deque<MetricsSample>& samples() const { return samples_; }
  // {"interval_ms": n, "samples": [...]}, oldest first.
  std::string to_json() const;

 private:
  std::int64_t interval_ms_;
  std::deque<MetricsSample> samples_;
  bool have_baseline_ = false;
  std::int64_t last_steady_ms_ = 0;
  Histogram last_latency_;
  Histogram last_fsync_;
};

}  // namespace coord::io
