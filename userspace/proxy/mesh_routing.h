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
  MeshPicker();
  std::optional<uint32_t> pick(const model::Snapshot& snapshot, const model::Destination& destination,
                               const RequestView& request, lb::RandomSource& random, BackendLoad& load) override;
  void on_snapshot(const model::Snapshot& snapshot) override;

 private:
  // The balancer keeps a reference to its random source; each pick forwards
  // to the worker's (the one source per worker).
  struct Random final : lb::RandomSource {
    lb::RandomSource* source = nullptr;
    uint64_t next() override { return source->next(); }
  };
  struct Load final : lb::EndpointLoad {
    BackendLoad* load = nullptr;
    uint64_t active_requests(uint32_t service, uint32_t endpoint) const override {
      int64_t n = load->active_requests(service, endpoint);
      return n > 0 ? static_cast<uint64_t>(n) : 0;
    }
  };
  Random random_;
  Load load_;
  lb::SubsetBalancer balancer_;
  RoutingRequestView view_;
};

}  // namespace sluice::proxy
