// Namespaces as Istio reads them: a short host is the rule's own namespace's
// service, exportTo limits where an object is seen, and a Kubernetes Service
// wins over a ServiceEntry for the same host (docs/config-reference.md,
// "Namespaces and exportTo").
#include <gtest/gtest.h>

#include <algorithm>

#include "config/weight_override.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

using namespace testing;
using model::Severity;

// reviews (short host) in namespace NS with VIP `vip`, two endpoints v1/v2.
std::string reviews_in(const std::string& ns, const std::string& vip, const std::string& extra = "") {
  return "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: reviews, namespace: " + ns +
         "}\nspec:\n  hosts: [reviews]\n  addresses: [" + vip +
         "]\n  ports: [{number: 9080, name: http, protocol: HTTP}]\n" + extra +
         "  endpoints:\n  - {address: 10.200.0.1, labels: {version: v1}}\n  - {address: 10.200.0.2, labels: {version: v2}}\n";
}

std::string route_vs(const std::string& name, const std::string& ns, const std::string& host,
                     const std::string& dest, const std::string& extra = "") {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: " + name + ", namespace: " + ns +
         "}\nspec:\n  hosts: [" + host + "]\n" + extra + "  http:\n  - route: [{destination: {host: " + dest + "}}]\n";
}

std::string subsets_dr(const std::string& name, const std::string& ns, const std::string& host,
                       const std::string& extra = "") {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + name +
         ", namespace: " + ns + "}\nspec:\n  host: " + host + "\n" + extra +
         "  subsets:\n  - {name: v1, labels: {version: v1}}\n";
}

const model::Service& service(const CompileResult& r, const std::string& host) {
  const auto* s = r.snapshot->find_service(host);
  EXPECT_NE(s, nullptr) << host;
  static const model::Service kNone;
  return s ? *s : kNone;
}

// --- short names ---------------------------------------------------------------

TEST(ShortNames, AreReadInTheRulesNamespaceOnlyNeverAnotherNamespacesService) {
  // reviews exists in namespace a only; a rule in namespace b that says
  // `reviews` means reviews.b.svc.cluster.local, which does not exist.
  auto r = compile_yaml({{"a.yaml", reviews_in("a", "10.96.5.1")},
                         {"vs.yaml", route_vs("reviews", "b", "reviews", "reviews")},
                         {"dr.yaml", subsets_dr("reviews", "b", "reviews")}});
  EXPECT_FALSE(r.ok());
  for (int line : {5, 7}) {   // the VirtualService's host and its destination
    bool found = false;
    for (const auto& d : r.diagnostics) {
      if (d.where.file == "vs.yaml" && d.where.line == line && d.severity == Severity::Error &&
          d.message.find("'reviews.b.svc.cluster.local'") != std::string::npos &&
          d.message.find("(write the full name of reviews.a.svc.cluster.local)") != std::string::npos)
        found = true;
    }
    EXPECT_TRUE(found) << "vs.yaml:" << line << "\n" << diagnostics_text(r);
  }
  const auto* dr = find_diagnostic(r, "DestinationRule 'reviews' host 'reviews' matches no ServiceEntry host");
  ASSERT_NE(dr, nullptr) << diagnostics_text(r);
  EXPECT_EQ(dr->where.file, "dr.yaml");
  EXPECT_NE(dr->message.find("reviews.b.svc.cluster.local"), std::string::npos) << dr->message;
}

