// The proxy's RequestRouter and EndpointPicker backed by the project's
// routing unit (userspace/routing: first-match routes, weighted destination)
// and LB unit (userspace/lb: SubsetBalancer with each subset's policy).
// One instance of each per worker; neither is thread-safe.
#pragma once

#include <array>
#include <optional>

#include "lb/random_source.h"
#include "lb/subset_balancer.h"
#include "proxy/request_routing.h"
#include "routing/router.h"

namespace sluice::proxy {

// The routing unit's view of a request, built without allocating: field
// views are copied into a fixed array owned by the caller.
class RoutingRequestView {
 public:
  const routing::RequestView& build(const RequestView& request);

 private:
  std::array<routing::HeaderField, http::kMaxHeaderFields> fields_{};
  routing::RequestView view_;
};

class MeshRouter final : public RequestRouter {
 public:
  RouteDecision route(const model::PortRoutes& routes, const RequestView& request, lb::RandomSource& random) override;

 private:
  RoutingRequestView view_;
};

class MeshPicker final : public EndpointPicker {
 public:
  // `random` is the worker's one source; `counter_for` gives each host's
  // active-request counter (LEAST_REQUEST), looked up once per host.
  MeshPicker(lb::RandomSource& random, lb::ActiveCounterLookup counter_for)
      : balancer_(random, std::move(counter_for)) {}
  std::optional<uint32_t> pick(const model::Snapshot& snapshot, const model::Destination& destination,
                               const RequestView& request, const EndpointHealth& health) override;
  void on_snapshot(const model::Snapshot& snapshot) override;

 private:
  lb::SubsetBalancer balancer_;
  RoutingRequestView view_;
};

}  // namespace sluice::proxy
