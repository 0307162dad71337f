// Every validation the config compiler makes, each asserting the file, line,
// column and message a user sees.
#include <gtest/gtest.h>

#include <algorithm>

#include "config_test_support.h"

namespace sluice::config {
namespace {

using namespace testing;
using model::Severity;

// Asserts a diagnostic at exactly file:line:col with this severity whose
// message contains `text`.
void expect_diagnostic(const CompileResult& r, const std::string& file, int line, int column,
                       Severity severity, const std::string& text) {
  for (const auto& d : r.diagnostics) {
    if (d.message.find(text) == std::string::npos) continue;
    EXPECT_EQ(d.where.file, file) << model::format_diagnostic(d);
    EXPECT_EQ(d.where.line, line) << model::format_diagnostic(d);
    EXPECT_EQ(d.where.column, column) << model::format_diagnostic(d);
    EXPECT_EQ(d.severity, severity) << model::format_diagnostic(d);
    return;
  }
  ADD_FAILURE() << "no diagnostic containing \"" << text << "\"; got:\n" << diagnostics_text(r);
}

long count_errors(const CompileResult& r) {
  return std::count_if(r.diagnostics.begin(), r.diagnostics.end(),
                       [](const model::Diagnostic& d) { return d.severity == Severity::Error; });
}

const std::string kVsHeader = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
)";   // 6 lines; routes start on line 7

TEST(Validation, UnknownSubsetNamesTheSubsetAndTheDefinedOnes) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route:
    - destination: {host: productpage, subset: v3}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 8, 48, Severity::Error,
                    "unknown subset 'v3' for host 'productpage' (DestinationRule 'productpage' defines v1, v2)");
}

TEST(Validation, SubsetThatSelectsNoEndpointIsAWarning) {
  auto r = compile_with_productpage("", kProductpageSubsets + "  - {name: v3, labels: {version: v3}}\n");
  EXPECT_TRUE(r.ok()) << diagnostics_text(r);
  expect_diagnostic(r, "dr.yaml", 9, 5, Severity::Warning,
                    "subset 'v3' of DestinationRule 'productpage' (labels version=v3) selects no endpoint of 'productpage'");
}

TEST(Validation, ConnectionLimitsAndOutlierDetectionOnAnL4PortAreAWarningNamingTheSubsets) {
  const std::string rule = R"(apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 10}}
    outlierDetection: {consecutive5xxErrors: 3}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: RANDOM}}
)";
  // An HTTP route makes port 9080 an L7 port; 9081 (TCP) stays L4.
  const std::string routes = kVsHeader + "  - route: [{destination: {host: productpage, subset: v1}}]\n";
  auto r = compile_with_productpage(routes, rule);
  EXPECT_TRUE(r.ok()) << diagnostics_text(r);
  // v2's own trafficPolicy replaces the rule's components it sets only.
  expect_diagnostic(r, "dr.yaml", 10, 5, Severity::Warning,
                    "port 9081 (TCP) of 'productpage' is steered per connection on the L4 plane, which does not "
                    "apply connectionPool.tcp.maxConnections (subsets (all), v1, v2) and outlierDetection (subsets "
                    "(all), v1, v2)");
  EXPECT_EQ(find_diagnostic(r, "port 9080"), nullptr) << "the HTTP port's proxy applies them";

  // Scoped to the HTTP port with portLevelSettings: nothing to warn about.
  auto scoped = compile_with_productpage(routes, R"(apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy:
    portLevelSettings:
    - port: {number: 9080}
      connectionPool: {tcp: {maxConnections: 10}}
      outlierDetection: {consecutive5xxErrors: 3}
  subsets:
  - {name: v1, labels: {version: v1}}
)");
  EXPECT_TRUE(scoped.ok()) << diagnostics_text(scoped);
  EXPECT_EQ(find_diagnostic(scoped, "which does not apply"), nullptr) << diagnostics_text(scoped);
}

