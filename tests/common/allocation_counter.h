// Counts heap allocations in a test binary, for the request path's
// "no per-request allocation" promise: replaces the global operator
// new/delete with malloc/free plus a counter that only runs inside
// allocations_during(). Include it in exactly one translation unit of a
// test executable, and build that executable with
// -Wno-mismatched-new-delete (GCC flags every inlined delete otherwise).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace sluice::test_support {
inline std::atomic<bool> counting_allocations{false};
inline std::atomic<uint64_t> allocations{0};

// The number of operator new calls made while `work` runs.
uint64_t allocations_during(auto&& work) {
  allocations = 0;
  counting_allocations = true;
  work();
  counting_allocations = false;
  return allocations.load();
}
}  // namespace sluice::test_support

void* operator new(std::size_t size) {
  if (sluice::test_support::counting_allocations.load(std::memory_order_relaxed)) {
    sluice::test_support::allocations.fetch_add(1, std::memory_order_relaxed);
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
