#include "bpfmaps/table_writer.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "lb/backend.h"
#include "sluice/datapath_structs.h"

namespace sluice::bpfmaps {
namespace {

uint8_t protocol_number(const model::ServicePort& port) {
  return port.protocol == model::Protocol::UDP ? IPPROTO_UDP : IPPROTO_TCP;
}

const char* protocol_name(uint8_t proto) { return proto == IPPROTO_UDP ? "udp" : "tcp"; }

void copy_address(const model::IpAddress& address, __u32 out[4]) {
  std::memset(out, 0, 16);
  std::memcpy(out, address.bytes.data(), address.is_v4() ? 4 : 16);
}

uint8_t family_code(const model::IpAddress& address) {
  return address.is_v4() ? SLUICE_FAMILY_V4 : SLUICE_FAMILY_V6;
}

uint8_t policy_code(model::LbAlgorithm algorithm) {
  switch (algorithm) {
    case model::LbAlgorithm::RoundRobin: return SLUICE_POLICY_ROUND_ROBIN;
    case model::LbAlgorithm::Random: return SLUICE_POLICY_RANDOM;
    case model::LbAlgorithm::LeastRequest: return SLUICE_POLICY_LEAST_REQUEST;
    case model::LbAlgorithm::Passthrough: return SLUICE_POLICY_PASSTHROUGH;
    // The kernel serves ring hash with Maglev: both are consistent hashes
    // of the same key, Maglev has O(1) lookup and the better spread.
    case model::LbAlgorithm::RingHash:
    case model::LbAlgorithm::Maglev: return SLUICE_POLICY_MAGLEV;
  }
  return SLUICE_POLICY_ROUND_ROBIN;
}

template <typename T>
void write_array(DatapathTables& tables, MapRole role, uint32_t first, const std::vector<T>& values) {
  if (values.empty()) return;
  tables.update_array(role, first,
                      {reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(T)},
                      sizeof(T));
}

template <typename T>
T key_from(const Bytes& bytes) {
  T key{};
  std::memcpy(&key, bytes.data(), std::min(bytes.size(), sizeof(T)));
  return key;
}

}  // namespace

void DatapathTables::update_array(MapRole role, uint32_t first, std::span<const uint8_t> values,
                                  size_t value_size) {
  for (size_t off = 0, i = first; off + value_size <= values.size(); off += value_size, ++i) {
    auto index = static_cast<uint32_t>(i);
    update(role, as_bytes_of(index), values.subspan(off, value_size));
  }
}

std::string BackendIdentity::to_string() const {
  if (address.is_v4()) return fmt::format("{}:{}/{}", address.to_string(), port, protocol_name(proto));
  return fmt::format("[{}]:{}/{}", address.to_string(), port, protocol_name(proto));
}

TableWriter::TableWriter(DatapathTables& tables, TableWriterOptions options)
    : tables_(tables), options_(options) {
  half_.subsets = tables_.max_entries(MapRole::Subsets) / 2;
  half_.members = tables_.max_entries(MapRole::Members) / 2;
  half_.schedule = tables_.max_entries(MapRole::Schedule) / 2;
  half_.maglev = tables_.max_entries(MapRole::Maglev) / 2;
}

uint32_t TableWriter::slot_for(std::map<uint64_t, uint32_t>& slots, uint64_t identity, uint32_t& next,
                               MapRole counters, const std::set<uint64_t>& keep) {
  auto it = slots.find(identity);
  if (it != slots.end()) return it->second;
  uint32_t slot = 0;
  if (next < tables_.max_entries(counters)) {
    slot = next++;
  } else {
    auto old = std::find_if(slots.begin(), slots.end(), [&](const auto& entry) { return !keep.count(entry.first); });
    if (old == slots.end())   // check_fits() counted the names; this is a bug if reached
      throw std::logic_error(fmt::format("{} exhausted after the capacity check", map_name(counters)));
    slot = old->second;
    slots.erase(old);
    // Flows tracked under the old name still count into this slot until they end.
    Bytes counts = tables_.lookup_per_cpu(counters, as_bytes_of(slot));
    if (!counts.empty()) {
      std::fill(counts.begin(), counts.end(), 0);
      tables_.update(counters, as_bytes_of(slot), counts);
    }
    if (counters == MapRole::SubsetStats) {
      const uint32_t zero = 0;
      tables_.update(MapRole::RrCursor, as_bytes_of(slot), as_bytes_of(zero));
    }
  }
  slots.emplace(identity, slot);
  return slot;
}

std::optional<uint32_t> TableWriter::backend_id(const BackendIdentity& backend) const {
  auto it = id_by_backend_.find(backend);
  if (it == id_by_backend_.end()) return std::nullopt;
  return it->second;
}

void TableWriter::recover() {
  const uint32_t max_backends = tables_.max_entries(MapRole::Backends);
  for (uint32_t id = 1; id < max_backends; ++id) {
    sluice_backend entry{};
    if (!tables_.lookup(MapRole::Backends, as_bytes_of(id), as_writable_bytes_of(entry))) break;
    if (entry.family == 0) continue;
    BackendIdentity identity;
    identity.address.family = entry.family == SLUICE_FAMILY_V4 ? model::IpAddress::kV4 : model::IpAddress::kV6;
    std::memcpy(identity.address.bytes.data(), entry.addr, entry.family == SLUICE_FAMILY_V4 ? 4 : 16);
    identity.port = ntohs(entry.port);
    identity.proto = entry.proto;
    id_by_backend_[identity] = id;
    backend_by_id_[id] = identity;
    if (entry.flags & SLUICE_BACKEND_F_LIVE) live_[id] = 1;
    next_backend_id_ = std::max(next_backend_id_, id + 1);
  }
  for (const Bytes& raw : tables_.keys(MapRole::Services)) {
    sluice_service value{};
    if (!tables_.lookup(MapRole::Services, raw, as_writable_bytes_of(value)) || value.identity == 0) continue;
    service_slot_by_identity_.emplace(value.identity, value.stat_id);
    serving_service_names_.insert(value.identity);   // either half: kept until the next apply
    next_service_slot_ = std::max(next_service_slot_, value.stat_id + 1);
  }
  for (uint32_t half = 0; half < 2; ++half) {
    for (uint32_t i = half * half_.subsets; i < (half + 1) * half_.subsets; ++i) {
      sluice_subset value{};
      if (!tables_.lookup(MapRole::Subsets, as_bytes_of(i), as_writable_bytes_of(value)) || value.identity == 0)
        break;   // halves are filled from their start
      subset_slot_by_identity_.emplace(value.identity, value.stat_id);
      serving_subset_names_.insert(value.identity);
      next_subset_slot_ = std::max(next_subset_slot_, value.stat_id + 1);
    }
  }
  // The previous writer may have flipped just before it stopped.
  last_flip_ = std::chrono::steady_clock::now();
}

TableCapacityError::TableCapacityError(std::vector<TableShortfall> shortfalls)
    : std::invalid_argument([&] {
        std::string text = "snapshot does not fit the XDP tables (nothing was written):";
        for (const auto& s : shortfalls) {
          text += fmt::format(" {} needs {} {}, has {}", map_name(s.role), s.needed, s.what, s.available);
          if (!sizing_flag(s.role).empty()) text += fmt::format(" (raise sluiced {})", sizing_flag(s.role));
          text += ';';
        }
        text.pop_back();
        return text;
      }()),
      shortfalls_(std::move(shortfalls)) {}

// The new table half, built in memory. Indices into subsets, members,
// schedule and Maglev are absolute (inside the half being written); backend
// references are indices into `backends` until ids are assigned.
struct TableWriter::Plan {
  uint32_t inactive = 0;
  std::vector<BackendIdentity> backends;
  std::map<BackendIdentity, uint32_t> backend_index;
  struct PlannedSubset {
    sluice_subset entry{};   // stat_id and rr_slot filled when written
    SlotName name;
  };
  std::vector<PlannedSubset> subsets;
  std::vector<sluice_member> members;     // backend_id: index into backends
  std::vector<uint32_t> schedule;         // index into backends
  std::vector<uint32_t> maglev;           // index into backends
  struct PlannedService {
    sluice_service_key key{};
    sluice_service value{};   // stat_id filled when written
    SlotName name;
  };
  std::vector<PlannedService> services;
  size_t client_views = 0;                // entries of services with a client namespace
  std::vector<std::pair<sluice_client_key, uint32_t>> clients;   // address -> client namespace id
  std::set<Bytes> vip_keys;
  std::set<Bytes> l7_keys;
  std::set<uint64_t> service_identities;
  std::set<uint64_t> subset_identities;
};

TableWriter::Plan TableWriter::plan(const model::Snapshot& snapshot, uint32_t inactive) const {
  Plan plan;
  plan.inactive = inactive;
  std::map<std::tuple<uint32_t, uint32_t, uint32_t, uint8_t>, uint32_t> subset_index_of;

  // Every endpoint of every service port gets a backend id, L7 ports included:
  // the agent's proxy publishes its active requests per backend into the
  // shared load map by these ids, and /clusters reads them back.
  auto add_backend = [&](const model::Endpoint& endpoint, const model::ServicePort& port,
                         uint8_t proto) -> std::pair<uint32_t, BackendIdentity> {
    BackendIdentity identity{endpoint.address, static_cast<uint16_t>(endpoint.port_for(port)), proto};
    auto [it, added] = plan.backend_index.emplace(identity, static_cast<uint32_t>(plan.backends.size()));
    if (added) plan.backends.push_back(identity);
    return {it->second, identity};
  };

  // A subset is built per address family: a VIP is translated to backends of
  // its own family only (no NAT64).
  auto build_subset = [&](const model::Destination& dest, uint8_t family, const std::string& where) -> uint32_t {
    auto memo_key = std::make_tuple(dest.service, dest.subset, dest.port, family);
    if (auto it = subset_index_of.find(memo_key); it != subset_index_of.end()) return it->second;
    if (dest.service >= snapshot.services.size())
      throw std::invalid_argument(fmt::format("{}: destination service index {} out of range", where, dest.service));
    const model::Service& service = snapshot.services[dest.service];
    if (dest.subset >= service.subsets.size())
      throw std::invalid_argument(fmt::format("{}: subset index {} out of range for {}", where, dest.subset, service.host));
    const model::Subset& subset = service.subsets[dest.subset];
    const model::ServicePort* port = service.port(dest.port);
    if (port == nullptr)
      throw std::invalid_argument(fmt::format("{}: destination {} has no port {}", where, service.host, dest.port));
    const uint8_t proto = protocol_number(*port);
    const model::LoadBalancer& lb_policy = subset.policy_for(dest.port).load_balancer;

    Plan::PlannedSubset planned;
    sluice_subset& entry = planned.entry;
    // A client view's DestinationRule has subsets of its own, whose names
    // may repeat the default view's: the rule is part of their name.
    const std::string rule(service.subset_rule(dest.subset));
    const std::string name = fmt::format("{}|{}/{}|{}{}{}", service.host, dest.port, protocol_name(proto), subset.name,
                                         rule.empty() ? "" : "|" + rule, family == SLUICE_FAMILY_V6 ? "|v6" : "");
    entry.identity = lb::hash64(name);
    plan.subset_identities.insert(entry.identity);
    entry.policy = policy_code(lb_policy.algorithm);
    entry.hash_source = lb_policy.hash.source == model::HashKey::Source::SourceIp ? SLUICE_HASH_SOURCE_IP
                                                                                 : SLUICE_HASH_FIVE_TUPLE;
    planned.name = SlotName{service.host, dest.port, protocol_name(proto),
                            subset.name + (rule.empty() ? "" : " (" + rule + ")") +
                                (family == SLUICE_FAMILY_V6 ? " (IPv6)" : "")};

    std::vector<lb::Backend> backends;
    const auto members_before = plan.members.size();
    for (uint32_t endpoint_index : subset.endpoints) {
      const model::Endpoint& endpoint = service.endpoints.at(endpoint_index);
      if (family_code(endpoint.address) != family) continue;
      const auto [index, identity] = add_backend(endpoint, *port, proto);
      const uint32_t weight = std::max<uint32_t>(endpoint.weight, 1);
      backends.push_back(lb::Backend{index, weight, identity.to_string()});
      plan.members.push_back(sluice_member{index, weight});
    }
    entry.member_first = inactive * half_.members + static_cast<uint32_t>(members_before);
    entry.member_count = static_cast<uint32_t>(plan.members.size() - members_before);

    entry.schedule_first = inactive * half_.schedule + static_cast<uint32_t>(plan.schedule.size());
    for (uint32_t index : lb::smooth_wrr_schedule(backends, SLUICE_MAX_SCHEDULE_PER_SUBSET))
      plan.schedule.push_back(backends.at(index).id);
    entry.schedule_len = static_cast<uint32_t>(inactive * half_.schedule + plan.schedule.size() - entry.schedule_first);

    if (entry.policy == SLUICE_POLICY_MAGLEV && !backends.empty()) {
      const uint64_t size = lb_policy.algorithm == model::LbAlgorithm::Maglev ? lb_policy.maglev_table_size
                                                                               : SLUICE_MAGLEV_DEFAULT_SIZE;
      entry.maglev_first = inactive * half_.maglev + static_cast<uint32_t>(plan.maglev.size());
      for (uint32_t index : lb::build_maglev_table(backends, static_cast<uint32_t>(size)))
        plan.maglev.push_back(backends.at(index).id);
      entry.maglev_len = static_cast<uint32_t>(inactive * half_.maglev + plan.maglev.size() - entry.maglev_first);
    }

    const uint32_t index = inactive * half_.subsets + static_cast<uint32_t>(plan.subsets.size());
    plan.subsets.push_back(std::move(planned));
    subset_index_of.emplace(memo_key, index);
    return index;
  };

  // Connection-level destinations into a service entry's weighted routes.
  auto fill_routes = [&](sluice_service& value, const std::vector<model::WeightedDestination>& destinations,
                         uint8_t family, const std::string& where) {
    if (destinations.size() > SLUICE_MAX_ROUTES)
      throw std::invalid_argument(fmt::format("{}: {} route destinations, the kernel datapath takes {}", where,
                                              destinations.size(), SLUICE_MAX_ROUTES));
    uint64_t total = 0;
    for (const auto& d : destinations) total += d.weight;
    uint64_t cumulative = 0;
    for (size_t ri = 0; ri < destinations.size(); ++ri) {
      cumulative += destinations[ri].weight;
      value.route_bound[ri] = total == 0 ? 0 : static_cast<uint32_t>(cumulative * SLUICE_ROUTE_SCALE / total);
      value.route_subset[ri] = build_subset(destinations[ri].destination, family, where);
    }
    value.route_count = static_cast<uint8_t>(destinations.size());
  };
  auto same_routes = [](const std::vector<model::WeightedDestination>& a,
                        const std::vector<model::WeightedDestination>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
      return x.destination.service == y.destination.service && x.destination.subset == y.destination.subset &&
             x.destination.port == y.destination.port && x.weight == y.weight;
    });
  };
  std::unordered_map<std::string_view, uint16_t> namespace_id;
  for (size_t id = 1; id < snapshot.client_namespaces.size(); ++id)
    namespace_id.emplace(snapshot.client_namespaces[id], static_cast<uint16_t>(id));
  std::set<uint16_t> view_namespaces;   // client namespaces with an entry of their own somewhere

  for (uint32_t si = 0; si < snapshot.services.size(); ++si) {
    const model::Service& service = snapshot.services[si];
    for (size_t pi = 0; pi < service.ports.size(); ++pi) {
      const model::ServicePort& port = service.ports[pi];
      const uint8_t proto = protocol_number(port);
      const std::string where = fmt::format("service {} port {}", service.host, port.number);
      const std::string name = fmt::format("{}|{}/{}", service.host, port.number, protocol_name(proto));
      const model::PortRoutes* routes = service.routes_for(port.number);

      const bool l7 = routes != nullptr && routes->plane == model::Plane::L7;
      if (l7)
        for (const model::Endpoint& endpoint : service.endpoints) add_backend(endpoint, port, proto);
      for (const model::IpAddress& vip : service.vips) {
        const uint8_t family = family_code(vip);
        Plan::PlannedService planned;
        sluice_service& value = planned.value;
        value.identity = lb::hash64(name);
        plan.service_identities.insert(value.identity);
        planned.name = SlotName{service.host, port.number, protocol_name(proto), ""};
        std::vector<Plan::PlannedService> views;
        if (l7) {
          value.flags = SLUICE_SERVICE_F_L7;
        } else {
          auto destinations_of = [&](const model::PortRoutes* r) {
            std::vector<model::WeightedDestination> destinations;
            if (r != nullptr) destinations = r->l4;
            if (destinations.empty()) {
              model::WeightedDestination whole;
              whole.destination = model::Destination{si, 0, port.number};
              whole.weight = 1;
              destinations.push_back(whole);
            }
            return destinations;
          };
          const auto destinations = destinations_of(routes);
          fill_routes(value, destinations, family, where);
          // A client namespace whose view routes this port's connections
          // otherwise gets an entry of its own (docs/bpf-datapath.md,
          // "Client views"); the others share the default entry.
          for (const model::ServiceView& view : service.views) {
            const model::PortRoutes* view_routes = pi < view.routes.size() ? &view.routes[pi] : nullptr;
            const auto view_destinations = destinations_of(view_routes);
            if (same_routes(destinations, view_destinations)) continue;
            Plan::PlannedService entry = planned;
            fill_routes(entry.value, view_destinations, family, where + " (client view)");
            for (const std::string& client : view.namespaces) {
              auto id = namespace_id.find(client);
              if (id == namespace_id.end()) continue;   // not among the snapshot's client namespaces
              entry.key.client_namespace = id->second;
              views.push_back(entry);
              view_namespaces.insert(id->second);
            }
          }
          if (!views.empty()) value.flags |= SLUICE_SERVICE_F_VIEWS;
        }
        sluice_service_key& key = planned.key;
        copy_address(vip, key.vip);
        key.port = htons(static_cast<uint16_t>(port.number));
        key.proto = proto;
        key.family = family;
        key.generation = static_cast<uint8_t>(inactive);
        sluice_vip_key vip_key{};
        copy_address(vip, vip_key.addr);
        vip_key.family = family;
        vip_key.generation = key.generation;
        auto vip_bytes = as_bytes_of(vip_key);
        plan.vip_keys.emplace(vip_bytes.begin(), vip_bytes.end());
        if (l7 && proto == IPPROTO_TCP) {
          sluice_l7_key l7_key{};
          copy_address(vip, l7_key.vip);
          l7_key.port = key.port;
          l7_key.proto = proto;
          l7_key.family = family;
          auto bytes = as_bytes_of(l7_key);
          plan.l7_keys.emplace(bytes.begin(), bytes.end());
        }
        for (Plan::PlannedService& view : views) {
          const uint16_t client_namespace = view.key.client_namespace;
          view.key = planned.key;
          view.key.client_namespace = client_namespace;
          plan.services.push_back(std::move(view));
          plan.client_views++;
        }
        plan.services.push_back(std::move(planned));
      }
    }
  }

  // The client addresses of the namespaces with entries of their own.
  if (!view_namespaces.empty()) {
    for (const auto& [address, client_namespace] : snapshot.client_namespace_by_address) {
      if (!view_namespaces.count(client_namespace)) continue;
      sluice_client_key key{};
      copy_address(address, key.addr);
      key.family = family_code(address);
      key.generation = static_cast<uint8_t>(inactive);
      plan.clients.emplace_back(key, client_namespace);
    }
  }
  return plan;
}

