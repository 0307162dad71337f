// The upstream HTTP/2 codec (h2c by prior knowledge), for clusters whose
// port is declared http2/grpc or whose DestinationRule says
// h2UpgradePolicy: UPGRADE. A pool's HTTP/2 connection carries many
// requests at once; each request is a stream, and each stream is an
// upstream slot of its own without a socket: the exchange writes the
// request head as HTTP/1.1 (as it would for an HTTP/1.1 backend, and keeps
// it for retries), which becomes the stream's HEADERS as the stream is
// attached (h2up_submit_request), and the body into the slot's `out`; it
// reads the response head as decoded fields
// (h2up_response_head, checked by the HTTP/1.1 response rules) and its body
// from the slot's `in`, so routing, retries, timeouts and the response
// rules are the exchange's, as for HTTP/1.1. This file turns the request
// into HEADERS/DATA frames and the response back: response bodies without
// a content-length become chunked, and the stream's trailers (gRPC's
// grpc-status) become the chunked trailer section, which the exchange
// filters as it filters HTTP/1.1 trailers. docs/l7-proxy.md, "HTTP/2
// upstream".
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

#include "http/chunked_body.h"
#include "http/local_response.h"
#include "proxy/socket_address.h"
#include "proxy/steady_time.h"
#include "proxy/worker.h"

namespace sluice::proxy {

// An upstream stream's codec state, taken from the worker's spares when
// the request is submitted and given back when the stream is forgotten,
// with its strings' capacity: a steady stream load allocates none.
struct Worker::Http2UpstreamStream {
    uint32_t slot = kNone;            // the stream's upstream slot while its attempt lives
    // Request body, read from the slot's `out` in the framing the exchange wrote.
    http::BodyFraming framing = http::BodyFraming::None;
    uint64_t remaining = 0;
    http::ChunkedBodyScanner chunks;
    // Response.
    unsigned status = 0;
    Http2DecodedFields head;          // the response head's fields (no pseudo-headers)
    std::string trailers;             // forwarded trailer lines
    bool head_done = false, chunked = false, complete = false, closed = false;
    bool empty_length = false;        // the head ended the stream without a content-length: 0 is added
    Failure failure = Failure::Reset;
    bool failed = false;
    uint32_t unacked = 0;             // DATA bytes in the slot's `in` not yet given back as window

    void reset() {
      slot = kNone;
      framing = http::BodyFraming::None;
      remaining = 0;
      chunks.reset();
      status = 0;
      head.clear();
      trailers.clear();
      head_done = chunked = complete = closed = empty_length = failed = false;
      failure = Failure::Reset;
      unacked = 0;
    }
};

void Worker::Http2UpstreamStreamDeleter::operator()(Http2UpstreamStream* st) const { delete st; }

struct Worker::Http2Upstream {
  using Stream = Http2UpstreamStream;
  Worker* worker = nullptr;
  uint32_t conn = kNone;
  nghttp2_session* session = nullptr;
  // The streams with codec state, by id (`ids[i]` is `streams[i]`'s). An
  // open stream is also its nghttp2 stream's user data, which the
  // callbacks find it by; a closed one whose response the exchange still
  // reads is found by a scan of `ids` (a connection has at most its
  // concurrent-stream limit of them).
  std::vector<int32_t> ids;
  std::vector<std::unique_ptr<Stream, Http2UpstreamStreamDeleter>> streams;
  uint32_t open_streams = 0;          // stream slots on this connection
  uint32_t started = 0;               // streams ever started (maxRequestsPerConnection)
  std::vector<int32_t> ready, ready_scratch;       // streams with response news for their exchange
  std::vector<int32_t> drained, drained_scratch;   // streams whose request bytes the session read
  std::vector<uint32_t> refused;                   // slots whose request the session would not take
  bool busy = false, flush_pending = false, failed = false, goaway = false;