TEST(Validation, WeightsThatSumToZeroAreAnError) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route:
    - {destination: {host: productpage, subset: v1}, weight: 0}
    - {destination: {host: productpage, subset: v2}, weight: 0}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 7, 5, Severity::Error, "http[0]: route weights sum to 0");
}

TEST(Validation, SeveralDestinationsWithoutWeightsSumToZero) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route:
    - destination: {host: productpage, subset: v1}
    - destination: {host: productpage, subset: v2}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 7, 5, Severity::Error, "route weights sum to 0");
}

TEST(Validation, NegativeWeightIsAnError) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route:
    - destination: {host: productpage, subset: v1}
      weight: -10
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 9, 15, Severity::Error,
                    "VirtualService field 'http[0].route[0].weight' is -10: weights must not be negative");
}

TEST(Validation, DuplicateSubsetNameIsAnError) {
  auto r = compile_with_productpage("", kProductpageSubsets + "  - {name: v1, labels: {version: v2}}\n");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "dr.yaml", 9, 12, Severity::Error,
                    "duplicate subset name 'v1' in DestinationRule 'productpage' (first defined at line 7)");
}

TEST(Validation, BadDurationNamesFieldAndValue) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}}]
    timeout: 7 seconds
    retries: {attempts: 2, perTryTimeout: -1s}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 8, 14, Severity::Error,
                    "VirtualService field 'http[0].timeout': bad duration '7 seconds'");
  expect_diagnostic(r, "vs.yaml", 9, 43, Severity::Error,
                    "VirtualService field 'http[0].retries.perTryTimeout': bad duration '-1s'");
}

TEST(Validation, ADurationOverAHundredYearsIsTakenAsAHundredYears) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}}]
    timeout: 2562047h
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  expect_diagnostic(r, "vs.yaml", 8, 14, Severity::Warning,
                    "VirtualService field 'http[0].timeout' is 2562047h: longer than 876000h (100 years), taken as 876000h");
  EXPECT_EQ(r.snapshot->find_service("productpage")->routes.at(0).http.at(0).timeout, std::chrono::hours(876000));
}

TEST(Validation, BadRegexCarriesRe2sReason) {
  auto r = compile_with_productpage(kVsHeader + R"(  - match:
    - uri: {regex: "/items/(+"}
    route: [{destination: {host: productpage}}]
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 8, 20, Severity::Error,
                    "VirtualService field 'http[0].match[0].uri.regex': bad regex '/items/(+': no argument for repetition operator: + (RE2 syntax)");
}

TEST(Validation, UnknownLoadBalancerPolicyListsTheValidOnes) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy:
    loadBalancer:
      simple: FASTEST
)"));
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "dr.yaml", 8, 15, Severity::Error,
                    "DestinationRule field 'trafficPolicy.loadBalancer.simple': unknown load balancer policy 'FASTEST' (expected ROUND_ROBIN");
}

TEST(Validation, HostsWithNoServiceAreErrorsWherever) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ghost}
spec:
  hosts: [ghost]
  http:
  - route: [{destination: {host: phantom}}]
)",
                                    R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ghost}
spec:
  host: spectre
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 5, 11, Severity::Error,
                    "VirtualService 'ghost' host 'ghost' matches no ServiceEntry host (known: productpage)");
  expect_diagnostic(r, "vs.yaml", 7, 34, Severity::Error, "destination host 'phantom' matches no ServiceEntry host");
  expect_diagnostic(r, "dr.yaml", 5, 9, Severity::Error,
                    "DestinationRule 'ghost' host 'spectre' matches no ServiceEntry host");
}

TEST(Validation, DestinationPortMustBeAServicePort) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route:
    - destination: {host: productpage, port: {number: 8080}}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 8, 55, Severity::Error,
                    "destination port 8080 is not a port of 'productpage' (ports: 9080, 9081)");
}

TEST(Validation, MatchPortMustBeAServicePort) {
  auto r = compile_with_productpage(kVsHeader + R"(  - match: [{port: 80}]
    route: [{destination: {host: productpage}}]
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 7, 20, Severity::Error,
                    "VirtualService 'pp' match port 80 is not a port of its hosts (productpage: 9080, 9081)");
}

