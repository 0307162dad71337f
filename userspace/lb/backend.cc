#include "lb/backend.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

namespace sluice::lb {

namespace {

constexpr uint64_t kMul1 = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kMul2 = 0xbf58476d1ce4e5b9ULL;
constexpr uint64_t kMul3 = 0x94d049bb133111ebULL;

// splitmix64's finaliser: every input bit affects every output bit.
constexpr uint64_t avalanche(uint64_t x) {
  x ^= x >> 30;
  x *= kMul2;
  x ^= x >> 27;
  x *= kMul3;
  x ^= x >> 31;
  return x;
}

constexpr uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t load_le64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;   // the hash is only compared within one host, so byte order is irrelevant
}

bool is_prime(uint64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

// Maglev's two independent hashes of a backend key: where its permutation
// starts and how far it steps.
constexpr uint64_t kOffsetSeed = 0x6d61676c65762d6fULL;   // "maglev-o"
constexpr uint64_t kSkipSeed = 0x6d61676c65762d73ULL;     // "maglev-s"

}  // namespace

uint64_t hash64(std::string_view data, uint64_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint64_t h = avalanche(seed ^ (n * kMul1));
  while (n >= 8) {
    h ^= avalanche(load_le64(p) * kMul1);
    h = rotl(h, 29) * kMul2 + kMul3;
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  for (size_t i = 0; i < n; ++i) tail |= uint64_t{p[i]} << (8 * i);
  h ^= avalanche((tail ^ (uint64_t{n} << 56)) * kMul1);
  return avalanche(h);
}

// Weighted Maglev: the backends take turns filling their next preferred empty
// slot, as in the paper, but a backend takes a turn only when it has earned a
// full max-weight's worth of credit. Over the fill each backend therefore
// claims entries in proportion to its weight, and each still walks its own
// permutation, so removing one backend moves only that backend's entries plus
// a small fraction of the others.
std::vector<uint32_t> build_maglev_table(std::span<const Backend> backends, uint32_t table_size) {
  if (backends.empty()) return {};
  if (!is_prime(table_size) || table_size <= backends.size()) {
    throw std::invalid_argument("maglev table size " + std::to_string(table_size) +
                                " must be a prime larger than the number of backends (" +
                                std::to_string(backends.size()) + ")");
  }
  const size_t n = backends.size();
  const uint64_t m = table_size;
  std::vector<uint64_t> offset(n), skip(n), next(n, 0), credit(n, 0);
  uint64_t max_weight = 0;
  for (size_t i = 0; i < n; ++i) {
    offset[i] = hash64(backends[i].key, kOffsetSeed) % m;
    skip[i] = hash64(backends[i].key, kSkipSeed) % (m - 1) + 1;
    max_weight = std::max<uint64_t>(max_weight, std::max<uint32_t>(backends[i].weight, 1));
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  std::vector<uint32_t> table(table_size, kEmpty);
  uint64_t filled = 0;
  while (true) {
    for (size_t i = 0; i < n; ++i) {
      credit[i] += std::max<uint32_t>(backends[i].weight, 1);
      if (credit[i] < max_weight) continue;
      credit[i] -= max_weight;
      // A prime table and a skip in [1, m-1] make each walk a full permutation,
      // so an empty slot is always found.
      uint64_t slot;
      do {
        slot = (offset[i] + next[i] * skip[i]) % m;
        ++next[i];
      } while (table[slot] != kEmpty);
      table[slot] = static_cast<uint32_t>(i);
      if (++filled == m) return table;
    }
  }
}

std::vector<uint32_t> smooth_wrr_schedule(std::span<const Backend> backends, size_t max_len) {
  if (backends.empty()) return {};
  if (backends.size() > max_len) {
    throw std::invalid_argument("smooth WRR schedule of at most " + std::to_string(max_len) +
                                " picks cannot hold " + std::to_string(backends.size()) +
                                " backends");
  }
  const size_t n = backends.size();
  std::vector<uint64_t> weight(n);
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    weight[i] = std::max<uint32_t>(backends[i].weight, 1);
    total += weight[i];
  }
  if (total > max_len) {
    // Dividing by the common divisor keeps the ratios exact; only scale if
    // that is not enough.
    uint64_t g = 0;
    for (uint64_t w : weight) g = std::gcd(g, w);
    for (auto& w : weight) w /= g;
    total /= g;
  }
  if (total > max_len) {
    // Proportional scaling with a floor of one slot. The floors can push the
    // sum over the budget, so shrink the budget by the overshoot and retry.
    const std::vector<uint64_t> original = weight;
    const uint64_t original_total = total;
    uint64_t budget = max_len;
    while (true) {
      total = 0;
      for (size_t i = 0; i < n; ++i) {
        weight[i] = std::max<uint64_t>(1, original[i] * budget / original_total);
        total += weight[i];
      }
      if (total <= max_len) break;
      budget -= std::min(budget - 1, total - max_len);
    }
  }
  // nginx's smooth weighted round-robin: every pick adds each weight to its
  // running score, takes the highest (lowest index on ties) and charges it the
  // total. A full cycle of `total` picks returns every score to zero.
  std::vector<int64_t> current(n, 0);
  std::vector<uint32_t> schedule;
  schedule.reserve(total);
  for (uint64_t pick = 0; pick < total; ++pick) {
    size_t best = 0;
    for (size_t i = 0; i < n; ++i) {
      current[i] += static_cast<int64_t>(weight[i]);
      if (current[i] > current[best]) best = i;
    }
    current[best] -= static_cast<int64_t>(total);
    schedule.push_back(static_cast<uint32_t>(best));
  }
  return schedule;
}

}  // namespace sluice::lb
