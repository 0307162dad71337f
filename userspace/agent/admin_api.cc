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
#include "agent/ui_assets.h"
#include "config/duration.h"
#include "config/explain_text.h"
#include "config/snapshot_json.h"
#include "metrics/prometheus_text.h"
#include "proxy/proxy.h"

namespace sluice::agent {

namespace {

using nlohmann::json;
using metrics::Labels;
using metrics::MetricType;
using metrics::PrometheusText;
using bpfmaps::SlotName;

admin::AdminResponse json_response(const json& body, unsigned status = 200) {
  return admin::AdminResponse{status, "application/json", body.dump(2) + "\n"};
}

json status_json(const AdminContext& ctx) {
  AgentStatus st = ctx.agent->status();
  json out;
  out["version"] = st.version;
  out["origin"] = st.origin;
  out["applied_at"] = st.version ? config::format_utc_time(st.applied_at) : "";
  out["reloads"] = {{"ok", st.reloads_ok}, {"refused", st.reloads_failed}};
  json overrides = json::object();
  for (const auto& [host, weights] : st.overrides) {
    json w = json::object();
    for (const auto& [subset, weight] : weights) w[subset] = weight;
    overrides[host] = w;
  }
  out["overrides"] = overrides;
  // Per overridden host, the client views that keep the files' weights
  // (a VirtualService of their own: docs/config-reference.md, "Runtime weight overrides").
  out["override_views_kept"] = st.override_views_kept.empty() ? json::object() : json(st.override_views_kept);
  out["last_error"] = nullptr;
  if (st.last_error) {
    out["last_error"] = {{"at", config::format_utc_time(st.last_error->when)}, {"messages", st.last_error->messages}};
  }
  out["warnings"] = st.warnings;
  out["planes"] = {{"xdp", ctx.xdp != nullptr}, {"l7", ctx.proxy != nullptr}};
  // The forwarder is its own process: "dpdk" says whether it is alive (its
  // stats file is fresh), and which table generation it steers with.
  auto forwarder = ctx.dpdk_stats_file.empty() ? std::nullopt : read_forwarder_stats(ctx.dpdk_stats_file);
  out["planes"]["dpdk"] = forwarder && forwarder->up();
  if (forwarder && forwarder->up()) out["dpdk_generation"] = forwarder->counters.value("generation", 0);
  out["interfaces"] = ctx.interfaces;
  if (ctx.kubernetes_status) out["kubernetes"] = ctx.kubernetes_status();
  if (ctx.redirect_watch) {
    json redirect = ctx.redirect_watch->status();
    for (const auto& w : redirect.value("warnings", json::array())) out["warnings"].push_back(w);
    redirect.erase("warnings");
    out["xdp_redirect"] = redirect;
  }
  return out;
}

// The datapath's stats with the agent's conntrack reaping totals among its
// global events.
bpfmaps::DatapathStats xdp_stats(const AdminContext& ctx, bpfmaps::StatsScope scope = bpfmaps::StatsScope::All) {
  bpfmaps::DatapathStats stats = ctx.xdp->stats(scope);
  if (ctx.reap_watch && scope != bpfmaps::StatsScope::SubsetsOnly)
    for (const auto& total : ctx.reap_watch->totals()) stats.global.push_back(total);
  return stats;
}

json clusters_json(const AdminContext& ctx, const model::Snapshot& snap) {
  std::map<std::string, bpfmaps::DatapathStats::Backend> backend_load;   // "addr:port/tcp" -> load figures
  if (ctx.xdp) {
    for (auto& b : xdp_stats(ctx, bpfmaps::StatsScope::Counters).backends) backend_load[b.address] = std::move(b);
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
        // A client view's DestinationRule's subset (names repeat across views).
        if (const auto rule = svc.subset_rule(subset_index); !rule.empty()) s["destination_rule"] = std::string(rule);
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
          // fmt, not "[" + s + "]": GCC 12's -Wrestrict misfires on that at -O3 (release builds).
          std::string addr = ep.address.is_v4() ? ep.address.to_string() : fmt::format("[{}]", ep.address.to_string());
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
          if (auto it = backend_load.find(key); it != backend_load.end()) {
            const auto& b = it->second;
            e["l7_active_requests"] = static_cast<int64_t>(b.load.l7_active);
            e["l4_active_flows"] = b.active_flows();
            e["xdp_new_flows"] = b.counters.new_flows;
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

// Absent or null counters read as 0: a forwarder older or newer than this
// agent may lack a field, and that must not cost the whole scrape.
uint64_t counter_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

std::string_view version_or_unknown(std::string_view subset) { return subset.empty() ? "unknown" : subset; }

// One typed datapath metric: its family and the counter field it reads.
struct CounterMetric {
  std::string_view name, help;
  __u64 sluice_counters::*field;
};

std::map<std::string, double> configured_shares(const model::Service& svc, uint32_t svc_index,
                                                const model::PortRoutes& routes) {
  // L4: the connection-level destinations. L7: the first route that matches
  // every request (the default route; else the first route with
  // destinations), which is what a canary shift changes.
  const std::vector<model::WeightedDestination>* dests = &routes.l4;
  if (routes.plane == model::Plane::L7) {
    dests = nullptr;
    for (const auto& r : routes.http) {
      if (r.route.empty()) continue;
      if (dests == nullptr || r.matches.empty()) dests = &r.route;
      if (r.matches.empty()) break;
    }
  }
  std::map<std::string, double> out;
  if (dests == nullptr) return out;
  for (const auto& d : *dests) {
    if (d.destination.service != svc_index) continue;   // a route to another service is that service's traffic
    out[svc.subsets[d.destination.subset].name] += d.share;
  }
  return out;
}

}  // namespace

std::string render_xdp_prometheus(const bpfmaps::DatapathStats& stats) {
  PrometheusText out;
  // Istio's standard TCP metrics, per destination subset (reporter: the XDP plane).
  static constexpr CounterMetric kTcpMetrics[] = {
      {"istio_tcp_connections_opened_total", "Connections opened (XDP steered a new flow)", &sluice_counters::new_flows},
      {"istio_tcp_connections_closed_total", "Connections closed (FIN/RST seen or idle expiry)",
       &sluice_counters::closed_flows},
      {"istio_tcp_received_bytes_total", "Bytes from clients to the destination", &sluice_counters::bytes_in},
      {"istio_tcp_sent_bytes_total", "Bytes from the destination to clients", &sluice_counters::bytes_out},
  };
  for (const auto& m : kTcpMetrics) {
    out.family(m.name, MetricType::Counter, m.help);
    for (const auto& s : stats.subsets) {
      out.sample(m.name,
                 Labels()
                     .add("reporter", "sluice-xdp")
                     .add("destination_service", s.name.service)
                     .add("destination_service_name", s.name.service)
                     .add("destination_version", version_or_unknown(s.name.subset))
                     .add("destination_port", s.name.port)
                     .add("request_protocol", s.name.protocol),
                 uint64_t{s.counters.*m.field});
    }
  }
  static constexpr CounterMetric kServiceMetrics[] = {
      {"sluice_xdp_packets_in_total", "Client packets DNATed to a backend", &sluice_counters::packets_in},
      {"sluice_xdp_packets_out_total", "Backend packets reverse-NATed to the VIP", &sluice_counters::packets_out},
      {"sluice_xdp_passthrough_packets_total", "Packets handed to the kernel (L7 or PASSTHROUGH)",
       &sluice_counters::passthrough},
      {"sluice_xdp_resteered_flows_total", "Tracked flows moved because their backend left",
       &sluice_counters::resteered},
      {"sluice_xdp_drops_no_backend_total", "Packets dropped: the subset had no backend",
       &sluice_counters::drop_no_backend},
  };
  for (const auto& m : kServiceMetrics) {
    out.family(m.name, MetricType::Counter, m.help);
    for (const auto& s : stats.services) {
      out.sample(m.name,
                 Labels().add("service", s.name.service).add("port", s.name.port).add("protocol", s.name.protocol),
                 uint64_t{s.counters.*m.field});
    }
  }
  out.family("sluice_xdp_backend_new_flows_total", MetricType::Counter, "New flows steered to each backend");
  for (const auto& b : stats.backends)
    out.sample("sluice_xdp_backend_new_flows_total", Labels().add("backend", b.address).add("live", b.live ? 1 : 0),
               uint64_t{b.counters.new_flows});
  out.family("sluice_backend_active_l4_flows", MetricType::Gauge, "Open flows per backend (XDP): opened minus closed minus reaped");
  out.family("sluice_backend_active_l7_requests", MetricType::Gauge,
             "Active L7 requests per backend (agent), as XDP reads them");
  for (const auto& b : stats.backends) {
    const Labels backend = Labels().add("backend", b.address);
    out.sample("sluice_backend_active_l4_flows", backend, b.active_flows());
    out.sample("sluice_backend_active_l7_requests", backend, static_cast<int64_t>(b.load.l7_active));
  }
  out.family("sluice_xdp_events_total", MetricType::Counter, "Datapath-wide events and verdicts by reason");
  for (const auto& [name, value] : stats.global) out.sample("sluice_xdp_events_total", Labels().add("event", name), value);
  out.family("sluice_conntrack_entries", MetricType::Gauge, "Flows in the conntrack LRU");
  out.sample("sluice_conntrack_entries", Labels(), stats.conntrack_flows);
  out.family("sluice_conntrack_evictions_total", MetricType::Counter,
             "Conntrack inserts that failed or tracked flows found missing mid-flow (LRU evictions)");
  out.sample("sluice_conntrack_evictions_total", Labels(),
             stats.global_value("ct_insert_failed") + stats.global_value("ct_midflow_miss"));
  return out.take();
}

std::string render_agent_prometheus(const AgentStatus& st, const model::Snapshot* snapshot) {
  PrometheusText out;
  out.family("sluice_config_version", MetricType::Gauge, "Version of the serving snapshot");
  out.sample("sluice_config_version", Labels(), st.version);
  out.family("sluice_config_reloads_total", MetricType::Counter, "Configuration changes by result");
  out.sample("sluice_config_reloads_total", Labels().add("result", "applied"), st.reloads_ok);
  out.sample("sluice_config_reloads_total", Labels().add("result", "refused"), st.reloads_failed);
  out.family("sluice_config_last_change_refused", MetricType::Gauge, "1 if the latest change was refused");
  out.sample("sluice_config_last_change_refused", Labels(), uint64_t{st.last_error ? 1u : 0u});
  out.family("sluice_weight_overrides", MetricType::Gauge, "Services whose weights a runtime override sets");
  out.sample("sluice_weight_overrides", Labels(), uint64_t{st.overrides.size()});
  // What the serving routes ask for, per subset: the line dashboards draw the
  // observed shares (istio_requests_total, istio_tcp_connections_opened_total) against.
  out.family("sluice_route_configured_share", MetricType::Gauge,
             "Share of a service port's traffic its serving route gives each subset (L4: per connection; L7: the "
             "default route, per request)");
  if (snapshot != nullptr) {
    for (uint32_t i = 0; i < snapshot->services.size(); ++i) {
      const auto& svc = snapshot->services[i];
      for (const auto& port : svc.ports) {
        const model::PortRoutes* routes = svc.routes_for(port.number);
        if (routes == nullptr) continue;
        for (const auto& [subset, share] : configured_shares(svc, i, *routes)) {
          out.sample("sluice_route_configured_share",
                     Labels()
                         .add("destination_service", svc.host)
                         .add("destination_port", port.number)
                         .add("destination_version", version_or_unknown(subset))
                         .add("plane", routes->plane == model::Plane::L7 ? "l7" : "l4"),
                     share);
        }
      }
    }
  }
  return out.take();
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

std::string render_dpdk_prometheus(const ForwarderStats& stats, const bpfmaps::DatapathStats* datapath) {
  PrometheusText out;
  const json& c = stats.counters;
  out.family("sluice_dpdk_up", MetricType::Gauge, "1 while the DPDK forwarder keeps its stats file fresh (at most 5 s old)");
  out.sample("sluice_dpdk_up", Labels(), uint64_t{stats.up() ? 1u : 0u});
  out.family("sluice_dpdk_stats_age_seconds", MetricType::Gauge, "Age of the forwarder's stats file (+Inf: unreadable)");
  out.sample_text("sluice_dpdk_stats_age_seconds", Labels(),
                  std::isfinite(stats.age_seconds) ? fmt::format("{:.3f}", stats.age_seconds) : "+Inf");
  if (c.contains("error")) return out.take();
  // items() views its object: take the sections by reference, not as temporaries.
  const json empty = json::object();
  auto section = [&](const char* key) -> const json& {
    auto it = c.find(key);
    return it != c.end() && it->is_object() ? *it : empty;
  };

  // Stat slots and backend ids are the XDP tables' (the forwarder reads them).
  std::map<std::string, const bpfmaps::DatapathStats::Slot*> service_of, subset_of;
  std::map<std::string, const bpfmaps::DatapathStats::Backend*> backend_of;
  if (datapath != nullptr) {
    for (const auto& s : datapath->services) service_of[std::to_string(s.slot)] = &s;
    for (const auto& s : datapath->subsets) subset_of[std::to_string(s.slot)] = &s;
    for (const auto& b : datapath->backends) backend_of[std::to_string(b.id)] = &b;
  }
  auto service_labels = [&](const std::string& slot) {
    auto it = service_of.find(slot);
    if (it == service_of.end()) return Labels().add("service", "slot " + slot).add("port", "").add("protocol", "");
    const auto& n = it->second->name;
    return Labels().add("service", n.service).add("port", n.port).add("protocol", n.protocol);
  };
  auto backend_labels = [&](const std::string& id) {
    auto it = backend_of.find(id);
    return Labels().add("backend", it == backend_of.end() ? "id " + id : it->second->address);
  };

  out.family("sluice_dpdk_table_generation", MetricType::Gauge,
             "Table generation the forwarder steers with (flip counter; low bit is the half)");
  out.sample("sluice_dpdk_table_generation", Labels(), counter_of(c, "generation"));
  out.family("sluice_dpdk_snapshots_applied_total", MetricType::Counter, "Table generations the forwarder switched to");
  out.sample("sluice_dpdk_snapshots_applied_total", Labels(), counter_of(c, "snapshots_applied"));
  out.family("sluice_dpdk_flows", MetricType::Gauge, "Entries in the forwarder's flow tables");
  out.sample("sluice_dpdk_flows", Labels().add("table", "forward"), counter_of(c, "flows"));
  out.sample("sluice_dpdk_flows", Labels().add("table", "reverse"), counter_of(c, "reverse_flows"));
  out.family("sluice_dpdk_flow_capacity", MetricType::Gauge, "Capacity of each flow table (sluice-fwd --flows)");
  out.sample("sluice_dpdk_flow_capacity", Labels(), counter_of(c, "flow_capacity"));
  out.family("sluice_dpdk_cycles_per_packet", MetricType::Gauge, "TSC cycles per packet in bursts that carried packets");
  const auto cycles = c.find("cycles_per_packet");
  out.sample_text("sluice_dpdk_cycles_per_packet", Labels(),
                  fmt::format("{:.1f}", cycles != c.end() && cycles->is_number() ? cycles->get<double>() : 0.0));
  out.family("sluice_dpdk_events_total", MetricType::Counter, "Forwarder-wide events and verdicts by reason (XDP's names)");
  for (const auto& [name, value] : section("global").items())
    out.sample("sluice_dpdk_events_total", Labels().add("event", name), value.is_number() ? value.get<uint64_t>() : 0);

  out.family("sluice_dpdk_port_packets_total", MetricType::Counter, "Packets through each DPDK port");
  out.family("sluice_dpdk_port_errors_total", MetricType::Counter,
             "Port drops by kind: rx_missed (RX ring full), rx_errors, rx_nombuf, tx_errors");
  for (const auto& [port, p] : section("ports").items()) {
    const Labels labels = Labels().add("port", port).add("device", p.value("name", ""));
    out.sample("sluice_dpdk_port_packets_total", Labels(labels).add("direction", "rx"), counter_of(p, "rx_packets"));
    out.sample("sluice_dpdk_port_packets_total", Labels(labels).add("direction", "tx"), counter_of(p, "tx_packets"));
    for (const char* kind : {"rx_missed", "rx_errors", "rx_nombuf", "tx_errors"})
      out.sample("sluice_dpdk_port_errors_total", Labels(labels).add("kind", kind), counter_of(p, kind));
  }

  // The exception path: frames each DPDK port handed to its kernel TAP and
  // took back from it (sluice-fwd --exception-tap).
  out.family("sluice_dpdk_exception_packets_total", MetricType::Counter,
             "Frames through each port's exception TAP: to_kernel (not steered, given to the kernel), from_kernel "
             "(the kernel's, sent on the port)");
  out.family("sluice_dpdk_exception_dropped_total", MetricType::Counter,
             "Exception frames dropped: to_kernel (the TAP refused the write), from_kernel (the port's TX ring was full)");
  out.family("sluice_dpdk_exception_other_host_total", MetricType::Counter,
             "Unsteered unicast frames for another MAC (promiscuous port), not given to the kernel");
  out.family("sluice_dpdk_exception_checksums_completed_total", MetricType::Counter,
             "Partial L4 checksums (sender's offload pending) completed before the TAP");
  for (const auto& [port, t] : section("exception_taps").items()) {
    const Labels labels = Labels().add("port", port).add("iface", t.value("iface", ""));
    for (const char* direction : {"to_kernel", "from_kernel"}) {
      out.sample("sluice_dpdk_exception_packets_total", Labels(labels).add("direction", direction),
                 counter_of(t, direction));
      out.sample("sluice_dpdk_exception_dropped_total", Labels(labels).add("direction", direction),
                 counter_of(t, fmt::format("{}_dropped", direction).c_str()));
    }
    out.sample("sluice_dpdk_exception_other_host_total", labels, counter_of(t, "other_host"));
    out.sample("sluice_dpdk_exception_checksums_completed_total", labels, counter_of(t, "checksum_completed"));
  }

  // Istio's TCP figures per destination subset, under sluice_dpdk_ names so
  // the istio_tcp_* families (the XDP plane's) stay one per name.
  struct PerSlot {
    const char* name;
    const char* field;
    const char* help;
  };
  const PerSlot subset_metrics[] = {
      {"sluice_dpdk_tcp_connections_opened_total", "new_flows", "Connections the forwarder steered"},
      {"sluice_dpdk_tcp_connections_closed_total", "closed_flows", "Of those, closed (FIN/RST, re-steer or idle expiry)"},
      {"sluice_dpdk_tcp_received_bytes_total", "bytes_in", "Bytes from clients to the destination"},
      {"sluice_dpdk_tcp_sent_bytes_total", "bytes_out", "Bytes from the destination to clients"},
  };
  for (const auto& m : subset_metrics) {
    out.family(m.name, MetricType::Counter, m.help);
    for (const auto& [slot, counters] : section("subsets").items()) {
      auto it = subset_of.find(slot);
      const SlotName unnamed{"slot " + slot, 0, "", ""};
      const SlotName& n = it == subset_of.end() ? unnamed : it->second->name;
      out.sample(m.name,
                 Labels()
                     .add("destination_service", n.service)
                     .add("destination_version", version_or_unknown(n.subset))
                     .add("destination_port", n.port)
                     .add("request_protocol", n.protocol),
                 counter_of(counters, m.field));
    }
  }
  const PerSlot service_metrics[] = {
      {"sluice_dpdk_packets_in_total", "packets_in", "Client packets DNATed to a backend"},
      {"sluice_dpdk_packets_out_total", "packets_out", "Backend packets reverse-NATed to the VIP"},
      {"sluice_dpdk_passthrough_packets_total", "passthrough", "Packets left to the kernel (L7 or PASSTHROUGH)"},
      {"sluice_dpdk_drops_no_backend_total", "drop_no_backend", "Packets dropped: the subset had no backend"},
  };
  for (const auto& m : service_metrics) {
    out.family(m.name, MetricType::Counter, m.help);
    for (const auto& [slot, counters] : section("services").items())
      out.sample(m.name, service_labels(slot), counter_of(counters, m.field));
  }
  out.family("sluice_dpdk_backend_new_flows_total", MetricType::Counter, "New flows the forwarder steered to each backend");
  out.family("sluice_dpdk_backend_active_flows", MetricType::Gauge,
             "The forwarder's open flows per backend (also added to the shared least-request map)");
  for (const auto& [id, counters] : section("backends").items()) {
    const uint64_t opened = counter_of(counters, "new_flows"), closed = counter_of(counters, "closed_flows");
    out.sample("sluice_dpdk_backend_new_flows_total", backend_labels(id), opened);
    out.sample("sluice_dpdk_backend_active_flows", backend_labels(id), opened >= closed ? opened - closed : 0);
  }
  return out.take();
}

std::string render_prometheus(const AdminContext& ctx) {
  auto snapshot = ctx.agent->current();
  std::string out = render_agent_prometheus(ctx.agent->status(), snapshot.get());
  if (ctx.proxy) out += ctx.proxy->render_prometheus();
  std::optional<bpfmaps::DatapathStats> datapath;
  if (ctx.xdp) {
    datapath = xdp_stats(ctx);
    out += render_xdp_prometheus(*datapath);
  }
  if (!ctx.dpdk_stats_file.empty())
    if (auto forwarder = read_forwarder_stats(ctx.dpdk_stats_file))
      out += render_dpdk_prometheus(*forwarder, datapath ? &*datapath : nullptr);
  return out;
}

Sample sample_planes(const AdminContext& ctx) {
  Sample sample;
  sample.at = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto snap = ctx.agent->current();
  if (snap) {
    sample.version = snap->version;
    for (uint32_t i = 0; i < snap->services.size(); ++i) {
      const auto& svc = snap->services[i];
      for (const auto& port : svc.ports) {
        const model::PortRoutes* routes = svc.routes_for(port.number);
        PortSample& p = sample.ports[{svc.host, port.number}];
        p.plane = routes && routes->plane == model::Plane::L7 ? "l7" : "l4";
        if (!routes) continue;
        for (const auto& [subset, share] : configured_shares(svc, i, *routes)) p.subsets[subset].configured = share;
      }
    }
  }
  // Counters of ports the snapshot does not have (any more) are left out:
  // the window shows the serving configuration.
  auto subset_of = [&](const std::string& service, uint32_t port, const std::string& subset) -> SubsetCounters* {
    auto it = sample.ports.find({service, port});
    return it == sample.ports.end() ? nullptr : &it->second.subsets[subset];
  };
  if (ctx.xdp) {
    for (const auto& s : ctx.xdp->stats(bpfmaps::StatsScope::SubsetsOnly).subsets)
      if (auto* c = subset_of(s.name.service, s.name.port, s.name.subset)) c->l4_new_flows += s.counters.new_flows;
  }
  if (ctx.proxy) {
    for (const auto& t : ctx.proxy->subset_request_totals()) {
      if (auto* c = subset_of(t.service, t.port, t.version == "unknown" ? std::string() : t.version)) {
        c->l7_requests += t.requests;
        c->l7_errors += t.errors;
        for (size_t b = 0; b < c->l7_buckets.size(); ++b) c->l7_buckets[b] += t.buckets[b];
      }
    }
  }
  return sample;
}

json window_json(const AdminContext& ctx, const std::string& service) {
  json out = ctx.window ? ctx.window->view(service) : StatsWindow().view(service);
  out["status"] = status_json(ctx);
  out["started_at"] = ctx.started_at;
  json changes = json::array();
  for (const auto& c : ctx.agent->changes()) {
    changes.push_back({{"version", c.version},
                       {"at", std::chrono::duration<double>(c.when.time_since_epoch()).count()},
                       {"kind", c.kind},
                       {"what", c.what}});
  }
  out["changes"] = changes;
  // Per subset: its endpoints with their load and outlier state, as /clusters has them.
  auto snap = ctx.agent->current();
  if (!snap) return out;
  std::map<std::pair<std::string, uint32_t>, json> clusters;
  for (auto& c : clusters_json(ctx, *snap)) {
    std::pair<std::string, uint32_t> key{c.value("service", ""), c.value("port", 0u)};
    clusters[key] = std::move(c);   // the key first: json's operator= moves its argument before the left side runs
  }
  for (auto& port : out["ports"]) {
    auto it = clusters.find({port.value("service", ""), port.value("port", 0u)});
    if (it == clusters.end()) continue;
    for (auto& subset : port["subsets"]) {
      for (const auto& cs : it->second["subsets"]) {
        if (cs.value("name", "") != subset.value("name", "")) continue;
        json endpoints = json::array();
        uint64_t ejected = 0;
        for (const auto& e : cs["endpoints"]) {
          json row{{"name", e.value("name", "")}, {"address", e.value("address", "")}, {"ejected", e.value("ejected", false)}};
          if (e.contains("l7_active_requests")) row["l7_active_requests"] = e["l7_active_requests"];
          if (e.contains("l4_active_flows")) row["l4_active_flows"] = e["l4_active_flows"];
          ejected += e.value("ejected", false) ? 1 : 0;
          endpoints.push_back(row);
        }
        subset["endpoints"] = endpoints;
        subset["ejected"] = ejected;
        subset["policy"] = cs.value("policy", "");
      }
    }
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
  server.handle("/explain", [ctx](const admin::AdminRequest&) {
    auto snap = ctx.agent->current();
    if (!snap) return admin::AdminResponse{503, "text/plain; charset=utf-8", "no valid configuration has been applied\n"};
    return admin::AdminResponse{200, "text/plain; charset=utf-8", config::explain_text(*snap)};
  });
  server.handle("/clusters", [ctx](const admin::AdminRequest&) {
    auto snap = ctx.agent->current();
    if (!snap) return json_response(json::array());
    return json_response(clusters_json(ctx, *snap));
  });
  server.handle("/stats/prometheus", [ctx](const admin::AdminRequest&) {
    return admin::AdminResponse{200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(ctx)};
  });
  server.handle("/stats/datapath", [ctx](const admin::AdminRequest&) {
    if (!ctx.xdp) return json_response({{"error", "running without the kernel datapath (--no-xdp)"}}, 404);
    return json_response(bpfmaps::datapath_stats_json(xdp_stats(ctx)));
  });
  server.handle("/stats/window", [ctx](const admin::AdminRequest& req) {
    auto it = req.query.find("service");
    return json_response(window_json(ctx, it == req.query.end() ? std::string() : it->second));
  });
  for (const UiAsset& asset : ui_assets()) {
    auto serve = [&asset](const admin::AdminRequest&) {
      // Read-only and same-origin: scripts and styles come from these files
      // only (no inline code), the browser may not guess content types, and
      // no other site may frame the page.
      return admin::AdminResponse{200, std::string(asset.content_type), std::string(asset.body),
                                  {{"Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                    "base-uri 'none'; form-action 'none'"},
                                   {"X-Content-Type-Options", "nosniff"},
                                   {"Referrer-Policy", "no-referrer"},
                                   {"Cache-Control", "no-cache"}}};
    };
    server.handle(std::string(asset.path), serve);
    if (asset.path == "/ui/index.html") {
      server.handle("/ui", serve);
      server.handle("/ui/", serve);
    }
  }
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
