#include "model/grpc_status.h"

#include <array>

namespace sluice::model {
namespace {

constexpr std::array<std::string_view, kGrpcStatusMax + 1> kNames = {
    "OK",       "CANCELLED",         "UNKNOWN",   "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS",   "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE",     "UNIMPLEMENTED",     "INTERNAL",  "UNAVAILABLE",      "DATA_LOSS",        "UNAUTHENTICATED",
};

}  // namespace

std::optional<GrpcStatus> grpc_status_from_name(std::string_view name) {
  for (uint32_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<GrpcStatus>(i);
  }
  return std::nullopt;
}

std::string_view grpc_status_name(uint32_t code) { return code < kNames.size() ? kNames[code] : std::string_view(); }

std::string_view grpc_status_names() {
  return "OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, "
         "PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, "
         "INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED";
}

GrpcStatus grpc_status_for_http(unsigned http_status) {
  switch (http_status) {
    case 400: return GrpcStatus::Internal;
    case 401: return GrpcStatus::Unauthenticated;
    case 403: return GrpcStatus::PermissionDenied;
    case 404: return GrpcStatus::Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504: return GrpcStatus::Unavailable;
    default: return GrpcStatus::Unknown;
  }
}

}  // namespace sluice::model
