// The agent's admin endpoints, wired onto an AdminServer:
//   GET  /ready              200 while a valid snapshot serves (and says if the latest change was refused)
//   GET  /status             JSON: serving version, origin, overrides, last refused change, planes
//   GET  /config_dump        the serving snapshot as JSON (docs/explain-json.md)
//   GET  /explain            the serving snapshot as `sluicectl explain` prints it
//   GET  /clusters           JSON: each service port's subsets and endpoints with load and state
//   GET  /stats/prometheus   Istio standard metrics plus sluice_* internals
//   GET  /stats/datapath     JSON: the XDP datapath's counters per service, subset and backend
//   GET  /stats/dpdk         JSON: the DPDK forwarder's counters (its --stats-file) and their age
//   GET  /stats/window[?service=H] JSON: per service port and subset, configured vs observed
//                            share, rates, errors, latency over the last 10 s (sluicectl top, /ui)
//   GET  /ui                 the read-only web page (files built into the binary, agent/ui/)
//   GET  /conntrack[?limit=N] JSON: tracked L4 flows (client, VIP, backend)
//   POST /weights            {"host": "productpage", "weights": {"v1": 50, "v2": 50}}
// The JSON shapes are documented in docs/operations.md.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/admin_server.h"
#include "agent/agent.h"
#include "agent/stats_window.h"
#include "bpfmaps/datapath_report.h"
#include "agent/datapath_upkeep.h"

namespace sluice::proxy {
class Proxy;
}

namespace sluice::agent {

class XdpPlane;

struct AdminContext {
  Agent* agent = nullptr;
  XdpPlane* xdp = nullptr;          // null when running without the kernel datapath
  proxy::Proxy* proxy = nullptr;    // null when no L7 plane runs
  std::vector<std::string> interfaces;   // "eth0 (native)", for /status
  std::string dpdk_stats_file;           // sluice-fwd's --stats-file; empty: no forwarder
  const StatsWindow* window = nullptr;   // the per-second window sample_planes() feeds; null: none yet
  double started_at = 0;                 // unix time sluiced started (the page notices a restart by it)
  std::function<nlohmann::json()> kubernetes_status;   // the API server source's state; empty: none
  const RedirectTargetWatch* redirect_watch = nullptr;   // null without the kernel datapath
  const ConntrackReapWatch* reap_watch = nullptr;        // null without the kernel datapath
};

void register_admin_endpoints(admin::AdminServer& server, const AdminContext& context);

// Every metric of the agent, in Prometheus text: the agent's own, the L7
// proxy's, the XDP datapath's and the DPDK forwarder's (each rendered through
// metrics::PrometheusText).
std::string render_prometheus(const AdminContext& context);
// The agent's own series and each subset's configured share (snapshot may be null).
std::string render_agent_prometheus(const AgentStatus& status, const model::Snapshot* snapshot);
// sluice_* and istio_tcp_* series from the datapath's counters.
std::string render_xdp_prometheus(const bpfmaps::DatapathStats& stats);

// One second's sample of both planes' per-subset counters, for StatsWindow.
Sample sample_planes(const AdminContext& context);
// GET /stats/window: the window's figures with the status, the change log and
// each subset's endpoints (docs/operations.md).
nlohmann::json window_json(const AdminContext& context, const std::string& service);

// The DPDK forwarder's counters. sluice-fwd rewrites a JSON file every second
// (--stats-file, docs/dpdk.md); the agent reads it on each request and names
// its stat slots and backend ids from the XDP tables, which the forwarder
// shares. A file older than this is reported as a forwarder that is down.
constexpr double kForwarderStaleAfterSeconds = 5.0;

struct ForwarderStats {
  nlohmann::json counters;   // the file as sluice-fwd wrote it
  double age_seconds = 0;    // now - its "written_at"
  bool up() const { return age_seconds <= kForwarderStaleAfterSeconds; }
};

// nullopt when the file does not exist (no forwarder on this node). A file
// that exists but does not parse comes back stale with an "error" field, so
// a scrape shows the problem instead of hiding it.
std::optional<ForwarderStats> read_forwarder_stats(const std::string& path);

// sluice_dpdk_* series. datapath names the stat slots and backend ids; null
// without the kernel datapath, and then slots and ids are shown by number.
std::string render_dpdk_prometheus(const ForwarderStats& stats, const bpfmaps::DatapathStats* datapath);

}  // namespace sluice::agent
