#include "lb/connection_pool.h"

#include <stdexcept>
#include <string>

namespace sluice::lb {

ConnectionPoolLimits::ConnectionPoolLimits(const model::ConnectionPool& config)
    : max_requests_per_connection_(config.max_requests_per_connection) {
  slot(Resource::Connections).limit = config.max_connections;
  slot(Resource::PendingRequests).limit = config.http1_max_pending_requests;
  slot(Resource::Requests).limit = config.http2_max_requests;
  slot(Resource::Retries).limit = config.max_retries;
}

bool ConnectionPoolLimits::try_acquire(Resource r) {
  Slot& s = slot(r);
  if (s.in_use >= s.limit) {
    s.overflows++;
    return false;
  }
  s.in_use++;
  return true;
}

void ConnectionPoolLimits::release(Resource r) {
  Slot& s = slot(r);
  if (s.in_use == 0) {
    throw std::logic_error("connection pool: release of " + std::string(to_string(r)) + " without an acquire");
  }
  s.in_use--;
}

std::string_view ConnectionPoolLimits::to_string(Resource r) {
  switch (r) {
    case Resource::Connections: return "connections";
    case Resource::PendingRequests: return "pending_requests";
    case Resource::Requests: return "requests";
    case Resource::Retries: return "retries";
  }
  return "unknown";
}

}  // namespace sluice::lb
