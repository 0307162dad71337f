#include "bpfmaps/table_writer.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>

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

uint32_t TableWriter::slot_for(std::map<uint64_t, uint32_t>& slots, uint64_t identity, uint32_t& next) {
  auto it = slots.find(identity);
  if (it != slots.end()) return it->second;
  if (next >= SLUICE_MAX_STAT_SLOTS)
    throw std::invalid_argument(fmt::format("more than {} counter slots (SLUICE_MAX_STAT_SLOTS)",
                                            SLUICE_MAX_STAT_SLOTS - 1));
  slots.emplace(identity, next);
  return next++;
}

uint32_t TableWriter::allocate_backend(const BackendIdentity& backend) {
  auto it = id_by_backend_.find(backend);
  if (it != id_by_backend_.end()) return it->second;
  uint32_t id = 0;
  if (next_backend_id_ < tables_.max_entries(MapRole::Backends)) {
    id = next_backend_id_++;
  } else {
    // Ids are exhausted: re-use a retired one. Its tracked flows were
    // re-steered when it retired (not LIVE), unless they were idle since.
    for (auto& [old_id, identity] : backend_by_id_) {
      if (!live_.count(old_id)) {
        id = old_id;
        id_by_backend_.erase(identity);
        break;
      }
    }
    if (id == 0)
      throw std::invalid_argument(fmt::format("more than {} backends (SLUICE_MAX_BACKENDS)",
                                              tables_.max_entries(MapRole::Backends) - 1));
  }
  id_by_backend_[backend] = id;
  backend_by_id_[id] = backend;
  return id;
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
    next_service_slot_ = std::max(next_service_slot_, value.stat_id + 1);
  }
  for (uint32_t half = 0; half < 2; ++half) {
    for (uint32_t i = half * half_.subsets; i < (half + 1) * half_.subsets; ++i) {
      sluice_subset value{};
      if (!tables_.lookup(MapRole::Subsets, as_bytes_of(i), as_writable_bytes_of(value)) || value.identity == 0)
        break;   // halves are filled from their start
      subset_slot_by_identity_.emplace(value.identity, value.stat_id);
      next_subset_slot_ = std::max(next_subset_slot_, value.stat_id + 1);
    }
  }
  // The previous writer may have flipped just before it stopped.
  last_flip_ = std::chrono::steady_clock::now();
}

