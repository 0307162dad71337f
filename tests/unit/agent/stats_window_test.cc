#include "agent/stats_window.h"

#include <gtest/gtest.h>

namespace sluice::agent {
namespace {

using nlohmann::json;

// One sample of productpage:9080 (L7) with v1/v2 request counts so far.
Sample l7_sample(double at, uint64_t v1, uint64_t v2, double configured_v1 = 0.5) {
  Sample s;
  s.at = at;
  s.version = 3;
  PortSample& p = s.ports[{"productpage", 9080}];
  p.plane = "l7";
  p.subsets["v1"].configured = configured_v1;
  p.subsets["v1"].l7_requests = v1;
  p.subsets["v1"].l7_buckets[2] = v1;   // (1, 5] ms
  p.subsets["v2"].configured = 1 - configured_v1;
  p.subsets["v2"].l7_requests = v2;
  p.subsets["v2"].l7_errors = v2 / 10;
  p.subsets["v2"].l7_buckets[2] = v2;
  return s;
}

const json& subset(const json& view, const std::string& name) {
  for (const auto& s : view["ports"][0]["subsets"])
    if (s["name"] == name) return s;
  throw std::runtime_error("no subset " + name);
}

TEST(StatsWindow, ObservedShareIsWhatTheLastTenSecondsCounted) {
  StatsWindow w;
  // 20 s of traffic: 50/50 for the first 10 s, then 80/20 (100 requests a second).
  uint64_t v1 = 0, v2 = 0;
  for (int t = 0; t <= 20; ++t) {
    w.record(l7_sample(1000 + t, v1, v2, t <= 10 ? 0.5 : 0.8));
    v1 += t < 10 ? 50 : 80;
    v2 += t < 10 ? 50 : 20;
  }
  const json view = w.view("");
  EXPECT_EQ(w.samples(), StatsWindow::kSeconds + 1u);
  EXPECT_DOUBLE_EQ(view["covered_seconds"].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(subset(view, "v1")["observed"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(subset(view, "v1")["configured"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(view["ports"][0]["requests_per_s"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(subset(view, "v2")["error_rate"].get<double>(), 0.1);
  EXPECT_EQ(view["ports"][0]["seconds"].size(), 10u);
}

TEST(StatsWindow, ACounterThatWentDownCountsFromZero) {
  StatsWindow w;
  w.record(l7_sample(1000, 5000, 5000));
  w.record(l7_sample(1001, 30, 10));   // the proxy's counters restarted
  const json view = w.view("productpage");
  EXPECT_EQ(subset(view, "v1")["requests"], 30);
  EXPECT_DOUBLE_EQ(subset(view, "v1")["observed"].get<double>(), 0.75);
}

TEST(StatsWindow, ServiceFilterAndEmptyWindow) {
  StatsWindow w;
  EXPECT_TRUE(w.view("").at("ports").empty());
  EXPECT_TRUE(w.view("").at("sampled_at").is_null());
  w.record(l7_sample(1000, 1, 1));
  EXPECT_TRUE(w.view("reviews").at("ports").empty());
  // One sample: nothing observed yet, no rate.
  const json one = w.view("productpage");
  EXPECT_TRUE(subset(one, "v1")["observed"].is_null());
  EXPECT_TRUE(one["ports"][0]["requests_per_s"].is_null());
}

TEST(BucketQuantile, InterpolatesInsideTheBucket) {
  std::array<uint64_t, proxy::kDurationBucketsMs.size() + 1> counts{};
  EXPECT_FALSE(bucket_quantile(0.5, counts).has_value());
  counts[2] = 100;   // (1, 5] ms
  EXPECT_DOUBLE_EQ(*bucket_quantile(0.5, counts), 3.0);
  counts[counts.size() - 1] = 100;   // above every bound
  EXPECT_DOUBLE_EQ(*bucket_quantile(0.99, counts), proxy::kDurationBucketsMs.back());
}

}  // namespace
}  // namespace sluice::agent
