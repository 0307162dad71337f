#include "dpdk/steer_tables.h"

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

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

void* map_mmap(int fd, size_t len, int prot, std::string_view name) {
  void* p = mmap(nullptr, len, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail(fmt::format("mmap {} (created without BPF_F_MMAPABLE?)", name), errno);
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
  key.generation = static_cast<uint8_t>(generation);
  return key;
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

  ctrl_len_ = page_round(sizeof(sluice_ctrl));
  ctrl_ = static_cast<sluice_ctrl*>(map_mmap(ctrl_fd_, ctrl_len_, PROT_READ, "sluice_ctrl"));
  const bpf_map_info load_info = map_info(load_fd_, "sluice_backend_load");
  if (load_info.value_size != sizeof(sluice_backend_load))
    throw std::runtime_error(fmt::format("{}/sluice_backend_load has {}-byte values, this build expects {}", pin_dir,
                                         load_info.value_size, sizeof(sluice_backend_load)));
  load_entries_ = load_info.max_entries;
  load_len_ = page_round(size_t{load_entries_} * sizeof(sluice_backend_load));
  load_ = static_cast<sluice_backend_load*>(
      map_mmap(load_fd_, load_len_, PROT_READ | PROT_WRITE, "sluice_backend_load"));
}

PinnedSteerTables::~PinnedSteerTables() {
  if (ctrl_) munmap(ctrl_, ctrl_len_);
  if (load_) munmap(load_, load_len_);
  for (int fd : {ctrl_fd_, services_fd_, subsets_fd_, members_fd_, schedule_fd_, maglev_fd_, backends_fd_, rr_fd_,
                 load_fd_})
    if (fd >= 0) close(fd);
}

uint32_t PinnedSteerTables::active_generation() const {
  return __atomic_load_n(&ctrl_->generation, __ATOMIC_ACQUIRE) & 1;
}

std::shared_ptr<const SteerSnapshot> PinnedSteerTables::read_snapshot() const {
  // The writer fills the inactive half and then flips; a copy is consistent
  // if the generation did not move while it was taken.
  for (int attempt = 0; attempt < 16; attempt++) {
    auto snapshot = std::make_shared<SteerSnapshot>();
    const uint32_t generation = active_generation();
    read_half(generation, *snapshot);
    if (active_generation() == generation) return snapshot;
  }
  throw std::runtime_error(fmt::format("{}: the table generation kept flipping while it was copied", pin_dir_));
}

void PinnedSteerTables::read_half(uint32_t generation, SteerSnapshot& out) const {
  out.generation = generation;
  out.hash_seed = __atomic_load_n(&ctrl_->hash_seed, __ATOMIC_RELAXED);
  out.subsets.assign(map_info(subsets_fd_, "sluice_subsets").max_entries, sluice_subset{});
  out.members.assign(map_info(members_fd_, "sluice_members").max_entries, sluice_member{});
  out.schedule.assign(map_info(schedule_fd_, "sluice_schedule").max_entries, 0);
  out.maglev.assign(map_info(maglev_fd_, "sluice_maglev").max_entries, 0);
  out.backends.assign(map_info(backends_fd_, "sluice_backends").max_entries, sluice_backend{});

  // Service ports of this half. Deleting keys during the walk restarts it
  // from the first key, so the walk is bounded and duplicates are harmless.
  const uint32_t bound = 4 * map_info(services_fd_, "sluice_services").max_entries + 16;
  sluice_service_key key{}, next{};
  const void* prev = nullptr;
  for (uint32_t steps = 0; steps < bound; steps++) {
    if (bpf_map_get_next_key(services_fd_, prev, &next) != 0) break;
    key = next;
    prev = &key;
    if (key.generation != generation) continue;
    sluice_service svc{};
    if (bpf_map_lookup_elem(services_fd_, &key, &svc) == 0) out.services[key] = svc;
  }

  for (const auto& [skey, svc] : out.services) {
    for (uint32_t r = 0; r < svc.route_count && r < SLUICE_MAX_ROUTES; r++) {
      const uint32_t index = svc.route_subset[r];
      if (index >= out.subsets.size())
        throw std::runtime_error(fmt::format("service route points at subset {} past the table", index));
      if (out.subsets[index].policy != 0) continue;   // already copied
      copy_array_range(subsets_fd_, index, 1, out.subsets);
      const sluice_subset& sub = out.subsets[index];
      copy_array_range(members_fd_, sub.member_first, sub.member_count, out.members);
      copy_array_range(schedule_fd_, sub.schedule_first, sub.schedule_len, out.schedule);
      copy_array_range(maglev_fd_, sub.maglev_first, sub.maglev_len, out.maglev);
    }
  }
  // Backends are keyed by stable id, not halved: copy the whole table.
  copy_array_range(backends_fd_, 0, static_cast<uint32_t>(out.backends.size()), out.backends);
}

std::vector<uint32_t> PinnedSteerTables::read_rr_cursors() const {
  std::vector<uint32_t> cursors(map_info(rr_fd_, "sluice_rr_cursor").max_entries, 0);
  copy_array_range(rr_fd_, 0, static_cast<uint32_t>(cursors.size()), cursors);
  return cursors;
}

void bind_env(sluice_user_steer_env& env, const SteerSnapshot& snapshot) {
  env.subsets = snapshot.subsets.data();
  env.subset_count = static_cast<uint32_t>(snapshot.subsets.size());
  env.members = snapshot.members.data();
  env.member_count = static_cast<uint32_t>(snapshot.members.size());
  env.schedule = snapshot.schedule.data();
  env.schedule_count = static_cast<uint32_t>(snapshot.schedule.size());
  env.maglev = snapshot.maglev.data();
  env.maglev_count = static_cast<uint32_t>(snapshot.maglev.size());
}

}  // namespace sluice::dpdk
