#include "k8s/resource_store.h"

#include <gtest/gtest.h>

#include "config/compiler.h"

using nlohmann::json;
using sluice::k8s::EventType;
using sluice::k8s::parse_watch_event;
using sluice::k8s::ResourceKind;
using sluice::k8s::ResourceStore;
using sluice::k8s::WatchEvent;

namespace {

const ResourceKind& kind_named(const std::string& kind) {
  for (const auto& k : sluice::k8s::watched_kinds()) {
    if (k.kind == kind) return k;
  }
  throw std::logic_error(kind);
}

json virtual_service(int v1_weight, const std::string& rv) {
  return json::parse(R"({
    "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
    "metadata": {"name": "productpage", "namespace": "default", "resourceVersion": ")" + rv + R"(",
                 "managedFields": [{"manager": "kubectl"}]},
    "spec": {"hosts": ["productpage"], "http": [{"route": [
      {"destination": {"host": "productpage", "subset": "v1"}, "weight": )" + std::to_string(v1_weight) + R"(},
      {"destination": {"host": "productpage", "subset": "v2"}, "weight": )" + std::to_string(100 - v1_weight) + R"(}]}]}
  })");
}

WatchEvent event(EventType type, json object) {
  WatchEvent e;
  e.type = type;
  e.object = std::move(object);
  return e;
}

}  // namespace

TEST(WatchEvent, ParsesTypeAndObject) {
  WatchEvent e = parse_watch_event(R"({"type":"MODIFIED","object":{"kind":"Service","metadata":{"name":"a"}}})");
  EXPECT_EQ(e.type, EventType::Modified);
  EXPECT_EQ(e.object["metadata"]["name"], "a");
  EXPECT_EQ(parse_watch_event(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})").type,
            EventType::Bookmark);
}

TEST(WatchEvent, ErrorEventCarriesTheStatusCode) {
  WatchEvent e = parse_watch_event(
      R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",)j"
      R"j("message":"too old resource version: 5 (90)","reason":"Expired","code":410}})j");
  EXPECT_EQ(e.type, EventType::Error);
  EXPECT_EQ(e.error_code, 410);
  EXPECT_EQ(e.error_message, "too old resource version: 5 (90)");
}

TEST(WatchEvent, MalformedLinesAreErrors) {
  EXPECT_THROW(parse_watch_event("{\"type\":\"ADDED\""), std::runtime_error);
  EXPECT_THROW(parse_watch_event(R"({"object":{}})"), std::runtime_error);
  EXPECT_THROW(parse_watch_event(R"({"type":"ADDED"})"), std::runtime_error);
  EXPECT_THROW(parse_watch_event(R"({"type":"RENAMED","object":{}})"), std::runtime_error);
}

TEST(ResourceStore, ListFillsInApiVersionAndKindAndTakesTheListVersion) {
  ResourceStore store(kind_named("Service"));
  // Items of a built-in list carry no apiVersion/kind.
  json list = json::parse(R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"120"},
    "items":[{"metadata":{"name":"productpage","namespace":"default","resourceVersion":"7"},
              "spec":{"clusterIP":"10.96.0.10"}}]})");
  EXPECT_TRUE(store.replace(list));
  EXPECT_EQ(store.resource_version(), "120");
  std::vector<sluice::config::SourceText> sources;
  store.append_sources(sources);
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0].path, "k8s:v1/Service/default/productpage");
  json back = json::parse(sources[0].text);
  EXPECT_EQ(back["apiVersion"], "v1");
  EXPECT_EQ(back["kind"], "Service");
  EXPECT_FALSE(store.replace(list)) << "the same list again is no change";
}

TEST(ResourceStore, EventsAddModifyDeleteAndMoveTheVersion) {
  ResourceStore store(kind_named("VirtualService"));
  store.replace(json::parse(R"({"metadata":{"resourceVersion":"10"},"items":[]})"));
  EXPECT_TRUE(store.apply(event(EventType::Added, virtual_service(70, "11"))));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.resource_version(), "11");
  // Only the resourceVersion differs: the config is the same, no reload.
  EXPECT_FALSE(store.apply(event(EventType::Modified, virtual_service(70, "12"))));
  EXPECT_EQ(store.resource_version(), "12");
  EXPECT_TRUE(store.apply(event(EventType::Modified, virtual_service(50, "13"))));
  EXPECT_TRUE(store.apply(event(EventType::Deleted, virtual_service(50, "14"))));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.resource_version(), "14");
  EXPECT_FALSE(store.apply(event(EventType::Deleted, virtual_service(50, "15"))));
}

