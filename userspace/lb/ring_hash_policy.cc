#include "lb/ring_hash_policy.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace sluice::lb {

void RingHashPolicy::rebuild(std::span<const uint32_t> available) {
  ring_.clear();
  if (available.empty()) return;
  double sum = 0, min_weight = 0;
  for (uint32_t index : available) {
    const double w = std::max<uint32_t>(hosts_.hosts()[index].weight, 1);
    sum += w;
    min_weight = min_weight == 0 ? w : std::min(min_weight, w);
  }
  // Scale so the lightest host gets at least one point, within the maximum.
  const double scale = std::min<double>(
      std::max<double>(static_cast<double>(minimum_size_), std::ceil(sum / min_weight)),
      static_cast<double>(kMaxRingSize));
  // Points are handed out by running total so rounding never drifts.
  double target = 0;
  uint64_t placed = 0;
  std::string point_key;
  for (uint32_t index : available) {
    const Backend& host = hosts_.hosts()[index];
    target += scale * std::max<uint32_t>(host.weight, 1) / sum;
    const uint64_t upto = std::max<uint64_t>(placed + 1, static_cast<uint64_t>(std::llround(target)));
    for (uint64_t replica = 0; placed < upto; ++replica, ++placed) {
      point_key = host.key;
      point_key += '_';
      point_key += std::to_string(replica);
      ring_.emplace_back(hash64(point_key), index);
    }
  }
  std::sort(ring_.begin(), ring_.end());
}

uint32_t RingHashPolicy::pick(std::span<const uint32_t> available, const PickContext& context) {
  if (!context.hash) return available[random_.uniform(available.size())];
  auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(*context.hash, uint32_t{0}));
  if (it == ring_.end()) it = ring_.begin();
  return it->second;
}

}  // namespace sluice::lb
