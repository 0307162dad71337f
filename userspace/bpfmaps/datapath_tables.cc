#include "bpfmaps/datapath_tables.h"

#include <array>

namespace sluice::bpfmaps {

std::string_view map_name(MapRole role) {
  static constexpr std::array<std::string_view, static_cast<size_t>(MapRole::kCount)> kNames = {
      "sluice_ctrl",          "sluice_services",      "sluice_vips",
      "sluice_subsets",       "sluice_members",       "sluice_schedule",
      "sluice_maglev",        "sluice_rr_cursor",     "sluice_backends",
      "sluice_backend_load",  "sluice_conntrack",     "sluice_reverse_nat",
      "sluice_ifaces",        "sluice_service_stats", "sluice_subset_stats",
      "sluice_backend_stats", "sluice_global_stats",  "sluice_l7_services",
  };
  return kNames.at(static_cast<size_t>(role));
}

}  // namespace sluice::bpfmaps
