// The agent's admin endpoints, wired onto an AdminServer:
//   GET  /ready              200 while a valid snapshot serves (and says if the latest change was refused)
//   GET  /status             JSON: serving version, origin, overrides, last refused change, planes
//   GET  /config_dump        the serving snapshot as JSON (docs/explain-json.md)
//   GET  /clusters           JSON: each service port's subsets and endpoints with load and state
//   GET  /stats/prometheus   Istio standard metrics plus sluice_* internals
//   GET  /stats/datapath     JSON: the XDP datapath's counters per service, subset and backend
//   GET  /stats/dpdk         JSON: the DPDK forwarder's counters (its --stats-file) and their age
//   GET  /conntrack[?limit=N] JSON: tracked L4 flows (client, VIP, backend)
//   POST /weights            {"host": "productpage", "weights": {"v1": 50, "v2": 50}}
// The JSON shapes are documented in docs/operations.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/admin_server.h"
#include "agent/agent.h"
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
  const RedirectTargetWatch* redirect_watch = nullptr;   // null without the kernel datapath
  const ConntrackReapWatch* reap_watch = nullptr;        // null without the kernel datapath
};

void register_admin_endpoints(admin::AdminServer& server, const AdminContext& context);

// sluice_* and istio_tcp_* series from the datapath's stats JSON.
std::string render_xdp_prometheus(const nlohmann::json& stats);

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

// sluice_dpdk_* series. datapath_stats is what render_xdp_prometheus takes
// (names by stat slot and backend id); null without the kernel datapath, and
// then slots and ids are shown by number.
std::string render_dpdk_prometheus(const ForwarderStats& stats, const nlohmann::json& datapath_stats);

}  // namespace sluice::agent
