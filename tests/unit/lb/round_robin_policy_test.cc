#include "lb/round_robin_policy.h"

#include <gtest/gtest.h>

#include <set>

#include "policy_test_support.h"

namespace sluice::lb {
namespace {

using testing::make_hosts;
using testing::tally;

TEST(RoundRobinPolicy, EqualWeightsGiveEveryHostTheSameCountAndNeverRepeat) {
  HostSet hosts(make_hosts({1, 1, 1, 1}));
  SeededRandom random(7);
  RoundRobinPolicy policy(hosts, random);
  Selection previous = policy.choose({});
  std::map<int, int> counts{{static_cast<int>(previous.host), 1}};
  for (int i = 1; i < 400; ++i) {
    const Selection s = policy.choose({});
    ASSERT_NE(s.host, previous.host) << "pick " << i;
    counts[static_cast<int>(s.host)]++;
    previous = s;
  }
  EXPECT_EQ(counts, (std::map<int, int>{{0, 100}, {1, 100}, {2, 100}, {3, 100}}));
}

TEST(RoundRobinPolicy, WeightsGiveExactCountsPerCycle) {
  HostSet hosts(make_hosts({70, 30}));
  SeededRandom random(7);
  RoundRobinPolicy policy(hosts, random);
  EXPECT_EQ(tally(policy, 1000), (std::map<int, int>{{0, 700}, {1, 300}}));
}

TEST(RoundRobinPolicy, SkipsUnhealthyHostsAndComesBackWhenHealthy) {
  HostSet hosts(make_hosts({1, 1, 1}));
  SeededRandom random(7);
  RoundRobinPolicy policy(hosts, random);
  hosts.set_healthy(1, false);
  EXPECT_EQ(tally(policy, 100), (std::map<int, int>{{0, 50}, {2, 50}}));
  hosts.set_healthy(1, true);
  EXPECT_EQ(tally(policy, 300), (std::map<int, int>{{0, 100}, {1, 100}, {2, 100}}));
}

TEST(RoundRobinPolicy, NoHealthyHostWhenAllAreEjectedOrNoneExist) {
  HostSet hosts(make_hosts({1, 1}));
  SeededRandom random(7);
  RoundRobinPolicy policy(hosts, random);
  hosts.set_healthy(0, false);
  hosts.set_healthy(1, false);
  EXPECT_EQ(policy.choose({}), Selection::no_healthy_host());
  HostSet empty({});
  RoundRobinPolicy on_empty(empty, random);
  EXPECT_EQ(on_empty.choose({}), Selection::no_healthy_host());
}

TEST(RoundRobinPolicy, SameSeedGivesSameSequenceAndSeedsVaryTheStart) {
  HostSet hosts(make_hosts({1, 1, 1, 1, 1, 1, 1, 1}));
  auto sequence = [&](uint64_t seed) {
    SeededRandom random(seed);
    RoundRobinPolicy policy(hosts, random);
    std::vector<uint32_t> picks;
    for (int i = 0; i < 16; ++i) picks.push_back(policy.choose({}).host);
    return picks;
  };
  EXPECT_EQ(sequence(1), sequence(1));
  // Workers start at random points so they do not all hit host 0 first.
  std::set<uint32_t> first_picks;
  for (uint64_t seed = 0; seed < 32; ++seed) first_picks.insert(sequence(seed)[0]);
  EXPECT_GT(first_picks.size(), 3u);
}

}  // namespace
}  // namespace sluice::lb
