// Where the proxy publishes its active-request count per backend. The
// in-kernel LEAST_REQUEST selection reads the same figures, so the intended
// implementation is the bpf engineer's mmapped BPF array: a slot is resolved
// once per backend (not per request) and updated with an atomic add on shared
// memory, so no syscall is made per request. Counts are kept as plain signed
// totals across all workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "model/snapshot.h"

namespace sluice::proxy {

class ActiveRequestCounters {
 public:
  virtual ~ActiveRequestCounters() = default;
  // The counter for a backend address:port; the pointer stays valid for the
  // lifetime of this object. Called when a worker first meets a backend.
  virtual std::atomic<int64_t>* counter_for(const model::IpAddress& address, uint32_t port) = 0;
};

// Process-local counters, for tests and for running without BPF.
class InMemoryActiveRequests final : public ActiveRequestCounters {
 public:
  std::atomic<int64_t>* counter_for(const model::IpAddress& address, uint32_t port) override {
    std::lock_guard lock(mu_);
    auto& slot = slots_[{address, port}];
    if (!slot) slot = std::make_unique<std::atomic<int64_t>>(0);
    return slot.get();
  }

 private:
  std::mutex mu_;
  std::map<std::pair<model::IpAddress, uint32_t>, std::unique_ptr<std::atomic<int64_t>>> slots_;
};

}  // namespace sluice::proxy
