#include "dpdk/steer_tables.h"

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace sluice::dpdk {
namespace {

[[noreturn]] void fail(const std::string& what, int err) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(err)));
}

int open_pinned(const std::string& pin_dir, std::string_view name) {
  const std::string path = fmt::format("{}/{}", pin_dir, name);
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0)
    fail(fmt::format("open pinned map {} (is sluiced or the XDP datapath loaded with this pin dir?)", path), errno);
  return fd;
}

bpf_map_info map_info(int fd, std::string_view name) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) fail(fmt::format("map info of {}", name), errno);
  return info;
}

void* map_mmap(int fd, size_t len, int prot, const std::string& name) {
  void* p = mmap(nullptr, len, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    fail(fmt::format("mmap {} (pinned without BPF_F_MMAPABLE, by an older sluiced? remove the pins and restart it)",
                     name),
         errno);
  return p;
}

size_t page_round(size_t n) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

// Copies array entries [first, first + count) into dest (which has room for
// them at the same absolute indices). BPF_MAP_LOOKUP_BATCH takes the key
// *before* the first one wanted; per-element lookups are the fallback for
// kernels without batch ops on arrays.
template <typename T>
void copy_array_range(int fd, uint32_t first, uint32_t count, std::vector<T>& dest) {
  if (count == 0) return;
  if (first >= dest.size() || count > dest.size() - first)
    throw std::runtime_error(fmt::format("table range [{}, {}) outside the map's {} entries", first,
                                         uint64_t{first} + count, dest.size()));
  std::vector<uint32_t> keys(count);
  uint32_t done = 0;
  while (done < count) {
    uint32_t n = count - done;
    uint32_t prev = first + done - 1, next = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first + done == 0 ? nullptr : &prev, &next, keys.data(),
                                   &dest[first + done], &n, &opts);
    if (err != 0 && errno != ENOENT) break;
    if (n == 0) break;
    done += n;
  }
  for (; done < count; done++) {
    uint32_t key = first + done;
    if (bpf_map_lookup_elem(fd, &key, &dest[key]) != 0) fail(fmt::format("lookup array index {}", key), errno);
  }
}

}  // namespace

size_t ServiceKeyHash::operator()(const sluice_service_key& key) const noexcept {
  uint32_t h = 0x5eed;
  h = sluice_hash_mix(h, key.vip[0]);
  h = sluice_hash_mix(h, key.vip[1]);
  h = sluice_hash_mix(h, key.vip[2]);
  h = sluice_hash_mix(h, key.vip[3]);
  h = sluice_hash_mix(h, (uint32_t{key.port} << 16) | (uint32_t{key.proto} << 8) | key.family);
  return sluice_hash_finish(h, 20);
}