TEST(ShortNames, TheSameShortNameInTwoNamespacesIsTwoServicesEachWithItsOwnRules) {
  auto r = compile_yaml({{"a.yaml", reviews_in("a", "10.96.5.1")},
                         {"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"vs-a.yaml", route_vs("ra", "a", "reviews", "reviews")},
                         {"vs-b.yaml", route_vs("rb", "b", "reviews", "reviews")},
                         {"dr-b.yaml", subsets_dr("rb", "b", "reviews")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(service(r, "reviews.a.svc.cluster.local").virtual_services, std::vector<std::string>{"ra"});
  EXPECT_EQ(service(r, "reviews.b.svc.cluster.local").virtual_services, std::vector<std::string>{"rb"});
  EXPECT_EQ(service(r, "reviews.a.svc.cluster.local").destination_rule, "");
  EXPECT_EQ(service(r, "reviews.b.svc.cluster.local").destination_rule, "rb");
}

// --- exportTo --------------------------------------------------------------------

// The routes a client of namespace `ns` gets for `port` of `s`.
const model::PortRoutes* routes_seen_from(const CompileResult& r, const model::Service& s, const std::string& ns,
                                          uint32_t port = 9080) {
  const auto& names = r.snapshot->client_namespaces;
  const auto it = std::find(names.begin(), names.end(), ns);
  EXPECT_NE(it, names.end()) << ns;
  return s.routes_for(port, static_cast<uint32_t>(it - names.begin()));
}

// The subset name the first route of a client namespace's view leads to.
std::string first_subset_seen_from_port(const CompileResult& r, const model::Service& s, const std::string& ns,
                                        uint32_t port) {
  const auto* pr = routes_seen_from(r, s, ns, port);
  if (pr == nullptr) return "(no routes)";
  const auto& list = pr->http.empty() ? pr->l4 : pr->http.front().route;
  if (list.empty()) return "(no destination)";
  return subset_name(*r.snapshot, list.front().destination);
}

std::string first_subset_seen_from(const CompileResult& r, const model::Service& s, const std::string& ns) {
  return first_subset_seen_from_port(r, s, ns, 9080);
}

std::string pod_in(const std::string& name, const std::string& ns, const std::string& ip, bool host_network = false) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  hostNetwork: " +
         (host_network ? "true" : "false") + "\n  containers: [{name: c}]\nstatus: {phase: Running, podIP: " + ip + "}\n";
}

TEST(ExportTo, AVirtualServiceExportedOnlyToItsOwnNamespaceRoutesThatNamespacesClientsOnly) {
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"dr.yaml", subsets_dr("own", "b", "reviews")},
                         {"vs.yaml", route_vs("from-a", "a", "reviews.b.svc.cluster.local",
                                              "reviews.b.svc.cluster.local", "  exportTo: [.]\n")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& s = service(r, "reviews.b.svc.cluster.local");
  // b (the service's namespace, and every unknown client) has no VirtualService.
  EXPECT_TRUE(s.virtual_services.empty());
  EXPECT_EQ(routes_seen_from(r, s, "b")->plane, model::Plane::L7);   // one plane for every view
  EXPECT_TRUE(routes_seen_from(r, s, "b")->http.empty());
  EXPECT_EQ(s.routes_for(9080, 0), s.routes_for(9080));
  ASSERT_EQ(s.views.size(), 1u);
  EXPECT_EQ(s.views[0].namespaces, std::vector<std::string>{"a"});
  EXPECT_EQ(s.views[0].virtual_services, std::vector<std::string>{"a/from-a"});
  EXPECT_EQ(s.views[0].destination_rule, "b/own");   // the service's namespace's rule, exported everywhere
  ASSERT_EQ(routes_seen_from(r, s, "a")->http.size(), 1u);
  EXPECT_EQ(routes_seen_from(r, s, "a")->http.front().virtual_service, "from-a");
  const auto* d = find_diagnostic(r, "VirtualService 'a/from-a' routes 'reviews' for the clients of namespaces a only");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_EQ(d->severity, Severity::Info);
  EXPECT_EQ(d->where.line, 6);   // the exportTo field
}

TEST(ExportTo, AVirtualServiceExportedOnlyToItsOwnNamespaceDoesNotRouteAnotherNamespacesClients) {
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"pod-a.yaml", pod_in("client", "a", "10.244.1.5")},
                         {"vs.yaml", route_vs("rb", "b", "reviews", "reviews", "  exportTo: [.]\n")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& s = service(r, "reviews.b.svc.cluster.local");
  EXPECT_EQ(s.virtual_services, std::vector<std::string>{"rb"});
  EXPECT_EQ(routes_seen_from(r, s, "b")->http.size(), 1u);
  ASSERT_EQ(s.views.size(), 1u);
  EXPECT_EQ(s.views[0].namespaces, std::vector<std::string>{"a"});
  EXPECT_TRUE(routes_seen_from(r, s, "a")->http.empty());
  // '*' is every namespace, as no exportTo is: one view, nothing to say.
  r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                    {"pod-a.yaml", pod_in("client", "a", "10.244.1.5")},
                    {"vs.yaml", route_vs("rb", "b", "reviews", "reviews", "  exportTo: ['*']\n")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_TRUE(service(r, "reviews.b.svc.cluster.local").views.empty());
  EXPECT_EQ(find_diagnostic(r, "exported"), nullptr) << diagnostics_text(r);
}

TEST(ExportTo, TwoVirtualServicesForOneHostConflictOnlyInAViewThatSeesBoth) {
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"vs-a.yaml", route_vs("from-a", "a", "reviews.b.svc.cluster.local",
                                                "reviews.b.svc.cluster.local", "  exportTo: [.]\n")},
                         {"vs-b.yaml", route_vs("rb", "b", "reviews", "reviews", "  exportTo: [.]\n")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& s = service(r, "reviews.b.svc.cluster.local");
  EXPECT_EQ(s.virtual_services, std::vector<std::string>{"rb"});
  ASSERT_EQ(s.views.size(), 1u);
  EXPECT_EQ(s.views[0].virtual_services, std::vector<std::string>{"a/from-a"});

  // b's rule exported everywhere: namespace a sees both.
  r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                    {"vs-a.yaml", route_vs("from-a", "a", "reviews.b.svc.cluster.local",
                                           "reviews.b.svc.cluster.local", "  exportTo: [.]\n")},
                    {"vs-b.yaml", route_vs("rb", "b", "reviews", "reviews")}});
  EXPECT_FALSE(r.ok());
  const auto* d = find_diagnostic(r, "host 'reviews' is already routed by VirtualService 'from-a'");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_NE(d->message.find("for clients of namespace 'a'"), std::string::npos) << d->message;
  EXPECT_EQ(d->where.file, "vs-b.yaml");
}

TEST(ExportTo, DestinationRuleLookupIsClientNamespaceThenServiceNamespaceThenRoot) {
  const std::string host = "reviews.b.svc.cluster.local";
  // c's rule is for c's clients only; root's comes after b's.
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"dr-c.yaml", subsets_dr("from-c", "c", host, "  exportTo: [.]\n")},
                         {"dr-root.yaml", subsets_dr("mesh-default", "istio-system", host)},
                         {"dr-b.yaml", subsets_dr("own", "b", host)}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& s = service(r, host);
  EXPECT_EQ(s.destination_rule, "own");
  // c's clients see c's rule; istio-system's clients see their own namespace's.
  ASSERT_EQ(s.views.size(), 2u);
  EXPECT_EQ(s.views[0].namespaces, std::vector<std::string>{"c"});
  EXPECT_EQ(s.views[0].destination_rule, "c/from-c");
  EXPECT_EQ(s.views[1].namespaces, std::vector<std::string>{"istio-system"});
  EXPECT_EQ(s.views[1].destination_rule, "istio-system/mesh-default");
  // The view's subsets are its rule's: a whole-service subset, then v1.
  ASSERT_EQ(s.views[0].subset_count, 2u);
  EXPECT_EQ(s.subsets[s.views[0].first_subset + 1].name, "v1");
  EXPECT_EQ(s.subset_index("v1"), std::optional<uint32_t>(1));   // the default view's

  // Without the namespace's own rule, the root namespace's applies to all but c.
  r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                    {"dr-c.yaml", subsets_dr("from-c", "c", host, "  exportTo: [.]\n")},
                    {"dr-root.yaml", subsets_dr("mesh-default", "istio-system", host)}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(service(r, host).destination_rule, "mesh-default");
  ASSERT_EQ(service(r, host).views.size(), 1u);
  EXPECT_EQ(service(r, host).views[0].destination_rule, "c/from-c");

  // b's rule exported to b only: a's clients fall through to the root's.
  r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                    {"pod-a.yaml", pod_in("client", "a", "10.244.1.5")},
                    {"dr-root.yaml", subsets_dr("mesh-default", "istio-system", host)},
                    {"dr-b.yaml", subsets_dr("own", "b", host, "  exportTo: [.]\n")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(service(r, host).destination_rule, "own");
  std::vector<std::string> root_view;
  for (const auto& v : service(r, host).views) {
    if (v.destination_rule == "istio-system/mesh-default") root_view = v.namespaces;
  }
  EXPECT_EQ(root_view, (std::vector<std::string>{"a", "istio-system"}));

  // Two rules at the same place in the lookup are still refused.
  r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                    {"dr-1.yaml", subsets_dr("one", "b", host)},
                    {"dr-2.yaml", subsets_dr("two", "b", "reviews")}});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(find_diagnostic(r, "already has DestinationRule 'one'"), nullptr) << diagnostics_text(r);
}

