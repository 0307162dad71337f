#include "bpfmaps/fake_datapath_tables.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "sluice/datapath_structs.h"

namespace sluice::bpfmaps {
namespace {

bool is_array(MapRole role) {
  switch (role) {
    case MapRole::Services:
    case MapRole::Vips:
    case MapRole::Conntrack:
    case MapRole::ReverseNat:
    case MapRole::Ifaces:
    case MapRole::L7Services:
    case MapRole::ClientNamespaces:
      return false;
    default:
      return true;
  }
}

uint32_t index_of(std::span<const uint8_t> key) {
  uint32_t index = 0;
  std::memcpy(&index, key.data(), std::min<size_t>(key.size(), sizeof(index)));
  return index;
}

}  // namespace

FakeDatapathTables::FakeDatapathTables(DatapathSizing sizing) : sizing_(sizing) {}

uint32_t FakeDatapathTables::max_entries(MapRole role) const { return sized_max_entries(role, sizing_); }

void FakeDatapathTables::update(MapRole role, std::span<const uint8_t> key, std::span<const uint8_t> value) {
  auto& map = maps_.at(static_cast<size_t>(role));
  Bytes k(key.begin(), key.end());
  if (is_array(role) ? index_of(key) >= max_entries(role)
                     : (!map.count(k) && map.size() >= max_entries(role)))
    throw std::runtime_error("fake " + std::string(map_name(role)) + ": full or index out of range");
  map[k] = Bytes(value.begin(), value.end());
}

bool FakeDatapathTables::lookup(MapRole role, std::span<const uint8_t> key, std::span<uint8_t> value) const {
  const auto& map = maps_.at(static_cast<size_t>(role));
  auto it = map.find(Bytes(key.begin(), key.end()));
  if (it == map.end()) {
    if (!is_array(role) || index_of(key) >= max_entries(role)) return false;
    std::fill(value.begin(), value.end(), 0);   // arrays start zeroed
    return true;
  }
  std::copy_n(it->second.begin(), std::min(value.size(), it->second.size()), value.begin());
  return true;
}

void FakeDatapathTables::erase(MapRole role, std::span<const uint8_t> key) {
  maps_.at(static_cast<size_t>(role)).erase(Bytes(key.begin(), key.end()));
}

std::vector<Bytes> FakeDatapathTables::keys(MapRole role, size_t limit) const {
  std::vector<Bytes> out;
  for (const auto& [k, v] : maps_.at(static_cast<size_t>(role))) {
    if (out.size() >= limit) break;
    out.push_back(k);
  }
  return out;
}

Bytes FakeDatapathTables::lookup_per_cpu(MapRole role, std::span<const uint8_t> key) const {
  const auto& map = maps_.at(static_cast<size_t>(role));
  auto it = map.find(Bytes(key.begin(), key.end()));
  return it == map.end() ? Bytes{} : it->second;
}

void FakeDatapathTables::store_generation(uint32_t generation) {
  sluice_ctrl ctrl{};
  const uint32_t zero = 0;
  lookup(MapRole::Ctrl, as_bytes_of(zero), as_writable_bytes_of(ctrl));
  ctrl.generation = generation;
  update(MapRole::Ctrl, as_bytes_of(zero), as_bytes_of(ctrl));
  generations_.push_back(generation);
}

uint32_t FakeDatapathTables::load_generation() const {
  sluice_ctrl ctrl{};
  const uint32_t zero = 0;
  lookup(MapRole::Ctrl, as_bytes_of(zero), as_writable_bytes_of(ctrl));
  return ctrl.generation;
}

}  // namespace sluice::bpfmaps
