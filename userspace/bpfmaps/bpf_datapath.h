// The kernel datapath: loads bpf/sluice_steer and bpf/sluice_sklookup through
// libbpf, pins their maps and links under a pin directory, attaches XDP to
// interfaces and sk_lookup to a network namespace, and gives DatapathTables
// access to the maps. Lifecycle, in this order:
//
//   BpfDatapath dp(options);   // knobs: pin dir, conntrack size, Maglev slots, timeouts
//   dp.load();                 // re-uses maps already pinned there (restart)
//   dp.attach("eth0", AttachMode::Auto);   // re-uses a pinned link (restart)
//   TableWriter writer(dp); writer.recover(); writer.apply(snapshot);
//   ...
//   dp.detach("eth0"); dp.unpin_all();     // only when sluice is removed
//
// Destroying a BpfDatapath closes its descriptors but leaves everything
// pinned, so the programs keep steering while the agent is away.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bpfmaps/datapath_tables.h"
#include "model/snapshot.h"
#include "sluice/datapath_structs.h"

struct sluice_steer;
struct sluice_sklookup;
struct bpf_map;

namespace sluice::bpfmaps {

enum class AttachMode { Auto, Native, Generic };

struct DatapathOptions {
  std::string pin_dir = SLUICE_DEFAULT_PIN_DIR;
  uint32_t conntrack_flows = SLUICE_CT_DEFAULT_FLOWS;   // per map (forward and reverse)
  uint32_t maglev_slots = SLUICE_MAGLEV_DEFAULT_SLOTS;  // per table half
  uint32_t max_services = SLUICE_MAX_SERVICES;          // service ports per table half
  uint32_t max_subsets = SLUICE_MAX_SUBSETS;            // subsets per table half
  uint32_t max_backends = SLUICE_MAX_BACKENDS;          // backend ids
  uint64_t tcp_idle_ns = SLUICE_DEFAULT_TCP_IDLE_NS;
  uint64_t udp_idle_ns = SLUICE_DEFAULT_UDP_IDLE_NS;
  uint64_t closing_ns = SLUICE_DEFAULT_CLOSING_NS;
  uint32_t hash_seed = 0x5eed1ce5u;   // every data plane must use the same seed
  bool skip_fib = false;              // tests: XDP_TX after NAT, no bpf_fib_lookup

  DatapathSizing sizing() const {
    return {max_services, max_subsets, max_backends, maglev_slots, conntrack_flows};
  }
};

struct AttachedInterface {
  std::string name;
  int ifindex = 0;
  std::string mode;      // "native" or "generic", as the kernel reports it
  bool reused = false;   // a pinned link from a previous run now runs this program
};

class BpfDatapath : public DatapathTables {
 public:
  explicit BpfDatapath(DatapathOptions options = {});
  ~BpfDatapath() override;
  BpfDatapath(const BpfDatapath&) = delete;
  BpfDatapath& operator=(const BpfDatapath&) = delete;

  // Sizes every map from options().sizing() before load. A map pinned under
  // the pin directory is re-used when its layout (type, key and value size,
  // flags, max_entries) is what this run asks for; if any map of a BPF object
  // differs, all of that object's pins are replaced by new, empty maps (a
  // layout change, logged with the old and new layout): backend ids,
  // conntrack and counters refer to each other, so they go together.
  // Throws std::runtime_error with the failing step and libbpf's errno text.
  void load();
  bool reused_pinned_maps() const { return reused_maps_; }
  // Maps whose pins were replaced by load() because their layout changed.
  const std::vector<std::string>& replaced_pins() const { return replaced_pins_; }
  const DatapathOptions& options() const { return options_; }

  AttachedInterface attach(const std::string& ifname, AttachMode mode);
  void detach(const std::string& ifname);
  const std::vector<AttachedInterface>& attached() const { return attached_; }

  // sk_lookup into the namespace at netns_path (default: the caller's).
  void attach_sk_lookup(const std::string& netns_path = "/proc/self/ns/net");
  // The L7 agent's listening socket for L7 VIP:ports (slot 0 is the default).
  void register_l7_listener(int socket_fd, uint32_t slot = 0);

  // Removes every pin this datapath owns (maps, links) and the directory.
  void unpin_all();

