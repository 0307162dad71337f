// PASSTHROUGH: no balancing; the connection goes on to the address the client
// dialled (for example a kube-proxy virtual IP), so health does not apply.
#pragma once

#include "lb/policy.h"

namespace sluice::lb {

class PassthroughPolicy final : public LoadBalancingPolicy {
 public:
  Selection choose(const PickContext&) override { return Selection::passthrough(); }
  model::LbAlgorithm algorithm() const override { return model::LbAlgorithm::Passthrough; }
};

}  // namespace sluice::lb
