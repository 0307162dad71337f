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

// Endpoint health as the request's snapshot sees it (its outlier
// detectors). Ejection is per subset (an Istio subset is an Envoy cluster),
// so the destination names the subset and port the endpoint is judged in.
class EndpointHealth {
 public:
  virtual ~EndpointHealth() = default;
  virtual bool is_ejected(const model::Destination& destination, uint32_t endpoint) const = 0;
};

class EndpointPicker {
 public:
  virtual ~EndpointPicker() = default;
  // Index into Service::endpoints, or nullopt when the subset has no
  // available endpoint. Everything about the request comes in the
  // arguments (Envoy's chooseHost(context)); the picker's random source and
  // the hosts' active-request counters are given once, when it is built.
  virtual std::optional<uint32_t> pick(const model::Snapshot& snapshot, const model::Destination& destination,
                                       const RequestView& request, const EndpointHealth& health) = 0;
  // Called when the worker starts using a new snapshot (policy state resets).
  virtual void on_snapshot(const model::Snapshot& snapshot) = 0;
};

}  // namespace sluice::proxy
