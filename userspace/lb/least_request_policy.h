// LEAST_REQUEST, as Envoy does it:
//  - equal weights: power of two choices — sample two hosts at random and
//    take the one with fewer active requests (the first sampled on a tie);
//  - unequal weights: earliest-deadline-first over effective weights
//    weight / (active + 1)^bias (Envoy's EDF scheduler): a host is due again
//    1/effective_weight after its last pick, with the weight taken from its
//    active count at that moment, so a busy host's share shrinks while it is
//    busy. O(log n) per pick.
// Active counts are read from each host's counter (Backend::active).
#pragma once

#include <queue>
#include <vector>

#include "lb/policy.h"

namespace sluice::lb {

class LeastRequestPolicy final : public HostSetPolicy {
 public:
  LeastRequestPolicy(const HostSet& hosts, RandomSource& random, double active_request_bias)
      : HostSetPolicy(hosts, random), bias_(active_request_bias) {}
  model::LbAlgorithm algorithm() const override { return model::LbAlgorithm::LeastRequest; }

 private:
  void rebuild(std::span<const uint32_t> available) override;
  uint32_t pick(std::span<const uint32_t> available, const PickContext& context) override;
  uint64_t active_of(uint32_t index) const;
  double effective_weight(uint32_t index) const;

  double bias_;
  struct Due {
    double deadline;
    uint64_t order;   // FIFO among equal deadlines, so ties are deterministic
    uint32_t host;
    bool operator>(const Due& o) const { return deadline != o.deadline ? deadline > o.deadline : order > o.order; }
  };

  bool equal_weights_ = true;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> schedule_;
  double now_ = 0;
  uint64_t next_order_ = 0;
};

}  // namespace sluice::lb
