#include "lb/subset_balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

namespace sluice::lb {
namespace {

using model::LbAlgorithm;

// productpage: endpoints 0,1 (v1) and 2,3 (v2); subsets "" (all), v1, v2.
model::Snapshot productpage(LbAlgorithm v1, LbAlgorithm v2) {
  model::Snapshot s;
  model::Service svc;
  svc.host = "productpage";
  svc.ports = {{9080, model::Protocol::HTTP, "http", 0}};
  for (int i = 0; i < 4; ++i) {
    model::Endpoint e;
    e.address = *model::IpAddress::parse("10.200.1" + std::to_string(i + 1) + ".2");
    svc.endpoints.push_back(e);
  }
  svc.subsets.resize(3);
  svc.subsets[0].endpoints = {0, 1, 2, 3};
  svc.subsets[0].policy_by_port[9080].load_balancer.algorithm = LbAlgorithm::RoundRobin;
  svc.subsets[1].name = "v1";
  svc.subsets[1].endpoints = {0, 1};
  svc.subsets[1].policy_by_port[9080].load_balancer.algorithm = v1;
  svc.subsets[2].name = "v2";
  svc.subsets[2].endpoints = {2, 3};
  svc.subsets[2].policy_by_port[9080].load_balancer.algorithm = v2;
  s.services.push_back(svc);
  return s;
}

std::map<uint32_t, int> picks(SubsetBalancer& b, model::Destination d, int n) {
  std::map<uint32_t, int> counts;
  for (int i = 0; i < n; ++i) {
    auto p = b.pick(d);
    EXPECT_EQ(p.kind, Selection::Kind::Host);
    counts[p.endpoint]++;
  }
  return counts;
}

// The proxy's active-request counters, one per backend address:port.
class FixedLoad {
 public:
  std::map<std::pair<model::IpAddress, uint32_t>, std::atomic<int64_t>> active;
  ActiveCounterLookup lookup() {
    return [this](const model::IpAddress& address, uint32_t port) { return &active[{address, port}]; };
  }
};

TEST(SubsetBalancer, PicksOnlyTheSubsetsEndpointsByItsPolicy) {
  auto snapshot = productpage(LbAlgorithm::RoundRobin, LbAlgorithm::RoundRobin);
  SeededRandom random(1);
  SubsetBalancer b(random, {});
  b.reset(snapshot);
  EXPECT_EQ(picks(b, {0, 1, 9080}, 100), (std::map<uint32_t, int>{{0, 50}, {1, 50}}));
  EXPECT_EQ(picks(b, {0, 2, 9080}, 100), (std::map<uint32_t, int>{{2, 50}, {3, 50}}));
}

TEST(SubsetBalancer, AnEjectedEndpointLeavesEverySubsetHoldingIt) {
  auto snapshot = productpage(LbAlgorithm::RoundRobin, LbAlgorithm::RoundRobin);
  SeededRandom random(2);
  SubsetBalancer b(random, {});
  b.reset(snapshot);
  picks(b, {0, 0, 9080}, 4);   // the whole-service subset exists before the ejection
  b.set_endpoint_healthy(0, 1, false);
  EXPECT_EQ(picks(b, {0, 1, 9080}, 10), (std::map<uint32_t, int>{{0, 10}}));   // built after: still applies
  EXPECT_EQ(picks(b, {0, 0, 9080}, 30), (std::map<uint32_t, int>{{0, 10}, {2, 10}, {3, 10}}));
  b.set_endpoint_healthy(0, 0, false);
  EXPECT_EQ(b.pick({0, 1, 9080}).kind, Selection::Kind::NoHealthyHost);
  b.set_endpoint_healthy(0, 1, true);
  EXPECT_EQ(picks(b, {0, 1, 9080}, 10), (std::map<uint32_t, int>{{1, 10}}));
}

TEST(SubsetBalancer, ResetForgetsHealthBecauseIndicesBelongToASnapshot) {
  auto snapshot = productpage(LbAlgorithm::RoundRobin, LbAlgorithm::RoundRobin);
  SeededRandom random(3);
  SubsetBalancer b(random, {});
  b.reset(snapshot);
  b.set_endpoint_healthy(0, 0, false);
  b.reset(snapshot);
  EXPECT_TRUE(b.is_endpoint_healthy(0, 0));
  EXPECT_EQ(picks(b, {0, 1, 9080}, 10), (std::map<uint32_t, int>{{0, 5}, {1, 5}}));
}

TEST(SubsetBalancer, LeastRequestReadsTheProxysCountsPerServiceEndpoint) {
  // Two equal hosts, endpoint 2 busy: P2C picks it only when both samples
  // are it, p = 1/4. 8,000 picks: 2,000 expected, sd 39; +-200 is ~5 sd.
  auto snapshot = productpage(LbAlgorithm::RoundRobin, LbAlgorithm::LeastRequest);
  FixedLoad load;
  const model::Endpoint& busy = snapshot.services[0].endpoints[2];
  load.active[{busy.address, 9080}] = 10;
  SeededRandom random(4);
  SubsetBalancer b(random, load.lookup());
  b.reset(snapshot);
  auto counts = picks(b, {0, 2, 9080}, 8000);
  EXPECT_NEAR(counts[2], 2000, 200);
}

TEST(SubsetBalancer, PassthroughNeedsNoEndpoint) {
  auto snapshot = productpage(LbAlgorithm::Passthrough, LbAlgorithm::RoundRobin);
  SeededRandom random(5);
  SubsetBalancer b(random, {});
  b.reset(snapshot);
  EXPECT_EQ(b.pick({0, 1, 9080}).kind, Selection::Kind::Passthrough);
}

TEST(SubsetBalancer, UnknownDestinationNamesIt) {
  auto snapshot = productpage(LbAlgorithm::RoundRobin, LbAlgorithm::RoundRobin);
  SeededRandom random(6);
  SubsetBalancer b(random, {});
  b.reset(snapshot);
  try {
    b.pick({0, 7, 9080});
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("subset 7"), std::string::npos) << e.what();
  }
}

TEST(BackendKey, MatchesTheBpfWritersIdentityFormat) {
  EXPECT_EQ(backend_key(*model::IpAddress::parse("10.200.11.2"), 9080, "tcp"), "10.200.11.2:9080/tcp");
  EXPECT_EQ(backend_key(*model::IpAddress::parse("fd00:200:11::2"), 9081, "udp"), "[fd00:200:11::2]:9081/udp");
}

}  // namespace
}  // namespace sluice::lb
