// In-memory DatapathTables for unit tests: the same keys and values the
// kernel maps would hold, with the kernel's array semantics (zeroed, bounded).
#pragma once

#include <array>
#include <map>

#include "bpfmaps/datapath_tables.h"

namespace sluice::bpfmaps {

class FakeDatapathTables : public DatapathTables {
 public:
  // Map sizes as the loader would set them for this sizing.
  explicit FakeDatapathTables(DatapathSizing sizing = {});

  uint32_t max_entries(MapRole role) const override;
  void update(MapRole role, std::span<const uint8_t> key, std::span<const uint8_t> value) override;
  bool lookup(MapRole role, std::span<const uint8_t> key, std::span<uint8_t> value) const override;
  void erase(MapRole role, std::span<const uint8_t> key) override;
  using DatapathTables::keys;
  std::vector<Bytes> keys(MapRole role, size_t limit) const override;
  Bytes lookup_per_cpu(MapRole role, std::span<const uint8_t> key) const override;
  unsigned possible_cpus() const override { return 2; }
  void store_generation(uint32_t generation) override;
  uint32_t load_generation() const override;

  // Test view: every generation stored, in order.
  const std::vector<uint32_t>& generation_history() const { return generations_; }
  template <typename T>
  T get(MapRole role, uint32_t index) const {
    T value{};
    lookup(role, as_bytes_of(index), as_writable_bytes_of(value));
    return value;
  }

 private:
  std::array<std::map<Bytes, Bytes>, static_cast<size_t>(MapRole::kCount)> maps_;
  std::vector<uint32_t> generations_;
  DatapathSizing sizing_;
};

}  // namespace sluice::bpfmaps
