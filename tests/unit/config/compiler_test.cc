#include <gtest/gtest.h>

#include "config/compiler.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

using namespace testing;
using model::LbAlgorithm;
using model::Plane;

// The project's founding scenario (docs/examples/productpage/), byte for byte.
const std::string kDesignProductpage = R"(apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage, subset: v1}
      weight: 70
    - destination: {host: productpage, subset: v2}
      weight: 30
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
)";

std::vector<std::string> endpoint_names(const model::Service& s, const model::Subset& subset) {
  std::vector<std::string> out;
  for (uint32_t i : subset.endpoints) out.push_back(s.endpoints[i].name);
  return out;
}

TEST(ProductpageScenario, ExampleFileIsTheDesignYamlVerbatim) {
  EXPECT_EQ(read_file(source_root() + "/docs/examples/productpage/virtualservice-destinationrule.yaml"),
            kDesignProductpage);
}

TEST(ProductpageScenario, SplitsSeventyThirtyOnBothPlanes) {
  auto r = compile_yaml({{"se.yaml", kProductpageService}, {"pp.yaml", kDesignProductpage}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& snap = *r.snapshot;
  const auto* svc = snap.find_service("productpage");
  ASSERT_NE(svc, nullptr);
  ASSERT_EQ(svc->vips.size(), 1u);
  EXPECT_EQ(svc->vips[0].to_string(), "10.96.0.10");

  const auto* http = svc->routes_for(9080);
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->plane, Plane::L7);
  ASSERT_EQ(http->http.size(), 1u);
  const auto& route = http->http[0].route;
  ASSERT_EQ(route.size(), 2u);
  EXPECT_EQ(subset_name(snap, route[0].destination), "v1");
  EXPECT_EQ(route[0].weight, 70u);
  EXPECT_DOUBLE_EQ(route[0].share, 0.7);
  EXPECT_EQ(route[0].destination.port, 9080u);
  EXPECT_EQ(subset_name(snap, route[1].destination), "v2");
  EXPECT_DOUBLE_EQ(route[1].share, 0.3);

  const auto* tcp = svc->routes_for(9081);
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(tcp->plane, Plane::L4);
  EXPECT_EQ(tcp->l4_source, "http[0] per connection");
  ASSERT_EQ(tcp->l4.size(), 2u);
  EXPECT_DOUBLE_EQ(tcp->l4[0].share, 0.7);
  EXPECT_EQ(tcp->l4[0].destination.port, 9081u);
  EXPECT_DOUBLE_EQ(tcp->l4[1].share, 0.3);

  ASSERT_EQ(svc->subsets.size(), 3u);
  EXPECT_EQ(svc->subsets[0].name, "");
  EXPECT_EQ(svc->subsets[0].endpoints.size(), 4u);
  EXPECT_EQ(endpoint_names(*svc, svc->subsets[1]),
            (std::vector<std::string>{"productpage-v1-a", "productpage-v1-b"}));
  EXPECT_EQ(endpoint_names(*svc, svc->subsets[2]),
            (std::vector<std::string>{"productpage-v2-a", "productpage-v2-b"}));
  EXPECT_EQ(svc->subsets[1].policy_for(9080).load_balancer.algorithm, LbAlgorithm::LeastRequest)
      << "Istio's default policy";

  const auto* note = find_diagnostic(r, "applies per connection on port 9081");
  ASSERT_NE(note, nullptr) << diagnostics_text(r);
  EXPECT_EQ(note->severity, model::Severity::Info);
  EXPECT_EQ(note->where.file, "pp.yaml");
  EXPECT_EQ(note->where.line, 7);
}

TEST(Snapshot, CarriesTheCallersVersionAndOrigin) {
  auto r = compile(parse_sources({{"se.yaml", kProductpageService}}), 42);
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(r.snapshot->version, 42u);
  EXPECT_EQ(r.snapshot->origin, "files");
  EXPECT_EQ(r.snapshot->source_files, std::vector<std::string>{"se.yaml"});
}

class ApiVersions : public ::testing::TestWithParam<const char*> {};

TEST_P(ApiVersions, AllThreeNetworkingVersionsCompileTheSame) {
  std::string text = kDesignProductpage;
  const std::string version = GetParam();
  for (size_t at = 0; (at = text.find("v1alpha3", at)) != std::string::npos; at += version.size()) {
    text.replace(at, 8, version);
  }
  auto r = compile_yaml({{"se.yaml", kProductpageService}, {"pp.yaml", text}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& route = r.snapshot->find_service("productpage")->routes_for(9080)->http.at(0).route;
  ASSERT_EQ(route.size(), 2u);
  EXPECT_DOUBLE_EQ(route[0].share, 0.7);
}
INSTANTIATE_TEST_SUITE_P(Config, ApiVersions, ::testing::Values("v1alpha3", "v1beta1", "v1"));

TEST(ApiVersion, UnknownVersionOfAKnownKindIsSkippedWithAWarning) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v2
kind: VirtualService
metadata: {name: x}
spec: {hosts: [productpage]}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* d = find_diagnostic(r, "apiVersion 'networking.istio.io/v2' is not one of");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_EQ(d->severity, model::Severity::Warning);
  EXPECT_EQ(r.snapshot->find_service("productpage")->routes_for(9080)->plane, Plane::L4);
}

TEST(ApiVersion, OtherKindsAreReportedAndSkipped) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec: {servers: []}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_NE(find_diagnostic(r, "skipping Gateway (networking.istio.io/v1)"), nullptr);
  EXPECT_NE(find_diagnostic(r, "skipping ConfigMap (v1)"), nullptr);
  EXPECT_EQ(r.snapshot->warnings.size(), 2u);
}

// --- weights ---------------------------------------------------------------

const model::PortRoutes& http_port(const CompileResult& r) {
  return *r.snapshot->find_service("productpage")->routes_for(9080);
}

TEST(Weights, AreSharesOfTheirSumNotPercentages) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route:
    - {destination: {host: productpage, subset: v1}, weight: 1}
    - {destination: {host: productpage, subset: v2}, weight: 3}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& route = http_port(r).http.at(0).route;
  EXPECT_DOUBLE_EQ(route[0].share, 0.25);
  EXPECT_DOUBLE_EQ(route[1].share, 0.75);
}

