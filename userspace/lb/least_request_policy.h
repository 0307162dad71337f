// LEAST_REQUEST, as Envoy does it:
//  - equal weights: power of two choices — sample two hosts at random and
//    take the one with fewer active requests (the first sampled on a tie);
//  - unequal weights: weighted round-robin over effective weights
//    weight / (active + 1)^bias, recomputed on every pick, so a busy host's
//    share shrinks while it is busy (Envoy's EDF; here the smooth WRR form).
// Active counts come from the proxy through ActiveRequestCounts.
#pragma once

#include <vector>

#include "lb/policy.h"

namespace sluice::lb {

class LeastRequestPolicy final : public HostSetPolicy {
 public:
  LeastRequestPolicy(const HostSet& hosts, RandomSource& random, const ActiveRequestCounts* active,
                     double active_request_bias)
      : HostSetPolicy(hosts, random), active_(active), bias_(active_request_bias) {}
  model::LbAlgorithm algorithm() const override { return model::LbAlgorithm::LeastRequest; }

 private:
  void rebuild(std::span<const uint32_t> available) override;
  uint32_t pick(std::span<const uint32_t> available, const PickContext& context) override;
  uint64_t active_of(uint32_t index) const;
  double effective_weight(uint32_t index) const;

  const ActiveRequestCounts* active_;
  double bias_;
  bool equal_weights_ = true;
  std::vector<double> current_;   // smooth WRR scores, parallel to available
};

}  // namespace sluice::lb
