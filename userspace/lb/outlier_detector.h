// Istio's outlierDetection for one subset's hosts, computed as Envoy does:
//  - consecutive 5xx: every 5xx response counts, and so does a local failure
//    (connect failure, reset, timeout: Envoy maps these to 503) unless
//    split_external_local_origin_errors; any other response resets the
//    count. Reaching consecutive_5xx_errors ejects.
//  - consecutive gateway errors: 502, 503, 504 and (unsplit) local failures
//    count; any other response (a 500 too) resets. Reaching
//    consecutive_gateway_errors ejects.
//  - split_external_local_origin_errors: local failures count only toward
//    consecutive_local_origin_failures, which any response (the connection
//    worked, whatever its status) resets. Reaching it ejects.
//  - ejection is immediate at the Nth error, only if afterwards at most
//    max_ejection_percent of the hosts are ejected: 100*(ejected+1)/hosts <=
//    max (Envoy >= 1.31, without always_eject_one_host). A refused ejection
//    counts as overflow.
//  - the interval sweep returns a host after min(base_ejection_time x backoff,
//    max_ejection_time) and lowers the backoff by one for each sweep a host
//    spends in service; each ejection raises it by one.
// Hosts are indices, matching HostSet. Not thread-safe: one owner per subset.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "lb/monotonic_clock.h"
#include "model/snapshot.h"

namespace sluice::lb {

class OutlierDetector {
 public:
  // Envoy's default cap on one ejection; Istio does not expose it.
  static constexpr std::chrono::seconds kMaxEjectionTime{300};

  enum class LocalFailure { ConnectFailure, Reset, Timeout };
  enum class Reason { Consecutive5xx, ConsecutiveGatewayErrors, ConsecutiveLocalOriginFailures };

  // Called on every ejection (ejected = true) and return (false); the owner
  // applies it to its HostSet(s) with set_healthy(host, !ejected).
  using ChangeCallback = std::function<void(uint32_t host, bool ejected)>;

  OutlierDetector(const model::OutlierDetection& config, size_t host_count, const MonotonicClock& clock,
                  ChangeCallback on_change = {});

  void report_http_status(uint32_t host, uint32_t status);
  void report_local_failure(uint32_t host, LocalFailure failure);

  // Runs the sweep if an interval has passed since the last one (call it
  // from a timer, or before picks). Returns true if it swept.
  bool sweep_if_due();

  bool is_ejected(uint32_t host) const { return hosts_.at(host).ejected; }
  uint32_t ejected_count() const { return ejected_; }
  uint32_t backoff(uint32_t host) const { return hosts_.at(host).backoff; }

  struct Counters {
    uint64_t ejections_enforced = 0;
    uint64_t ejections_consecutive_5xx = 0;
    uint64_t ejections_consecutive_gateway = 0;
    uint64_t ejections_consecutive_local_origin = 0;
    uint64_t ejections_overflow = 0;   // wanted to eject, max_ejection_percent said no
  };
  const Counters& counters() const { return counters_; }

 private:
  struct HostState {
    uint32_t consecutive_5xx = 0;
    uint32_t consecutive_gateway = 0;
    uint32_t consecutive_local = 0;   // split mode only
    bool ejected = false;
    uint32_t backoff = 0;
    MonotonicClock::TimePoint ejected_at{};
  };

  void record(uint32_t host, bool is_5xx, bool is_gateway);
  void try_eject(uint32_t host, Reason reason);

  model::OutlierDetection config_;
  std::vector<HostState> hosts_;
  const MonotonicClock& clock_;
  ChangeCallback on_change_;
  uint32_t ejected_ = 0;
  MonotonicClock::TimePoint next_sweep_;
  Counters counters_;
};

}  // namespace sluice::lb
