// The agent's control loop: owns the serving snapshot, turns file changes and
// runtime weight overrides into new snapshots, and applies each one to every
// data plane. A snapshot that fails to compile or to apply changes nothing:
// the last good one keeps serving and the error is kept for /ready and
// `sluicectl status`.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "model/snapshot.h"

namespace sluice::agent {

// A consumer of snapshots: the XDP tables, the L7 proxy workers, the DPDK
// forwarder's tables. apply() must either take the whole snapshot or throw
// and leave the plane serving what it had.
class DataPlane {
 public:
  virtual ~DataPlane() = default;
  virtual std::string name() const = 0;
  virtual void apply(const model::SnapshotPtr& snapshot) = 0;
};

struct CompileOutcome {
  model::SnapshotPtr snapshot;                 // null when there are errors
  std::vector<model::Diagnostic> diagnostics;  // errors and warnings
};

// Compiles the config directory into a snapshot with the given version.
using CompileFn = std::function<CompileOutcome(uint64_t version)>;

using SubsetWeights = std::vector<std::pair<std::string, uint32_t>>;

// Derives a snapshot with new route weights for one host's subsets; returns
// the snapshot, or an error message naming the bad host/subset.
struct OverrideOutcome {
  model::SnapshotPtr snapshot;
  std::string error;
  // Client views left with the files' weights (config::OverrideResult::views_kept).
  std::vector<std::string> views_kept;
};
using OverrideFn = std::function<OverrideOutcome(const model::Snapshot& base, const std::string& host,
                                                 const SubsetWeights& weights, uint64_t version)>;

struct ReloadError {
  std::chrono::system_clock::time_point when;
  std::vector<std::string> messages;           // formatted file:line:col lines
};

struct AgentStatus {
  uint64_t version = 0;                        // 0: nothing has ever compiled
  std::string origin;
  std::chrono::system_clock::time_point applied_at;
  std::map<std::string, SubsetWeights> overrides;   // host -> weights in force
  // host -> the client views its override leaves with the files' weights
  // (a VirtualService of their own); hosts whose override covers every view are absent.
  std::map<std::string, std::vector<std::string>> override_views_kept;
  std::optional<ReloadError> last_error;       // the latest refused change, if newer than the serving one
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  std::vector<std::string> warnings;
};

// One entry of the agent's change log: what /stats/window, `sluicectl top`
// and /ui mark on their plots. Kept in memory (the last kMaxChanges).
struct ConfigChange {
  uint64_t version = 0;        // the version applied; for a refusal, the one still serving
  std::chrono::system_clock::time_point when;
  std::string kind;            // the snapshot's origin ("files", "kubernetes", "files+kubernetes"), "override" or "refused"
  std::string what;            // describe_changes(), or the refusal's first message
};

class Agent {
 public:
  Agent(CompileFn compile, OverrideFn override_weights, std::vector<DataPlane*> planes);

  // Compiles the files and, if they are valid, applies them to every plane.
  // A runtime override on a host stays in force when the host's routes (every
  // destination list: hosts, subsets, ports, weights) are the same in the new
  // files as in the previous ones; otherwise the files win and it is dropped,
  // with a log line. Returns false (and records the error) if the change was
  // refused.
  bool reload_from_files();

  // Applies a runtime weight override on top of the serving snapshot.
  // Returns an empty string on success, else the reason.
  std::string set_weights(const std::string& host, const SubsetWeights& weights);

  model::SnapshotPtr current() const;
  AgentStatus status() const;
  // The latest applied and refused changes, oldest first.
  static constexpr size_t kMaxChanges = 64;
  std::vector<ConfigChange> changes() const;

 private:
  bool apply_everywhere(const model::SnapshotPtr& next, std::string& error);
  void log_change(uint64_t version, std::string kind, std::string what);   // under mu_

  CompileFn compile_;
  OverrideFn override_weights_;
  std::vector<DataPlane*> planes_;

  mutable std::mutex mu_;   // serialises reloads and overrides; guards below
  uint64_t next_version_ = 1;
  model::SnapshotPtr serving_;
  model::SnapshotPtr from_files_;
  AgentStatus status_;
  std::deque<ConfigChange> changes_;
};

// A host's routes as text: per port its L4 destination list and each HTTP
// route's, with hosts, subsets and weights, in the default view (client
// views are left out); "" for an unknown host. Equal texts mean an override
// on the host still means what it meant.
std::string route_destinations(const model::Snapshot& snapshot, const std::string& host);

// One human line saying what changed between two snapshots, for the log:
// "services +1 -0; productpage:9080 weights v1 70->50 v2 30->50; reviews endpoints 3->4".
std::string describe_changes(const model::Snapshot* before, const model::Snapshot& after);

}  // namespace sluice::agent
