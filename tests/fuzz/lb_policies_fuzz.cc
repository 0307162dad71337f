// Fuzz target for the LB policies over a changing host set. Input bytes:
//   [0]      algorithm (mod 6)          [1] host count (1..64)
//   [2..]    weights, one byte each (0 is treated as 1)
//   then     operations, two bytes each: op (mod 4), argument
//            0: toggle health of host arg % n     1: pick with hash key arg
//            2: pick without a key                3: pick 16 times
// Invariants: a pick is NoHealthyHost exactly when the view is empty (or
// Passthrough for PASSTHROUGH), and otherwise an available host; the same
// key on an unchanged view gives the same host for the hash policies.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "lb/policy.h"

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  if (size < 2) return 0;
  constexpr model::LbAlgorithm kAlgorithms[] = {model::LbAlgorithm::RoundRobin, model::LbAlgorithm::LeastRequest,
                                                model::LbAlgorithm::Random,     model::LbAlgorithm::Passthrough,
                                                model::LbAlgorithm::RingHash,   model::LbAlgorithm::Maglev};
  const model::LbAlgorithm algorithm = kAlgorithms[data[0] % 6];
  const size_t n = 1 + data[1] % 64;
  size_t pos = 2;
  std::vector<lb::Backend> backends;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t w = pos < size ? data[pos++] : 1;
    backends.push_back({static_cast<uint32_t>(i), w, "10.0." + std::to_string(i) + ".1:80/tcp"});
  }
  lb::HostSet hosts(backends);
  lb::SeededRandom random(size);
  model::LoadBalancer config;
  config.algorithm = algorithm;
  config.maglev_table_size = 251;   // prime, > 64 hosts
  config.ring_minimum_size = 64;
  auto policy = lb::make_policy(config, {hosts, random});

  auto check = [&](const lb::Selection& s) {
    if (algorithm == model::LbAlgorithm::Passthrough) {
      require(s.kind == lb::Selection::Kind::Passthrough);
      return;
    }
    if (hosts.available().empty()) {
      require(s.kind == lb::Selection::Kind::NoHealthyHost);
      return;
    }
    require(s.kind == lb::Selection::Kind::Host);
    require(s.host < n && hosts.is_healthy(s.host));
  };
  while (pos + 1 < size) {
    const uint8_t op = data[pos] % 4;
    const uint8_t arg = data[pos + 1];
    pos += 2;
    switch (op) {
      case 0: hosts.set_healthy(arg % n, !hosts.is_healthy(arg % n)); break;
      case 1: {
        const uint64_t key = lb::hash64(std::string(1, static_cast<char>(arg)));
        const lb::Selection first = policy->choose({key});
        check(first);
        if (policy->uses_hash_key()) require(policy->choose({key}) == first);
        break;
      }
      case 2: check(policy->choose({})); break;
      case 3:
        for (int i = 0; i < 16; ++i) check(policy->choose({}));
        break;
    }
  }
  return 0;
}
