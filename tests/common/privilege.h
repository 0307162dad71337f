// Tests that need root or a kernel feature call these. Outside CI they skip
// with a message naming what is missing; with CI=true they fail, because CI
// runs as root on a kernel that has everything (see docs/testing.md).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace sluice::testing {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace sluice::testing

// Use at the top of a TEST body: returns from it (skip or failure) if missing.
#define SLUICE_REQUIRE(cond, what)                                        \
  do {                                                                    \
    if (!(cond)) {                                                        \
      if (::sluice::testing::in_ci()) {                                   \
        FAIL() << "missing in CI: " << (what);                            \
      } else {                                                            \
        GTEST_SKIP() << "skipped, missing: " << (what);                   \
      }                                                                   \
    }                                                                     \
  } while (0)

#define SLUICE_REQUIRE_ROOT() SLUICE_REQUIRE(::geteuid() == 0, "root (CAP_BPF, CAP_NET_ADMIN)")
