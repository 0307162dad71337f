// The JSON of `sluicectl explain --json` and /config_dump, checked on the
// examples by content (parsed, not compared with a golden file).
#include <gtest/gtest.h>

#include "config/snapshot_json.h"
#include "config/weight_override.h"
#include "config_test_support.h"
#include "config/explain_text.h"

namespace sluice::config {
namespace {

using namespace testing;
using nlohmann::json;

json example_json(const std::string& dir) {
  auto r = compile_paths({source_root() + "/docs/examples/" + dir}, 5);
  EXPECT_TRUE(r.ok()) << diagnostics_text(r);
  if (!r.ok()) return json();
  return json::parse(snapshot_json_text(*r.snapshot));
}

const json& port(const json& service, uint32_t number) {
  for (const auto& p : service.at("ports")) {
    if (p.at("number") == number) return p;
  }
  throw std::runtime_error("no port " + std::to_string(number));
}

const json& subset(const json& service, const std::string& name) {
  for (const auto& s : service.at("subsets")) {
    if (s.at("name") == name) return s;
  }
  throw std::runtime_error("no subset " + name);
}

TEST(SnapshotJson, ProductpageShowsVipsPortsPlanesRoutesSubsetsAndEndpoints) {
  const json j = example_json("productpage");
  EXPECT_EQ(j.at("schema"), 1);
  EXPECT_EQ(j.at("version"), 5);
  EXPECT_EQ(j.at("origin"), "files");
  EXPECT_EQ(j.at("source_files").size(), 3u);
  ASSERT_EQ(j.at("services").size(), 1u);
  const json& svc = j["services"][0];
  EXPECT_EQ(svc.at("host"), "productpage");
  EXPECT_EQ(svc.at("namespace"), "default");
  EXPECT_EQ(svc.at("vips"), json::array({"10.96.0.10"}));
  EXPECT_EQ(svc.at("destination_rule"), "productpage");
  EXPECT_EQ(svc.at("virtual_services"), json::array({"productpage"}));

  const json& http = port(svc, 9080);
  EXPECT_EQ(http.at("plane"), "L7");
  EXPECT_EQ(http.at("protocol"), "HTTP");
  EXPECT_TRUE(http.at("l4").is_null());
  ASSERT_EQ(http.at("http_routes").size(), 1u);
  const json& route = http["http_routes"][0];
  EXPECT_TRUE(route.at("matches").empty());
  ASSERT_EQ(route.at("route").size(), 2u);
  EXPECT_EQ(route["route"][0].at("subset"), "v1");
  EXPECT_EQ(route["route"][0].at("weight"), 70);
  EXPECT_DOUBLE_EQ(route["route"][0].at("share").get<double>(), 0.7);
  EXPECT_EQ(route["route"][1].at("subset"), "v2");
  EXPECT_DOUBLE_EQ(route["route"][1].at("share").get<double>(), 0.3);

  const json& tcp = port(svc, 9081);
  EXPECT_EQ(tcp.at("plane"), "L4");
  EXPECT_TRUE(tcp.at("http_routes").is_null());
  EXPECT_EQ(tcp.at("l4").at("source"), "http[0] per connection");
  EXPECT_EQ(tcp["l4"]["destinations"][0].at("port"), 9081);
  EXPECT_DOUBLE_EQ(tcp["l4"]["destinations"][1].at("share").get<double>(), 0.3);

  const json& v1 = subset(svc, "v1");
  EXPECT_EQ(v1.at("labels"), json({{"version", "v1"}}));
  ASSERT_EQ(v1.at("endpoints").size(), 2u);
  const json& ep = v1["endpoints"][0];
  EXPECT_EQ(ep.at("name"), "productpage-v1-a");
  EXPECT_EQ(ep.at("address"), "10.200.11.2");
  EXPECT_EQ(ep.at("ports"), json({{"9080", 9080}, {"9081", 9081}}));
  EXPECT_EQ(ep.at("weight"), 1);
  EXPECT_EQ(ep.at("labels").at("app"), "productpage");
  EXPECT_EQ(v1.at("policy").at("9080").at("load_balancer").at("algorithm"), "LEAST_REQUEST");
  EXPECT_EQ(subset(svc, "").at("endpoints").size(), 4u);

  ASSERT_EQ(j.at("diagnostics").size(), 1u);
  EXPECT_EQ(j["diagnostics"][0].at("severity"), "note");
}

TEST(SnapshotJson, PolicyExamplesShowTheirLoadBalancer) {
  struct Case {
    const char* dir;
    uint32_t port;
    const char* algorithm;
  };
  for (const auto& c : {Case{"round-robin", 9080, "ROUND_ROBIN"}, Case{"least-request", 9080, "LEAST_REQUEST"},
                        Case{"random", 9081, "RANDOM"}, Case{"passthrough", 9080, "PASSTHROUGH"},
                        Case{"consistent-hash", 9081, "MAGLEV"}, Case{"ring-hash", 9080, "RING_HASH"},
                        Case{"ring-hash", 9081, "LEAST_REQUEST"}}) {
    const json j = example_json(c.dir);
    const json& lb = subset(j["services"][0], "").at("policy").at(std::to_string(c.port)).at("load_balancer");
    EXPECT_EQ(lb.at("algorithm"), c.algorithm) << c.dir << ":" << c.port;
  }
  const json maglev = example_json("consistent-hash");
  const json& lb = subset(maglev["services"][0], "v1")["policy"]["9081"]["load_balancer"];
  EXPECT_EQ(lb.at("hash").at("source"), "source_ip");
  EXPECT_EQ(lb.at("maglev_table_size"), 65537);
  EXPECT_EQ(port(maglev["services"][0], 9081)["l4"]["source"], "tcp[0]");

  const json ring = example_json("ring-hash");
  const json& rlb = subset(ring["services"][0], "v2")["policy"]["9080"]["load_balancer"];
  EXPECT_EQ(rlb.at("hash").at("source"), "http_header");
  EXPECT_EQ(rlb.at("hash").at("name"), "x-user");
  EXPECT_EQ(port(ring["services"][0], 9080).at("plane"), "L7") << "header hashing needs the proxy";

  const json pool = example_json("least-request");
  const json& p = subset(pool["services"][0], "v2")["policy"]["9080"];
  EXPECT_EQ(p["connection_pool"]["max_connections"], 100);
  EXPECT_EQ(p["connection_pool"]["connect_timeout"], "2s");
  EXPECT_TRUE(p["connection_pool"]["http2_max_requests"].is_null()) << "unlimited";
  EXPECT_EQ(p["outlier_detection"]["base_ejection_time"], "30s");
}

TEST(SnapshotJson, HeaderRoutingExampleShowsMatchesAndPerRequestFeatures) {
  const json j = example_json("header-routing");
  const json& routes = port(j["services"][0], 9080).at("http_routes");
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].at("name"), "jason");
  EXPECT_EQ(routes[0]["matches"][0]["headers"]["end-user"], json({{"exact", "jason"}}));
  EXPECT_EQ(routes[0]["route"][0]["subset"], "v2");
  EXPECT_EQ(routes[0]["fault"]["delay"], json({{"fixed", "2s"}, {"percent", 50.0}}));
  EXPECT_EQ(routes[0]["timeout"], "5s");
  EXPECT_EQ(routes[1]["retries"]["attempts"], 3);
  EXPECT_EQ(routes[1]["retries"]["per_try_timeout"], "1s");
  EXPECT_EQ(routes[1]["retries"]["retriable_status_codes"], json::array({503}));
  EXPECT_EQ(routes[1]["fault"]["abort"], json({{"status", 503}, {"percent", 10.0}}));
  EXPECT_TRUE(routes[1]["fault"]["delay"].is_null());
  EXPECT_EQ(port(j["services"][0], 9081)["l4"]["source"], "tcp[0]");
}

