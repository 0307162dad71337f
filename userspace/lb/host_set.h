// The hosts of one subset as a policy sees them: every backend, its health
// (outlier ejection today, active health checks if added), and the view the
// policies choose from. The view is rebuilt when health changes, and a
// generation number tells policies to rebuild their own tables, as Envoy's
// host sets do on member-update callbacks.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lb/backend.h"

namespace sluice::lb {

class HostSet {
 public:
  // panic_threshold_percent: when fewer than this share of hosts is healthy,
  // policies balance over all hosts (Envoy's panic mode; Istio's
  // outlierDetection.minHealthPercent). 0 disables it.
  explicit HostSet(std::vector<Backend> hosts, uint32_t panic_threshold_percent = 0);

  std::span<const Backend> hosts() const { return hosts_; }
  size_t size() const { return hosts_.size(); }

  // Returns true if the health changed (and the view was rebuilt).
  bool set_healthy(uint32_t index, bool healthy);
  bool is_healthy(uint32_t index) const { return healthy_.at(index) != 0; }
  size_t healthy_count() const { return healthy_count_; }

  // Indices into hosts() that policies may choose: the healthy ones, or all of
  // them in panic. Empty means "no healthy upstream" (503).
  std::span<const uint32_t> available() const { return available_; }
  bool in_panic() const { return panic_; }

  // Changes on every health change; policies compare it to rebuild lazily.
  uint64_t generation() const { return generation_; }

 private:
  void rebuild_view();

  std::vector<Backend> hosts_;
  std::vector<uint8_t> healthy_;
  size_t healthy_count_ = 0;
  uint32_t panic_threshold_percent_;
  bool panic_ = false;
  std::vector<uint32_t> available_;
  uint64_t generation_ = 1;
};

}  // namespace sluice::lb
