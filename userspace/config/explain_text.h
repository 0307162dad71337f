// The human-readable form of a compiled snapshot (`sluicectl explain`, the
// agent's GET /explain and its /ui page):
// per service, VIP:port -> plane -> destinations with shares; subsets ->
// endpoints; the effective policy of each subset and port.
#pragma once

#include <string>

#include "model/snapshot.h"

namespace sluice::config {

std::string explain_text(const model::Snapshot& snapshot);

}  // namespace sluice::config
