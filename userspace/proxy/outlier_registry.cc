#include "proxy/outlier_registry.h"

#include <string>

namespace sluice::proxy {
namespace {

int64_t steady_ns(const lb::MonotonicClock& clock) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock.now().time_since_epoch()).count();
}

}  // namespace

SharedOutlierDetector::SharedOutlierDetector(const model::OutlierDetection& config, std::vector<HostKey> hosts,
                                             const lb::MonotonicClock& clock)
    : config_(config),
      hosts_(std::move(hosts)),
      ejected_(std::make_unique<std::atomic<bool>[]>(hosts_.size())),
      detector_(config, hosts_.size(), clock, [this](uint32_t host, bool ejected) {
        ejected_[host].store(ejected, std::memory_order_relaxed);
      }) {}

bool SharedOutlierDetector::report_status(uint32_t host, unsigned status) {
  std::lock_guard lock(mu_);
  uint64_t before = detector_.counters().ejections_enforced;
  detector_.report_http_status(host, status);
  return detector_.counters().ejections_enforced != before;
}

bool SharedOutlierDetector::report_local_failure(uint32_t host, lb::OutlierDetector::LocalFailure failure) {
  std::lock_guard lock(mu_);
  uint64_t before = detector_.counters().ejections_enforced;
  detector_.report_local_failure(host, failure);
  return detector_.counters().ejections_enforced != before;
}

void SharedOutlierDetector::sweep_if_due() {
  std::lock_guard lock(mu_);
  detector_.sweep_if_due();
}

lb::OutlierDetector::Counters SharedOutlierDetector::counters() const {
  std::lock_guard lock(mu_);
  return detector_.counters();
}

OutlierRegistry::OutlierRegistry(const model::Snapshot& snapshot, const OutlierRegistry* previous,
                                 const lb::MonotonicClock& clock)
    : clock_(clock) {
  // A view's subsets are named after their rule too: "v1" of two
  // DestinationRules are two detectors.
  auto identity = [](const model::Service& service, uint32_t subset, uint32_t port) {
    return service.host + '\0' + service.subsets[subset].name + '\0' + std::string(service.subset_rule(subset)) +
           '\0' + std::to_string(port);
  };
  for (uint32_t s = 0; s < snapshot.services.size(); ++s) {
    const model::Service& service = snapshot.services[s];
    for (uint32_t sub = 0; sub < service.subsets.size(); ++sub) {
      const model::Subset& subset = service.subsets[sub];
      for (const auto& [port, policy] : subset.policy_by_port) {
        const model::OutlierDetection& config = policy.outlier_detection;
        if (!config.enabled) continue;
        const model::ServicePort* sp = service.port(port);
        Entry entry;
        entry.host_of_endpoint.assign(service.endpoints.size(), kNoHost);
        std::vector<SharedOutlierDetector::HostKey> hosts;
        for (uint32_t e : subset.endpoints) {
          const model::Endpoint& endpoint = service.endpoints[e];
          entry.host_of_endpoint[e] = static_cast<uint32_t>(hosts.size());
          hosts.emplace_back(endpoint.address, sp != nullptr ? endpoint.port_for(*sp) : port);
        }
        std::string id = identity(service, sub, port);
        if (previous != nullptr) {
          auto it = previous->by_identity_.find(id);
          if (it != previous->by_identity_.end() && it->second->hosts() == hosts &&
              it->second->config() == config) {
            entry.detector = it->second;
          }
        }
        if (!entry.detector) entry.detector = std::make_shared<SharedOutlierDetector>(config, std::move(hosts), clock);
        by_identity_.emplace(std::move(id), entry.detector);
        entries_.emplace(key(s, sub, port), std::move(entry));
      }
    }
  }
  next_sweep_ns_.store(steady_ns(clock), std::memory_order_relaxed);
}

const OutlierRegistry::Entry* OutlierRegistry::entry(const model::Destination& d, uint32_t endpoint,
                                                     uint32_t& host) const {
  if (entries_.empty()) return nullptr;
  auto it = entries_.find(key(d.service, d.subset, d.port));
  if (it == entries_.end() || endpoint >= it->second.host_of_endpoint.size()) return nullptr;
  host = it->second.host_of_endpoint[endpoint];
  return host == kNoHost ? nullptr : &it->second;
}

bool OutlierRegistry::is_ejected(const model::Destination& destination, uint32_t endpoint) const {
  uint32_t host = 0;
  const Entry* e = entry(destination, endpoint, host);
  return e != nullptr && e->detector->is_ejected(host);
}

bool OutlierRegistry::report_status(const model::Destination& destination, uint32_t endpoint, unsigned status) {
  uint32_t host = 0;
  const Entry* e = entry(destination, endpoint, host);
  return e != nullptr && e->detector->report_status(host, status);
}

bool OutlierRegistry::report_local_failure(const model::Destination& destination, uint32_t endpoint,
                                           lb::OutlierDetector::LocalFailure failure) {
  uint32_t host = 0;
  const Entry* e = entry(destination, endpoint, host);
  return e != nullptr && e->detector->report_local_failure(host, failure);
}

void OutlierRegistry::sweep_if_due() {
  if (entries_.empty()) return;
  int64_t now = steady_ns(clock_);
  int64_t due = next_sweep_ns_.load(std::memory_order_relaxed);
  if (now < due) return;
  int64_t next = now + std::chrono::duration_cast<std::chrono::nanoseconds>(kSweepGranularity).count();
  if (!next_sweep_ns_.compare_exchange_strong(due, next, std::memory_order_relaxed)) return;
  for (auto& [k, e] : entries_) {
    (void)k;
    e.detector->sweep_if_due();
  }
}

const SharedOutlierDetector* OutlierRegistry::find(const model::Destination& d) const {
  auto it = entries_.find(key(d.service, d.subset, d.port));
  return it == entries_.end() ? nullptr : it->second.detector.get();
}

}  // namespace sluice::proxy
