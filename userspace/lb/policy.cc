#include "lb/policy.h"

#include "lb/least_request_policy.h"
#include "lb/maglev_policy.h"
#include "lb/passthrough_policy.h"
#include "lb/random_policy.h"
#include "lb/ring_hash_policy.h"
#include "lb/round_robin_policy.h"

namespace sluice::lb {

Selection HostSetPolicy::choose(const PickContext& context) {
  const auto available = hosts_.available();
  if (built_generation_ != hosts_.generation()) {
    rebuild(available);
    built_generation_ = hosts_.generation();
  }
  if (available.empty()) return Selection::no_healthy_host();
  return Selection::of_host(pick(available, context));
}

std::unique_ptr<LoadBalancingPolicy> make_policy(const model::LoadBalancer& config, PolicyInputs inputs) {
  switch (config.algorithm) {
    case model::LbAlgorithm::RoundRobin:
      return std::make_unique<RoundRobinPolicy>(inputs.hosts, inputs.random);
    case model::LbAlgorithm::Random:
      return std::make_unique<RandomPolicy>(inputs.hosts, inputs.random);
    case model::LbAlgorithm::LeastRequest:
      return std::make_unique<LeastRequestPolicy>(inputs.hosts, inputs.random, config.least_request_bias);
    case model::LbAlgorithm::Passthrough:
      return std::make_unique<PassthroughPolicy>();
    case model::LbAlgorithm::RingHash:
      return std::make_unique<RingHashPolicy>(inputs.hosts, inputs.random, config.ring_minimum_size);
    case model::LbAlgorithm::Maglev:
      return std::make_unique<MaglevPolicy>(inputs.hosts, inputs.random, config.maglev_table_size);
  }
  throw std::invalid_argument("unknown load balancer algorithm");
}

}  // namespace sluice::lb
