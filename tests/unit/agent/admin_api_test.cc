#include "agent/admin_api.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>

namespace sluice::agent {
namespace {

using nlohmann::json;

sluice_counters flows(uint64_t opened, uint64_t closed, uint64_t bytes_in, uint64_t bytes_out) {
  sluice_counters c{};
  c.new_flows = opened;
  c.closed_flows = closed;
  c.bytes_in = bytes_in;
  c.bytes_out = bytes_out;
  return c;
}

// What XdpPlane::stats() reads from the maps.
bpfmaps::DatapathStats datapath_stats() {
  bpfmaps::DatapathStats stats;
  stats.generation = 1;
  stats.global = {{"packets", 40}, {"ct_insert_failed", 2}, {"ct_midflow_miss", 3}};
  sluice_counters service = flows(7, 5, 1690, 1116);
  service.packets_in = 25;
  service.packets_out = 16;
  service.resteered = 1;
  stats.services.push_back({0, {"productpage", 9081, "tcp", ""}, service});
  stats.subsets.push_back({1, {"productpage", 9081, "tcp", "v1"}, flows(5, 4, 1000, 700)});
  stats.subsets.push_back({2, {"productpage", 9081, "tcp", ""}, flows(2, 1, 10, 7)});
  bpfmaps::DatapathStats::Backend backend;
  backend.id = 1;
  backend.address = "10.200.11.2:9081/tcp";
  backend.live = true;
  backend.counters.new_flows = 3;
  backend.load.l4_opened = 9;
  backend.load.l4_closed = 4;
  backend.load.l7_active = 2;
  stats.backends.push_back(backend);
  stats.conntrack_flows = 6;
  return stats;
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

TEST(RenderXdpPrometheus, LabelValuesAreEscaped) {
  bpfmaps::DatapathStats stats = datapath_stats();
  stats.subsets[0].name.service = "a\"b\\c\nd";
  std::string text = render_xdp_prometheus(stats);
  EXPECT_NE(text.find("destination_service=\"a\\\"b\\\\c\\nd\""), std::string::npos) << text;
}

// The JSON of /stats/datapath keeps its documented shape.
TEST(DatapathStatsJson, KeepsTheDocumentedFields) {
  json j = bpfmaps::datapath_stats_json(datapath_stats());
  EXPECT_EQ(j["subsets"][0]["subset"], "v1");
  EXPECT_EQ(j["subsets"][0]["new_flows"], 5);
  EXPECT_EQ(j["backends"][0]["l4_opened"], 9);
  EXPECT_EQ(j["backends"][0]["address"], "10.200.11.2:9081/tcp");
  EXPECT_EQ(j["global"]["ct_midflow_miss"], 3);
  EXPECT_EQ(j["conntrack_flows"], 6);
}

// The shape sluice-fwd --stats-file writes (docs/dpdk.md): counters by the
// XDP tables' stat slots and backend ids, only slots that saw traffic.
ForwarderStats forwarder_stats(double age_seconds = 0.4) {
  ForwarderStats stats;
  stats.age_seconds = age_seconds;
  stats.counters = json::parse(R"({
    "generation": 1, "snapshots_applied": 3, "flows": 4, "reverse_flows": 5, "flow_capacity": 1048576,
    "cycles_per_packet": 912.44,
    "global": {"new_flows": 9, "flows_expired": 2, "rx_missed": 0},
    "ports": {"0": {"name": "net_af_packet0", "rx_packets": 100, "tx_packets": 90, "rx_missed": 7,
                    "rx_errors": 0, "rx_nombuf": 0, "tx_errors": 1}},
    "services": {"0": {"packets_in": 30, "packets_out": 20, "passthrough": 0, "drop_no_backend": 2,
                       "new_flows": 9, "closed_flows": 5, "bytes_in": 3000, "bytes_out": 2000}},
    "subsets": {"1": {"new_flows": 6, "closed_flows": 4, "bytes_in": 600, "bytes_out": 400},
                "7": {"new_flows": 3, "closed_flows": 1, "bytes_in": 30, "bytes_out": 20}},
    "backends": {"1": {"new_flows": 6, "closed_flows": 2}, "42": {"new_flows": 1, "closed_flows": 1}},
    "exception_taps": {"0": {"iface": "sluice-tap0", "tap_port": 5, "to_kernel": 40, "to_kernel_dropped": 1,
                             "from_kernel": 35, "from_kernel_dropped": 2, "other_host": 3,
                             "checksum_completed": 12}}
  })");
  return stats;
}

TEST(RenderDpdkPrometheus, FreshForwarderIsUpWithItsFlowsAndEvents) {
  const bpfmaps::DatapathStats stats = datapath_stats();
  std::string text = render_dpdk_prometheus(forwarder_stats(), &stats);
  EXPECT_NE(text.find("sluice_dpdk_up 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_dpdk_stats_age_seconds 0.400\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_flows{table=\"forward\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_snapshots_applied_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_cycles_per_packet 912.4\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_events_total{event=\"flows_expired\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_port_errors_total{port=\"0\",device=\"net_af_packet0\",kind=\"rx_missed\"} 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_port_packets_total{port=\"0\",device=\"net_af_packet0\",direction=\"tx\"} 90\n"),
            std::string::npos);
}

TEST(RenderDpdkPrometheus, SlotsAndBackendIdsAreNamedFromTheXdpTables) {
  const bpfmaps::DatapathStats stats = datapath_stats();
  std::string text = render_dpdk_prometheus(forwarder_stats(), &stats);
  EXPECT_NE(text.find("sluice_dpdk_tcp_connections_opened_total{destination_service=\"productpage\","
                      "destination_version=\"v1\",destination_port=\"9081\",request_protocol=\"tcp\"} 6\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_dpdk_drops_no_backend_total{service=\"productpage\",port=\"9081\",protocol=\"tcp\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_backend_active_flows{backend=\"10.200.11.2:9081/tcp\"} 4\n"), std::string::npos);
  // A slot or id the XDP tables do not name (yet) is shown by number, not dropped.
  EXPECT_NE(text.find("destination_service=\"slot 7\",destination_version=\"unknown\""), std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_backend_new_flows_total{backend=\"id 42\"} 1\n"), std::string::npos);
}

TEST(RenderDpdkPrometheus, ExceptionTapCountersArePerPortAndDirection) {
  const bpfmaps::DatapathStats stats = datapath_stats();
  std::string text = render_dpdk_prometheus(forwarder_stats(), &stats);
  EXPECT_NE(text.find("sluice_dpdk_exception_packets_total{port=\"0\",iface=\"sluice-tap0\",direction=\"to_kernel\"} 40\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_dpdk_exception_packets_total{port=\"0\",iface=\"sluice-tap0\",direction=\"from_kernel\"} 35\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_exception_dropped_total{port=\"0\",iface=\"sluice-tap0\",direction=\"to_kernel\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_exception_dropped_total{port=\"0\",iface=\"sluice-tap0\",direction=\"from_kernel\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_exception_other_host_total{port=\"0\",iface=\"sluice-tap0\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_dpdk_exception_checksums_completed_total{port=\"0\",iface=\"sluice-tap0\"} 12\n"),
            std::string::npos);
}

TEST(RenderDpdkPrometheus, StaleFileReportsTheForwarderDown) {
  std::string text = render_dpdk_prometheus(forwarder_stats(kForwarderStaleAfterSeconds + 1), nullptr);
  EXPECT_NE(text.find("sluice_dpdk_up 0\n"), std::string::npos) << text;
  // Without the kernel datapath the slots are numbers.
  EXPECT_NE(text.find("sluice_dpdk_packets_in_total{service=\"slot 0\",port=\"\",protocol=\"\"} 30\n"),
            std::string::npos);
}

TEST(ReadForwarderStats, AbsentFileMeansNoForwarderAndGarbageMeansDown) {
  const std::string dir = ::testing::TempDir();
  EXPECT_FALSE(read_forwarder_stats(dir + "/no-such-sluice-fwd.json").has_value());

  const std::string garbage = dir + "/sluice-fwd-garbage.json";
  std::ofstream(garbage) << "{not json";
  auto broken = read_forwarder_stats(garbage);
  ASSERT_TRUE(broken.has_value());
  EXPECT_FALSE(broken->up());
  EXPECT_NE(render_dpdk_prometheus(*broken, nullptr).find("sluice_dpdk_up 0\n"), std::string::npos);

  const std::string fresh = dir + "/sluice-fwd-fresh.json";
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::ofstream(fresh) << json{{"written_at", now - 1.0}, {"generation", 1}}.dump();
  auto read = read_forwarder_stats(fresh);
  ASSERT_TRUE(read.has_value());
  EXPECT_TRUE(read->up());
  EXPECT_NEAR(read->age_seconds, 1.0, 0.5);
  std::remove(garbage.c_str());
  std::remove(fresh.c_str());
}

}  // namespace
}  // namespace sluice::agent
