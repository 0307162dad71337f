// Reading the datapath's counters and conntrack back out, for the agent's
// stats, the harness's JSON dump and tests. Works on any DatapathTables.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "bpfmaps/datapath_tables.h"
#include "bpfmaps/table_writer.h"
#include "sluice/datapath_structs.h"

namespace sluice::bpfmaps {

// Per-CPU counters of one slot, summed over CPUs.
sluice_counters sum_counters(const DatapathTables& tables, MapRole role, uint32_t index);
uint64_t global_counter(const DatapathTables& tables, uint32_t index);
std::string_view global_counter_name(uint32_t index);   // "pass_not_service", ...

struct ConntrackFlow {
  sluice_flow_key key;
  sluice_ct_entry entry;
};
std::vector<ConntrackFlow> list_conntrack(const DatapathTables& tables, size_t limit = SIZE_MAX);

nlohmann::json counters_json(const sluice_counters& c);
// {"generation", "global": {...}, "services": [...], "subsets": [...],
//  "backends": [...{"id","address","live","load":{...}, counters}], "conntrack_flows"}
nlohmann::json datapath_stats_json(const DatapathTables& tables, const TableWriter& writer);

}  // namespace sluice::bpfmaps
