// The seam between the table-building logic and the kernel (Katran's
// BaseBpfAdapter idea): raw key/value access to the datapath's maps by role.
// BpfDatapath implements it on the loaded maps; FakeDatapathTables keeps the
// same bytes in memory so unit tests run without a kernel. Keys and values
// are the structs of include/sluice/datapath_structs.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/datapath_consts.h"

namespace sluice::bpfmaps {

enum class MapRole : uint8_t {
  Ctrl,            // sluice_ctrl
  Services,        // sluice_services
  Vips,            // sluice_vips
  Subsets,         // sluice_subsets
  Members,         // sluice_members
  Schedule,        // sluice_schedule
  Maglev,          // sluice_maglev
  RrCursor,        // sluice_rr_cursor
  Backends,        // sluice_backends
  BackendLoad,     // sluice_backend_load
  Conntrack,       // sluice_conntrack
  ReverseNat,      // sluice_reverse_nat
  Ifaces,          // sluice_ifaces
  ServiceStats,    // sluice_service_stats (per CPU)
  SubsetStats,     // sluice_subset_stats (per CPU)
  BackendStats,    // sluice_backend_stats (per CPU)
  GlobalStats,     // sluice_global_stats (per CPU)
  L7Services,      // sluice_l7_services (sk_lookup)
  AddrFilter,      // sluice_addr_filter
  ClientNamespaces,  // sluice_client_namespaces
  kCount,
};

// The map's name in the BPF object and under the pin directory.
std::string_view map_name(MapRole role);

// How big the datapath's maps are, in the operator's terms (sluiced
// --max-services, --max-subsets, --max-backends, --maglev-slots,
// --conntrack-flows). Every map size follows from these through
// sized_max_entries(), which both the loader (bpf_map__set_max_entries before
// load) and the in-memory tables use, so a unit test with small tables sees
// the same limits a node with big ones does.
struct DatapathSizing {
  uint32_t max_services = SLUICE_MAX_SERVICES;   // service ports (VIP x port x protocol) per table half
  uint32_t max_subsets = SLUICE_MAX_SUBSETS;     // subsets (service port x subset x family) per table half
  uint32_t max_backends = SLUICE_MAX_BACKENDS;   // backend ids (address x port x protocol)
  uint32_t maglev_slots = SLUICE_MAGLEV_DEFAULT_SLOTS;   // Maglev lookup slots per table half
  uint32_t conntrack_flows = SLUICE_CT_DEFAULT_FLOWS;    // tracked flows (forward and reverse map each)

  // Empty when usable; else what is wrong ("--max-backends 0: must be 1..16777216").
  std::string check() const;
};

// max_entries of a map under a sizing. Halved tables hold two table halves;
// id- and slot-indexed arrays get one more entry because index 0 is reserved
// (see datapath_structs.h), so --max-backends N means N usable ids.
uint32_t sized_max_entries(MapRole role, const DatapathSizing& sizing);

// The sluiced flag that sizes a map ("--max-backends"), or "" for fixed maps.
std::string_view sizing_flag(MapRole role);

using Bytes = std::vector<uint8_t>;

class DatapathTables {
 public:
  virtual ~DatapathTables() = default;

  virtual uint32_t max_entries(MapRole role) const = 0;
  // Writes one entry; throws std::runtime_error naming the map on failure.
  virtual void update(MapRole role, std::span<const uint8_t> key, std::span<const uint8_t> value) = 0;
  // False when the key is absent.
  virtual bool lookup(MapRole role, std::span<const uint8_t> key, std::span<uint8_t> value) const = 0;
  // Writes consecutive array entries [first, first + values.size()/value_size).
  virtual void update_array(MapRole role, uint32_t first, std::span<const uint8_t> values, size_t value_size);
  virtual void erase(MapRole role, std::span<const uint8_t> key) = 0;
  // The keys of a hash map (arrays: not needed, index them), at most
  // `limit` of them. A walk of a map the datapath changes meanwhile (the
  // conntrack LRU) may see a key twice or miss one; it ends all the same.
  virtual std::vector<Bytes> keys(MapRole role, size_t limit) const = 0;
  std::vector<Bytes> keys(MapRole role) const { return keys(role, SIZE_MAX); }
  // How many entries a hash map holds (approximate while the datapath
  // changes it). The base walks keys(); a kernel map counts in batches.
  virtual size_t count(MapRole role) const { return keys(role).size(); }
  // One value per possible CPU, concatenated (per-CPU maps only).
  virtual Bytes lookup_per_cpu(MapRole role, std::span<const uint8_t> key) const = 0;
  virtual unsigned possible_cpus() const = 0;
  // Publishes the generation counter (low bit: the active table half) with
  // one 32-bit store.
  virtual void store_generation(uint32_t generation) = 0;
  virtual uint32_t load_generation() const = 0;
};

template <typename T>
std::span<const uint8_t> as_bytes_of(const T& v) {
  return {reinterpret_cast<const uint8_t*>(&v), sizeof(T)};
}

template <typename T>
std::span<uint8_t> as_writable_bytes_of(T& v) {
  return {reinterpret_cast<uint8_t*>(&v), sizeof(T)};
}

}  // namespace sluice::bpfmaps
