#include "routing/router.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <vector>

#include "lb/backend.h"

namespace sluice::routing {
namespace {

using model::StringMatch;
using Action = RouteDecision::Action;

StringMatch exact(std::string v) { return StringMatch{StringMatch::Kind::Exact, std::move(v), nullptr}; }
StringMatch prefix(std::string v) { return StringMatch{StringMatch::Kind::Prefix, std::move(v), nullptr}; }
StringMatch regex(std::string v, bool ignore_case = false) {
  RE2::Options options;
  options.set_case_sensitive(!ignore_case);
  auto re = std::make_shared<const RE2>(v, options);
  return StringMatch{StringMatch::Kind::Regex, std::move(v), re};
}

model::KeyMatch key(std::string name, std::optional<StringMatch> m = std::nullopt) {
  return model::KeyMatch{std::move(name), std::move(m)};
}

model::WeightedDestination to(uint32_t subset, double share, uint32_t weight = 0) {
  model::WeightedDestination d;
  d.destination = {0, subset, 9080};
  d.share = share;
  d.weight = weight;
  return d;
}

model::HttpRoute route_named(std::string name, std::vector<model::HttpMatch> matches) {
  model::HttpRoute r;
  r.name = std::move(name);
  r.matches = std::move(matches);
  r.route = {to(1, 1.0, 100)};
  return r;
}

// productpage with subsets "" (whole service), v1, v2; v2 hashes by policy
// set per test.
model::Snapshot snapshot_with_policy(model::LoadBalancer v2_policy) {
  model::Snapshot s;
  model::Service svc;
  svc.host = "productpage";
  svc.subsets.resize(3);
  svc.subsets[1].name = "v1";
  svc.subsets[2].name = "v2";
  svc.subsets[2].policy_by_port[9080].load_balancer = v2_policy;
  s.services.push_back(svc);
  return s;
}

struct Request {
  std::vector<HeaderField> headers;
  RequestView view;
  Request(std::string_view method, std::string_view path, std::string_view query = "",
          std::vector<HeaderField> h = {})
      : headers(std::move(h)) {
    view.method = method;
    view.path = path;
    view.query = query;
    view.authority = "productpage:9080";
    view.headers = headers;
    view.port = 9080;
  }
  // Copies would leave view.headers pointing at the source's vector.
  Request(const Request&) = delete;
};

bool match_one(const model::HttpMatch& m, const Request& r) { return matches(m, r.view); }

TEST(HttpMatch, UriExactPrefixAndRegex) {
  model::HttpMatch m;
  m.uri = exact("/productpage");
  EXPECT_TRUE(match_one(m, Request("GET", "/productpage")));
  EXPECT_FALSE(match_one(m, Request("GET", "/productpage/x")));
  m.uri = prefix("/api/");
  EXPECT_TRUE(match_one(m, Request("GET", "/api/v1/users")));
  EXPECT_FALSE(match_one(m, Request("GET", "/apix")));
  m.uri = regex("/users/[0-9]+");
  EXPECT_TRUE(match_one(m, Request("GET", "/users/42")));
  EXPECT_FALSE(match_one(m, Request("GET", "/users/42/x"))) << "regex must match the whole path";
}

TEST(HttpMatch, UriMatchIgnoresQueryString) {
  model::HttpMatch m;
  m.uri = exact("/login");
  EXPECT_TRUE(match_one(m, Request("GET", "/login", "next=/home")));
}

TEST(HttpMatch, IgnoreUriCaseAppliesToExactAndPrefix) {
  model::HttpMatch m;
  m.ignore_uri_case = true;
  m.uri = exact("/Login");
  EXPECT_TRUE(match_one(m, Request("GET", "/LOGIN")));
  m.uri = prefix("/API");
  EXPECT_TRUE(match_one(m, Request("GET", "/api/v1")));
  m.ignore_uri_case = false;
  EXPECT_FALSE(match_one(m, Request("GET", "/api/v1")));
}

TEST(HttpMatch, HeadersMatchByValueOrPresenceWithCaseInsensitiveNames) {
  model::HttpMatch m;
  m.headers = {key("end-user", exact("jason")), key("x-canary")};
  EXPECT_TRUE(match_one(m, Request("GET", "/", "", {{"End-User", "jason"}, {"X-Canary", ""}})));
  EXPECT_FALSE(match_one(m, Request("GET", "/", "", {{"end-user", "jason"}}))) << "x-canary absent";
  EXPECT_FALSE(match_one(m, Request("GET", "/", "", {{"end-user", "Jason"}, {"x-canary", "1"}})));
  m.headers = {key("user-agent", regex(".*Mobile.*")), key("cookie", prefix("session="))};
  EXPECT_TRUE(match_one(m, Request("GET", "/", "", {{"user-agent", "X Mobile Y"}, {"cookie", "session=1"}})));
}

TEST(HttpMatch, WithoutHeadersRejectsWhenAnyListedHeaderMatches) {
  model::HttpMatch m;
  m.without_headers = {key("x-debug"), key("end-user", exact("jason"))};
  EXPECT_TRUE(match_one(m, Request("GET", "/", "", {{"end-user", "alice"}})));
  EXPECT_FALSE(match_one(m, Request("GET", "/", "", {{"x-debug", "0"}})));
  EXPECT_FALSE(match_one(m, Request("GET", "/", "", {{"end-user", "jason"}})));
}

TEST(HttpMatch, MethodAuthoritySchemeAndPort) {
  model::HttpMatch m;
  m.method = exact("POST");
  m.authority = prefix("productpage");
  m.scheme = exact("http");
  m.port = 9080;
  EXPECT_TRUE(match_one(m, Request("POST", "/")));
  EXPECT_FALSE(match_one(m, Request("GET", "/")));
  m.port = 9081;
  EXPECT_FALSE(match_one(m, Request("POST", "/")));
}

TEST(HttpMatch, QueryParamsMatchExactRegexOrPresence) {
  model::HttpMatch m;
  m.query_params = {key("version", exact("v2")), key("debug"), key("id", regex("[0-9]+"))};
  EXPECT_TRUE(match_one(m, Request("GET", "/", "id=7&version=v2&debug")));
  EXPECT_FALSE(match_one(m, Request("GET", "/", "id=7&version=v22&debug")));
  EXPECT_FALSE(match_one(m, Request("GET", "/", "id=x&version=v2&debug")));
  EXPECT_FALSE(match_one(m, Request("GET", "/", "id=7&version=v2")));
}

TEST(HttpMatch, AllConditionsOfABlockMustHold) {
  model::HttpMatch m;
  m.uri = prefix("/reviews");
  m.headers = {key("end-user", exact("jason"))};
  EXPECT_FALSE(match_one(m, Request("GET", "/reviews/1")));
  EXPECT_FALSE(match_one(m, Request("GET", "/ratings", "", {{"end-user", "jason"}})));
  EXPECT_TRUE(match_one(m, Request("GET", "/reviews/1", "", {{"end-user", "jason"}})));
}

TEST(FindRoute, AnyBlockOfARouteSufficesAndFirstRouteWins) {
  model::PortRoutes routes;
  model::HttpMatch login, logout, api;
  login.uri = exact("/login");
  logout.uri = exact("/logout");
  api.uri = prefix("/");
  routes.http = {route_named("auth", {login, logout}), route_named("api", {api}), route_named("never", {})};
  uint32_t index = 99;
  EXPECT_EQ(find_route(routes, Request("GET", "/logout").view, &index)->name, "auth");
  EXPECT_EQ(index, 0u);
  EXPECT_EQ(find_route(routes, Request("GET", "/x").view, &index)->name, "api");
  EXPECT_EQ(index, 1u);
}

TEST(FindRoute, RouteWithoutMatchesCatchesEverything) {
  model::PortRoutes routes;
  routes.http = {route_named("default", {})};
  EXPECT_NE(find_route(routes, Request("DELETE", "/anything").view), nullptr);
}

TEST(DecideRoute, NoMatchingRouteAnswersNotFound) {
  model::PortRoutes routes;
  model::HttpMatch m;
  m.uri = exact("/only");
  routes.http = {route_named("only", {m})};
  auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(1);
  const RouteDecision d = decide_route(snapshot, routes, Request("GET", "/other").view, random);
  EXPECT_EQ(d.action, Action::NotFound);
  EXPECT_EQ(d.route, nullptr);
}

TEST(DecideRoute, DestinationsFollowSharesPerRequest) {
  // 100,000 requests at 70/30: sd 145; +-1 point (1,000) is ~7 sd.
  model::PortRoutes routes;
  routes.http = {route_named("split", {})};
  routes.http[0].route = {to(1, 0.7, 70), to(2, 0.3, 30)};
  auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(2);
  int v1 = 0;
  Request r("GET", "/");
  for (int i = 0; i < 100000; ++i) {
    const RouteDecision d = decide_route(snapshot, routes, r.view, random);
    ASSERT_EQ(d.action, Action::Forward);
    v1 += d.destination->destination.subset == 1;
  }
  EXPECT_NEAR(v1, 70000, 1000);
}

TEST(DecideRoute, ZeroShareDestinationIsNeverChosen) {
  model::PortRoutes routes;
  routes.http = {route_named("all-v2", {})};
  routes.http[0].route = {to(1, 0.0, 0), to(2, 1.0, 100)};
  auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(3);
  Request r("GET", "/");
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(decide_route(snapshot, routes, r.view, random).destination->destination.subset, 2u);
  }
}

TEST(DecideRoute, SameSeedGivesSameDecisions) {
  model::PortRoutes routes;
  routes.http = {route_named("split", {})};
  routes.http[0].route = {to(1, 0.5), to(2, 0.5)};
  auto snapshot = snapshot_with_policy({});
  Request r("GET", "/");
  auto run = [&](uint64_t seed) {
    lb::SeededRandom random(seed);
    std::vector<uint32_t> subsets;
    for (int i = 0; i < 64; ++i) subsets.push_back(decide_route(snapshot, routes, r.view, random).destination->destination.subset);
    return subsets;
  };
  EXPECT_EQ(run(9), run(9));
}

TEST(DecideRoute, FaultDelayAndAbortApplyAtTheirPercentages) {
  // 40,000 requests: delay at 25% (sd 0.22 points), abort at 10% (sd 0.15
  // points); +-1.5 points is > 6 sd for both.
  model::PortRoutes routes;
  routes.http = {route_named("faulty", {})};
  routes.http[0].fault = model::Fault{model::Fault::Delay{std::chrono::milliseconds(500), 25},
                                      model::Fault::Abort{503, 10}};
  auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(4);
  Request r("GET", "/");
  int delayed = 0, aborted = 0;
  for (int i = 0; i < 40000; ++i) {
    const RouteDecision d = decide_route(snapshot, routes, r.view, random);
    if (d.fault_delay) {
      ++delayed;
      ASSERT_EQ(*d.fault_delay, std::chrono::milliseconds(500));
    }
    if (d.fault_abort_status) {
      ++aborted;
      ASSERT_EQ(*d.fault_abort_status, 503u);
    }
  }
  EXPECT_NEAR(delayed / 400.0, 25, 1.5);
  EXPECT_NEAR(aborted / 400.0, 10, 1.5);
}

TEST(DecideRoute, FaultAtHundredPercentAlwaysAndZeroNever) {
  model::PortRoutes routes;
  routes.http = {route_named("faulty", {})};
  routes.http[0].fault = model::Fault{model::Fault::Delay{std::chrono::seconds(1), 0}, model::Fault::Abort{418, 100}};
  auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(5);
  Request r("GET", "/");
  for (int i = 0; i < 1000; ++i) {
    const RouteDecision d = decide_route(snapshot, routes, r.view, random);
    ASSERT_FALSE(d.fault_delay);
    ASSERT_EQ(d.fault_abort_status, 418u);
  }
}

TEST(DecideRoute, MirrorsAtTheirPercentage) {
  // 20,000 requests at 50%: sd 0.35 points; +-2 points.
  model::PortRoutes routes;
  routes.http = {route_named("mirrored", {})};
  routes.http[0].mirrors = {model::Mirror{{0, 2, 9080}, 50}, model::Mirror{{0, 1, 9080}, 100}};
  auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(6);
  Request r("GET", "/");
  int first = 0;
  for (int i = 0; i < 20000; ++i) {
    const RouteDecision d = decide_route(snapshot, routes, r.view, random);
    ASSERT_TRUE(d.mirror_mask & 2u) << "100% mirror";
    first += (d.mirror_mask & 1u) != 0;
  }
  EXPECT_NEAR(first / 200.0, 50, 2);
}

RouteDecision decide_with_rewrite(const model::Rewrite& rewrite, std::optional<StringMatch> uri, const Request& r) {
  static model::PortRoutes routes;
  model::HttpMatch m;
  m.uri = std::move(uri);
  routes.http = {route_named("rewrite", {m})};
  routes.http[0].rewrite = rewrite;
  static auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(7);
  return decide_route(snapshot, routes, r.view, random);
}

TEST(Rewrite, UriReplacesTheMatchedPrefixAndKeepsTheQuery) {
  model::Rewrite rw;
  rw.uri = "/v2";
  auto d = decide_with_rewrite(rw, prefix("/api"), Request("GET", "/api/users", "page=2"));
  EXPECT_EQ(d.rewritten_path, "/v2/users?page=2");
}

TEST(Rewrite, PrefixToSlashGivesADoubleSlashAsInIstio) {
  // Istio's documented behaviour: prefix "/foo" rewritten to "/" on "/foo/bar"
  // yields "//bar"; users write the prefix with a trailing slash to avoid it.
  model::Rewrite rw;
  rw.uri = "/";
  EXPECT_EQ(decide_with_rewrite(rw, prefix("/foo"), Request("GET", "/foo/bar")).rewritten_path, "//bar");
  EXPECT_EQ(decide_with_rewrite(rw, prefix("/foo/"), Request("GET", "/foo/bar")).rewritten_path, "/bar");
}

TEST(Rewrite, ExactMatchReplacesTheWholePath) {
  model::Rewrite rw;
  rw.uri = "/new";
  EXPECT_EQ(decide_with_rewrite(rw, exact("/old/page"), Request("GET", "/old/page")).rewritten_path, "/new");
}

TEST(Rewrite, RegexRewriteSubstitutesCaptureGroups) {
  model::Rewrite rw;
  rw.uri_regex = regex("^/service/([^/]+)(/.*)$");
  rw.uri_regex_rewrite = "\\2/instance/\\1";
  auto d = decide_with_rewrite(rw, prefix("/service"), Request("GET", "/service/foo/v1/api"));
  EXPECT_EQ(d.rewritten_path, "/v1/api/instance/foo");
}

TEST(Rewrite, AuthorityOnlyLeavesThePathAlone) {
  model::Rewrite rw;
  rw.authority = "reviews.internal";
  auto d = decide_with_rewrite(rw, std::nullopt, Request("GET", "/x"));
  EXPECT_FALSE(d.rewritten_path);
  EXPECT_EQ(d.rewritten_authority, "reviews.internal");
}

TEST(Redirect, LocationReplacesPathAndAuthorityAndKeepsTheQuery) {
  model::Redirect rd;
  rd.uri = "/v1/bookRatings";
  rd.authority = "newratings.default.svc.cluster.local";
  Request r("GET", "/v1/getProductRatings", "id=3");
  EXPECT_EQ(redirect_location(rd, r.view), "http://newratings.default.svc.cluster.local/v1/bookRatings?id=3");
}

TEST(Redirect, PortReplacesTheRequestPortAndDefaultPortsAreOmitted) {
  model::Redirect rd;
  rd.port = 8443;
  rd.scheme = "https";
  Request r("GET", "/a");
  EXPECT_EQ(redirect_location(rd, r.view), "https://productpage:8443/a");
  rd.port = 443;
  EXPECT_EQ(redirect_location(rd, r.view), "https://productpage/a");
}

TEST(Redirect, DecisionCarriesStatusAndSkipsDestinations) {
  model::PortRoutes routes;
  routes.http = {route_named("moved", {})};
  routes.http[0].route.clear();
  routes.http[0].redirect = model::Redirect{"/new", "", "", 0, 308};
  auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(8);
  auto d = decide_route(snapshot, routes, Request("GET", "/old").view, random);
  EXPECT_EQ(d.action, Action::Redirect);
  EXPECT_EQ(d.redirect_status, 308u);
  EXPECT_EQ(d.location, "http://productpage:9080/new");
  EXPECT_EQ(d.destination, nullptr);
}

TEST(DirectResponse, DecisionPointsAtTheRoute) {
  model::PortRoutes routes;
  routes.http = {route_named("teapot", {})};
  routes.http[0].route.clear();
  routes.http[0].direct_response = model::DirectResponse{418, "short and stout"};
  auto snapshot = snapshot_with_policy({});
  lb::SeededRandom random(9);
  auto d = decide_route(snapshot, routes, Request("GET", "/").view, random);
  EXPECT_EQ(d.action, Action::DirectResponse);
  EXPECT_EQ(d.route->direct_response->status, 418u);
}

model::LoadBalancer hashing_on(model::HashKey::Source source, std::string name = "",
                               model::LbAlgorithm algorithm = model::LbAlgorithm::RingHash) {
  model::LoadBalancer policy;
  policy.algorithm = algorithm;
  policy.hash.source = source;
  policy.hash.name = std::move(name);
  return policy;
}

RouteDecision decide_to_v2(const model::Snapshot& snapshot, const RequestView& view) {
  static model::PortRoutes routes;
  routes.http = {route_named("to-v2", {})};
  routes.http[0].route = {to(2, 1.0, 100)};
  lb::SeededRandom random(10);
  return decide_route(snapshot, routes, view, random);
}

TEST(HashKey, HeaderValueIsHashedAndAbsentHeaderGivesNone) {
  auto snapshot = snapshot_with_policy(hashing_on(model::HashKey::Source::Header, "x-user"));
  Request alice("GET", "/", "", {{"X-User", "alice"}});
  Request alice_again("GET", "/other", "", {{"x-user", "alice"}});
  Request bob("GET", "/", "", {{"x-user", "bob"}});
  Request nobody("GET", "/");
  EXPECT_EQ(decide_to_v2(snapshot, alice.view).hash_key, lb::hash64("alice"));
  EXPECT_EQ(decide_to_v2(snapshot, alice_again.view).hash_key, decide_to_v2(snapshot, alice.view).hash_key);
  EXPECT_NE(decide_to_v2(snapshot, bob.view).hash_key, decide_to_v2(snapshot, alice.view).hash_key);
  EXPECT_FALSE(decide_to_v2(snapshot, nobody.view).hash_key);
}

TEST(HashKey, CookieIsFoundAmongOthersAndAMissingTtlCookieIsToBeSet) {
  auto policy = hashing_on(model::HashKey::Source::Cookie, "session", model::LbAlgorithm::Maglev);
  policy.hash.cookie_ttl = std::chrono::seconds(60);
  auto snapshot = snapshot_with_policy(policy);
  Request with("GET", "/", "", {{"cookie", "theme=dark; session=abc123"}, {"cookie", "x=1"}});
  auto d = decide_to_v2(snapshot, with.view);
  EXPECT_EQ(d.hash_key, lb::hash64("abc123"));
  EXPECT_EQ(d.cookie_to_set, nullptr);
  Request without("GET", "/", "", {{"cookie", "theme=dark"}});
  d = decide_to_v2(snapshot, without.view);
  EXPECT_FALSE(d.hash_key);
  ASSERT_NE(d.cookie_to_set, nullptr);
  EXPECT_EQ(d.cookie_to_set->name, "session");
}

TEST(HashKey, SourceIpHashesTheAddressBytesOfEitherFamily) {
  auto snapshot = snapshot_with_policy(hashing_on(model::HashKey::Source::SourceIp));
  Request a("GET", "/"), b("GET", "/"), c("GET", "/");
  a.view.source = *model::IpAddress::parse("10.200.1.2");
  b.view.source = *model::IpAddress::parse("10.200.1.2");
  c.view.source = *model::IpAddress::parse("fd00:200:1::2");
  EXPECT_TRUE(decide_to_v2(snapshot, a.view).hash_key);
  EXPECT_EQ(decide_to_v2(snapshot, a.view).hash_key, decide_to_v2(snapshot, b.view).hash_key);
  EXPECT_NE(decide_to_v2(snapshot, a.view).hash_key, decide_to_v2(snapshot, c.view).hash_key);
}

TEST(HashKey, QueryParameterValueIsHashed) {
  auto snapshot = snapshot_with_policy(hashing_on(model::HashKey::Source::QueryParameter, "tenant"));
  Request r("GET", "/", "a=1&tenant=acme");
  EXPECT_EQ(decide_to_v2(snapshot, r.view).hash_key, lb::hash64("acme"));
}

TEST(HashKey, NonHashingPolicyGivesNoKey) {
  model::LoadBalancer policy;
  policy.algorithm = model::LbAlgorithm::LeastRequest;
  policy.hash.source = model::HashKey::Source::Header;
  policy.hash.name = "x-user";
  auto snapshot = snapshot_with_policy(policy);
  Request r("GET", "/", "", {{"x-user", "alice"}});
  EXPECT_FALSE(decide_to_v2(snapshot, r.view).hash_key);
}

}  // namespace
}  // namespace sluice::routing
