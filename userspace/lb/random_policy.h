// RANDOM: each pick independent, probability proportional to weight.
#pragma once

#include <vector>

#include "lb/policy.h"

namespace sluice::lb {

class RandomPolicy final : public HostSetPolicy {
 public:
  RandomPolicy(const HostSet& hosts, RandomSource& random) : HostSetPolicy(hosts, random) {}
  model::LbAlgorithm algorithm() const override { return model::LbAlgorithm::Random; }

 private:
  void rebuild(std::span<const uint32_t> available) override;
  uint32_t pick(std::span<const uint32_t> available, const PickContext& context) override;

  bool equal_weights_ = true;
  std::vector<uint64_t> cumulative_;   // running weight sums, parallel to available
};

}  // namespace sluice::lb
