// The request path promises no heap allocation for matching, destination
// choice, fault/mirror draws, hash keys and policy picks (only a rewrite or
// redirect builds a string, and a policy rebuilds its table when health
// changes). This binary counts every operator new while a request is decided.
#include <gtest/gtest.h>
#include <re2/re2.h>

#include "common/allocation_counter.h"
#include "lb/policy.h"
#include "routing/router.h"

namespace sluice {
namespace {

using test_support::allocations_during;

model::StringMatch match_of(model::StringMatch::Kind kind, std::string value) {
  model::StringMatch m{kind, value, nullptr};
  if (kind == model::StringMatch::Kind::Regex) m.regex = std::make_shared<const RE2>(value);
  return m;
}

TEST(HotPath, TheCounterSeesAllocationsIncludingARewrite) {
  // The harness itself: without this, a broken counter would pass everything.
  // (A direct call: a new-expression pair may be elided by the compiler.)
  EXPECT_EQ(allocations_during([] { ::operator delete(::operator new(16)); }), 1u);
  model::Rewrite rewrite;
  rewrite.uri = "/a-path-longer-than-the-small-string-buffer";
  routing::RequestView request;
  request.path = "/x";
  EXPECT_GE(allocations_during([&] { (void)routing::rewrite_path(rewrite, nullptr, request); }), 1u);
}

TEST(HotPath, DecidingAHeaderRoutedWeightedRequestAllocatesNothing) {
  model::Snapshot snapshot;
  snapshot.services.resize(1);
  snapshot.services[0].subsets.resize(3);
  model::LoadBalancer ring;
  ring.algorithm = model::LbAlgorithm::RingHash;
  ring.hash.source = model::HashKey::Source::Cookie;
  ring.hash.name = "session";
  snapshot.services[0].subsets[2].policy_by_port[9080].load_balancer = ring;

  model::PortRoutes routes;
  model::HttpRoute jason;
  model::HttpMatch m;
  m.uri = match_of(model::StringMatch::Kind::Prefix, "/reviews");
  m.headers = {{"end-user", match_of(model::StringMatch::Kind::Regex, "jas.*")}};
  m.query_params = {{"v", match_of(model::StringMatch::Kind::Exact, "2")}};
  jason.matches = {m};
  jason.route = {{{0, 1, 9080}, 70, 0.7, {}}, {{0, 2, 9080}, 30, 0.3, {}}};
  jason.fault = model::Fault{model::Fault::Delay{std::chrono::milliseconds(5), 50}, std::nullopt};
  jason.mirrors = {model::Mirror{{0, 1, 9080}, 25}};
  routes.http = {model::HttpRoute{}, jason};
  routes.http[0].matches = {model::HttpMatch{}};
  routes.http[0].matches[0].method = match_of(model::StringMatch::Kind::Exact, "DELETE");

  const routing::HeaderField headers[] = {
      {"Host", "productpage"}, {"End-User", "jason"}, {"Cookie", "theme=dark; session=abc"}};
  routing::RequestView request;
  request.method = "GET";
  request.path = "/reviews/1";
  request.query = "v=2";
  request.headers = headers;
  request.port = 9080;
  lb::SeededRandom random(1);

  int forwarded = 0;
  const uint64_t n = allocations_during([&] {
    for (int i = 0; i < 1000; ++i) {
      const routing::RouteDecision d = routing::decide_route(snapshot, routes, request, random);
      forwarded += d.action == routing::RouteDecision::Action::Forward && d.route_index == 1;
    }
  });
  EXPECT_EQ(forwarded, 1000);
  EXPECT_EQ(n, 0u) << "allocations in 1000 decisions";
}

TEST(HotPath, PolicyPicksAllocateNothingOnceBuilt) {
  std::vector<lb::Backend> backends;
  for (uint32_t i = 0; i < 8; ++i) backends.push_back({i, 1 + i % 3, "10.0.0." + std::to_string(i) + ":80"});
  lb::HostSet hosts(backends);
  lb::SeededRandom random(2);
  for (auto algorithm : {model::LbAlgorithm::RoundRobin, model::LbAlgorithm::Random, model::LbAlgorithm::LeastRequest,
                         model::LbAlgorithm::RingHash, model::LbAlgorithm::Maglev}) {
    model::LoadBalancer config;
    config.algorithm = algorithm;
    config.maglev_table_size = 251;
    auto policy = lb::make_policy(config, {hosts, random});
    policy->choose({});   // first pick builds the table
    const uint64_t n = allocations_during([&] {
      for (uint64_t i = 0; i < 1000; ++i) policy->choose({i * 0x9e3779b97f4a7c15ULL});
    });
    EXPECT_EQ(n, 0u) << model::to_string(algorithm);
  }
}

}  // namespace
}  // namespace sluice
