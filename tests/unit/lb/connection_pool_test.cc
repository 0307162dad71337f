#include "lb/connection_pool.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace sluice::lb {
namespace {

using Resource = ConnectionPoolLimits::Resource;

TEST(ConnectionPoolLimits, RefusesPastEachLimitAndCountsOverflow) {
  model::ConnectionPool config;
  config.max_connections = 2;
  config.http1_max_pending_requests = 1;
  config.http2_max_requests = 3;
  config.max_retries = 0;
  ConnectionPoolLimits pool(config);
  EXPECT_TRUE(pool.try_acquire(Resource::Connections));
  EXPECT_TRUE(pool.try_acquire(Resource::Connections));
  EXPECT_FALSE(pool.try_acquire(Resource::Connections));
  EXPECT_TRUE(pool.try_acquire(Resource::PendingRequests));
  EXPECT_FALSE(pool.try_acquire(Resource::PendingRequests));
  EXPECT_FALSE(pool.try_acquire(Resource::PendingRequests));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(pool.try_acquire(Resource::Requests));
  EXPECT_FALSE(pool.try_acquire(Resource::Requests));
  EXPECT_FALSE(pool.try_acquire(Resource::Retries));
  EXPECT_EQ(pool.overflows(Resource::Connections), 1u);
  EXPECT_EQ(pool.overflows(Resource::PendingRequests), 2u);
  EXPECT_EQ(pool.overflows(Resource::Requests), 1u);
  EXPECT_EQ(pool.overflows(Resource::Retries), 1u);
  EXPECT_EQ(pool.in_use(Resource::Requests), 3u);
}

TEST(ConnectionPoolLimits, ReleaseFreesASlot) {
  model::ConnectionPool config;
  config.max_connections = 1;
  ConnectionPoolLimits pool(config);
  ASSERT_TRUE(pool.try_acquire(Resource::Connections));
  ASSERT_FALSE(pool.try_acquire(Resource::Connections));
  pool.release(Resource::Connections);
  EXPECT_TRUE(pool.try_acquire(Resource::Connections));
}

TEST(ConnectionPoolLimits, DefaultsAreUnlimited) {
  ConnectionPoolLimits pool(model::ConnectionPool{});
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(pool.try_acquire(Resource::Requests));
  EXPECT_EQ(pool.overflows(Resource::Requests), 0u);
  EXPECT_FALSE(pool.connection_exhausted(1000000));
}

TEST(ConnectionPoolLimits, ReleaseWithoutAcquireIsAProgrammingError) {
  ConnectionPoolLimits pool(model::ConnectionPool{});
  EXPECT_THROW(pool.release(Resource::Retries), std::logic_error);
}

TEST(ConnectionPoolLimits, ConnectionIsExhaustedAfterMaxRequestsPerConnection) {
  model::ConnectionPool config;
  config.max_requests_per_connection = 2;
  ConnectionPoolLimits pool(config);
  EXPECT_FALSE(pool.connection_exhausted(1));
  EXPECT_TRUE(pool.connection_exhausted(2));
}

}  // namespace
}  // namespace sluice::lb
