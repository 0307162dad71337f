#include "proxy/mesh_routing.h"

namespace sluice::proxy {

const routing::RequestView& RoutingRequestView::build(const RequestView& request) {
  const http::RequestHead& head = request.head;
  for (size_t i = 0; i < head.field_count; ++i) fields_[i] = {head.fields[i].name, head.fields[i].value};
  std::string_view target = request.path;
  size_t q = target.find('?');
  view_.method = head.method;
  view_.path = target.substr(0, q);
  view_.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  view_.authority = request.authority;
  view_.headers = std::span<const routing::HeaderField>(fields_.data(), head.field_count);
  view_.port = request.port;
  view_.source = request.source;
  return view_;
}

RouteDecision MeshRouter::route(const model::PortRoutes& routes, const RequestView& request,
                                lb::RandomSource& random) {
  const routing::RequestView& view = view_.build(request);
  const model::HttpRoute* route = routing::find_route(routes, view);
  if (route == nullptr) return {};
  RouteDecision decision{route, nullptr};
  if (!route->route.empty()) decision.destination = routing::choose_destination(route->route, random);
  return decision;
}

void MeshPicker::on_snapshot(const model::Snapshot& snapshot) { balancer_.reset(snapshot); }

std::optional<uint32_t> MeshPicker::pick(const model::Snapshot& snapshot, const model::Destination& destination,
                                         const RequestView& request, const EndpointHealth& health) {
  const model::Subset& subset = snapshot.services[destination.service].subsets[destination.subset];
  // Outlier ejection lives in the proxy (one detector per subset and port,
  // shared by the workers); push it into the balancer's health view of this
  // subset before choosing. Only changes: setting health walks the host sets.
  for (uint32_t e : subset.endpoints) {
    bool healthy = !health.is_ejected(destination, e);
    if (balancer_.is_endpoint_healthy(destination.service, e) != healthy) {
      balancer_.set_endpoint_healthy(destination.service, e, healthy);
    }
  }
  std::optional<uint64_t> hash_key;
  const model::LoadBalancer& lb = subset.policy_for(destination.port).load_balancer;
  if (lb.algorithm == model::LbAlgorithm::RingHash || lb.algorithm == model::LbAlgorithm::Maglev) {
    hash_key = routing::hash_key_for(lb.hash, view_.build(request));
  }
  auto picked = balancer_.pick(destination, hash_key);
  if (picked.kind == lb::Selection::Kind::Host) return picked.endpoint;
  if (picked.kind == lb::Selection::Kind::NoHealthyHost && !subset.endpoints.empty()) {
    // Every endpoint ejected: use them all rather than fail (Envoy's panic mode).
    for (uint32_t e : subset.endpoints) balancer_.set_endpoint_healthy(destination.service, e, true);
    picked = balancer_.pick(destination, hash_key);
    if (picked.kind == lb::Selection::Kind::Host) return picked.endpoint;
  }
  return std::nullopt;
}

}  // namespace sluice::proxy
