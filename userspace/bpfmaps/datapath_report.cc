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

namespace {

uint64_t sum_over_cpus(const DatapathTables& tables, uint32_t index) {
  const Bytes raw = tables.lookup_per_cpu(MapRole::GlobalStats, as_bytes_of(index));
  uint64_t total = 0;
  for (size_t off = 0; off + 8 <= raw.size(); off += 8) {
    uint64_t v = 0;
    std::memcpy(&v, raw.data() + off, 8);
    total += v;
  }
  return total;
}

}  // namespace

// The program's non-service exit counts its packets only in pass_filtered
// (one counter update on the cheapest path); they are packets seen and not
// a service's all the same.
uint64_t global_counter(const DatapathTables& tables, uint32_t index) {
  uint64_t total = sum_over_cpus(tables, index);
  if (index == SLUICE_G_PACKETS || index == SLUICE_G_PASS_NOT_SERVICE)
    total += sum_over_cpus(tables, SLUICE_G_PASS_FILTERED);
  return total;
}

std::string_view global_counter_name(uint32_t index) {
  static constexpr std::array<std::string_view, 31> kNames = {
      "packets",           "pass_not_ip",       "pass_not_l4",        "pass_truncated",
      "pass_malformed",    "pass_not_service",  "pass_ip_options",    "pass_fragment",
      "pass_ipv6_ext",     "pass_l7",           "pass_passthrough",   "new_flows",
      "ct_midflow_miss",   "ct_insert_failed",  "ct_expired",         "resteer_backend_gone",
      "forwarded",         "reverse_nat",       "redirect",           "tx",
      "fib_no_neigh",      "fib_pass",          "drop_no_backend",    "csum_full",
      "drop_too_big",      "ct_reply_conflict", "pass_no_redirect",   "redirect_err",
      "pass_filtered",     "ct_given_up",       "pass_stale_reply",
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

uint64_t DatapathStats::global_value(std::string_view name) const {
  for (const auto& [n, v] : global)
    if (n == name) return v;
  return 0;
}

DatapathStats read_datapath_stats(const DatapathTables& tables, const TableWriter& writer, StatsScope scope) {
  DatapathStats out;
  out.generation = tables.load_generation();
  for (const auto& [slot, name] : writer.subset_slots())
    out.subsets.push_back({slot, name, sum_counters(tables, MapRole::SubsetStats, slot)});
  if (scope == StatsScope::SubsetsOnly) return out;
  for (uint32_t i = 0; !global_counter_name(i).empty(); ++i)
    out.global.emplace_back(global_counter_name(i), global_counter(tables, i));
  for (const auto& [slot, name] : writer.service_slots())
    out.services.push_back({slot, name, sum_counters(tables, MapRole::ServiceStats, slot)});
  for (const auto& [id, identity] : writer.backends()) {
    DatapathStats::Backend b;
    b.id = id;
    b.address = identity.to_string();
    b.live = writer.backend_live(id);
    b.counters = sum_counters(tables, MapRole::BackendStats, id);
    tables.lookup(MapRole::BackendLoad, as_bytes_of(id), as_writable_bytes_of(b.load));
    out.backends.push_back(std::move(b));
  }
  if (scope == StatsScope::All) out.conntrack_flows = tables.count(MapRole::Conntrack);
  return out;
}

nlohmann::json datapath_stats_json(const DatapathStats& stats) {
  nlohmann::json out;
  out["generation"] = stats.generation;
  nlohmann::json global = nlohmann::json::object();
  for (const auto& [name, value] : stats.global) global[std::string(name)] = value;
  out["global"] = global;
  auto slot_json = [](const DatapathStats::Slot& s) {
    nlohmann::json j = counters_json(s.counters);
    j["slot"] = s.slot;
    j["service"] = s.name.service;
    j["port"] = s.name.port;
    j["protocol"] = s.name.protocol;
    return j;
  };
  out["services"] = nlohmann::json::array();
  for (const auto& s : stats.services) out["services"].push_back(slot_json(s));
  out["subsets"] = nlohmann::json::array();
  for (const auto& s : stats.subsets) {
    nlohmann::json j = slot_json(s);
    j["subset"] = s.name.subset;
    out["subsets"].push_back(j);
  }
  out["backends"] = nlohmann::json::array();
  for (const auto& b : stats.backends) {
    nlohmann::json j = counters_json(b.counters);
    j["id"] = b.id;
    j["address"] = b.address;
    j["live"] = b.live;
    j["l7_active"] = b.load.l7_active;
    j["l4_opened"] = b.load.l4_opened;
    j["l4_closed"] = b.load.l4_closed;
    j["l4_reaped"] = b.load.l4_reaped;
    out["backends"].push_back(j);
  }
  out["conntrack_flows"] = stats.conntrack_flows;
  return out;
}

nlohmann::json datapath_stats_json(const DatapathTables& tables, const TableWriter& writer) {
  return datapath_stats_json(read_datapath_stats(tables, writer));
}

}  // namespace sluice::bpfmaps
