// The worker's clock: steady nanoseconds for deadlines and durations.
#pragma once

#include <chrono>
#include <cstdint>

#include "model/snapshot.h"

namespace sluice::proxy {

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline int64_t to_ns(model::Duration d) { return d.count(); }

}  // namespace sluice::proxy
