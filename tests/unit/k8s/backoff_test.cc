#include <gtest/gtest.h>

#include "k8s/kubernetes_source.h"

using namespace std::chrono_literals;
using sluice::k8s::Backoff;

TEST(Backoff, EachDelayLiesBetweenHalfItsCeilingAndTheCeilingWhichDoublesUpToMax) {
  for (uint64_t seed : {1u, 2u, 3u, 42u}) {
    Backoff b(500ms, 30s, seed);
    std::chrono::milliseconds ceiling = 500ms;
    for (int i = 0; i < 12; ++i) {
      auto d = b.next();
      EXPECT_GE(d, ceiling / 2) << "attempt " << i;
      EXPECT_LE(d, ceiling) << "attempt " << i;
      ceiling = std::min(ceiling * 2, std::chrono::milliseconds(30s));
    }
    EXPECT_EQ(b.ceiling(), 30s);
  }
}

TEST(Backoff, JitterSpreadsDelays) {
  // Two agents restarting together must not retry in lock step.
  Backoff a(1000ms, 30s, 7);
  Backoff b(1000ms, 30s, 8);
  int differ = 0;
  for (int i = 0; i < 5; ++i) differ += a.next() != b.next();
  EXPECT_GT(differ, 0);
}

TEST(Backoff, ResetReturnsToTheInitialDelay) {
  Backoff b(200ms, 10s, 3);
  for (int i = 0; i < 8; ++i) b.next();
  b.reset();
  EXPECT_LE(b.next(), 200ms);
}
