// Builders shared by the policy tests.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "lb/policy.h"

namespace sluice::lb::testing {

// Active-request counters by backend id, as the proxy keeps them per host.
class FixedActiveRequests {
 public:
  std::map<uint32_t, std::atomic<int64_t>> by_backend_id;
};

// Hosts with ids 100, 101, ...; with `active`, each reads its counter there.
inline std::vector<Backend> make_hosts(const std::vector<uint32_t>& weights, FixedActiveRequests* active = nullptr) {
  std::vector<Backend> out;
  for (size_t i = 0; i < weights.size(); ++i) {
    const auto id = static_cast<uint32_t>(100 + i);
    out.push_back(Backend{id, weights[i], "10.200." + std::to_string(11 + i) + ".2:9080",
                          active != nullptr ? &active->by_backend_id[id] : nullptr});
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

}  // namespace sluice::lb::testing
