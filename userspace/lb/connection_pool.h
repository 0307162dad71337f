// Istio's connectionPool limits for one subset's upstream, as Envoy's circuit
// breakers count them: open connections, requests waiting for a connection,
// active requests, active retries. Acquiring past a limit fails and counts an
// overflow (Envoy's upstream_cx_overflow, upstream_rq_pending_overflow, ...);
// the proxy answers 503 with "upstream connect error or disconnect/reset
// before headers. reset reason: overflow". Every successful acquire must be
// paired with one release. Not thread-safe: one per worker, or wrap it.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "model/snapshot.h"

namespace sluice::lb {

class ConnectionPoolLimits {
 public:
  enum class Resource { Connections, PendingRequests, Requests, Retries };
  static constexpr size_t kResources = 4;

  explicit ConnectionPoolLimits(const model::ConnectionPool& config);

  bool try_acquire(Resource r);
  void release(Resource r);

  uint64_t in_use(Resource r) const { return slot(r).in_use; }
  uint64_t overflows(Resource r) const { return slot(r).overflows; }
  uint64_t limit(Resource r) const { return slot(r).limit; }

  // maxRequestsPerConnection: true once a connection has served its quota
  // and should be closed after the current response (0 = unlimited).
  bool connection_exhausted(uint64_t requests_served) const {
    return max_requests_per_connection_ != 0 && requests_served >= max_requests_per_connection_;
  }

  static std::string_view to_string(Resource r);

 private:
  struct Slot {
    uint64_t limit = 0, in_use = 0, overflows = 0;
  };
  Slot& slot(Resource r) { return slots_[static_cast<size_t>(r)]; }
  const Slot& slot(Resource r) const { return slots_[static_cast<size_t>(r)]; }

  std::array<Slot, kResources> slots_;
  uint32_t max_requests_per_connection_;
};

}  // namespace sluice::lb