TEST(Weights, ASingleDestinationWithoutWeightGetsEverything) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage, subset: v2}}]
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& route = http_port(r).http.at(0).route;
  ASSERT_EQ(route.size(), 1u);
  EXPECT_EQ(route[0].weight, 100u);
  EXPECT_DOUBLE_EQ(route[0].share, 1.0);
}

TEST(Weights, ASingleDestinationGetsEverythingWhateverItsWeight) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage, subset: v2}, weight: 0}]
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_DOUBLE_EQ(http_port(r).http.at(0).route.at(0).share, 1.0);
}

TEST(Weights, ZeroWeightGetsNothing) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route:
    - {destination: {host: productpage, subset: v1}, weight: 0}
    - {destination: {host: productpage, subset: v2}, weight: 5}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& route = http_port(r).http.at(0).route;
  EXPECT_DOUBLE_EQ(route[0].share, 0.0);
  EXPECT_DOUBLE_EQ(route[1].share, 1.0);
}

// --- matches and per-port routes ---------------------------------------------

TEST(HttpRoutes, KeepOrderAndEveryMatchConditionFamily) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - name: api
    match:
    - uri: {regex: "/API/v[0-9]+"}
      ignoreUriCase: true
      method: {exact: POST}
      authority: {prefix: productpage}
      headers: {End-User: {exact: jason}, x-any: {}}
      queryParams: {debug: {exact: "1"}}
      withoutHeaders: {x-skip: {prefix: y}}
      port: 9080
    - uri: {prefix: /static/}
    route: [{destination: {host: productpage, subset: v2}}]
  - name: rest
    route: [{destination: {host: productpage, subset: v1}}]
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& http = http_port(r).http;
  ASSERT_EQ(http.size(), 2u);
  EXPECT_EQ(http[0].name, "api");
  EXPECT_EQ(http[1].name, "rest");
  ASSERT_EQ(http[0].matches.size(), 2u);
  const auto& m = http[0].matches[0];
  ASSERT_TRUE(m.uri);
  EXPECT_TRUE(m.uri->matches("/api/V2", true)) << "ignoreUriCase compiles a case-insensitive RE2";
  EXPECT_FALSE(m.uri->matches("/api/vx", true));
  ASSERT_TRUE(m.method);
  EXPECT_EQ(m.method->value, "POST");
  EXPECT_EQ(m.authority->kind, model::StringMatch::Kind::Prefix);
  ASSERT_EQ(m.headers.size(), 2u);
  EXPECT_EQ(m.headers[0].name, "end-user") << "header names are lowercased";
  EXPECT_EQ(m.headers[0].match->value, "jason");
  EXPECT_FALSE(m.headers[1].match) << "{} means: present with any value";
  ASSERT_EQ(m.query_params.size(), 1u);
  EXPECT_EQ(m.query_params[0].name, "debug");
  ASSERT_EQ(m.without_headers.size(), 1u);
  EXPECT_EQ(m.port, 9080u);
  EXPECT_EQ(http[0].matches[1].uri->kind, model::StringMatch::Kind::Prefix);
}

TEST(HttpRoutes, OnlyMatchesForThePortAreKeptAndRoutesWithNoneLeftAreDropped) {
  auto r = compile_yaml({{"se.yaml", R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web]
  addresses: [10.96.0.30]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 8080, name: http-alt, protocol: HTTP}]
  endpoints: [{address: 10.200.31.2}]
)"},
                         {"vs.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - name: admin-only-on-8080
    match: [{port: 8080, uri: {prefix: /admin}}]
    route: [{destination: {host: web}}]
  - name: mixed
    match: [{port: 80, uri: {prefix: /a}}, {port: 8080, uri: {prefix: /b}}, {uri: {prefix: /c}}]
    route: [{destination: {host: web}}]
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("web");
  const auto& p80 = svc->routes_for(80)->http;
  ASSERT_EQ(p80.size(), 1u);
  EXPECT_EQ(p80[0].name, "mixed");
  ASSERT_EQ(p80[0].matches.size(), 2u);
  EXPECT_EQ(p80[0].matches[0].uri->value, "/a");
  EXPECT_EQ(p80[0].matches[1].uri->value, "/c");
  const auto& p8080 = svc->routes_for(8080)->http;
  ASSERT_EQ(p8080.size(), 2u);
  EXPECT_EQ(p8080[0].name, "admin-only-on-8080");
  EXPECT_EQ(p8080[1].matches.size(), 2u);
  EXPECT_EQ(p8080[0].route[0].destination.port, 8080u) << "an unset destination port is the routed port";
}

