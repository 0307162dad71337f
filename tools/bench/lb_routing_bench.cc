// Cost of the L7 plane's per-request logic: a routing decision and a host
// pick. Each group has a baseline measured in the same run (the cheapest
// thing of its kind), and tools/bench/lb_routing.sh prints ratios to it.
#include <benchmark/benchmark.h>
#include <re2/re2.h>

#include <string>
#include <vector>

#include "lb/policy.h"
#include "routing/router.h"

namespace {

using namespace sluice;

model::StringMatch match_of(model::StringMatch::Kind kind, std::string value) {
  model::StringMatch m{kind, value, nullptr};
  if (kind == model::StringMatch::Kind::Regex) m.regex = std::make_shared<const RE2>(value);
  return m;
}

model::Snapshot one_service() {
  model::Snapshot s;
  s.services.resize(1);
  s.services[0].subsets.resize(3);
  return s;
}

model::HttpRoute catch_all() {
  model::HttpRoute r;
  r.route = {{{0, 1, 9080}, 70, 0.7, {}}, {{0, 2, 9080}, 30, 0.3, {}}};
  return r;
}

const routing::HeaderField kHeaders[] = {{"host", "productpage:9080"},
                                         {"user-agent", "curl/7.88.1"},
                                         {"accept", "*/*"},
                                         {"end-user", "jason"},
                                         {"cookie", "theme=dark; session=abc123"}};

routing::RequestView request() {
  routing::RequestView r;
  r.method = "GET";
  r.path = "/api/v1/products/42/reviews";
  r.query = "page=2&sort=date";
  r.authority = "productpage:9080";
  r.headers = kHeaders;
  r.port = 9080;
  return r;
}

// Baseline: one unconditional route, 70/30 split.
void BM_Route_Baseline_CatchAll(benchmark::State& state) {
  auto snapshot = one_service();
  model::PortRoutes routes;
  routes.http = {catch_all()};
  lb::SeededRandom random(1);
  const auto req = request();
  for (auto _ : state) benchmark::DoNotOptimize(routing::decide_route(snapshot, routes, req, random).destination);
}
BENCHMARK(BM_Route_Baseline_CatchAll);

// Ten routes the request does not match (exact uri, header exact, header
// regex, method, query) before an 11th that matches on prefix + header.
void BM_Route_EleventhOfElevenRoutes(benchmark::State& state) {
  auto snapshot = one_service();
  model::PortRoutes routes;
  for (int i = 0; i < 10; ++i) {
    model::HttpRoute r = catch_all();
    model::HttpMatch m;
    switch (i % 5) {
      case 0: m.uri = match_of(model::StringMatch::Kind::Exact, "/login" + std::to_string(i)); break;
      case 1: m.headers = {{"end-user", match_of(model::StringMatch::Kind::Exact, "alice")}}; break;
      case 2: m.headers = {{"user-agent", match_of(model::StringMatch::Kind::Regex, ".*Mobile.*")}}; break;
      case 3: m.method = match_of(model::StringMatch::Kind::Exact, "DELETE"); break;
      case 4: m.query_params = {{"version", match_of(model::StringMatch::Kind::Exact, "v2")}}; break;
    }
    r.matches = {m};
    routes.http.push_back(r);
  }
  model::HttpRoute hit = catch_all();
  model::HttpMatch m;
  m.uri = match_of(model::StringMatch::Kind::Prefix, "/api/");
  m.headers = {{"end-user", match_of(model::StringMatch::Kind::Exact, "jason")}};
  hit.matches = {m};
  routes.http.push_back(hit);
  lb::SeededRandom random(1);
  const auto req = request();
  for (auto _ : state) benchmark::DoNotOptimize(routing::decide_route(snapshot, routes, req, random).route_index);
}
BENCHMARK(BM_Route_EleventhOfElevenRoutes);

// One route with prefix rewrite: the only decision that builds a string.
void BM_Route_PrefixRewrite(benchmark::State& state) {
  auto snapshot = one_service();
  model::PortRoutes routes;
  model::HttpRoute r = catch_all();
  model::HttpMatch m;
  m.uri = match_of(model::StringMatch::Kind::Prefix, "/api/v1");
  r.matches = {m};
  r.rewrite = model::Rewrite{"/v2", "", std::nullopt, ""};
  routes.http = {r};
  lb::SeededRandom random(1);
  const auto req = request();
  for (auto _ : state) benchmark::DoNotOptimize(routing::decide_route(snapshot, routes, req, random).rewritten_path);
}
BENCHMARK(BM_Route_PrefixRewrite);

template <model::LbAlgorithm kAlgorithm, bool kWeighted>
void BM_Pick(benchmark::State& state) {
  const auto hosts_n = static_cast<uint32_t>(state.range(0));
  std::vector<lb::Backend> backends;
  for (uint32_t i = 0; i < hosts_n; ++i) {
    backends.push_back({i, kWeighted ? 1 + i % 4 : 1, "10.200." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":9080/tcp"});
  }
  lb::HostSet hosts(backends);
  lb::SeededRandom random(1);
  model::LoadBalancer config;
  config.algorithm = kAlgorithm;
  auto policy = lb::make_policy(config, {hosts, random});
  uint64_t key = 0;
  for (auto _ : state) {
    key += 0x9e3779b97f4a7c15ULL;
    benchmark::DoNotOptimize(policy->choose({key}).host);
  }
}
// Baseline: RANDOM over equal weights (one draw, one modulo).
BENCHMARK(BM_Pick<model::LbAlgorithm::Random, false>)->Name("BM_Pick_Baseline_RandomEqual")->Arg(8)->Arg(256);
BENCHMARK(BM_Pick<model::LbAlgorithm::Random, true>)->Name("BM_Pick_RandomWeighted")->Arg(8)->Arg(256);
BENCHMARK(BM_Pick<model::LbAlgorithm::RoundRobin, true>)->Name("BM_Pick_RoundRobinWeighted")->Arg(8)->Arg(256);
BENCHMARK(BM_Pick<model::LbAlgorithm::LeastRequest, false>)->Name("BM_Pick_LeastRequestP2C")->Arg(8)->Arg(256);
BENCHMARK(BM_Pick<model::LbAlgorithm::LeastRequest, true>)->Name("BM_Pick_LeastRequestWeighted")->Arg(8)->Arg(256);
BENCHMARK(BM_Pick<model::LbAlgorithm::RingHash, true>)->Name("BM_Pick_RingHash")->Arg(8)->Arg(256);
BENCHMARK(BM_Pick<model::LbAlgorithm::Maglev, true>)->Name("BM_Pick_Maglev")->Arg(8)->Arg(256);

}  // namespace

BENCHMARK_MAIN();
