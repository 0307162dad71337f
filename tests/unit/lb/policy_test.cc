// The factory, the passthrough policy and the host-set view all policies share.
#include "lb/policy.h"

#include <gtest/gtest.h>

#include "lb/passthrough_policy.h"
#include "policy_test_support.h"

namespace sluice::lb {
namespace {

using model::LbAlgorithm;
using testing::config_for;
using testing::make_hosts;

TEST(MakePolicy, BuildsThePolicyTheConfigNames) {
  HostSet hosts(make_hosts({1, 1, 1}));
  SeededRandom random(1);
  for (LbAlgorithm a : {LbAlgorithm::RoundRobin, LbAlgorithm::LeastRequest, LbAlgorithm::Random,
                        LbAlgorithm::Passthrough, LbAlgorithm::RingHash, LbAlgorithm::Maglev}) {
    auto policy = make_policy(config_for(a), {hosts, random});
    ASSERT_NE(policy, nullptr);
    EXPECT_EQ(policy->algorithm(), a) << model::to_string(a);
    EXPECT_EQ(policy->uses_hash_key(), a == LbAlgorithm::RingHash || a == LbAlgorithm::Maglev);
  }
}

TEST(MakePolicy, InvalidMaglevTableSizeNamesTheField) {
  HostSet hosts(make_hosts({1}));
  SeededRandom random(1);
  model::LoadBalancer lb = config_for(LbAlgorithm::Maglev);
  lb.maglev_table_size = 1000;
  try {
    make_policy(lb, {hosts, random});
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("1000"), std::string::npos) << e.what();
  }
}

TEST(PassthroughPolicy, ForwardsToTheDialledAddressEvenWithNoHealthyHosts) {
  PassthroughPolicy policy;
  EXPECT_EQ(policy.choose({}), Selection::passthrough());
}

TEST(HostSet, AvailableViewFollowsHealthAndBumpsTheGeneration) {
  HostSet hosts(make_hosts({1, 1, 1}));
  const uint64_t g0 = hosts.generation();
  EXPECT_TRUE(hosts.set_healthy(1, false));
  EXPECT_FALSE(hosts.set_healthy(1, false));   // no change, no new generation
  EXPECT_EQ(hosts.generation(), g0 + 1);
  EXPECT_EQ(std::vector<uint32_t>(hosts.available().begin(), hosts.available().end()),
            (std::vector<uint32_t>{0, 2}));
}

TEST(HostSet, PanicBalancesOverAllHostsBelowTheThreshold) {
  // minHealthPercent 50 with 4 hosts: 2 healthy (50%) is fine, 1 (25%) is panic.
  HostSet hosts(make_hosts({1, 1, 1, 1}), 50);
  hosts.set_healthy(0, false);
  hosts.set_healthy(1, false);
  EXPECT_FALSE(hosts.in_panic());
  EXPECT_EQ(hosts.available().size(), 2u);
  hosts.set_healthy(2, false);
  EXPECT_TRUE(hosts.in_panic());
  EXPECT_EQ(hosts.available().size(), 4u);
}

TEST(HostSet, WithoutPanicThresholdAllEjectedMeansNothingAvailable) {
  HostSet hosts(make_hosts({1, 1}));
  hosts.set_healthy(0, false);
  hosts.set_healthy(1, false);
  EXPECT_TRUE(hosts.available().empty());
  EXPECT_FALSE(hosts.in_panic());
}

}  // namespace
}  // namespace sluice::lb
