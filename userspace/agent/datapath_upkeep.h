// What sluiced does to the kernel datapath beside writing its tables: at
// start, state a previous agent left behind is made true again; while it
// runs, the program's view of the node's devices and the least-request
// counts are kept true (bounded periodic checks from the main loop).
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bpfmaps/bpf_datapath.h"
#include "bpfmaps/conntrack_reaper.h"
#include "bpfmaps/redirect_targets.h"

namespace sluice::agent {

// Zeroes the pinned per-backend l7_active counts (the agent is their only
// writer; a SIGKILL with requests in flight leaves them high for good and
// skews LEAST_REQUEST in both planes). Logs how many were stale.
void reset_stale_l7_counts(bpfmaps::BpfDatapath& datapath);

// Probes the devices of the node's namespace (bpfmaps/redirect_targets.h),
// marks the ones that take native redirects for the XDP program, and warns
// (log and /status) about the interfaces sluice runs on and the veths whose
// traffic must go through the kernel instead. Re-checks every `period`, so
// links added later or a peer that gains an XDP program are picked up.
class RedirectTargetWatch {
 public:
  RedirectTargetWatch(bpfmaps::BpfDatapath& datapath, std::chrono::seconds period);
  void check();   // probe and mark now
  void tick();    // check() when a period has passed since the last one
  // {"probed": bool, "native": [names], "via_kernel": [{"name", "reason"}]}
  // and "warnings": the lines /status adds to its warnings.
  nlohmann::json status() const;

 private:
  bpfmaps::BpfDatapath& datapath_;
  std::chrono::seconds period_;
  std::chrono::steady_clock::time_point last_{};
  mutable std::mutex mu_;
  nlohmann::json status_;
  std::string last_summary_;   // logged only when it changes
};

// Runs bpfmaps::reap_conntrack every `period` (expired flows counted as
// closed; evictions reconciled unless a DPDK forwarder shares the counts)
// and keeps the totals for the metrics.
class ConntrackReapWatch {
 public:
  ConntrackReapWatch(bpfmaps::BpfDatapath& datapath, std::chrono::seconds period, bool reconcile_evictions);
  void tick();
  // ct_reaped: flows expired without a close; ct_evicted: flows found evicted.
  std::array<std::pair<std::string_view, uint64_t>, 2> totals() const;

 private:
  bpfmaps::BpfDatapath& datapath_;
  std::chrono::seconds period_;
  bool reconcile_;
  std::chrono::steady_clock::time_point last_{};
  mutable std::mutex mu_;
  uint64_t reaped_ = 0, evicted_ = 0;
};

}  // namespace sluice::agent