  ~Http2Upstream() {
    if (session != nullptr) nghttp2_session_del(session);
  }
  // The last stream found: a header block's callbacks (one per field) and
  // a DATA frame's ask for the same stream one after the other, so most
  // lookups skip nghttp2's stream map. Cleared when the stream is forgotten.
  int32_t last_id = 0;
  Stream* last = nullptr;

  Stream* find(int32_t id) {
    if (id == last_id && last != nullptr) return last;
    Stream* found = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id));
    if (found == nullptr) {
      const auto it = std::find(ids.begin(), ids.end(), id);
      found = it == ids.end() ? nullptr : streams[static_cast<size_t>(it - ids.begin())].get();
    }
    last_id = id;
    last = found;
    return found;
  }
  // A stream's state back to the worker's spares (a bounded number).
  void forget(int32_t id) {
    if (id == last_id) last = nullptr;
    const auto it = std::find(ids.begin(), ids.end(), id);
    if (it == ids.end()) return;
    const auto i = static_cast<size_t>(it - ids.begin());
    worker->give_back(std::move(streams[i]));
    streams[i] = std::move(streams.back());
    ids[i] = ids.back();
    streams.pop_back();
    ids.pop_back();
  }
};

void Worker::give_back(std::unique_ptr<Http2UpstreamStream, Http2UpstreamStreamDeleter> st) {
  if (h2up_spare_streams_.size() >= kSpareStreams) return;
  st->reset();
  h2up_spare_streams_.push_back(std::move(st));
}

void Worker::Http2UpstreamDeleter::operator()(Http2Upstream* h) const { delete h; }

namespace {

// A response head past this is refused (the stream is reset): the same
// order as the HTTP/1.1 head limit, with room for the status line.
constexpr size_t kMaxResponseHeadBytes = 60 * 1024;

}  // namespace

