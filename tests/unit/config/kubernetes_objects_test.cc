// Kubernetes objects as `kubectl get -o yaml` writes them (and as the API
// returns them in JSON): Service, EndpointSlice and Pod become services,
// endpoints and labels, so DestinationRule subsets select Pods as in Istio.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "config_test_support.h"

namespace sluice::config {
namespace {

using namespace testing;
using model::Severity;

// reviews in namespace bookinfo, as `kubectl get svc,endpointslices,pods -o
// yaml` prints it: a List with managedFields, ownerReferences and status.
const std::string kReviewsList = R"(apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: v1
  kind: Service
  metadata:
    creationTimestamp: "2026-12-01T10:00:00Z"
    labels: {app: reviews, service: reviews}
    managedFields:
    - apiVersion: v1
      fieldsType: FieldsV1
      fieldsV1:
        f:spec:
          f:ports: {}
      manager: kubectl-client-side-apply
      operation: Update
    name: reviews
    namespace: bookinfo
    resourceVersion: "1234"
    uid: 0a3c5f8e-0000-4000-8000-000000000001
  spec:
    clusterIP: 10.96.1.20
    clusterIPs: [10.96.1.20]
    internalTrafficPolicy: Cluster
    ipFamilies: [IPv4]
    ipFamilyPolicy: SingleStack
    ports:
    - name: http
      port: 9080
      protocol: TCP
      targetPort: 9080
    selector: {app: reviews}
    sessionAffinity: None
    type: ClusterIP
  status:
    loadBalancer: {}
- addressType: IPv4
  apiVersion: discovery.k8s.io/v1
  endpoints:
  - addresses: [10.200.11.2]
    conditions: {ready: true, serving: true, terminating: false}
    nodeName: node-a
    targetRef: {kind: Pod, name: reviews-v1-7d8f9c-abcde, namespace: bookinfo, uid: 1}
  - addresses: [10.200.12.2]
    conditions: {ready: true, serving: true, terminating: false}
    targetRef: {kind: Pod, name: reviews-v2-5c6d7e-fghij, namespace: bookinfo, uid: 2}
  - addresses: [10.200.13.2]
    conditions: {ready: false, serving: false, terminating: false}
    targetRef: {kind: Pod, name: reviews-v3-9a8b7c-klmno, namespace: bookinfo, uid: 3}
  kind: EndpointSlice
  metadata:
    generateName: reviews-
    labels:
      endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
      kubernetes.io/service-name: reviews
    name: reviews-x7k2p
    namespace: bookinfo
    ownerReferences:
    - {apiVersion: v1, kind: Service, name: reviews, uid: 0a3c5f8e-0000-4000-8000-000000000001}
  ports:
  - {name: http, port: 9080, protocol: TCP}
- apiVersion: v1
  kind: Pod
  metadata:
    labels: {app: reviews, version: v1, pod-template-hash: 7d8f9c}
    name: reviews-v1-7d8f9c-abcde
    namespace: bookinfo
  spec:
    containers:
    - image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.2
      name: reviews
      ports: [{containerPort: 9080, protocol: TCP}]
  status:
    phase: Running
    podIP: 10.200.11.2
    podIPs: [{ip: 10.200.11.2}]
- apiVersion: v1
  kind: Pod
  metadata:
    labels: {app: reviews, version: v2}
    name: reviews-v2-5c6d7e-fghij
    namespace: bookinfo
  spec:
    containers: [{name: reviews, ports: [{containerPort: 9080}]}]
  status: {phase: Running, podIP: 10.200.12.2}
- apiVersion: v1
  kind: Pod
  metadata:
    labels: {app: reviews, version: v3}
    name: reviews-v3-9a8b7c-klmno
    namespace: bookinfo
  spec:
    containers: [{name: reviews, ports: [{containerPort: 9080}]}]
  status: {phase: Pending, podIP: 10.200.13.2}
)";

const std::string kReviewsRules = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
)";

std::vector<std::string> endpoint_names(const model::Service& s, const model::Subset& subset) {
  std::vector<std::string> out;
  for (uint32_t e : subset.endpoints) out.push_back(s.endpoints[e].name);
  return out;
}

