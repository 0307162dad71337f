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
  // The client namespaces whose routes for `host` come from a
  // VirtualService of their own (or from none where the default view has
  // one) and keep the weights of their files, one entry per view:
  // "namespaces a, b (VirtualService a/pinned)".
  std::vector<std::string> views_kept;
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
// `explain` still shows them. The override applies to the routes of the
// default view (the service's own namespace's, every unknown client's) and
// of every client view whose routes come from the same VirtualService
// (model::ServiceView::default_virtual_service; its subsets are its own
// DestinationRule's, matched by name); views with a VirtualService of their
// own are left as they are and listed in `views_kept`. Refused (error set,
// no snapshot): an unknown host, a subset the default view's
// DestinationRule does not define, one given a weight that the
// DestinationRule of a view the override applies to does not define, a
// subset named twice, or weights summing to 0.
OverrideResult override_weights(const model::Snapshot& base, std::string_view host,
                                const std::vector<std::pair<std::string, uint32_t>>& subset_weights,
                                uint64_t version);

}  // namespace sluice::config
