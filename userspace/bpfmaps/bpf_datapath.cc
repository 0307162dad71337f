#include "bpfmaps/bpf_datapath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "sluice_sklookup.skel.h"
#include "sluice_steer.skel.h"

namespace sluice::bpfmaps {
namespace {

int route_libbpf_message(enum libbpf_print_level level, const char* format, va_list args) {
  char buffer[1024];
  int n = vsnprintf(buffer, sizeof(buffer), format, args);
  std::string_view text(buffer, n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof(buffer) - 1) : 0);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  switch (level) {
    case LIBBPF_WARN: spdlog::warn("libbpf: {}", text); break;
    case LIBBPF_INFO: spdlog::info("libbpf: {}", text); break;
    default: spdlog::debug("libbpf: {}", text); break;
  }
  return n;
}

[[noreturn]] void fail(const std::string& what, int err) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(err < 0 ? -err : err)));
}

size_t mmap_length(const bpf_map* map) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t bytes = static_cast<size_t>(bpf_map__value_size(map)) * bpf_map__max_entries(map);
  return (bytes + page - 1) / page * page;
}

void* mmap_map(int fd, size_t len, const std::string& name) {
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail("mmap " + name, errno);
  return p;
}

void require_bpffs(const std::string& pin_dir) {
  std::filesystem::path dir(pin_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw std::runtime_error(fmt::format("pin directory {}: {} (is bpffs mounted? mount -t bpf bpf /sys/fs/bpf)",
                                         pin_dir, ec.message()));
  struct statfs fs {};
  if (statfs(pin_dir.c_str(), &fs) != 0 || fs.f_type != BPF_FS_MAGIC)
    throw std::runtime_error(fmt::format(
        "pin directory {} is not on a bpf filesystem: mount -t bpf bpf /sys/fs/bpf "
        "(inside `ip netns exec` /sys is remounted; use nsenter --net=/run/netns/NAME)",
        pin_dir));
}

}  // namespace

BpfDatapath::BpfDatapath(DatapathOptions options) : options_(std::move(options)) {
  libbpf_set_print(route_libbpf_message);
}

BpfDatapath::~BpfDatapath() {
  if (ctrl_) munmap(ctrl_, ctrl_len_);
  if (backend_load_) munmap(backend_load_, backend_load_len_);
  for (auto& [name, fd] : link_fds_) close(fd);
  if (sk_lookup_link_fd_ >= 0) close(sk_lookup_link_fd_);
  if (steer_) sluice_steer__destroy(steer_);
  if (sklookup_) sluice_sklookup__destroy(sklookup_);
}

void BpfDatapath::load() {
  require_bpffs(options_.pin_dir);
  steer_ = sluice_steer__open();
  if (!steer_) fail("open BPF object sluice_steer", errno);
  sklookup_ = sluice_sklookup__open();
  if (!sklookup_) fail("open BPF object sluice_sklookup", errno);

  bpf_map__set_max_entries(steer_->maps.sluice_conntrack, options_.conntrack_flows);
  bpf_map__set_max_entries(steer_->maps.sluice_reverse_nat, options_.conntrack_flows);
  bpf_map__set_max_entries(steer_->maps.sluice_maglev, 2 * options_.maglev_slots);

  for (auto* obj : {steer_->obj, sklookup_->obj}) {
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      const char* name = bpf_map__name(map);
      if (std::string_view(name).starts_with(".")) continue;   // .rodata etc.
      const std::string path = options_.pin_dir + "/" + name;
      if (access(path.c_str(), F_OK) == 0) reused_maps_ = true;
      if (int err = bpf_map__set_pin_path(map, path.c_str())) fail("pin path " + path, err);
    }
  }
  if (int err = sluice_steer__load(steer_))
    fail(fmt::format("load sluice_steer (maps pinned in {} with other sizes or flags, e.g. by an older sluiced? "
                     "remove them or use the same knobs)",
                     options_.pin_dir),
         err);
  if (int err = sluice_sklookup__load(sklookup_)) fail("load sluice_sklookup", err);

  ctrl_len_ = mmap_length(steer_->maps.sluice_ctrl);
  ctrl_ = static_cast<sluice_ctrl*>(mmap_map(bpf_map__fd(steer_->maps.sluice_ctrl), ctrl_len_, "sluice_ctrl"));
  backend_load_len_ = mmap_length(steer_->maps.sluice_backend_load);
  backend_load_ = static_cast<sluice_backend_load*>(
      mmap_map(bpf_map__fd(steer_->maps.sluice_backend_load), backend_load_len_, "sluice_backend_load"));

  // Knobs; the generation word is left as the previous run left it.
  ctrl_->flags = options_.skip_fib ? SLUICE_CTRL_F_SKIP_FIB : 0;
  ctrl_->hash_seed = options_.hash_seed;
  ctrl_->tcp_idle_ns = options_.tcp_idle_ns;
  ctrl_->udp_idle_ns = options_.udp_idle_ns;
  ctrl_->closing_ns = options_.closing_ns;
  spdlog::info("BPF datapath loaded, pins in {} ({})", options_.pin_dir,
               reused_maps_ ? "re-used existing maps" : "new maps");
}

