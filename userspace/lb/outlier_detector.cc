#include "lb/outlier_detector.h"

#include <algorithm>

namespace sluice::lb {

OutlierDetector::OutlierDetector(const model::OutlierDetection& config, size_t host_count,
                                 const MonotonicClock& clock, ChangeCallback on_change)
    : config_(config),
      hosts_(host_count),
      clock_(clock),
      on_change_(std::move(on_change)),
      next_sweep_(clock.now() + config.interval) {}

void OutlierDetector::report_http_status(uint32_t host, uint32_t status) {
  const bool is_5xx = status >= 500 && status <= 599;
  const bool is_gateway = status == 502 || status == 503 || status == 504;
  if (config_.split_external_local_origin_errors) hosts_.at(host).consecutive_local = 0;   // it answered
  record(host, is_5xx, is_gateway);
}

void OutlierDetector::report_local_failure(uint32_t host, LocalFailure) {
  if (!config_.split_external_local_origin_errors) {
    record(host, true, true);   // Envoy's mapping: a local-origin failure is a 503
    return;
  }
  HostState& h = hosts_.at(host);
  if (!config_.enabled || h.ejected) return;
  h.consecutive_local++;
  if (config_.consecutive_local_origin_failures > 0 && h.consecutive_local >= config_.consecutive_local_origin_failures) {
    try_eject(host, Reason::ConsecutiveLocalOriginFailures);
  }
}

void OutlierDetector::record(uint32_t host, bool is_5xx, bool is_gateway) {
  HostState& h = hosts_.at(host);
  if (!config_.enabled || h.ejected) return;   // an ejected host's stragglers do not re-eject it
  if (!is_5xx) {
    h.consecutive_5xx = 0;
    h.consecutive_gateway = 0;
    return;
  }
  h.consecutive_5xx++;
  h.consecutive_gateway = is_gateway ? h.consecutive_gateway + 1 : 0;
  // Gateway errors first: it is the narrower signal and names the cause better.
  if (config_.consecutive_gateway_errors > 0 && h.consecutive_gateway >= config_.consecutive_gateway_errors) {
    try_eject(host, Reason::ConsecutiveGatewayErrors);
  } else if (config_.consecutive_5xx_errors > 0 && h.consecutive_5xx >= config_.consecutive_5xx_errors) {
    try_eject(host, Reason::Consecutive5xx);
  }
}

void OutlierDetector::try_eject(uint32_t host, Reason reason) {
  HostState& h = hosts_[host];
  // The streak is consumed whether or not the cap allows the ejection, so an
  // overflowing host needs a fresh streak (as Envoy resets on detection).
  h.consecutive_5xx = 0;
  h.consecutive_gateway = 0;
  h.consecutive_local = 0;
  const uint64_t max_percent = std::min<uint32_t>(config_.max_ejection_percent, 100);
  if (100 * (uint64_t{ejected_} + 1) > max_percent * hosts_.size()) {
    counters_.ejections_overflow++;
    return;
  }
  h.ejected = true;
  h.ejected_at = clock_.now();
  h.backoff++;
  ejected_++;
  counters_.ejections_enforced++;
  switch (reason) {
    case Reason::Consecutive5xx: counters_.ejections_consecutive_5xx++; break;
    case Reason::ConsecutiveGatewayErrors: counters_.ejections_consecutive_gateway++; break;
    case Reason::ConsecutiveLocalOriginFailures: counters_.ejections_consecutive_local_origin++; break;
  }
  if (on_change_) on_change_(host, true);
}

bool OutlierDetector::sweep_if_due() {
  const auto now = clock_.now();
  if (now < next_sweep_) return false;
  next_sweep_ = now + config_.interval;
  for (uint32_t i = 0; i < hosts_.size(); ++i) {
    HostState& h = hosts_[i];
    if (!h.ejected) {
      if (h.backoff > 0) h.backoff--;
      continue;
    }
    // min(base x backoff, 300 s), without overflowing the product.
    const auto max = std::chrono::duration_cast<model::Duration>(kMaxEjectionTime);
    const auto duration = config_.base_ejection_time >= max / std::max<uint32_t>(h.backoff, 1)
                              ? max
                              : config_.base_ejection_time * h.backoff;
    if (now - h.ejected_at >= duration) {
      h.ejected = false;
      ejected_--;
      if (on_change_) on_change_(i, false);
    }
  }
  return true;
}

}  // namespace sluice::lb