TEST(HttpRoutes, CarryEveryActionField) {
  auto r = compile_with_productpage(R"yaml(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: example.org, scheme: https, port: 8443, redirectCode: 308}
  - match: [{uri: {exact: /gone}}]
    directResponse: {status: 410, body: {string: gone for good}}
  - match: [{uri: {prefix: /v1/}}]
    rewrite: {uri: /, authority: internal}
    route:
    - destination: {host: productpage, subset: v1}
      headers:
        request: {set: {X-Version: v1}, add: {x-added: "yes"}, remove: [X-Drop]}
        response: {set: {x-served-by: v1}}
    timeout: 1.5s
    retries: {attempts: 4, perTryTimeout: 250ms, retryOn: "5xx,reset,503"}
    fault:
      delay: {fixedDelay: 100ms, percentage: {value: 12.5}}
      abort: {httpStatus: 503, percent: 7}
    mirror: {host: productpage, subset: v2}
    mirrorPercentage: {value: 25}
    headers:
      request: {add: {x-mesh: sluice}}
  - match: [{uri: {regex: "/items/([0-9]+)"}}]
    rewrite: {uriRegexRewrite: {match: "/items/([0-9]+)", rewrite: "/item?id=\\1"}}
    route: [{destination: {host: productpage, subset: v1}}]
    mirrors:
    - destination: {host: productpage, subset: v2}
      percentage: {value: 1.5}
)yaml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& http = http_port(r).http;
  ASSERT_EQ(http.size(), 4u);
  ASSERT_TRUE(http[0].redirect);
  EXPECT_EQ(http[0].redirect->uri, "/new");
  EXPECT_EQ(http[0].redirect->authority, "example.org");
  EXPECT_EQ(http[0].redirect->scheme, "https");
  EXPECT_EQ(http[0].redirect->port, 8443u);
  EXPECT_EQ(http[0].redirect->status, 308u);
  ASSERT_TRUE(http[1].direct_response);
  EXPECT_EQ(http[1].direct_response->status, 410u);
  EXPECT_EQ(http[1].direct_response->body, "gone for good");

  const auto& main = http[2];
  ASSERT_TRUE(main.rewrite);
  EXPECT_EQ(main.rewrite->uri, "/");
  EXPECT_EQ(main.rewrite->authority, "internal");
  EXPECT_EQ(main.timeout, std::chrono::milliseconds(1500));
  ASSERT_TRUE(main.retries);
  EXPECT_EQ(main.retries->attempts, 4u);
  EXPECT_EQ(main.retries->per_try_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(main.retries->retry_on,
            (std::vector<std::string>{"5xx", "reset", "retriable-status-codes"}));
  EXPECT_EQ(main.retries->retriable_status_codes, std::vector<uint32_t>{503});
  EXPECT_TRUE(main.retries->ignore_previous_hosts) << "Istio's default";
  EXPECT_EQ(main.retries->backoff, std::chrono::milliseconds(25)) << "Envoy's default base interval";
  ASSERT_TRUE(main.fault && main.fault->delay && main.fault->abort);
  EXPECT_EQ(main.fault->delay->fixed, std::chrono::milliseconds(100));
  EXPECT_DOUBLE_EQ(main.fault->delay->percent, 12.5);
  EXPECT_EQ(main.fault->abort->status, 503u);
  EXPECT_DOUBLE_EQ(main.fault->abort->percent, 7.0) << "legacy integer 'percent'";
  ASSERT_EQ(main.mirrors.size(), 1u);
  EXPECT_EQ(subset_name(*r.snapshot, main.mirrors[0].destination), "v2");
  EXPECT_DOUBLE_EQ(main.mirrors[0].percent, 25.0);
  ASSERT_EQ(main.headers.request.add.size(), 1u);
  const auto& ops = main.route.at(0).headers;
  EXPECT_EQ(ops.request.set, (std::vector<std::pair<std::string, std::string>>{{"x-version", "v1"}}));
  EXPECT_EQ(ops.request.add, (std::vector<std::pair<std::string, std::string>>{{"x-added", "yes"}}));
  EXPECT_EQ(ops.request.remove, std::vector<std::string>{"x-drop"});
  EXPECT_EQ(ops.response.set.size(), 1u);

  ASSERT_TRUE(http[3].rewrite && http[3].rewrite->uri_regex);
  EXPECT_TRUE(http[3].rewrite->uri_regex->matches("/items/42"));
  EXPECT_EQ(http[3].rewrite->uri_regex_rewrite, "/item?id=\\1");
  ASSERT_EQ(http[3].mirrors.size(), 1u);
  EXPECT_DOUBLE_EQ(http[3].mirrors[0].percent, 1.5);
}

// --- planes ------------------------------------------------------------------

TEST(Planes, HttpPortWithoutRoutesOrRequestHashingIsL4) {
  auto r = compile_with_productpage("");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& pr = http_port(r);
  EXPECT_EQ(pr.plane, Plane::L4);
  EXPECT_EQ(pr.l4_source, "default");
  ASSERT_EQ(pr.l4.size(), 1u);
  EXPECT_EQ(pr.l4[0].destination.subset, 0u) << "the whole service";
  EXPECT_DOUBLE_EQ(pr.l4[0].share, 1.0);
}

TEST(Planes, HeaderHashingMakesAnHttpPortL7EvenWithoutRoutes) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {consistentHash: {httpHeaderName: X-User}}
)"));
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("productpage");
  const auto& pr = *svc->routes_for(9080);
  EXPECT_EQ(pr.plane, Plane::L7);
  ASSERT_EQ(pr.http.size(), 1u) << "a default route to the whole service";
  EXPECT_TRUE(pr.http[0].matches.empty());
  EXPECT_EQ(pr.http[0].route.at(0).destination.subset, 0u);
  EXPECT_EQ(svc->routes_for(9081)->plane, Plane::L4);
  const auto& lb = svc->subsets[0].policy_for(9080).load_balancer;
  EXPECT_EQ(lb.algorithm, LbAlgorithm::RingHash);
  EXPECT_EQ(lb.hash.source, model::HashKey::Source::Header);
  EXPECT_EQ(lb.hash.name, "x-user");
}

