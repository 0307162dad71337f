// When the proxy retries a request (Istio HTTPRetry / Envoy retry_on), as a
// pure function of the route's policy and what happened to the attempt.
#pragma once

#include <cstdint>
#include <optional>

#include "model/snapshot.h"

namespace sluice::proxy {

enum class AttemptFailure : uint8_t {
  None,             // a response head arrived: judge its status
  ConnectFailure,   // the connection to the upstream failed: nothing was sent
  Reset,            // the upstream closed or reset before a response head
  Timeout,          // perTryTimeout expired before a response head
  RefusedStream,    // an HTTP/2 upstream refused the stream (REFUSED_STREAM, GOAWAY): nothing was processed
};

struct AttemptOutcome {
  AttemptFailure failure = AttemptFailure::None;
  unsigned status = 0;             // with AttemptFailure::None
  // With AttemptFailure::None, for a gRPC request: the grpc-status of a
  // trailers-only response (in its head), which the gRPC retryOn tokens
  // (cancelled, deadline-exceeded, internal, resource-exhausted,
  // unavailable) are matched against.
  std::optional<uint32_t> grpc_status;
  uint32_t retries_done = 0;
  bool idempotent = false;         // RFC 9110 9.2.2
  bool body_streamed = false;      // request body bytes already went upstream (not kept for replay)
  bool response_started = false;   // bytes of a response already went to the client
};

// True if `retries` asks for another attempt. Never retries once the client
// saw response bytes, once a streamed body is gone, or a non-idempotent
// request that may have reached the upstream (anything but a connect
// failure) — except on a gRPC status token: every gRPC call is a POST, and
// the server's own status says whether a new attempt is in order (as Envoy
// retries gRPC calls whatever their method).
bool should_retry(const model::Retries* retries, const AttemptOutcome& outcome);

}  // namespace sluice::proxy