TEST(SnapshotJson, OverriddenSnapshotSaysSo) {
  auto r = compile_paths({source_root() + "/docs/examples/productpage"}, 1);
  ASSERT_TRUE(r.ok());
  auto o = override_weights(*r.snapshot, "productpage", {{"v2", 100}}, 2);
  ASSERT_TRUE(o.snapshot) << o.error;
  const json j = snapshot_to_json(*o.snapshot);
  EXPECT_EQ(j["origin"], "files+override");
  EXPECT_EQ(j["version"], 2);
  const json& l4 = port(j["services"][0], 9081)["l4"]["destinations"];
  EXPECT_DOUBLE_EQ(l4[1]["share"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(l4[0]["share"].get<double>(), 0.0);
}

TEST(SnapshotJson, BytesThatAreNotUtf8DoNotBreakTheDump) {
  std::string yaml = kProductpageService;
  yaml.replace(yaml.find("productpage-v1-a"), 16, "productpage-\xff\xfe");
  auto r = compile_yaml({{"se.yaml", yaml}});
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const json j = json::parse(snapshot_json_text(*r.snapshot));
  EXPECT_EQ(j["services"][0]["subsets"][0]["endpoints"][0]["name"], "productpage-\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(ExplainText, ShowsVipPortPlaneSharesSubsetsAndEndpoints) {
  auto r = compile_paths({source_root() + "/docs/examples/productpage"}, 1);
  ASSERT_TRUE(r.ok());
  const std::string text = config::explain_text(*r.snapshot);
  for (const char* expected :
       {"10.96.0.10:9080  http/HTTP  L7 (HTTP proxy, per request)",
        "10.96.0.10:9081  tcp/TCP  L4 (XDP, per connection) from http[0] per connection",
        "70.0%  70      productpage v1 :9080", "30.0%  30      productpage v2 :9081",
        "SUBSET  SELECTOR    ENDPOINTS  POLICY",
        "v1      version=v1  2          LEAST_REQUEST",
        "productpage-v2-b  10.200.14.2  9080 9081  1       v2       app=productpage,version=v2"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\n" << text;
  }
}

}  // namespace
}  // namespace sluice::config
