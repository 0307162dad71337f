// Istio's defaults where a field is absent: the default retry policy of an
// HTTP route, and the L7 plane for an HTTP port whose DestinationRule sets
// limits or outlier detection that only the proxy enforces.
#include <gtest/gtest.h>

#include "config_test_support.h"

namespace sluice::config {
namespace {

using namespace testing;

const std::string kRoute = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage, subset: v1}}]
)";

TEST(IstioDefaults, AnHttpRouteWithoutRetriesRetriesTwiceAsIstioDoes) {
  auto r = compile_with_productpage(kRoute);
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& route = r.snapshot->find_service("productpage")->routes_for(9080)->http.at(0);
  ASSERT_TRUE(route.retries.has_value());
  EXPECT_EQ(route.retries->attempts, 2u);
  EXPECT_EQ(route.retries->retry_on, (std::vector<std::string>{"connect-failure", "refused-stream", "unavailable",
                                                               "cancelled", "retriable-status-codes"}));
  EXPECT_EQ(route.retries->retriable_status_codes, std::vector<uint32_t>{503});
  // Applied per connection on the TCP port: no "retries do not apply" warning.
  EXPECT_EQ(find_diagnostic(r, "do not apply there"), nullptr) << diagnostics_text(r);
}

TEST(IstioDefaults, ZeroAttemptsSwitchesRetriesOff) {
  auto r = compile_with_productpage(kRoute + "    retries: {attempts: 0}\n");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& route = r.snapshot->find_service("productpage")->routes_for(9080)->http.at(0);
  ASSERT_TRUE(route.retries.has_value());
  EXPECT_EQ(route.retries->attempts, 0u);
}

TEST(IstioDefaults, LimitsOrOutlierDetectionOnAnHttpPortWithoutRoutesAreServedOnTheL7Plane) {
  for (const std::string policy : {"connectionPool: {http: {http1MaxPendingRequests: 1}}",
                                   "connectionPool: {tcp: {maxConnections: 5}}",
                                   "outlierDetection: {consecutive5xxErrors: 1}"}) {
    auto r = compile_with_productpage("", R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy:
    portLevelSettings:
    - port: {number: 9080}
      )" + policy + "\n");
    ASSERT_TRUE(r.ok()) << diagnostics_text(r);
    const auto* pr = r.snapshot->find_service("productpage")->routes_for(9080);
    EXPECT_EQ(pr->plane, model::Plane::L7) << policy;
    ASSERT_EQ(pr->http.size(), 1u);
    EXPECT_EQ(pr->http[0].route.at(0).share, 1.0);
    EXPECT_EQ(r.snapshot->find_service("productpage")->routes_for(9081)->plane, model::Plane::L4);
  }
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

using namespace testing;

std::string service_entry(const std::string& ns, const std::string& vip, const std::string& address) {
  return R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: )" + ns + R"(}
spec:
  hosts: [reviews]
  addresses: [)" + vip + R"(]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: )" + address + R"(, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: )" + ns + R"(}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    timeout: )" + (ns == "a" ? "1s" : "2s") + "\n";
}

TEST(Namespaces, TheSameShortHostInTwoNamespacesIsTwoServicesEachRoutedByItsOwnRules) {
  auto r = compile_yaml({{"a.yaml", service_entry("a", "10.96.2.1", "10.200.11.2")},
                         {"b.yaml", service_entry("b", "10.96.2.2", "10.200.12.2")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* a = r.snapshot->find_service("reviews.a.svc.cluster.local");
  const auto* b = r.snapshot->find_service("reviews.b.svc.cluster.local");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(a, b);
  EXPECT_EQ(a->routes_for(9080)->http.at(0).timeout, std::chrono::seconds(1));
  EXPECT_EQ(b->routes_for(9080)->http.at(0).timeout, std::chrono::seconds(2));
  EXPECT_EQ(b->endpoints.at(0).address.to_string(), "10.200.12.2");
}

}  // namespace
}  // namespace sluice::config