void TableWriter::check_fits(const Plan& plan) const {
  std::vector<TableShortfall> short_tables;
  auto need = [&](MapRole role, uint64_t needed, uint64_t available, const char* what) {
    if (needed > available) short_tables.push_back({role, needed, available, what});
  };
  need(MapRole::Services, plan.services.size(), tables_.max_entries(MapRole::Services) / 2,
       "service ports per table half");
  need(MapRole::Vips, plan.vip_keys.size(), tables_.max_entries(MapRole::Vips) / 2, "VIPs per table half");
  need(MapRole::ClientNamespaces, plan.clients.size(), tables_.max_entries(MapRole::ClientNamespaces) / 2,
       "client addresses of namespaces with a view of their own, per table half");
  need(MapRole::Subsets, plan.subsets.size(), half_.subsets, "subsets per table half");
  need(MapRole::Members, plan.members.size(), half_.members, "subset members per table half");
  need(MapRole::Schedule, plan.schedule.size(), half_.schedule, "round-robin schedule slots per table half");
  need(MapRole::Maglev, plan.maglev.size(), half_.maglev, "Maglev slots per table half");

  // Backend ids of the serving snapshot stay reserved until the flip.
  size_t ids = plan.backends.size();
  for (const auto& [id, unused] : live_) {
    auto it = backend_by_id_.find(id);
    if (it != backend_by_id_.end() && !plan.backend_index.count(it->second)) ++ids;
  }
  for (MapRole role : {MapRole::Backends, MapRole::BackendLoad, MapRole::BackendStats})
    need(role, ids, tables_.max_entries(role) - 1, "backend ids (this snapshot's and the serving one's)");

  // A counter slot per name, stable while the name stays; the serving
  // snapshot's names keep theirs until the flip.
  auto names = [](const std::set<uint64_t>& serving, const std::set<uint64_t>& wanted) {
    std::set<uint64_t> all = serving;
    all.insert(wanted.begin(), wanted.end());
    return all.size();
  };
  need(MapRole::ServiceStats, names(serving_service_names_, plan.service_identities),
       tables_.max_entries(MapRole::ServiceStats) - 1, "service counter slots (this snapshot's and the serving one's)");
  const uint64_t subset_slots = names(serving_subset_names_, plan.subset_identities);
  need(MapRole::SubsetStats, subset_slots, tables_.max_entries(MapRole::SubsetStats) - 1,
       "subset counter slots (this snapshot's and the serving one's)");
  need(MapRole::RrCursor, subset_slots, tables_.max_entries(MapRole::RrCursor) - 1, "round-robin cursors");

  std::set<Bytes> l7 = plan.l7_keys;   // stale keys are removed only after the flip
  for (const Bytes& key : tables_.keys(MapRole::L7Services)) l7.insert(key);
  need(MapRole::L7Services, l7.size(), tables_.max_entries(MapRole::L7Services),
       "L7 VIP:ports (this snapshot's and the serving one's)");

  if (!short_tables.empty()) throw TableCapacityError(std::move(short_tables));
}

