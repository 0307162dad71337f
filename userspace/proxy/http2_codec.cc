// The HTTP/2 codec (h2c by prior knowledge), beside the HTTP/1.1 one: a
// client connection that opens with the HTTP/2 preface gets an nghttp2
// server session, and each of its streams becomes a client slot of its own,
// without a socket, carrying one exchange. The stream's decoded fields fill
// the exchange's request head directly, checked by the same request rules
// as an HTTP/1.1 head (http::validate_request_head), then path
// normalisation, header rules, routing, retries, faults and timeouts apply
// as to an HTTP/1.1 request; its body goes into the slot's `in` (chunked
// when it has no content-length). What the exchange writes into the slot's
// `out` (an HTTP/1.1 response) leaves as HEADERS and DATA frames, read as
// the stream's send window allows. docs/l7-proxy.md, "HTTP/2 downstream".
#include <algorithm>
#include <charconv>
#include <cstring>
#include <span>
#include <string>
#include <memory>
#include <vector>

#include "http/path_normalisation.h"
#include "proxy/steady_time.h"
#include "proxy/worker.h"

namespace sluice::proxy {

// A client stream's codec state. Taken from the worker's spares when the
// request's HEADERS begin and given back when nghttp2 closes the stream,
// with its strings' capacity: a steady stream load allocates none.
struct Worker::Http2ClientStream : Http2RequestBlock {
    uint32_t slot = kNone;              // the stream's client slot while it lives
    uint32_t live_index = 0;            // where it is in its connection's `live`
    bool response_submitted = false, eof_sent = false;
    uint32_t unacked = 0;               // body bytes in the slot's `in` not yet given back as window
    std::string trailers;               // the response's trailer lines, once the slot has closed

    void reset() {
      slot = kNone;
      clear();
      response_submitted = eof_sent = false;
      unacked = 0;
      trailers.clear();
    }
};

void Worker::Http2ClientStreamDeleter::operator()(Http2ClientStream* st) const { delete st; }

struct Worker::Http2Connection {
  using Stream = Http2ClientStream;
  Worker* worker = nullptr;
  uint32_t conn = kNone;
  nghttp2_session* session = nullptr;
  // The streams that have codec state, each also the nghttp2 stream's user
  // data (find).
  std::vector<std::unique_ptr<Stream, Http2ClientStreamDeleter>> live;
  std::vector<int32_t> drained, drained_scratch;   // streams whose `out` the session read from
  bool busy = false, flush_pending = false, failed = false, scheduled = false;
  ClientResetWindow resets;
  size_t block_bytes = 0;   // decoded bytes of the header block being received

  ~Http2Connection() {
    if (session != nullptr) nghttp2_session_del(session);
  }
  // A closed stream's state goes back to the worker's spares (a bounded
  // number: the rest is freed).
  void release(Stream& st) {
    const uint32_t i = st.live_index;
    auto owned = std::move(live[i]);
    if (i + 1 != live.size()) {
      live[i] = std::move(live.back());
      live[i]->live_index = i;
    }
    live.pop_back();
    if (worker->h2_spare_streams_.size() < kSpareStreams) {
      owned->reset();
      worker->h2_spare_streams_.push_back(std::move(owned));
    }
  }
  Stream* find(int32_t id) { return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id)); }
};

void Worker::Http2ConnectionDeleter::operator()(Http2Connection* h) const { delete h; }

// nghttp2's callbacks; user_data is the connection's Http2Connection.
struct Http2Callbacks {
  using H = Worker::Http2Connection;
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

