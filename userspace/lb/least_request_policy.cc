#include "lb/least_request_policy.h"

#include <algorithm>
#include <cmath>

namespace sluice::lb {

void LeastRequestPolicy::rebuild(std::span<const uint32_t> available) {
  equal_weights_ = true;
  for (uint32_t index : available) {
    if (hosts_.hosts()[index].weight != hosts_.hosts()[available[0]].weight) equal_weights_ = false;
  }
  schedule_ = {};
  now_ = 0;
  next_order_ = 0;
  if (equal_weights_) return;
  for (uint32_t index : available) schedule_.push({1.0 / effective_weight(index), next_order_++, index});
}

uint64_t LeastRequestPolicy::active_of(uint32_t index) const {
  const std::atomic<int64_t>* active = hosts_.hosts()[index].active;
  const int64_t n = active == nullptr ? 0 : active->load(std::memory_order_relaxed);
  return n > 0 ? static_cast<uint64_t>(n) : 0;
}

double LeastRequestPolicy::effective_weight(uint32_t index) const {
  const double weight = std::max<uint32_t>(hosts_.hosts()[index].weight, 1);
  const double active = static_cast<double>(active_of(index));
  if (bias_ == 1.0) return weight / (active + 1);   // the common case needs no pow()
  if (bias_ == 0.0) return weight;
  return weight / std::pow(active + 1, bias_);
}

uint32_t LeastRequestPolicy::pick(std::span<const uint32_t> available, const PickContext&) {
  if (available.size() == 1) return available[0];
  if (equal_weights_) {
    const uint32_t first = available[random_.uniform(available.size())];
    const uint32_t second = available[random_.uniform(available.size())];
    return active_of(second) < active_of(first) ? second : first;
  }
  const Due due = schedule_.top();
  schedule_.pop();
  now_ = due.deadline;
  schedule_.push({now_ + 1.0 / effective_weight(due.host), next_order_++, due.host});
  return due.host;
}

}  // namespace sluice::lb
