// Time for the pure-logic units (outlier detection), injected so tests step
// it by hand.
#pragma once

#include <chrono>

namespace sluice::lb {

class MonotonicClock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~MonotonicClock() = default;
  virtual TimePoint now() const = 0;
};

class SteadyClock final : public MonotonicClock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace sluice::lb