std::vector<uint32_t> TableWriter::assign_backend_ids(const Plan& plan) {
  std::vector<uint32_t> ids(plan.backends.size(), 0);
  for (size_t i = 0; i < plan.backends.size(); ++i)
    if (auto it = id_by_backend_.find(plan.backends[i]); it != id_by_backend_.end()) ids[i] = it->second;
  std::set<uint32_t> taken(ids.begin(), ids.end());
  auto reusable = backend_by_id_.begin();
  const uint32_t limit = tables_.max_entries(MapRole::Backends);
  for (size_t i = 0; i < plan.backends.size(); ++i) {
    if (ids[i] != 0) continue;
    uint32_t id = 0;
    if (next_backend_id_ < limit) {
      id = next_backend_id_++;
    } else {
      // Ids are exhausted: re-use a retired one. Its tracked flows were
      // re-steered when it retired (not LIVE), unless they were idle since.
      while (reusable != backend_by_id_.end() && (live_.count(reusable->first) || taken.count(reusable->first)))
        ++reusable;
      if (reusable == backend_by_id_.end())   // check_fits() counted ids; this is a bug if reached
        throw std::logic_error("backend ids exhausted after the capacity check");
      id = reusable->first;
      id_by_backend_.erase(reusable->second);
      ++reusable;
    }
    taken.insert(id);
    ids[i] = id;
    id_by_backend_[plan.backends[i]] = id;
    backend_by_id_[id] = plan.backends[i];
  }
  return ids;
}

