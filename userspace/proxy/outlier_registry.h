// Outlier detection for the whole proxy: one lb::OutlierDetector per
// (service, subset, port) with outlierDetection enabled — an Istio subset is
// an Envoy cluster, and Envoy keeps one detector per cluster — shared by all
// workers. Consecutive errors therefore add up across workers, and
// maxEjectionPercent is counted over the subset's hosts, not per worker.
//
//   auto registry = std::make_shared<OutlierRegistry>(snapshot, previous.get(), clock);
//   registry->is_ejected(destination, endpoint);                 // lock-free, per pick
//   registry->report_status(destination, endpoint, 503);         // true: this report ejected it
//   registry->sweep_if_due();                                    // from the workers' timer ticks
//
// A registry belongs to one snapshot (endpoint indices are the snapshot's).
// A new snapshot gets a new registry that keeps the detector — streaks,
// ejections, backoff — of every subset whose config and host addresses did
// not change, so a weight shift does not forgive an ejected backend.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lb/monotonic_clock.h"
#include "lb/outlier_detector.h"
#include "model/snapshot.h"
#include "proxy/request_routing.h"

namespace sluice::proxy {

// One subset's detector behind a mutex, with its ejection flags mirrored
// into atomics so that picks read them without locking.
class SharedOutlierDetector {
 public:
  using HostKey = std::pair<model::IpAddress, uint32_t>;   // address, port the backend listens on

  SharedOutlierDetector(const model::OutlierDetection& config, std::vector<HostKey> hosts,
                        const lb::MonotonicClock& clock);

  // `host` indexes hosts(). Each returns true if this report ejected the host.
  bool report_status(uint32_t host, unsigned status);
  bool report_local_failure(uint32_t host, lb::OutlierDetector::LocalFailure failure);
  bool is_ejected(uint32_t host) const { return ejected_[host].load(std::memory_order_relaxed); }
  void sweep_if_due();

  const std::vector<HostKey>& hosts() const { return hosts_; }
  const model::OutlierDetection& config() const { return config_; }
  lb::OutlierDetector::Counters counters() const;

 private:
  model::OutlierDetection config_;
  std::vector<HostKey> hosts_;
  std::unique_ptr<std::atomic<bool>[]> ejected_;
  mutable std::mutex mu_;
  lb::OutlierDetector detector_;   // guarded by mu_
};

class OutlierRegistry final : public EndpointHealth {
 public:
  // Builds a detector for every subset and port with outlier detection on;
  // reuses `previous`'s detector where config and hosts are unchanged.
  OutlierRegistry(const model::Snapshot& snapshot, const OutlierRegistry* previous,
                  const lb::MonotonicClock& clock);

  // False when the destination has no outlier detection.
  bool is_ejected(const model::Destination& destination, uint32_t endpoint) const override;
  bool report_status(const model::Destination& destination, uint32_t endpoint, unsigned status);
  bool report_local_failure(const model::Destination& destination, uint32_t endpoint,
                            lb::OutlierDetector::LocalFailure failure);
  // Sweeps every detector whose interval has passed; one worker at a time,
  // at most every kSweepGranularity (the others return at once).
  void sweep_if_due();
  static constexpr std::chrono::milliseconds kSweepGranularity{100};

  // The detector of a destination (nullptr without outlier detection), for tests and metrics.
  const SharedOutlierDetector* find(const model::Destination& destination) const;

 private:
  struct Entry {
    std::shared_ptr<SharedOutlierDetector> detector;
    std::vector<uint32_t> host_of_endpoint;   // service endpoint index -> host index, or kNoHost
  };
  static constexpr uint32_t kNoHost = UINT32_MAX;
  static uint64_t key(uint32_t service, uint32_t subset, uint32_t port) {
    return (uint64_t{service} << 40) | (uint64_t{subset & 0xfffffu} << 20) | (port & 0xfffffu);
  }
  const Entry* entry(const model::Destination& destination, uint32_t endpoint, uint32_t& host) const;

  const lb::MonotonicClock& clock_;
  std::unordered_map<uint64_t, Entry> entries_;
  // "host\0subset\0port" -> detector: what the next snapshot's registry may reuse.
  std::unordered_map<std::string, std::shared_ptr<SharedOutlierDetector>> by_identity_;
  std::atomic<int64_t> next_sweep_ns_{0};
};

}  // namespace sluice::proxy
