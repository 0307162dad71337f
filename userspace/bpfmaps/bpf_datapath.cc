#include "bpfmaps/bpf_datapath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <optional>
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
  if (redirect_err_link_fd_ >= 0) close(redirect_err_link_fd_);
  if (steer_) sluice_steer__destroy(steer_);
  if (sklookup_) sluice_sklookup__destroy(sklookup_);
}

namespace {

std::optional<MapRole> role_of(std::string_view name) {
  for (size_t i = 0; i < static_cast<size_t>(MapRole::kCount); ++i)
    if (map_name(static_cast<MapRole>(i)) == name) return static_cast<MapRole>(i);
  return std::nullopt;
}

struct MapLayout {
  uint32_t type = 0, key_size = 0, value_size = 0, max_entries = 0, flags = 0;
  bool operator==(const MapLayout&) const = default;
};

// "sluice_backends: 65537 -> 131073 entries": only what differs.
std::string describe_change(std::string_view name, const MapLayout& pinned, const MapLayout& want) {
  std::vector<std::string> parts;
  if (pinned.type != want.type) parts.push_back(fmt::format("type {} -> {}", pinned.type, want.type));
  if (pinned.key_size != want.key_size) parts.push_back(fmt::format("key {} -> {} B", pinned.key_size, want.key_size));
  if (pinned.value_size != want.value_size)
    parts.push_back(fmt::format("value {} -> {} B", pinned.value_size, want.value_size));
  if (pinned.max_entries != want.max_entries)
    parts.push_back(fmt::format("{} -> {} entries", pinned.max_entries, want.max_entries));
  if (pinned.flags != want.flags) parts.push_back(fmt::format("flags {:#x} -> {:#x}", pinned.flags, want.flags));
  return fmt::format("{}: {}", name, fmt::join(parts, ", "));
}

MapLayout wanted_layout(const bpf_map* map) {
  return {static_cast<uint32_t>(bpf_map__type(map)), bpf_map__key_size(map), bpf_map__value_size(map),
          bpf_map__max_entries(map), bpf_map__map_flags(map)};
}

// The layout of the map pinned at path, or nullopt when nothing is pinned there.
std::optional<MapLayout> pinned_layout(const std::string& path) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    fail("open pinned map " + path, errno);
  }
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  const int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
  const int err = errno;
  close(fd);
  if (rc) fail("inspect pinned map " + path, err);
  return MapLayout{info.type, info.key_size, info.value_size, info.max_entries, info.map_flags};
}

// Kernel memory the object's maps take however full they are: arrays and LRU
// hashes preallocate (per-CPU values once per possible CPU); hashes created
// with BPF_F_NO_PREALLOC grow with their entries and are not counted.
uint64_t preallocated_bytes(bpf_object* obj, unsigned cpus) {
  uint64_t total = 0;
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const auto type = bpf_map__type(map);
    const uint64_t entries = bpf_map__max_entries(map);
    const uint64_t value = (bpf_map__value_size(map) + 7) / 8 * 8;
    if (type == BPF_MAP_TYPE_PERCPU_ARRAY) total += entries * value * cpus;
    else if (type == BPF_MAP_TYPE_ARRAY) total += entries * value;
    else if (type == BPF_MAP_TYPE_LRU_HASH) total += entries * (value + bpf_map__key_size(map) + 48);
  }
  return total;
}

}  // namespace

