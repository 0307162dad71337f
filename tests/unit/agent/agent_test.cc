#include "agent/agent.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace sluice::agent {
namespace {

using model::Diagnostic;
using model::Severity;
using model::Snapshot;
using model::SnapshotPtr;

// A one-service snapshot: productpage with subsets v1, v2 and one L4 port.
SnapshotPtr productpage(uint64_t version, uint32_t w1, uint32_t w2, std::string origin = "files") {
  auto s = std::make_shared<Snapshot>();
  s->version = version;
  s->origin = std::move(origin);
  model::Service svc;
  svc.host = "productpage";
  svc.subsets.resize(3);
  svc.subsets[1].name = "v1";
  svc.subsets[2].name = "v2";
  svc.ports.push_back({9081, model::Protocol::TCP, "tcp", 0});
  model::PortRoutes r;
  r.port = 9081;
  r.l4.push_back({{0, 1, 9081}, w1, w1 / double(w1 + w2), {}});
  r.l4.push_back({{0, 2, 9081}, w2, w2 / double(w1 + w2), {}});
  svc.routes.push_back(r);
  s->services.push_back(svc);
  s->service_by_host["productpage"] = 0;
  return s;
}

class RecordingPlane : public DataPlane {
 public:
  explicit RecordingPlane(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void apply(const SnapshotPtr& s) override {
    if (fail_next) {
      fail_next = false;
      throw std::runtime_error("map full");
    }
    applied.push_back(s->version);
  }
  std::vector<uint64_t> applied;
  bool fail_next = false;

 private:
  std::string name_;
};

struct Fixture {
  RecordingPlane l4{"xdp"};
  RecordingPlane l7{"proxy"};
  CompileOutcome next;   // what the "files" compile to
  Agent agent{[this](uint64_t v) {
                CompileOutcome out = next;
                if (out.snapshot) {
                  auto copy = std::make_shared<Snapshot>(*out.snapshot);
                  copy->version = v;
                  out.snapshot = copy;
                }
                return out;
              },
              [](const Snapshot& base, const std::string& host, const SubsetWeights& w, uint64_t v) {
                OverrideOutcome out;
                if (host != "productpage") {
                  out.error = "no service '" + host + "'";
                  return out;
                }
                out.snapshot = productpage(v, w[0].second, w[1].second, "files+override");
                (void)base;
                return out;
              },
              {&l4, &l7}};
};

TEST(Agent, ValidFilesApplyToEveryPlaneWithIncreasingVersions) {
  Fixture f;
  f.next.snapshot = productpage(0, 70, 30);
  ASSERT_TRUE(f.agent.reload_from_files());
  ASSERT_TRUE(f.agent.reload_from_files());
  EXPECT_EQ(f.l4.applied, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(f.l7.applied, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(f.agent.status().version, 2u);
  EXPECT_EQ(f.agent.status().reloads_ok, 2u);
}

TEST(Agent, InvalidFilesChangeNothingAndKeepTheError) {
  Fixture f;
  f.next.snapshot = productpage(0, 70, 30);
  ASSERT_TRUE(f.agent.reload_from_files());
  f.next.snapshot = nullptr;
  f.next.diagnostics = {Diagnostic{Severity::Error, {"vs.yaml", 9, 5}, "unknown subset \"v3\""}};
  EXPECT_FALSE(f.agent.reload_from_files());
  EXPECT_EQ(f.l4.applied.size(), 1u);
  EXPECT_EQ(f.agent.current()->version, 1u);
  auto st = f.agent.status();
  ASSERT_TRUE(st.last_error);
  ASSERT_EQ(st.last_error->messages.size(), 1u);
  EXPECT_EQ(st.last_error->messages[0], "vs.yaml:9:5: error: unknown subset \"v3\"");
  EXPECT_EQ(st.reloads_failed, 1u);
}

TEST(Agent, PlaneFailureRollsBackPlanesAlreadySwitched) {
  Fixture f;
  f.next.snapshot = productpage(0, 70, 30);
  ASSERT_TRUE(f.agent.reload_from_files());
  f.l7.fail_next = true;
  EXPECT_FALSE(f.agent.reload_from_files());
  // xdp took version 2, then went back to version 1 when the proxy refused.
  EXPECT_EQ(f.l4.applied, (std::vector<uint64_t>{1, 2, 1}));
  EXPECT_EQ(f.agent.current()->version, 1u);
  ASSERT_TRUE(f.agent.status().last_error);
  EXPECT_NE(f.agent.status().last_error->messages[0].find("proxy: map full"), std::string::npos);
}

TEST(Agent, OverrideSurvivesAReloadThatLeavesItsRoutesAlone) {
  Fixture f;
  f.next.snapshot = productpage(0, 70, 30);
  ASSERT_TRUE(f.agent.reload_from_files());
  ASSERT_EQ(f.agent.set_weights("productpage", {{"v1", 50}, {"v2", 50}}), "");
  // Another file changed (here: nothing of productpage's routes).
  ASSERT_TRUE(f.agent.reload_from_files());
  auto st = f.agent.status();
  EXPECT_EQ(st.version, 3u);
  EXPECT_EQ(st.origin, "files+override");
  ASSERT_EQ(st.overrides.count("productpage"), 1u);
  EXPECT_EQ(f.agent.current()->services[0].routes[0].l4[0].weight, 50u);
  EXPECT_EQ(f.l4.applied.back(), 3u);
}

TEST(Agent, FileChangeToTheOverriddenRouteReplacesTheOverride) {
  Fixture f;
  f.next.snapshot = productpage(0, 70, 30);
  ASSERT_TRUE(f.agent.reload_from_files());
  ASSERT_EQ(f.agent.set_weights("productpage", {{"v1", 50}, {"v2", 50}}), "");
  f.next.snapshot = productpage(0, 90, 10);   // the files' own weights for the route changed: they win
  ASSERT_TRUE(f.agent.reload_from_files());
  EXPECT_TRUE(f.agent.status().overrides.empty());
  EXPECT_EQ(f.agent.status().origin, "files");
  EXPECT_EQ(f.agent.current()->services[0].routes[0].l4[0].weight, 90u);
}

TEST(RouteDestinations, DescribeHostsSubsetsAndWeightsPerPort) {
  EXPECT_EQ(route_destinations(*productpage(1, 70, 30), "productpage"), "9081:l4[v1=70 v2=30];");
  EXPECT_NE(route_destinations(*productpage(1, 70, 30), "productpage"),
            route_destinations(*productpage(1, 71, 29), "productpage"));
  EXPECT_EQ(route_destinations(*productpage(1, 70, 30), "reviews"), "");
}

// productpage with a client view (namespace "a") whose routes are its own
// DestinationRule's subsets 3 and 4, named v1 and v2, weighted w1/w2.
SnapshotPtr productpage_with_view(uint32_t w1, uint32_t w2, bool default_virtual_service) {
  auto s = std::make_shared<Snapshot>(*productpage(1, 70, 30));
  model::Service& svc = s->services[0];
  svc.default_subsets = 3;
  svc.subsets.resize(5);
  svc.subsets[3].name = "v1";
  svc.subsets[4].name = "v2";
  model::ServiceView v;
  v.namespaces = {"a"};
  v.destination_rule = "a/mine";
  v.default_virtual_service = default_virtual_service;
  v.first_subset = 2;
  v.subset_count = 3;
  model::PortRoutes r;
  r.port = 9081;
  r.l4.push_back({{0, 3, 9081}, w1, w1 / double(w1 + w2), {}});
  r.l4.push_back({{0, 4, 9081}, w2, w2 / double(w1 + w2), {}});
  v.routes.push_back(r);
  svc.views.push_back(v);
  return s;
}

TEST(RouteDestinations, AClientViewComingOrGoingIsNotARouteChange) {
  // A namespace gaining a DestinationRule of its own (a view of the same
  // VirtualService) or a VirtualService of its own: the host's routes, as
  // an override reads them, are the same.
  EXPECT_EQ(route_destinations(*productpage_with_view(70, 30, true), "productpage"),
            route_destinations(*productpage(1, 70, 30), "productpage"));
  EXPECT_EQ(route_destinations(*productpage_with_view(60, 40, false), "productpage"),
            route_destinations(*productpage(1, 70, 30), "productpage"));
}

TEST(Agent, OverrideSurvivesANewClientViewAndCoversIt) {
  RecordingPlane l4{"xdp"}, l7{"proxy"};
  CompileOutcome next;
  std::vector<size_t> views_seen;   // client views in each snapshot the override was applied to
  Agent agent{[&next](uint64_t v) {
                CompileOutcome out = next;
                auto copy = std::make_shared<Snapshot>(*out.snapshot);
                copy->version = v;
                out.snapshot = copy;
                return out;
              },
              [&views_seen](const Snapshot& base, const std::string&, const SubsetWeights& w, uint64_t v) {
                views_seen.push_back(base.services[0].views.size());
                OverrideOutcome out;
                out.snapshot = productpage(v, w[0].second, w[1].second, "files+override");
                return out;
              },
              {&l4, &l7}};
  next.snapshot = productpage(0, 70, 30);
  ASSERT_TRUE(agent.reload_from_files());
  ASSERT_EQ(agent.set_weights("productpage", {{"v1", 10}, {"v2", 90}}), "");
  // Namespace "a" gets a DestinationRule of its own: a view of the same VirtualService.
  next.snapshot = productpage_with_view(70, 30, true);
  ASSERT_TRUE(agent.reload_from_files());
  EXPECT_EQ(agent.status().overrides.count("productpage"), 1u);
  EXPECT_EQ(agent.status().origin, "files+override");
  EXPECT_EQ(views_seen, (std::vector<size_t>{0, 1}));   // the reload's override saw the new view
  EXPECT_EQ(agent.current()->services[0].routes[0].l4[0].weight, 10u);
}

TEST(Agent, ChangeLogRecordsAppliedAndRefusedChangesInOrder) {
  Fixture f;
  f.next.snapshot = productpage(0, 70, 30);
  ASSERT_TRUE(f.agent.reload_from_files());
  EXPECT_EQ(f.agent.set_weights("productpage", {{"v1", 50}, {"v2", 50}}), "");
  f.next.snapshot = nullptr;
  f.next.diagnostics = {Diagnostic{Severity::Error, {"vs.yaml", 9, 5}, "unknown subset \"v3\""}};
  EXPECT_FALSE(f.agent.reload_from_files());
  const auto changes = f.agent.changes();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].kind, "files");
  EXPECT_EQ(changes[1].kind, "override");
  EXPECT_EQ(changes[1].version, 2u);
  EXPECT_NE(changes[1].what.find("weights"), std::string::npos) << changes[1].what;
  EXPECT_EQ(changes[2].kind, "refused");
  EXPECT_EQ(changes[2].version, 2u);   // the version still serving
  EXPECT_EQ(changes[2].what, "vs.yaml:9:5: error: unknown subset \"v3\"");
  EXPECT_LE(changes[0].when, changes[2].when);
}

TEST(Agent, OverrideOfUnknownHostIsRefusedWithReason) {
  Fixture f;
  f.next.snapshot = productpage(0, 70, 30);
  ASSERT_TRUE(f.agent.reload_from_files());
  EXPECT_EQ(f.agent.set_weights("reviews", {{"v1", 1}}), "no service 'reviews'");
  EXPECT_EQ(f.agent.current()->version, 1u);
}

TEST(DescribeChanges, NamesWeightShiftPerPort) {
  auto a = productpage(1, 70, 30);
  auto b = productpage(2, 50, 50);
  EXPECT_EQ(describe_changes(a.get(), *b), "productpage:9081 weights v1=70 v2=30 -> v1=50 v2=50");
  EXPECT_EQ(describe_changes(a.get(), *a), "no routing change");
  EXPECT_EQ(describe_changes(nullptr, *a), "1 services, 0 endpoints");
}

}  // namespace
}  // namespace sluice::agent