TEST(KubernetesObjects, ServiceEndpointSliceAndPodsInAKubectlListBecomeAServiceWithPodLabels) {
  auto r = compile_yaml({{"k8s.yaml", kReviewsList}, {"rules.yaml", kReviewsRules}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const model::Service* s = r.snapshot->find_service("reviews.bookinfo.svc.cluster.local");
  ASSERT_NE(s, nullptr) << diagnostics_text(r);
  ASSERT_EQ(s->vips.size(), 1u);
  EXPECT_EQ(s->vips[0].to_string(), "10.96.1.20");
  ASSERT_EQ(s->ports.size(), 1u);
  EXPECT_EQ(s->ports[0].number, 9080u);
  EXPECT_EQ(s->ports[0].protocol, model::Protocol::HTTP);   // name "http"
  // The not-ready v3 endpoint is left out, as kube-proxy does.
  ASSERT_EQ(s->endpoints.size(), 2u);
  ASSERT_EQ(s->subsets.size(), 3u);
  EXPECT_EQ(endpoint_names(*s, s->subsets[1]), std::vector<std::string>{"reviews-v1-7d8f9c-abcde"});
  EXPECT_EQ(endpoint_names(*s, s->subsets[2]), std::vector<std::string>{"reviews-v2-5c6d7e-fghij"});
  const auto* pr = s->routes_for(9080);
  ASSERT_EQ(pr->plane, model::Plane::L7);
  EXPECT_EQ(subset_name(*r.snapshot, pr->http.at(0).route.at(1).destination), "v2");
  EXPECT_EQ(s->endpoints[0].port_for(s->ports[0]), 9080u);
}

TEST(KubernetesObjects, TerminatingServingEndpointsAreUsedOnlyWhenNoneIsReady) {
  auto slice = [](const std::string& conditions_a, const std::string& conditions_b) {
    return R"(apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  clusterIP: 10.96.1.30
  ports: [{name: http, port: 9080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ratings-abc
  namespace: default
  labels: {kubernetes.io/service-name: ratings}
addressType: IPv4
ports: [{name: http, port: 9080}]
endpoints:
- addresses: [10.200.11.5]
  conditions: )" + conditions_a + R"(
- addresses: [10.200.12.5]
  conditions: )" + conditions_b + "\n";
  };
  auto addresses = [](const CompileResult& r) {
    std::vector<std::string> out;
    for (const auto& e : r.snapshot->find_service("ratings")->endpoints) out.push_back(e.address.to_string());
    return out;
  };
  // One ready, one terminating but serving: only the ready one.
  auto mixed = compile_yaml({{"k.yaml", slice("{ready: true}", "{ready: false, serving: true, terminating: true}")}});
  ASSERT_TRUE(mixed.ok()) << diagnostics_text(mixed);
  EXPECT_EQ(addresses(mixed), std::vector<std::string>{"10.200.11.5"});
  // None ready: the terminating ones that still serve, not the others.
  auto draining = compile_yaml({{"k.yaml", slice("{ready: false, serving: true, terminating: true}",
                                                 "{ready: false, serving: false, terminating: true}")}});
  ASSERT_TRUE(draining.ok()) << diagnostics_text(draining);
  EXPECT_EQ(addresses(draining), std::vector<std::string>{"10.200.11.5"});
  // Conditions left out mean ready.
  auto unset = compile_yaml({{"k.yaml", slice("{}", "{}")}});
  ASSERT_TRUE(unset.ok()) << diagnostics_text(unset);
  EXPECT_EQ(addresses(unset).size(), 2u);
}

TEST(KubernetesObjects, NamedTargetPortIsThePodsContainerPortWhenThereIsNoEndpointSlice) {
  auto r = compile_yaml({{"k.yaml", R"(apiVersion: v1
kind: Service
metadata: {name: details, namespace: default}
spec:
  clusterIP: 10.96.1.40
  selector: {app: details}
  ports:
  - {name: web, port: 80, targetPort: http-alt, appProtocol: http}
  - {name: grpc-api, port: 81, targetPort: 9000}
  - {name: metrics, port: 82}
---
apiVersion: v1
kind: Pod
metadata: {name: details-v1, namespace: default, labels: {app: details, version: v1}}
spec:
  containers:
  - name: details
    ports: [{name: http-alt, containerPort: 9080}]
status:
  phase: Running
  podIP: 10.200.11.7
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata: {name: details-old, namespace: default, labels: {app: details}}
spec: {containers: [{name: details}]}
status:
  phase: Running
  podIP: 10.200.12.7
  conditions: [{type: Ready, status: "False"}]
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* s = r.snapshot->find_service("details");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->endpoints.size(), 1u);   // the not-ready Pod is left out
  EXPECT_EQ(s->endpoints[0].name, "details-v1");
  EXPECT_EQ(s->endpoints[0].port_for(*s->port(80)), 9080u);
  EXPECT_EQ(s->endpoints[0].port_for(*s->port(81)), 9000u);
  EXPECT_EQ(s->endpoints[0].port_for(*s->port(82)), 82u);
  EXPECT_EQ(s->port(80)->protocol, model::Protocol::HTTP);    // appProtocol
  EXPECT_EQ(s->port(81)->protocol, model::Protocol::GRPC);    // name prefix
  EXPECT_EQ(s->port(82)->protocol, model::Protocol::Unspecified);
  EXPECT_NE(find_diagnostic(r, "has no EndpointSlice"), nullptr);
}

// Istio's VM integration: a Service's selector picks the WorkloadEntries of
// its namespace whose labels match, beside the Pods of its EndpointSlices.
TEST(KubernetesObjects, ServiceSelectorAlsoPicksWorkloadEntriesOfItsNamespace) {
  auto r = compile_yaml({{"k.yaml", R"(apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  clusterIP: 10.96.1.50
  selector: {app: ratings}
  ports: [{name: http, port: 9080, targetPort: 9080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ratings-1, namespace: default, labels: {kubernetes.io/service-name: ratings}}
addressType: IPv4
endpoints: [{addresses: [10.200.11.9], conditions: {ready: true}}]
ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-vm, namespace: default}
spec: {address: 10.0.5.5, labels: {app: ratings, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-vm, namespace: other}
spec: {address: 10.0.6.6, labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-vm, namespace: default}
spec: {address: 10.0.7.7, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  subsets: [{name: v2, labels: {version: v2}}]
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* s = r.snapshot->find_service("ratings");
  ASSERT_NE(s, nullptr);
  std::vector<std::string> got;
  for (const auto& e : s->endpoints) got.push_back(e.address.to_string());
  EXPECT_EQ(got, (std::vector<std::string>{"10.200.11.9", "10.0.5.5"}));
  EXPECT_EQ(s->endpoints[1].port_for(*s->port(9080)), 9080u);
  const auto v2 = std::find_if(s->subsets.begin(), s->subsets.end(), [](const auto& sub) { return sub.name == "v2"; });
  ASSERT_NE(v2, s->subsets.end());
  ASSERT_EQ(v2->endpoints.size(), 1u);   // the VM's labels select it
  EXPECT_EQ(s->endpoints[v2->endpoints[0]].name, "ratings-vm");
  const auto* note = find_diagnostic(r, "also picks 1 WorkloadEntry of its namespace");
  ASSERT_NE(note, nullptr);
  EXPECT_EQ(note->severity, Severity::Info);
}

TEST(KubernetesObjects, HeadlessAndExternalNameServicesAreNotesNotErrors) {
  auto r = compile_yaml({{"k.yaml", R"(apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec: {clusterIP: None, ports: [{name: tcp-db, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: api.example.com}
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* headless = find_diagnostic(r, "is headless (clusterIP: None)");
  ASSERT_NE(headless, nullptr);
  EXPECT_EQ(headless->severity, Severity::Info);
  ASSERT_NE(r.snapshot->find_service("db"), nullptr);
  EXPECT_TRUE(r.snapshot->find_service("db")->vips.empty());
  const auto* external = find_diagnostic(r, "is an ExternalName alias of 'api.example.com'");
  ASSERT_NE(external, nullptr);
  EXPECT_EQ(external->severity, Severity::Info);
  EXPECT_EQ(r.snapshot->find_service("ext"), nullptr);
}

TEST(KubernetesObjects, ServiceEntryAndKubernetesServiceWorkSideBySide) {
  auto r = compile_yaml({{"se.yaml", kProductpageService}, {"k8s.yaml", kReviewsList}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_NE(r.snapshot->find_service("productpage"), nullptr);
  EXPECT_NE(r.snapshot->find_service("reviews.bookinfo"), nullptr);
}

// What the k8swatch source feeds: JSON objects as the API returns them,
// typed lists whose items carry no kind, through the in-memory entry point.
TEST(KubernetesObjects, ApiServerJsonListsThroughTheInMemoryEntryPoint) {
  auto r = compile_yaml({{"api/services", R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"9"},
"items":[{"metadata":{"name":"ratings","namespace":"default","labels":{"app":"ratings"}},
"spec":{"clusterIP":"10.96.1.50","ports":[{"name":"http","port":9080,"targetPort":9080}],"selector":{"app":"ratings"}}}]})"},
                         {"api/endpointslices", R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","items":[
{"metadata":{"name":"ratings-1","namespace":"default","labels":{"kubernetes.io/service-name":"ratings"}},
 "addressType":"IPv4","endpoints":[{"addresses":["10.200.11.9"],"conditions":{"ready":true}}],
 "ports":[{"name":"http","port":9080}]}]})"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto* s = r.snapshot->find_service("ratings");
  ASSERT_NE(s, nullptr) << diagnostics_text(r);
  ASSERT_EQ(s->endpoints.size(), 1u);
  EXPECT_EQ(s->endpoints[0].address.to_string(), "10.200.11.9");
}

TEST(KubernetesObjects, IstioListsAreExpandedNotDropped) {
  auto r = compile_yaml({{"se.yaml", kProductpageService}, {"dr.yaml", kProductpageSubsets},
                         {"list.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualServiceList
items:
- metadata: {name: pp}
  spec:
    hosts: [productpage]
    http:
    - route: [{destination: {host: productpage, subset: v2}}]
)"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(r.snapshot->find_service("productpage")->virtual_services, std::vector<std::string>{"pp"});
}

TEST(KubernetesObjects, AListItemsErrorsKeepTheirLines) {
  auto r = compile_yaml({{"list.yaml", R"(apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: pp}
  spec:
    host: productpage
    trafic: {}
)"}});
  EXPECT_FALSE(r.ok());
  const auto* d = find_diagnostic(r, "unknown DestinationRule field 'trafic'");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_EQ(d->where.line, 9);
}

TEST(KubernetesObjects, NewestIstioFieldsAreReadOrNotImplementedWarningsNotTypos) {
  auto r = compile_with_productpage(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage, subset: v1}}]
    retries: {attempts: 3, retryIgnorePreviousHosts: false, backoff: 40ms}
)", kProductpageSubsets + R"(  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      zoneAwareLbSetting: {enabled: true}
    retryBudget: {percent: 20}
)");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  for (const char* field : {"trafficPolicy.loadBalancer.zoneAwareLbSetting", "trafficPolicy.retryBudget"}) {
    const auto* d = find_diagnostic(r, std::string("field '") + field + "' is not implemented");
    ASSERT_NE(d, nullptr) << field << "\n" << diagnostics_text(r);
    EXPECT_EQ(d->severity, Severity::Warning);
  }
  EXPECT_EQ(find_diagnostic(r, "retries."), nullptr) << diagnostics_text(r);   // read, no warning
  const auto& retries = r.snapshot->find_service("productpage")->routes.at(0).http.at(0).retries;
  ASSERT_TRUE(retries);
  EXPECT_FALSE(retries->ignore_previous_hosts);
  EXPECT_EQ(retries->backoff, std::chrono::milliseconds(40));
}

TEST(KubernetesObjects, JsonFilesInADirectoryAreRead) {
  const auto dir = std::filesystem::temp_directory_path() / ("sluice-json-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "se.yaml") << kProductpageService;
  std::ofstream(dir / "dr.json") << R"({"apiVersion":"networking.istio.io/v1","kind":"DestinationRule",
"metadata":{"name":"productpage"},"spec":{"host":"productpage","subsets":[{"name":"v1","labels":{"version":"v1"}}]}})";
  auto r = compile_paths({dir.string()}, 1);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(r.snapshot->find_service("productpage")->destination_rule, "productpage");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

using namespace testing;

// tests/fixtures/bookinfo: Istio's bookinfo sample with its Kubernetes
// objects as kubectl prints them; the integration test agent_bookinfo serves it.
TEST(BookinfoFixture, CompilesWithReviewsSubsetsSelectingTheirPods) {
  auto r = compile_paths({source_root() + "/tests/fixtures/bookinfo"}, 1);
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  for (const auto& d : r.diagnostics) EXPECT_NE(d.severity, model::Severity::Warning) << model::format_diagnostic(d);
  const auto* reviews = r.snapshot->find_service("reviews.bookinfo.svc.cluster.local");
  ASSERT_NE(reviews, nullptr);
  EXPECT_EQ(reviews->kind, "Service");
  ASSERT_EQ(reviews->subsets.size(), 4u);
  const std::vector<std::string> want = {"10.200.11.2", "10.200.12.2", "10.200.13.2"};
  for (size_t i = 1; i < 4; ++i) {
    ASSERT_EQ(reviews->subsets[i].endpoints.size(), 1u) << reviews->subsets[i].name;
    EXPECT_EQ(reviews->endpoints[reviews->subsets[i].endpoints[0]].address.to_string(), want[i - 1]);
  }
  const auto* pr = reviews->routes_for(9080);
  ASSERT_EQ(pr->plane, model::Plane::L7);
  ASSERT_EQ(pr->http.size(), 2u);
  EXPECT_EQ(subset_name(*r.snapshot, pr->http[0].route.at(0).destination), "v2");
  EXPECT_NE(find_diagnostic(r, "VirtualService 'bookinfo' is bound to gateways bookinfo-gateway only"), nullptr);
  EXPECT_EQ(find_diagnostic(r, "this match is skipped"), nullptr) << "one note for the skipped VirtualService";
}

}  // namespace
}  // namespace sluice::config
