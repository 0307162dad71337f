#include "lb/host_set.h"

namespace sluice::lb {

HostSet::HostSet(std::vector<Backend> hosts, uint32_t panic_threshold_percent)
    : hosts_(std::move(hosts)),
      healthy_(hosts_.size(), 1),
      healthy_count_(hosts_.size()),
      panic_threshold_percent_(panic_threshold_percent) {
  rebuild_view();
}

bool HostSet::set_healthy(uint32_t index, bool healthy) {
  uint8_t& flag = healthy_.at(index);
  if ((flag != 0) == healthy) return false;
  flag = healthy ? 1 : 0;
  healthy_count_ += healthy ? 1 : -1;
  rebuild_view();
  ++generation_;
  return true;
}

void HostSet::rebuild_view() {
  available_.clear();
  // Integer form of healthy/total*100 < threshold, so 1 of 2 at 50% is not panic.
  panic_ = !hosts_.empty() && healthy_count_ * 100 < panic_threshold_percent_ * hosts_.size();
  for (uint32_t i = 0; i < hosts_.size(); ++i) {
    if (panic_ || healthy_[i]) available_.push_back(i);
  }
}

}  // namespace sluice::lb