ApplyResult TableWriter::apply(const model::Snapshot& snapshot) {
  std::this_thread::sleep_until(last_flip_ + options_.flip_grace);

  // The generation word counts flips; its low bit is the active half.
  const uint32_t generation_word = tables_.load_generation();
  const uint32_t active = generation_word & 1;
  const uint32_t inactive = active ^ 1;
  Plan plan = this->plan(snapshot, inactive);
  check_fits(plan);

  ApplyResult result;
  result.generation = inactive;
  result.snapshot_version = snapshot.version;
  result.service_ports = plan.services.size();
  result.client_views = plan.client_views;
  result.client_addresses = plan.clients.size();
  result.subsets = plan.subsets.size();
  result.members = plan.members.size();
  result.schedule_slots = plan.schedule.size();
  result.maglev_slots = plan.maglev.size();

  // The address filter (datapath_structs.h) gets every VIP the active half
  // serves until the flip and the new half serves after it; it is written
  // below, before the flip, once backend ids are known.
  sluice_addr_filter filter{};
  auto set_bit = [](__u64* words, uint32_t bit) { words[bit / 64] |= uint64_t{1} << (bit % 64); };
  for (const Bytes& raw : tables_.keys(MapRole::Vips))
    if (const auto key = key_from<sluice_vip_key>(raw); key.generation == active)
      set_bit(filter.vips, sluice_addr_filter_bit(key.addr, 0));
  for (const Bytes& raw : plan.vip_keys)
    set_bit(filter.vips, sluice_addr_filter_bit(key_from<sluice_vip_key>(raw).addr, 0));

  // Keys of the inactive half are left over from two snapshots ago.
  for (const Bytes& raw : tables_.keys(MapRole::Services))
    if (key_from<sluice_service_key>(raw).generation == inactive) tables_.erase(MapRole::Services, raw);
  for (const Bytes& raw : tables_.keys(MapRole::Vips))
    if (key_from<sluice_vip_key>(raw).generation == inactive) tables_.erase(MapRole::Vips, raw);
  for (const Bytes& raw : tables_.keys(MapRole::ClientNamespaces))
    if (key_from<sluice_client_key>(raw).generation == inactive) tables_.erase(MapRole::ClientNamespaces, raw);

  const std::vector<uint32_t> ids = assign_backend_ids(plan);
  std::map<uint32_t, uint32_t> now_live;
  for (size_t i = 0; i < plan.backends.size(); ++i) {
    const BackendIdentity& identity = plan.backends[i];
    sluice_backend value{};
    copy_address(identity.address, value.addr);
    value.port = htons(identity.port);
    value.family = family_code(identity.address);
    value.proto = identity.proto;
    value.flags = SLUICE_BACKEND_F_LIVE;
    tables_.update(MapRole::Backends, as_bytes_of(ids[i]), as_bytes_of(value));
    now_live[ids[i]] = 1;
  }
  // Replies may come from any backend with an id: flows to one that left
  // are tracked until they end.
  for (const auto& [id, identity] : backend_by_id_) {
    __u32 addr[4] = {};
    copy_address(identity.address, addr);
    set_bit(filter.replies, sluice_addr_filter_bit(addr, htons(identity.port)));
  }
  const uint32_t zero = 0;
  tables_.update(MapRole::AddrFilter, as_bytes_of(zero), as_bytes_of(filter));

  for (sluice_member& m : plan.members) m.backend_id = ids[m.backend_id];
  for (uint32_t& slot : plan.schedule) slot = ids[slot];
  for (uint32_t& slot : plan.maglev) slot = ids[slot];
  write_array(tables_, MapRole::Members, inactive * half_.members, plan.members);
  write_array(tables_, MapRole::Schedule, inactive * half_.schedule, plan.schedule);
  write_array(tables_, MapRole::Maglev, inactive * half_.maglev, plan.maglev);

  std::set<uint64_t> keep_subsets = serving_subset_names_;
  keep_subsets.insert(plan.subset_identities.begin(), plan.subset_identities.end());
  std::vector<sluice_subset> subsets;
  subsets.reserve(plan.subsets.size());
  for (auto& planned : plan.subsets) {
    planned.entry.stat_id = slot_for(subset_slot_by_identity_, planned.entry.identity, next_subset_slot_,
                                     MapRole::SubsetStats, keep_subsets);
    planned.entry.rr_slot = planned.entry.stat_id;
    subset_names_[planned.entry.stat_id] = planned.name;
    subsets.push_back(planned.entry);
  }
  write_array(tables_, MapRole::Subsets, inactive * half_.subsets, subsets);

  std::set<uint64_t> keep_services = serving_service_names_;
  keep_services.insert(plan.service_identities.begin(), plan.service_identities.end());
  for (auto& planned : plan.services) {
    planned.value.stat_id = slot_for(service_slot_by_identity_, planned.value.identity, next_service_slot_,
                                     MapRole::ServiceStats, keep_services);
    service_names_[planned.value.stat_id] = planned.name;
    tables_.update(MapRole::Services, as_bytes_of(planned.key), as_bytes_of(planned.value));
  }
  for (const auto& [key, client_namespace] : plan.clients)
    tables_.update(MapRole::ClientNamespaces, as_bytes_of(key), as_bytes_of(client_namespace));
  const uint32_t one = 1;
  for (const Bytes& key : plan.vip_keys) tables_.update(MapRole::Vips, key, as_bytes_of(one));
  for (const Bytes& key : plan.l7_keys) {
    sluice_l7_key l7_key{};
    std::memcpy(&l7_key, key.data(), sizeof l7_key);
    const uint32_t listener_slot = l7_key.family == SLUICE_FAMILY_V6 ? SLUICE_L7_LISTENER_V6 : SLUICE_L7_LISTENER_V4;
    tables_.update(MapRole::L7Services, key, as_bytes_of(listener_slot));
  }

  tables_.store_generation(generation_word + 1);   // low bit: inactive, now active
  last_flip_ = std::chrono::steady_clock::now();
  serving_service_names_ = std::move(plan.service_identities);
  serving_subset_names_ = std::move(plan.subset_identities);

  // Retire what the new half no longer references. A backend that left the
  // snapshot loses LIVE, so its tracked flows are re-steered.
  for (const auto& [id, unused] : live_) {
    if (now_live.count(id)) continue;
    sluice_backend value{};
    if (tables_.lookup(MapRole::Backends, as_bytes_of(id), as_writable_bytes_of(value))) {
      value.flags &= static_cast<uint8_t>(~SLUICE_BACKEND_F_LIVE);
      tables_.update(MapRole::Backends, as_bytes_of(id), as_bytes_of(value));
    }
    result.retired_backends++;
  }
  live_ = std::move(now_live);
  for (const Bytes& key : tables_.keys(MapRole::L7Services))
    if (!plan.l7_keys.count(key)) tables_.erase(MapRole::L7Services, key);

  result.live_backends = live_.size();
  return result;
}

}  // namespace sluice::bpfmaps
