// Every field of the current istio/api networking v1 VirtualService,
// DestinationRule, ServiceEntry and WorkloadEntry is either read or a
// "not implemented" warning at its file:line:col, never refused as a typo
// (docs/config-reference.md lists each field's status).
#include <gtest/gtest.h>

#include "config_test_support.h"

namespace sluice::config {
namespace {

using namespace testing;
using model::Severity;

const std::string kServiceEntry = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pp, namespace: default}
spec:
  hosts: [productpage]
  addresses: [10.96.0.10]
  ports:
  - {number: 9080, name: http, protocol: HTTP, targetPort: 9080}
  location: MESH_INTERNAL
  resolution: STATIC
  exportTo: ['*']
  subjectAltNames: [spiffe://cluster.local/ns/default/sa/pp]
  endpoints:
  - address: 10.200.11.2
    ports: {http: 9080}
    labels: {app: productpage, version: v1}
    network: net1
    locality: us-east/zone1
    weight: 2
    serviceAccount: pp
)";

const std::string kWorkloadEntry = R"(apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm1, namespace: default}
spec:
  address: 10.200.11.9
  ports: {http: 9080}
  labels: {app: vm}
  network: net1
  locality: us-east/zone1
  weight: 1
  serviceAccount: vm
)";

const std::string kDestinationRule = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pp, namespace: default}
spec:
  host: productpage
  exportTo: ['*']
  workloadSelector: {matchLabels: {app: client}}
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: {name: user, path: /, ttl: 0s, attributes: [{name: SameSite, value: Strict}]}
        maglev: {tableSize: 65537}
      localityLbSetting: {enabled: true, distribute: [], failover: [], failoverPriority: []}
      warmupDurationSecs: 10s
      warmup: {duration: 10s, minimumPercent: 10, aggression: 1}
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 1s
        tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}
        maxConnectionDuration: 1h
        idleTimeout: 1h
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 100
        maxRequestsPerConnection: 10
        maxRetries: 3
        idleTimeout: 1h
        h2UpgradePolicy: DEFAULT
        useClientProtocol: false
        maxConcurrentStreams: 100
    outlierDetection:
      splitExternalLocalOriginErrors: false
      consecutiveLocalOriginFailures: 5
      consecutiveGatewayErrors: 5
      consecutive5xxErrors: 5
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 10
      minHealthPercent: 0
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: LEAST_REQUEST}
      connectionPool: {tcp: {maxConnections: 10}}
      outlierDetection: {consecutive5xxErrors: 3}
      tls: {mode: DISABLE}
    tunnel: {protocol: CONNECT, targetHost: example.com, targetPort: 443}
    proxyProtocol: {version: V1}
    retryBudget: {percent: 20, minRetryConcurrency: 3}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash: {ringHash: {minimumRingSize: 1024}, useSourceIp: true}
)";

const std::string kVirtualService = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp, namespace: default}
spec:
  hosts: [productpage]
  gateways: [mesh]
  exportTo: ['*']
  tls:
  - match: [{sniHosts: [productpage], port: 9443}]
    route: [{destination: {host: productpage}}]
  http:
  - name: all
    match:
    - name: m
      uri: {prefix: /}
      scheme: {exact: http}
      method: {exact: GET}
      authority: {exact: productpage}
      headers: {x-a: {exact: b}}
      port: 9080
      sourceLabels: {app: client}
      gateways: [mesh]
      queryParams: {q: {exact: v}}
      ignoreUriCase: true
      withoutHeaders: {x-b: {}}
      sourceNamespace: default
      statPrefix: all
    route:
    - destination: {host: productpage, subset: v1, port: {number: 9080}}
      weight: 100
      headers: {request: {set: {x-c: d}, add: {x-e: f}, remove: [x-g]}, response: {set: {x-h: i}}}
    rewrite: {uri: /v1, authority: pp}
    timeout: 5s
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: 5xx,connect-failure
      retryRemoteLocalities: true
      retryIgnorePreviousHosts: true
      backoff: 25ms
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 1}}
      abort: {httpStatus: 503, percentage: {value: 1}}
    mirrors:
    - destination: {host: productpage, subset: v1}
      percentage: {value: 5}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}]
      allowMethods: [GET]
      allowHeaders: [x-a]
      exposeHeaders: [x-b]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: FORWARD
    headers: {request: {set: {x-j: k}}}
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: pp, port: 9080, scheme: https, redirectCode: 301}
  - match: [{uri: {exact: /derived}}]
    redirect: {uri: /new, derivePort: FROM_PROTOCOL_DEFAULT}
  - match: [{uri: {exact: /gone}}]
    directResponse: {status: 410, body: {string: gone}}
  - match: [{uri: {exact: /bytes}}]
    directResponse: {status: 200, body: {bytes: Z29uZQ==}}
  - match: [{uri: {exact: /delegated}}]
    delegate: {name: other, namespace: default}
  - match: [{uri: {exact: /slow}}]
    route: [{destination: {host: productpage}}]
    mirror: {host: productpage}
    mirrorPercentage: {value: 50}
    fault:
      delay: {exponentialDelay: 1s, percent: 10}
      abort: {grpcStatus: UNAVAILABLE, http2Error: REFUSED_STREAM, percentage: {value: 1}}
  tcp:
  - match:
    - {port: 9080, destinationSubnets: [10.0.0.0/8], sourceLabels: {app: c}, gateways: [mesh], sourceNamespace: default,
       sourceSubnet: 10.0.0.0/8}
    route: [{destination: {host: productpage}, weight: 100}]
)";

