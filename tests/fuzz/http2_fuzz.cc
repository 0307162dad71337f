// libFuzzer target: the HTTP/2 downstream as a client drives it — the
// client connection preface, then the input as the client's frames, into
// an nghttp2 server session made with the proxy's own limits
// (open_http2_server_session), each request stream's header block kept as
// the codec keeps it (Http2RequestBlock::add) and turned into the exchange's
// request head (Http2RequestBlock::to_request_head), as http2_codec.cc does.
// Checked: every head the proxy would route meets the HTTP/1.1 rules the
// rest of the proxy relies on (token names, values without CR/LF/NUL, one
// host, one framing), and a refused one carries an error status.
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string_view>

#include "http/message_head.h"
#include "proxy/http2_session.h"

namespace {

using sluice::proxy::Http2RequestBlock;

void check(bool ok) {
  if (!ok) std::abort();
}

struct Connection {
  std::map<int32_t, Http2RequestBlock> streams;
  sluice::http::Limits limits;
  sluice::proxy::Http2Limits h2;
  sluice::http::RequestHead head;
};

Connection& of(void* user_data) { return *static_cast<Connection*>(user_data); }

void check_head(const sluice::http::RequestHead& head, const Http2RequestBlock& block) {
  size_t hosts = 0, lengths = 0, chunked = 0;
  check(head.field_count <= sluice::http::kMaxHeaderFields);
  for (size_t i = 0; i < head.field_count; ++i) {
    const auto& f = head.fields[i];
    check(sluice::http::is_token(f.name));
    for (char c : f.value) check(c != '\r' && c != '\n' && c != '\0');
    hosts += sluice::http::iequals(f.name, "host");
    lengths += sluice::http::iequals(f.name, "content-length");
    chunked += sluice::http::iequals(f.name, "transfer-encoding");
  }
  check(hosts <= 1);
  check(lengths + chunked <= 1);   // exactly one framing, or none
  check(block.chunked == (chunked == 1));
  check(!head.keep_alive);
  check(!head.target.empty());
  check(head.target.size() <= block.path.size() || block.path.empty());
  // Visible ASCII only, no fragment (http::validate_request_head).
  for (char c : head.target) check(static_cast<unsigned char>(c) > ' ' && static_cast<unsigned char>(c) < 0x7f && c != '#');
}

int begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    of(user_data).streams[frame->hd.stream_id].clear();
  return 0;
}

int header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen, const uint8_t* value,
           size_t valuelen, uint8_t, void* user_data) {
  Connection& c = of(user_data);
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto it = c.streams.find(frame->hd.stream_id);
  if (it == c.streams.end()) return 0;
  it->second.add({reinterpret_cast<const char*>(name), namelen}, {reinterpret_cast<const char*>(value), valuelen},
                 c.h2.max_header_list_bytes, c.limits.max_headers);
  return 0;
}

int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  Connection& c = of(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto it = c.streams.find(frame->hd.stream_id);
  if (it == c.streams.end()) return 0;
  Http2RequestBlock& block = it->second;
  if (block.too_large) return 0;   // answered 431 by the codec
  const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (block.to_request_head(end_stream, c.limits, sluice::http::PathNormalisation::MergeSlashes, c.head)) {
    check_head(c.head, block);
  } else {
    check(c.head.error.status >= 400 && c.head.error.status < 600);
  }
  return 0;
}

int stream_close(nghttp2_session*, int32_t stream_id, uint32_t, void* user_data) {
  of(user_data).streams.erase(stream_id);
  return 0;
}

ssize_t send(nghttp2_session*, const uint8_t*, size_t length, int, void*) { return static_cast<ssize_t>(length); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static nghttp2_session_callbacks* callbacks = [] {
    nghttp2_session_callbacks* cb = nullptr;
    check(nghttp2_session_callbacks_new(&cb) == 0);
    nghttp2_session_callbacks_set_send_callback(cb, send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, stream_close);
    return cb;
  }();
  static sluice::proxy::Http2Allocator allocator;
  Connection c;
  c.limits.max_headers = 32;
  c.limits.max_header_bytes = 4096;
  c.limits.max_uri_bytes = 1024;
  c.h2.max_header_list_bytes = 4096;
  nghttp2_session* session = sluice::proxy::open_http2_server_session(callbacks, &c, c.h2, &allocator);
  check(session != nullptr);
  const auto& preface = sluice::proxy::kHttp2Preface;
  bool alive = nghttp2_session_mem_recv(session, reinterpret_cast<const uint8_t*>(preface.data()), preface.size()) >= 0;
  // In pieces, as reads deliver it: the first byte alone, then the rest.
  if (alive && size > 0) alive = nghttp2_session_mem_recv(session, data, 1) >= 0;
  if (alive && size > 1) alive = nghttp2_session_mem_recv(session, data + 1, size - 1) >= 0;
  if (alive) nghttp2_session_send(session);
  nghttp2_session_del(session);
  return 0;
}
