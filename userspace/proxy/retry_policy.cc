#include "proxy/retry_policy.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "model/grpc_status.h"

namespace sluice::proxy {
namespace {

bool is_status_token(std::string_view token, unsigned status) {
  unsigned value = 0;
  auto r = std::from_chars(token.data(), token.data() + token.size(), value);
  return r.ec == std::errc() && r.ptr == token.data() + token.size() && value == status;
}

// The gRPC retryOn tokens (Envoy's retry_on for gRPC) and the status each names.
std::optional<model::GrpcStatus> grpc_token_status(std::string_view token) {
  using model::GrpcStatus;
  if (token == "cancelled") return GrpcStatus::Cancelled;
  if (token == "deadline-exceeded") return GrpcStatus::DeadlineExceeded;
  if (token == "internal") return GrpcStatus::Internal;
  if (token == "resource-exhausted") return GrpcStatus::ResourceExhausted;
  if (token == "unavailable") return GrpcStatus::Unavailable;
  return std::nullopt;
}

bool grpc_token_covers(std::string_view token, const AttemptOutcome& o) {
  if (o.failure != AttemptFailure::None || !o.grpc_status) return false;
  auto status = grpc_token_status(token);
  return status && static_cast<uint32_t>(*status) == *o.grpc_status;
}

bool token_covers(std::string_view token, const AttemptOutcome& o) {
  switch (o.failure) {
    case AttemptFailure::None:
      return (token == "5xx" && o.status >= 500) ||
             (token == "gateway-error" && o.status >= 502 && o.status <= 504) ||
             (token == "retriable-4xx" && o.status == 409) || is_status_token(token, o.status);
    case AttemptFailure::ConnectFailure:
      return token == "connect-failure" || token == "5xx" || token == "gateway-error";
    case AttemptFailure::Reset:
      // HTTP/1.1 has no REFUSED_STREAM; a close before any response byte is the nearest.
      return token == "reset" || token == "refused-stream" || token == "5xx" || token == "gateway-error";
    case AttemptFailure::RefusedStream:
      // Envoy's refused-stream; its 5xx and reset cover it too.
      return token == "refused-stream" || token == "reset" || token == "5xx";
    case AttemptFailure::Timeout:
      return token == "5xx" || token == "gateway-error" || token == "reset";
  }
  return false;
}

}  // namespace

bool should_retry(const model::Retries* retries, const AttemptOutcome& o) {
  if (retries == nullptr || o.response_started || o.body_streamed) return false;
  if (o.retries_done >= retries->attempts) return false;
  if (std::any_of(retries->retry_on.begin(), retries->retry_on.end(),
                  [&](const std::string& token) { return grpc_token_covers(token, o); })) {
    return true;
  }
  bool maybe_sent = o.failure != AttemptFailure::ConnectFailure && o.failure != AttemptFailure::RefusedStream;
  if (maybe_sent && !o.idempotent) return false;
  if (o.failure == AttemptFailure::None &&
      std::find(retries->retriable_status_codes.begin(), retries->retriable_status_codes.end(), o.status) !=
          retries->retriable_status_codes.end()) {
    return true;
  }
  return std::any_of(retries->retry_on.begin(), retries->retry_on.end(),
                     [&](const std::string& token) { return token_covers(token, o); });
}

}  // namespace sluice::proxy