TEST(Validation, YamlSyntaxErrorHasItsLocationAndOtherFilesAreStillChecked) {
  auto r = compile_yaml({{"se.yaml", kProductpageService},
                         {"broken.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: {hosts: [a\n"},
                         {"vs.yaml", kVsHeader + "  - route: [{destination: {host: productpage, subset: nope}}]\n"}});
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "broken.yaml", 4, 1, Severity::Error, "YAML syntax error: ");
  expect_diagnostic(r, "vs.yaml", 7, 55, Severity::Error, "unknown subset 'nope'");
}

TEST(Validation, StrayCommaBetweenDocumentsIsASyntaxErrorNotAnEndlessLoop) {
  // Found by the fuzzer: yaml-cpp 0.7's LoadAll never returns on this.
  auto r = compile_with_productpage(kVsHeader + "  - route: [{destination: {host: productpage}}]\n---\n,--\nb: 2\n");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 9, 1, Severity::Error, "YAML syntax error: unexpected content after the document");
  EXPECT_EQ(r.error_count(), 1u) << diagnostics_text(r);
}

TEST(Validation, SyntaxErrorInOneDocumentDoesNotHideTheOthers) {
  auto r = compile_with_productpage("apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: {hosts: [a\n---\n" +
                                    kVsHeader + "  - route: [{destination: {host: productpage, subset: v7}}]\n");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 4, 1, Severity::Error, "YAML syntax error: ");
  expect_diagnostic(r, "vs.yaml", 11, 55, Severity::Error, "unknown subset 'v7'");
}

TEST(Validation, UnimplementedFieldIsAWarningThatNamesIt) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: pp
spec:
  hosts:
  - productpage
  http:
      - name: main
        route:
        - destination:
            host: productpage
        timeout: 2s
        corsPolicy:
          allowOrigins: [{exact: "*"}]
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* d = find_diagnostic(r, "corsPolicy");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(model::format_diagnostic(*d),
            "vs.yaml:14:9: warning: VirtualService field 'http[0].corsPolicy' is not implemented by sluice and is ignored");
}

TEST(Validation, FaultAbortGrpcStatusIsReadByItsName) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}}]
    fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 50}}}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(find_diagnostic(r, "grpcStatus"), nullptr) << diagnostics_text(r);
  const auto& route = r.snapshot->find_service("productpage")->routes_for(9080)->http.at(0);
  ASSERT_TRUE(route.fault && route.fault->abort);
  EXPECT_EQ(route.fault->abort->grpc_status, 8u);
  EXPECT_EQ(route.fault->abort->status, 0u);
  EXPECT_EQ(route.fault->abort->percent, 50);
}

TEST(Validation, FaultAbortGrpcStatusMustBeAStatusNameAndNotBesideHttpStatus) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}}]
    fault: {abort: {grpcStatus: unavailable}}
  - route: [{destination: {host: productpage}}]
    fault: {abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 8, 33, Severity::Error,
                    "field 'http[0].fault.abort.grpcStatus': 'unavailable' is not a gRPC status name (expected one of "
                    "OK, CANCELLED,");
  expect_diagnostic(r, "vs.yaml", 10, 50, Severity::Error,
                    "field 'http[1].fault.abort.grpcStatus' and httpStatus are exclusive");
}

