// The forwarder's view of the kernel datapath's pinned maps (the ones
// userspace/bpfmaps pins and TableWriter fills), so one control plane drives
// both data planes:
//
//   sluice_ctrl, sluice_backend_load,  BPF_F_MMAPABLE arrays: mmapped and read
//   sluice_subsets, sluice_members,    in place, with no syscall (the load map
//   sluice_schedule, sluice_maglev,    is also added to: l4_opened/l4_closed).
//   sluice_backends
//   sluice_services,                   hash maps: their active half is copied
//   sluice_client_namespaces           into a SteerSnapshot once per generation.
//
// The writer fills the inactive half, flips sluice_ctrl.generation, and only
// rewrites a half again after a grace period (TableWriter's flip_grace), so
// the arrays of the active half are stable while a snapshot of it serves. A
// snapshot is immutable once built; lcores pick the newest one up between
// bursts, and a decision made while the snapshot lags the flip looks the
// service up in the live half instead (decide_new_flow).
#pragma once

#include <sys/mman.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dpdk/user_steer_env.h"
#include "sluice/datapath_structs.h"

namespace sluice::dpdk {

struct ServiceKeyHash {
  size_t operator()(const sluice_service_key& key) const noexcept;
};
struct ServiceKeyEqual {
  bool operator()(const sluice_service_key& a, const sluice_service_key& b) const noexcept;
};
struct ClientKeyHash {
  size_t operator()(const sluice_client_key& key) const noexcept;
};
struct ClientKeyEqual {
  bool operator()(const sluice_client_key& a, const sluice_client_key& b) const noexcept;
};

// A pinned BPF array mmapped read-only: entries at absolute indices. The
// kernel lays array values out 8-byte aligned, so a 4-byte value (schedule,
// Maglev slots) sits every 8 bytes: `stride` is that distance.
template <typename T>
struct MappedArray {
  const T* entries = nullptr;
  uint32_t count = 0;
  uint32_t stride = (sizeof(T) + 7) / 8 * 8;
  const T* at(uint32_t index) const {
    return index < count ? reinterpret_cast<const T*>(reinterpret_cast<const char*>(entries) + size_t{index} * stride)
                         : nullptr;
  }
};

// One generation of the steering tables: the services of the active half
// (copied) and the config arrays (mmapped, owned by PinnedSteerTables, which
// must outlive the snapshot), indexed exactly as the BPF maps are.
struct SteerSnapshot {
  uint32_t generation = 0;   // sluice_ctrl's generation counter when copied
  uint32_t half() const { return generation & 1; }   // which table half: 0 or 1
  uint32_t hash_seed = 0;
  std::unordered_map<sluice_service_key, sluice_service, ServiceKeyHash, ServiceKeyEqual> services;
  std::unordered_map<sluice_client_key, uint32_t, ClientKeyHash, ClientKeyEqual> client_namespaces;
  MappedArray<sluice_subset> subsets;
  MappedArray<sluice_member> members;
  MappedArray<uint32_t> schedule;
  MappedArray<uint32_t> maglev;
  MappedArray<sluice_backend> backends;   // by backend id; not halved

  // The service port a client -> VIP flow is for, nullptr if none. The key's
  // generation must be this snapshot's (service_key_of does that).
  const sluice_service* find_service(const sluice_service_key& key) const;
  sluice_service_key service_key_of(const sluice_flow_key& flow) const;
  // For a default entry with SLUICE_SERVICE_F_VIEWS: the entry of the
  // view of the flow's client namespace, or `service` (the XDP program's
  // client_view, docs/bpf-datapath.md "Client views").
  const sluice_service* client_view(const sluice_service* service, sluice_service_key key,
                                    const sluice_flow_key& flow) const;
  // A live backend, or nullptr. The entry is read in place: the writer only
  // rewrites it with the same address, or clears SLUICE_BACKEND_F_LIVE.
  const sluice_backend* backend(uint32_t id) const {
    const sluice_backend* b = backends.at(id);
    return b && (__atomic_load_n(&b->flags, __ATOMIC_RELAXED) & SLUICE_BACKEND_F_LIVE) ? b : nullptr;
  }
};

// Opens and mmaps the pinned maps under pin_dir. Throws std::runtime_error
// naming the pin path and errno when a map is missing (is sluiced running
// with the same --pin-dir?) or cannot be mmapped (pinned by a sluiced older
// than BPF_F_MMAPABLE on the config arrays).
class PinnedSteerTables {
 public:
  explicit PinnedSteerTables(const std::string& pin_dir);
  ~PinnedSteerTables();
  PinnedSteerTables(const PinnedSteerTables&) = delete;
  PinnedSteerTables& operator=(const PinnedSteerTables&) = delete;

  // The generation counter right now (one mmapped load): the writer adds one
  // per flip, so its low bit is the half the kernel datapath reads and any
  // change, even two flips, shows as a different value.
  uint32_t active_generation() const;
  // Copies the active half's services. Retries if the generation flips while copying.
  std::shared_ptr<const SteerSnapshot> read_snapshot() const;
  // One service port of the given half, looked up in the pinned hash map (a
  // syscall): the slow path for a decision made while the snapshot lags.
  bool lookup_service(const sluice_service_key& key, sluice_service& out) const;
  // The same for a client view: replaces `service` with the entry of the
  // flow's client namespace if it has one in the key's half.
  void lookup_client_view(sluice_service_key key, const sluice_flow_key& flow, sluice_service& service) const;