void BpfDatapath::set_ctrl_flags(uint32_t flags) { __atomic_store_n(&ctrl_->flags, flags, __ATOMIC_RELEASE); }

std::string BpfDatapath::link_pin_path(const std::string& what) const {
  return options_.pin_dir + "/link_" + what;
}

int BpfDatapath::xdp_program_fd() const { return bpf_program__fd(steer_->progs.sluice_steer); }
int BpfDatapath::sk_lookup_program_fd() const { return bpf_program__fd(sklookup_->progs.sluice_sklookup); }

AttachedInterface BpfDatapath::attach(const std::string& ifname, AttachMode mode) {
  AttachedInterface result;
  result.name = ifname;
  result.ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (result.ifindex == 0) fail("attach XDP: interface " + ifname, errno);
  const std::string pin = link_pin_path("xdp_" + ifname);

  int link_fd = bpf_obj_get(pin.c_str());
  if (link_fd >= 0) {
    // A previous run's link: swap in this program, traffic never stops.
    if (int err = bpf_link_update(link_fd, xdp_program_fd(), nullptr)) {
      close(link_fd);
      fail("update pinned XDP link " + pin, err);
    }
    result.reused = true;
  } else {
    std::vector<uint32_t> flag_order;
    if (mode != AttachMode::Generic) flag_order.push_back(XDP_FLAGS_DRV_MODE);
    if (mode != AttachMode::Native) flag_order.push_back(XDP_FLAGS_SKB_MODE);
    int last_err = 0;
    for (uint32_t flags : flag_order) {
      LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
      link_fd = bpf_link_create(xdp_program_fd(), result.ifindex, BPF_XDP, &opts);
      if (link_fd >= 0) break;
      last_err = errno;
      spdlog::info("XDP {} mode on {} refused: {}", flags == XDP_FLAGS_DRV_MODE ? "native" : "generic", ifname,
                   std::strerror(last_err));
    }
    if (link_fd < 0) fail("attach XDP to " + ifname, last_err);
    if (int err = bpf_obj_pin(link_fd, pin.c_str())) {
      close(link_fd);
      fail("pin XDP link " + pin, err);
    }
  }
  link_fds_[ifname] = link_fd;

  LIBBPF_OPTS(bpf_xdp_query_opts, query);
  if (int err = bpf_xdp_query(result.ifindex, 0, &query)) fail("query XDP mode of " + ifname, err);
  result.mode = query.attach_mode == XDP_ATTACHED_SKB ? "generic"
                : query.attach_mode == XDP_ATTACHED_DRV ? "native"
                : query.attach_mode == XDP_ATTACHED_HW ? "offload" : "unknown";
  sluice_iface facts{};
  facts.flags = query.attach_mode == XDP_ATTACHED_SKB ? SLUICE_IFACE_F_GENERIC : 0;
  const auto ifindex = static_cast<uint32_t>(result.ifindex);
  update(MapRole::Ifaces, as_bytes_of(ifindex), as_bytes_of(facts));
  spdlog::info("XDP on {} (ifindex {}): {} mode{}", ifname, result.ifindex, result.mode,
               result.reused ? ", re-used pinned link" : "");
  std::erase_if(attached_, [&](const AttachedInterface& a) { return a.name == ifname; });
  attached_.push_back(result);
  return result;
}