bool ServiceKeyEqual::operator()(const sluice_service_key& a, const sluice_service_key& b) const noexcept {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

size_t ClientKeyHash::operator()(const sluice_client_key& key) const noexcept {
  uint32_t h = 0xc11e;
  h = sluice_hash_mix(h, key.addr[0]);
  h = sluice_hash_mix(h, key.addr[1]);
  h = sluice_hash_mix(h, key.addr[2]);
  h = sluice_hash_mix(h, key.addr[3]);
  return sluice_hash_finish(h, 16);
}

bool ClientKeyEqual::operator()(const sluice_client_key& a, const sluice_client_key& b) const noexcept {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

namespace {

sluice_client_key client_key_of(const sluice_flow_key& flow, uint8_t generation) {
  sluice_client_key key{};
  std::memcpy(key.addr, flow.src, sizeof(key.addr));
  key.family = flow.family;
  key.generation = generation;
  return key;
}

}  // namespace

const sluice_service* SteerSnapshot::client_view(const sluice_service* service, sluice_service_key key,
                                                 const sluice_flow_key& flow) const {
  auto client = client_namespaces.find(client_key_of(flow, key.generation));
  if (client == client_namespaces.end()) return service;
  key.client_namespace = static_cast<uint16_t>(client->second);
  const sluice_service* view = find_service(key);
  return view ? view : service;
}

const sluice_service* SteerSnapshot::find_service(const sluice_service_key& key) const {
  auto it = services.find(key);
  return it == services.end() ? nullptr : &it->second;
}

sluice_service_key SteerSnapshot::service_key_of(const sluice_flow_key& flow) const {
  sluice_service_key key{};
  std::memcpy(key.vip, flow.dst, sizeof(key.vip));
  key.port = flow.dport;
  key.proto = flow.proto;
  key.family = flow.family;
  key.generation = static_cast<uint8_t>(half());
  return key;
}

template <typename T>
MappedArray<T> PinnedSteerTables::map_array(int fd, const char* name, int prot) {
  const bpf_map_info info = map_info(fd, name);
  if (info.value_size != sizeof(T))
    throw std::runtime_error(fmt::format("{}/{} has {}-byte values, this build expects {}", pin_dir_, name,
                                         info.value_size, sizeof(T)));
  MappedArray<T> array;
  const size_t len = page_round(size_t{info.max_entries} * array.stride);
  void* addr = map_mmap(fd, len, prot, fmt::format("{}/{}", pin_dir_, name));
  mappings_.push_back({addr, len});
  array.entries = static_cast<const T*>(addr);
  array.count = info.max_entries;
  return array;
}

PinnedSteerTables::PinnedSteerTables(const std::string& pin_dir) : pin_dir_(pin_dir) {
  ctrl_fd_ = open_pinned(pin_dir, "sluice_ctrl");
  services_fd_ = open_pinned(pin_dir, "sluice_services");
  subsets_fd_ = open_pinned(pin_dir, "sluice_subsets");
  members_fd_ = open_pinned(pin_dir, "sluice_members");
  schedule_fd_ = open_pinned(pin_dir, "sluice_schedule");
  maglev_fd_ = open_pinned(pin_dir, "sluice_maglev");
  backends_fd_ = open_pinned(pin_dir, "sluice_backends");
  rr_fd_ = open_pinned(pin_dir, "sluice_rr_cursor");
  load_fd_ = open_pinned(pin_dir, "sluice_backend_load");
  clients_fd_ = open_pinned(pin_dir, "sluice_client_namespaces");

  try {
    // The generation word is read here and written by the agent: mapped
    // read-only, like every config table. The load map is shared for writing.
    ctrl_ = const_cast<sluice_ctrl*>(map_array<sluice_ctrl>(ctrl_fd_, "sluice_ctrl").entries);
    const auto load = map_array<sluice_backend_load>(load_fd_, "sluice_backend_load", PROT_READ | PROT_WRITE);
    load_ = const_cast<sluice_backend_load*>(load.entries);
    load_entries_ = load.count;
    subsets_ = map_array<sluice_subset>(subsets_fd_, "sluice_subsets");
    members_ = map_array<sluice_member>(members_fd_, "sluice_members");
    schedule_ = map_array<uint32_t>(schedule_fd_, "sluice_schedule");
    maglev_ = map_array<uint32_t>(maglev_fd_, "sluice_maglev");
    backends_ = map_array<sluice_backend>(backends_fd_, "sluice_backends");
  } catch (...) {
    release();   // the destructor does not run for a constructor that throws
    throw;
  }
}

PinnedSteerTables::~PinnedSteerTables() { release(); }

void PinnedSteerTables::release() {
  for (const Mapping& m : mappings_) munmap(m.addr, m.len);
  mappings_.clear();
  for (int* fd : {&ctrl_fd_, &services_fd_, &subsets_fd_, &members_fd_, &schedule_fd_, &maglev_fd_, &backends_fd_,
                  &rr_fd_, &load_fd_, &clients_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

PinnedSteerTables::CounterSlots PinnedSteerTables::counter_slots() const {
  auto entries = [&](std::string_view name) {
    const int fd = open_pinned(pin_dir_, name);
    bpf_map_info info{};
    try {
      info = map_info(fd, name);
    } catch (...) {
      close(fd);
      throw;
    }
    close(fd);
    return info.max_entries;
  };
  CounterSlots slots;
  slots.services = entries("sluice_service_stats");
  slots.subsets = entries("sluice_subset_stats");
  slots.backends = std::max(backends_.count, entries("sluice_backend_stats"));
  return slots;
}

uint32_t PinnedSteerTables::active_generation() const {
  return __atomic_load_n(&ctrl_->generation, __ATOMIC_ACQUIRE);
}

std::shared_ptr<const SteerSnapshot> PinnedSteerTables::read_snapshot() const {
  // The writer fills the inactive half and then flips; a copy is consistent
  // if the generation did not move while it was taken.
  for (int attempt = 0; attempt < 16; attempt++) {
    auto snapshot = std::make_shared<SteerSnapshot>();
    const uint32_t generation = active_generation();
    snapshot->generation = generation;
    snapshot->hash_seed = __atomic_load_n(&ctrl_->hash_seed, __ATOMIC_RELAXED);
    snapshot->subsets = subsets_;
    snapshot->members = members_;
    snapshot->schedule = schedule_;
    snapshot->maglev = maglev_;
    snapshot->backends = backends_;
    // Service ports of this half. Deleting keys during the walk restarts it
    // from the first key, so the walk is bounded and duplicates are harmless.
    const uint32_t bound = 4 * map_info(services_fd_, "sluice_services").max_entries + 16;
    sluice_service_key key{}, next{};
    const void* prev = nullptr;
    for (uint32_t steps = 0; steps < bound; steps++) {
      if (bpf_map_get_next_key(services_fd_, prev, &next) != 0) break;
      key = next;
      prev = &key;
      if (key.generation != snapshot->half()) continue;
      sluice_service svc{};
      if (bpf_map_lookup_elem(services_fd_, &key, &svc) == 0) snapshot->services[key] = svc;
    }
    // Client addresses of this half, walked the same way.
    const uint32_t client_bound = 4 * map_info(clients_fd_, "sluice_client_namespaces").max_entries + 16;
    sluice_client_key client{}, next_client{};
    const void* prev_client = nullptr;
    for (uint32_t steps = 0; steps < client_bound; steps++) {
      if (bpf_map_get_next_key(clients_fd_, prev_client, &next_client) != 0) break;
      client = next_client;
      prev_client = &client;
      if (client.generation != snapshot->half()) continue;
      uint32_t client_namespace = 0;
      if (bpf_map_lookup_elem(clients_fd_, &client, &client_namespace) == 0)
        snapshot->client_namespaces[client] = client_namespace;
    }
    if (active_generation() == generation) return snapshot;
  }
  throw std::runtime_error(fmt::format("{}: the table generation kept flipping while it was copied", pin_dir_));
}

bool PinnedSteerTables::lookup_service(const sluice_service_key& key, sluice_service& out) const {
  return bpf_map_lookup_elem(services_fd_, &key, &out) == 0;
}

void PinnedSteerTables::lookup_client_view(sluice_service_key key, const sluice_flow_key& flow,
                                           sluice_service& service) const {
  const sluice_client_key client = client_key_of(flow, key.generation);
  uint32_t client_namespace = 0;
  if (bpf_map_lookup_elem(clients_fd_, &client, &client_namespace) != 0) return;
  key.client_namespace = static_cast<uint16_t>(client_namespace);
  sluice_service view{};
  if (bpf_map_lookup_elem(services_fd_, &key, &view) == 0) service = view;
}

std::vector<uint32_t> PinnedSteerTables::read_rr_cursors() const {
  std::vector<uint32_t> cursors(map_info(rr_fd_, "sluice_rr_cursor").max_entries, 0);
  copy_array_range(rr_fd_, 0, static_cast<uint32_t>(cursors.size()), cursors);
  return cursors;
}

void bind_env(sluice_user_steer_env& env, const SteerSnapshot& snapshot) {
  // Structs the env indexes as plain arrays must have no padding between
  // mmapped entries; the 4-byte schedule and Maglev slots carry their stride.
  static_assert(sizeof(sluice_subset) % 8 == 0 && sizeof(sluice_member) % 8 == 0);
  env.subsets = snapshot.subsets.entries;
  env.subset_count = snapshot.subsets.count;
  env.members = snapshot.members.entries;
  env.member_count = snapshot.members.count;
  env.schedule = snapshot.schedule.entries;
  env.schedule_count = snapshot.schedule.count;
  env.schedule_stride = snapshot.schedule.stride;
  env.maglev = snapshot.maglev.entries;
  env.maglev_count = snapshot.maglev.count;
  env.maglev_stride = snapshot.maglev.stride;
}

}  // namespace sluice::dpdk
