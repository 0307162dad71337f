#include "lb/maglev_policy.h"

#include <stdexcept>
#include <string>

namespace sluice::lb {

MaglevPolicy::MaglevPolicy(const HostSet& hosts, RandomSource& random, uint64_t table_size)
    : HostSetPolicy(hosts, random), table_size_(static_cast<uint32_t>(table_size)) {
  if (table_size > UINT32_MAX || table_size < 2) {
    throw std::invalid_argument("loadBalancer.consistentHash.maglev.tableSize " + std::to_string(table_size) +
                                " is out of range");
  }
  // Fail at construction, not at the first request: build once over all hosts.
  std::vector<Backend> all(hosts.hosts().begin(), hosts.hosts().end());
  if (!all.empty()) (void)build_maglev_table(all, table_size_);
}

void MaglevPolicy::rebuild(std::span<const uint32_t> available) {
  std::vector<Backend> view;
  view.reserve(available.size());
  for (uint32_t index : available) view.push_back(hosts_.hosts()[index]);
  table_ = build_maglev_table(view, table_size_);
  for (auto& entry : table_) entry = available[entry];
}

uint32_t MaglevPolicy::pick(std::span<const uint32_t> available, const PickContext& context) {
  if (!context.hash) return available[random_.uniform(available.size())];
  return table_[*context.hash % table_.size()];
}

}  // namespace sluice::lb
