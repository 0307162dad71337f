#include <gtest/gtest.h>

#include "config/weight_override.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

using namespace testing;

const std::string kDesignRouting = R"(apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: productpage, subset: v2}}]
  - route:
    - destination: {host: productpage, subset: v1}
      weight: 70
    - destination: {host: productpage, subset: v2}
      weight: 30
)";

model::SnapshotPtr base_snapshot() {
  auto r = compile_with_productpage(kDesignRouting);
  EXPECT_TRUE(r.ok()) << diagnostics_text(r);
  return r.snapshot;
}

std::vector<std::pair<std::string, double>> shares(const model::Snapshot& s,
                                                   const std::vector<model::WeightedDestination>& list) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& w : list) out.emplace_back(subset_name(s, w.destination), w.share);
  return out;
}

TEST(WeightOverride, ShiftsEveryRouteListOfTheHostOnBothPlanes) {
  auto base = base_snapshot();
  auto result = override_weights(*base, "productpage", {{"v1", 50}, {"v2", 50}}, base->version + 1);
  ASSERT_TRUE(result.snapshot) << result.error;
  const auto& s = *result.snapshot;
  EXPECT_EQ(s.version, base->version + 1);
  EXPECT_EQ(s.origin, "files+override");
  const auto* svc = s.find_service("productpage");
  using Shares = std::vector<std::pair<std::string, double>>;
  // The jason route pointed only at v2; it now carries the override too.
  EXPECT_EQ(shares(s, svc->routes_for(9080)->http[0].route), (Shares{{"v1", 0.5}, {"v2", 0.5}}));
  EXPECT_EQ(shares(s, svc->routes_for(9080)->http[1].route), (Shares{{"v1", 0.5}, {"v2", 0.5}}));
  EXPECT_EQ(shares(s, svc->routes_for(9081)->l4), (Shares{{"v1", 0.5}, {"v2", 0.5}}));
  EXPECT_EQ(svc->routes_for(9081)->l4[0].destination.port, 9081u) << "ports are kept";
  // The base snapshot is untouched.
  EXPECT_DOUBLE_EQ(base->find_service("productpage")->routes_for(9081)->l4[0].share, 0.7);
  EXPECT_EQ(base->origin, "files");
}

TEST(WeightOverride, SubsetsNotNamedGetWeightZero) {
  auto base = base_snapshot();
  auto result = override_weights(*base, "productpage", {{"v2", 1}}, 2);
  ASSERT_TRUE(result.snapshot) << result.error;
  const auto& l4 = result.snapshot->find_service("productpage")->routes_for(9081)->l4;
  ASSERT_EQ(l4.size(), 2u);
  EXPECT_EQ(subset_name(*result.snapshot, l4[0].destination), "v1");
  EXPECT_EQ(l4[0].weight, 0u);
  EXPECT_DOUBLE_EQ(l4[0].share, 0.0);
  EXPECT_EQ(l4[1].weight, 1u);
  EXPECT_DOUBLE_EQ(l4[1].share, 1.0);
}

TEST(WeightOverride, WorksOnTheDefaultWholeServiceRoute) {
  auto r = compile_with_productpage("");
  ASSERT_TRUE(r.ok());
  auto result = override_weights(*r.snapshot, "productpage.default.svc.cluster.local", {{"v1", 99}, {"v2", 1}}, 2);
  ASSERT_TRUE(result.snapshot) << result.error;
  using Shares = std::vector<std::pair<std::string, double>>;
  EXPECT_EQ(shares(*result.snapshot, result.snapshot->find_service("productpage")->routes_for(9080)->l4),
            (Shares{{"", 0.0}, {"v1", 0.99}, {"v2", 0.01}}));
}

TEST(WeightOverride, InAMixedListOnlyTheHostsDestinationsChange) {
  auto r = compile_yaml({{"se.yaml", kProductpageService},
                         {"dr.yaml", kProductpageSubsets},
                         {"other.yaml", R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy}
spec:
  hosts: [legacy]
  addresses: [10.96.0.12]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.200.18.2}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route:
    - {destination: {host: legacy}, weight: 50}
    - {destination: {host: productpage, subset: v1}, weight: 50}
    - {destination: {host: productpage, subset: v2}, weight: 0}
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  auto result = override_weights(*r.snapshot, "productpage", {{"v2", 50}}, 2);
  ASSERT_TRUE(result.snapshot) << result.error;
  const auto& route = result.snapshot->find_service("productpage")->routes_for(9080)->http.at(0).route;
  ASSERT_EQ(route.size(), 3u);
  EXPECT_EQ(route[0].weight, 50u) << "legacy keeps its weight";
  EXPECT_EQ(route[1].weight, 0u) << "v1 not named";
  EXPECT_EQ(route[2].weight, 50u);
  EXPECT_DOUBLE_EQ(route[2].share, 0.5);
}

TEST(WeightOverride, RefusesUnknownHostUnknownSubsetAndZeroSum) {
  auto base = base_snapshot();
  auto unknown_host = override_weights(*base, "reviews", {{"v1", 1}}, 2);
  EXPECT_FALSE(unknown_host.snapshot);
  EXPECT_EQ(unknown_host.error, "unknown host 'reviews'");
  auto unknown_subset = override_weights(*base, "productpage", {{"v1", 1}, {"v3", 1}}, 2);
  EXPECT_FALSE(unknown_subset.snapshot);
  EXPECT_EQ(unknown_subset.error, "unknown subset 'v3' for host 'productpage' (known: v1, v2)");
  auto zero = override_weights(*base, "productpage", {{"v1", 0}, {"v2", 0}}, 2);
  EXPECT_FALSE(zero.snapshot);
  EXPECT_EQ(zero.error, "weights for 'productpage' sum to 0: no subset could receive traffic");
  auto twice = override_weights(*base, "productpage", {{"v1", 1}, {"v1", 2}}, 2);
  EXPECT_FALSE(twice.snapshot);
  EXPECT_EQ(twice.error, "subset 'v1' is given twice");
}

}  // namespace
}  // namespace sluice::config
