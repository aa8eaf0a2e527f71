#include "coord/base/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "coord/base/assert.h"

namespace coord {

int Histogram::index_of(std::uint64_t value) {
  if (value < sub_buckets) return static_cast<int>(value);
  // Highest set bit h >= sub_bucket_bits; keep the sub_bucket_bits bits
  // below it as the position inside that power of two.
  const int h = 63 - std::countl_zero(value);
  const int shift = h - sub_bucket_bits;
  const auto sub = static_cast<int>((value >> shift) & (sub_buckets - 1));
  return (shift + 1) * static_cast<int>(sub_buckets) + sub;
}

std::uint64_t Histogram::upper_bound_of(int index) {
  const auto n = static_cast<int>(sub_buckets);
  if (index < n) return static_cast<std::uint64_t>(index);
  const int shift = index / n - 1;
  const auto sub = static_cast<std::uint64_t>(index % n);
  const std::uint64_t low = (sub_buckets + sub) << shift;
  return low + ((std::uint64_t{1} << shift) - 1);
}

void Histogram::record(std::uint64_t value, std::uint64_t count) {
  const int i = index_of(value);
  COORD_ASSERT(i >= 0 && i < bucket_count, "histogram index ", i, " for ", value);
  buckets_[static_cast<std::size_t>(i)] += count;
  count_ += count;
  sum_ += value * count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i)
    buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::reset() {
  *this = Histogram();
}

Histogram Histogram::since(const Histogram& earlier) const {
  COORD_ASSERT(earlier.count_ <= count_, "histogram since a later copy");
  Histogram d;
  for (int i = 0; i < bucket_count; ++i) {
    const auto at = static_cast<std::size_t>(i);
    COORD_ASSERT(earlier.buckets_[at] <= buckets_[at], "histogram bucket ", i, " went down");
    const std::uint64_t n = buckets_[at] - earlier.buckets_[at];
    if (n == 0) continue;
    d.buckets_[at] = n;
    d.count_ += n;
    const std::uint64_t low = i == 0 ? 0 : upper_bound_of(i - 1) + 1;
    d.min_ = std::min(d.min_, low);
    d.max_ = std::max(d.max_, upper_bound_of(i));
  }
  d.sum_ = sum_ - earlier.sum_;
  return d;
}

std::uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(p, 0.0, 100.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (int i = 0; i < bucket_count; ++i) {
    seen += buckets_[static_cast<std::size_t>(i)];
    if (seen >= rank) return std::min(upper_bound_of(i), max_);
  }
  return max_;
}

std::uint64_t Histogram::count_at_or_below(std::uint64_t bound) const {
  std::uint64_t total = 0;
  const int last = index_of(bound);
  for (int i = 0; i <= last && i < bucket_count; ++i)
    total += buckets_[static_cast<std::size_t>(i)];
  return total;
}

}  // namespace coord