  // The shared least-request map (mmapped); index: backend id.
  sluice_backend_load* backend_load() const { return load_; }
  uint32_t backend_load_entries() const { return load_entries_; }
  // The idle timeouts the kernel conntrack uses (sluice_ctrl, set by the loader).
  uint64_t tcp_idle_ns() const { return __atomic_load_n(&ctrl_->tcp_idle_ns, __ATOMIC_RELAXED); }
  uint64_t udp_idle_ns() const { return __atomic_load_n(&ctrl_->udp_idle_ns, __ATOMIC_RELAXED); }
  uint64_t closing_ns() const { return __atomic_load_n(&ctrl_->closing_ns, __ATOMIC_RELAXED); }
  // Current values of the kernel's round-robin cursors (a starting point).
  std::vector<uint32_t> read_rr_cursors() const;
  // How many counter slots the agent's maps have (set at run time by
  // --max-services, --max-subsets and --max-backends): the forwarder's
  // per-lcore counters are indexed the same way, so they must be as long.
  struct CounterSlots {
    uint32_t services = 0, subsets = 0, backends = 0;
  };
  CounterSlots counter_slots() const;
  const std::string& pin_dir() const { return pin_dir_; }

 private:
  struct Mapping {
    void* addr = nullptr;
    size_t len = 0;
  };
  template <typename T>
  MappedArray<T> map_array(int fd, const char* name, int prot = PROT_READ);
  void release();

  std::string pin_dir_;
  int ctrl_fd_ = -1, services_fd_ = -1, subsets_fd_ = -1, members_fd_ = -1, schedule_fd_ = -1,
      maglev_fd_ = -1, backends_fd_ = -1, rr_fd_ = -1, load_fd_ = -1, clients_fd_ = -1;
  std::vector<Mapping> mappings_;
  sluice_ctrl* ctrl_ = nullptr;
  sluice_backend_load* load_ = nullptr;
  uint32_t load_entries_ = 0;
  MappedArray<sluice_subset> subsets_;
  MappedArray<sluice_member> members_;
  MappedArray<uint32_t> schedule_;
  MappedArray<uint32_t> maglev_;
  MappedArray<sluice_backend> backends_;
};

// What the forwarder does with the first packet of a flow it has no state
// for; the same outcomes as the XDP program's verdicts (Forward = DNAT and
// XDP_TX/REDIRECT, PassToKernel = XDP_PASS for L7 and PASSTHROUGH ports,
// Drop = XDP_DROP for a subset with no live backend, NotService = XDP_PASS,
// MidflowMiss = XDP_DROP for a packet that may not create state).
enum class NewFlowVerdict : uint8_t { Forward, PassToKernel, Drop, NotService, MidflowMiss };

struct NewFlowOutcome {
  NewFlowVerdict verdict = NewFlowVerdict::NotService;
  const sluice_service* service = nullptr;
  const sluice_backend* backend = nullptr;   // set when verdict is Forward
  sluice_decision decision{};
};

// Service lookup, then include/sluice/steer_decide.h with env (bound to
// this snapshot), then the liveness check the XDP program makes. Like the
// XDP program, which reads the generation once per packet, the decision
// uses the half that is active now: if the snapshot lags a flip (the
// control thread has not copied the new services yet), the service comes
// from live's pinned map, and the arrays are the same mmapped ones.
// `may_create` false (a TCP packet other than a SYN, with no flow entry)
// ends a tracked decision as MidflowMiss before the backend is picked, so
// the refused packet moves no round-robin cursor, as in the XDP program.
inline NewFlowOutcome decide_new_flow(const SteerSnapshot& snapshot, sluice_user_steer_env& env,
                                      const sluice_flow_key& flow, const PinnedSteerTables* live = nullptr,
                                      sluice_service* lagging_service = nullptr, bool may_create = true) {
  NewFlowOutcome out;
  sluice_service_key key = snapshot.service_key_of(flow);
  const uint32_t generation = live ? live->active_generation() : snapshot.generation;
  if (generation == snapshot.generation) {
    out.service = snapshot.find_service(key);
    if (out.service && (out.service->flags & SLUICE_SERVICE_F_VIEWS))
      out.service = snapshot.client_view(out.service, key, flow);
  } else if (lagging_service) {
    key.generation = static_cast<uint8_t>(generation & 1);
    if (live->lookup_service(key, *lagging_service)) {
      out.service = lagging_service;
      if (lagging_service->flags & SLUICE_SERVICE_F_VIEWS) live->lookup_client_view(key, flow, *lagging_service);
    }
  }
  if (!out.service) return out;
  const sluice_subset* sub = sluice_steer_choose_subset(&env, out.service, &flow, snapshot.hash_seed, &out.decision);
  if (!may_create && out.decision.action == SLUICE_ACT_DROP_NO_BACKEND) {   // not L7, not PASSTHROUGH
    out.verdict = NewFlowVerdict::MidflowMiss;
    return out;
  }
  if (sub) sluice_steer_pick_backend(&env, sub, &flow, snapshot.hash_seed, &out.decision);
  switch (out.decision.action) {
    case SLUICE_ACT_PASS_L7:
    case SLUICE_ACT_PASS_PASSTHROUGH:
      out.verdict = NewFlowVerdict::PassToKernel;
      break;
    case SLUICE_ACT_FORWARD:
      out.backend = snapshot.backend(out.decision.backend_id);
      out.verdict = out.backend ? NewFlowVerdict::Forward : NewFlowVerdict::Drop;
      break;
    default:
      out.verdict = NewFlowVerdict::Drop;
      break;
  }
  return out;
}

// Fills env's table pointers from snapshot (cursors, load and random state
// are the caller's: they belong to one lcore).
void bind_env(sluice_user_steer_env& env, const SteerSnapshot& snapshot);

}  // namespace sluice::dpdk
