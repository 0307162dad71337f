// gRPC status codes (grpc/doc/statuscodes.md): their names as Istio's
// HTTPFaultInjection.Abort.grpcStatus spells them, and the HTTP status a
// local reply's gRPC status is derived from (Envoy's
// Grpc::Utility::httpToGrpcStatus, after grpc/doc/http-grpc-status-mapping.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::model {

enum class GrpcStatus : uint32_t {
  Ok = 0,
  Cancelled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
};
inline constexpr uint32_t kGrpcStatusMax = 16;

// "UNAVAILABLE" -> 14. Upper case only, as the gRPC code names are written
// (Istio reads the string with the same table).
std::optional<GrpcStatus> grpc_status_from_name(std::string_view name);
// 14 -> "UNAVAILABLE"; "" for a code past kGrpcStatusMax.
std::string_view grpc_status_name(uint32_t code);
// Every name, comma-separated, for error messages.
std::string_view grpc_status_names();

// The gRPC status a gRPC client gets for a local reply of HTTP status
// `http_status` when no gRPC status was chosen: 400 INTERNAL, 401
// UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504
// UNAVAILABLE, anything else UNKNOWN.
GrpcStatus grpc_status_for_http(unsigned http_status);

}  // namespace sluice::model
