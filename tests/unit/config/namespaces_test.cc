// Namespaces as Istio reads them: a short host is the rule's own namespace's
// service, exportTo limits where an object is seen, and a Kubernetes Service
// wins over a ServiceEntry for the same host (docs/config-reference.md,
// "Namespaces and exportTo").
#include <gtest/gtest.h>

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

TEST(ExportTo, AVirtualServiceExportedOnlyToItsOwnNamespaceDoesNotApplyToAnotherNamespacesService) {
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"vs.yaml", route_vs("from-a", "a", "reviews.b.svc.cluster.local",
                                              "reviews.b.svc.cluster.local", "  exportTo: [.]\n")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_TRUE(service(r, "reviews.b.svc.cluster.local").virtual_services.empty());
  const auto* d = find_diagnostic(r, "VirtualService 'a/from-a' is not exported to namespace 'b'");
  ASSERT_NE(d, nullptr) << diagnostics_text(r);
  EXPECT_EQ(d->severity, Severity::Warning);
  EXPECT_EQ(d->where.file, "vs.yaml");
  EXPECT_EQ(d->where.line, 6);   // the exportTo field
  EXPECT_EQ(find_diagnostic(r, "exportTo' is not implemented"), nullptr) << diagnostics_text(r);
}

TEST(ExportTo, AVirtualServiceExportedToTheServicesNamespaceAppliesToEveryClientWithANote) {
  for (const char* list : {"[.]", "[b]", "[b, c]"}) {
    auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                           {"vs.yaml", route_vs("rb", "b", "reviews", "reviews", std::string("  exportTo: ") + list + "\n")}});
    ASSERT_TRUE(r.ok()) << list << "\n" << diagnostics_text(r);
    EXPECT_EQ(service(r, "reviews.b.svc.cluster.local").virtual_services, std::vector<std::string>{"rb"}) << list;
    const auto* d = find_diagnostic(r, "is exported to some namespaces only, but it applies to");
    ASSERT_NE(d, nullptr) << list << "\n" << diagnostics_text(r);
    EXPECT_EQ(d->severity, Severity::Info);
  }
  // '*' is every namespace, as no exportTo is: nothing to say.
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"vs.yaml", route_vs("rb", "b", "reviews", "reviews", "  exportTo: ['*']\n")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(find_diagnostic(r, "exported"), nullptr) << diagnostics_text(r);
}

TEST(ExportTo, TwoVirtualServicesForOneHostDoNotConflictWhenOnlyOneIsExportedToItsNamespace) {
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"vs-a.yaml", route_vs("from-a", "a", "reviews.b.svc.cluster.local",
                                                "reviews.b.svc.cluster.local", "  exportTo: [.]\n")},
                         {"vs-b.yaml", route_vs("rb", "b", "reviews", "reviews")}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(service(r, "reviews.b.svc.cluster.local").virtual_services, std::vector<std::string>{"rb"});
}

TEST(ExportTo, DestinationRulesFollowIstiosLookupServiceNamespaceThenRootAndHonourExportTo) {
  const std::string host = "reviews.b.svc.cluster.local";
  // c's rule is for c's clients only: not applied; root's comes after b's.
  auto r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                         {"dr-c.yaml", subsets_dr("from-c", "c", host, "  exportTo: [.]\n")},
                         {"dr-root.yaml", subsets_dr("mesh-default", "istio-system", host)},
                         {"dr-b.yaml", subsets_dr("own", "b", host)}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(service(r, host).destination_rule, "own");
  const auto* skipped = find_diagnostic(r, "DestinationRule 'c/from-c' is not exported to namespace 'b'");
  ASSERT_NE(skipped, nullptr) << diagnostics_text(r);
  EXPECT_EQ(skipped->where.file, "dr-c.yaml");
  const auto* later = find_diagnostic(r, "DestinationRule 'istio-system/mesh-default' is not applied");
  ASSERT_NE(later, nullptr) << diagnostics_text(r);
  EXPECT_NE(later->message.find("'b/own'"), std::string::npos) << later->message;

  // Without the namespace's own rule, the root namespace's applies.
  r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                    {"dr-c.yaml", subsets_dr("from-c", "c", host, "  exportTo: [.]\n")},
                    {"dr-root.yaml", subsets_dr("mesh-default", "istio-system", host)}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(service(r, host).destination_rule, "mesh-default");

  // Two rules at the same place in the lookup are still refused.
  r = compile_yaml({{"b.yaml", reviews_in("b", "10.96.5.2")},
                    {"dr-1.yaml", subsets_dr("one", "b", host)},
                    {"dr-2.yaml", subsets_dr("two", "b", "reviews")}});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(find_diagnostic(r, "already has DestinationRule 'one'"), nullptr) << diagnostics_text(r);
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
