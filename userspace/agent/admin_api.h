// The agent's admin endpoints, wired onto an AdminServer:
//   GET  /ready              200 while a valid snapshot serves (and says if the latest change was refused)
//   GET  /status             JSON: serving version, origin, overrides, last refused change, planes
//   GET  /config_dump        the serving snapshot as JSON (docs/explain-json.md)
//   GET  /clusters           JSON: each service port's subsets and endpoints with load and state
//   GET  /stats/prometheus   Istio standard metrics plus sluice_* internals
//   GET  /stats/datapath     JSON: the XDP datapath's counters per service, subset and backend
//   GET  /conntrack[?limit=N] JSON: tracked L4 flows (client, VIP, backend)
//   POST /weights            {"host": "productpage", "weights": {"v1": 50, "v2": 50}}
// The JSON shapes are documented in docs/operations.md.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/admin_server.h"
#include "agent/agent.h"

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
};

void register_admin_endpoints(admin::AdminServer& server, const AdminContext& context);

// sluice_* and istio_tcp_* series from the datapath's stats JSON.
std::string render_xdp_prometheus(const nlohmann::json& stats);

}  // namespace sluice::agent