// nghttp2's callbacks; user_data is the connection's Http2Upstream. They
// only move bytes and note which streams have news: the exchanges are
// followed up once the session is off the stack (h2up_receive, h2up_flush).
struct Http2UpstreamCallbacks {
  using H = Worker::Http2Upstream;
  static H& of(void* user_data) { return *static_cast<H*>(user_data); }

  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* user_data) {
    H& h = of(user_data);
    Worker::Conn& c = *h.worker->conns_[h.conn];
    if (c.shut) return NGHTTP2_ERR_CALLBACK_FAILURE;
    size_t n = std::min(length, c.out.space());
    if (n == 0) return NGHTTP2_ERR_WOULDBLOCK;
    c.out.append(std::string_view(reinterpret_cast<const char*>(data), n));
    return static_cast<ssize_t>(n);
  }

  static int header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name_data, size_t namelen,
                    const uint8_t* value_data, size_t valuelen, uint8_t, void* user_data) {
    H& h = of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    H::Stream* st = h.find(frame->hd.stream_id);
    if (st == nullptr || st->slot == kNone) return 0;
    std::string_view name(reinterpret_cast<const char*>(name_data), namelen);
    std::string_view value(reinterpret_cast<const char*>(value_data), valuelen);
    if (st->head_done) {   // trailers: passed on as the chunked trailer section, filtered as HTTP/1.1's
      if (st->chunked && !name.starts_with(':') && http::is_forwarded_trailer(name) &&
          st->trailers.size() + namelen + valuelen + 4 <= http::ChunkedBodyScanner::kMaxTrailerBytes) {
        st->trailers.append(name).append(": ").append(value).append("\r\n");
      }
      return 0;
    }
    if (name == ":status") {
      unsigned status = 0;
      std::from_chars(value.data(), value.data() + value.size(), status);
      st->status = status;
      return 0;
    }
    // nghttp2 has refused connection-specific fields and invalid names and
    // values in a response (RFC 9113 8.2); pseudo-headers are ours to drop.
    if (name.starts_with(':') || is_connection_specific(name) || name == "host") return 0;
    st->head.add(name, value);
    if (st->head.text_bytes() + 4 * st->head.size() > kMaxResponseHeadBytes) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   // the stream is reset
    }
    return 0;
  }

  // A final response head: its framing as HTTP/1.1 would carry it, for
  // the exchange (h2up_response_head).
  static void response_head(H::Stream& st, bool end_stream) {
    bool has_length = false;
    for (size_t i = 0; i < st.head.size() && !has_length; ++i) has_length = st.head.name(i) == "content-length";
    if (end_stream) st.empty_length = !has_length && st.status != 204 && st.status != 304;
    else st.chunked = !has_length;
    st.head_done = true;
  }

  static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    H& h = of(user_data);
    Worker& w = *h.worker;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      h.goaway = true;   // no new stream here; nghttp2 closes those above last_stream_id (REFUSED_STREAM)
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    H::Stream* st = h.find(frame->hd.stream_id);
    if (st == nullptr || st->slot == kNone || st->failed) return 0;
    Worker::Conn& u = *w.conns_[st->slot];
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !st->head_done) {
      if (st->status < 200) {   // an interim response: the proxy answered 100-continue itself
        st->head.clear();
        st->status = 0;
        return 0;
      }
      response_head(*st, end_stream);
    } else if (end_stream && st->chunked) {
      u.in.append("0\r\n");
      u.in.append(st->trailers);
      u.in.append("\r\n");
    }
    if (end_stream) st->complete = true;
    h.ready.push_back(frame->hd.stream_id);
    return 0;
  }

  static int data_chunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                        void* user_data) {
    H& h = of(user_data);
    Worker& w = *h.worker;
    H::Stream* st = h.find(stream_id);
    if (st == nullptr || st->slot == kNone || st->failed || !st->head_done) {
      nghttp2_session_consume(session, stream_id, len);   // nobody reads it: the window comes back at once
      return 0;
    }
    Worker::Conn& u = *w.conns_[st->slot];
    char line[24];
    size_t line_len = 0;
    if (st->chunked) {
      char* end = std::to_chars(line, line + 16, len, 16).ptr;
      end[0] = '\r';
      end[1] = '\n';
      line_len = static_cast<size_t>(end + 2 - line);
    }
    // The stream window is half of `in`; only a peer sending its body in
    // tiny frames (chunk lines add up) gets here: the stream is reset.
    if (u.in.space() < len + line_len + 2 + http::ChunkedBodyScanner::kMaxTrailerBytes / 8) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_ENHANCE_YOUR_CALM);
      nghttp2_session_consume(session, stream_id, len);
      st->failed = true;
      h.ready.push_back(stream_id);
      return 0;
    }
    if (st->chunked) u.in.append(std::string_view(line, line_len));
    u.in.append(std::string_view(reinterpret_cast<const char*>(data), len));
    if (st->chunked) u.in.append("\r\n");
    st->unacked += static_cast<uint32_t>(len);
    h.ready.push_back(stream_id);
    return 0;
  }

  static int stream_close(nghttp2_session* session, int32_t stream_id, uint32_t error_code, void* user_data) {
    H& h = of(user_data);
    H::Stream* found = h.find(stream_id);
    if (found == nullptr) return 0;
    H::Stream& st = *found;
    nghttp2_session_set_stream_user_data(session, stream_id, nullptr);   // found by `ids` from here
    if (st.slot == kNone) {   // the attempt already ended (we reset the stream)
      if (st.unacked > 0) nghttp2_session_consume_connection(session, st.unacked);
      h.forget(stream_id);
      return 0;
    }
    st.closed = true;
    if (!st.complete) {
      st.failed = true;
      // REFUSED_STREAM (also what nghttp2 reports for streams above a
      // GOAWAY's last stream id): the server processed nothing.
      st.failure = error_code == NGHTTP2_REFUSED_STREAM ? Worker::Failure::RefusedStream : Worker::Failure::Reset;
    }
    h.ready.push_back(stream_id);
    return 0;
  }

  // The request body: the bytes the exchange put into the slot's `out`
  // after the head, de-chunked if it wrote them chunked, as the stream's
  // send window allows.
  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source*, void* user_data) {
    H& h = of(user_data);
    H::Stream* st = h.find(stream_id);
    if (st == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (st->slot == kNone) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    Worker::Conn& u = *h.worker->conns_[st->slot];
    const FramedBodyRead r = read_framed_body(u.out.readable(), st->framing, st->remaining, st->chunks, buf, length);
    if (r.failed) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    u.out.consume(r.consumed);
    if (u.out.empty()) u.out.release();
    h.drained.push_back(stream_id);
    if (r.done) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (r.written == 0) {
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(r.written);
  }
};

// The first of the pool's connections that takes one more stream: under
// both its own and the peer's concurrent-stream limits, under
// maxRequestsPerConnection and maxConnectionDuration, not going away.
// Filling one connection before the next keeps their number low.
uint32_t Worker::h2up_connection_with_room(uint32_t pool) {
  const model::ConnectionPool& settings = pools_.settings(pool);
  for (uint32_t id : pools_.pool(pool).http2_connections) {
    Conn& k = *conns_[id];
    if (k.shut || !k.h2up) continue;
    const Http2Upstream& h = *k.h2up;
    if (h.goaway || h.failed || upstream_spent(k, h.started)) continue;
    const uint32_t peer = nghttp2_session_get_remote_settings(h.session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (h.open_streams >= std::min(settings.max_concurrent_streams, peer)) continue;
    return id;
  }
  return kNone;
}

void Worker::h2up_open(Conn& c, uint32_t pool) {
  const UpstreamPools::BackendKey key = pools_.backend(pools_.pool(pool).backend).key;
  Conn* u = alloc_conn(Role::Upstream);
  if (u == nullptr) count_for_pool(ProxyCounter::SlotLimitUpstreams, pool, 1);
  int fd = u == nullptr ? -1 : ::socket(key.address.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  nghttp2_session_callbacks* cb = nullptr;
  if (fd >= 0 && nghttp2_session_callbacks_new(&cb) == 0) {
    nghttp2_session_callbacks_set_send_callback(cb, Http2UpstreamCallbacks::send);
    nghttp2_session_callbacks_set_on_header_callback(cb, Http2UpstreamCallbacks::header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Http2UpstreamCallbacks::frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Http2UpstreamCallbacks::data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, Http2UpstreamCallbacks::stream_close);
    u->h2up.reset(new Http2Upstream);
    u->h2up->worker = this;
    u->h2up->conn = u->id;
    u->h2up->session = open_http2_client_session(cb, u->h2up.get(), kConnBufferSize / 2,
                                                 static_cast<uint32_t>(options_.limits.max_header_bytes),
                                                 &h2_allocator_);
    nghttp2_session_callbacks_del(cb);
  }
  if (fd < 0 || !u->h2up || u->h2up->session == nullptr) {
    if (fd >= 0) ::close(fd);
    if (u != nullptr) {
      u->h2up.reset();
      u->shut = true;
      maybe_free(*u);
    }
    fail_exchange(c, Failure::ConnectFailure);
    return;
  }
  u->fd = fd;
  u->pool = pool;
  u->upstream_state = UpstreamState::Connecting;
  u->address_len = to_sockaddr(key.address, key.port, u->address);
  pools_.add_connections(pool, 1);
  pools_.pool(pool).http2_connections.push_back(u->id);
  count_for_pool(ProxyCounter::UpstreamConnectionsOpened, pool, 1);
  count_for_pool(ProxyCounter::UpstreamConnectionsActive, pool, 1);
  set_upstream_socket_options(fd, pools_.settings(pool));
  io_uring_sqe* s = sqe();
  io_uring_prep_connect(s, fd, reinterpret_cast<sockaddr*>(&u->address), u->address_len);
  io_uring_sqe_set_data64(s, encode_user_data(Op::Connect, u->generation, u->id));
  ++u->ops;
  u->deadline = Deadline::Connect;
  u->deadline_ns = loop_now_ns() + to_ns(pools_.settings(pool).connect_timeout);
  h2up_start_stream(c, *u);
}

// The request's stream: a slot without a socket, attached to the exchange
// as an upstream connection would be; its HEADERS go out when the exchange
// has written the head (h2up_stream_output).
void Worker::h2up_start_stream(Conn& c, Conn& connection) {
  Conn* u = alloc_conn(Role::Upstream);
  if (u == nullptr) {
    count_for_pool(ProxyCounter::SlotLimitUpstreams, connection.pool, 1);
    fail_exchange(c, Failure::ConnectFailure);
    return;
  }
  Http2Upstream& h = *connection.h2up;
  ++h.open_streams;
  ++h.started;
  if (connection.deadline == Deadline::PoolIdle) connection.deadline = Deadline::None;
  u->fd = -1;
  u->h2_parent = connection.id;
  u->upstream_state = UpstreamState::Busy;
  attach_upstream(c, *u);
}


void Worker::h2up_stream_output(Conn& u) {
  Conn& connection = *conns_[u.h2_parent];
  if (connection.shut || !connection.h2up || u.h2_stream == 0) return;   // 0: the request was not taken
  nghttp2_session_resume_data(connection.h2up->session, u.h2_stream);
  h2up_schedule_flush(connection);
}

void Worker::h2up_submit_request(Conn& u, std::string_view head) {
  Conn& connection = *conns_[u.h2_parent];
  if (connection.shut || !connection.h2up) return;
  Http2Upstream& h = *connection.h2up;
  // The head the exchange wrote, back into fields; names go lower-case
  // (RFC 9113 8.2.1).
  Http2FieldList& list = h2_fields_;
  OwnRequestHead r;
  if (!split_own_request_head(head, list, r)) return;   // never: the exchange writes the head whole
  bool grpc = r.grpc;
  // gRPC servers look for it (the client's was dropped as hop-by-hop); the
  // proxy passes response trailers on, which is what it promises.
  if (grpc) list.add("te", "trailers");
  std::unique_ptr<Http2UpstreamStream, Http2UpstreamStreamDeleter> st;
  if (h2up_spare_streams_.empty()) {
    st.reset(new Http2UpstreamStream);
  } else {
    st = std::move(h2up_spare_streams_.back());
    h2up_spare_streams_.pop_back();
  }
  st->slot = u.id;
  st->framing = r.framing;
  st->remaining = r.content_length;
  nghttp2_data_provider body{};
  body.read_callback = Http2UpstreamCallbacks::read_body;
  const bool has_body = r.framing == http::BodyFraming::ContentLength ? r.content_length > 0
                                                                       : r.framing == http::BodyFraming::Chunked;
  const int32_t id = nghttp2_submit_request(h.session, nullptr, list.nva(), list.size(),
                                            has_body ? &body : nullptr, st.get());
  if (id < 0) {   // stream ids used up, or no memory: this connection takes no more
    h.goaway = true;
    h.refused.push_back(u.id);
    give_back(std::move(st));
  } else {
    u.h2_stream = id;
    h.ids.push_back(id);
    h.streams.push_back(std::move(st));
  }
  h2up_schedule_flush(connection);
}

// The stream's response head for the exchange (views into the stream's
// fields), under the rules an HTTP/1.1 head meets: framing from
// content-length, else chunked (or a length of 0 when the HEADERS ended
// the stream), and the field and byte limits counted as the HTTP/1.1 head
// would weigh. Incomplete until the HEADERS are whole.
http::ParseResult Worker::h2up_response_head(Conn& u, std::string_view request_method, http::ResponseHead& head) {
  Conn& connection = *conns_[u.h2_parent];
  if (!connection.h2up) return http::ParseResult::Incomplete;
  const Http2Upstream::Stream* st = connection.h2up->find(u.h2_stream);
  if (st == nullptr || !st->head_done) return http::ParseResult::Incomplete;
  head.reset();
  head.status = static_cast<int>(st->status);
  head.minor_version = 1;
  const size_t capacity = std::min(options_.limits.max_headers, http::kMaxHeaderFields);
  size_t n = 0, bytes = 13 + http::reason_phrase(st->status).size() + 2;   // status line, final CRLF
  bool too_many = false;
  auto add = [&](std::string_view name, std::string_view value) {
    bytes += name.size() + value.size() + 4;
    if (n == capacity) too_many = true;
    else head.fields[n++] = http::Field{name, value};
  };
  for (size_t i = 0; i < st->head.size(); ++i) add(st->head.name(i), st->head.value(i));
  if (st->chunked) add("transfer-encoding", "chunked");
  else if (st->empty_length) add("content-length", "0");
  head.field_count = n;
  if (too_many) {
    head.error = http::ParseError{502, "malformed response head"};
    return http::ParseResult::Invalid;
  }
  if (bytes > options_.limits.max_header_bytes) {
    head.error = http::ParseError{502, "response head too large"};
    return http::ParseResult::Invalid;
  }
  return http::validate_response_head(request_method, head);
}

// The exchange took response bytes from the stream's `in`: once it is
// empty, the backend may send as much again (WINDOW_UPDATE), so a slow
// client slows the backend's stream and nothing else.
void Worker::h2up_stream_consumed(Conn& u) {
  Conn& connection = *conns_[u.h2_parent];
  if (connection.shut || !connection.h2up || !u.in.empty()) return;
  Http2Upstream::Stream* st = connection.h2up->find(u.h2_stream);
  if (st == nullptr || st->unacked == 0) return;
  nghttp2_session_consume(connection.h2up->session, u.h2_stream, st->unacked);
  st->unacked = 0;
  h2up_schedule_flush(connection);
}

// A stream slot closes (the attempt ended, whole or not): a stream still
// open is reset (CANCEL), its unread bytes are given back to the
// connection's window, and the connection may take the next request.
void Worker::h2up_detach_stream(Conn& u) {
  Conn& connection = *conns_[u.h2_parent];
  if (connection.shut || !connection.h2up) return;
  Http2Upstream& h = *connection.h2up;
  --h.open_streams;
  std::erase(h.refused, u.id);
  if (Http2Upstream::Stream* found = u.h2_stream != 0 ? h.find(u.h2_stream) : nullptr) {
    Http2Upstream::Stream& st = *found;
    if (st.unacked > 0) nghttp2_session_consume_connection(h.session, st.unacked);
    st.unacked = 0;
    st.slot = kNone;
    if (st.closed) h.forget(u.h2_stream);
    else nghttp2_submit_rst_stream(h.session, NGHTTP2_FLAG_NONE, u.h2_stream, NGHTTP2_CANCEL);
  }
  h2up_schedule_flush(connection);
  h2up_after_stream(connection);
}

// A connection without streams closes when it may not take another (GOAWAY,
// maxRequestsPerConnection, maxConnectionDuration, its pool retired,
// draining), else waits for the next request up to the cluster's
// idleTimeout (and no longer than its maxConnectionDuration); queued
// requests of its pool are served.
void Worker::h2up_after_stream(Conn& connection) {
  if (connection.shut || !connection.h2up) return;
  Http2Upstream& h = *connection.h2up;
  const uint32_t pool = connection.pool;
  if (h.open_streams == 0) {
    if (draining_ || h.goaway || h.failed || upstream_spent(connection, h.started)) {
      close_conn(connection);   // serves the pool's queue
      return;
    }
    // Already idle (a reload revisits it): the idle start stays, the timeout may be new.
    if (connection.deadline != Deadline::PoolIdle) connection.idle_since_ns = loop_now_ns();
    connection.deadline = Deadline::PoolIdle;
    connection.deadline_ns = pool_idle_deadline(connection);
  }
  if (!draining_) serve_pending(pool);
}

void Worker::h2up_schedule_flush(Conn& connection) {
  Http2Upstream& h = *connection.h2up;
  if (h.busy) {
    h.flush_pending = true;
  } else {
    h2_scheduled_.emplace_back(connection.id, connection.generation);
  }
}

void Worker::h2up_receive(Conn& c) {
  Http2Upstream& h = *c.h2up;
  h.busy = true;
  while (!c.shut && !h.failed) {
    std::string_view data = c.in.readable();
    if (data.empty()) {
      if (drain_held(c)) continue;
      break;
    }
    ssize_t n = nghttp2_session_mem_recv(h.session, reinterpret_cast<const uint8_t*>(data.data()), data.size());
    if (n < 0) {   // a connection error: nghttp2 queued its GOAWAY; every stream fails
      h.failed = true;
      c.in.consume(data.size());
      break;
    }
    c.in.consume(static_cast<size_t>(n));
  }
  if (c.in.empty()) c.in.release();
  h.busy = false;
  if (c.shut) return;
  // The streams with news, now that the session is off the stack: their
  // exchanges read the response, or fail the attempt.
  h.ready_scratch.swap(h.ready);
  h.ready.clear();
  for (int32_t id : h.ready_scratch) {
    Http2Upstream::Stream* st = h.find(id);
    if (st == nullptr || st->slot == kNone) continue;
    Conn& u = *conns_[st->slot];
    if (u.shut || u.client == kNone) continue;
    Conn& client = *conns_[u.client];
    if (st->failed && st->failure == Failure::RefusedStream && !client.exchange->response_head_done) {
      fail_exchange(client, Failure::RefusedStream);
    } else if (st->failed) {
      on_peer_eof(u);   // no head yet: a reset (retryable); inside the body: truncated
    } else {
      pump_response(client);
    }
    if (c.shut) break;
  }
  h.ready_scratch.clear();
  if (c.shut) return;
  if (h.failed) {
    close_conn(c);
    return;
  }
  h2up_flush(c);
}

// Frames out, as much as the connection's `out` takes (as the downstream
// codec's h2_flush); request bodies are read from the streams' slots here
// and their exchanges asked for more once the session is off the stack.
void Worker::h2up_flush(Conn& c) {
  if (!c.h2up || c.shut) return;
  Http2Upstream& h = *c.h2up;
  const bool sent = h2_send_rounds(
      c, h,
      [this](Conn& u) {
        if (u.client == kNone) return;
        Conn& client = *conns_[u.client];
        if (client.client_state == ClientState::Proxying) pump_request(client);
      },
      [this, &c, &h] {
        // Requests the session would not take (stream ids used up, no memory): their exchanges fail over.
        while (!h.refused.empty() && !c.shut) {
          Conn& u = *conns_[h.refused.back()];
          h.refused.pop_back();
          if (!u.shut && u.client != kNone) fail_exchange(*conns_[u.client], Failure::RefusedStream);
        }
      });
  if (!sent) return;
  submit_send(c);
  if (!nghttp2_session_want_read(h.session) && !nghttp2_session_want_write(h.session)) {
    h.goaway = true;   // the session is over (GOAWAY both ways)
    if (h.open_streams == 0) close_conn(c);
  }
}

// The connection closes (connect failure or timeout, the backend's close,
// a protocol error): each stream's attempt fails as an HTTP/1.1 one would
// — a connect failure before the connection was up, else a reset before
// the response head (a truncated response after it); a response already
// whole in the stream's `in` still completes.
void Worker::h2up_close_streams(Conn& c) {
  Http2Upstream& h = *c.h2up;
  const bool connecting = c.upstream_state == UpstreamState::Connecting;
  std::vector<uint32_t> slots;
  for (auto& st : h.streams) {
    if (st->slot != kNone) slots.push_back(st->slot);
    st->slot = kNone;
  }
  slots.insert(slots.end(), h.refused.begin(), h.refused.end());
  h.refused.clear();
  for (uint32_t slot : slots) {
    Conn& u = *conns_[slot];
    if (u.shut) continue;
    if (u.client == kNone) {
      close_conn(u);
      continue;
    }
    Conn& client = *conns_[u.client];
    if (connecting) {
      fail_exchange(client, Failure::ConnectFailure);
    } else {
      on_peer_eof(u);
    }
  }
}

}  // namespace sluice::proxy
