// libFuzzer target: the request framing path as the proxy runs it — parse a
// request head with every limit, then stream the rest through the body
// decoder its framing chose — and check the invariants the proxy relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <string>

#include "http/chunked_body.h"
#include "http/message_head.h"
#include "http/path_normalisation.h"

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
  for (char c : head.target) check(static_cast<unsigned char>(c) > ' ' && static_cast<unsigned char>(c) < 0x7f && c != '#');
  check(head.minor_version == 0 || head.minor_version == 1);
  for (size_t i = 0; i < head.field_count; ++i) check(is_token(head.fields[i].name));
  // The head scanner, fed the input a byte at a time, asks for a parse at
  // a prefix that holds the whole head.
  {
    HeadEndScanner scanner;
    static RequestHead prefix_head;
    bool found = false;
    for (size_t n = 1; n <= head.head_bytes && !found; ++n) {
      std::string_view prefix = input.substr(0, n);
      found = scanner.ready(prefix, 0, limits) &&
              parse_request_head(prefix, limits, prefix_head) == ParseResult::Complete;
    }
    check(found);
  }
  // Path normalisation only shortens the target, keeps it origin-form,
  // leaves the query alone and leaves no dot segment behind.
  for (auto mode : {PathNormalisation::Base, PathNormalisation::MergeSlashes,
                    PathNormalisation::DecodeAndMergeSlashes}) {
    auto out = normalised(head.target, mode);
    if (!out) continue;
    check(out->size() <= head.target.size());
    if (head.target.front() != '/') continue;
    size_t q = head.target.find('?');
    std::string_view query = q == std::string_view::npos ? std::string_view() : head.target.substr(q);
    check(out->front() == '/' && std::string_view(*out).ends_with(query));
    std::string_view path = std::string_view(*out).substr(0, out->size() - query.size());
    check(path.find("/./") == std::string_view::npos && path.find("/../") == std::string_view::npos);
    check(!path.ends_with("/.") && !path.ends_with("/.."));
    check(normalised(*out, mode) == out);   // idempotent
  }
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
    // Forwarding reads the same bytes and writes no more than it read.
    ChunkedBodyScanner forwarder;
    static std::string out;
    out.assign(body.size() + 2, '\0');
    auto moved = forwarder.forward(body, out);
    check(moved.consumed == consumed && moved.written <= moved.consumed);
    check(forwarder.done() == scanner.done() && forwarder.failed() == scanner.failed());
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
