// The one JSON form of a compiled snapshot, for `sluicectl explain --json`
// and the agent's /config_dump. Its shape is documented in
// docs/explain-json.md and versioned by the top-level "schema" field.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "model/snapshot.h"

namespace sluice::config {

inline constexpr int kSnapshotJsonSchema = 1;

nlohmann::json snapshot_to_json(const model::Snapshot& snapshot);

// snapshot_to_json(...).dump(indent) that never throws on bytes that are not
// UTF-8 (YAML may carry them): they are replaced with U+FFFD.
std::string snapshot_json_text(const model::Snapshot& snapshot, int indent = 2);

// The diagnostic as a JSON object (severity, file, line, column, message).
nlohmann::json diagnostic_to_json(const model::Diagnostic& d);

}  // namespace sluice::config
