// The one source of randomness for load balancing, injected so tests pin it.
// Policies are per worker thread (like Envoy's thread-local LBs), so a source
// is never shared across threads.
#pragma once

#include <cstdint>

namespace sluice::lb {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint64_t next() = 0;
  // In [0, bound), bound > 0. Modulo of a 64-bit value: the bias is below
  // bound / 2^64, far under any statistical tolerance we test.
  uint64_t uniform(uint64_t bound) { return next() % bound; }
  // In [0, 1), from the top 53 bits: percentages (faults, mirrors) and shares.
  double fraction() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// splitmix64: tiny, fast, and passes BigCrush; seeded per worker in the proxy
// and with a fixed seed in tests.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t next() override {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace sluice::lb
