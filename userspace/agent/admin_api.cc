#include "agent/admin_api.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "agent/planes.h"
#include "config/snapshot_json.h"
#include "proxy/proxy.h"

namespace sluice::agent {

namespace {

using nlohmann::json;

admin::AdminResponse json_response(const json& body, unsigned status = 200) {
  return admin::AdminResponse{status, "application/json", body.dump(2) + "\n"};
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json status_json(const AdminContext& ctx) {
  AgentStatus st = ctx.agent->status();
  json out;
  out["version"] = st.version;
  out["origin"] = st.origin;
  out["applied_at"] = st.version ? iso_time(st.applied_at) : "";
  out["reloads"] = {{"ok", st.reloads_ok}, {"refused", st.reloads_failed}};
  json overrides = json::object();
  for (const auto& [host, weights] : st.overrides) {
    json w = json::object();
    for (const auto& [subset, weight] : weights) w[subset] = weight;
    overrides[host] = w;
  }
  out["overrides"] = overrides;
  out["last_error"] = nullptr;
  if (st.last_error) {
    out["last_error"] = {{"at", iso_time(st.last_error->when)}, {"messages", st.last_error->messages}};
  }
  out["warnings"] = st.warnings;
  out["planes"] = {{"xdp", ctx.xdp != nullptr}, {"l7", ctx.proxy != nullptr}};
  // The forwarder is its own process: "dpdk" says whether it is alive (its
  // stats file is fresh), and which table generation it steers with.
  auto forwarder = ctx.dpdk_stats_file.empty() ? std::nullopt : read_forwarder_stats(ctx.dpdk_stats_file);
  out["planes"]["dpdk"] = forwarder && forwarder->up();
  if (forwarder && forwarder->up()) out["dpdk_generation"] = forwarder->counters.value("generation", 0);
  out["interfaces"] = ctx.interfaces;
  if (ctx.redirect_watch) {
    json redirect = ctx.redirect_watch->status();
    for (const auto& w : redirect.value("warnings", json::array())) out["warnings"].push_back(w);
    redirect.erase("warnings");
    out["xdp_redirect"] = redirect;
  }
  return out;
}

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The datapath's stats with the agent's conntrack reaping totals among its
// global events.
json xdp_stats(const AdminContext& ctx) {
  if (!ctx.xdp) return json();
  json stats = ctx.xdp->stats();
  if (ctx.reap_watch) {
    // Named: items() of the temporary totals() would outlive it (the range
    // for keeps only the proxy alive) and walk freed memory.
    const json totals = ctx.reap_watch->totals();
    for (const auto& [name, value] : totals.items()) stats["global"][name] = value;
  }
  return stats;
}

json clusters_json(const AdminContext& ctx, const model::Snapshot& snap) {
  json backend_load = json::object();   // "addr:port/tcp" -> load figures
  if (ctx.xdp) {
    const json stats = ctx.xdp->stats();
    for (const auto& b : stats.value("backends", json::array())) backend_load[b.value("address", "")] = b;
  }
  // The proxy's outlier detectors, if they belong to this very snapshot
  // (their endpoint indices are its indices).
  std::shared_ptr<const proxy::OutlierRegistry> outliers;
  if (ctx.proxy) {
    auto published = ctx.proxy->published();
    if (published.snapshot && published.snapshot->version == snap.version) outliers = published.outliers;
  }
  json out = json::array();
  for (uint32_t svc_index = 0; svc_index < snap.services.size(); ++svc_index) {
    const auto& svc = snap.services[svc_index];
    for (size_t p = 0; p < svc.ports.size(); ++p) {
      const auto& port = svc.ports[p];
      const model::PortRoutes* routes = svc.routes_for(port.number);
      json cluster;
      cluster["service"] = svc.host;
      cluster["port"] = port.number;
      cluster["plane"] = routes && routes->plane == model::Plane::L7 ? "l7" : "l4";
      cluster["subsets"] = json::array();
      for (uint32_t subset_index = 0; subset_index < svc.subsets.size(); ++subset_index) {
        const auto& subset = svc.subsets[subset_index];
        const auto& policy = subset.policy_for(port.number);
        json s;
        s["name"] = subset.name;
        s["policy"] = model::to_string(policy.load_balancer.algorithm);
        s["endpoints"] = json::array();
        // Outlier detection runs in the L7 proxy; an L4 port has none.
        const proxy::SharedOutlierDetector* detector =
            outliers && routes && routes->plane == model::Plane::L7
                ? outliers->find(model::Destination{svc_index, subset_index, port.number})
                : nullptr;
        s["outlier_detection"] = detector != nullptr;
        for (uint32_t idx : subset.endpoints) {
          const auto& ep = svc.endpoints[idx];
          uint32_t ep_port = ep.port_for(port);
          std::string addr = ep.address.is_v4() ? ep.address.to_string() : "[" + ep.address.to_string() + "]";
          std::string key = fmt::format("{}:{}/{}", addr, ep_port, port.protocol == model::Protocol::UDP ? "udp" : "tcp");
          json e = {{"name", ep.name}, {"address", addr + ":" + std::to_string(ep_port)}, {"weight", ep.weight}};
          bool ejected = false;
          if (detector != nullptr) {
            const auto& hosts = detector->hosts();
            for (uint32_t h = 0; h < hosts.size(); ++h) {
              if (hosts[h].first == ep.address && hosts[h].second == ep_port) ejected = detector->is_ejected(h);
            }
          }
          // Envoy's terms: an ejected host is "failed_outlier_check".
          e["health"] = ejected ? "failed_outlier_check" : "healthy";
          e["ejected"] = ejected;
          if (backend_load.contains(key)) {
            const auto& b = backend_load[key];
            e["l7_active_requests"] = static_cast<int64_t>(b.value("l7_active", uint64_t{0}));
            e["l4_active_flows"] = sluice_l4_active(b.value("l4_opened", uint64_t{0}), b.value("l4_closed", uint64_t{0}),
                                                    b.value("l4_reaped", uint64_t{0}));
            e["xdp_new_flows"] = b.value("new_flows", uint64_t{0});
          }
          s["endpoints"].push_back(e);
        }
        cluster["subsets"].push_back(s);
      }
      out.push_back(cluster);
    }
  }
  return out;
}

void add_family(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// Absent or null counters read as 0: a datapath older or newer than this
// agent may lack a field, and that must not cost the whole scrape.
uint64_t counter_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

}  // namespace

std::string render_xdp_prometheus(const json& stats) {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) { add_family(out, name, type, help); };
  auto num = counter_of;

  // Istio's standard TCP metrics, per destination subset (reporter: the XDP plane).
  struct IstioTcp {
    const char* name;
    const char* field;
    const char* help;
  };
  const IstioTcp tcp_metrics[] = {
      {"istio_tcp_connections_opened_total", "new_flows", "Connections opened (XDP steered a new flow)"},
      {"istio_tcp_connections_closed_total", "closed_flows", "Connections closed (FIN/RST seen or idle expiry)"},
      {"istio_tcp_received_bytes_total", "bytes_in", "Bytes from clients to the destination"},
      {"istio_tcp_sent_bytes_total", "bytes_out", "Bytes from the destination to clients"},
  };
  for (const auto& m : tcp_metrics) {
    family(m.name, "counter", m.help);
    for (const auto& s : stats.value("subsets", json::array())) {
      std::string version = s.value("subset", "");
      out += fmt::format(
          "{}{{reporter=\"sluice-xdp\",destination_service=\"{}\",destination_service_name=\"{}\","
          "destination_version=\"{}\",destination_port=\"{}\",request_protocol=\"{}\"}} {}\n",
          m.name, escape_label(s.value("service", "")), escape_label(s.value("service", "")),
          escape_label(version.empty() ? "unknown" : version), num(s, "port"), escape_label(s.value("protocol", "")),
          num(s, m.field));
    }
  }
  struct PerService {
    const char* name;
    const char* field;
    const char* help;
  };
  const PerService svc_metrics[] = {
      {"sluice_xdp_packets_in_total", "packets_in", "Client packets DNATed to a backend"},
      {"sluice_xdp_packets_out_total", "packets_out", "Backend packets reverse-NATed to the VIP"},
      {"sluice_xdp_passthrough_packets_total", "passthrough", "Packets handed to the kernel (L7 or PASSTHROUGH)"},
      {"sluice_xdp_resteered_flows_total", "resteered", "Tracked flows moved because their backend left"},
      {"sluice_xdp_drops_no_backend_total", "drop_no_backend", "Packets dropped: the subset had no backend"},
  };
  for (const auto& m : svc_metrics) {
    family(m.name, "counter", m.help);
    for (const auto& s : stats.value("services", json::array())) {
      out += fmt::format("{}{{service=\"{}\",port=\"{}\",protocol=\"{}\"}} {}\n", m.name,
                         escape_label(s.value("service", "")), num(s, "port"), escape_label(s.value("protocol", "")),
                         num(s, m.field));
    }
  }
  family("sluice_xdp_backend_new_flows_total", "counter", "New flows steered to each backend");
  for (const auto& b : stats.value("backends", json::array())) {
    out += fmt::format("sluice_xdp_backend_new_flows_total{{backend=\"{}\",live=\"{}\"}} {}\n",
                       escape_label(b.value("address", "")), b.value("live", false) ? 1 : 0, num(b, "new_flows"));
  }
  family("sluice_backend_active_l4_flows", "gauge", "Open minus closed flows per backend (XDP)");
  family("sluice_backend_active_l7_requests", "gauge", "Active L7 requests per backend (agent), as XDP reads them");
  for (const auto& b : stats.value("backends", json::array())) {
    out += fmt::format("sluice_backend_active_l4_flows{{backend=\"{}\"}} {}\n", escape_label(b.value("address", "")),
                       sluice_l4_active(num(b, "l4_opened"), num(b, "l4_closed"), num(b, "l4_reaped")));
    out += fmt::format("sluice_backend_active_l7_requests{{backend=\"{}\"}} {}\n",
                       escape_label(b.value("address", "")), static_cast<int64_t>(num(b, "l7_active")));
  }
  family("sluice_xdp_events_total", "counter", "Datapath-wide events and verdicts by reason");
  const json global = stats.value("global", json::object());
  for (const auto& [name, value] : global.items()) {
    out += fmt::format("sluice_xdp_events_total{{event=\"{}\"}} {}\n", escape_label(name),
                       value.is_number() ? value.get<uint64_t>() : 0);
  }
  family("sluice_conntrack_entries", "gauge", "Flows in the conntrack LRU");
  out += fmt::format("sluice_conntrack_entries {}\n", num(stats, "conntrack_flows"));
  family("sluice_conntrack_evictions_total", "counter",
         "Conntrack inserts that failed or tracked flows found missing mid-flow (LRU evictions)");
  out += fmt::format("sluice_conntrack_evictions_total {}\n",
                     num(global, "ct_insert_failed") + num(global, "ct_midflow_miss"));
  return out;
}

std::optional<ForwarderStats> read_forwarder_stats(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  ForwarderStats stats;
  stats.age_seconds = std::numeric_limits<double>::infinity();
  std::ifstream in(path);
  json counters = in ? json::parse(in, nullptr, false) : json();
  if (!in.is_open() || counters.is_discarded() || !counters.is_object()) {
    stats.counters = {{"error", fmt::format("{}: not a sluice-fwd stats file (unreadable or not JSON)", path)}};
    return stats;
  }
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (auto it = counters.find("written_at"); it != counters.end() && it->is_number())
    stats.age_seconds = std::max(0.0, now - it->get<double>());
  stats.counters = std::move(counters);
  return stats;
}

std::string render_dpdk_prometheus(const ForwarderStats& stats, const json& datapath) {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) { add_family(out, name, type, help); };
  const json& c = stats.counters;
  family("sluice_dpdk_up", "gauge", "1 while the DPDK forwarder keeps its stats file fresh (at most 5 s old)");
  out += fmt::format("sluice_dpdk_up {}\n", stats.up() ? 1 : 0);
  family("sluice_dpdk_stats_age_seconds", "gauge", "Age of the forwarder's stats file (+Inf: unreadable)");
  out += fmt::format("sluice_dpdk_stats_age_seconds {}\n",
                     std::isfinite(stats.age_seconds) ? fmt::format("{:.3f}", stats.age_seconds) : "+Inf");
  if (c.contains("error")) return out;
  // items() views its object: take the sections by reference, not as temporaries.
  const json empty = json::object();
  auto section = [&](const char* key) -> const json& {
    auto it = c.find(key);
    return it != c.end() && it->is_object() ? *it : empty;
  };