void BpfDatapath::detach(const std::string& ifname) {
  const std::string pin = link_pin_path("xdp_" + ifname);
  int fd = -1;
  if (auto it = link_fds_.find(ifname); it != link_fds_.end()) {
    fd = it->second;
    link_fds_.erase(it);
  } else {
    fd = bpf_obj_get(pin.c_str());
  }
  if (fd >= 0) {
    bpf_link_detach(fd);
    close(fd);
  }
  unlink(pin.c_str());
  const auto ifindex = if_nametoindex(ifname.c_str());
  if (ifindex != 0) erase(MapRole::Ifaces, as_bytes_of(ifindex));
  std::erase_if(attached_, [&](const AttachedInterface& a) { return a.name == ifname; });
}

void BpfDatapath::attach_sk_lookup(const std::string& netns_path) {
  const std::string pin = link_pin_path("sk_lookup");
  int fd = bpf_obj_get(pin.c_str());
  if (fd >= 0) {
    if (int err = bpf_link_update(fd, sk_lookup_program_fd(), nullptr)) {
      close(fd);
      fail("update pinned sk_lookup link " + pin, err);
    }
  } else {
    int netns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns < 0) fail("open network namespace " + netns_path, errno);
    fd = bpf_link_create(sk_lookup_program_fd(), netns, BPF_SK_LOOKUP, nullptr);
    int err = errno;
    close(netns);
    if (fd < 0) fail("attach sk_lookup to " + netns_path, err);
    if (int perr = bpf_obj_pin(fd, pin.c_str())) {
      close(fd);
      fail("pin sk_lookup link " + pin, perr);
    }
  }
  if (sk_lookup_link_fd_ >= 0) close(sk_lookup_link_fd_);
  sk_lookup_link_fd_ = fd;
}

void BpfDatapath::register_l7_listener(int socket_fd, uint32_t slot) {
  uint64_t value = static_cast<uint64_t>(socket_fd);
  if (bpf_map_update_elem(bpf_map__fd(sklookup_->maps.sluice_l7_listeners), &slot, &value, BPF_ANY))
    fail(fmt::format("register L7 listener fd {} in slot {}", socket_fd, slot), errno);
}

void BpfDatapath::unpin_all() {
  for (auto& [name, fd] : link_fds_) {
    bpf_link_detach(fd);
    close(fd);
    unlink(link_pin_path("xdp_" + name).c_str());
  }
  link_fds_.clear();
  attached_.clear();
  if (sk_lookup_link_fd_ >= 0) {
    bpf_link_detach(sk_lookup_link_fd_);
    close(sk_lookup_link_fd_);
    sk_lookup_link_fd_ = -1;
  }
  unlink(link_pin_path("sk_lookup").c_str());
  for (auto* obj : {steer_ ? steer_->obj : nullptr, sklookup_ ? sklookup_->obj : nullptr}) {
    if (!obj) continue;
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      if (bpf_map__pin_path(map)) bpf_map__unpin(map, nullptr);
    }
  }
  rmdir(options_.pin_dir.c_str());
}

bpf_map* BpfDatapath::map_of(MapRole role) const {
  if (!steer_) throw std::logic_error("BpfDatapath used before load()");
  bpf_object* obj = role == MapRole::L7Services ? sklookup_->obj : steer_->obj;
  bpf_map* map = bpf_object__find_map_by_name(obj, std::string(map_name(role)).c_str());
  if (!map) throw std::logic_error(fmt::format("map {} missing from the BPF object", map_name(role)));
  return map;
}

int BpfDatapath::fd_of(MapRole role) const { return bpf_map__fd(map_of(role)); }

uint32_t BpfDatapath::max_entries(MapRole role) const { return bpf_map__max_entries(map_of(role)); }

void BpfDatapath::update(MapRole role, std::span<const uint8_t> key, std::span<const uint8_t> value) {
  if (bpf_map_update_elem(fd_of(role), key.data(), value.data(), BPF_ANY))
    fail(fmt::format("update {}", map_name(role)), errno);
}

void BpfDatapath::update_array(MapRole role, uint32_t first, std::span<const uint8_t> values, size_t value_size) {
  const size_t count = values.size() / value_size;
  std::vector<uint32_t> keys(count);
  for (size_t i = 0; i < count; ++i) keys[i] = first + static_cast<uint32_t>(i);
  auto n = static_cast<uint32_t>(count);
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_update_batch(fd_of(role), keys.data(), values.data(), &n, &opts) == 0) return;
  DatapathTables::update_array(role, first, values, value_size);   // kernels without batch ops
}