TEST(Planes, SourceIpHashingNeedsNoRequestDataAndStaysL4) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}
)"));
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(http_port(r).plane, Plane::L4);
  EXPECT_EQ(r.snapshot->find_service("productpage")->subsets[0].policy_for(9080).load_balancer.algorithm,
            LbAlgorithm::Maglev);
}

TEST(Planes, TcpRouteForThePortWinsOverAnUnconditionalHttpRoute) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage, subset: v1}}]
  tcp:
  - match: [{port: 9999}]
    route: [{destination: {host: productpage, subset: v1}}]
  - match: [{port: 9081}]
    route:
    - {destination: {host: productpage, subset: v1}, weight: 10}
    - {destination: {host: productpage, subset: v2}, weight: 90}
)");
  // Port 9999 is not a productpage port: an error, so compile without it.
  ASSERT_FALSE(r.ok());
  EXPECT_NE(find_diagnostic(r, "match port 9999 is not a port of its hosts"), nullptr);

  r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage, subset: v1}}]
  tcp:
  - match: [{port: 9081}]
    route:
    - {destination: {host: productpage, subset: v1}, weight: 10}
    - {destination: {host: productpage, subset: v2}, weight: 90}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& pr = *r.snapshot->find_service("productpage")->routes_for(9081);
  EXPECT_EQ(pr.plane, Plane::L4);
  EXPECT_EQ(pr.l4_source, "tcp[0]");
  ASSERT_EQ(pr.l4.size(), 2u);
  EXPECT_DOUBLE_EQ(pr.l4[1].share, 0.9);
  EXPECT_EQ(find_diagnostic(r, "applies per connection"), nullptr);
}

TEST(Planes, ConditionalHttpRoutesDoNotApplyPerConnection) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: productpage, subset: v2}}]
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& pr = *r.snapshot->find_service("productpage")->routes_for(9081);
  EXPECT_EQ(pr.l4_source, "default");
  EXPECT_EQ(pr.l4.at(0).destination.subset, 0u);
}

TEST(Planes, PerConnectionUseOfAnHttpRouteWithPerRequestFieldsIsAWarning) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: productpage, subset: v2}}]
  - route: [{destination: {host: productpage, subset: v1}}]
    timeout: 2s
    retries: {attempts: 1}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& pr = *r.snapshot->find_service("productpage")->routes_for(9081);
  EXPECT_EQ(pr.l4_source, "http[1] per connection");
  const auto* d = find_diagnostic(r, "per-request fields (timeout, retries) do not apply");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_EQ(d->severity, model::Severity::Warning);
  EXPECT_EQ(d->where.line, 9);
}

// --- policies ----------------------------------------------------------------

TEST(Policies, SubsetComponentsOverrideTheRuleAndPortLevelSettingsReplaceForTheirPort) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 10}}
    outlierDetection: {consecutive5xxErrors: 3}
    portLevelSettings:
    - port: {number: 9081}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {simple: LEAST_CONN}
  - name: v2-pinned
    labels: {version: v2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {simple: PASSTHROUGH}
)"));
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("productpage");
  auto lb = [&](const char* subset, uint32_t port) {
    return svc->subsets[*svc->subset_index(subset)].policy_for(port).load_balancer.algorithm;
  };
  // Whole service and v1: the rule, with the rule's port-level setting on 9081.
  EXPECT_EQ(lb("", 9080), LbAlgorithm::RoundRobin);
  EXPECT_EQ(lb("", 9081), LbAlgorithm::Random);
  EXPECT_EQ(lb("v1", 9080), LbAlgorithm::RoundRobin);
  EXPECT_EQ(lb("v1", 9081), LbAlgorithm::Random);
  // v2 sets a load balancer (LEAST_CONN is LEAST_REQUEST); the rule's port level still replaces on 9081.
  EXPECT_EQ(lb("v2", 9080), LbAlgorithm::LeastRequest);
  EXPECT_EQ(lb("v2", 9081), LbAlgorithm::Random);
  // v2-pinned has its own port-level list, which replaces the rule's list.
  EXPECT_EQ(lb("v2-pinned", 9080), LbAlgorithm::Passthrough);
  EXPECT_EQ(lb("v2-pinned", 9081), LbAlgorithm::RoundRobin);

  // Components the rule sets are inherited by subsets...
  const auto& v2 = svc->subsets[*svc->subset_index("v2")];
  EXPECT_EQ(v2.policy_for(9080).connection_pool.max_connections, 10u);
  EXPECT_TRUE(v2.policy_for(9080).outlier_detection.enabled);
  EXPECT_EQ(v2.policy_for(9080).outlier_detection.consecutive_5xx_errors, 3u);
  // ...but a port-level setting replaces the whole policy: unset components are defaults.
  EXPECT_EQ(v2.policy_for(9081).connection_pool.max_connections, model::ConnectionPool::kUnlimited);
  EXPECT_FALSE(v2.policy_for(9081).outlier_detection.enabled);
}

