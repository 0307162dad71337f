// consistentHash with maglev: a lookup table over the available hosts built
// by build_maglev_table — the same table the XDP program reads — indexed by
// the key's hash.
#pragma once

#include <vector>

#include "lb/policy.h"

namespace sluice::lb {

class MaglevPolicy final : public HostSetPolicy {
 public:
  // Throws std::invalid_argument if table_size is not a prime.
  MaglevPolicy(const HostSet& hosts, RandomSource& random, uint64_t table_size);
  model::LbAlgorithm algorithm() const override { return model::LbAlgorithm::Maglev; }
  bool uses_hash_key() const override { return true; }

 private:
  void rebuild(std::span<const uint32_t> available) override;
  uint32_t pick(std::span<const uint32_t> available, const PickContext& context) override;

  uint32_t table_size_;
  std::vector<uint32_t> table_;   // host indices
};

}  // namespace sluice::lb