void BpfDatapath::load() {
  if (std::string bad = options_.sizing().check(); !bad.empty()) throw std::invalid_argument(bad);
  require_bpffs(options_.pin_dir);
  steer_ = sluice_steer__open();
  if (!steer_) fail("open BPF object sluice_steer", errno);
  sklookup_ = sluice_sklookup__open();
  if (!sklookup_) fail("open BPF object sluice_sklookup", errno);

  const DatapathSizing sizing = options_.sizing();
  for (auto* obj : {steer_->obj, sklookup_->obj}) {
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      if (auto role = role_of(bpf_map__name(map)))
        if (int err = bpf_map__set_max_entries(map, sized_max_entries(*role, sizing)))
          fail(fmt::format("size map {}", bpf_map__name(map)), err);
    }
  }

  for (auto* obj : {steer_->obj, sklookup_->obj}) {
    // One object's maps are re-used together or replaced together.
    std::vector<std::string> changes;
    bool any_pinned = false;
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      const char* name = bpf_map__name(map);
      if (std::string_view(name).starts_with(".")) continue;   // .rodata etc.
      const auto pinned = pinned_layout(options_.pin_dir + "/" + name);
      if (!pinned) continue;
      any_pinned = true;
      if (const MapLayout want = wanted_layout(map); *pinned != want)
        changes.push_back(describe_change(name, *pinned, want));
    }
    if (!changes.empty()) {
      spdlog::warn("layout change of the pinned maps of {} in {} (flags such as --max-backends differ from the "
                   "previous run, or a new build changed the ABI); replacing them with new maps: tracked L4 flows, "
                   "backend ids and counters start over. Pinned -> wanted: {}",
                   bpf_object__name(obj), options_.pin_dir, fmt::join(changes, "; "));
      bpf_object__for_each_map(map, obj) {
        const char* name = bpf_map__name(map);
        if (std::string_view(name).starts_with(".")) continue;
        const std::string path = options_.pin_dir + "/" + name;
        if (unlink(path.c_str()) == 0) replaced_pins_.push_back(path);
        else if (errno != ENOENT) fail("remove pinned map " + path, errno);
      }
    } else if (any_pinned) {
      reused_maps_ = true;
    }
    bpf_object__for_each_map(map, obj) {
      const char* name = bpf_map__name(map);
      if (std::string_view(name).starts_with(".")) continue;
      const std::string path = options_.pin_dir + "/" + name;
      if (int err = bpf_map__set_pin_path(map, path.c_str())) fail("pin path " + path, err);
    }
  }
  // The redirect-failure counter is a tracepoint program (BTF-typed): left
  // out on a kernel without BTF or tracing programs, the rest works alone.
  const bool trace_redirect_errors = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  bpf_program__set_autoload(steer_->progs.sluice_redirect_err, trace_redirect_errors);
  if (int err = sluice_steer__load(steer_)) fail("load sluice_steer", err);
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
  bpf_prog_info info{};
  uint32_t info_len = sizeof(info);
  if (bpf_obj_get_info_by_fd(xdp_program_fd(), &info, &info_len) == 0)
    __atomic_store_n(&ctrl_->steer_prog_id, info.id, __ATOMIC_RELEASE);
  if (trace_redirect_errors) attach_redirect_error_counter();
  else spdlog::warn("no BTF-typed tracing on this kernel: XDP redirect failures are not counted (redirect_err)");
  spdlog::info("BPF datapath loaded, pins in {} ({}); sized for {} service ports, {} subsets, {} backends, "
               "{} Maglev slots per table half, {} tracked flows: ~{} MiB of preallocated map memory",
               options_.pin_dir, reused_maps_ ? "re-used existing maps" : "new maps", sizing.max_services,
               sizing.max_subsets, sizing.max_backends, sizing.maglev_slots, sizing.conntrack_flows,
               preallocated_bytes(steer_->obj, possible_cpus()) >> 20);
}

// Attaches sluice_redirect_err to the xdp_redirect_err tracepoint, pinned
// as link_redirect_err so it keeps counting while no agent runs. A previous
// run's link counted for the previous program id: it is replaced.
void BpfDatapath::attach_redirect_error_counter() {
  const std::string pin = link_pin_path("redirect_err");
  if (unlink(pin.c_str()) != 0 && errno != ENOENT) fail("remove pinned link " + pin, errno);
  const int fd = bpf_raw_tracepoint_open(nullptr, bpf_program__fd(steer_->progs.sluice_redirect_err));
  if (fd < 0) {
    spdlog::warn("attach to tracepoint xdp:xdp_redirect_err refused ({}): XDP redirect failures are not counted",
                 std::strerror(errno));
    return;
  }
  if (bpf_obj_pin(fd, pin.c_str()) != 0) {
    const int err = errno;
    close(fd);
    fail("pin link " + pin, err);
  }
  redirect_err_link_fd_ = fd;
}

void BpfDatapath::set_ctrl_flags(uint32_t flags) { __atomic_store_n(&ctrl_->flags, flags, __ATOMIC_RELEASE); }

