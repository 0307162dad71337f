// A byte buffer of a connection or an exchange. Its memory comes from the
// worker's BufferPool when bytes are first written and goes back with
// release() once it is empty, so an idle connection holds none. Data lives
// in [begin, end); space is reclaimed by compact().
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <utility>

#include "proxy/buffer_pool.h"

namespace sluice::proxy {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ByteBuffer(ByteBuffer&& o) noexcept { take_from(o); }
  ByteBuffer& operator=(ByteBuffer&& o) noexcept {
    if (this != &o) {
      give_back();
      take_from(o);
    }
    return *this;
  }
  ~ByteBuffer() { give_back(); }

  // The pool this buffer takes its memory from (and its capacity).
  void bind(BufferPool* pool) {
    if (pool_ == pool) return;
    give_back();
    pool_ = pool;
    capacity_ = pool != nullptr ? pool->buffer_size() : 0;
    clear();
  }
  void clear() {
    begin_ = end_ = 0;
    pinned_ = false;
  }
  // Gives the memory back to the pool if no byte is held and no send reads it.
  void release() {
    if (mem_ != nullptr && begin_ == end_ && !pinned_) give_back();
  }
  bool holds_memory() const { return mem_ != nullptr; }
  std::string_view readable() const {
    return mem_ == nullptr ? std::string_view() : std::string_view(mem_ + begin_, end_ - begin_);
  }
  // The same bytes, writable: a request's target is normalised in place.
  std::span<char> readable_mut() {
    return mem_ == nullptr ? std::span<char>() : std::span<char>(mem_ + begin_, end_ - begin_);
  }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  // Free bytes for append: after compacting, unless a send in flight reads
  // from this buffer (the kernel may re-read it until the send completes).
  size_t space() const { return pinned_ ? capacity_ - end_ : capacity_ - size(); }
  void pin(bool pinned) { pinned_ = pinned; }
  std::span<char> writable() {
    if (mem_ == nullptr && pool_ != nullptr) mem_ = pool_->take();
    if (mem_ == nullptr) return {};
    compact();
    return {mem_ + end_, capacity_ - end_};
  }
  void commit(size_t n) {
    end_ += static_cast<uint32_t>(n);
    committed_total_ += n;
  }
  void consume(size_t n) {
    begin_ += static_cast<uint32_t>(n);
    consumed_total_ += n;
    if (begin_ == end_ && !pinned_) begin_ = end_ = 0;
  }
  bool append(std::string_view s) {
    if (s.empty()) return true;
    if (s.size() > space()) return false;
    auto w = writable();
    if (w.size() < s.size()) return false;
    std::memcpy(w.data(), s.data(), s.size());
    commit(s.size());
    return true;
  }
  // Bytes ever committed / consumed, for per-request byte counts.
  uint64_t committed_total() const { return committed_total_; }
  uint64_t consumed_total() const { return consumed_total_; }
  void compact() {
    if (begin_ == 0 || pinned_) return;
    std::memmove(mem_, mem_ + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }

 private:
  void give_back() {
    if (mem_ != nullptr) pool_->give_back(mem_);
    mem_ = nullptr;
    begin_ = end_ = 0;
  }
  void take_from(ByteBuffer& o) {
    pool_ = o.pool_;
    mem_ = std::exchange(o.mem_, nullptr);
    capacity_ = o.capacity_;
    begin_ = std::exchange(o.begin_, 0);
    end_ = std::exchange(o.end_, 0);
    committed_total_ = o.committed_total_;
    consumed_total_ = o.consumed_total_;
    pinned_ = std::exchange(o.pinned_, false);
  }

  BufferPool* pool_ = nullptr;
  char* mem_ = nullptr;
  uint32_t capacity_ = 0, begin_ = 0, end_ = 0;
  uint64_t committed_total_ = 0, consumed_total_ = 0;
  bool pinned_ = false;
};

}  // namespace sluice::proxy
