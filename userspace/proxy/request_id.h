// x-request-id values the proxy generates for requests that arrive without
// one, as Envoy does by default in Istio (generate_request_id): a random
// UUID, version 4 (RFC 9562), so the backend, mirrors and the access log can
// correlate one request across hops.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace sluice::proxy {

using RequestId = std::array<char, 36>;

// Formats 128 random bits as a version-4, variant-1 UUID in lower case:
// xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx. `high` and `low` are the bits in
// order; the six version and variant bits are overwritten.
inline void format_uuid4(uint64_t high, uint64_t low, RequestId& out) {
  std::array<uint8_t, 16> bytes{};
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<uint8_t>(low >> (56 - 8 * i));
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);   // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);   // variant 10xx
  constexpr std::string_view kHex = "0123456789abcdef";
  size_t at = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[at++] = '-';
    out[at++] = kHex[bytes[i] >> 4];
    out[at++] = kHex[bytes[i] & 0x0f];
  }
}

inline std::string_view view_of(const RequestId& id) { return {id.data(), id.size()}; }

}  // namespace sluice::proxy