  // Stat slots and backend ids are the XDP tables' (the forwarder reads them).
  std::map<std::string, json> service_of, subset_of, backend_of;
  if (datapath.is_object()) {
    for (const auto& s : datapath.value("services", json::array())) service_of[std::to_string(counter_of(s, "slot"))] = s;
    for (const auto& s : datapath.value("subsets", json::array())) subset_of[std::to_string(counter_of(s, "slot"))] = s;
    for (const auto& b : datapath.value("backends", json::array())) backend_of[std::to_string(counter_of(b, "id"))] = b;
  }
  auto service_labels = [&](const std::string& slot, const std::map<std::string, json>& names) {
    auto it = names.find(slot);
    if (it == names.end()) return fmt::format("service=\"slot {}\",port=\"\",protocol=\"\"", escape_label(slot));
    return fmt::format("service=\"{}\",port=\"{}\",protocol=\"{}\"", escape_label(it->second.value("service", "")),
                       counter_of(it->second, "port"), escape_label(it->second.value("protocol", "")));
  };
  auto backend_label = [&](const std::string& id) {
    auto it = backend_of.find(id);
    return escape_label(it == backend_of.end() ? "id " + id : it->second.value("address", ""));
  };

  family("sluice_dpdk_table_generation", "gauge", "Table generation the forwarder steers with (flip counter; low bit is the half)");
  out += fmt::format("sluice_dpdk_table_generation {}\n", counter_of(c, "generation"));
  family("sluice_dpdk_snapshots_applied_total", "counter", "Table generations the forwarder switched to");
  out += fmt::format("sluice_dpdk_snapshots_applied_total {}\n", counter_of(c, "snapshots_applied"));
  family("sluice_dpdk_flows", "gauge", "Entries in the forwarder's flow tables");
  out += fmt::format("sluice_dpdk_flows{{table=\"forward\"}} {}\n", counter_of(c, "flows"));
  out += fmt::format("sluice_dpdk_flows{{table=\"reverse\"}} {}\n", counter_of(c, "reverse_flows"));
  family("sluice_dpdk_flow_capacity", "gauge", "Capacity of each flow table (sluice-fwd --flows)");
  out += fmt::format("sluice_dpdk_flow_capacity {}\n", counter_of(c, "flow_capacity"));
  family("sluice_dpdk_cycles_per_packet", "gauge", "TSC cycles per packet in bursts that carried packets");
  const auto cycles = c.find("cycles_per_packet");
  out += fmt::format("sluice_dpdk_cycles_per_packet {:.1f}\n",
                     cycles != c.end() && cycles->is_number() ? cycles->get<double>() : 0.0);
  family("sluice_dpdk_events_total", "counter", "Forwarder-wide events and verdicts by reason (XDP's names)");
  for (const auto& [name, value] : section("global").items())
    out += fmt::format("sluice_dpdk_events_total{{event=\"{}\"}} {}\n", escape_label(name),
                       value.is_number() ? value.get<uint64_t>() : 0);

