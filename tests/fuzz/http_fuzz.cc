// libFuzzer target: the request framing path as the proxy runs it — parse a
// request head with every limit, then stream the rest through the body
// decoder its framing chose — and check the invariants the proxy relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/chunked_body.h"
#include "http/message_head.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::http;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Limits limits;
  limits.max_header_bytes = 4096;
  limits.max_headers = 32;
  limits.max_uri_bytes = 1024;
  static RequestHead head;
  auto result = parse_request_head(input, limits, head);
  if (result == ParseResult::Invalid) {
    check(head.error.status >= 400 && head.error.status < 600);
    return 0;
  }
  if (result != ParseResult::Complete) return 0;
  // A complete head lies inside the input, within the limits, and frames
  // its body exactly one way.
  check(head.head_bytes > 0 && head.head_bytes <= size && head.head_bytes <= limits.max_header_bytes);
  check(head.field_count <= limits.max_headers);
  check(!head.target.empty() && head.target.size() <= limits.max_uri_bytes);
  check(head.minor_version == 0 || head.minor_version == 1);
  for (size_t i = 0; i < head.field_count; ++i) check(is_token(head.fields[i].name));
  std::string_view body = input.substr(head.head_bytes);
  if (head.framing == BodyFraming::Chunked) {
    check(head.field("content-length").empty());
    ChunkedBodyScanner scanner;
    uint64_t decoded = 0;
    size_t consumed = scanner.feed(
        body, [](void* ctx, std::string_view d) { *static_cast<uint64_t*>(ctx) += d.size(); }, &decoded);
    check(consumed <= body.size());
    check(decoded == scanner.body_bytes());
    if (scanner.done()) check(decoded + 5 <= consumed);   // at least "0\r\n\r\n" besides data
  } else if (head.framing == BodyFraming::ContentLength) {
    check(head.content_length > 0);
  }
  // Responses too: the same bytes as an upstream response head.
  static ResponseHead response;
  if (parse_response_head(input, "GET", limits, response) == ParseResult::Complete) {
    check(response.head_bytes <= size);
    check(!(response.framing == BodyFraming::UntilClose && response.keep_alive));
  }
  return 0;
}
