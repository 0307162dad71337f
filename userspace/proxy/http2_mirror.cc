// A mirror to an HTTP/2 cluster (a port declared http2/grpc, or
// h2UpgradePolicy: UPGRADE): as an HTTP/1.1 mirror does, it gets a
// connection of its own and sends one request, but as one stream of an h2c
// session (prior knowledge), since such a backend (a gRPC server) may speak
// nothing else. The request is the exchange's upstream head (Host
// "<host>-shadow") split back into fields, and the request body as kept
// for mirrors, de-chunked if it was chunked; the backend's frames are read
// so that its SETTINGS, PINGs and window updates are answered, and its
// response is dropped. The connection closes when the stream has ended (or
// at the mirror's 10-second bound). docs/l7-proxy.md, "Mirrors".
#include <algorithm>

#include "proxy/http2_session.h"
#include "proxy/worker.h"

namespace sluice::proxy {

struct Worker::Http2Mirror {
  Worker* worker = nullptr;
  uint32_t slot = kNone;
  nghttp2_session* session = nullptr;
  int32_t stream = 0;
  OwnRequestHead head;             // the body's framing and length
  uint64_t remaining = 0;          // content-length bytes still to send
  http::ChunkedBodyScanner chunks;   // a chunked body, de-chunked into DATA
  bool ended = false;              // the stream closed (the response, or a reset)

  ~Http2Mirror() {
    if (session != nullptr) nghttp2_session_del(session);
  }
};

void Worker::Http2MirrorDeleter::operator()(Http2Mirror* m) const { delete m; }

struct Http2MirrorCallbacks {
  using M = Worker::Http2Mirror;
  static M& of(void* user_data) { return *static_cast<M*>(user_data); }

  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* user_data) {
    M& m = of(user_data);
    Worker::Conn& u = *m.worker->conns_[m.slot];
    const size_t n = std::min(length, u.out.space());
    if (n == 0) return NGHTTP2_ERR_WOULDBLOCK;
    u.out.append(std::string_view(reinterpret_cast<const char*>(data), n));
    return static_cast<ssize_t>(n);
  }

  // The response is nobody's: its DATA is dropped and the window given back.
  static int data_chunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t*, size_t len,
                        void*) {
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }

  static int stream_close(nghttp2_session*, int32_t stream_id, uint32_t, void* user_data) {
    M& m = of(user_data);
    if (stream_id == m.stream) m.ended = true;
    return 0;
  }

  // The kept body, from the mirror's own copy, in its framing undone.
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source*, void* user_data) {
    M& m = of(user_data);
    Worker::Exchange& mx = *m.worker->conns_[m.slot]->exchange;
    const std::string_view avail = mx.body.readable().substr(std::min<size_t>(mx.body_sent, mx.body.size()));
    const FramedBodyRead r = read_framed_body(avail, m.head.framing, m.remaining, m.chunks, buf, length);
    if (r.failed) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    mx.body_sent += static_cast<uint32_t>(r.consumed);
    // All of the body is in the copy: if nothing came of what is left, it
    // was cut short (the exchange kept only what fitted), so the stream ends.
    if (r.done || avail.empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(r.written);
  }
};

bool Worker::h2mirror_open(Conn& u) {
  auto m = std::unique_ptr<Http2Mirror, Http2MirrorDeleter>(new Http2Mirror);
  m->worker = this;
  m->slot = u.id;
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return false;
  nghttp2_session_callbacks_set_send_callback(cb, Http2MirrorCallbacks::send);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Http2MirrorCallbacks::data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Http2MirrorCallbacks::stream_close);
  m->session = open_http2_client_session(cb, m.get(), kConnBufferSize / 2,
                                         static_cast<uint32_t>(options_.limits.max_header_bytes), &h2_allocator_);
  nghttp2_session_callbacks_del(cb);
  if (m->session == nullptr) return false;
  // The head mirror_request wrote into `out` (Host "<host>-shadow",
  // "connection: close", which HTTP/2 leaves out); its frames replace it.
  Http2FieldList& list = h2_fields_;
  if (!split_own_request_head(u.out.readable(), list, m->head)) return false;
  if (m->head.grpc) list.add("te", "trailers");
  m->remaining = m->head.content_length;
  const bool has_body = m->head.framing == http::BodyFraming::ContentLength ? m->head.content_length > 0
                                                                            : m->head.framing == http::BodyFraming::Chunked;
  nghttp2_data_provider body{};
  body.read_callback = Http2MirrorCallbacks::read_body;
  m->stream = nghttp2_submit_request(m->session, nullptr, list.nva(), list.size(), has_body ? &body : nullptr, nullptr);
  if (m->stream < 0) return false;
  u.out.clear();
  u.exchange->body_sent = 0;
  u.h2mirror = std::move(m);
  return true;
}

void Worker::h2mirror_receive(Conn& u) {
  Http2Mirror& m = *u.h2mirror;
  const std::string_view in = u.in.readable();
  const ssize_t n = nghttp2_session_mem_recv(m.session, reinterpret_cast<const uint8_t*>(in.data()), in.size());
  if (n < 0) {
    close_conn(u);
    return;
  }
  u.in.consume(static_cast<size_t>(n));
  if (u.in.empty()) u.in.release();
  h2mirror_flush(u);
}

void Worker::h2mirror_flush(Conn& u) {
  if (u.shut || !u.h2mirror) return;
  Http2Mirror& m = *u.h2mirror;
  if (m.ended) {   // the response (or a reset) ended the stream: nothing more to say
    close_conn(u);
    return;
  }
  if (nghttp2_session_send(m.session) != 0) {
    close_conn(u);
    return;
  }
  submit_send(u);
}

}  // namespace sluice::proxy