TEST(ExportTo, AClientNamespacesOwnDestinationRuleGivesItsRoutesThatRulesSubsets) {
  // a routes b's reviews to subset v2, which only a's own rule defines.
  const std::string host = "reviews.b.svc.cluster.local";
  const std::string dr_a =
      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: mine, namespace: a}\nspec:\n"
      "  host: " + host + "\n  exportTo: [.]\n  subsets:\n  - {name: v2, labels: {version: v2}}\n";
  const std::string vs_a =
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: to-v2, namespace: a}\nspec:\n"
      "  hosts: [" + host + "]\n  exportTo: [.]\n  http:\n  - route: [{destination: {host: " + host + ", subset: v2}}]\n";
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"dr-b.yaml", subsets_dr("own", "b", host)},
                         {"dr-a.yaml", dr_a},
                         {"vs-a.yaml", vs_a}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& s = service(r, host);
  EXPECT_EQ(first_subset_seen_from(r, s, "a"), "v2");
  const auto* pr = routes_seen_from(r, s, "a");
  const auto& subset = s.subsets[pr->http.front().route.front().destination.subset];
  ASSERT_EQ(subset.endpoints.size(), 1u);
  EXPECT_EQ(s.endpoints[subset.endpoints.front()].address.to_string(), "10.200.0.2");
  // b's view has no v2: the same route there would be an error.
  EXPECT_FALSE(s.subset_index("v2").has_value());
}

