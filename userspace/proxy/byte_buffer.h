// A fixed-capacity byte buffer owned by a connection slot: allocated when
// the slot is first used and kept for its next occupants, so requests never
// allocate. Data lives in [begin, end); space is reclaimed by compact().
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace sluice::proxy {

class ByteBuffer {
 public:
  void allocate(uint32_t capacity) {
    if (capacity_ == capacity) return;
    mem_ = std::make_unique<char[]>(capacity);
    capacity_ = capacity;
    clear();
  }
  void clear() {
    begin_ = end_ = 0;
    pinned_ = false;
  }
  std::string_view readable() const { return {mem_.get() + begin_, end_ - begin_}; }
  // The same bytes, writable: a request's target is normalised in place.
  std::span<char> readable_mut() { return {mem_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  // Free bytes for append: after compacting, unless a send in flight reads
  // from this buffer (the kernel may re-read it until the send completes).
  size_t space() const { return pinned_ ? capacity_ - end_ : capacity_ - size(); }
  void pin(bool pinned) { pinned_ = pinned; }
  std::span<char> writable() {
    compact();
    return {mem_.get() + end_, capacity_ - end_};
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
    if (s.size() > space()) return false;
    auto w = writable();
    std::memcpy(w.data(), s.data(), s.size());
    commit(s.size());
    return true;
  }
  // Bytes ever committed / consumed, for per-request byte counts.
  uint64_t committed_total() const { return committed_total_; }
  uint64_t consumed_total() const { return consumed_total_; }
  void compact() {
    if (begin_ == 0 || pinned_) return;
    std::memmove(mem_.get(), mem_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }

 private:
  std::unique_ptr<char[]> mem_;
  uint32_t capacity_ = 0, begin_ = 0, end_ = 0;
  uint64_t committed_total_ = 0, consumed_total_ = 0;
  bool pinned_ = false;
};

}  // namespace sluice::proxy
