#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "coord/base/histogram.h"
#include "coord/base/log.h"
#include "coord/base/random.h"

namespace coord {
namespace {

TEST(Histogram, EmptyReportsZeros) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (std::uint64_t v = 1; v <= 10; ++v)
    h.record(v);
  EXPECT_EQ(h.count(), 10u);
  EXPECT_EQ(h.sum(), 55u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 10u);
  EXPECT_EQ(h.percentile(50), 5u);
  EXPECT_EQ(h.percentile(90), 9u);
  EXPECT_EQ(h.percentile(100), 10u);
}

TEST(Histogram, PercentilesStayWithinTheRelativeErrorOfSortedSamples) {
  Random rng(11);
  Histogram h;
  std::vector<std::uint64_t> samples;
  for (int i = 0; i < 100'000; ++i) {
    // Spread over several orders of magnitude, as latencies are.
    const std::uint64_t v = rng.uniform(1, 1000) * (std::uint64_t{1} << rng.below(20));
    samples.push_back(v);
    h.record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) {
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * samples.size())) - 1;
    const double exact = static_cast<double>(samples[rank]);
    const double got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, exact) << "p" << p << " must not underestimate";
    EXPECT_LE(got, exact * (1.0 + 1.0 / Histogram::sub_buckets) + 1) << "p" << p;
  }
  EXPECT_EQ(h.max(), samples.back());
}

TEST(Histogram, MergeEqualsRecordingEverything) {
  Histogram a;
  Histogram b;
  Histogram all;
  for (std::uint64_t v = 0; v < 5000; v += 7) {
    (v % 2 ? a : b).record(v * 13);
    all.record(v * 13);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.sum(), all.sum());
  for (double p : {1.0, 25.0, 50.0, 75.0, 99.0})
    EXPECT_EQ(a.percentile(p), all.percentile(p));
  EXPECT_EQ(a.count_at_or_below(1000), all.count_at_or_below(1000));
}

TEST(Histogram, SinceAnEarlierCopyHoldsOnlyWhatCameAfter) {
  Histogram h;
  for (std::uint64_t v = 0; v < 1000; ++v)
    h.record(1'000'000 + v);  // slow ones first
  const Histogram earlier = h;
  Histogram later;
  for (std::uint64_t v = 1; v <= 500; ++v) {
    h.record(v * 3);
    later.record(v * 3);
  }
  const Histogram d = h.since(earlier);
  EXPECT_EQ(d.count(), later.count());
  EXPECT_EQ(d.sum(), later.sum());
  for (double p : {1.0, 50.0, 99.0})
    EXPECT_EQ(d.percentile(p), later.percentile(p)) << p;
  // The maximum is known only to its bucket's precision (1/64).
  EXPECT_GE(d.percentile(100), 1500u);
  EXPECT_LE(d.percentile(100), 1500u + 1500u / 64);
  EXPECT_EQ(h.since(h).count(), 0u);
  EXPECT_EQ(h.since(h).percentile(50), 0u);
}

TEST(Histogram, HugeValuesDoNotOverflowTheBuckets) {
  Histogram h;
  h.record(~std::uint64_t{0} >> 1);
  h.record(~std::uint64_t{0});
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.percentile(100), ~std::uint64_t{0});
}

TEST(Log, ParsesLevels) {
  LogLevel l = LogLevel::Info;
  EXPECT_TRUE(parse_log_level("debug", &l));
  EXPECT_EQ(l, LogLevel::Debug);
  EXPECT_TRUE(parse_log_level("off", &l));
  EXPECT_EQ(l, LogLevel::Off);
  EXPECT_FALSE(parse_log_level("loud", &l));
  EXPECT_EQ(l, LogLevel::Off);
}

}  // namespace
}  // namespace coord