  int xdp_program_fd() const;
  int fd_of(MapRole role) const;   // the map's descriptor (batch walks: conntrack_reaper.h)
  int sk_lookup_program_fd() const;
  // Mmapped per-backend load figures (index: backend id), shared with the L7 agent.
  sluice_backend_load* backend_load() const { return backend_load_; }
  void set_ctrl_flags(uint32_t flags);
  // Zeroes every backend's l7_active. Only the agent's proxy adds to it, so
  // whatever a previous agent left there (requests in flight when it was
  // killed) is stale once a new agent starts, before its proxy serves.
  // Returns how many backends had a non-zero count.
  uint32_t reset_l7_active();

  // DatapathTables
  uint32_t max_entries(MapRole role) const override;
  void update(MapRole role, std::span<const uint8_t> key, std::span<const uint8_t> value) override;
  void update_array(MapRole role, uint32_t first, std::span<const uint8_t> values, size_t value_size) override;
  bool lookup(MapRole role, std::span<const uint8_t> key, std::span<uint8_t> value) const override;
  void erase(MapRole role, std::span<const uint8_t> key) override;
  using DatapathTables::keys;
  std::vector<Bytes> keys(MapRole role, size_t limit) const override;
  size_t count(MapRole role) const override;
  Bytes lookup_per_cpu(MapRole role, std::span<const uint8_t> key) const override;
  unsigned possible_cpus() const override;
  void store_generation(uint32_t generation) override;
  uint32_t load_generation() const override;

 private:
  bpf_map* map_of(MapRole role) const;
  std::string link_pin_path(const std::string& what) const;
  void attach_redirect_error_counter();

  DatapathOptions options_;
  sluice_steer* steer_ = nullptr;
  sluice_sklookup* sklookup_ = nullptr;
  bool reused_maps_ = false;
  std::vector<std::string> replaced_pins_;
  sluice_ctrl* ctrl_ = nullptr;                  // mmapped
  sluice_backend_load* backend_load_ = nullptr;  // mmapped
  size_t ctrl_len_ = 0, backend_load_len_ = 0;
  std::map<std::string, int> link_fds_;
  int sk_lookup_link_fd_ = -1;
  int redirect_err_link_fd_ = -1;
  std::vector<AttachedInterface> attached_;
};

// For a process that did not load the datapath (the L7 agent): the pinned
// least-request map, mmapped, and the backend ids it is indexed by.
class BackendLoadTable {
 public:
  // Throws std::runtime_error naming the pin path when it cannot be opened.
  explicit BackendLoadTable(const std::string& pin_dir = SLUICE_DEFAULT_PIN_DIR);
  ~BackendLoadTable();
  BackendLoadTable(const BackendLoadTable&) = delete;
  BackendLoadTable& operator=(const BackendLoadTable&) = delete;

  // Backend id of address:port/proto (host-order port, IPPROTO_*), from the
  // pinned sluice_backends map; nullopt when the kernel datapath has none.
  // Answers from an index of the map: ids are handed out in order and never
  // cleared, so a miss reads only the ids written since the last look, and a
  // full re-read happens only once ids run out and get reused.
  std::optional<uint32_t> find_backend(const model::IpAddress& address, uint16_t port, uint8_t proto);
  // Adds delta to the backend's active L7 requests (atomic, no syscall).
  void add_active_requests(uint32_t backend_id, int64_t delta);
  const sluice_backend_load& at(uint32_t backend_id) const;
  uint32_t size() const { return entries_; }

 private:
  using BackendKey = std::tuple<std::array<uint32_t, 4>, uint16_t, uint8_t>;   // address, port (network order), proto
  static BackendKey key_of(const sluice_backend& entry);
  // Reads ids from `first` until the first never-written one; returns the next unread id.
  uint32_t index_backends(uint32_t first);

  std::map<BackendKey, uint32_t> index_;
  uint32_t indexed_up_to_ = 1;   // ids below this are in index_
  sluice_backend_load* load_ = nullptr;
  size_t len_ = 0;
  uint32_t entries_ = 0;
  int load_fd_ = -1;
  int backends_fd_ = -1;
};

// For the L7 agent: puts its listening socket into the pinned sockmap.
void register_l7_listener(const std::string& pin_dir, int socket_fd, uint32_t slot = 0);

}  // namespace sluice::bpfmaps
