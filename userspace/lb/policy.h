// One interface for every load-balancing policy inside a subset, in the
// spirit of Envoy's per-policy LBs and HAProxy's lb_* operations table. A
// policy is built per worker thread over a HostSet and is not thread-safe.
//
//   HostSet hosts(backends);
//   SeededRandom random(seed);
//   auto policy = make_policy(subset_policy.load_balancer, {hosts, random});
//   Selection s = policy->choose({.hash = router_decision.hash_key});   // the request's context, per call
//   if (s.kind == Selection::Kind::NoHealthyHost) -> 503 "no healthy upstream"
//
// The router computes the consistent-hash key (header, cookie, source IP,
// query parameter) and passes its hash64 in the per-request context (Envoy's
// chooseHost(context)); LEAST_REQUEST reads each host's active-request
// counter through Backend::active, a pointer the caller sets once per host.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "lb/host_set.h"
#include "lb/random_source.h"
#include "model/snapshot.h"

namespace sluice::lb {

struct PickContext {
  // hash64 of the request's hash key; nullopt when the key is absent (the
  // header is missing, ...): hash policies then pick at random, as Envoy does.
  std::optional<uint64_t> hash;
};

struct Selection {
  enum class Kind {
    Host,            // forward to hosts()[host]
    Passthrough,     // forward to the address the client dialled
    NoHealthyHost,   // answer 503 "no healthy upstream"
  };
  Kind kind = Kind::NoHealthyHost;
  uint32_t host = 0;   // index into HostSet::hosts() when kind == Host

  static Selection of_host(uint32_t index) { return {Kind::Host, index}; }
  static Selection passthrough() { return {Kind::Passthrough, 0}; }
  static Selection no_healthy_host() { return {Kind::NoHealthyHost, 0}; }
  bool operator==(const Selection&) const = default;
};

class LoadBalancingPolicy {
 public:
  virtual ~LoadBalancingPolicy() = default;
  virtual Selection choose(const PickContext& context) = 0;
  virtual model::LbAlgorithm algorithm() const = 0;
  // True for policies that need request data (a hash key) to mean anything;
  // the config checker uses it to route such ports through the L7 plane.
  virtual bool uses_hash_key() const { return false; }
};

// The shared base: tracks the host set's generation, rebuilds the policy's
// table when health changed, answers NoHealthyHost on an empty view, and
// leaves two small hooks to each policy.
class HostSetPolicy : public LoadBalancingPolicy {
 public:
  Selection choose(const PickContext& context) final;

 protected:
  HostSetPolicy(const HostSet& hosts, RandomSource& random) : hosts_(hosts), random_(random) {}
  // Called before a pick whenever the available view changed (and before the first).
  virtual void rebuild(std::span<const uint32_t> available) { (void)available; }
  // available is non-empty; returns an element of it.
  virtual uint32_t pick(std::span<const uint32_t> available, const PickContext& context) = 0;

  const HostSet& hosts_;
  RandomSource& random_;

 private:
  uint64_t built_generation_ = 0;
};

struct PolicyInputs {
  const HostSet& hosts;
  RandomSource& random;
};

// Builds the policy a subset's LoadBalancer config names. Throws
// std::invalid_argument naming the field for settings it cannot honour
// (e.g. a Maglev table size that is not prime).
std::unique_ptr<LoadBalancingPolicy> make_policy(const model::LoadBalancer& config, PolicyInputs inputs);

}  // namespace sluice::lb
