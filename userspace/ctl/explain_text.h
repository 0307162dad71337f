// The human-readable form of a compiled snapshot (`sluicectl explain`):
// per service, VIP:port -> plane -> destinations with shares; subsets ->
// endpoints; the effective policy of each subset and port.
#pragma once

#include <string>

#include "model/snapshot.h"

namespace sluice::ctl {

std::string explain_text(const model::Snapshot& snapshot);

}  // namespace sluice::ctl