TEST(Validation, HeaderOperationsThatWouldBreakOutOfTheirFieldAreErrors) {
  // Each would put a second field, a second request or a second framing
  // field into the head sent upstream (or to the client): smuggling.
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}}]
    headers:
      request:
        set: {x-a: "a\r\nx-smuggled: 1", "x b": v, content-length: "0", host: other}
        add: {":authority": other, x-nul: "a\u0000b", x-ok: "fine value, with: colons"}
        remove: ["x y", x-gone]
      response:
        add: {x-c: "c\nd", transfer-encoding: chunked}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 10, 20, Severity::Error,
                    "field 'http[0].headers.request.set.x-a' value 'a\\r\\nx-smuggled: 1' is not a header value");
  expect_diagnostic(r, "vs.yaml", 10, 42, Severity::Error,
                    "field 'http[0].headers.request.set.x b': 'x b' is not a header name");
  expect_diagnostic(r, "vs.yaml", 10, 52, Severity::Error,
                    "field 'http[0].headers.request.set.content-length': the proxy writes 'content-length' itself");
  expect_diagnostic(r, "vs.yaml", 10, 73, Severity::Error,
                    "the proxy writes 'host' itself from the message it forwards; set rewrite.authority");
  expect_diagnostic(r, "vs.yaml", 11, 15, Severity::Error,
                    "field 'http[0].headers.request.add.:authority': ':authority' is not a header name");
  expect_diagnostic(r, "vs.yaml", 11, 43, Severity::Error,
                    "field 'http[0].headers.request.add.x-nul' value 'a\\x00b' is not a header value");
  expect_diagnostic(r, "vs.yaml", 12, 18, Severity::Error,
                    "field 'http[0].headers.request.remove': 'x y' is not a header name");
  expect_diagnostic(r, "vs.yaml", 14, 20, Severity::Error,
                    "field 'http[0].headers.response.add.x-c' value 'c\\nd' is not a header value");
  expect_diagnostic(r, "vs.yaml", 14, 28, Severity::Error,
                    "field 'http[0].headers.response.add.transfer-encoding': the proxy writes 'transfer-encoding'");
  // The good ones are not reported.
  EXPECT_EQ(find_diagnostic(r, "x-ok"), nullptr) << diagnostics_text(r);
  EXPECT_EQ(find_diagnostic(r, "x-gone"), nullptr) << diagnostics_text(r);
  EXPECT_EQ(count_errors(r), 9) << diagnostics_text(r);
}

TEST(Validation, RewriteAndRedirectTextMustStayInTheRequestLineOrLocation) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}}]
    rewrite: {uri: "/x HTTP/1.1\r\nhost: evil\r\n\r\nGET /admin", authority: "a b"}
  - route: [{destination: {host: productpage}}]
    rewrite: {uriRegexRewrite: {match: "^/old(.*)$", rewrite: "/new\\1 x"}}
  - redirect: {uri: "/moved\n", authority: "evil.example/path", scheme: "ht tp"}
  - route: [{destination: {host: productpage}}]
    rewrite: {uri: "/v2/?a=1&b=%20", authority: "reviews.default.svc:9080"}
  - redirect: {uri: /elsewhere, authority: "[fd00::1]:8443", scheme: https}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 8, 20, Severity::Error,
                    "field 'http[0].rewrite.uri' '/x HTTP/1.1\\r\\nhost: evil\\r\\n\\r\\nGET /admin' is not a path");
  expect_diagnostic(r, "vs.yaml", 8, 78, Severity::Error, "field 'http[0].rewrite.authority' 'a b' is not an authority");
  expect_diagnostic(r, "vs.yaml", 10, 63, Severity::Error,
                    "field 'http[1].rewrite.uriRegexRewrite.rewrite' '/new\\1 x' is not a path replacement");
  expect_diagnostic(r, "vs.yaml", 11, 21, Severity::Error, "field 'http[2].redirect.uri' '/moved\\n' is not a path");
  expect_diagnostic(r, "vs.yaml", 11, 44, Severity::Error,
                    "field 'http[2].redirect.authority' 'evil.example/path' is not an authority");
  expect_diagnostic(r, "vs.yaml", 11, 73, Severity::Error, "field 'http[2].redirect.scheme' 'ht tp' is not a URI scheme");
  EXPECT_EQ(count_errors(r), 6) << diagnostics_text(r);
}