TEST(Policies, Http2UpgradeAndStreamLimitAreReadAndABadPolicyIsNamed) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    connectionPool: {http: {h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 12}}
  subsets:
  - {name: v1, labels: {version: v1}, trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}}}
)"));
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("productpage");
  const auto base = svc->subsets[*svc->subset_index("")].policy_for(9080).connection_pool;
  EXPECT_EQ(base.h2_upgrade, model::ConnectionPool::H2Upgrade::Upgrade);
  EXPECT_EQ(base.max_concurrent_streams, 12u);
  EXPECT_EQ(svc->subsets[*svc->subset_index("v1")].policy_for(9080).connection_pool.h2_upgrade,
            model::ConnectionPool::H2Upgrade::DoNotUpgrade);
  EXPECT_FALSE(base.use_client_protocol);

  auto client = compile_with_productpage("", productpage_rule(R"(  trafficPolicy: {connectionPool: {http: {useClientProtocol: true}}}
)"));
  ASSERT_TRUE(client.ok()) << diagnostics_text(client);
  EXPECT_EQ(find_diagnostic(client, "useClientProtocol"), nullptr) << diagnostics_text(client);   // no "not implemented"
  const auto* csvc = client.snapshot->find_service("productpage");
  EXPECT_TRUE(csvc->subsets[*csvc->subset_index("")].policy_for(9080).connection_pool.use_client_protocol);

  auto bad = compile_with_productpage("", productpage_rule(R"(  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: ALWAYS}}}
)"));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(find_diagnostic(bad, "h2UpgradePolicy': unknown policy 'ALWAYS'"), nullptr) << diagnostics_text(bad);
}

TEST(Policies, TcpKeepaliveIsReadAndValuesLinuxRefusesAreNamed) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    connectionPool: {tcp: {tcpKeepalive: {time: 7s, interval: 3s, probes: 4}}}
  subsets:
  - {name: v1, labels: {version: v1}, trafficPolicy: {connectionPool: {tcp: {tcpKeepalive: {time: 60s}}}}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {connectionPool: {tcp: {maxConnections: 5}}}}
)"));
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(find_diagnostic(r, "tcpKeepalive"), nullptr) << diagnostics_text(r);   // no "not implemented"
  const auto* svc = r.snapshot->find_service("productpage");
  auto keepalive = [&](const char* subset) { return svc->subsets[*svc->subset_index(subset)].policy_for(9080).connection_pool.tcp_keepalive; };
  ASSERT_TRUE(keepalive(""));
  EXPECT_EQ(*keepalive(""), (model::TcpKeepalive{4, std::chrono::seconds(7), std::chrono::seconds(3)}));
  // A field left out is 0: the node's default.
  EXPECT_EQ(*keepalive("v1"), (model::TcpKeepalive{0, std::chrono::seconds(60), model::Duration(0)}));
  EXPECT_FALSE(keepalive("v2"));   // a subset's connectionPool replaces the rule's whole

  auto bad = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    connectionPool: {tcp: {tcpKeepalive: {time: 500ms, interval: 40000s, probes: 200}}}
)"));
  EXPECT_FALSE(bad.ok());
  const auto* time = find_diagnostic(bad, "'trafficPolicy.connectionPool.tcp.tcpKeepalive.time' is 500ms: TCP keepalive takes whole seconds from 1s to 32767s");
  ASSERT_NE(time, nullptr) << diagnostics_text(bad);
  EXPECT_EQ(time->where.line, 7);
  EXPECT_NE(find_diagnostic(bad, "'trafficPolicy.connectionPool.tcp.tcpKeepalive.interval' is 40000s"), nullptr)
      << diagnostics_text(bad);
  EXPECT_NE(find_diagnostic(bad, "tcpKeepalive.probes"), nullptr) << diagnostics_text(bad);
}