TEST(ClientNamespaces, APodOrWorkloadEntryAddressNamesItsNamespaceAndOthersAreUnknown) {
  const std::string we =
      "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm, namespace: c}\nspec:\n"
      "  address: 10.244.9.9\n";
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"pod-a.yaml", pod_in("client", "a", "10.244.1.5")},
                         {"pod-h.yaml", pod_in("host-agent", "a", "192.168.0.10", true)},
                         {"pod-x.yaml", pod_in("x1", "a", "10.244.7.7") + "---\n" + pod_in("x2", "b", "10.244.7.7")},
                         {"we.yaml", we}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& snap = *r.snapshot;
  auto ns_of = [&](const char* ip) { return snap.client_namespaces[snap.client_namespace(*model::IpAddress::parse(ip))]; };
  EXPECT_EQ(ns_of("10.244.1.5"), "a");
  EXPECT_EQ(ns_of("10.244.9.9"), "c");
  EXPECT_EQ(ns_of("192.168.0.10"), "");   // host network: the node's address tells nothing
  EXPECT_EQ(ns_of("10.244.7.7"), "");     // claimed by two namespaces
  EXPECT_EQ(ns_of("10.1.2.3"), "");       // no Pod or WorkloadEntry
  EXPECT_NE(find_diagnostic(r, "address 10.244.7.7 belongs to namespaces 'a'"), nullptr) << diagnostics_text(r);
}

