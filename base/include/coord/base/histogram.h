// A log-linear histogram of non-negative integer samples (latencies in
// microseconds, sizes in bytes): constant memory, O(1) record, mergeable,
// percentiles with a relative error below 1/sub_buckets (here under 2%).
// Used by coord-bench for its percentiles and by the servers' metrics, so
// figures never come from sorting every sample.
//
// Values below sub_buckets are exact; above, each power of two is split
// into sub_buckets equal buckets, and a percentile reports the upper bound
// of its bucket (never an underestimate). Not thread-safe: one owner, or
// merge per-thread histograms.
#pragma once

#include <array>
#include <cstdint>

namespace coord {

class Histogram {
 public:
  static constexpr int sub_bucket_bits = 6;  // 64 buckets per power of two
  static constexpr std::uint64_t sub_buckets = std::uint64_t{1} << sub_bucket_bits;
  static constexpr int bucket_count = (64 - sub_bucket_bits + 1) * static_cast<int>(sub_buckets);

  void record(std::uint64_t value, std::uint64_t count = 1);
  void merge(const Histogram& other);
  void reset();
  // What was recorded after `earlier`, an earlier copy of this histogram
  // (min and max become the bounds of the buckets that changed).
  Histogram since(const Histogram& earlier) const;

  std::uint64_t count() const { return count_; }
  std::uint64_t sum() const { return sum_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The smallest bucket bound at or above the p-th percentile (0 < p <= 100),
  // clamped to max(); 0 when empty.
  std::uint64_t percentile(double p) const;
  // Samples <= bound (exact at bucket bounds), for Prometheus buckets.
  std::uint64_t count_at_or_below(std::uint64_t bound) const;

 private:
  static int index_of(std::uint64_t value);
  static std::uint64_t upper_bound_of(int index);

  std::array<std::uint64_t, bucket_count> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
  std::uint64_t max_ = 0;
};

}  // namespace coord