  static int begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    H& h = of(user_data);
    h.block_bytes = 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      std::unique_ptr<H::Stream, Worker::Http2ClientStreamDeleter> st;
      auto& spares = h.worker->h2_spare_streams_;
      if (spares.empty()) {
        st.reset(new H::Stream);
      } else {
        st = std::move(spares.back());
        spares.pop_back();
      }
      st->live_index = static_cast<uint32_t>(h.live.size());
      nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, st.get());
      h.live.push_back(std::move(st));
    }
    return 0;
  }

  static int header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name_data, size_t namelen,
                    const uint8_t* value_data, size_t valuelen, uint8_t, void* user_data) {
    H& h = of(user_data);
    const Worker& w = *h.worker;
    // A header block that decodes to far more than the limit (HPACK indexes
    // expand: one byte can name a 4 KiB table entry) ends the connection:
    // decoding it is the cost an attacker wants the proxy to pay.
    h.block_bytes += namelen + valuelen + 32;
    if (h.block_bytes > 4 * size_t{w.options_.http2.max_header_list_bytes}) {
      nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    H::Stream* st = h.find(frame->hd.stream_id);
    if (st == nullptr || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;   // trailers: dropped
    st->add(std::string_view(reinterpret_cast<const char*>(name_data), namelen),
            std::string_view(reinterpret_cast<const char*>(value_data), valuelen),
            w.options_.http2.max_header_list_bytes, w.options_.limits.max_headers);
    return 0;
  }

  static int frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    H& h = of(user_data);
    Worker& w = *h.worker;
    if (frame->hd.type == NGHTTP2_RST_STREAM && !count_client_reset(session, h.resets, w.options_.http2, w.loop_now_ns())) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;   // GOAWAY is queued; nothing more is read
    }
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    H::Stream* st = h.find(frame->hd.stream_id);
    if (st == nullptr) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      w.h2_open_stream(h, frame->hd.stream_id, end_stream);
      return 0;
    }
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) && end_stream && st->slot != kNone) {
      Worker::Conn& s = *w.conns_[st->slot];
      if (st->chunked) s.in.append("0\r\n\r\n");   // the stream's end is the body's
      w.h2_feed_stream(s);
    }
    return 0;
  }

  static int data_chunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                        void* user_data) {
    H& h = of(user_data);
    Worker& w = *h.worker;
    H::Stream* st = h.find(stream_id);
    if (st == nullptr || st->slot == kNone) {
      nghttp2_session_consume(session, stream_id, len);   // nobody reads it: the window comes back at once
      return 0;
    }
    Worker::Conn& s = *w.conns_[st->slot];
    std::string_view bytes(reinterpret_cast<const char*>(data), len);
    char line[24];
    size_t line_len = 0;
    if (st->chunked) {
      char* end = std::to_chars(line, line + 16, len, 16).ptr;
      end[0] = '\r';
      end[1] = '\n';
      line_len = static_cast<size_t>(end + 2 - line);
    }
    if (s.in.space() < len + line_len + 2) {
      // Only a client sending a body in tiny frames gets here (the window
      // is half the buffer): the stream is refused, not buffered further.
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_ENHANCE_YOUR_CALM);
      nghttp2_session_consume(session, stream_id, len);
      return 0;
    }
    if (st->chunked) s.in.append(std::string_view(line, line_len));
    s.in.append(bytes);
    if (st->chunked) s.in.append("\r\n");
    st->unacked += static_cast<uint32_t>(len);
    w.h2_feed_stream(s);
    return 0;
  }

  static int stream_close(nghttp2_session* session, int32_t stream_id, uint32_t, void* user_data) {
    H& h = of(user_data);
    Worker& w = *h.worker;
    H::Stream* st = h.find(stream_id);
    if (st == nullptr) return 0;
    const uint32_t slot = st->slot;
    if (st->unacked > 0) nghttp2_session_consume_connection(session, st->unacked);
    nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
    if (slot != kNone) w.conns_[slot]->h2_client_stream = nullptr;
    h.release(*st);
    if (slot == kNone) return 0;
    Worker::Conn& s = *w.conns_[slot];
    if (s.shut) return 0;
    // The client reset the stream, or it closed before its response ended.
    if (s.client_state == Worker::ClientState::Closing || s.client_state == Worker::ClientState::AwaitingHead) {
      w.close_conn(s);
    } else {
      w.abort_exchange(s, "DC");
    }
    return 0;
  }

  // A stream's response body: the bytes the exchange put into the slot's
  // `out` (de-chunked; after a local reply's head), as the stream's window allows.
  // The body's end: END_STREAM on the last DATA, or the trailers (an
  // upstream's chunked trailer section, gRPC's grpc-status) as a HEADERS
  // frame after it.
  static void end_body(H& h, nghttp2_session* session, int32_t stream_id, H::Stream& st,
                       const std::string& trailers, uint32_t* flags) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    st.eof_sent = true;
    if (trailers.empty()) return;
    // Names lower-cased (RFC 9113 8.2.1), values trimmed; the worker's
    // list is reused, so a gRPC response's trailers (grpc-status on every
    // one) allocate nothing once it has held a few.
    Http2FieldList& list = h.worker->h2_trailer_fields_;
    list.clear();
    const std::string_view t = trailers;
    for (size_t line = 0; line < t.size();) {
      const size_t end = t.find("\r\n", line);
      const size_t colon = t.find(':', line);
      if (end == std::string_view::npos || colon == std::string_view::npos || colon > end) break;
      size_t value = colon + 1;
      while (value < end && (t[value] == ' ' || t[value] == '\t')) ++value;
      size_t value_end = end;
      while (value_end > value && (t[value_end - 1] == ' ' || t[value_end - 1] == '\t')) --value_end;
      list.add(t.substr(line, colon - line), t.substr(value, value_end - value));
      line = end + 2;
    }
    if (list.size() > 0 && nghttp2_submit_trailer(session, stream_id, list.nva(), list.size()) == 0) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }

  static ssize_t read_body(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source*, void* user_data) {
    H& h = of(user_data);
    Worker& w = *h.worker;
    H::Stream* st = h.find(stream_id);
    if (st == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (st->slot == kNone) {   // the exchange ended whole and its bytes are all out
      end_body(h, session, stream_id, *st, st->trailers, flags);
      return 0;
    }
    Worker::Conn& s = *w.conns_[st->slot];
    std::string_view out = s.out.readable();
    size_t n = std::min(length, out.size());
    if (n > 0) std::memcpy(buf, out.data(), n);
    s.out.consume(n);
    if (s.out.empty()) s.out.release();
    h.drained.push_back(stream_id);
    if (s.client_state == Worker::ClientState::Closing && s.out.empty()) {
      end_body(h, session, stream_id, *st, s.h2_trailers, flags);
    } else if (n == 0) {
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  // The response's HEADERS; the body (unless `done`: END_STREAM on the
  // HEADERS) is DATA read from the slot's `out` by read_body.
  static bool submit_response(H& h, H::Stream& st, int32_t id, Http2FieldList& list, bool done) {
    nghttp2_data_provider body{};
    body.read_callback = read_body;
    if (nghttp2_submit_response(h.session, id, list.nva(), list.size(), done ? nullptr : &body) != 0) return false;
    st.response_submitted = true;
    st.eof_sent = done;
    return true;
  }
};

void Worker::start_http2(Conn& c) {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) {
    close_conn(c);
    return;
  }
  nghttp2_session_callbacks_set_send_callback(cb, Http2Callbacks::send);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, Http2Callbacks::begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, Http2Callbacks::header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Http2Callbacks::frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Http2Callbacks::data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Http2Callbacks::stream_close);
  c.h2.reset(new Http2Connection);
  c.h2->worker = this;
  c.h2->conn = c.id;
  c.h2->session = open_http2_server_session(cb, c.h2.get(), options_.http2, &h2_allocator_);
  nghttp2_session_callbacks_del(cb);
  if (c.h2->session == nullptr) {
    close_conn(c);
    return;
  }
  c.client_state = ClientState::Http2;
  c.deadline = Deadline::None;
  h2_receive(c);
}

