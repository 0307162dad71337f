#include "config/weight_override.h"

#include <algorithm>
#include <optional>

namespace sluice::config {

namespace {

void recompute_shares(std::vector<model::WeightedDestination>& list) {
  uint64_t sum = 0;
  for (const auto& w : list) sum += w.weight;
  for (auto& w : list) w.share = sum == 0 ? 0.0 : static_cast<double>(w.weight) / static_cast<double>(sum);
}

void apply(std::vector<model::WeightedDestination>& list, uint32_t service,
           const std::map<uint32_t, uint32_t>& weight_by_subset) {
  if (list.empty()) return;   // redirect / direct response: nothing to weigh
  const bool all_ours = std::all_of(list.begin(), list.end(), [&](const model::WeightedDestination& w) {
    return w.destination.service == service;
  });
  if (!all_ours) {
    bool touched = false;
    for (auto& w : list) {
      if (w.destination.service != service) continue;
      auto it = weight_by_subset.find(w.destination.subset);
      w.weight = it == weight_by_subset.end() ? 0 : it->second;
      touched = true;
    }
    if (touched) recompute_shares(list);
    return;
  }
  // Rebuild: one destination per named subset plus the ones already listed,
  // in subset order, keeping each one's port and header operations.
  std::map<uint32_t, model::WeightedDestination> by_subset;
  for (const auto& w : list) by_subset.emplace(w.destination.subset, w);
  const uint32_t port = list.front().destination.port;
  for (const auto& [subset, weight] : weight_by_subset) {
    auto [it, inserted] = by_subset.try_emplace(subset);
    if (inserted) it->second.destination = {service, subset, port};
  }
  list.clear();
  for (auto& [subset, w] : by_subset) {
    auto it = weight_by_subset.find(subset);
    w.weight = it == weight_by_subset.end() ? 0 : it->second;
    list.push_back(std::move(w));
  }
  recompute_shares(list);
}

}  // namespace

OverrideResult override_weights(const model::Snapshot& base, std::string_view host,
                                const std::vector<std::pair<std::string, uint32_t>>& subset_weights,
                                uint64_t version) {
  OverrideResult result;
  auto it = base.service_by_host.find(std::string(host));
  if (it == base.service_by_host.end()) {
    result.error = "unknown host '" + std::string(host) + "'";
    return result;
  }
  const uint32_t service = it->second;
  const model::Service& s = base.services[service];
  if (subset_weights.empty()) {
    result.error = "no SUBSET=WEIGHT given for '" + s.host + "'";
    return result;
  }
  std::map<uint32_t, uint32_t> weight_by_subset;
  uint64_t sum = 0;
  for (const auto& [name, weight] : subset_weights) {
    auto idx = name.empty() ? std::nullopt : s.subset_index(name);
    if (!idx) {
      std::string known;
      // The default view's subsets: the ones an override can name.
      const size_t n = s.default_subsets == 0 ? s.subsets.size() : s.default_subsets;
      for (size_t i = 1; i < n; ++i) known += (i > 1 ? ", " : "") + s.subsets[i].name;
      result.error = "unknown subset '" + name + "' for host '" + s.host + "' (" +
                     (known.empty() ? "it has no DestinationRule subsets" : "known: " + known) + ")";
      return result;
    }
    if (!weight_by_subset.emplace(*idx, weight).second) {
      result.error = "subset '" + name + "' is given twice";
      return result;
    }
    sum += weight;
  }
  if (sum == 0) {
    result.error = "weights for '" + s.host + "' sum to 0: no subset could receive traffic";
    return result;
  }
  // Each view that shares the default view's VirtualService gets the same
  // weights by subset name, in its own DestinationRule's subsets.
  std::vector<std::map<uint32_t, uint32_t>> weight_by_view_subset(s.views.size());
  for (size_t v = 0; v < s.views.size(); ++v) {
    const model::ServiceView& view = s.views[v];
    std::string namespaces;
    for (const auto& ns : view.namespaces) namespaces += (namespaces.empty() ? "" : ", ") + ns;
    if (!view.default_virtual_service) {
      result.views_kept.push_back(
          (view.namespaces.size() == 1 ? "namespace " : "namespaces ") + namespaces + " (" +
          (view.virtual_services.empty() ? std::string("no VirtualService")
                                         : "VirtualService " + view.virtual_services.front()) + ")");
      continue;
    }
    for (const auto& [name, weight] : subset_weights) {
      std::optional<uint32_t> idx;
      for (uint32_t i = view.first_subset; i < view.first_subset + view.subset_count && i < s.subsets.size(); ++i) {
        if (s.subsets[i].name == name) idx = i;
      }
      if (idx) {
        weight_by_view_subset[v].emplace(*idx, weight);
      } else if (weight > 0) {
        result.error = "subset '" + name + "' of host '" + s.host + "' is not defined by " +
                       (view.destination_rule.empty() ? std::string("any DestinationRule")
                                                      : "DestinationRule " + view.destination_rule) +
                       ", which clients of " + (view.namespaces.size() == 1 ? "namespace " : "namespaces ") +
                       namespaces + " use with the same VirtualService: they could not follow the override";
        return result;
      }
    }
  }
  auto snapshot = std::make_shared<model::Snapshot>(base);
  snapshot->version = version;
  // "files+override", "kubernetes+override": where the routes came from, then the override.
  if (!base.origin.ends_with("+override")) snapshot->origin = base.origin + "+override";
  auto apply_to = [service](std::vector<model::PortRoutes>& routes, const std::map<uint32_t, uint32_t>& weights) {
    for (auto& pr : routes) {
      apply(pr.l4, service, weights);
      for (auto& route : pr.http) apply(route.route, service, weights);
    }
  };
  model::Service& target = snapshot->services[service];
  apply_to(target.routes, weight_by_subset);
  for (size_t v = 0; v < target.views.size(); ++v) {
    if (target.views[v].default_virtual_service) apply_to(target.views[v].routes, weight_by_view_subset[v]);
  }
  result.snapshot = std::move(snapshot);
  return result;
}

}  // namespace sluice::config