TEST(ResourceStore, BookmarkMovesOnlyTheVersion) {
  ResourceStore store(kind_named("VirtualService"));
  store.apply(event(EventType::Added, virtual_service(70, "11")));
  EXPECT_FALSE(store.apply(event(EventType::Bookmark, json::parse(
                                                          R"({"kind":"VirtualService","apiVersion":
                                                          "networking.istio.io/v1beta1","metadata":
                                                          {"resourceVersion":"500"}})"))));
  EXPECT_EQ(store.resource_version(), "500");
  EXPECT_EQ(store.size(), 1u);
}

TEST(ResourceStore, RelistDropsObjectsDeletedWhileTheWatchWasGone) {
  ResourceStore store(kind_named("VirtualService"));
  store.apply(event(EventType::Added, virtual_service(70, "11")));
  EXPECT_TRUE(store.replace(json::parse(R"({"metadata":{"resourceVersion":"900"},"items":[]})")));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.resource_version(), "900");
}

TEST(ResourceStore, ManagedFieldsVersionAndStatusAreNotKept) {
  ResourceStore store(kind_named("VirtualService"));
  json vs = virtual_service(70, "11");
  vs["status"] = {{"observedGeneration", 1}};
  store.apply(event(EventType::Added, vs));
  std::vector<sluice::config::SourceText> sources;
  store.append_sources(sources);
  json kept = json::parse(sources[0].text);
  EXPECT_FALSE(kept["metadata"].contains("managedFields"));
  EXPECT_FALSE(kept["metadata"].contains("resourceVersion"));
  EXPECT_FALSE(kept.contains("status"));
  // A controller writing status is no config change.
  vs["status"] = {{"observedGeneration", 2}};
  vs["metadata"]["resourceVersion"] = "12";
  EXPECT_FALSE(store.apply(event(EventType::Modified, vs)));
}

TEST(ResourceStore, PodsKeepOnlyIdentityLabelsNodeAndAddresses) {
  ResourceStore store(kind_named("Pod"));
  store.apply(event(EventType::Added, json::parse(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"p","namespace":"default","uid":"u1","labels":{"version":"v1"},"resourceVersion":"3",
                "annotations":{"big":"xxxxxxxx"},"ownerReferences":[{"kind":"ReplicaSet"}]},
    "spec":{"nodeName":"node-a","containers":[{"name":"c","image":"i","env":[{"name":"A","value":"B"}]}]},
    "status":{"phase":"Running","podIP":"10.244.1.5","podIPs":[{"ip":"10.244.1.5"}],"conditions":[]}})")));
  std::vector<sluice::config::SourceText> sources;
  store.append_sources(sources);
  json kept = json::parse(sources.at(0).text);
  EXPECT_EQ(kept, json::parse(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"p","namespace":"default","uid":"u1","labels":{"version":"v1"}},
    "spec":{"nodeName":"node-a"},
    "status":{"podIP":"10.244.1.5","podIPs":[{"ip":"10.244.1.5"}]}})"));
}

TEST(ResourceStore, ObjectWithoutNameIsRefused) {
  ResourceStore store(kind_named("Service"));
  EXPECT_THROW(store.apply(event(EventType::Added, json::parse(R"({"metadata":{}})"))), std::runtime_error);
}

// The store's sources are what the loader compiles: the Istio kinds from the
// API become a snapshot, and a bad field is reported at the object's name.
TEST(ResourceStore, SourcesCompileIntoASnapshotAndDiagnosticsNameTheObject) {
  std::vector<sluice::config::SourceText> sources;
  ResourceStore se(kind_named("ServiceEntry"));
  se.apply(event(EventType::Added, json::parse(R"({"apiVersion":"networking.istio.io/v1beta1",
    "kind":"ServiceEntry","metadata":{"name":"productpage","namespace":"default","resourceVersion":"2"},
    "spec":{"hosts":["productpage"],"addresses":["10.96.0.10"],
            "ports":[{"number":9080,"name":"http","protocol":"HTTP"}],"resolution":"STATIC",
            "endpoints":[{"address":"10.1.0.1","labels":{"version":"v1"}},
                         {"address":"10.1.0.2","labels":{"version":"v2"}}]}})")));
  ResourceStore dr(kind_named("DestinationRule"));
  dr.apply(event(EventType::Added, json::parse(R"({"apiVersion":"networking.istio.io/v1beta1",
    "kind":"DestinationRule","metadata":{"name":"productpage","namespace":"default","resourceVersion":"3"},
    "spec":{"host":"productpage","subsets":[{"name":"v1","labels":{"version":"v1"}},
                                            {"name":"v2","labels":{"version":"v2"}}]}})")));
  ResourceStore vs(kind_named("VirtualService"));
  vs.apply(event(EventType::Added, virtual_service(70, "4")));
  se.append_sources(sources);
  dr.append_sources(sources);
  vs.append_sources(sources);
  auto good = sluice::config::compile(sluice::config::parse_sources(sources), 1);
  ASSERT_TRUE(good.ok());
  ASSERT_NE(good.snapshot->find_service("productpage"), nullptr);

  json bad = virtual_service(70, "5");
  bad["spec"]["http"][0]["route"][0]["weight"] = "seventy";
  vs.apply(event(EventType::Modified, bad));
  sources.clear();
  se.append_sources(sources);
  dr.append_sources(sources);
  vs.append_sources(sources);
  auto refused = sluice::config::compile(sluice::config::parse_sources(sources), 2);
  EXPECT_FALSE(refused.ok());
  bool named = false;
  for (const auto& d : refused.diagnostics) {
    named = named || (d.severity == sluice::model::Severity::Error &&
                      d.where.file == "k8s:networking.istio.io/v1beta1/VirtualService/default/productpage");
  }
  EXPECT_TRUE(named);
}
