#include "lb/random_policy.h"

#include <algorithm>

namespace sluice::lb {

void RandomPolicy::rebuild(std::span<const uint32_t> available) {
  cumulative_.clear();
  equal_weights_ = true;
  uint64_t sum = 0;
  for (uint32_t index : available) {
    const uint32_t w = std::max<uint32_t>(hosts_.hosts()[index].weight, 1);
    if (w != std::max<uint32_t>(hosts_.hosts()[available[0]].weight, 1)) equal_weights_ = false;
    sum += w;
    cumulative_.push_back(sum);
  }
}

uint32_t RandomPolicy::pick(std::span<const uint32_t> available, const PickContext&) {
  if (equal_weights_) return available[random_.uniform(available.size())];
  const uint64_t point = random_.uniform(cumulative_.back());
  const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), point);
  return available[static_cast<size_t>(it - cumulative_.begin())];
}

}  // namespace sluice::lb
