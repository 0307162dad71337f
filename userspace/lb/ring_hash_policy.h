// consistentHash with ringHash: each available host owns points on a 64-bit
// ring in proportion to its weight; a request goes to the first point at or
// after its key's hash. At least ring_minimum_size points in total (Istio's
// minimumRingSize), more if needed so the lightest host gets one point.
#pragma once

#include <utility>
#include <vector>

#include "lb/policy.h"

namespace sluice::lb {

class RingHashPolicy final : public HostSetPolicy {
 public:
  static constexpr uint64_t kMaxRingSize = 8 * 1024 * 1024;   // Envoy's default maximum

  RingHashPolicy(const HostSet& hosts, RandomSource& random, uint64_t ring_minimum_size)
      : HostSetPolicy(hosts, random), minimum_size_(std::max<uint64_t>(ring_minimum_size, 1)) {}
  model::LbAlgorithm algorithm() const override { return model::LbAlgorithm::RingHash; }
  bool uses_hash_key() const override { return true; }
  size_t ring_size() const { return ring_.size(); }

 private:
  void rebuild(std::span<const uint32_t> available) override;
  uint32_t pick(std::span<const uint32_t> available, const PickContext& context) override;

  uint64_t minimum_size_;
  std::vector<std::pair<uint64_t, uint32_t>> ring_;   // (point, host index), sorted by point
};

}  // namespace sluice::lb
