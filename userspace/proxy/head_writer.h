// Writing HTTP/1.1 heads into a fixed buffer, and the header operations
// (a route's or destination's set/add/remove) the codec applies while it
// writes them. Shared by the request and response sides of the codec and by
// the exchange (redirect locations).
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message_head.h"
#include "model/snapshot.h"

namespace sluice::proxy {

// Appends pieces into a fixed span; remembers if anything did not fit.
class HeadWriter {
 public:
  explicit HeadWriter(std::span<char> out) : out_(out) {}
  HeadWriter& operator<<(std::string_view s) {
    if (!ok_ || s.size() > out_.size() - len_) {
      ok_ = false;
      return *this;
    }
    std::memcpy(out_.data() + len_, s.data(), s.size());
    len_ += s.size();
    return *this;
  }
  HeadWriter& operator<<(uint64_t n) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, n);
    return *this << std::string_view(digits, static_cast<size_t>(r.ptr - digits));
  }
  void field(std::string_view name, std::string_view value) { *this << name << ": " << value << "\r\n"; }
  bool ok() const { return ok_; }
  size_t size() const { return len_; }

 private:
  std::span<char> out_;
  size_t len_ = 0;
  bool ok_ = true;
};

inline bool listed(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return http::iequals(n, name); });
}

inline bool listed(const std::vector<std::pair<std::string, std::string>>& pairs, std::string_view name) {
  return std::any_of(pairs.begin(), pairs.end(), [&](const auto& p) { return http::iequals(p.first, name); });
}

// `ops`, or null when it has no operation (most routes): the checks below
// then return at once.
inline const model::HeaderOperations* operations_or_null(const model::HeaderOperations* ops) {
  return ops != nullptr && !ops->empty() ? ops : nullptr;
}

// Field removed or replaced by a route's (or destination's) header operations.
inline bool overridden(const model::HeaderOperations* a, const model::HeaderOperations* b, std::string_view name) {
  if (a == nullptr && b == nullptr) return false;
  for (const auto* ops : {a, b}) {
    if (ops != nullptr && (listed(ops->remove, name) || listed(ops->set, name))) return true;
  }
  return false;
}

// The fields header operations add, in order: each set, then each add.
template <typename Fn>
void for_each_header_operation(const model::HeaderOperations* a, const model::HeaderOperations* b, Fn&& field) {
  for (const auto* ops : {a, b}) {
    if (ops == nullptr) continue;
    for (const auto& [name, value] : ops->set) field(name, value);
    for (const auto& [name, value] : ops->add) field(name, value);
  }
}

inline void write_header_operations(HeadWriter& w, const model::HeaderOperations* a, const model::HeaderOperations* b) {
  for_each_header_operation(a, b, [&](std::string_view name, std::string_view value) { w.field(name, value); });
}

// A client's address as x-forwarded-for carries it: the IP alone (no port,
// no brackets), as Envoy writes it.
inline void write_forwarded_address(HeadWriter& w, const model::IpAddress& ip) {
  std::array<char, model::IpAddress::kMaxText> text;
  w << ip.format(text);
}

}  // namespace sluice::proxy