TEST(Routes, RetryBackoffBelowOneMillisecondIsNamed) {
  auto r = compile_with_productpage(productpage_routes(R"(  http:
  - route: [{destination: {host: productpage, subset: v1}}]
    retries: {attempts: 2, backoff: 0s}
)"));
  EXPECT_FALSE(r.ok());
  const auto* d = find_diagnostic(r, "'http[0].retries.backoff' is 0s: the retry back-off's base interval is at least 1ms");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_EQ(d->where.line, 8);
}

TEST(Policies, SplitLocalOriginErrorsAreReadAndALoneLimitIsAWarning) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    outlierDetection: {splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2}
  subsets:
  - {name: v1, labels: {version: v1}, trafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 3}}}
)"));
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("productpage");
  const auto base = svc->subsets[*svc->subset_index("")].policy_for(9080).outlier_detection;
  EXPECT_TRUE(base.split_external_local_origin_errors);
  EXPECT_EQ(base.consecutive_local_origin_failures, 2u);
  const auto* alone = find_diagnostic(r, "subsets[0].trafficPolicy.outlierDetection.consecutiveLocalOriginFailures' takes effect only with splitExternalLocalOriginErrors: true");
  ASSERT_NE(alone, nullptr) << diagnostics_text(r);
  EXPECT_EQ(alone->severity, model::Severity::Warning);
  EXPECT_EQ(alone->where.line, 9);
  EXPECT_EQ(find_diagnostic(r, "is not implemented"), nullptr) << diagnostics_text(r);
}

TEST(Policies, MaxConnectionDurationIsReadAndZeroIsNamed) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy: {connectionPool: {tcp: {maxConnectionDuration: 30m}}}
  subsets:
  - {name: v1, labels: {version: v1}, trafficPolicy: {connectionPool: {tcp: {maxConnectionDuration: 1.5s}}}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {connectionPool: {tcp: {maxConnections: 5}}}}
)"));
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(find_diagnostic(r, "maxConnectionDuration"), nullptr) << diagnostics_text(r);   // no "not implemented"
  const auto* svc = r.snapshot->find_service("productpage");
  auto duration = [&](const char* subset) { return svc->subsets[*svc->subset_index(subset)].policy_for(9080).connection_pool.max_connection_duration; };
  EXPECT_EQ(duration(""), std::chrono::minutes(30));
  EXPECT_EQ(duration("v1"), std::chrono::milliseconds(1500));
  EXPECT_EQ(duration("v2"), model::Duration(0));   // a subset's connectionPool replaces the rule's whole: none

  auto bad = compile_with_productpage("", productpage_rule(R"(  trafficPolicy: {connectionPool: {tcp: {maxConnectionDuration: 0s}}}
)"));
  EXPECT_FALSE(bad.ok());
  const auto* zero = find_diagnostic(bad, "'trafficPolicy.connectionPool.tcp.maxConnectionDuration' is 0s: a connection's maximum duration is at least 1ms");
  ASSERT_NE(zero, nullptr) << diagnostics_text(bad);
  EXPECT_EQ(zero->where.line, 6);
}

TEST(Policies, EveryLoadBalancerFamilyIsRead) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    loadBalancer: {simple: UNSPECIFIED}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 7, http2MaxRequests: 8, maxRequestsPerConnection: 9, maxRetries: 2, idleTimeout: 90s}
    outlierDetection: {consecutiveGatewayErrors: 4, interval: 1m, baseEjectionTime: 15s, maxEjectionPercent: 50, minHealthPercent: 20}
  subsets:
  - {name: cookie, labels: {version: v1}, trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: sid, path: /, ttl: 1h}}}}}
  - {name: query, labels: {version: v1}, trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: user, ringHash: {minimumRingSize: 4096}}}}}
  - {name: maglev, labels: {version: v2}, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 251}}}}}
  - {name: rr, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: round_robin}}}
)"));
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("productpage");
  auto policy = [&](const char* subset) { return svc->subsets[*svc->subset_index(subset)].policy_for(9080); };
  const auto base = policy("");
  EXPECT_EQ(base.load_balancer.algorithm, LbAlgorithm::LeastRequest) << "UNSPECIFIED is Istio's default";
  EXPECT_EQ(base.connection_pool.max_connections, 100u);
  EXPECT_EQ(base.connection_pool.connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(base.connection_pool.http1_max_pending_requests, 7u);
  EXPECT_EQ(base.connection_pool.http2_max_requests, 8u);
  EXPECT_EQ(base.connection_pool.max_requests_per_connection, 9u);
  EXPECT_EQ(base.connection_pool.max_retries, 2u);
  EXPECT_EQ(base.connection_pool.idle_timeout, std::chrono::seconds(90));
  EXPECT_EQ(base.outlier_detection.consecutive_gateway_errors, 4u);
  EXPECT_EQ(base.outlier_detection.interval, std::chrono::minutes(1));
  EXPECT_EQ(base.outlier_detection.base_ejection_time, std::chrono::seconds(15));
  EXPECT_EQ(base.outlier_detection.max_ejection_percent, 50u);
  EXPECT_EQ(base.outlier_detection.min_health_percent, 20);

  const auto cookie = policy("cookie").load_balancer;
  EXPECT_EQ(cookie.algorithm, LbAlgorithm::RingHash);
  EXPECT_EQ(cookie.hash.source, model::HashKey::Source::Cookie);
  EXPECT_EQ(cookie.hash.name, "sid");
  EXPECT_EQ(cookie.hash.cookie_path, "/");
  EXPECT_EQ(cookie.hash.cookie_ttl, std::chrono::hours(1));
  const auto query = policy("query").load_balancer;
  EXPECT_EQ(query.hash.source, model::HashKey::Source::QueryParameter);
  EXPECT_EQ(query.ring_minimum_size, 4096u);
  const auto maglev = policy("maglev").load_balancer;
  EXPECT_EQ(maglev.algorithm, LbAlgorithm::Maglev);
  EXPECT_EQ(maglev.hash.source, model::HashKey::Source::SourceIp);
  EXPECT_EQ(maglev.maglev_table_size, 251u);
  EXPECT_EQ(policy("rr").load_balancer.algorithm, LbAlgorithm::RoundRobin) << "policy names are case-insensitive";
  EXPECT_EQ(policy("rr").connection_pool.max_connections, 100u) << "inherited from the rule";
  // Cookie and query hashing need request data: the HTTP port becomes L7.
  EXPECT_EQ(svc->routes_for(9080)->plane, Plane::L7);
}

