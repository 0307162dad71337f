// Runtime weight overrides (`sluicectl weights HOST SUBSET=W...`): a canary
// shift applied to a compiled snapshot without touching the files.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/snapshot.h"

namespace sluice::config {

struct OverrideResult {
  model::SnapshotPtr snapshot;   // null on error
  std::string error;             // why the override was refused
};

// A copy of `base` (version `version`, origin the base's + "+override") in which
// every destination list of `host`'s own routes — each port's L4
// destinations and each HTTP route's weighted destinations — that points at
// `host`'s subsets carries the new weights, with shares recomputed:
//  - a list whose destinations all point at `host` becomes one destination
//    per named subset with its weight (subsets not named are dropped: weight 0);
//  - in a list that also points elsewhere, `host`'s destinations get the named
//    weight, or 0 when their subset is not named.
// Subsets already in such a list but not named stay in it with weight 0, so
// `explain` still shows them. Refused (error set, no snapshot): an unknown
// host, a subset its DestinationRule does not define, a subset named twice,
// or weights summing to 0.
OverrideResult override_weights(const model::Snapshot& base, std::string_view host,
                                const std::vector<std::pair<std::string, uint32_t>>& subset_weights,
                                uint64_t version);

}  // namespace sluice::config