TEST(IstioFields, EveryFieldOfTheCurrentApiIsReadOrANotImplementedWarning) {
  auto r = compile_yaml({{"se.yaml", kServiceEntry},
                         {"we.yaml", kWorkloadEntry},
                         {"dr.yaml", kDestinationRule},
                         {"vs.yaml", kVirtualService}});
  for (const auto& d : r.diagnostics) {
    EXPECT_NE(d.severity, Severity::Error) << model::format_diagnostic(d);
    EXPECT_EQ(d.message.find("unknown"), std::string::npos) << model::format_diagnostic(d);
  }
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);

  struct Expected {
    const char* file;
    const char* field;
    int line;
  };
  for (const auto& e : {
           Expected{"se.yaml", "ServiceEntry field 'location'", 9},
           Expected{"se.yaml", "ServiceEntry field 'subjectAltNames'", 12},
           Expected{"se.yaml", "ServiceEntry field 'endpoints[0].network'", 17},
           Expected{"se.yaml", "ServiceEntry field 'endpoints[0].serviceAccount'", 20},
           Expected{"we.yaml", "WorkloadEntry field 'network'", 8},
           Expected{"we.yaml", "WorkloadEntry field 'serviceAccount'", 11},
           Expected{"dr.yaml", "DestinationRule field 'workloadSelector'", 7},
           Expected{"dr.yaml", "field 'trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes'", 11},
           Expected{"dr.yaml", "field 'trafficPolicy.loadBalancer.localityLbSetting'", 13},
           Expected{"dr.yaml", "field 'trafficPolicy.loadBalancer.warmupDurationSecs'", 14},
           Expected{"dr.yaml", "field 'trafficPolicy.loadBalancer.warmup'", 15},
           Expected{"dr.yaml", "field 'trafficPolicy.connectionPool.tcp.idleTimeout'", 22},
           Expected{"dr.yaml", "field 'trafficPolicy.tls'", 41},
           Expected{"dr.yaml", "field 'trafficPolicy.portLevelSettings[0].tls'", 47},
           Expected{"dr.yaml", "field 'trafficPolicy.tunnel'", 48},
           Expected{"dr.yaml", "field 'trafficPolicy.proxyProtocol'", 49},
           Expected{"dr.yaml", "field 'trafficPolicy.retryBudget'", 50},
           Expected{"vs.yaml", "VirtualService field 'tls'", 8},
           Expected{"vs.yaml", "field 'http[0].match[0].sourceLabels'", 21},
           Expected{"vs.yaml", "field 'http[0].match[0].sourceNamespace'", 26},
           Expected{"vs.yaml", "field 'http[0].match[0].statPrefix'", 27},
           Expected{"vs.yaml", "field 'http[0].retries.retryRemoteLocalities'", 38},
           Expected{"vs.yaml", "field 'http[0].corsPolicy'", 47},
           Expected{"vs.yaml", "field 'http[2].redirect.derivePort'", 59},
           Expected{"vs.yaml", "field 'http[4].directResponse.body.bytes'", 63},
           Expected{"vs.yaml", "field 'http[5].delegate'", 65},
           Expected{"vs.yaml", "field 'http[6].fault.delay.exponentialDelay'", 71},
           Expected{"vs.yaml", "field 'http[6].fault.abort.http2Error'", 72},
           Expected{"vs.yaml", "field 'tcp[0].match[0].destinationSubnets'", 75},
           Expected{"vs.yaml", "field 'tcp[0].match[0].sourceLabels'", 75},
           Expected{"vs.yaml", "field 'tcp[0].match[0].sourceNamespace'", 75},
           Expected{"vs.yaml", "field 'tcp[0].match[0].sourceSubnet'", 76},
       }) {
    const auto* d = find_diagnostic(r, std::string(e.field) + " is not implemented");
    ASSERT_NE(d, nullptr) << e.field << "\n" << diagnostics_text(r);
    EXPECT_EQ(d->severity, Severity::Warning) << model::format_diagnostic(*d);
    EXPECT_EQ(d->where.file, e.file) << model::format_diagnostic(*d);
    EXPECT_EQ(d->where.line, e.line) << model::format_diagnostic(*d);
    EXPECT_GT(d->where.column, 0) << model::format_diagnostic(*d);
  }
  // What is read is honoured.
  const auto* s = r.snapshot->find_service("productpage");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->endpoints.size(), 1u);
  EXPECT_EQ(s->endpoints[0].weight, 2u);
  EXPECT_EQ(s->destination_rule, "pp");
  EXPECT_EQ(s->virtual_services, std::vector<std::string>{"pp"});
}

}  // namespace
}  // namespace sluice::config
