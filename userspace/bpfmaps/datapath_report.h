// Reading the datapath's counters and conntrack back out, for the agent's
// stats, the harness's JSON dump and tests. Works on any DatapathTables.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bpfmaps/datapath_tables.h"
#include "bpfmaps/table_writer.h"
#include "sluice/datapath_structs.h"

namespace sluice::bpfmaps {

// Per-CPU counters of one slot, summed over CPUs.
sluice_counters sum_counters(const DatapathTables& tables, MapRole role, uint32_t index);
// A global counter summed over CPUs; packets and pass_not_service include
// pass_filtered (the program's non-service exit counts only there).
uint64_t global_counter(const DatapathTables& tables, uint32_t index);
std::string_view global_counter_name(uint32_t index);   // "pass_not_service", ...

struct ConntrackFlow {
  sluice_flow_key key;
  sluice_ct_entry entry;
};
std::vector<ConntrackFlow> list_conntrack(const DatapathTables& tables, size_t limit = SIZE_MAX);

// The datapath's counters at one moment, typed: what the Prometheus renderer
// (agent/admin_api.cc), /stats/datapath and the agent's per-second window
// read. Slots and backend ids are named from the TableWriter.
struct DatapathStats {
  struct Slot {
    uint32_t slot = 0;
    SlotName name;              // service, port, protocol (and subset for subset slots)
    sluice_counters counters{};
  };
  struct Backend {
    uint32_t id = 0;
    std::string address;        // "10.200.11.2:9081/tcp"
    bool live = false;          // in the serving table half
    sluice_counters counters{};
    sluice_backend_load load{};
    uint64_t active_flows() const { return sluice_l4_active(load.l4_opened, load.l4_closed, load.l4_reaped); }
  };
  uint64_t generation = 0;
  std::vector<std::pair<std::string_view, uint64_t>> global;   // event name -> count, in index order
  std::vector<Slot> services, subsets;
  std::vector<Backend> backends;
  uint64_t conntrack_flows = 0;

  uint64_t global_value(std::string_view name) const;
};

// All walks the conntrack map to count its flows (one syscall per flow);
// Counters skips that walk (conntrack_flows stays 0); SubsetsOnly reads the
// subset slots alone (what the per-second window needs).
enum class StatsScope : uint8_t { All, Counters, SubsetsOnly };
DatapathStats read_datapath_stats(const DatapathTables& tables, const TableWriter& writer,
                                  StatsScope scope = StatsScope::All);

nlohmann::json counters_json(const sluice_counters& c);
// {"generation", "global": {...}, "services": [...], "subsets": [...],
//  "backends": [...{"id","address","live","l7_active","l4_opened","l4_closed","l4_reaped", counters}], "conntrack_flows"}
nlohmann::json datapath_stats_json(const DatapathStats& stats);
nlohmann::json datapath_stats_json(const DatapathTables& tables, const TableWriter& writer);

}  // namespace sluice::bpfmaps