// --- hosts, endpoints, subsets -------------------------------------------------

TEST(Hosts, ShortAndClusterLocalNamesResolveToTheSameService) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage.default.svc.cluster.local]
  http:
  - route: [{destination: {host: productpage.default.svc.cluster.local, subset: v2}}]
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(http_port(r).plane, Plane::L7);
  EXPECT_EQ(r.snapshot->find_service("productpage.default"), r.snapshot->find_service("productpage"));

  auto fqdn = compile_yaml({{"se.yaml", R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  addresses: [10.96.0.20]
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.200.21.2}]
)"},
                            {"vs.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
)"}});
  ASSERT_TRUE(fqdn.ok()) << diagnostics_text(fqdn);
  const auto* svc = fqdn.snapshot->find_service("reviews");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->host, "reviews.shop.svc.cluster.local");
  EXPECT_EQ(svc->routes_for(80)->plane, Plane::L7) << "protocol from the port name 'http'";
}

TEST(Hosts, AShortNameMeansTheReferringNamespaceFirst) {
  const char* se = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: NS}
spec:
  hosts: [db.NS.svc.cluster.local]
  addresses: [VIP]
  ports: [{number: 5432, name: tcp}]
  endpoints: [{address: VIP}]
)";
  auto in = [&](const std::string& ns, const std::string& vip) {
    std::string text = se;
    for (auto [from, to] : {std::pair<std::string, std::string>{"NS", ns}, {"VIP", vip}}) {
      for (size_t at; (at = text.find(from)) != std::string::npos;) text.replace(at, from.size(), to);
    }
    return text;
  };
  auto r = compile_yaml({{"a.yaml", in("alpha", "10.96.1.1")},
                         {"b.yaml", in("beta", "10.96.2.2")},
                         {"vs.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: beta}
spec:
  hosts: [db]
  tcp: [{route: [{destination: {host: db}}]}]
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& snap = *r.snapshot;
  EXPECT_EQ(snap.find_service("db.beta.svc.cluster.local")->virtual_services, std::vector<std::string>{"db"});
  EXPECT_TRUE(snap.find_service("db.alpha.svc.cluster.local")->virtual_services.empty());
  const auto& l4 = snap.find_service("db.beta.svc.cluster.local")->routes_for(5432)->l4;
  EXPECT_EQ(snap.services[l4.at(0).destination.service].namespace_, "beta");
}

TEST(Hosts, AVirtualServiceMayTargetSeveralHostsAndRouteToOtherServices) {
  auto r = compile_yaml({{"se.yaml", kProductpageService},
                         {"more.yaml", R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: canary}
spec:
  hosts: [canary, canary-alias]
  addresses: [10.96.0.11]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.200.15.2, weight: 3}
  - {address: 10.200.16.2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: both}
spec:
  hosts: [productpage, canary-alias]
  http:
  - route:
    - {destination: {host: canary}, weight: 1}
    - {destination: {host: productpage, port: {number: 9080}}, weight: 1}
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& snap = *r.snapshot;
  for (const char* host : {"productpage", "canary"}) {
    const auto& route = snap.find_service(host)->routes_for(9080)->http.at(0).route;
    ASSERT_EQ(route.size(), 2u) << host;
    EXPECT_EQ(snap.services[route[0].destination.service].host, "canary");
    EXPECT_EQ(snap.services[route[1].destination.service].host, "productpage");
  }
  const auto* canary = snap.find_service("canary-alias");
  ASSERT_NE(canary, nullptr);
  EXPECT_EQ(canary->endpoints.at(0).weight, 3u);
  EXPECT_EQ(canary->endpoints.at(1).weight, 1u) << "endpoint weight defaults to 1";
  EXPECT_EQ(canary->endpoints.at(0).name, "canary/endpoints[0]");
  EXPECT_EQ(canary->virtual_services, std::vector<std::string>{"both"});
}

TEST(ServiceEntries, ReadVipsPortsProtocolsTargetPortsAndEndpoints) {
  auto r = compile_yaml({{"se.yaml", R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.shop.svc.cluster.local, api-legacy]
  addresses: [10.96.0.50, "fd00:96::50"]
  ports:
  - {number: 80, name: http-web, targetPort: 8080}
  - {number: 443, name: https, protocol: HTTPS}
  - {number: 9000, name: grpc-api, protocol: grpc}
  resolution: STATIC
  endpoints:
  - {address: 10.200.51.2, ports: {http-web: 8081}, labels: {version: v1}, weight: 2}
  - {address: "fd00:200:52::2"}
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("api-legacy");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc, r.snapshot->find_service("api")) << "short form of the first host";
  EXPECT_EQ(svc->name, "api");
  EXPECT_EQ(svc->namespace_, "shop");
  ASSERT_EQ(svc->vips.size(), 2u);
  EXPECT_EQ(svc->vips[1].to_string(), "fd00:96::50");
  ASSERT_EQ(svc->ports.size(), 3u);
  EXPECT_EQ(svc->ports[0].protocol, model::Protocol::HTTP) << "from the name prefix 'http-'";
  EXPECT_EQ(svc->ports[0].target_port, 8080u);
  EXPECT_EQ(svc->ports[1].protocol, model::Protocol::HTTPS);
  EXPECT_EQ(svc->ports[2].protocol, model::Protocol::GRPC) << "protocol names are case-insensitive";
  ASSERT_EQ(svc->endpoints.size(), 2u);
  EXPECT_EQ(svc->endpoints[0].port_for(svc->ports[0]), 8081u) << "the endpoint's named port wins";
  EXPECT_EQ(svc->endpoints[1].port_for(svc->ports[0]), 8080u) << "else targetPort";
  EXPECT_EQ(svc->endpoints[1].port_for(svc->ports[1]), 443u) << "else the service port";
  EXPECT_EQ(svc->endpoints[0].weight, 2u);
  EXPECT_FALSE(svc->endpoints[1].address.is_v4());
  // HTTPS is not routable per request: L4 even though nothing else applies.
  EXPECT_EQ(svc->routes_for(443)->plane, Plane::L4);
}

TEST(Endpoints, WorkloadSelectorPicksEntriesOfTheSameNamespaceOnly) {
  auto r = compile_yaml({{"se.yaml", kProductpageService}, {"other.yaml", R"(apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: stray, namespace: elsewhere}
spec: {address: 10.200.99.2, labels: {app: productpage, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: extra, namespace: default}
spec:
  address: 10.200.17.2
  labels: {app: productpage, version: v1, zone: b}
  ports: {http: 8080}
  weight: 5
  locality: us/east/b
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("productpage");
  ASSERT_EQ(svc->endpoints.size(), 5u);
  for (const auto& e : svc->endpoints) EXPECT_NE(e.name, "stray");
  const auto& extra = svc->endpoints.back();
  EXPECT_EQ(extra.name, "extra");
  EXPECT_EQ(extra.weight, 5u);
  EXPECT_EQ(extra.locality, "us/east/b");
  EXPECT_EQ(extra.port_for(*svc->port(9080)), 8080u) << "named port mapping";
  EXPECT_EQ(extra.port_for(*svc->port(9081)), 9081u);
}

TEST(Subsets, SelectEndpointsThatCarryEveryLabelOfTheSubset) {
  auto r = compile_yaml({{"se.yaml", R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s}
spec:
  hosts: [s]
  addresses: [10.96.0.40]
  ports: [{number: 80, name: tcp, protocol: TCP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1, zone: a}}
  - {address: 10.0.0.2, labels: {version: v1, zone: b}}
  - {address: 10.0.0.3, labels: {version: v2, zone: a}}
  - {address: 10.0.0.4, labels: {zone: a}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: s}
spec:
  host: s
  subsets:
  - {name: v1-a, labels: {version: v1, zone: a}}
  - {name: zone-a, labels: {zone: a}}
  - {name: everything, labels: {}}
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* svc = r.snapshot->find_service("s");
  EXPECT_EQ(svc->subsets[*svc->subset_index("v1-a")].endpoints, (std::vector<uint32_t>{0}));
  EXPECT_EQ(svc->subsets[*svc->subset_index("zone-a")].endpoints, (std::vector<uint32_t>{0, 2, 3}));
  EXPECT_EQ(svc->subsets[*svc->subset_index("everything")].endpoints, (std::vector<uint32_t>{0, 1, 2, 3}));
}

TEST(Diagnostics, WarningsStillProduceASnapshotThatCarriesThem) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage, subset: v1}}]
    corsPolicy: {allowOrigins: [{exact: "*"}]}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  ASSERT_EQ(r.error_count(), 0u);
  const auto* d = find_diagnostic(r, "corsPolicy");
  ASSERT_NE(d, nullptr);
  bool carried = false;
  for (const auto& w : r.snapshot->warnings) carried = carried || w.message == d->message;
  EXPECT_TRUE(carried);
}

TEST(Examples, EveryExampleDirectoryValidatesWithoutWarnings) {
  for (const char* dir : {"productpage", "round-robin", "least-request", "random", "passthrough",
                          "consistent-hash", "ring-hash", "header-routing"}) {
    auto r = compile_paths({source_root() + "/docs/examples/" + dir}, 1);
    ASSERT_TRUE(r.ok()) << dir << "\n" << diagnostics_text(r);
    for (const auto& d : r.diagnostics) {
      EXPECT_NE(d.severity, model::Severity::Warning) << dir << ": " << model::format_diagnostic(d);
    }
    const auto* svc = r.snapshot->find_service("productpage");
    ASSERT_NE(svc, nullptr) << dir;
    EXPECT_EQ(svc->endpoints.size(), 4u) << dir;
  }
}

}  // namespace
}  // namespace sluice::config