TEST(ClientNamespaces, AnUnknownClientGetsTheServicesOwnNamespacesView) {
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"dr-b.yaml", subsets_dr("own", "b", "reviews")},
                         {"vs-a.yaml", route_vs("from-a", "a", "reviews.b.svc.cluster.local",
                                                "reviews.b.svc.cluster.local", "  exportTo: [.]\n")},
                         {"vs-b.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: rb, "
                                       "namespace: b}\nspec:\n  hosts: [reviews]\n  exportTo: [.]\n  http:\n  - route: "
                                       "[{destination: {host: reviews, subset: v1}}]\n"}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& s = service(r, "reviews.b.svc.cluster.local");
  const auto unknown = r.snapshot->client_namespace(*model::IpAddress::parse("10.9.9.9"));
  EXPECT_EQ(unknown, 0u);
  EXPECT_EQ(s.routes_for(9080, unknown), routes_seen_from(r, s, "b"));
  EXPECT_EQ(first_subset_seen_from(r, s, "b"), "v1");
  EXPECT_EQ(first_subset_seen_from(r, s, "a"), "");   // from-a routes to the whole service
}

// The L4 planes enforce it (table_writer_test, xdp_steer_test): no warning.
TEST(ClientNamespaces, AViewThatRoutesAnL4PortOtherwiseIsCompiledWithoutAWarning) {
  const std::string se =
      "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: db, namespace: b}\nspec:\n"
      "  hosts: [db]\n  addresses: [10.96.7.1]\n  ports: [{number: 5432, name: tcp, protocol: TCP}]\n"
      "  endpoints:\n  - {address: 10.200.0.1, labels: {version: v1}}\n  - {address: 10.200.0.2, labels: {version: v2}}\n";
  const std::string dr = subsets_dr("db", "b", "db", "") + "  - {name: v2, labels: {version: v2}}\n";
  const std::string vs =
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: db-for-a, namespace: a}\nspec:\n"
      "  hosts: [db.b.svc.cluster.local]\n  exportTo: [.]\n  tcp:\n  - route: [{destination: {host: db.b.svc.cluster.local, subset: v2}}]\n";
  auto r = compile_yaml({{"se.yaml", se}, {"dr.yaml", dr}, {"vs.yaml", vs}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& s = service(r, "db.b.svc.cluster.local");
  EXPECT_EQ(routes_seen_from(r, s, "a", 5432)->plane, model::Plane::L4);
  EXPECT_EQ(first_subset_seen_from_port(r, s, "a", 5432), "v2");
  EXPECT_EQ(first_subset_seen_from_port(r, s, "b", 5432), "");
  for (const auto& d : r.snapshot->warnings) EXPECT_NE(d.severity, Severity::Warning) << diagnostics_text(r);
}

TEST(ExportTo, ADestinationNotExportedToTheRoutedServicesNamespaceIsAnError) {
  auto r = compile_yaml({{"a.yaml", reviews_in("a", "10.96.5.1", "  exportTo: [.]\n")},
                         {"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"vs.yaml", route_vs("rb", "b", "reviews", "reviews.a.svc.cluster.local")}});
  EXPECT_FALSE(r.ok());
  const auto* d = find_diagnostic(r, "destination host 'reviews.a.svc.cluster.local' (ServiceEntry 'a/reviews') is "
                                     "not exported to namespace 'b' (exportTo at a.yaml:8:");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_EQ(d->where.file, "vs.yaml");
  EXPECT_EQ(d->where.line, 7);

  // Named to b: fine.
  r = compile_yaml({{"a.yaml", reviews_in("a", "10.96.5.1", "  exportTo: [., b]\n")},
                    {"b.yaml", reviews_in("b", "10.96.5.2")},
                    {"vs.yaml", route_vs("rb", "b", "reviews", "reviews.a.svc.cluster.local")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
}

TEST(ExportTo, AKubernetesServiceAnnotationLimitsItsVisibility) {
  const std::string svc = R"(apiVersion: v1
kind: Service
metadata:
  name: ratings
  namespace: a
  annotations: {networking.istio.io/exportTo: "., c"}
spec:
  clusterIP: 10.96.6.1
  ports: [{name: http, port: 9080}]
)";
  auto r = compile_yaml({{"svc.yaml", svc},
                         {"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"vs.yaml", route_vs("rb", "b", "reviews", "ratings.a.svc.cluster.local")}});
  EXPECT_FALSE(r.ok());
  const auto* d = find_diagnostic(r, "(Service 'a/ratings') is not exported to namespace 'b' (exportTo at svc.yaml:6:");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);

  auto bad = compile_yaml({{"svc.yaml", svc.substr(0, svc.find("\"., c\"")) + "\"., Bad_Name\"}\n" +
                                            svc.substr(svc.find("spec:"))}});
  const auto* e = find_diagnostic(bad, "'Bad_Name' is not '.', '*', '~' or a namespace name");
  ASSERT_NE(e, nullptr) << diagnostics_text(bad);
  EXPECT_EQ(e->where.line, 6);
}

TEST(ExportTo, WrongListsAreErrorsNamingTheField) {
  struct Case {
    const char* list;
    const char* message;
  };
  for (const auto& c : {Case{"['*', a]", "'*' cannot be listed with other namespaces"},
                        Case{"[., b]", "namespace 'b' is listed twice ('.' is the object's own namespace)"},
                        Case{"['~']", "'~' (exported to no namespace) is only for ServiceEntry and Service"},
                        Case{"[Not.A.Namespace]", "'Not.A.Namespace' is not '.', '*' or a namespace name"}}) {
    auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                           {"vs.yaml", route_vs("rb", "b", "reviews", "reviews", std::string("  exportTo: ") + c.list + "\n")}});
    EXPECT_FALSE(r.ok()) << c.list;
    const auto* d = find_diagnostic(r, c.message);
    ASSERT_NE(d, nullptr) << c.list << "\n" << diagnostics_text(r);
    EXPECT_EQ(d->where.file, "vs.yaml");
    EXPECT_EQ(d->where.line, 6);
    EXPECT_NE(d->message.find("VirtualService field 'exportTo'"), std::string::npos) << d->message;
  }
  // A ServiceEntry may be exported nowhere: nothing can route to it.
  auto r = compile_yaml({{"a.yaml", reviews_in("a", "10.96.5.1", "  exportTo: ['~']\n")},
                         {"vs.yaml", route_vs("ra", "a", "web.example.com", "reviews")},
                         {"web.yaml", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: web, "
                                      "namespace: a}\nspec:\n  hosts: [web.example.com]\n  addresses: [10.96.7.1]\n"
                                      "  ports: [{number: 80, name: http}]\n  endpoints: [{address: 10.200.7.1}]\n"}});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(find_diagnostic(r, "is not exported to namespace 'a'"), nullptr) << diagnostics_text(r);
}

// --- a ServiceEntry for a Kubernetes Service's host ------------------------------

TEST(ServiceEntryAndService, TheKubernetesServiceWinsAndTheServiceEntryHostIsAWarningNamingBoth) {
  const std::string svc = R"(apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: a}
spec:
  clusterIP: 10.96.6.1
  ports: [{name: http, port: 9080}]
)";
  const std::string se = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings-vm, namespace: a}
spec:
  hosts: [ratings.a.svc.cluster.local, ratings-vm.example.com]
  addresses: [10.96.6.9]
  ports: [{number: 9080, name: http}]
  endpoints: [{address: 10.200.6.9}]
)";
  auto r = compile_yaml({{"se.yaml", se}, {"svc.yaml", svc}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& ratings = service(r, "ratings.a.svc.cluster.local");
  EXPECT_EQ(ratings.kind, "Service");
  ASSERT_EQ(ratings.vips.size(), 1u);
  EXPECT_EQ(ratings.vips[0].to_string(), "10.96.6.1");
  // The ServiceEntry's other host is still its own service.
  EXPECT_EQ(service(r, "ratings-vm.example.com").name, "ratings-vm");
  const auto* d = find_diagnostic(r, "host 'ratings.a.svc.cluster.local' of ServiceEntry 'a/ratings-vm' is "
                                     "Kubernetes Service 'a/ratings' (svc.yaml:2)");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_EQ(d->severity, Severity::Warning);
  EXPECT_EQ(d->where.file, "se.yaml");
  EXPECT_EQ(d->where.line, 5);

  // A short host in the Service's namespace is the same host.
  auto short_host = compile_yaml({{"se.yaml", std::string(se).replace(se.find("ratings.a.svc.cluster.local"),
                                                                      std::string("ratings.a.svc.cluster.local").size(),
                                                                      "ratings")},
                                  {"svc.yaml", svc}});
  ASSERT_TRUE(short_host.ok()) << diagnostics_text(short_host);
  EXPECT_NE(find_diagnostic(short_host, "host 'ratings' of ServiceEntry 'a/ratings-vm' is Kubernetes Service"), nullptr)
      << diagnostics_text(short_host);
}

// --- runtime weight overrides across views ------------------------------------------

// A DestinationRule for `host` with subsets v1 and v2 (or v1 only).
std::string two_subsets_dr(const std::string& name, const std::string& ns, const std::string& host,
                           const std::string& extra = "", bool with_v2 = true) {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + name + ", namespace: " + ns +
         "}\nspec:\n  host: " + host + "\n" + extra + "  subsets:\n  - {name: v1, labels: {version: v1}}\n" +
         (with_v2 ? "  - {name: v2, labels: {version: v2}}\n" : "");
}

// The (subset, weight) pairs of the first http route a client of `ns` gets.
std::vector<std::pair<std::string, uint32_t>> weights_seen_from(const model::Snapshot& snapshot,
                                                                const model::Service& s, const std::string& ns) {
  const auto& names = snapshot.client_namespaces;
  const auto it = std::find(names.begin(), names.end(), ns);
  EXPECT_NE(it, names.end()) << ns;
  const auto* pr = s.routes_for(9080, static_cast<uint32_t>(it - names.begin()));
  std::vector<std::pair<std::string, uint32_t>> out;
  if (pr == nullptr || pr->http.empty()) return out;
  for (const auto& w : pr->http.front().route) out.emplace_back(s.subsets[w.destination.subset].name, w.weight);
  return out;
}

TEST(WeightOverrideViews, FollowsEveryViewOfTheSameVirtualServiceAndLeavesAViewWithItsOwn) {
  const std::string host = "reviews.b.svc.cluster.local";
  const std::string weighted_vs =
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: canary, namespace: b}\nspec:\n"
      "  hosts: [" + host + "]\n  exportTo: [., a]\n  http:\n  - route:\n    - {destination: {host: " + host +
      ", subset: v1}, weight: 90}\n    - {destination: {host: " + host + ", subset: v2}, weight: 10}\n";
  const std::string pinned_vs =
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: pinned, namespace: c}\nspec:\n"
      "  hosts: [" + host + "]\n  exportTo: [.]\n  http:\n  - route:\n    - {destination: {host: " + host +
      ", subset: v1}, weight: 100}\n";
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"dr-b.yaml", two_subsets_dr("own", "b", host)},
                         // a's clients: the same VirtualService, their own DestinationRule.
                         {"dr-a.yaml", two_subsets_dr("mine", "a", host,
                                                      "  exportTo: [.]\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n")},
                         {"dr-c.yaml", two_subsets_dr("theirs", "c", host, "  exportTo: [.]\n")},
                         {"vs.yaml", weighted_vs},
                         {"vs-c.yaml", pinned_vs},
                         {"pod-a.yaml", pod_in("client", "a", "10.244.1.5")},
                         {"pod-c.yaml", pod_in("client", "c", "10.244.1.6")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const auto& before = service(r, host);
  ASSERT_EQ(before.views.size(), 2u);
  using W = std::vector<std::pair<std::string, uint32_t>>;
  EXPECT_EQ(weights_seen_from(*r.snapshot, before, "a"), (W{{"v1", 90}, {"v2", 10}}));

  auto o = override_weights(*r.snapshot, host, {{"v1", 20}, {"v2", 80}}, 2);
  ASSERT_NE(o.snapshot, nullptr) << o.error;
  const auto& after = *o.snapshot->find_service(host);
  EXPECT_EQ(weights_seen_from(*o.snapshot, after, "b"), (W{{"v1", 20}, {"v2", 80}}));
  // a's view follows, in a's own rule's subsets (the ones with a's policy).
  EXPECT_EQ(weights_seen_from(*o.snapshot, after, "a"), (W{{"v1", 20}, {"v2", 80}}));
  const auto* pr_a = after.routes_for(9080, static_cast<uint32_t>(
      std::find(o.snapshot->client_namespaces.begin(), o.snapshot->client_namespaces.end(), "a") -
      o.snapshot->client_namespaces.begin()));
  ASSERT_NE(pr_a, nullptr);
  for (const auto& w : pr_a->http.front().route) EXPECT_EQ(after.subset_rule(w.destination.subset), "a/mine");
  // c has a VirtualService of its own: left as the files say, and reported.
  EXPECT_EQ(weights_seen_from(*o.snapshot, after, "c"), (W{{"v1", 100}}));
  EXPECT_EQ(o.views_kept, std::vector<std::string>{"namespace c (VirtualService c/pinned)"});
}

TEST(WeightOverrideViews, IsRefusedWhenAViewOfTheSameVirtualServiceLacksAWeightedSubset) {
  const std::string host = "reviews.b.svc.cluster.local";
  const std::string v1_vs =
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: stable, namespace: b}\nspec:\n"
      "  hosts: [" + host + "]\n  http:\n  - route: [{destination: {host: " + host + ", subset: v1}}]\n";
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"dr-b.yaml", two_subsets_dr("own", "b", host)},
                         {"dr-d.yaml", two_subsets_dr("v1-only", "d", host, "  exportTo: [.]\n", false)},
                         {"vs.yaml", v1_vs},
                         {"pod-d.yaml", pod_in("client", "d", "10.244.1.7")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  auto refused = override_weights(*r.snapshot, host, {{"v1", 50}, {"v2", 50}}, 2);
  EXPECT_EQ(refused.snapshot, nullptr);
  EXPECT_NE(refused.error.find("subset 'v2'"), std::string::npos) << refused.error;
  EXPECT_NE(refused.error.find("DestinationRule d/v1-only"), std::string::npos) << refused.error;
  EXPECT_NE(refused.error.find("namespace d "), std::string::npos) << refused.error;
  // Weight 0 for the subset it lacks is what its routes already have: accepted.
  auto ok = override_weights(*r.snapshot, host, {{"v1", 100}, {"v2", 0}}, 2);
  EXPECT_NE(ok.snapshot, nullptr) << ok.error;
}

// --- origin ------------------------------------------------------------------------

TEST(Origin, ObjectsFromTheApiServerSayKubernetesAndAnOverrideKeepsThat) {
  auto parsed = parse_sources({{"k8s:networking.istio.io/v1/ServiceEntry/b/reviews", reviews_in("b", "10.96.5.2")},
                               {"dr", subsets_dr("rb", "b", "reviews")}});
  parsed.origin = "kubernetes";
  auto r = compile(parsed, 1);
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(r.snapshot->origin, "kubernetes");
  auto o = override_weights(*r.snapshot, "reviews", {{"v1", 100}}, 2);
  ASSERT_NE(o.snapshot, nullptr) << o.error;
  EXPECT_EQ(o.snapshot->origin, "kubernetes+override");
  EXPECT_EQ(compile(parse_sources({{"b.yaml", reviews_in("b", "10.96.5.2")}}), 1).snapshot->origin, "files");
}

}  // namespace
}  // namespace sluice::config
