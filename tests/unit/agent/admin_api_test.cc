#include "agent/admin_api.h"

#include <gtest/gtest.h>

namespace sluice::agent {
namespace {

using nlohmann::json;

// The shape bpfmaps::datapath_stats_json() produces.
json datapath_stats() {
  return json::parse(R"({
    "generation": 1,
    "global": {"packets": 40, "ct_insert_failed": 2, "ct_midflow_miss": 3},
    "services": [{"slot": 0, "service": "productpage", "port": 9081, "protocol": "tcp",
                  "packets_in": 25, "packets_out": 16, "passthrough": 0, "resteered": 1, "drop_no_backend": 0,
                  "new_flows": 7, "closed_flows": 5, "bytes_in": 1690, "bytes_out": 1116}],
    "subsets": [{"slot": 1, "service": "productpage", "port": 9081, "protocol": "tcp", "subset": "v1",
                 "new_flows": 5, "closed_flows": 4, "bytes_in": 1000, "bytes_out": 700},
                {"slot": 2, "service": "productpage", "port": 9081, "protocol": "tcp", "subset": "",
                 "new_flows": 2, "closed_flows": 1, "bytes_in": 10, "bytes_out": 7}],
    "backends": [{"id": 1, "address": "10.200.11.2:9081/tcp", "live": true, "new_flows": 3,
                  "l4_opened": 9, "l4_closed": 4, "l7_active": 2}],
    "conntrack_flows": 6
  })");
}

TEST(RenderXdpPrometheus, IstioTcpMetricsPerDestinationVersion) {
  std::string text = render_xdp_prometheus(datapath_stats());
  EXPECT_NE(text.find("istio_tcp_connections_opened_total{reporter=\"sluice-xdp\",destination_service=\"productpage\","
                      "destination_service_name=\"productpage\",destination_version=\"v1\",destination_port=\"9081\","
                      "request_protocol=\"tcp\"} 5\n"),
            std::string::npos)
      << text;
  // The implicit whole-service subset has no version label value of its own.
  EXPECT_NE(text.find("destination_version=\"unknown\",destination_port=\"9081\",request_protocol=\"tcp\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE istio_tcp_sent_bytes_total counter\n"), std::string::npos);
}

TEST(RenderXdpPrometheus, BackendLoadConntrackAndEvictions) {
  std::string text = render_xdp_prometheus(datapath_stats());
  EXPECT_NE(text.find("sluice_backend_active_l4_flows{backend=\"10.200.11.2:9081/tcp\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_backend_active_l7_requests{backend=\"10.200.11.2:9081/tcp\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_conntrack_entries 6\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_conntrack_evictions_total 5\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_xdp_resteered_flows_total{service=\"productpage\",port=\"9081\",protocol=\"tcp\"} 1\n"),
            std::string::npos);
}

TEST(RenderXdpPrometheus, MissingCountersRenderAsZeroNotAnError) {
  json stats = datapath_stats();
  stats["backends"][0].erase("l7_active");
  stats["services"][0]["passthrough"] = nullptr;
  std::string text;
  ASSERT_NO_THROW(text = render_xdp_prometheus(stats));
  EXPECT_NE(text.find("sluice_backend_active_l7_requests{backend=\"10.200.11.2:9081/tcp\"} 0\n"), std::string::npos);
}

}  // namespace
}  // namespace sluice::agent
