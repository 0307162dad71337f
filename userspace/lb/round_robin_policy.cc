#include "lb/round_robin_policy.h"

namespace sluice::lb {

void RoundRobinPolicy::rebuild(std::span<const uint32_t> available) {
  std::vector<Backend> view;
  view.reserve(available.size());
  for (uint32_t index : available) view.push_back(hosts_.hosts()[index]);
  schedule_ = smooth_wrr_schedule(view, std::max(kMaxScheduleLength, view.size()));
  for (auto& entry : schedule_) entry = available[entry];
  cursor_ = schedule_.empty() ? 0 : random_.uniform(schedule_.size());
}

uint32_t RoundRobinPolicy::pick(std::span<const uint32_t>, const PickContext&) {
  const uint32_t chosen = schedule_[cursor_];
  cursor_ = (cursor_ + 1) % schedule_.size();
  return chosen;
}

}  // namespace sluice::lb
