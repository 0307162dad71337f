// The forwarder's view of the kernel datapath's pinned maps (the ones
// userspace/bpfmaps pins and TableWriter fills), so one control plane drives
// both data planes:
//
//   sluice_ctrl, sluice_backend_load  BPF_F_MMAPABLE: mmapped, read (and for
//                                     the load map, added to) with no syscall.
//   sluice_services, sluice_subsets,  hash map / plain arrays: copied into a
//   sluice_members, sluice_schedule,  SteerSnapshot once per generation (the
//   sluice_maglev, sluice_backends    writer flips sluice_ctrl.generation after
//                                     filling the inactive half), never per packet.
//
// Only the active half is copied, and of it only the ranges the active
// services' subsets point at. A snapshot is immutable once built; lcores pick
// the newest one up between bursts.
#pragma once

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

// One generation of the steering tables, indexed exactly as the BPF maps are
// (absolute indices), so the decision code reads them with the same numbers.
struct SteerSnapshot {
  uint32_t generation = 0;
  uint32_t hash_seed = 0;
  std::unordered_map<sluice_service_key, sluice_service, ServiceKeyHash, ServiceKeyEqual> services;
  std::vector<sluice_subset> subsets;
  std::vector<sluice_member> members;
  std::vector<uint32_t> schedule;
  std::vector<uint32_t> maglev;
  std::vector<sluice_backend> backends;   // by backend id

  // The service port a client -> VIP flow is for, nullptr if none. The key's
  // generation must be this snapshot's (service_key_of does that).
  const sluice_service* find_service(const sluice_service_key& key) const;
  sluice_service_key service_key_of(const sluice_flow_key& flow) const;
  const sluice_backend* backend(uint32_t id) const {
    return id < backends.size() && (backends[id].flags & SLUICE_BACKEND_F_LIVE) ? &backends[id] : nullptr;
  }
};

// Opens the pinned maps under pin_dir. Throws std::runtime_error naming the
// pin path and errno when a map is missing (is sluiced running with the same
// --pin-dir?) or cannot be mmapped.
class PinnedSteerTables {
 public:
  explicit PinnedSteerTables(const std::string& pin_dir);
  ~PinnedSteerTables();
  PinnedSteerTables(const PinnedSteerTables&) = delete;
  PinnedSteerTables& operator=(const PinnedSteerTables&) = delete;

  // The generation the kernel datapath reads right now (one mmapped load).
  uint32_t active_generation() const;
  // Copies the active half. Retries if the generation flips while copying.
  std::shared_ptr<const SteerSnapshot> read_snapshot() const;

  // The shared least-request map (mmapped); index: backend id.
  sluice_backend_load* backend_load() const { return load_; }
  uint32_t backend_load_entries() const { return load_entries_; }
  // Current values of the kernel's round-robin cursors (a starting point).
  std::vector<uint32_t> read_rr_cursors() const;
  const std::string& pin_dir() const { return pin_dir_; }

 private:
  void read_half(uint32_t generation, SteerSnapshot& out) const;

  std::string pin_dir_;
  int ctrl_fd_ = -1, services_fd_ = -1, subsets_fd_ = -1, members_fd_ = -1, schedule_fd_ = -1,
      maglev_fd_ = -1, backends_fd_ = -1, rr_fd_ = -1, load_fd_ = -1;
  sluice_ctrl* ctrl_ = nullptr;
  size_t ctrl_len_ = 0;
  sluice_backend_load* load_ = nullptr;
  size_t load_len_ = 0;
  uint32_t load_entries_ = 0;
};

// What the forwarder does with the first packet of a flow it has no state
// for; the same outcomes as the XDP program's verdicts (Forward = DNAT and
// XDP_TX/REDIRECT, PassToKernel = XDP_PASS for L7 and PASSTHROUGH ports,
// Drop = XDP_DROP for a subset with no live backend, NotService = XDP_PASS).
enum class NewFlowVerdict : uint8_t { Forward, PassToKernel, Drop, NotService };

struct NewFlowOutcome {
  NewFlowVerdict verdict = NewFlowVerdict::NotService;
  const sluice_service* service = nullptr;
  const sluice_backend* backend = nullptr;   // set when verdict is Forward
  sluice_decision decision{};
};

// Service lookup in the snapshot, then include/sluice/steer_decide.h with
// env (bound to this snapshot), then the liveness check the XDP program makes.
inline NewFlowOutcome decide_new_flow(const SteerSnapshot& snapshot, sluice_user_steer_env& env,
                                      const sluice_flow_key& flow) {
  NewFlowOutcome out;
  out.service = snapshot.find_service(snapshot.service_key_of(flow));
  if (!out.service) return out;
  sluice_steer_decide(&env, out.service, &flow, snapshot.hash_seed, &out.decision);
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
