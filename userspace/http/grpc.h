// gRPC over HTTP/2 as a proxy sees it (grpc/doc/PROTOCOL-HTTP2.md): which
// requests are gRPC, the grpc-timeout request header, the grpc-status
// response field, and the grpc-message text of a local reply.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace sluice::http {

// content-type "application/grpc", alone or followed by "+proto", "+json",
// ";..." (Envoy's Grpc::Common::isGrpcRequestHeaders). "application/grpc-web"
// is another protocol and is not gRPC here.
bool is_grpc_content_type(std::string_view content_type);

// grpc-timeout: 1 to 8 ASCII digits and one unit, H M S m u n (hours,
// minutes, seconds, milliseconds, microseconds, nanoseconds), in nanoseconds.
// nullopt for anything else (empty, a sign, spaces, 9 digits, no or another
// unit), which the proxy ignores as Envoy does: a malformed header gives no
// deadline rather than an arbitrary one. 99999999H does not fit in int64
// nanoseconds and saturates.
std::optional<int64_t> parse_grpc_timeout(std::string_view value);

// A grpc-status field: 1 to 10 digits whose value fits uint32. Codes past 16
// are kept (a server may send them; clients read them as UNKNOWN).
std::optional<uint32_t> parse_grpc_status(std::string_view value);

// grpc-message is percent-encoded (PROTOCOL-HTTP2.md, "Responses"): bytes
// outside 0x20..0x7E and '%' become %XX. Returns the encoded size, or 0 if
// `out` is too small (the message is then left out).
size_t encode_grpc_message(std::string_view text, std::span<char> out);

}  // namespace sluice::http
