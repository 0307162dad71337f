// The pieces of load balancing that both data planes share: the identity of a
// backend inside a subset, the one hash function, and the tables the BPF
// writer precomputes (Maglev lookup, smooth weighted round-robin schedule).
// The per-request policies (userspace/lb/*_policy.h) build on these.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::lb {

struct Backend {
  uint32_t id = 0;          // caller's id (BPF backend id, or index into a subset)
  uint32_t weight = 1;      // >= 1
  std::string key;          // stable identity for hashing, e.g. "10.0.0.2:8080"
  // The host's active-request count (all workers, both planes), read
  // directly by LEAST_REQUEST; nullptr counts the host as idle.
  const std::atomic<int64_t>* active = nullptr;
};

// 64-bit hash used everywhere a key is hashed in userspace (Maglev offsets and
// skips, ring hash, consistent-hash request keys).
uint64_t hash64(std::string_view data, uint64_t seed = 0);

// Maglev lookup table (Eisenbud et al., NSDI'16) honouring backend weights.
// `table_size` must be prime and larger than backends.size(). Each entry is an
// index into `backends`. Empty input gives an empty table.
std::vector<uint32_t> build_maglev_table(std::span<const Backend> backends, uint32_t table_size);

// Smooth weighted round-robin order (nginx's algorithm): one full cycle of
// sum(weights) picks, each backend appearing `weight` times, interleaved.
// If sum(weights) exceeds max_len the weights are scaled down proportionally
// (each backend keeps at least one slot). Entries are indices into `backends`.
std::vector<uint32_t> smooth_wrr_schedule(std::span<const Backend> backends, size_t max_len);

}  // namespace sluice::lb
