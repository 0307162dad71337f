#include "bpfmaps/datapath_report.h"

#include <array>
#include <cstring>

namespace sluice::bpfmaps {

sluice_counters sum_counters(const DatapathTables& tables, MapRole role, uint32_t index) {
  sluice_counters total{};
  const Bytes raw = tables.lookup_per_cpu(role, as_bytes_of(index));
  constexpr size_t kFields = sizeof(sluice_counters) / sizeof(uint64_t);
  for (size_t off = 0; off + sizeof(sluice_counters) <= raw.size(); off += sizeof(sluice_counters)) {
    std::array<uint64_t, kFields> cpu{};
    std::memcpy(cpu.data(), raw.data() + off, sizeof(sluice_counters));
    auto* sum = reinterpret_cast<uint64_t*>(&total);
    for (size_t i = 0; i < kFields; ++i) sum[i] += cpu[i];
  }
  return total;
}

uint64_t global_counter(const DatapathTables& tables, uint32_t index) {
  const Bytes raw = tables.lookup_per_cpu(MapRole::GlobalStats, as_bytes_of(index));
  uint64_t total = 0;
  for (size_t off = 0; off + 8 <= raw.size(); off += 8) {
    uint64_t v = 0;
    std::memcpy(&v, raw.data() + off, 8);
    total += v;
  }
  return total;
}

std::string_view global_counter_name(uint32_t index) {
  static constexpr std::array<std::string_view, 28> kNames = {
      "packets",           "pass_not_ip",       "pass_not_l4",        "pass_truncated",
      "pass_malformed",    "pass_not_service",  "pass_ip_options",    "pass_fragment",
      "pass_ipv6_ext",     "pass_l7",           "pass_passthrough",   "new_flows",
      "ct_midflow_miss",   "ct_insert_failed",  "ct_expired",         "resteer_backend_gone",
      "forwarded",         "reverse_nat",       "redirect",           "tx",
      "fib_no_neigh",      "fib_pass",          "drop_no_backend",    "csum_full",
      "drop_too_big",      "ct_reply_conflict", "pass_no_redirect",   "redirect_err",
  };
  return index < kNames.size() ? kNames[index] : std::string_view{};
}

std::vector<ConntrackFlow> list_conntrack(const DatapathTables& tables, size_t limit) {
  std::vector<ConntrackFlow> out;
  for (const Bytes& raw : tables.keys(MapRole::Conntrack, limit)) {
    ConntrackFlow flow{};
    std::memcpy(&flow.key, raw.data(), std::min(raw.size(), sizeof(flow.key)));
    if (tables.lookup(MapRole::Conntrack, raw, as_writable_bytes_of(flow.entry))) out.push_back(flow);
  }
  return out;
}

nlohmann::json counters_json(const sluice_counters& c) {
  return {
      {"packets_in", c.packets_in},   {"bytes_in", c.bytes_in},         {"packets_out", c.packets_out},
      {"bytes_out", c.bytes_out},     {"new_flows", c.new_flows},       {"closed_flows", c.closed_flows},
      {"active_flows", c.new_flows >= c.closed_flows ? c.new_flows - c.closed_flows : 0},
      {"passthrough", c.passthrough}, {"resteered", c.resteered},       {"drop_no_backend", c.drop_no_backend},
  };
}

nlohmann::json datapath_stats_json(const DatapathTables& tables, const TableWriter& writer) {
  nlohmann::json out;
  out["generation"] = tables.load_generation();
  nlohmann::json global = nlohmann::json::object();
  for (uint32_t i = 0; !global_counter_name(i).empty(); ++i)
    global[std::string(global_counter_name(i))] = global_counter(tables, i);
  out["global"] = global;
  out["services"] = nlohmann::json::array();
  for (const auto& [slot, name] : writer.service_slots()) {
    nlohmann::json s = counters_json(sum_counters(tables, MapRole::ServiceStats, slot));
    s["slot"] = slot;
    s["service"] = name.service;
    s["port"] = name.port;
    s["protocol"] = name.protocol;
    out["services"].push_back(s);
  }
  out["subsets"] = nlohmann::json::array();
  for (const auto& [slot, name] : writer.subset_slots()) {
    nlohmann::json s = counters_json(sum_counters(tables, MapRole::SubsetStats, slot));
    s["slot"] = slot;
    s["service"] = name.service;
    s["port"] = name.port;
    s["protocol"] = name.protocol;
    s["subset"] = name.subset;
    out["subsets"].push_back(s);
  }
  out["backends"] = nlohmann::json::array();
  for (const auto& [id, identity] : writer.backends()) {
    nlohmann::json b = counters_json(sum_counters(tables, MapRole::BackendStats, id));
    sluice_backend_load load{};
    tables.lookup(MapRole::BackendLoad, as_bytes_of(id), as_writable_bytes_of(load));
    b["id"] = id;
    b["address"] = identity.to_string();
    b["live"] = writer.backend_live(id);
    b["l7_active"] = load.l7_active;
    b["l4_opened"] = load.l4_opened;
    b["l4_closed"] = load.l4_closed;
    b["l4_reaped"] = load.l4_reaped;
    out["backends"].push_back(b);
  }
  out["conntrack_flows"] = tables.count(MapRole::Conntrack);
  return out;
}

}  // namespace sluice::bpfmaps
