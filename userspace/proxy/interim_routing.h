// Minimal stand-ins for the routing unit and the LB policies so the proxy
// runs end to end before those units are merged: first-match routes over
// model::HttpMatch, weighted destination by share, and ROUND_ROBIN /
// LEAST_REQUEST (power of two choices) / RANDOM / hash-modulo endpoint
// choice that skips ejected endpoints. Replace by adapters over
// userspace/routing and userspace/lb when they land.
#pragma once

#include <random>
#include <unordered_map>

#include "proxy/request_routing.h"

namespace sluice::proxy {

class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}
  uint64_t next() override { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

class InterimRouter final : public RequestRouter {
 public:
  RouteDecision route(const model::PortRoutes& routes, const RequestView& request, RandomSource& random) override;
};

class InterimPicker final : public EndpointPicker {
 public:
  std::optional<uint32_t> pick(const model::Snapshot& snapshot, const model::Destination& destination,
                               const RequestView& request, RandomSource& random, BackendLoad& load) override;
  void on_snapshot(const model::Snapshot&) override { round_robin_.clear(); }

 private:
  std::unordered_map<uint64_t, uint32_t> round_robin_;   // (service, subset) -> cursor
};

bool request_matches(const model::HttpMatch& match, const RequestView& request);

}  // namespace sluice::proxy
