#include "lb/random_policy.h"

#include <gtest/gtest.h>

#include "policy_test_support.h"

namespace sluice::lb {
namespace {

using testing::make_hosts;
using testing::tally;

TEST(RandomPolicy, WeightedPicksFollowWeights) {
  // 100,000 picks at p = 0.7: sd = sqrt(n p (1-p)) = 145 picks; +-1 point
  // (1,000 picks) is ~7 sd, so only a wrong weighting fails.
  HostSet hosts(make_hosts({70, 30}));
  SeededRandom random(11);
  RandomPolicy policy(hosts, random);
  auto counts = tally(policy, 100000);
  EXPECT_NEAR(counts[0], 70000, 1000);
  EXPECT_NEAR(counts[1], 30000, 1000);
}

TEST(RandomPolicy, EqualWeightsAreUniform) {
  // 40,000 picks over 4: 10,000 each, sd = 87; +-400 is ~4.6 sd.
  HostSet hosts(make_hosts({5, 5, 5, 5}));
  SeededRandom random(12);
  RandomPolicy policy(hosts, random);
  for (auto [host, n] : tally(policy, 40000)) EXPECT_NEAR(n, 10000, 400) << "host " << host;
}

TEST(RandomPolicy, NeverPicksUnhealthyHosts) {
  HostSet hosts(make_hosts({1, 1, 8}));
  SeededRandom random(13);
  RandomPolicy policy(hosts, random);
  hosts.set_healthy(2, false);
  auto counts = tally(policy, 10000);
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_EQ(counts[0] + counts[1], 10000);
}

TEST(RandomPolicy, SameSeedGivesSameSequence) {
  HostSet hosts(make_hosts({3, 1, 2}));
  auto sequence = [&](uint64_t seed) {
    SeededRandom random(seed);
    RandomPolicy policy(hosts, random);
    std::vector<uint32_t> picks;
    for (int i = 0; i < 64; ++i) picks.push_back(policy.choose({}).host);
    return picks;
  };
  EXPECT_EQ(sequence(5), sequence(5));
  EXPECT_NE(sequence(5), sequence(6));
}

}  // namespace
}  // namespace sluice::lb
