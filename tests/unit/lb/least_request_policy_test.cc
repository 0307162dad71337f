#include "lb/least_request_policy.h"

#include <gtest/gtest.h>

#include "policy_test_support.h"

namespace sluice::lb {
namespace {

using testing::FixedActiveRequests;
using testing::make_hosts;
using testing::tally;

TEST(LeastRequestPolicy, TwoChoicesPickTheBusyHostOnlyWhenBothSamplesAreIt) {
  // 4 equal hosts, host 0 busy: it wins only if both samples land on it,
  // p = 1/16. 16,000 picks: 1,000 expected, sd = 30.6; +-150 is ~5 sd.
  FixedActiveRequests active;
  HostSet hosts(make_hosts({1, 1, 1, 1}, &active));
  active.by_backend_id[100] = 50;
  SeededRandom random(21);
  LeastRequestPolicy policy(hosts, random, 1.0);
  auto counts = tally(policy, 16000);
  EXPECT_NEAR(counts[0], 1000, 150);
  for (int h = 1; h < 4; ++h) EXPECT_NEAR(counts[h], 5000, 300) << "host " << h;
}

TEST(LeastRequestPolicy, TiesKeepTheDistributionUniform) {
  // All idle: the first sample wins every tie, which is a uniform pick.
  // 40,000 over 4: sd = 87; +-400 is ~4.6 sd.
  FixedActiveRequests active;
  HostSet hosts(make_hosts({1, 1, 1, 1}, &active));
  SeededRandom random(22);
  LeastRequestPolicy policy(hosts, random, 1.0);
  for (auto [host, n] : tally(policy, 40000)) EXPECT_NEAR(n, 10000, 400) << "host " << host;
}

TEST(LeastRequestPolicy, WeightedIdleHostsGetExactWeightedRoundRobin) {
  FixedActiveRequests active;
  HostSet hosts(make_hosts({3, 1}, &active));
  SeededRandom random(23);
  LeastRequestPolicy policy(hosts, random, 1.0);
  EXPECT_EQ(tally(policy, 400), (std::map<int, int>{{0, 300}, {1, 100}}));
}

TEST(LeastRequestPolicy, WeightedEffectiveWeightIsWeightOverActivePlusOne) {
  // host 0: 2 / (3 + 1) = 0.5; hosts 1, 2: 1 / (0 + 1) = 1. Shares 20/40/40,
  // exact over whole cycles of the smooth schedule.
  FixedActiveRequests active;
  HostSet hosts(make_hosts({2, 1, 1}, &active));
  active.by_backend_id[100] = 3;
  SeededRandom random(24);
  LeastRequestPolicy policy(hosts, random, 1.0);
  EXPECT_EQ(tally(policy, 500), (std::map<int, int>{{0, 100}, {1, 200}, {2, 200}}));
}

TEST(LeastRequestPolicy, BiasZeroIgnoresActiveRequests) {
  FixedActiveRequests active;
  HostSet hosts(make_hosts({2, 1}, &active));
  active.by_backend_id[100] = 1000;
  SeededRandom random(25);
  LeastRequestPolicy policy(hosts, random, 0.0);
  EXPECT_EQ(tally(policy, 300), (std::map<int, int>{{0, 200}, {1, 100}}));
}

TEST(LeastRequestPolicy, LargerBiasPenalisesLoadMore) {
  // bias 2: host 0 = 2 / (1 + 1)^2 = 0.5 against host 1 = 1: one third.
  FixedActiveRequests active;
  HostSet hosts(make_hosts({2, 1}, &active));
  active.by_backend_id[100] = 1;
  SeededRandom random(26);
  LeastRequestPolicy policy(hosts, random, 2.0);
  EXPECT_EQ(tally(policy, 300), (std::map<int, int>{{0, 100}, {1, 200}}));
}

TEST(LeastRequestPolicy, SkipsUnhealthyAndAnswersNoHealthyHostWhenEmpty) {
  HostSet hosts(make_hosts({1, 1}));
  SeededRandom random(27);
  LeastRequestPolicy policy(hosts, random, 1.0);
  hosts.set_healthy(0, false);
  EXPECT_EQ(tally(policy, 100), (std::map<int, int>{{1, 100}}));
  hosts.set_healthy(1, false);
  EXPECT_EQ(policy.choose({}), Selection::no_healthy_host());
}

TEST(LeastRequestPolicy, SameSeedGivesSameSequence) {
  HostSet hosts(make_hosts({1, 1, 1, 1, 1}));
  auto sequence = [&](uint64_t seed) {
    SeededRandom random(seed);
    LeastRequestPolicy policy(hosts, random, 1.0);
    std::vector<uint32_t> picks;
    for (int i = 0; i < 64; ++i) picks.push_back(policy.choose({}).host);
    return picks;
  };
  EXPECT_EQ(sequence(3), sequence(3));
}

}  // namespace
}  // namespace sluice::lb
