// Builders shared by the policy tests.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lb/policy.h"

namespace sluice::lb::testing {

inline std::vector<Backend> make_hosts(const std::vector<uint32_t>& weights) {
  std::vector<Backend> out;
  for (size_t i = 0; i < weights.size(); ++i) {
    out.push_back(Backend{static_cast<uint32_t>(100 + i), weights[i], "10.200." + std::to_string(11 + i) + ".2:9080"});
  }
  return out;
}

inline model::LoadBalancer config_for(model::LbAlgorithm algorithm) {
  model::LoadBalancer lb;
  lb.algorithm = algorithm;
  return lb;
}

// Picks n times and counts hosts by index; NoHealthyHost/Passthrough count under -1.
inline std::map<int, int> tally(LoadBalancingPolicy& policy, int n, const PickContext& context = {}) {
  std::map<int, int> counts;
  for (int i = 0; i < n; ++i) {
    const Selection s = policy.choose(context);
    counts[s.kind == Selection::Kind::Host ? static_cast<int>(s.host) : -1]++;
  }
  return counts;
}

class FixedActiveRequests final : public ActiveRequestCounts {
 public:
  std::map<uint32_t, uint64_t> by_backend_id;
  uint64_t active_requests(uint32_t backend_id) const override {
    auto it = by_backend_id.find(backend_id);
    return it == by_backend_id.end() ? 0 : it->second;
  }
};

}  // namespace sluice::lb::testing
