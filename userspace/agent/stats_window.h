// The agent's per-second window over both planes' per-subset counters: what
// `sluicectl top` and the /ui page show (GET /stats/window), so both read the
// same figures from one source.
//
// Once a second the agent records one Sample: for every service port of the
// serving snapshot and every subset, the configured share and the cumulative
// counters of both planes (XDP new connections, L7 requests, 5xx answers and
// latency buckets). The window keeps the last kSeconds + 1 samples, so its
// memory is bounded by the number of subset ports, not by time; observed
// shares, rates and percentiles are differences between the newest sample
// and the one kSeconds older. Plots over longer times are drawn by the
// page, which keeps the points it has seen.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "proxy/metrics.h"

namespace sluice::agent {

struct SubsetCounters {
  double configured = -1;     // share the serving routes give it (0..1); -1: not a route destination
  uint64_t l4_new_flows = 0;  // XDP: connections steered to the subset
  uint64_t l7_requests = 0;   // L7 proxy: requests routed to the subset
  uint64_t l7_errors = 0;     // of those, 5xx answers
  std::array<uint64_t, proxy::kDurationBucketsMs.size() + 1> l7_buckets{};   // per bucket; last: +Inf
};

struct PortKey {
  std::string service;
  uint32_t port = 0;
  auto operator<=>(const PortKey&) const = default;
};

struct PortSample {
  std::string plane;                                 // "l4" or "l7" (the serving snapshot's)
  std::map<std::string, SubsetCounters> subsets;     // subset name ("" = whole service) -> counters
};

struct Sample {
  double at = 0;              // unix time, seconds
  uint64_t version = 0;       // serving snapshot version
  std::map<PortKey, PortSample> ports;
};

// Linear interpolation inside the bucket holding the q-quantile, as
// Prometheus' histogram_quantile() does. nullopt without observations; an
// answer in the +Inf bucket is the highest finite bound.
std::optional<double> bucket_quantile(double q, const std::array<uint64_t, proxy::kDurationBucketsMs.size() + 1>& counts);

class StatsWindow {
 public:
  static constexpr int kSeconds = 10;

  void record(Sample sample);
  // The window as JSON (shape in docs/operations.md, "GET /stats/window"):
  // one entry per service port, or only `service`'s when it is non-empty.
  nlohmann::json view(const std::string& service) const;
  size_t samples() const;

 private:
  mutable std::mutex mu_;
  std::deque<Sample> samples_;   // oldest first, at most kSeconds + 1
};

}  // namespace sluice::agent
