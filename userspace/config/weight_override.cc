#include "config/weight_override.h"

#include <algorithm>

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
  auto snapshot = std::make_shared<model::Snapshot>(base);
  snapshot->version = version;
  // "files+override", "kubernetes+override": where the routes came from, then the override.
  if (!base.origin.ends_with("+override")) snapshot->origin = base.origin + "+override";
  for (auto& pr : snapshot->services[service].routes) {
    apply(pr.l4, service, weight_by_subset);
    for (auto& route : pr.http) apply(route.route, service, weight_by_subset);
  }
  result.snapshot = std::move(snapshot);
  return result;
}

}  // namespace sluice::config
