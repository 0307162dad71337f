// The one JSON form of a compiled snapshot, for `sluicectl explain --json`
// and the agent's /config_dump. Its shape is documented in
// docs/explain-json.md and versioned by the top-level "schema" field.
#pragma once

#include <nlohmann/json.hpp>

#include "model/snapshot.h"

namespace sluice::config {

inline constexpr int kSnapshotJsonSchema = 1;

nlohmann::json snapshot_to_json(const model::Snapshot& snapshot);

// The diagnostic as a JSON object (severity, file, line, column, message).
nlohmann::json diagnostic_to_json(const model::Diagnostic& d);

}  // namespace sluice::config