TEST(Validation, RetryOnTakesIstiosPoliciesAndRefusesOtherWords) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}}]
    retries: {attempts: 2, retryOn: "unavailable,cancelled,deadline-exceeded,internal,resource-exhausted,503"}
  - route: [{destination: {host: productpage}}]
    retries: {attempts: 2, retryOn: "5xx,envoy-ratelimited"}
  - route: [{destination: {host: productpage}}]
    retries: {attempts: 2, retryOn: "5xx,unavaliable"}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 12, 37, Severity::Error,
                    "field 'http[2].retries.retryOn': 'unavaliable' is not a valid retryOn policy");
  expect_diagnostic(r, "vs.yaml", 10, 37, Severity::Warning,
                    "field 'http[1].retries.retryOn' policy 'envoy-ratelimited' is not implemented");
  EXPECT_EQ(find_diagnostic(r, "http[0].retries"), nullptr) << diagnostics_text(r);
}

TEST(Validation, GrpcRetryOnTokensReachTheRoute) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}}]
    retries: {attempts: 2, retryOn: "unavailable, cancelled,503"}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& route = r.snapshot->find_service("productpage")->routes_for(9080)->http.at(0);
  ASSERT_TRUE(route.retries);
  EXPECT_EQ(route.retries->retry_on, (std::vector<std::string>{"unavailable", "cancelled", "retriable-status-codes"}));
  EXPECT_EQ(route.retries->retriable_status_codes, std::vector<uint32_t>{503});
}

TEST(Validation, UnknownFieldIsAnErrorThatNamesItAndSuggestsTheKnownOne) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage, subst: v1}}]
    timout: 2s
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 7, 47, Severity::Error,
                    "unknown VirtualService field 'http[0].route[0].destination.subst' (did you mean 'subset'?)");
  expect_diagnostic(r, "vs.yaml", 8, 5, Severity::Error,
                    "unknown VirtualService field 'http[0].timout' (did you mean 'timeout'?)");
}

TEST(Validation, DocumentWithoutApiVersionOrKindIsAnError) {
  auto r = compile_yaml({{"a.yaml", "kind: VirtualService\nmetadata: {name: x}\n---\napiVersion: networking.istio.io/v1\nspec: {}\n"}});
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "a.yaml", 1, 1, Severity::Error, "document has no apiVersion");
  expect_diagnostic(r, "a.yaml", 4, 1, Severity::Error, "document has no kind");
}

TEST(Validation, WrongValueTypesNameTheFieldAndTheValue) {
  auto r = compile_with_productpage(kVsHeader + R"(  - route: [{destination: {host: productpage}, weight: lots}]
    retries: {attempts: [1]}
    fault: {abort: {httpStatus: 503, percentage: {value: 150}}}
)");
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 7, 56, Severity::Error,
                    "VirtualService field 'http[0].route[0].weight' must be an integer, got 'lots'");
  expect_diagnostic(r, "vs.yaml", 8, 25, Severity::Error,
                    "VirtualService field 'http[0].retries.attempts' must be an integer, got a list");
  expect_diagnostic(r, "vs.yaml", 9, 58, Severity::Error,
                    "'http[0].fault.abort.percentage.value' is 150, expected a percentage 0..100");
}

