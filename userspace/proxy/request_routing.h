// What the proxy asks of routing and load balancing, per request. The
// routing unit (userspace/routing) and the LB policies (userspace/lb) plug in
// behind these two interfaces (mesh_routing.h); tests may inject others.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "http/message_head.h"
#include "lb/random_source.h"
#include "model/snapshot.h"

namespace sluice::proxy {

// Randomness is lb::RandomSource, one per worker (lb::SeededRandom seeded
// from ProxyOptions::random_seed in tests), shared by routing, the LB
// policies, faults and mirrors.

struct RequestView {
  const http::RequestHead& head;
  std::string_view path;        // request-target in origin-form
  std::string_view authority;
  uint32_t port = 0;            // service port the request arrived on
  model::IpAddress source{};    // the client's address as the accepted socket sees it (source-IP hashing)
};

struct RouteDecision {
  const model::HttpRoute* route = nullptr;                 // nullptr: no route matched
  const model::WeightedDestination* destination = nullptr; // nullptr with a route: redirect/direct response
};

class RequestRouter {
 public:
  virtual ~RequestRouter() = default;
  virtual RouteDecision route(const model::PortRoutes& routes, const RequestView& request,
                              lb::RandomSource& random) = 0;
};

// Live facts about a backend the picker may use (LEAST_REQUEST, outliers).
class BackendLoad {
 public:
  virtual ~BackendLoad() = default;
  virtual int64_t active_requests(uint32_t service, uint32_t endpoint) = 0;
  // Outlier ejection is per subset (an Istio subset is an Envoy cluster), so
  // the destination names the subset and port the endpoint is judged in.
  virtual bool is_ejected(const model::Destination& destination, uint32_t endpoint) = 0;
};

class EndpointPicker {
 public:
  virtual ~EndpointPicker() = default;
  // Index into Service::endpoints, or nullopt when the subset has no
  // available endpoint. `hash_key` is set for consistent-hash policies.
  virtual std::optional<uint32_t> pick(const model::Snapshot& snapshot, const model::Destination& destination,
                                       const RequestView& request, lb::RandomSource& random,
                                       BackendLoad& load) = 0;
  // Called when the worker starts using a new snapshot (policy state resets).
  virtual void on_snapshot(const model::Snapshot& snapshot) = 0;
};

}  // namespace sluice::proxy
