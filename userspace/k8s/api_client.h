// HTTP GETs to the Kubernetes API server over libcurl: TLS with the cluster's
// CA, a bearer token or a client certificate (kubeconfig.h), and a streaming
// form for watches, whose body is one JSON event per line for as long as the
// server keeps the response open.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "k8s/kubeconfig.h"

namespace sluice::k8s {

struct ApiResponse {
  long status = 0;          // HTTP status; 0 when no response arrived
  std::string body;         // the whole body (get), or the body of a non-200 stream
  std::string error;        // transport error (connect, TLS, timeout, aborted); empty when a response came
};

class ApiClient {
 public:
  explicit ApiClient(ApiServerConfig config);

  // GET server + path_and_query, the body in full, up to `timeout_seconds`.
  ApiResponse get(const std::string& path_and_query, long timeout_seconds, const std::atomic<bool>& stop) const;

  // GET whose 200 body is a stream of newline-delimited documents: calls
  // on_line for each complete line as it arrives; on_line returning false
  // ends the request. Ends when the server closes the response, on
  // `timeout_seconds`, or within about a second of `stop` becoming true.
  ApiResponse stream(const std::string& path_and_query, long timeout_seconds,
                     const std::function<bool(std::string_view)>& on_line, const std::atomic<bool>& stop) const;

  const ApiServerConfig& config() const { return config_; }

 private:
  ApiResponse perform(const std::string& path_and_query, long timeout_seconds,
                      const std::function<bool(std::string_view)>* on_line, const std::atomic<bool>& stop) const;
  ApiServerConfig config_;
};

}  // namespace sluice::k8s