TEST(Validation, EndpointAddressMustBeAnIp) {
  auto r = compile_yaml({{"we.yaml", R"(apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: w}
spec:
  address: backend.example.com
)"}});
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "we.yaml", 5, 12, Severity::Error,
                    "WorkloadEntry field 'address': 'backend.example.com' is not an IPv4 or IPv6 address");
}

TEST(Validation, MaglevTableSizeMustBePrime) {
  auto r = compile_with_productpage("", productpage_rule(R"(  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65536}}}}
)"));
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "dr.yaml", 6, 90, Severity::Error, "is 65536, which is not prime");
}

// Two ServiceEntries of one namespace for one host are merged, as Istio
// merges them: the second's new port, address, static endpoints and the
// WorkloadEntries its selector picks join the first's service; a port the
// first has keeps the first's protocol (warning at the second's).
TEST(Validation, HostDefinedByTwoServiceEntriesOfOneNamespaceIsMerged) {
  auto r = compile_yaml({{"se.yaml", kProductpageService},
                         {"more.yaml", R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: more, namespace: default}
spec:
  hosts: [productpage]
  addresses: [10.96.0.11]
  ports:
  - {number: 9081, name: http-alt, protocol: HTTP}
  - {number: 9443, name: tcp-tls, protocol: TCP}
  resolution: STATIC
  workloadSelector: {labels: {version: canary}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static-extra, namespace: default}
spec:
  hosts: [productpage]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.200.19.2, labels: {app: productpage, version: v3}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: canary, namespace: default}
spec: {address: 10.200.18.2, labels: {version: canary}}
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  ASSERT_EQ(r.snapshot->services.size(), 1u);
  const model::Service& s = r.snapshot->services[0];
  EXPECT_EQ(s.name, "productpage");
  std::vector<std::string> vips;
  for (const auto& v : s.vips) vips.push_back(v.to_string());
  EXPECT_EQ(vips, (std::vector<std::string>{"10.96.0.10", "10.96.0.11"}));
  ASSERT_EQ(s.ports.size(), 3u);
  EXPECT_EQ(s.port(9081)->protocol, model::Protocol::TCP);   // the first's
  EXPECT_EQ(s.port(9443)->protocol, model::Protocol::TCP);
  std::set<std::string> addresses;
  for (const auto& e : s.endpoints) addresses.insert(e.address.to_string());
  EXPECT_EQ(addresses, (std::set<std::string>{"10.200.11.2", "10.200.12.2", "10.200.13.2", "10.200.14.2",
                                              "10.200.19.2", "10.200.18.2"}));
  expect_diagnostic(r, "more.yaml", 8, 5, Severity::Warning,
                    "port 9081 of ServiceEntry 'default/more' is HTTP, but ServiceEntry 'default/productpage' "
                    "defines host 'productpage' port 9081 as TCP: the first definition is used");
  const auto* note = find_diagnostic(r, "merged into it, as Istio does (adds port 9443, address 10.96.0.11, "
                                        "the WorkloadEntries its workloadSelector selects;");
  ASSERT_NE(note, nullptr) << diagnostics_text(r);
  EXPECT_EQ(note->where.file, "more.yaml");
  EXPECT_EQ(note->where.line, 5);
  EXPECT_NE(find_diagnostic(r, "ServiceEntry 'default/static-extra' is also defined by ServiceEntry "
                               "'default/productpage' (se.yaml:2:7) in the same namespace: merged into it, as Istio "
                               "does (adds 1 endpoint(s);"),
            nullptr)
      << diagnostics_text(r);
}

// One host from ServiceEntries in two namespaces: the first in Istio's order
// (oldest creationTimestamp, then name, then namespace) is kept, wherever it
// is in the files, and the other gets a warning; the config is valid.
TEST(Validation, HostDefinedInTwoNamespacesKeepsIstiosFirst) {
  auto se = [](const std::string& ns, const std::string& created, const std::string& vip) {
    return "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: api\n  namespace: " + ns +
           (created.empty() ? std::string() : "\n  creationTimestamp: \"" + created + "\"") +
           "\nspec:\n  hosts: [api.example.com]\n  addresses: [" + vip +
           "]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n"
           "  endpoints: [{address: 10.1.0.1}]\n";
  };
  {
    auto r = compile_yaml({{"team-a.yaml", se("team-a", "2024-03-01T10:00:00Z", "10.96.5.1")},
                           {"team-b.yaml", se("team-b", "2023-11-20T08:00:00Z", "10.96.5.2")}});
    ASSERT_TRUE(r.ok()) << diagnostics_text(r);
    const auto* s = r.snapshot->find_service("api.example.com");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->namespace_, "team-b");   // the older one, though later in the files
    EXPECT_EQ(r.snapshot->services.size(), 1u);
    expect_diagnostic(r, "team-a.yaml", 8, 11, Severity::Warning,
                      "host 'api.example.com' of ServiceEntry 'team-a/api' is also defined by ServiceEntry "
                      "'team-b/api' (team-b.yaml:2), which comes first in Istio's order");
  }
  {   // no timestamps (plain files): name, then namespace
    auto r = compile_yaml({{"z.yaml", se("zeta", "", "10.96.5.1")}, {"a.yaml", se("alpha", "", "10.96.5.2")}});
    ASSERT_TRUE(r.ok()) << diagnostics_text(r);
    EXPECT_EQ(r.snapshot->find_service("api.example.com")->namespace_, "alpha");
  }
}

TEST(Validation, TwoRulesOrTwoVirtualServicesForOneHostAreErrors) {
  auto r = compile_with_productpage(kVsHeader + "  - route: [{destination: {host: productpage}}]\n---\n" + kVsHeader +
                                        "  - route: [{destination: {host: productpage}}]\n",
                                    kProductpageSubsets + "---\n" + kProductpageSubsets);
  EXPECT_FALSE(r.ok());
  expect_diagnostic(r, "vs.yaml", 13, 11, Severity::Error,
                    "host 'productpage' is already routed by VirtualService 'pp' (vs.yaml:2)");
  expect_diagnostic(r, "dr.yaml", 14, 9, Severity::Error,
                    "host 'productpage' already has DestinationRule 'productpage' (dr.yaml:2)");
}

TEST(Validation, AllDiagnosticsOfAllFilesComeFromOnePass) {
  auto r = compile_yaml({{"se.yaml", kProductpageService},
                         {"a.yaml", kVsHeader + "  - route: [{destination: {host: productpage}}]\n    timeout: soon\n"},
                         {"b.yaml", R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec:
  host: productpage
  trafficPolicy: {loadBalancer: {simple: NOPE}}
  subsets: [{name: x, labels: {version: v1}, trafficPolicy: {connectionPool: {tcp: {connectTimeout: 5 minutes}}}}]
)"}});
  EXPECT_FALSE(r.ok());
  std::vector<std::string> errors;
  for (const auto& d : r.diagnostics) {
    if (d.severity == Severity::Error) errors.push_back(d.where.file + ":" + std::to_string(d.where.line));
  }
  // Sorted by file (in load order), then line.
  EXPECT_EQ(errors, (std::vector<std::string>{"a.yaml:8", "b.yaml:6", "b.yaml:7"})) << diagnostics_text(r);
}

TEST(Validation, ErrorsMeanNoSnapshot) {
  auto r = compile_with_productpage(kVsHeader + "  - route: [{destination: {host: productpage, subset: v9}}]\n");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.snapshot, nullptr);
  EXPECT_GE(r.error_count(), 1u);
}

TEST(Validation, MissingPathIsReported) {
  auto r = compile_paths({"/nonexistent/sluice-config"}, 1);
  EXPECT_FALSE(r.ok());
  ASSERT_FALSE(r.diagnostics.empty());
  EXPECT_EQ(model::format_diagnostic(r.diagnostics[0]), "/nonexistent/sluice-config: error: no such file or directory");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

// Mirrors go out over HTTP/1.1: one to a port the proxy speaks HTTP/2 to
// is a warning at the mirror's destination (once, whatever the views).
// The proxy mirrors to an HTTP/2 cluster over HTTP/2 (l7_mirror checks it
// live): each mirror reaches the route with its port, and nothing warns.
TEST(Validation, AMirrorToAnHttp2PortIsPlacedWithItsPort) {
  auto r = compile_yaml({{"se.yaml", kProductpageService},
                         {"grpc.yaml", R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  addresses: [10.96.0.20]
  ports: [{number: 9090, name: grpc, protocol: GRPC}, {number: 9091, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.200.21.2}]
)"},
                         {"vs.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage}}]
    mirrors:
    - destination: {host: ratings, port: {number: 9090}}
    - destination: {host: ratings, port: {number: 9091}}
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(find_diagnostic(r, "HTTP/1.1"), nullptr) << diagnostics_text(r);
  const auto& route = r.snapshot->find_service("productpage")->routes_for(9080)->http.at(0);
  ASSERT_EQ(route.mirrors.size(), 2u);
  EXPECT_EQ(route.mirrors[0].destination.port, 9090u);
  EXPECT_EQ(route.mirrors[1].destination.port, 9091u);
  EXPECT_EQ(r.snapshot->services[route.mirrors[0].destination.service].host, "ratings");
}

}  // namespace
}  // namespace sluice::config
