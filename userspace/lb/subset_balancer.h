// Everything a proxy worker needs to pick an endpoint for a destination of a
// snapshot: one HostSet and one policy per (service, subset, port), built on
// first use from the subset's effective TrafficPolicy, dropped when the
// worker moves to a new snapshot. Endpoint health (outlier ejection) is
// pushed in per service endpoint and applied to every subset holding it.
//
//   SubsetBalancer balancer(random, counter_for);   // one per worker
//   balancer.reset(snapshot);                    // on every snapshot swap
//   auto pick = balancer.pick(decision.destination->destination, decision.hash_key);
//   if (pick.kind == Selection::Kind::Host) connect to service.endpoints[pick.endpoint]
//
// Not thread-safe, like the policies it holds.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "lb/policy.h"
#include "model/snapshot.h"

namespace sluice::lb {

// The active-request counter of a backend address:port, as the proxy keeps
// it (one for all workers; the XDP plane reads the same figure). Resolved
// once per host when a subset's policy is built, never per pick.
using ActiveCounterLookup = std::function<const std::atomic<int64_t>*(const model::IpAddress&, uint32_t port)>;

// The identity both planes hash for a backend: "10.200.11.2:9080/tcp",
// "[fd00:200:11::2]:9080/udp" (the BPF table writer's format).
std::string backend_key(const model::IpAddress& address, uint32_t port, std::string_view protocol);

class SubsetBalancer {
 public:
  struct Pick {
    Selection::Kind kind = Selection::Kind::NoHealthyHost;
    uint32_t endpoint = 0;   // index into Service::endpoints when kind == Host
  };

  // Without `counter_for` every host counts as idle for LEAST_REQUEST.
  SubsetBalancer(RandomSource& random, ActiveCounterLookup counter_for)
      : random_(random), counter_for_(std::move(counter_for)) {}

  // Forgets every policy and all health state: endpoint indices belong to a snapshot.
  void reset(const model::Snapshot& snapshot);

  // Throws std::invalid_argument if the destination does not exist in the
  // snapshot or its policy cannot be built (e.g. a Maglev size that is not prime).
  Pick pick(const model::Destination& destination, std::optional<uint64_t> hash_key = std::nullopt);

  void set_endpoint_healthy(uint32_t service, uint32_t endpoint, bool healthy);
  bool is_endpoint_healthy(uint32_t service, uint32_t endpoint) const;

 private:
  struct Entry {
    std::unique_ptr<HostSet> hosts;
    std::unique_ptr<LoadBalancingPolicy> policy;
  };
  using Key = std::tuple<uint32_t, uint32_t, uint32_t>;   // service, subset, port

  Entry& entry_for(const model::Destination& d);

  RandomSource& random_;
  ActiveCounterLookup counter_for_;
  const model::Snapshot* snapshot_ = nullptr;
  std::vector<std::vector<uint8_t>> unhealthy_;   // [service][endpoint]
  std::map<Key, Entry> entries_;
};

}  // namespace sluice::lb