void Worker::h2_receive(Conn& c) {
  Http2Connection& h = *c.h2;
  h.busy = true;
  while (!c.shut && !h.failed) {
    std::string_view data = c.in.readable();
    if (data.empty()) {
      if (drain_held(c)) continue;
      break;
    }
    ssize_t n = nghttp2_session_mem_recv(h.session, reinterpret_cast<const uint8_t*>(data.data()), data.size());
    if (n < 0) {
      // A connection error (bad preface, flood, protocol violation):
      // nghttp2 has queued its GOAWAY when it could; nothing more is read.
      h.failed = true;
      c.in.consume(data.size());
      break;
    }
    c.in.consume(static_cast<size_t>(n));
  }
  if (c.in.empty()) c.in.release();
  h.busy = false;
  if (c.shut) return;
  if (h.failed) {
    h2_close_streams(c);
    h2_flush(c);
    if (!c.shut) {
      c.client_state = ClientState::Closing;
      set_client_deadline(c);
      if (c.out.empty() && !c.send_inflight) close_conn(c);
    }
    return;
  }
  h2_flush(c);
}

// Frames out, as much as the connection's `out` takes; nghttp2 keeps the
// rest (one frame at most: the send callback takes part of it) and the
// next flush, after the send completes, goes on. Bodies are read from the
// streams' slots here, and what read them is followed up once the session
// is no longer on the stack: a drained slot gets more of its response, a
// finished one is closed.
void Worker::h2_flush(Conn& c) {
  if (!c.h2 || c.shut) return;
  Http2Connection& h = *c.h2;
  const bool sent = h2_send_rounds(
      c, h,
      [this](Conn& s) {
        if (s.client_state == ClientState::Closing && s.out.empty()) close_conn(s);
        else if (s.client_state == ClientState::Proxying) pump_response(s);
      },
      [] {});
  if (!sent) return;
  submit_send(c);
  if (c.client_state == ClientState::Http2 && !nghttp2_session_want_read(h.session) &&
      !nghttp2_session_want_write(h.session)) {
    // GOAWAY sent (by us or the client) and every stream done.
    h2_close_streams(c);
    c.client_state = ClientState::Closing;
    set_client_deadline(c);
    if (c.out.empty() && !c.send_inflight) close_conn(c);
    return;
  }
  if (c.client_state == ClientState::Http2) {
    if (h.live.empty()) {
      if (c.deadline != Deadline::Idle) {
        c.deadline = Deadline::Idle;
        c.deadline_ns = loop_now_ns() + to_ns(options_.idle_timeout);
      }
    } else {
      c.deadline = Deadline::None;
    }
  }
}

