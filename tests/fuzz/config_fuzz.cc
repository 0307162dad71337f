// Fuzz target for the config loader and compiler: the input is one YAML
// file. Whatever the bytes, loading must not crash, hang or throw, and a
// snapshot that compiles must keep the invariants model/snapshot.h promises
// (checked below; a violation aborts, which the fuzzer reports).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/compiler.h"
#include "config/snapshot_json.h"
#include "config/weight_override.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check_weighted(const sluice::model::Snapshot& s,
                    const std::vector<sluice::model::WeightedDestination>& list) {
  double total = 0;
  uint64_t weights = 0;
  for (const auto& w : list) {
    require(w.destination.service < s.services.size());
    const auto& dest = s.services[w.destination.service];
    require(w.destination.subset < dest.subsets.size());
    require(dest.port(w.destination.port) != nullptr);
    require(w.share >= 0 && w.share <= 1);
    total += w.share;
    weights += w.weight;
  }
  if (weights > 0) require(std::fabs(total - 1.0) < 1e-9);
}

void check_invariants(const sluice::model::Snapshot& s) {
  for (const auto& svc : s.services) {
    require(!svc.subsets.empty() && svc.subsets[0].name.empty());
    require(svc.routes.size() == svc.ports.size());
    for (const auto& subset : svc.subsets) {
      for (uint32_t e : subset.endpoints) require(e < svc.endpoints.size());
      require(subset.policy_by_port.size() == svc.ports.size());
    }
    for (const auto& pr : svc.routes) {
      require(svc.port(pr.port) != nullptr);
      check_weighted(s, pr.l4);
      for (const auto& r : pr.http) check_weighted(s, r.route);
      if (pr.plane == sluice::model::Plane::L4) require(!pr.l4.empty() && pr.http.empty());
      if (pr.plane == sluice::model::Plane::L7) require(!pr.http.empty());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto parsed = config::parse_sources({{"fuzz.yaml", text}}, config::ParseOptions{1});
  const auto result = config::compile(parsed, 1);
  require(result.ok() == (result.error_count() == 0));
  if (!result.ok()) return 0;
  check_invariants(*result.snapshot);
  require(!config::snapshot_json_text(*result.snapshot).empty());
  // Shift every service with subsets to its last subset, through the runtime override.
  for (const auto& svc : result.snapshot->services) {
    if (svc.subsets.size() < 2) continue;
    auto shifted = config::override_weights(*result.snapshot, svc.host, {{svc.subsets.back().name, 1}}, 2);
    require(shifted.snapshot != nullptr);
    check_invariants(*shifted.snapshot);
  }
  return 0;
}
