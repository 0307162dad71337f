#include "lb/outlier_detector.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace sluice::lb {
namespace {

using namespace std::chrono_literals;

class ManualClock final : public MonotonicClock {
 public:
  TimePoint now() const override { return now_; }
  void advance(std::chrono::nanoseconds d) { now_ += d; }

 private:
  TimePoint now_{std::chrono::seconds(1000)};
};

model::OutlierDetection config(uint32_t consecutive_5xx, uint32_t max_percent = 100) {
  model::OutlierDetection c;
  c.enabled = true;
  c.consecutive_5xx_errors = consecutive_5xx;
  c.consecutive_gateway_errors = 0;
  c.interval = 10s;
  c.base_ejection_time = 30s;
  c.max_ejection_percent = max_percent;
  return c;
}

void send(OutlierDetector& d, uint32_t host, std::initializer_list<uint32_t> statuses) {
  for (uint32_t s : statuses) d.report_http_status(host, s);
}

TEST(OutlierDetector, EjectsAtTheNthConsecutive5xx) {
  ManualClock clock;
  OutlierDetector d(config(5), 4, clock);
  send(d, 0, {500, 503, 500, 502});
  EXPECT_FALSE(d.is_ejected(0));
  send(d, 0, {500});
  EXPECT_TRUE(d.is_ejected(0));
  EXPECT_EQ(d.counters().ejections_consecutive_5xx, 1u);
}

TEST(OutlierDetector, A2xxOr4xxResetsTheStreak) {
  ManualClock clock;
  OutlierDetector d(config(3), 4, clock);
  send(d, 1, {500, 500, 200, 500, 500, 404, 500, 500});
  EXPECT_FALSE(d.is_ejected(1));
}

TEST(OutlierDetector, GatewayErrorsCountOnly502To504AndA500ResetsThem) {
  ManualClock clock;
  auto c = config(0);
  c.consecutive_gateway_errors = 3;
  OutlierDetector d(c, 4, clock);
  send(d, 0, {502, 500, 503, 504});
  EXPECT_FALSE(d.is_ejected(0));
  send(d, 0, {502});
  EXPECT_TRUE(d.is_ejected(0));
  EXPECT_EQ(d.counters().ejections_consecutive_gateway, 1u);
}

TEST(OutlierDetector, LocalFailuresCountAsGatewayErrorsAnd5xx) {
  ManualClock clock;
  OutlierDetector d(config(3), 4, clock);
  d.report_local_failure(2, OutlierDetector::LocalFailure::ConnectFailure);
  d.report_local_failure(2, OutlierDetector::LocalFailure::Reset);
  d.report_local_failure(2, OutlierDetector::LocalFailure::Timeout);
  EXPECT_TRUE(d.is_ejected(2));
}

TEST(OutlierDetector, MaxEjectionPercentIsNeverExceeded) {
  // 10 hosts at 20%: (ejected + 1) / 10 <= 20% allows two; the third overflows.
  ManualClock clock;
  OutlierDetector d(config(1, 20), 10, clock);
  for (uint32_t h = 0; h < 5; ++h) send(d, h, {500});
  EXPECT_EQ(d.ejected_count(), 2u);
  EXPECT_TRUE(d.is_ejected(0));
  EXPECT_TRUE(d.is_ejected(1));
  EXPECT_FALSE(d.is_ejected(2));
  EXPECT_EQ(d.counters().ejections_overflow, 3u);
}

TEST(OutlierDetector, TenPercentOfFewerThanTenHostsEjectsNothing) {
  // Istio's default 10% with 4 hosts: one ejection would be 25%. Envoy (since
  // always_eject_one_host exists, default off) refuses it, and so do we.
  ManualClock clock;
  OutlierDetector d(config(1, 10), 4, clock);
  send(d, 0, {500});
  EXPECT_FALSE(d.is_ejected(0));
  EXPECT_EQ(d.counters().ejections_overflow, 1u);
}

TEST(OutlierDetector, ReturnsAHostAtTheFirstSweepAfterBaseEjectionTime) {
  ManualClock clock;
  std::vector<std::pair<uint32_t, bool>> changes;
  OutlierDetector d(config(1), 4, clock, [&](uint32_t h, bool ejected) { changes.emplace_back(h, ejected); });
  send(d, 3, {500});
  for (int sweep = 1; sweep <= 2; ++sweep) {
    clock.advance(10s);
    EXPECT_TRUE(d.sweep_if_due());
    EXPECT_TRUE(d.is_ejected(3)) << "sweep " << sweep;
  }
  clock.advance(10s);   // 30 s after the ejection
  d.sweep_if_due();
  EXPECT_FALSE(d.is_ejected(3));
  EXPECT_EQ(changes, (std::vector<std::pair<uint32_t, bool>>{{3, true}, {3, false}}));
}

TEST(OutlierDetector, SweepRunsOnlyOncePerInterval) {
  ManualClock clock;
  OutlierDetector d(config(1), 4, clock);
  clock.advance(9s);
  EXPECT_FALSE(d.sweep_if_due());
  clock.advance(1s);
  EXPECT_TRUE(d.sweep_if_due());
  EXPECT_FALSE(d.sweep_if_due());
}

TEST(OutlierDetector, RepeatEjectionsLastBaseTimesTheNumberOfEjections) {
  ManualClock clock;
  OutlierDetector d(config(1), 4, clock);
  send(d, 0, {500});   // 1st ejection: 30 s
  clock.advance(30s);
  d.sweep_if_due();
  ASSERT_FALSE(d.is_ejected(0));
  send(d, 0, {500});   // 2nd ejection right away: backoff 2 -> 60 s
  EXPECT_EQ(d.backoff(0), 2u);
  clock.advance(50s);
  d.sweep_if_due();
  EXPECT_TRUE(d.is_ejected(0));
  clock.advance(10s);
  d.sweep_if_due();
  EXPECT_FALSE(d.is_ejected(0));
}

TEST(OutlierDetector, BackoffDecaysOneStepPerSweepInService) {
  ManualClock clock;
  OutlierDetector d(config(1), 4, clock);
  send(d, 0, {500});
  clock.advance(30s);
  d.sweep_if_due();   // returned; backoff still 1
  ASSERT_EQ(d.backoff(0), 1u);
  clock.advance(10s);
  d.sweep_if_due();   // a full interval in service
  EXPECT_EQ(d.backoff(0), 0u);
}

TEST(OutlierDetector, EjectionTimeIsCappedAtEnvoysMaximum) {
  ManualClock clock;
  auto c = config(1);
  c.base_ejection_time = 200s;
  OutlierDetector d(c, 4, clock);
  send(d, 0, {500});
  clock.advance(200s);
  d.sweep_if_due();
  send(d, 0, {500});   // backoff 2: 400 s, capped at 300 s
  clock.advance(300s);
  d.sweep_if_due();
  EXPECT_FALSE(d.is_ejected(0));
}

TEST(OutlierDetector, AHugeBaseEjectionTimeIsCappedNotOverflowed) {
  ManualClock clock;
  auto c = config(1);
  c.base_ejection_time = std::chrono::hours(24 * 365 * 100);   // the longest the config takes
  OutlierDetector d(c, 4, clock);
  for (int ejection = 0; ejection < 3; ++ejection) {   // backoff 1, 2, 3: base x backoff overflows int64 ns
    send(d, 0, {500});
    ASSERT_TRUE(d.is_ejected(0));
    clock.advance(290s);
    d.sweep_if_due();
    EXPECT_TRUE(d.is_ejected(0)) << "ejection " << ejection << " ended before 300 s";
    clock.advance(20s);
    d.sweep_if_due();
    EXPECT_FALSE(d.is_ejected(0)) << "ejection " << ejection << " lasts past 300 s";
  }
}

TEST(OutlierDetector, SplitLocalOriginFailuresCountApartFrom5xx) {
  ManualClock clock;
  auto c = config(2);   // consecutive5xxErrors 2
  c.split_external_local_origin_errors = true;
  c.consecutive_local_origin_failures = 3;
  OutlierDetector d(c, 4, clock);
  using F = OutlierDetector::LocalFailure;
  // Local failures are not 5xx: two of them (then a 500) do not reach consecutive5xxErrors 2 ...
  d.report_local_failure(0, F::ConnectFailure);
  d.report_local_failure(0, F::Timeout);
  send(d, 0, {500});
  EXPECT_FALSE(d.is_ejected(0));
  // ... and the 500 (an answer: the connection worked) restarted the local streak.
  d.report_local_failure(0, F::Reset);
  d.report_local_failure(0, F::ConnectFailure);
  EXPECT_FALSE(d.is_ejected(0));
  d.report_local_failure(0, F::ConnectFailure);
  EXPECT_TRUE(d.is_ejected(0));
  EXPECT_EQ(d.counters().ejections_consecutive_local_origin, 1u);
  EXPECT_EQ(d.counters().ejections_consecutive_5xx, 0u);
  // The 5xx detector still works on answers.
  send(d, 1, {503, 500});
  EXPECT_TRUE(d.is_ejected(1));
  EXPECT_EQ(d.counters().ejections_consecutive_5xx, 1u);
}

TEST(OutlierDetector, UnsplitLocalOriginFailuresAre503sAndTheirOwnLimitIsIgnored) {
  ManualClock clock;
  auto c = config(2);
  c.consecutive_local_origin_failures = 1;   // no effect without split
  OutlierDetector d(c, 4, clock);
  d.report_local_failure(0, OutlierDetector::LocalFailure::ConnectFailure);
  EXPECT_FALSE(d.is_ejected(0));
  d.report_local_failure(0, OutlierDetector::LocalFailure::Reset);
  EXPECT_TRUE(d.is_ejected(0));
  EXPECT_EQ(d.counters().ejections_consecutive_5xx, 1u);
  EXPECT_EQ(d.counters().ejections_consecutive_local_origin, 0u);
}

TEST(OutlierDetector, DisabledDetectorNeverEjects) {
  ManualClock clock;
  auto c = config(1);
  c.enabled = false;
  OutlierDetector d(c, 2, clock);
  send(d, 0, {500, 500, 500});
  EXPECT_FALSE(d.is_ejected(0));
}

TEST(OutlierDetector, ErrorsFromAnEjectedHostDoNotExtendItsEjection) {
  ManualClock clock;
  OutlierDetector d(config(1), 4, clock);
  send(d, 0, {500});
  clock.advance(20s);
  send(d, 0, {500, 500});   // in-flight requests finishing after the ejection
  clock.advance(10s);
  d.sweep_if_due();
  EXPECT_FALSE(d.is_ejected(0));
  EXPECT_EQ(d.counters().ejections_enforced, 1u);
}

}  // namespace
}  // namespace sluice::lb
