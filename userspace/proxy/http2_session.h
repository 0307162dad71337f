// The HTTP/2 server session a client connection gets when it opens with the
// HTTP/2 connection preface (h2c by prior knowledge): libnghttp2's session,
// made with the limits that keep one connection from costing the proxy
// more than its share (docs/l7-proxy.md, "HTTP/2 downstream").
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/chunked_body.h"
#include "http/message_head.h"
#include "http/path_normalisation.h"

namespace sluice::proxy {

// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 3.4).
inline constexpr std::string_view kHttp2Preface{NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN};

enum class PrefaceMatch : uint8_t { No, Partial, Yes };

// Whether a connection's first bytes are the HTTP/2 preface: Partial while
// they are a proper prefix of it (wait for more).
inline PrefaceMatch match_http2_preface(std::string_view first_bytes) {
  const size_t n = first_bytes.size() < kHttp2Preface.size() ? first_bytes.size() : kHttp2Preface.size();
  if (first_bytes.substr(0, n) != kHttp2Preface.substr(0, n)) return PrefaceMatch::No;
  return n == kHttp2Preface.size() ? PrefaceMatch::Yes : PrefaceMatch::Partial;
}

// Memory for one worker's nghttp2 sessions (nghttp2_mem): the blocks a
// session allocates and frees for every stream and frame (stream state,
// frame items, header tables, up to 4 KiB) come from free lists of eight
// sizes, kept per worker (its sessions are used on its thread only), each
// list holding at most kMaxFreeBytesPerSize (1 MiB for the eight) so
// memory goes back after a burst; larger blocks come from malloc. A session must be deleted before
// the allocator it was made with.
class Http2Allocator {
 public:
  Http2Allocator();
  ~Http2Allocator();
  Http2Allocator(const Http2Allocator&) = delete;
  Http2Allocator& operator=(const Http2Allocator&) = delete;

  nghttp2_mem* mem() { return &mem_; }
  size_t free_blocks() const;   // on the free lists (for tests)

  static constexpr size_t kSizes = 8;                // 32, 64, ..., 4096 bytes
  static constexpr size_t kMaxFreeBytesPerSize = 128 * 1024;
  static constexpr size_t max_free_blocks(size_t block_bytes) { return kMaxFreeBytesPerSize / block_bytes; }