bool BpfDatapath::lookup(MapRole role, std::span<const uint8_t> key, std::span<uint8_t> value) const {
  return bpf_map_lookup_elem(fd_of(role), key.data(), value.data()) == 0;
}

void BpfDatapath::erase(MapRole role, std::span<const uint8_t> key) {
  if (bpf_map_delete_elem(fd_of(role), key.data()) && errno != ENOENT)
    fail(fmt::format("delete from {}", map_name(role)), errno);
}

std::vector<Bytes> BpfDatapath::keys(MapRole role) const {
  const int fd = fd_of(role);
  const size_t key_size = bpf_map__key_size(map_of(role));
  std::vector<Bytes> out;
  Bytes current(key_size), next(key_size);
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    out.push_back(next);
    current = next;
    prev = current.data();
  }
  return out;
}

unsigned BpfDatapath::possible_cpus() const {
  int n = libbpf_num_possible_cpus();
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

Bytes BpfDatapath::lookup_per_cpu(MapRole role, std::span<const uint8_t> key) const {
  const size_t value_size = (bpf_map__value_size(map_of(role)) + 7) / 8 * 8;
  Bytes out(value_size * possible_cpus());
  if (bpf_map_lookup_elem(fd_of(role), key.data(), out.data())) return {};
  return out;
}

void BpfDatapath::store_generation(uint32_t generation) {
  __atomic_store_n(&ctrl_->generation, generation, __ATOMIC_RELEASE);
}

uint32_t BpfDatapath::load_generation() const { return __atomic_load_n(&ctrl_->generation, __ATOMIC_ACQUIRE); }

BackendLoadTable::BackendLoadTable(const std::string& pin_dir) {
  const std::string load_path = pin_dir + "/sluice_backend_load";
  const std::string backends_path = pin_dir + "/sluice_backends";
  load_fd_ = bpf_obj_get(load_path.c_str());
  if (load_fd_ < 0) fail("open pinned map " + load_path, errno);
  backends_fd_ = bpf_obj_get(backends_path.c_str());
  if (backends_fd_ < 0) fail("open pinned map " + backends_path, errno);
  bpf_map_info info{};
  uint32_t info_len = sizeof(info);
  if (bpf_obj_get_info_by_fd(load_fd_, &info, &info_len)) fail("inspect " + load_path, errno);
  entries_ = info.max_entries;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  len_ = (static_cast<size_t>(info.value_size) * info.max_entries + page - 1) / page * page;
  load_ = static_cast<sluice_backend_load*>(mmap_map(load_fd_, len_, load_path));
}

BackendLoadTable::~BackendLoadTable() {
  if (load_) munmap(load_, len_);
  if (load_fd_ >= 0) close(load_fd_);
  if (backends_fd_ >= 0) close(backends_fd_);
}

std::optional<uint32_t> BackendLoadTable::find_backend(const model::IpAddress& address, uint16_t port,
                                                       uint8_t proto) const {
  sluice_backend want{};
  std::memcpy(want.addr, address.bytes.data(), address.is_v4() ? 4 : 16);
  for (uint32_t id = 1; id < entries_; ++id) {
    sluice_backend entry{};
    if (bpf_map_lookup_elem(backends_fd_, &id, &entry)) break;
    if (entry.family == 0) continue;
    if (std::memcmp(entry.addr, want.addr, 16) == 0 && ntohs(entry.port) == port && entry.proto == proto)
      return id;
  }
  return std::nullopt;
}

void BackendLoadTable::add_active_requests(uint32_t backend_id, int64_t delta) {
  if (backend_id == 0 || backend_id >= entries_) return;
  __atomic_fetch_add(&load_[backend_id].l7_active, static_cast<uint64_t>(delta), __ATOMIC_RELAXED);
}

const sluice_backend_load& BackendLoadTable::at(uint32_t backend_id) const { return load_[backend_id]; }

void register_l7_listener(const std::string& pin_dir, int socket_fd, uint32_t slot) {
  const std::string path = pin_dir + "/sluice_l7_listeners";
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) fail("open pinned map " + path, errno);
  uint64_t value = static_cast<uint64_t>(socket_fd);
  int rc = bpf_map_update_elem(fd, &slot, &value, BPF_ANY);
  int err = errno;
  close(fd);
  if (rc) fail(fmt::format("register L7 listener fd {} in {} slot {}", socket_fd, path, slot), err);
}

}  // namespace sluice::bpfmaps
