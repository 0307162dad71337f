// A worker's pool of fixed-size connection buffers. Buffers are taken when
// bytes arrive or are queued and given back when drained, so an idle
// keep-alive connection holds none. Each buffer is its own mapping. A buffer
// given back is kept, whatever the count: what the pool holds never exceeds
// the most buffers in use at once, and trim() (on the worker's tick) unmaps
// what stayed unused for a whole interval, down to a small reserve, so
// memory follows the load down. Unmapping at give-back instead (past a fixed
// count of 256) made a worker with a few hundred HTTP/2 streams in flight,
// each holding buffers in its client and upstream slots, map, fault in and
// unmap buffers on nearly every request (docs/benchmarks.md, "HTTP/2 (h2c)
// through the proxy").
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <vector>

namespace sluice::proxy {

class BufferPool {
 public:
  // Buffers kept for reuse after a quiet interval.
  static constexpr size_t kReserve = 16;

  explicit BufferPool(uint32_t buffer_size) : size_(buffer_size) {}
  ~BufferPool() {
    for (char* b : cached_) munmap(b, size_);
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  uint32_t buffer_size() const { return size_; }

  char* take() {
    ++in_use_;
    if (!cached_.empty()) {
      char* b = cached_.back();
      cached_.pop_back();
      low_water_ = std::min(low_water_, cached_.size());
      return b;
    }
    low_water_ = 0;
    void* m = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    return static_cast<char*>(m);
  }

  void give_back(char* b) {
    --in_use_;
    cached_.push_back(b);
  }

  // Unmaps the buffers no take() needed since the last trim (beyond the reserve).
  void trim() {
    size_t unused = low_water_ > kReserve ? low_water_ - kReserve : 0;
    unused = std::min(unused, cached_.size() > kReserve ? cached_.size() - kReserve : size_t{0});
    for (size_t i = 0; i < unused; ++i) {
      munmap(cached_.back(), size_);
      cached_.pop_back();
    }
    low_water_ = cached_.size();
  }

  size_t in_use() const { return in_use_; }
  size_t cached() const { return cached_.size(); }

 private:
  uint32_t size_;
  std::vector<char*> cached_;
  size_t low_water_ = 0;   // fewest cached since the last trim
  size_t in_use_ = 0;
};

}  // namespace sluice::proxy
