#include "bpfmaps/datapath_tables.h"

#include <fmt/format.h>

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
      "sluice_addr_filter",   "sluice_client_namespaces",
  };
  return kNames.at(static_cast<size_t>(role));
}

namespace {

// Keeps every derived size (at most 8 x a knob, see sized_max_entries) within
// 32 bits and every array well inside what the kernel will allocate.
constexpr uint32_t kMaxKnob = 1u << 24;

// Smooth WRR slots per backend: a subset's cycle is the sum of its members'
// weights (scaled down past SLUICE_MAX_SCHEDULE_PER_SUBSET), so with weights
// of 1 it equals the member count; the headroom covers weighted members.
constexpr uint32_t kScheduleSlotsPerBackend = SLUICE_MAX_SCHEDULE / SLUICE_MAX_MEMBERS;

}  // namespace

std::string DatapathSizing::check() const {
  const std::pair<const char*, uint32_t> knobs[] = {
      {"--max-services", max_services}, {"--max-subsets", max_subsets},     {"--max-backends", max_backends},
      {"--maglev-slots", maglev_slots}, {"--conntrack-flows", conntrack_flows},
  };
  for (const auto& [flag, value] : knobs)
    if (value == 0 || value > kMaxKnob) return fmt::format("{} {}: must be 1..{}", flag, value, kMaxKnob);
  return {};
}

uint32_t sized_max_entries(MapRole role, const DatapathSizing& s) {
  switch (role) {
    case MapRole::Ctrl: return 1;
    case MapRole::Services: return 2 * s.max_services;
    case MapRole::Vips: return 2 * s.max_services;   // a VIP has at least one port
    case MapRole::Subsets: return 2 * s.max_subsets;
    // A backend is usually a member of one subset per route destination.
    case MapRole::Members: return 2 * s.max_backends;
    case MapRole::Schedule: return 2 * kScheduleSlotsPerBackend * s.max_backends;
    case MapRole::Maglev: return 2 * s.maglev_slots;
    case MapRole::RrCursor: return s.max_subsets + 1;   // indexed by subset counter slot
    case MapRole::Backends:
    case MapRole::BackendLoad:
    case MapRole::BackendStats: return s.max_backends + 1;
    case MapRole::Conntrack:
    case MapRole::ReverseNat: return s.conntrack_flows;
    case MapRole::Ifaces: return SLUICE_MAX_IFACES;
    case MapRole::ServiceStats: return s.max_services + 1;
    case MapRole::SubsetStats: return s.max_subsets + 1;
    case MapRole::GlobalStats: return SLUICE_G_COUNT;
    case MapRole::L7Services: return s.max_services;
    case MapRole::AddrFilter: return 1;
    // A client address per Pod or WorkloadEntry whose namespace has a view
    // of its own: sized like the endpoints, per half.
    case MapRole::ClientNamespaces: return 2 * s.max_backends;
    case MapRole::kCount: break;
  }
  return 0;
}

std::string_view sizing_flag(MapRole role) {
  switch (role) {
    case MapRole::Services:
    case MapRole::Vips:
    case MapRole::ServiceStats:
    case MapRole::L7Services: return "--max-services";
    case MapRole::Subsets:
    case MapRole::RrCursor:
    case MapRole::SubsetStats: return "--max-subsets";
    case MapRole::Members:
    case MapRole::Schedule:
    case MapRole::Backends:
    case MapRole::BackendLoad:
    case MapRole::BackendStats:
    case MapRole::ClientNamespaces: return "--max-backends";
    case MapRole::Maglev: return "--maglev-slots";
    case MapRole::Conntrack:
    case MapRole::ReverseNat: return "--conntrack-flows";
    default: return "";
  }
}

}  // namespace sluice::bpfmaps
