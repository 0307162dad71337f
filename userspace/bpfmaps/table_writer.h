// Builds the datapath tables from a compiled Snapshot and publishes them
// atomically: write the inactive half, flip the generation word, then retire
// what the new half no longer references. One TableWriter per datapath; not
// thread-safe (the agent applies snapshots from one thread).
//
// Stability across snapshots and restarts:
//  - backend ids are keyed by address + port + protocol and never handed to
//    another backend while ids remain (monotonic allocation), so conntrack
//    entries and least-request counts keep meaning the same backend;
//  - service and subset counter slots are keyed by a hash of their names,
//    stored in the tables, so a restarted agent (recover()) keeps counting
//    into the same slots.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "bpfmaps/datapath_tables.h"
#include "model/snapshot.h"

namespace sluice::bpfmaps {

struct BackendIdentity {
  model::IpAddress address;
  uint16_t port = 0;       // host order
  uint8_t proto = 0;       // IPPROTO_TCP / IPPROTO_UDP
  auto operator<=>(const BackendIdentity&) const = default;
  std::string to_string() const;   // "10.200.11.2:9081/tcp", "[fd00::2]:9081/udp"
};

struct TableWriterOptions {
  // Minimum time between a flip and the next write of the half it retired.
  // A packet reads the generation once and finishes within one XDP run (an
  // RCU read-side section of microseconds), so 50 ms is ample.
  std::chrono::milliseconds flip_grace{50};
};

struct ApplyResult {
  uint32_t generation = 0;       // the half now active
  uint64_t snapshot_version = 0;
  size_t service_ports = 0;      // service map entries written (per VIP)
  size_t client_views = 0;       // of those, entries of a client namespace's view
  size_t client_addresses = 0;   // sluice_client_namespaces entries written
  size_t subsets = 0;
  size_t members = 0;
  size_t schedule_slots = 0;
  size_t maglev_slots = 0;
  size_t live_backends = 0;
  size_t retired_backends = 0;   // left the snapshot in this apply
};

// A table a snapshot does not fit: what it needs against what it has.
struct TableShortfall {
  MapRole role;
  uint64_t needed = 0;
  uint64_t available = 0;
  std::string what;   // "service ports per table half", "backend ids", ...
};

// Thrown by TableWriter::apply before anything is written, naming every table
// that is too small and the sluiced flag that sizes it.
class TableCapacityError : public std::invalid_argument {
 public:
  explicit TableCapacityError(std::vector<TableShortfall> shortfalls);
  const std::vector<TableShortfall>& shortfalls() const { return shortfalls_; }

 private:
  std::vector<TableShortfall> shortfalls_;
};

// What a counter slot stands for, for reports.
struct SlotName {
  std::string service;   // host
  uint32_t port = 0;
  std::string protocol;  // "tcp" / "udp"
  std::string subset;    // subsets only ("" = whole service)
};

class TableWriter {
 public:
  explicit TableWriter(DatapathTables& tables, TableWriterOptions options = {});

  // Re-reads backend ids and counter slots from tables that outlived their
  // writer (pinned maps after an agent restart).
  void recover();

  // Builds the whole new table half in memory, checks it against the map
  // sizes, then writes and flips. A snapshot that does not fit throws
  // TableCapacityError (every short table, with what it needs) and one the
  // kernel datapath cannot express (more route destinations than
  // SLUICE_MAX_ROUTES) std::invalid_argument naming the service port; either
  // way before any map is written, so the serving half is untouched.
  ApplyResult apply(const model::Snapshot& snapshot);

  std::optional<uint32_t> backend_id(const BackendIdentity& backend) const;
  const std::map<uint32_t, BackendIdentity>& backends() const { return backend_by_id_; }
  bool backend_live(uint32_t id) const { return live_.count(id) != 0; }
  const std::map<uint32_t, SlotName>& service_slots() const { return service_names_; }
  const std::map<uint32_t, SlotName>& subset_slots() const { return subset_names_; }

 private:
  struct HalfLayout {
    uint32_t subsets = 0, members = 0, schedule = 0, maglev = 0;
  };

  struct Plan;
  Plan plan(const model::Snapshot& snapshot, uint32_t inactive) const;
  void check_fits(const Plan& plan) const;
  // Ids for the plan's backends: existing ids first, then never-used ones,
  // then ids of backends in neither the serving nor the new snapshot.
  std::vector<uint32_t> assign_backend_ids(const Plan& plan);
  // The counter slot of a service or subset name. Once the counter map is
  // full, a slot whose name is in neither `keep` (the serving and the new
  // snapshot) is handed over, its counts zeroed.
  uint32_t slot_for(std::map<uint64_t, uint32_t>& slots, uint64_t identity, uint32_t& next, MapRole counters,
                    const std::set<uint64_t>& keep);

  DatapathTables& tables_;
  TableWriterOptions options_;
  HalfLayout half_;
  std::map<BackendIdentity, uint32_t> id_by_backend_;
  std::map<uint32_t, BackendIdentity> backend_by_id_;
  std::map<uint32_t, uint32_t> live_;          // id -> 1 while in the current snapshot
  uint32_t next_backend_id_ = 1;               // 0 is "none"
  std::map<uint64_t, uint32_t> service_slot_by_identity_;
  std::map<uint64_t, uint32_t> subset_slot_by_identity_;
  uint32_t next_service_slot_ = 1;             // slot 0 collects unattributed counts
  uint32_t next_subset_slot_ = 1;
  std::set<uint64_t> serving_service_names_;   // identities of the serving snapshot's
  std::set<uint64_t> serving_subset_names_;
  std::map<uint32_t, SlotName> service_names_;
  std::map<uint32_t, SlotName> subset_names_;
  std::chrono::steady_clock::time_point last_flip_{};
};

}  // namespace sluice::bpfmaps