  family("sluice_dpdk_port_packets_total", "counter", "Packets through each DPDK port");
  family("sluice_dpdk_port_errors_total", "counter",
         "Port drops by kind: rx_missed (RX ring full), rx_errors, rx_nombuf, tx_errors");
  for (const auto& [port, p] : section("ports").items()) {
    const std::string labels =
        fmt::format("port=\"{}\",device=\"{}\"", escape_label(port), escape_label(p.value("name", "")));
    out += fmt::format("sluice_dpdk_port_packets_total{{{},direction=\"rx\"}} {}\n", labels,
                       counter_of(p, "rx_packets"));
    out += fmt::format("sluice_dpdk_port_packets_total{{{},direction=\"tx\"}} {}\n", labels,
                       counter_of(p, "tx_packets"));
    for (const char* kind : {"rx_missed", "rx_errors", "rx_nombuf", "tx_errors"})
      out += fmt::format("sluice_dpdk_port_errors_total{{{},kind=\"{}\"}} {}\n", labels, kind, counter_of(p, kind));
  }

  // The exception path: frames each DPDK port handed to its kernel TAP and
  // took back from it (sluice-fwd --exception-tap).
  family("sluice_dpdk_exception_packets_total", "counter",
         "Frames through each port's exception TAP: to_kernel (not steered, given to the kernel), from_kernel "
         "(the kernel's, sent on the port)");
  family("sluice_dpdk_exception_dropped_total", "counter",
         "Exception frames dropped: to_kernel (the TAP refused the write), from_kernel (the port's TX ring was full)");
  family("sluice_dpdk_exception_other_host_total", "counter",
         "Unsteered unicast frames for another MAC (promiscuous port), not given to the kernel");
  family("sluice_dpdk_exception_checksums_completed_total", "counter",
         "Partial L4 checksums (sender's offload pending) completed before the TAP");
  for (const auto& [port, t] : section("exception_taps").items()) {
    const std::string labels =
        fmt::format("port=\"{}\",iface=\"{}\"", escape_label(port), escape_label(t.value("iface", "")));
    for (const char* direction : {"to_kernel", "from_kernel"}) {
      out += fmt::format("sluice_dpdk_exception_packets_total{{{},direction=\"{}\"}} {}\n", labels, direction,
                         counter_of(t, direction));
      out += fmt::format("sluice_dpdk_exception_dropped_total{{{},direction=\"{}\"}} {}\n", labels, direction,
                         counter_of(t, fmt::format("{}_dropped", direction).c_str()));
    }
    out += fmt::format("sluice_dpdk_exception_other_host_total{{{}}} {}\n", labels, counter_of(t, "other_host"));
    out += fmt::format("sluice_dpdk_exception_checksums_completed_total{{{}}} {}\n", labels,
                       counter_of(t, "checksum_completed"));
  }

