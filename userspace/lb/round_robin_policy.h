// ROUND_ROBIN: smooth weighted round-robin over the available hosts, the same
// schedule the BPF table writer precomputes (smooth_wrr_schedule), so both
// planes interleave identically. The starting point is random so that many
// workers do not all begin on the first host (as Envoy does).
#pragma once

#include <vector>

#include "lb/policy.h"

namespace sluice::lb {

class RoundRobinPolicy final : public HostSetPolicy {
 public:
  // Schedules longer than this are scaled down (weights keep their ratio).
  static constexpr size_t kMaxScheduleLength = 65536;

  RoundRobinPolicy(const HostSet& hosts, RandomSource& random) : HostSetPolicy(hosts, random) {}
  model::LbAlgorithm algorithm() const override { return model::LbAlgorithm::RoundRobin; }

 private:
  void rebuild(std::span<const uint32_t> available) override;
  uint32_t pick(std::span<const uint32_t> available, const PickContext& context) override;

  std::vector<uint32_t> schedule_;   // indices into HostSet::hosts()
  size_t cursor_ = 0;
};

}  // namespace sluice::lb