uint32_t BpfDatapath::reset_l7_active() {
  const uint32_t entries = max_entries(MapRole::BackendLoad);
  uint32_t stale = 0;
  for (uint32_t id = 0; id < entries; ++id)
    if (__atomic_exchange_n(&backend_load_[id].l7_active, 0, __ATOMIC_RELAXED) != 0) ++stale;
  return stale;
}

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
      link_fd = -1;
      // The interface the link was made for is gone (its netns or the veth
      // was deleted, perhaps re-created under the same name): the kernel
      // keeps the link object but severs it. It steers nothing, so replace it.
      if (err != -ENOLINK) fail("update pinned XDP link " + pin, err);
      spdlog::warn("pinned XDP link {} is severed (its interface was deleted); replacing it with a new link on {}",
                   pin, ifname);
      if (unlink(pin.c_str()) != 0 && errno != ENOENT) fail("remove severed XDP link " + pin, errno);
    } else {
      result.reused = true;
    }
  }
  if (link_fd < 0) {
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
  const auto ifindex = static_cast<uint32_t>(result.ifindex);
  lookup(MapRole::Ifaces, as_bytes_of(ifindex), as_writable_bytes_of(facts));   // keeps REDIRECT_OK
  facts.flags = (facts.flags & ~uint32_t{SLUICE_IFACE_F_GENERIC}) |
                (query.attach_mode == XDP_ATTACHED_SKB ? SLUICE_IFACE_F_GENERIC : 0);
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
      fd = -1;
      if (err != -ENOLINK) fail("update pinned sk_lookup link " + pin, err);
      spdlog::warn("pinned sk_lookup link {} is severed (its network namespace is gone); replacing it", pin);
      if (unlink(pin.c_str()) != 0 && errno != ENOENT) fail("remove severed sk_lookup link " + pin, errno);
    }
  }
  if (fd < 0) {
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
  if (redirect_err_link_fd_ >= 0) {
    close(redirect_err_link_fd_);
    redirect_err_link_fd_ = -1;
  }
  unlink(link_pin_path("redirect_err").c_str());
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

std::vector<Bytes> BpfDatapath::keys(MapRole role, size_t limit) const {
  const int fd = fd_of(role);
  const size_t key_size = bpf_map__key_size(map_of(role));
  // When the key a walk stands on is deleted meanwhile (an LRU eviction, the
  // reaper), the kernel starts the walk over from the first key: without a
  // bound a busy map is walked again and again. Never more than it can hold.
  limit = std::min<size_t>(limit, max_entries(role));
  std::vector<Bytes> out;
  Bytes current(key_size), next(key_size);
  const void* prev = nullptr;
  while (out.size() < limit && bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    out.push_back(next);
    current = next;
    prev = current.data();
  }
  return out;
}

size_t BpfDatapath::count(MapRole role) const {
  // One syscall per batch rather than one per key: the conntrack maps hold
  // hundreds of thousands of flows and /stats counts them on every scrape.
  const int fd = fd_of(role);
  const size_t key_size = bpf_map__key_size(map_of(role));
  const size_t value_size = bpf_map__value_size(map_of(role));
  constexpr uint32_t kBatch = 4096;
  std::vector<uint8_t> key_buf(key_size * kBatch), value_buf(value_size * kBatch);
  const size_t cap = max_entries(role);
  uint32_t out_batch = 0;
  void* in_batch = nullptr;
  size_t total = 0;
  while (total < cap) {
    uint32_t n = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int rc = bpf_map_lookup_batch(fd, in_batch, &out_batch, key_buf.data(), value_buf.data(), &n, &opts);
    if (rc && errno != ENOENT) return keys(role, cap).size();   // no batch ops here: key by key
    total += n;
    if (rc) break;   // ENOENT: the walk is complete
    in_batch = &out_batch;
  }
  return std::min(total, cap);
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

BackendLoadTable::BackendKey BackendLoadTable::key_of(const sluice_backend& entry) {
  return {{entry.addr[0], entry.addr[1], entry.addr[2], entry.addr[3]}, entry.port, entry.proto};
}

uint32_t BackendLoadTable::index_backends(uint32_t first) {
  uint32_t id = first;
  for (; id < entries_; ++id) {
    sluice_backend entry{};
    if (bpf_map_lookup_elem(backends_fd_, &id, &entry) || entry.family == 0) break;
    index_[key_of(entry)] = id;
  }
  return id;
}

std::optional<uint32_t> BackendLoadTable::find_backend(const model::IpAddress& address, uint16_t port,
                                                       uint8_t proto) {
  sluice_backend want{};
  std::memcpy(want.addr, address.bytes.data(), address.is_v4() ? 4 : 16);
  want.port = htons(port);
  want.proto = proto;
  const BackendKey key = key_of(want);
  auto still_there = [&](uint32_t id) {
    sluice_backend entry{};
    return bpf_map_lookup_elem(backends_fd_, &id, &entry) == 0 && key_of(entry) == key;
  };
  if (auto it = index_.find(key); it != index_.end() && still_there(it->second)) return it->second;
  indexed_up_to_ = index_backends(indexed_up_to_);
  if (auto it = index_.find(key); it != index_.end() && still_there(it->second)) return it->second;
  if (indexed_up_to_ >= entries_) {   // every id handed out: some may have been reused since
    index_.clear();
    indexed_up_to_ = index_backends(1);
    if (auto it = index_.find(key); it != index_.end()) return it->second;
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