  void* allocate(size_t size);
  void release(void* block);
  void* reallocate(void* block, size_t size);

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  FreeBlock* free_[kSizes] = {};
  size_t free_count_[kSizes] = {};
  nghttp2_mem mem_;
};

struct Http2Limits {
  // SETTINGS_MAX_CONCURRENT_STREAMS: a HEADERS opening one more is answered
  // RST_STREAM(REFUSED_STREAM) by nghttp2.
  uint32_t max_concurrent_streams = 100;
  // SETTINGS_MAX_HEADER_LIST_SIZE (advertised; enforced by the codec as the
  // HTTP/1.1 head limit is: the stream is refused).
  uint32_t max_header_list_bytes = 16 * 1024;
  // Per-stream receive window. A stream's request body waits in a 64 KiB
  // buffer, in HTTP/1.1 chunked framing when it has no content-length; half
  // of it leaves room for the chunk lines of a body sent in small frames.
  uint32_t stream_window = 32 * 1024;
  uint32_t connection_window = 1024 * 1024;
  // CVE-2023-44487 (rapid reset): opening a stream and cancelling it at
  // once costs the client two frames and the proxy a routed, dispatched
  // request. More than `max_client_resets` RST_STREAM from the client in a
  // window of `reset_window_ms` ends the connection with
  // GOAWAY(ENHANCE_YOUR_CALM) (count_client_reset).
  uint32_t max_client_resets = 100;
  uint32_t reset_window_ms = 10'000;
  // CVE-2024-27316-style CONTINUATION floods: more CONTINUATION frames than
  // this after one HEADERS ends the connection.
  size_t max_continuations = 8;
  // SETTINGS entries per frame, and SETTINGS/PING acknowledgements the
  // client has not read yet (a flood of them): past either, GOAWAY.
  size_t max_settings_entries = 32;
  size_t max_outbound_acks = 100;
};

// The client's RST_STREAM frames in the current window (fixed windows: at
// most twice the limit can pass across a window boundary).
struct ClientResetWindow {
  int64_t start_ns = 0;
  uint32_t count = 0;
};

// Counts one RST_STREAM from the client. Past the limit the session is
// terminated (GOAWAY ENHANCE_YOUR_CALM queued) and false is returned: the
// caller stops reading the connection.
bool count_client_reset(nghttp2_session* session, ClientResetWindow& window, const Http2Limits& limits,
                        int64_t now_ns);

// A server session over `callbacks` (which must at least send), with the
// options and the first SETTINGS above queued. Null if nghttp2 fails.
nghttp2_session* open_http2_server_session(const nghttp2_session_callbacks* callbacks, void* user_data,
                                           const Http2Limits& limits, Http2Allocator* allocator = nullptr);

// A client session for an upstream HTTP/2 connection (h2c by prior
// knowledge): window updates are manual (nghttp2_session_consume, as the
// exchange takes the response from a stream's buffer), the stream window is
// `stream_window`, push is refused, and SETTINGS_MAX_CONCURRENT_STREAMS of
// the peer is read back by the pool. Null if nghttp2 fails.
nghttp2_session* open_http2_client_session(const nghttp2_session_callbacks* callbacks, void* user_data,
                                           uint32_t stream_window, uint32_t max_header_list_bytes,
                                           Http2Allocator* allocator = nullptr);

// A HEADERS frame's field list as it is built from a head the proxy holds
// (no HTTP/1.1 text in between): names lower-cased (RFC 9113 8.2.1),
// connection-specific fields (RFC 9113 8.2.2) left out, names and values
// copied, so a piece may be a temporary. Kept by the worker and reused:
// building allocates nothing once it has seen a large head.
//
// Fields whose value is new in every message (a request id, a trace or
// span id, the upstream's service time) go out as HPACK literals "never
// indexed" (RFC 7541 6.2.3): indexed, each would take a dynamic-table
// entry that no later message uses, evict one that would have been used,
// and lengthen the encoder's search of the table for every field after it.
class Http2FieldList {
 public:
  void clear() {
    text_.clear();
    at_.clear();
  }
  // A pseudo-header (":status", ":method"...) or a field of the proxy's own.
  void add(std::string_view name, std::string_view value) { append(name, value, false); }
  // A field passed on from the other side: left out if RFC 9113 8.2.2
  // names it connection-specific (or it is `host`, with `drop_host`).
  void add_forwarded(std::string_view name, std::string_view value, bool drop_host = false) {
    append(name, value, true, drop_host);
  }
  // The list for nghttp2_submit_*, valid until the next change.
  const nghttp2_nv* nva();
  size_t size() const { return at_.size(); }

