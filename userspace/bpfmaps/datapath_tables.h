// The seam between the table-building logic and the kernel (Katran's
// BaseBpfAdapter idea): raw key/value access to the datapath's maps by role.
// BpfDatapath implements it on the loaded maps; FakeDatapathTables keeps the
// same bytes in memory so unit tests run without a kernel. Keys and values
// are the structs of include/sluice/datapath_structs.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

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
  kCount,
};

// The map's name in the BPF object and under the pin directory.
std::string_view map_name(MapRole role);

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
  // Every key of a hash map (arrays: not needed, index them).
  virtual std::vector<Bytes> keys(MapRole role) const = 0;
  // One value per possible CPU, concatenated (per-CPU maps only).
  virtual Bytes lookup_per_cpu(MapRole role, std::span<const uint8_t> key) const = 0;
  virtual unsigned possible_cpus() const = 0;
  // Publishes the active table half with one 32-bit store.
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
