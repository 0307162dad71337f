// Responses the proxy writes itself (errors, 404 on no route, direct
// responses, redirects, injected aborts), written into a caller's buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace sluice::http {

std::string_view reason_phrase(unsigned status);

struct LocalResponse {
  unsigned status = 200;
  std::string_view body;
  std::string_view extra_fields;   // complete "name: value\r\n" lines
  bool close = false;              // adds "connection: close"
  bool http10_keep_alive = false;  // adds "connection: keep-alive" for an HTTP/1.0 client
  bool head_request = false;       // HEAD: the same fields, no body bytes
};

// Returns the bytes written, or 0 if `out` is too small.
size_t write_local_response(std::span<char> out, const LocalResponse& response);

}  // namespace sluice::http