ApplyResult TableWriter::apply(const model::Snapshot& snapshot) {
  std::this_thread::sleep_until(last_flip_ + options_.flip_grace);

  const uint32_t active = tables_.load_generation() & 1;
  const uint32_t inactive = active ^ 1;
  ApplyResult result;
  result.generation = inactive;
  result.snapshot_version = snapshot.version;

  // Keys of the inactive half are left over from two snapshots ago.
  for (const Bytes& raw : tables_.keys(MapRole::Services))
    if (key_from<sluice_service_key>(raw).generation == inactive) tables_.erase(MapRole::Services, raw);
  for (const Bytes& raw : tables_.keys(MapRole::Vips))
    if (key_from<sluice_vip_key>(raw).generation == inactive) tables_.erase(MapRole::Vips, raw);

  uint32_t subset_next = inactive * half_.subsets;
  uint32_t member_next = inactive * half_.members;
  uint32_t schedule_next = inactive * half_.schedule;
  uint32_t maglev_next = inactive * half_.maglev;
  std::map<std::tuple<uint32_t, uint32_t, uint32_t, uint8_t>, uint32_t> subset_index_of;
  std::map<uint32_t, uint32_t> now_live;
  std::set<Bytes> l7_keys;

  // Every endpoint of every service port gets a backend id, L7 ports included:
  // the agent's proxy publishes its active requests per backend into the
  // shared load map by these ids, and /clusters reads them back.
  auto register_backend = [&](const model::Endpoint& endpoint, const model::ServicePort& port,
                              uint8_t proto) -> std::pair<uint32_t, BackendIdentity> {
    BackendIdentity identity{endpoint.address, static_cast<uint16_t>(endpoint.port_for(port)), proto};
    const uint32_t id = allocate_backend(identity);
    sluice_backend value{};
    copy_address(endpoint.address, value.addr);
    value.port = htons(identity.port);
    value.family = family_code(endpoint.address);
    value.proto = proto;
    value.flags = SLUICE_BACKEND_F_LIVE;
    tables_.update(MapRole::Backends, as_bytes_of(id), as_bytes_of(value));
    now_live[id] = 1;
    return {id, identity};
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

    if (subset_next >= (inactive + 1) * half_.subsets)
      throw std::invalid_argument(fmt::format("{}: more than {} subsets per table half", where, half_.subsets));
    const std::string name = fmt::format("{}|{}/{}|{}{}", service.host, dest.port, protocol_name(proto), subset.name,
                                         family == SLUICE_FAMILY_V6 ? "|v6" : "");
    sluice_subset entry{};
    entry.identity = lb::hash64(name);
    entry.stat_id = slot_for(subset_slot_by_identity_, entry.identity, next_subset_slot_);
    entry.rr_slot = entry.stat_id;
    entry.policy = policy_code(lb_policy.algorithm);
    entry.hash_source = lb_policy.hash.source == model::HashKey::Source::SourceIp ? SLUICE_HASH_SOURCE_IP
                                                                                 : SLUICE_HASH_FIVE_TUPLE;
    subset_names_[entry.stat_id] = SlotName{service.host, dest.port, protocol_name(proto),
                                            family == SLUICE_FAMILY_V6 ? subset.name + " (IPv6)" : subset.name};

    std::vector<lb::Backend> backends;
    std::vector<sluice_member> members;
    for (uint32_t endpoint_index : subset.endpoints) {
      const model::Endpoint& endpoint = service.endpoints.at(endpoint_index);
      if (family_code(endpoint.address) != family) continue;
      const auto [id, identity] = register_backend(endpoint, *port, proto);
      const uint32_t weight = std::max<uint32_t>(endpoint.weight, 1);
      backends.push_back(lb::Backend{id, weight, identity.to_string()});
      members.push_back(sluice_member{id, weight});
    }

    if (member_next + members.size() > (inactive + 1) * half_.members)
      throw std::invalid_argument(fmt::format("{}: more than {} subset members per table half", where, half_.members));
    entry.member_first = member_next;
    entry.member_count = static_cast<uint32_t>(members.size());
    write_array(tables_, MapRole::Members, member_next, members);
    member_next += entry.member_count;

    std::vector<uint32_t> schedule;
    for (uint32_t index : lb::smooth_wrr_schedule(backends, SLUICE_MAX_SCHEDULE_PER_SUBSET))
      schedule.push_back(backends.at(index).id);
    if (schedule_next + schedule.size() > (inactive + 1) * half_.schedule)
      throw std::invalid_argument(fmt::format("{}: more than {} schedule slots per table half", where, half_.schedule));
    entry.schedule_first = schedule_next;
    entry.schedule_len = static_cast<uint32_t>(schedule.size());
    write_array(tables_, MapRole::Schedule, schedule_next, schedule);
    schedule_next += entry.schedule_len;

    if (entry.policy == SLUICE_POLICY_MAGLEV && !backends.empty()) {
      const uint64_t size = lb_policy.algorithm == model::LbAlgorithm::Maglev ? lb_policy.maglev_table_size
                                                                               : SLUICE_MAGLEV_DEFAULT_SIZE;
      std::vector<uint32_t> table;
      for (uint32_t index : lb::build_maglev_table(backends, static_cast<uint32_t>(size)))
        table.push_back(backends.at(index).id);
      if (maglev_next + table.size() > (inactive + 1) * half_.maglev)
        throw std::invalid_argument(fmt::format(
            "{}: Maglev tables need more than {} slots per table half (raise DatapathOptions::maglev_slots)",
            where, half_.maglev));
      entry.maglev_first = maglev_next;
      entry.maglev_len = static_cast<uint32_t>(table.size());
      write_array(tables_, MapRole::Maglev, maglev_next, table);
      maglev_next += entry.maglev_len;
      result.maglev_slots += table.size();
    }

    const uint32_t index = subset_next++;
    tables_.update(MapRole::Subsets, as_bytes_of(index), as_bytes_of(entry));
    subset_index_of.emplace(memo_key, index);
    result.subsets++;
    result.members += members.size();
    result.schedule_slots += schedule.size();
    return index;
  };

  for (uint32_t si = 0; si < snapshot.services.size(); ++si) {
    const model::Service& service = snapshot.services[si];
    for (const model::ServicePort& port : service.ports) {
      const uint8_t proto = protocol_number(port);
      const std::string where = fmt::format("service {} port {}", service.host, port.number);
      const std::string name = fmt::format("{}|{}/{}", service.host, port.number, protocol_name(proto));
      const model::PortRoutes* routes = service.routes_for(port.number);

      const bool l7 = routes != nullptr && routes->plane == model::Plane::L7;
      for (const model::IpAddress& vip : service.vips) {
        const uint8_t family = family_code(vip);
        sluice_service value{};
        value.identity = lb::hash64(name);
        value.stat_id = slot_for(service_slot_by_identity_, value.identity, next_service_slot_);
        service_names_[value.stat_id] = SlotName{service.host, port.number, protocol_name(proto), ""};
        if (l7) {
          value.flags = SLUICE_SERVICE_F_L7;
          for (const model::Endpoint& endpoint : service.endpoints) register_backend(endpoint, port, proto);
        } else {
          std::vector<model::WeightedDestination> destinations;
          if (routes != nullptr) destinations = routes->l4;
          if (destinations.empty()) {
            model::WeightedDestination whole;
            whole.destination = model::Destination{si, 0, port.number};
            whole.weight = 1;
            destinations.push_back(whole);
          }
          if (destinations.size() > SLUICE_MAX_ROUTES)
            throw std::invalid_argument(fmt::format("{}: {} route destinations, the kernel datapath takes {}",
                                                    where, destinations.size(), SLUICE_MAX_ROUTES));
          uint64_t total = 0;
          for (const auto& d : destinations) total += d.weight;
          uint64_t cumulative = 0;
          for (size_t ri = 0; ri < destinations.size(); ++ri) {
            cumulative += destinations[ri].weight;
            value.route_bound[ri] =
                total == 0 ? 0 : static_cast<uint32_t>(cumulative * SLUICE_ROUTE_SCALE / total);
            value.route_subset[ri] = build_subset(destinations[ri].destination, family, where);
          }
          value.route_count = static_cast<uint8_t>(destinations.size());
        }
        sluice_service_key key{};
        copy_address(vip, key.vip);
        key.port = htons(static_cast<uint16_t>(port.number));
        key.proto = proto;
        key.family = family_code(vip);
        key.generation = static_cast<uint8_t>(inactive);
        tables_.update(MapRole::Services, as_bytes_of(key), as_bytes_of(value));
        sluice_vip_key vip_key{};
        copy_address(vip, vip_key.addr);
        vip_key.family = key.family;
        vip_key.generation = key.generation;
        const uint32_t one = 1;
        tables_.update(MapRole::Vips, as_bytes_of(vip_key), as_bytes_of(one));
        result.service_ports++;
        if (l7 && proto == IPPROTO_TCP) {
          sluice_l7_key l7_key{};
          copy_address(vip, l7_key.vip);
          l7_key.port = key.port;
          l7_key.proto = proto;
          l7_key.family = key.family;
          auto bytes = as_bytes_of(l7_key);
          l7_keys.emplace(bytes.begin(), bytes.end());
        }
      }
    }
  }
  for (const Bytes& key : l7_keys) {
    sluice_l7_key l7_key{};
    std::memcpy(&l7_key, key.data(), sizeof l7_key);
    const uint32_t listener_slot = l7_key.family == SLUICE_FAMILY_V6 ? SLUICE_L7_LISTENER_V6 : SLUICE_L7_LISTENER_V4;
    tables_.update(MapRole::L7Services, key, as_bytes_of(listener_slot));
  }

  tables_.store_generation(inactive);
  last_flip_ = std::chrono::steady_clock::now();

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
    if (!l7_keys.count(key)) tables_.erase(MapRole::L7Services, key);

  result.live_backends = live_.size();
  return result;
}

}  // namespace sluice::bpfmaps
