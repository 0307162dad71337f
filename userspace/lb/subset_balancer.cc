#include "lb/subset_balancer.h"

#include <algorithm>
#include <stdexcept>

namespace sluice::lb {

std::string backend_key(const model::IpAddress& address, uint32_t port, std::string_view protocol) {
  std::string key = address.is_v4() ? address.to_string() : "[" + address.to_string() + "]";
  key += ':';
  key += std::to_string(port);
  key += '/';
  key += protocol;
  return key;
}

void SubsetBalancer::reset(const model::Snapshot& snapshot) {
  snapshot_ = &snapshot;
  entries_.clear();
  unhealthy_.assign(snapshot.services.size(), {});
  for (uint32_t s = 0; s < snapshot.services.size(); ++s) unhealthy_[s].assign(snapshot.services[s].endpoints.size(), 0);
}

SubsetBalancer::Entry& SubsetBalancer::entry_for(const model::Destination& d) {
  if (snapshot_ == nullptr) throw std::logic_error("SubsetBalancer::pick before reset(snapshot)");
  const Key key{d.service, d.subset, d.port};
  if (auto it = entries_.find(key); it != entries_.end()) return it->second;
  if (d.service >= snapshot_->services.size() || d.subset >= snapshot_->services[d.service].subsets.size()) {
    throw std::invalid_argument("destination service " + std::to_string(d.service) + " subset " +
                                std::to_string(d.subset) + " is not in snapshot " +
                                std::to_string(snapshot_->version));
  }
  const model::Service& service = snapshot_->services[d.service];
  const model::Subset& subset = service.subsets[d.subset];
  const model::ServicePort* port = service.port(d.port);
  const model::TrafficPolicy& policy = subset.policy_for(d.port);
  const std::string_view protocol = port && port->protocol == model::Protocol::UDP ? "udp" : "tcp";

  std::vector<Backend> backends;
  for (uint32_t endpoint_index : subset.endpoints) {
    const model::Endpoint& e = service.endpoints.at(endpoint_index);
    const uint32_t endpoint_port = port ? e.port_for(*port) : d.port;
    backends.push_back(Backend{endpoint_index, std::max<uint32_t>(e.weight, 1),
                               backend_key(e.address, endpoint_port, protocol),
                               counter_for_ ? counter_for_(e.address, endpoint_port) : nullptr});
  }
  const uint32_t panic = policy.outlier_detection.min_health_percent > 0
                             ? static_cast<uint32_t>(policy.outlier_detection.min_health_percent)
                             : 0;
  Entry entry;
  entry.hosts = std::make_unique<HostSet>(std::move(backends), panic);
  for (uint32_t i = 0; i < entry.hosts->size(); ++i) {
    if (unhealthy_[d.service][entry.hosts->hosts()[i].id]) entry.hosts->set_healthy(i, false);
  }
  entry.policy = make_policy(policy.load_balancer, {*entry.hosts, random_});
  return entries_.emplace(key, std::move(entry)).first->second;
}

SubsetBalancer::Pick SubsetBalancer::pick(const model::Destination& destination, std::optional<uint64_t> hash_key) {
  Entry& entry = entry_for(destination);
  const Selection s = entry.policy->choose(PickContext{hash_key});
  Pick out;
  out.kind = s.kind;
  if (s.kind == Selection::Kind::Host) out.endpoint = entry.hosts->hosts()[s.host].id;
  return out;
}

void SubsetBalancer::set_endpoint_healthy(uint32_t service, uint32_t endpoint, bool healthy) {
  unhealthy_.at(service).at(endpoint) = healthy ? 0 : 1;
  for (auto& [key, entry] : entries_) {
    if (std::get<0>(key) != service) continue;
    const auto hosts = entry.hosts->hosts();
    for (uint32_t i = 0; i < hosts.size(); ++i) {
      if (hosts[i].id == endpoint) entry.hosts->set_healthy(i, healthy);
    }
  }
}

bool SubsetBalancer::is_endpoint_healthy(uint32_t service, uint32_t endpoint) const {
  return unhealthy_.at(service).at(endpoint) == 0;
}

}  // namespace sluice::lb
