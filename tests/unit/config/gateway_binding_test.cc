// VirtualServices and routes bound to gateways: sluice serves mesh traffic,
// so only what is bound to `mesh` (explicitly or by omission) applies.
#include <gtest/gtest.h>

#include "config_test_support.h"

namespace sluice::config {
namespace {

using namespace testing;

// Istio's ingress sample shape: bound to the gateway only, hosts "*".
const std::string kIngressVs = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {exact: /productpage}
    route:
    - destination: {host: productpage, port: {number: 9080}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
)";

const std::string kMeshVs = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage, subset: v2}
)";

TEST(GatewayBinding, IngressVirtualServiceWithWildcardHostIsSkippedWithANote) {
  auto r = compile_with_productpage(kIngressVs);
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* note = find_diagnostic(r, "VirtualService 'bookinfo' is bound to gateways bookinfo-gateway only");
  ASSERT_NE(note, nullptr) << diagnostics_text(r);
  EXPECT_EQ(note->severity, model::Severity::Info);
  EXPECT_EQ(note->where.line, 6);
  const auto* gateway = find_diagnostic(r, "skipping Gateway");
  ASSERT_NE(gateway, nullptr);
  EXPECT_EQ(gateway->severity, model::Severity::Info);
  // Mesh traffic to productpage is untouched: the default whole-service route.
  const auto& svc = *r.snapshot->find_service("productpage");
  EXPECT_TRUE(svc.virtual_services.empty());
  EXPECT_EQ(svc.routes_for(9080)->l4_source, "default");
}

TEST(GatewayBinding, GatewayOnlyVirtualServiceWithRealHostsDoesNotRouteMeshTraffic) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: [productpage]
  gateways: [istio-system/edge]
  http:
  - route:
    - destination: {host: productpage, subset: v1}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& svc = *r.snapshot->find_service("productpage");
  EXPECT_TRUE(svc.virtual_services.empty());
  EXPECT_EQ(svc.routes_for(9080)->l4_source, "default");
}

TEST(GatewayBinding, IngressAndMeshVirtualServicesForTheSameHostAreAllowed) {
  std::string edge = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: [productpage]
  gateways: [edge]
  http:
  - route:
    - destination: {host: productpage, subset: v1}
---
)";
  auto r = compile_with_productpage(edge + kMeshVs);
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& svc = *r.snapshot->find_service("productpage");
  ASSERT_EQ(svc.virtual_services, std::vector<std::string>{"productpage"});
  const auto* pr = svc.routes_for(9080);
  ASSERT_EQ(pr->plane, model::Plane::L7);
  ASSERT_EQ(pr->http.size(), 1u);
  EXPECT_EQ(subset_name(*r.snapshot, pr->http[0].route.at(0).destination), "v2");
}

TEST(GatewayBinding, MeshListedBesideAGatewayApplies) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: both}
spec:
  hosts: [productpage]
  gateways: [edge, mesh]
  http:
  - route:
    - destination: {host: productpage, subset: v2}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(r.snapshot->find_service("productpage")->virtual_services, std::vector<std::string>{"both"});
  EXPECT_EQ(find_diagnostic(r, "not implemented"), nullptr) << diagnostics_text(r);
}

TEST(GatewayBinding, MatchBoundToAGatewayOnlyIsDroppedForMeshTraffic) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: both}
spec:
  hosts: [productpage]
  gateways: [edge, mesh]
  http:
  - match:
    - gateways: [edge]
      uri: {prefix: /edge}
    route:
    - destination: {host: productpage, subset: v1}
  - match:
    - gateways: [edge]
      headers: {x-a: {exact: "1"}}
    - uri: {prefix: /api}
    route:
    - destination: {host: productpage, subset: v2}
  - route:
    - destination: {host: productpage, subset: v1}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* note = find_diagnostic(r, "'http[0].match[0]' applies to gateways edge only");
  ASSERT_NE(note, nullptr) << diagnostics_text(r);
  EXPECT_EQ(note->severity, model::Severity::Info);
  const auto* pr = r.snapshot->find_service("productpage")->routes_for(9080);
  // http[0] is gone; http[1] keeps only its mesh match; http[2] stays.
  ASSERT_EQ(pr->http.size(), 2u);
  ASSERT_EQ(pr->http[0].matches.size(), 1u);
  ASSERT_TRUE(pr->http[0].matches[0].uri.has_value());
  EXPECT_EQ(pr->http[0].matches[0].uri->value, "/api");
  EXPECT_TRUE(pr->http[1].matches.empty());
}

TEST(GatewayBinding, GatewayOnlyTcpMatchDoesNotSteerMeshConnections) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp}
spec:
  hosts: [productpage]
  gateways: [edge, mesh]
  tcp:
  - match: [{port: 9081, gateways: [edge]}]
    route:
    - destination: {host: productpage, subset: v1, port: {number: 9081}}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(r.snapshot->find_service("productpage")->routes_for(9081)->l4_source, "default");
}

}  // namespace
}  // namespace sluice::config