// A new slot for the stream, whose exchange starts on the decoded request.
void Worker::h2_open_stream(Http2Connection& h, int32_t id, bool end_stream) {
  Conn& c = *conns_[h.conn];
  Http2Connection::Stream& st = *h.find(id);
  if (st.too_large) {
    const nghttp2_nv nv[] = {{(uint8_t*)":status", (uint8_t*)"431", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_response(h.session, id, nv, 1, nullptr);
    return;
  }
  Conn* s = draining_ ? nullptr : alloc_conn(Role::Client);
  if (s == nullptr) {
    if (!draining_) metrics_.add(ProxyCounter::SlotLimitStreams, listener_spec(c.listener).service_host, "");
    nghttp2_submit_rst_stream(h.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
    return;
  }
  s->fd = -1;
  s->listener = c.listener;
  s->local_address = c.local_address;
  s->local_port = c.local_port;
  s->peer_address = c.peer_address;
  s->peer_port = c.peer_port;
  s->client_namespace = c.client_namespace;
  s->client_namespace_generation = c.client_namespace_generation;
  s->h2_parent = c.id;
  s->h2_stream = id;
  s->h2_client_stream = &st;
  st.slot = s->id;
  // nghttp2 made sure :method, :path (but for CONNECT) and :scheme are
  // there; a request without :authority may carry host instead.
  const bool valid = st.to_request_head(end_stream, options_.limits, options_.path_normalisation, request_head_);
  begin_request(*s, valid);
  // The exchange copied what it keeps; the strings keep their capacity.
  st.method.clear();
  st.path.clear();
  st.authority.clear();
  st.cookie.clear();
  st.fields.clear();
}

void Worker::h2_feed_stream(Conn& s) {
  if (!s.shut && s.client_state == ClientState::Proxying) pump_request(s);
}

namespace {

void add_status(Http2FieldList& list, unsigned status) {
  char digits[3];
  const unsigned code = status % 1000;
  digits[0] = static_cast<char>('0' + code / 100);
  digits[1] = static_cast<char>('0' + code / 10 % 10);
  digits[2] = static_cast<char>('0' + code % 10);
  list.add(":status", std::string_view(digits, 3));
}

}  // namespace

// A forwarded response head straight into HEADERS: the fields the HTTP/1.1
// codec would write (response_fields), with no HTTP/1.1 text in between.
// The head says whether a body follows (a bodiless one, a trailers-only
// gRPC response among them, is one HEADERS frame with END_STREAM).
bool Worker::h2_submit_response_head(Conn& s, const http::ResponseHead& r) {
  Conn& c = *conns_[s.h2_parent];
  if (c.shut || !c.h2) return true;   // the stream is ending with its connection
  Http2Connection& h = *c.h2;
  Http2Connection::Stream* st = s.h2_client_stream;
  if (st == nullptr || st->response_submitted) return true;
  Http2FieldList& list = h2_fields_;
  list.clear();
  add_status(list, static_cast<unsigned>(r.status));
  response_fields(
      *s.exchange, r,
      [](void* fields, std::string_view name, std::string_view value) {
        static_cast<Http2FieldList*>(fields)->add_forwarded(name, value);
      },
      &list);
  if (auto length = response_content_length(*s.exchange, r)) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, *length).ptr;
    list.add("content-length", std::string_view(digits, static_cast<size_t>(end - digits)));
  }
  if (!Http2Callbacks::submit_response(h, *st, s.h2_stream, list, r.framing == http::BodyFraming::None)) return false;
  h2_schedule_flush(c);
  return true;
}

// The exchange wrote into the stream's `out`: a local reply's head becomes
// HEADERS (a forwarded head already has: h2_submit_response_head), the
// rest is DATA read by Http2Callbacks::read_body.
void Worker::h2_stream_output(Conn& s) {
  Conn& c = *conns_[s.h2_parent];
  if (c.shut || !c.h2) return;
  Http2Connection& h = *c.h2;
  Http2Connection::Stream* st = s.h2_client_stream;
  if (st == nullptr) return;
  if (!st->response_submitted) {   // a local reply, written as HTTP/1.1 (http::write_local_response)
    const Exchange& x = *s.exchange;
    http::Limits limits = options_.limits;
    limits.max_header_bytes = s.out.size();
    limits.max_headers = 1000;   // our own head: parsed whole
    auto result = http::parse_response_head(s.out.readable(), x.head_request ? "HEAD" : "GET", limits,
                                            response_head_);
    if (result != http::ParseResult::Complete) return;   // the head is written whole: not yet here
    const http::ResponseHead& r = response_head_;
    Http2FieldList& list = h2_fields_;
    list.clear();
    add_status(list, static_cast<unsigned>(r.status));
    for (size_t i = 0; i < r.field_count; ++i) list.add_forwarded(r.fields[i].name, r.fields[i].value);
    // A response whose head says it has no body ends with its HEADERS
    // (END_STREAM): a trailers-only gRPC response is one HEADERS frame.
    const bool bodiless = r.framing == http::BodyFraming::None ||
                          (r.framing == http::BodyFraming::ContentLength && r.content_length == 0);
    s.out.consume(r.head_bytes);
    const bool done = (s.client_state == ClientState::Closing || bodiless) && s.out.empty();
    if (!Http2Callbacks::submit_response(h, *st, s.h2_stream, list, done)) {
      close_conn(s);
      return;
    }
  } else {
    nghttp2_session_resume_data(h.session, s.h2_stream);
  }
  h2_schedule_flush(c);
}

// The exchange took body bytes from the stream's `in`: once it is empty,
// the client may send as much again (WINDOW_UPDATE for stream and
// connection).
void Worker::h2_stream_consumed(Conn& s) {
  Conn& c = *conns_[s.h2_parent];
  if (c.shut || !c.h2 || !s.in.empty()) return;
  Http2Connection::Stream* st = s.h2_client_stream;
  if (st == nullptr || st->unacked == 0) return;
  nghttp2_session_consume(c.h2->session, s.h2_stream, st->unacked);
  st->unacked = 0;
  h2_schedule_flush(c);
}

// A stream's slot closes: after a whole response its END_STREAM goes out
// (now, or once the last DATA is read); any other way, the client gets
// RST_STREAM.
void Worker::h2_detach_stream(Conn& s) {
  Conn& c = *conns_[s.h2_parent];
  if (c.shut || !c.h2) return;
  Http2Connection& h = *c.h2;
  Http2Connection::Stream* st = s.h2_client_stream;
  if (st == nullptr || st->slot != s.id) return;
  st->slot = kNone;
  s.h2_client_stream = nullptr;
  st->trailers = std::move(s.h2_trailers);
  if (s.client_state == ClientState::Closing && st->response_submitted && s.out.empty()) {
    if (!st->eof_sent) nghttp2_session_resume_data(h.session, s.h2_stream);
  } else {
    nghttp2_submit_rst_stream(h.session, NGHTTP2_FLAG_NONE, s.h2_stream, NGHTTP2_INTERNAL_ERROR);
  }
  h2_schedule_flush(c);
}

void Worker::h2_schedule_flush(Conn& c) {
  Http2Connection& h = *c.h2;
  if (h.busy) {
    h.flush_pending = true;   // the flush on the stack goes round again
  } else if (!h.scheduled) {
    h.scheduled = true;
    h2_scheduled_.emplace_back(c.id, c.generation);
  }
}

void Worker::h2_flush_scheduled() {
  while (!h2_scheduled_.empty()) {
    h2_scheduled_scratch_.swap(h2_scheduled_);
    for (auto [id, generation] : h2_scheduled_scratch_) {
      Conn* c = live(id, generation);
      if (c == nullptr) continue;
      if (c->h2up) {
        h2up_flush(*c);   // upstream connections share the schedule (http2_upstream.cc)
        continue;
      }
      if (!c->h2) continue;
      c->h2->scheduled = false;
      h2_flush(*c);
    }
    h2_scheduled_scratch_.clear();
  }
}

// The connection ends (closed, failed, or GOAWAY done): every stream's
// exchange ends with it.
void Worker::h2_close_streams(Conn& c) {
  if (!c.h2) return;
  std::vector<uint32_t> slots;
  for (auto& st : c.h2->live) {
    if (st->slot != kNone) {
      slots.push_back(st->slot);
      conns_[st->slot]->h2_client_stream = nullptr;
    }
    st->slot = kNone;
  }
  for (uint32_t slot : slots) {
    Conn& s = *conns_[slot];
    if (s.shut) continue;
    if (s.client_state == ClientState::Closing || s.client_state == ClientState::AwaitingHead) close_conn(s);
    else abort_exchange(s, "DC");
  }
}

// Draining: GOAWAY (no error) on every HTTP/2 connection; streams already
// open finish, then the connection closes (h2_flush).
void Worker::h2_goaway_all() {
  for (auto& conn : conns_) {
    if (!conn || conn->role != Role::Client || conn->shut || conn->client_state != ClientState::Http2) continue;
    Conn& c = *conn;
    nghttp2_submit_goaway(c.h2->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c.h2->session),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    h2_flush(c);
  }
}

}  // namespace sluice::proxy
