// HTTP/1.1 message heads with strict RFC 9112 framing. picohttpparser
// tokenizes (request line, status line, field lines); every framing decision
// — which body follows, whether the connection persists, what is smuggling —
// is made here, so the proxy never forwards a message two parsers could read
// differently. The parsed views point into the caller's buffer: keep it alive
// and unmoved while the head is in use.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::http {

// Hard capacity of the field table; Limits::max_headers may only lower it.
inline constexpr size_t kMaxHeaderFields = 128;

struct Limits {
  size_t max_header_bytes = 16 * 1024;   // request line + fields + CRLF: 431 beyond
  size_t max_headers = 100;              // field lines: 431 beyond
  size_t max_uri_bytes = 8 * 1024;       // request-target: 414 beyond
};

struct Field {
  std::string_view name;    // as received; compare with iequals()
  std::string_view value;   // leading and trailing whitespace removed
};

enum class BodyFraming : uint8_t {
  None,            // no body follows the head
  ContentLength,   // exactly content_length bytes
  Chunked,         // chunked transfer coding, ends with the last chunk + trailers
  UntilClose,      // responses only: the body ends when the server closes
};

enum class ParseResult : uint8_t { Complete, Incomplete, Invalid };

// Why a head was refused: the status the proxy answers with (requests:
// 400/414/431/501/417; responses: always 502) and a short reason for logs.
struct ParseError {
  uint16_t status = 0;
  std::string_view reason;
};

struct RequestHead {
  std::string_view method;
  std::string_view target;      // origin-form path?query (absolute-form normalised)
  std::string_view authority;   // Host, or the authority of an absolute-form target
  int minor_version = 1;
  std::array<Field, kMaxHeaderFields> fields{};
  size_t field_count = 0;
  size_t head_bytes = 0;        // bytes of the head, through the empty line
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;
  bool keep_alive = true;
  bool expect_continue = false;
  bool absolute_form = false;   // the client sent absolute-form: ignore its Host field
  ParseError error;

  // First field with this name (case-insensitive), or empty view.
  std::string_view field(std::string_view name) const;
  bool is_idempotent() const;   // RFC 9110 9.2.2
  // As a new head, but the entries of `fields` are left as they are: none
  // past field_count is ever read, and rewriting the array would cost 4 KiB
  // of stores per message. A member added above must be reset there too.
  void reset();
};

struct ResponseHead {
  int status = 0;
  std::string_view reason;
  int minor_version = 1;
  std::array<Field, kMaxHeaderFields> fields{};
  size_t field_count = 0;
  size_t head_bytes = 0;
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;
  bool keep_alive = true;       // the server lets us reuse the connection
  ParseError error;

  std::string_view field(std::string_view name) const;
  // As RequestHead::reset: a new head, `fields` left as they are.
  void reset();
};

ParseResult parse_request_head(std::string_view buffer, const Limits& limits, RequestHead& head);

// The request rules (RFC 9110, RFC 9112 3.2 and 6) on a head whose method,
// target, minor_version and fields are set, whichever codec decoded it:
// parse_request_head calls it after tokenizing, the HTTP/2 codec on a
// stream's decoded fields (docs/l7-proxy.md, "HTTP/2 downstream"). It
// checks the method, URI length, version, field names and values, Host,
// the request-target form and the body framing, and sets authority,
// framing, content_length, keep_alive and expect_continue. A field with a
// null name is an obs-fold line (refused).
ParseResult validate_request_head(const Limits& limits, RequestHead& head);

// Decides, as bytes of a head arrive, when parsing them is worth it, so a
// head sent in many small pieces is read once instead of once per piece (a
// 15 KB head sent a byte at a time would otherwise be tokenized 15,000
// times). Each call scans only the bytes it has not seen: it answers true at
// the end of the first line (a malformed request line is refused at once),
// at each empty line (the head may be complete), once when the first line
// outgrows `max_uri_bytes` (414), and whenever the buffer reaches
// `max_header_bytes` (431/502). `stream_offset` is the stream position of
// `buffer`'s first byte (ByteBuffer::consumed_total()): when it moves, a new
// head starts and the scan starts over.
class HeadEndScanner {
 public:
  bool ready(std::string_view buffer, uint64_t stream_offset, const Limits& limits);
  void reset() { *this = HeadEndScanner{}; }
  uint64_t bytes_scanned() const { return bytes_scanned_; }   // over the scanner's life, for tests

 private:
  uint64_t stream_offset_ = UINT64_MAX;
  size_t scanned_ = 0;          // bytes of the current head already looked at
  bool first_line_ = false;     // the first LF was seen
  bool uri_checked_ = false;    // the long-first-line trigger fired
  uint64_t bytes_scanned_ = 0;
};

// `request_method` decides HEAD's bodiless responses; `limits` bound the head.
ParseResult parse_response_head(std::string_view buffer, std::string_view request_method,
                                const Limits& limits, ResponseHead& head);
// The response rules on a head whose status, minor_version and fields are
// set, whichever codec decoded it (parse_response_head; the upstream
// HTTP/2 codec): field names and values, framing (refusing every
// ambiguity), keep_alive.
ParseResult validate_response_head(std::string_view request_method, ResponseHead& head);

// ASCII case-insensitive equality; inline: the header rules call it per
// field against short lists of names, and most calls end at the size check.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i], y = b[i];
    if (x == y) continue;
    if ((x | 0x20) != (y | 0x20) || static_cast<unsigned char>((x | 0x20) - 'a') > 'z' - 'a') return false;
  }
  return true;
}
bool is_token(std::string_view s);   // RFC 9110 token (tchar+)
int hex_digit_value(char c);          // 0-15, or -1 for a non-hex character

// Fields a proxy consumes rather than forwards (RFC 9110 7.6.1), plus any
// named by the message's Connection field except the protected ones below.
bool is_hop_by_hop(std::string_view name, std::string_view connection_value);

// Fields a Connection option never removes: the framing and routing fields
// (content-length, transfer-encoding, host) and the ones the proxy itself
// reads and relays (x-request-id, x-forwarded-for, x-forwarded-proto).
// `Connection: content-length` would otherwise strip the length of a body
// that is still forwarded, and the next hop would read that body as a
// second request.
bool is_connection_protected(std::string_view name);

// A comma-separated field value (RFC 9110 5.6.1) lists `token` (case-insensitive).
bool lists_token(std::string_view list_value, std::string_view token);

// An HTTP/1.1 GET without a body asking to switch to WebSocket (RFC 6455
// 4.1): Connection lists "upgrade" and Upgrade lists "websocket".
bool is_websocket_upgrade(const RequestHead& head);
// The server's side of it: 101 with the same two fields (RFC 6455 4.2.2).
bool accepts_websocket_upgrade(const ResponseHead& head);

}  // namespace sluice::http
