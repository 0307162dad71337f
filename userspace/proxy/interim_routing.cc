#include "proxy/interim_routing.h"

#include <functional>

namespace sluice::proxy {
namespace {

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

std::optional<std::string_view> query_param(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool key_matches(const model::KeyMatch& key, std::optional<std::string_view> value) {
  if (!value) return false;
  return !key.match || key.match->matches(*value);
}

std::optional<std::string_view> header_value(const http::RequestHead& head, std::string_view name) {
  for (size_t i = 0; i < head.field_count; ++i) {
    if (http::iequals(head.fields[i].name, name)) return head.fields[i].value;
  }
  return std::nullopt;
}

}  // namespace

bool request_matches(const model::HttpMatch& match, const RequestView& request) {
  if (match.port != 0 && match.port != request.port) return false;
  if (match.uri && !match.uri->matches(path_of(request.path), match.ignore_uri_case)) return false;
  if (match.method && !match.method->matches(request.head.method)) return false;
  if (match.authority && !match.authority->matches(request.authority)) return false;
  if (match.scheme && !match.scheme->matches("http")) return false;
  for (const auto& h : match.headers) {
    if (!key_matches(h, header_value(request.head, h.name))) return false;
  }
  for (const auto& h : match.without_headers) {
    if (key_matches(h, header_value(request.head, h.name))) return false;
  }
  for (const auto& q : match.query_params) {
    if (!key_matches(q, query_param(request.path, q.name))) return false;
  }
  return true;
}

RouteDecision InterimRouter::route(const model::PortRoutes& routes, const RequestView& request,
                                   RandomSource& random) {
  for (const auto& route : routes.http) {
    bool matched = route.matches.empty();
    for (const auto& m : route.matches) {
      if (request_matches(m, request)) {
        matched = true;
        break;
      }
    }
    if (!matched) continue;
    RouteDecision decision{&route, nullptr};
    if (route.route.empty()) return decision;
    double r = random.uniform();
    double cumulative = 0;
    for (const auto& d : route.route) {
      cumulative += d.share;
      if (r < cumulative) {
        decision.destination = &d;
        return decision;
      }
    }
    decision.destination = &route.route.back();   // rounding: shares sum to ~1
    return decision;
  }
  return {};
}

std::optional<uint32_t> InterimPicker::pick(const model::Snapshot& snapshot, const model::Destination& destination,
                                            const RequestView& request, RandomSource& random, BackendLoad& load) {
  const auto& service = snapshot.services.at(destination.service);
  const auto& subset = service.subsets.at(destination.subset);
  const auto& eps = subset.endpoints;
  if (eps.empty()) return std::nullopt;
  // Ejected endpoints are skipped unless all are ejected (then use them all,
  // as Envoy's panic threshold does at 0%).
  uint32_t available = 0;
  for (uint32_t e : eps) available += load.is_ejected(destination.service, e) ? 0 : 1;
  auto usable = [&](uint32_t e) { return available == 0 || !load.is_ejected(destination.service, e); };
  auto nth_usable = [&](uint64_t n) {
    uint32_t count = available == 0 ? static_cast<uint32_t>(eps.size()) : available;
    n %= count;
    for (uint32_t e : eps) {
      if (usable(e) && n-- == 0) return e;
    }
    return eps.front();
  };
  uint32_t count = available == 0 ? static_cast<uint32_t>(eps.size()) : available;
  const auto& lb = subset.policy_for(destination.port).load_balancer;
  switch (lb.algorithm) {
    case model::LbAlgorithm::RoundRobin: {
      uint64_t key = (uint64_t{destination.service} << 32) | destination.subset;
      return nth_usable(round_robin_[key]++);
    }
    case model::LbAlgorithm::LeastRequest: {
      uint32_t a = nth_usable(random.next());
      if (count == 1) return a;
      uint32_t b = nth_usable(random.next());
      while (b == a) b = nth_usable(random.next());
      return load.active_requests(destination.service, b) < load.active_requests(destination.service, a) ? b : a;
    }
    case model::LbAlgorithm::RingHash:
    case model::LbAlgorithm::Maglev: {
      std::string_view key;
      if (lb.hash.source == model::HashKey::Source::Header) {
        for (size_t i = 0; i < request.head.field_count; ++i) {
          if (http::iequals(request.head.fields[i].name, lb.hash.name)) key = request.head.fields[i].value;
        }
      }
      return key.empty() ? nth_usable(random.next()) : nth_usable(std::hash<std::string_view>{}(key));
    }
    case model::LbAlgorithm::Random:
    case model::LbAlgorithm::Passthrough:
      return nth_usable(random.next());
  }
  return nth_usable(random.next());
}

}  // namespace sluice::proxy
