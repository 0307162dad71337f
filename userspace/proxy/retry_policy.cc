#include "proxy/retry_policy.h"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace sluice::proxy {
namespace {

bool is_status_token(std::string_view token, unsigned status) {
  unsigned value = 0;
  auto r = std::from_chars(token.data(), token.data() + token.size(), value);
  return r.ec == std::errc() && r.ptr == token.data() + token.size() && value == status;
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
