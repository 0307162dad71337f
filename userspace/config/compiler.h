// Decoded Istio resources -> one validated, immutable model::Snapshot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/loader.h"
#include "model/snapshot.h"

namespace sluice::config {

struct CompileResult {
  // Null when any diagnostic is an error: an invalid configuration never
  // produces a snapshot, so callers keep serving the previous one.
  model::SnapshotPtr snapshot;
  // Every error, warning and note, sorted by file, line and column.
  std::vector<Diagnostic> diagnostics;

  bool ok() const { return snapshot != nullptr; }
  size_t error_count() const;
};

// Resolves hosts, subsets and ports across resources, checks them, and
// precomputes everything model/snapshot.h promises. `version` becomes
// Snapshot::version: the caller owns the counter, so it stays strictly
// increasing across reloads and runtime overrides.
CompileResult compile(const ParsedConfig& parsed, uint64_t version);

// load_paths + compile: what `sluicectl validate` calls.
CompileResult compile_paths(const std::vector<std::string>& paths, uint64_t version);
// The same through an IncrementalLoader: what the agent calls on each change.
CompileResult compile_paths(IncrementalLoader& loader, const std::vector<std::string>& paths, uint64_t version);

}  // namespace sluice::config