  // Istio's TCP figures per destination subset, under sluice_dpdk_ names so
  // the istio_tcp_* families (the XDP plane's) stay one per name.
  struct PerSubset {
    const char* name;
    const char* field;
    const char* help;
  };
  const PerSubset subset_metrics[] = {
      {"sluice_dpdk_tcp_connections_opened_total", "new_flows", "Connections the forwarder steered"},
      {"sluice_dpdk_tcp_connections_closed_total", "closed_flows", "Of those, closed (FIN/RST, re-steer or idle expiry)"},
      {"sluice_dpdk_tcp_received_bytes_total", "bytes_in", "Bytes from clients to the destination"},
      {"sluice_dpdk_tcp_sent_bytes_total", "bytes_out", "Bytes from the destination to clients"},
  };
  for (const auto& m : subset_metrics) {
    family(m.name, "counter", m.help);
    for (const auto& [slot, counters] : section("subsets").items()) {
      auto it = subset_of.find(slot);
      const json names = it == subset_of.end() ? json::object() : it->second;
      const std::string version = names.value("subset", "");
      out += fmt::format(
          "{}{{destination_service=\"{}\",destination_version=\"{}\",destination_port=\"{}\","
          "request_protocol=\"{}\"}} {}\n",
          m.name, escape_label(names.value("service", "slot " + slot)),
          escape_label(version.empty() ? "unknown" : version), counter_of(names, "port"),
          escape_label(names.value("protocol", "")), counter_of(counters, m.field));
    }
  }
  const PerSubset service_metrics[] = {
      {"sluice_dpdk_packets_in_total", "packets_in", "Client packets DNATed to a backend"},
      {"sluice_dpdk_packets_out_total", "packets_out", "Backend packets reverse-NATed to the VIP"},
      {"sluice_dpdk_passthrough_packets_total", "passthrough", "Packets left to the kernel (L7 or PASSTHROUGH)"},
      {"sluice_dpdk_drops_no_backend_total", "drop_no_backend", "Packets dropped: the subset had no backend"},
  };
  for (const auto& m : service_metrics) {
    family(m.name, "counter", m.help);
    for (const auto& [slot, counters] : section("services").items())
      out += fmt::format("{}{{{}}} {}\n", m.name, service_labels(slot, service_of), counter_of(counters, m.field));
  }
  family("sluice_dpdk_backend_new_flows_total", "counter", "New flows the forwarder steered to each backend");
  family("sluice_dpdk_backend_active_flows", "gauge",
         "The forwarder's open flows per backend (also added to the shared least-request map)");
  for (const auto& [id, counters] : section("backends").items()) {
    const uint64_t opened = counter_of(counters, "new_flows"), closed = counter_of(counters, "closed_flows");
    out += fmt::format("sluice_dpdk_backend_new_flows_total{{backend=\"{}\"}} {}\n", backend_label(id), opened);
    out += fmt::format("sluice_dpdk_backend_active_flows{{backend=\"{}\"}} {}\n", backend_label(id),
                       opened >= closed ? opened - closed : 0);
  }
  return out;
}

void register_admin_endpoints(admin::AdminServer& server, const AdminContext& ctx) {
  server.handle("/ready", [ctx](const admin::AdminRequest&) {
    AgentStatus st = ctx.agent->status();
    std::string body;
    if (st.version == 0) {
      body = "NOT READY: no valid configuration has been applied\n";
    } else {
      body = fmt::format("LIVE version {} ({})\n", st.version, st.origin);
    }
    if (st.last_error) {
      body += "last change refused:\n";
      for (const auto& m : st.last_error->messages) body += "  " + m + "\n";
    }
    return admin::AdminResponse{st.version == 0 ? 503u : 200u, "text/plain; charset=utf-8", body};
  });
  server.handle("/status", [ctx](const admin::AdminRequest&) { return json_response(status_json(ctx)); });
  server.handle("/config_dump", [ctx](const admin::AdminRequest&) {
    auto snap = ctx.agent->current();
    if (!snap) return json_response({{"error", "no valid configuration has been applied"}}, 503);
    return admin::AdminResponse{200, "application/json", config::snapshot_json_text(*snap) + "\n"};
  });
  server.handle("/clusters", [ctx](const admin::AdminRequest&) {
    auto snap = ctx.agent->current();
    if (!snap) return json_response(json::array());
    return json_response(clusters_json(ctx, *snap));
  });
  server.handle("/stats/prometheus", [ctx](const admin::AdminRequest&) {
    AgentStatus st = ctx.agent->status();
    std::string out;
    out += "# HELP sluice_config_version Version of the serving snapshot\n# TYPE sluice_config_version gauge\n";
    out += fmt::format("sluice_config_version {}\n", st.version);
    out += "# HELP sluice_config_reloads_total Configuration changes by result\n";
    out += "# TYPE sluice_config_reloads_total counter\n";
    out += fmt::format("sluice_config_reloads_total{{result=\"applied\"}} {}\n", st.reloads_ok);
    out += fmt::format("sluice_config_reloads_total{{result=\"refused\"}} {}\n", st.reloads_failed);
    out += "# HELP sluice_config_last_change_refused 1 if the latest change was refused\n";
    out += "# TYPE sluice_config_last_change_refused gauge\n";
    out += fmt::format("sluice_config_last_change_refused {}\n", st.last_error ? 1 : 0);
    out += "# HELP sluice_weight_overrides Services whose weights a runtime override sets\n";
    out += "# TYPE sluice_weight_overrides gauge\n";
    out += fmt::format("sluice_weight_overrides {}\n", st.overrides.size());
    if (ctx.proxy) out += ctx.proxy->render_prometheus();
    const json datapath = xdp_stats(ctx);
    if (ctx.xdp) out += render_xdp_prometheus(datapath);
    if (!ctx.dpdk_stats_file.empty())
      if (auto forwarder = read_forwarder_stats(ctx.dpdk_stats_file)) out += render_dpdk_prometheus(*forwarder, datapath);
    return admin::AdminResponse{200, "text/plain; version=0.0.4; charset=utf-8", out};
  });
  server.handle("/stats/datapath", [ctx](const admin::AdminRequest&) {
    if (!ctx.xdp) return json_response({{"error", "running without the kernel datapath (--no-xdp)"}}, 404);
    return json_response(xdp_stats(ctx));
  });
  server.handle("/stats/dpdk", [ctx](const admin::AdminRequest&) {
    auto forwarder = ctx.dpdk_stats_file.empty() ? std::nullopt : read_forwarder_stats(ctx.dpdk_stats_file);
    if (!forwarder)
      return json_response({{"error", fmt::format("no DPDK forwarder stats file ({}): is sluice-fwd running with "
                                                  "--stats-file equal to sluiced --dpdk-stats?",
                                                  ctx.dpdk_stats_file.empty() ? "--dpdk-stats ''" : ctx.dpdk_stats_file)}},
                           404);
    json body = forwarder->counters;
    body["up"] = forwarder->up();
    body["age_seconds"] = std::isfinite(forwarder->age_seconds) ? json(forwarder->age_seconds) : json(nullptr);
    return json_response(body);
  });
  server.handle("/conntrack", [ctx](const admin::AdminRequest& req) {
    if (!ctx.xdp) return json_response({{"error", "running without the kernel datapath (--no-xdp)"}}, 404);
    size_t limit = 100000;
    if (auto it = req.query.find("limit"); it != req.query.end()) limit = std::strtoul(it->second.c_str(), nullptr, 10);
    return json_response(ctx.xdp->conntrack(limit));
  });
  server.handle("/weights", [ctx](const admin::AdminRequest& req) {
    if (req.method != "POST") {
      return json_response({{"error", "POST {\"host\": H, \"weights\": {\"SUBSET\": W, ...}}"}}, 405);
    }
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("host") || !body["host"].is_string() ||
        !body.contains("weights") || !body["weights"].is_object()) {
      return json_response({{"error", "expected {\"host\": H, \"weights\": {\"SUBSET\": W, ...}}"}}, 400);
    }
    SubsetWeights weights;
    for (const auto& [subset, w] : body["weights"].items()) {
      if (!w.is_number_unsigned() && !(w.is_number_integer() && w.get<int64_t>() >= 0)) {
        return json_response({{"error", "weight of subset '" + subset + "' must be a non-negative integer"}}, 400);
      }
      weights.emplace_back(subset, w.get<uint32_t>());
    }
    std::string error = ctx.agent->set_weights(body["host"].get<std::string>(), weights);
    if (!error.empty()) return json_response({{"error", error}}, 422);
    return json_response(status_json(ctx));
  });
}

}  // namespace sluice::agent