 private:
  struct At {
    uint32_t name, name_len, value, value_len;
    bool never_index;
  };
  void append(std::string_view name, std::string_view value, bool forwarded, bool drop_host = false);
  std::string text_;
  std::vector<At> at_;
  std::vector<nghttp2_nv> nva_;
};

// What an HTTP/2 request stream needs of a head besides its fields.
struct OwnRequestHead {
  size_t head_bytes = 0;
  http::BodyFraming framing = http::BodyFraming::None;
  uint64_t content_length = 0;
  bool grpc = false;
};

// A head build_upstream_head wrote, split into `list` (pseudo-headers
// first, then the fields but Host) without the checks a received head needs:
// the proxy wrote every byte of it, from a head it validated, the route's
// checked configuration (docs/operations.md, "Config input") and fields of
// its own; one field per line as "name: value", Host right after the request
// line, the framing once, from the parsed framing. False until the head is
// whole (the exchange writes it at once, so in practice never).
bool split_own_request_head(std::string_view text, Http2FieldList& list, OwnRequestHead& r);

// A request body as an HTTP/2 stream's DATA: the next bytes of `avail`,
// which hold the body in the framing the exchange wrote it in
// (content-length: `remaining` bytes still to come; chunked: decoded by
// `chunks`), into `buf` (at most `length` bytes, a data provider's frame).
struct FramedBodyRead {
  size_t written = 0;    // bytes into `buf`
  size_t consumed = 0;   // bytes of `avail` used up
  bool done = false;     // the body's end was reached
  bool failed = false;   // the chunked framing is broken
};
FramedBodyRead read_framed_body(std::string_view avail, http::BodyFraming framing, uint64_t& remaining,
                                http::ChunkedBodyScanner& chunks, uint8_t* buf, size_t length);

// A header block's fields as nghttp2 decoded them, kept for the exchange:
// each name and its value back to back in one string, located by offsets
// (views are made when asked for, so the string may grow meanwhile). Kept
// with its stream and reused: it allocates nothing once it has held a
// large block.
class Http2DecodedFields {
 public:
  void add(std::string_view name, std::string_view value) {
    at_.push_back({static_cast<uint32_t>(text_.size()), static_cast<uint32_t>(name.size()),
                   static_cast<uint32_t>(value.size())});
    text_.append(name).append(value);
  }
  void clear() {
    text_.clear();
    at_.clear();
  }
  size_t size() const { return at_.size(); }
  size_t text_bytes() const { return text_.size(); }
  std::string_view name(size_t i) const { return {text_.data() + at_[i].at, at_[i].name_len}; }
  std::string_view value(size_t i) const { return {text_.data() + at_[i].at + at_[i].name_len, at_[i].value_len}; }

 private:
  struct At {
    uint32_t at, name_len, value_len;
  };
  std::string text_;
  std::vector<At> at_;
};

// A client stream's request header block as the codec keeps it while
// nghttp2 decodes it (nghttp2 has validated names, values and pseudo-
// headers, and refused the connection-specific fields), and the exchange's
// request head made from it. Reused: clear() keeps the capacity.
struct Http2RequestBlock {
  std::string method, path, authority;
  std::string cookie;                 // cookie crumbs, joined (RFC 9113 8.2.3)
  Http2DecodedFields fields;          // the other request fields
  size_t header_bytes = 0, header_count = 0;
  bool too_large = false;             // over a limit: answered 431, nothing more is kept
  bool chunked = false;               // the body goes to the exchange in chunked framing

  void clear();
  // One decoded field, counted as RFC 9113 6.5.2 weighs it against
  // `max_header_list_bytes` and against `max_headers` fields; past either
  // the block is too_large. "te" and "expect" mean nothing upstream and
  // other pseudo-headers are dropped.
  void add(std::string_view name, std::string_view value, uint32_t max_header_list_bytes, size_t max_headers);
  // The request as the exchange's request head (views into the block's
  // strings), under the rules an HTTP/1.1 head meets: :authority is the
  // host (a host field beside it is dropped), cookie crumbs are one field,
  // a body without content-length is chunked, and the limits count the head
  // as its HTTP/1.1 form would weigh (request line, fields, the
  // "connection: close" of one request per stream); then the request rules
  // (http::validate_request_head) and path normalisation. False: head.error
  // says why.
  bool to_request_head(bool end_stream, const http::Limits& limits, http::PathNormalisation normalisation,
                       http::RequestHead& head);
};

// ASCII 'A'..'Z' to lower case in place (RFC 9113 8.2.1's field names);
// other bytes, non-ASCII ones included, are kept.
void lower_ascii_in_place(char* p, size_t n);

// RFC 9113 8.2.2's connection-specific fields, by lower-case name.
bool is_connection_specific(std::string_view lower_name);

}  // namespace sluice::proxy
