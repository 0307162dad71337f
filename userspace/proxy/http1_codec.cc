// The HTTP/1.1 codec, between the transport and the exchange: it parses
// request heads off a client connection's bytes, writes the upstream request
// head, streams bodies in their framing both ways, and writes response heads
// and local replies. An HTTP/2 codec takes the same place (one connection,
// many streams, each stream an exchange).
#include <algorithm>
#include <charconv>
#include <climits>
#include <optional>
#include <string>

#include <re2/re2.h>

#include "http/grpc.h"
#include "http/local_response.h"
#include "model/grpc_status.h"
#include "proxy/head_writer.h"
#include "proxy/steady_time.h"
#include "proxy/worker.h"

namespace sluice::proxy {

void Worker::process_client(Conn& c) {
  if (c.in_process) return;   // the loop below on this connection will see the new state
  c.in_process = true;
  while (!c.shut && c.client_state == ClientState::AwaitingHead) {
    if (c.in.empty() && drain_held(c)) continue;
    if (c.in.empty()) {
      c.in.release();   // idle between requests: no buffer held
      if (c.peer_eof) {
        if (c.out.empty() && !c.send_inflight) close_conn(c);
        else c.client_state = ClientState::Closing;
      } else {
        set_client_deadline(c);
      }
      break;
    }
    if (c.out.space() < 8192) break;   // pipelined requests: wait until the client reads responses
    if (c.requests == 0 && c.h2_parent == kNone) {
      // HTTP/2 with prior knowledge: the connection's first bytes are the
      // preface (RFC 9113 3.3); the HTTP/2 codec takes the connection over.
      const PrefaceMatch preface = match_http2_preface(c.in.readable());
      if (preface == PrefaceMatch::Yes) {
        start_http2(c);
        break;
      }
      if (preface == PrefaceMatch::Partial) {
        if (drain_held(c)) continue;
        if (c.peer_eof) close_conn(c);
        else set_client_deadline(c);
        break;
      }
    }
    auto result = c.head_scan.ready(c.in.readable(), c.in.consumed_total(), options_.limits)
                      ? http::parse_request_head(c.in.readable(), options_.limits, request_head_)
                      : http::ParseResult::Incomplete;
    if (result == http::ParseResult::Complete &&
        !http::normalise_request_target(request_head_, c.in.readable_mut(), options_.path_normalisation)) {
      result = http::ParseResult::Invalid;   // request_head_.error: 400
    }
    if (result == http::ParseResult::Incomplete) {
      if (drain_held(c)) continue;
      if (c.peer_eof) close_conn(c);
      else set_client_deadline(c);
      break;
    }
    if (!begin_request(c, result == http::ParseResult::Complete)) break;
  }
  c.in_process = false;
}

// request_head_ holds the request, from either codec: a new exchange starts
// on the slot. An invalid head (request_head_.error) is answered and the
// connection closes after it (false).
bool Worker::begin_request(Conn& c, bool valid) {
  Exchange& x = *c.exchange;
  x.reset_for_request();
  x.start_ns = loop_now_ns();
  if (options_.access_log) log_request_head(c, valid);
  if (!valid) {
    x.client_keep_alive = false;
    reply_local(c, request_head_.error.status, request_head_.error.reason, "", true, "-");
    return false;
  }
  start_exchange(c);
  return true;
}

bool Worker::build_upstream_head(Conn& c, const http::RequestHead& head, std::string_view authority) {
  Exchange& x = *c.exchange;
  // Null where there are none, so that the per-field checks below cost nothing without them.
  const model::HeaderOperations* route_ops =
      operations_or_null(x.route != nullptr ? &x.route->headers.request : nullptr);
  const model::HeaderOperations* dest_ops =
      operations_or_null(x.destination != nullptr ? &x.destination->headers.request : nullptr);
  x.upstream_head.clear();
  HeadWriter w(x.upstream_head.writable());
  std::string_view path = head.target;
  const model::Rewrite* rewrite =
      (x.route != nullptr && x.route->rewrite) ? &*x.route->rewrite : nullptr;
  w << head.method << " ";
  if (rewrite != nullptr && !rewrite->uri.empty()) {
    // A prefix match rewrites the matched prefix; other matches the whole path (query kept).
    std::string_view rest;
    bool prefix = false;
    for (const auto& m : x.route->matches) {
      if (m.uri && m.uri->kind == model::StringMatch::Kind::Prefix && path.starts_with(m.uri->value)) {
        rest = path.substr(m.uri->value.size());
        prefix = true;
        break;
      }
    }
    if (!prefix) rest = path.substr(std::min(path.find('?'), path.size()));
    std::string_view base = rewrite->uri;
    if (base.ends_with('/') && rest.starts_with('/')) rest.remove_prefix(1);
    w << base << rest;
  } else if (rewrite != nullptr && rewrite->uri_regex && rewrite->uri_regex->regex) {
    // uriRegexRewrite, as Envoy's regex_rewrite: every match in the path
    // (the query is kept as is) replaced, with \1-style capture groups. The
    // only allocation on this path, and only for routes that ask for it.
    size_t query = std::min(path.find('?'), path.size());
    std::string rewritten(path.substr(0, query));
    RE2::GlobalReplace(&rewritten, *rewrite->uri_regex->regex, rewrite->uri_regex_rewrite);
    w << rewritten << path.substr(query);
  } else {
    w << path;
  }
  w << " HTTP/1.1\r\n";
  std::string_view host = (rewrite != nullptr && !rewrite->authority.empty()) ? std::string_view(rewrite->authority)
                                                                               : authority;
  if (!host.empty()) w.field("host", host);
  std::string_view connection = head.field("connection");
  // Headers Envoy adds, unless the route's header operations set them.
  const bool add_request_id = x.request_id_generated && !overridden(route_ops, dest_ops, "x-request-id");
  const bool append_forwarded_for =
      options_.append_forwarded_for && !overridden(route_ops, dest_ops, "x-forwarded-for");
  bool forwarded_for_written = false, client_sent_proto = false;
  for (size_t i = 0; i < head.field_count; ++i) {
    const auto& f = head.fields[i];
    client_sent_proto = client_sent_proto || (!f.value.empty() && http::iequals(f.name, "x-forwarded-proto"));
    // Framing is written below from the parsed framing, never copied.
    if (http::iequals(f.name, "host") || http::iequals(f.name, "expect") || http::iequals(f.name, "content-length") ||
        http::is_hop_by_hop(f.name, connection) || overridden(route_ops, dest_ops, f.name)) {
      continue;
    }
    if (append_forwarded_for && http::iequals(f.name, "x-forwarded-for")) {
      // Every x-forwarded-for field, in order, joined into one (RFC 9110
      // 5.3), with the client's address appended once, after the last.
      if (forwarded_for_written) continue;
      w << "x-forwarded-for: ";
      for (size_t j = i; j < head.field_count; ++j) {
        if (http::iequals(head.fields[j].name, "x-forwarded-for")) w << head.fields[j].value << ", ";
      }
      write_forwarded_address(w, c.peer_address);
      w << "\r\n";
      forwarded_for_written = true;
      continue;
    }
    w.field(f.name, f.value);
  }
  if (append_forwarded_for && !forwarded_for_written) {
    w << "x-forwarded-for: ";
    write_forwarded_address(w, c.peer_address);
    w << "\r\n";
  }
  if (x.websocket) w << "connection: upgrade\r\nupgrade: " << head.field("upgrade") << "\r\n";
  if (add_request_id) w.field("x-request-id", view_of(x.generated_request_id));
  if (!client_sent_proto && !overridden(route_ops, dest_ops, "x-forwarded-proto")) w.field("x-forwarded-proto", "http");
  write_header_operations(w, route_ops, dest_ops);
  if (head.framing == http::BodyFraming::Chunked) w << "transfer-encoding: chunked\r\n";
  else if (head.framing == http::BodyFraming::ContentLength) w << "content-length: " << head.content_length << "\r\n";
  else if (!head.field("content-length").empty()) w << "content-length: 0\r\n";
  w << "\r\n";
  if (!w.ok()) return false;
  x.upstream_head.commit(w.size());
  return true;
}

// Request body: client.in → upstream.out, as much as the upstream buffer
// takes; the body is validated while it streams and never buffered whole.
// A retry first re-sends the kept body, then goes on with what the client
// has not sent yet.
void Worker::pump_request(Conn& c) {
  if (c.client_state == ClientState::Tunneling) return pump_tunnel(c);
  Exchange& x = *c.exchange;
  if (c.upstream == kNone) return;
  Conn& u = *conns_[c.upstream];
  if (x.body_sent < x.body.size()) {
    std::string_view kept = x.body.readable().substr(x.body_sent);
    size_t n = std::min(kept.size(), u.out.space());
    u.out.append(kept.substr(0, n));
    x.body_sent += static_cast<uint32_t>(n);
    if (x.body_sent < x.body.size()) {
      submit_send(u);
      return;
    }
  }
  while (!x.request_done) {
    std::string_view avail = c.in.readable();
    size_t space = u.out.space();
    if (avail.empty() && drain_held(c)) continue;
    if (avail.empty() || space == 0) break;
    std::string_view forwarded;
    size_t consumed;
    if (x.request_framing == http::BodyFraming::ContentLength) {
      forwarded = avail.substr(0, static_cast<size_t>(std::min<uint64_t>({avail.size(), space, x.request_remaining})));
      consumed = forwarded.size();
      u.out.append(forwarded);
      x.request_remaining -= forwarded.size();
      x.request_done = x.request_remaining == 0;
    } else {
      // Chunks pass as received; trailers are filtered (docs/l7-proxy.md).
      std::span<char> out = u.out.writable().first(space);
      auto moved = x.request_chunks.forward(avail, out);
      if (x.request_chunks.failed()) {
        if (x.response_started) {
          abort_exchange(c, "DPE");   // the client's chunked body broke after the head went out
        } else {
          detach_upstream(c, false);
          end_attempt(c);
          reply_local(c, 400, x.request_chunks.error(), "", true, "-");
        }
        return;
      }
      u.out.commit(moved.written);
      forwarded = std::string_view(out.data(), moved.written);
      consumed = moved.consumed;
      x.request_done = x.request_chunks.done();
    }
    if (consumed == 0) break;   // a kept trailer line waits for room
    keep_body(c, forwarded);
    c.in.consume(consumed);
    x.request_body_sent = true;
  }
  submit_send(u);
  if (c.h2_parent != kNone) h2_stream_consumed(c);
  if (x.request_done && x.mirrors_pending) send_mirrors(c);
}

namespace {
// De-chunking a response for an HTTP/1.0 or HTTP/2 client: data into the
// client's `out`, forwarded trailer fields aside (HTTP/2 sends them as a
// trailer HEADERS frame; HTTP/1.0 has none).
struct Dechunked {
  ByteBuffer* out;
  std::string* trailers;
};
void append_to_buffer(void* context, std::string_view data) { static_cast<Dechunked*>(context)->out->append(data); }
void append_trailer(void* context, std::string_view line) {
  static_cast<Dechunked*>(context)->trailers->append(line).append("\r\n");
}
}  // namespace

// Response: upstream.in → client.out. The head is parsed strictly (broken
// framing is a 502 and the upstream connection is closed), rewritten, and the
// body streamed in its framing.
void Worker::pump_response(Conn& c) {
  if (c.client_state == ClientState::Tunneling) return pump_tunnel(c);
  Exchange& x = *c.exchange;
  if (c.upstream == kNone || c.client_state != ClientState::Proxying) return;
  Conn& u = *conns_[c.upstream];
  while (!x.response_done) {
    if (!x.response_head_done) {
      // An HTTP/2 backend's head comes decoded (h2up_response_head).
      const std::string_view method = x.head_request ? "HEAD" : "GET";
      auto result = u.h2_parent != kNone ? h2up_response_head(u, method, response_head_)
                    : u.head_scan.ready(u.in.readable(), u.in.consumed_total(), options_.limits)
                        ? http::parse_response_head(u.in.readable(), method, options_.limits, response_head_)
                        : http::ParseResult::Incomplete;
      if (result == http::ParseResult::Incomplete) {
        if (drain_held(u)) continue;
        if (u.peer_eof) fail_exchange(c, Failure::Reset);
        return;
      }
      if (result == http::ParseResult::Invalid) {
        record_outcome(x, 502);
        detach_upstream(c, false);
        end_attempt(c);
        reply_local(c, 502, "upstream sent an invalid response\n", "", false, "UPE");
        return;
      }
      const http::ResponseHead& h = response_head_;
      if (h.status == 101) {
        if (x.websocket && http::accepts_websocket_upgrade(h)) return start_tunnel(c, h);
        record_outcome(x, 502);   // switched protocols unasked, or to another protocol
        detach_upstream(c, false);
        end_attempt(c);
        reply_local(c, 502, "upstream switched protocols without a WebSocket upgrade\n", "", false, "UPE");
        return;
      }
      if (h.status < 200) {   // interim responses: the proxy answered 100-continue itself
        u.in.consume(h.head_bytes);
        continue;
      }
      record_outcome(x, static_cast<unsigned>(h.status));
      // A trailers-only gRPC response carries its grpc-status in the head.
      const std::optional<uint32_t> grpc_status =
          x.grpc ? http::parse_grpc_status(h.field("grpc-status")) : std::nullopt;
      if (retry_allowed(x, Failure::Reset, static_cast<unsigned>(h.status), true, grpc_status)) {
        retry(c);
        return;
      }
      x.status = static_cast<unsigned>(h.status);
      if (grpc_status) x.grpc_status = static_cast<int32_t>(std::min<uint32_t>(*grpc_status, INT32_MAX));
      x.upstream_keep_alive = h.keep_alive;
      x.response_framing = h.framing;
      x.response_remaining = h.content_length;
      // HTTP/1.0 has no chunked coding, HTTP/2 its own framing (DATA).
      x.dechunk = h.framing == http::BodyFraming::Chunked && (x.http10 || c.h2_parent != kNone);
      if (h.framing == http::BodyFraming::UntilClose || x.dechunk) x.client_keep_alive = false;
      if (!forward_response_head(c, u, h)) return;
      set_client_deadline(c);
    }
    std::string_view avail = u.in.readable();
    size_t space = c.out.space();
    switch (x.response_framing) {
      case http::BodyFraming::None:
        x.response_done = true;
        break;
      case http::BodyFraming::ContentLength: {
        size_t n = static_cast<size_t>(std::min<uint64_t>({avail.size(), space, x.response_remaining}));
        c.out.append(avail.substr(0, n));
        u.in.consume(n);
        x.response_remaining -= n;
        x.response_done = x.response_remaining == 0;
        break;
      }
      case http::BodyFraming::Chunked: {
        size_t n;
        if (x.dechunk) {
          Dechunked into{&c.out, &c.h2_trailers};
          n = x.response_chunks.feed(avail.substr(0, space), append_to_buffer, &into,
                                     c.h2_parent != kNone ? append_trailer : nullptr);
        } else {   // chunks pass as received; trailers are filtered (docs/l7-proxy.md)
          auto moved = x.response_chunks.forward(avail, c.out.writable().first(space));
          c.out.commit(moved.written);
          n = moved.consumed;
        }
        if (x.response_chunks.failed()) {
          x.status = 502;
          abort_exchange(c, "UPE");   // the head is already out: all we can do is close
          return;
        }
        u.in.consume(n);
        x.response_done = x.response_chunks.done();
        break;
      }
      case http::BodyFraming::UntilClose: {
        size_t n = std::min(avail.size(), space);
        c.out.append(avail.substr(0, n));
        u.in.consume(n);
        x.response_done = u.peer_eof && u.in.empty() && u.held_count == 0;
        break;
      }
    }
    if (x.response_done) break;
    if (!drain_held(u)) break;
  }
  if (u.h2_parent != kNone) h2up_stream_consumed(u);   // the backend's stream window
  submit_send(c);
  if (x.response_done) {
    finish_exchange(c);
  } else if (u.peer_eof && u.in.empty() && u.held_count == 0) {
    abort_exchange(c, "UC");   // the upstream closed inside the body: the response is truncated
  }
}

// The response head goes to the client (rewritten by write_response_head);
// the per-try timeout ends here. A head too large for the client buffer is a
// 502 instead (false).
bool Worker::forward_response_head(Conn& c, Conn& u, const http::ResponseHead& h) {
  Exchange& x = *c.exchange;
  x.upstream_service_ns = loop_now_ns() - x.attempt_start_ns;
  // An HTTP/2 client's HEADERS are built from the upstream's head itself.
  if (c.h2_parent != kNone ? !h2_submit_response_head(c, h) : !write_response_head(c, h)) {
    detach_upstream(c, false);
    end_attempt(c);
    reply_local(c, 502, "upstream response head too large\n", "", false, "UPE");
    return false;
  }
  u.in.consume(h.head_bytes);
  x.response_head_done = x.response_started = true;
  x.body_out_mark = c.out.committed_total();
  x.try_deadline_ns = 0;
  return true;
}

void Worker::response_fields(const Exchange& x, const http::ResponseHead& h, FieldFn field, void* context) {
  const model::HeaderOperations* route_ops =
      operations_or_null(x.route != nullptr ? &x.route->headers.response : nullptr);
  const model::HeaderOperations* dest_ops =
      operations_or_null(x.destination != nullptr ? &x.destination->headers.response : nullptr);
  const auto status = static_cast<unsigned>(h.status);
  std::string_view connection = h.field("connection");
  const bool keep_length = x.head_request || status == 304;   // describes a body that is not sent
  for (size_t i = 0; i < h.field_count; ++i) {
    const auto& f = h.fields[i];
    if (http::is_hop_by_hop(f.name, connection) || overridden(route_ops, dest_ops, f.name)) continue;
    if (http::iequals(f.name, "content-length") && !keep_length) continue;
    field(context, f.name, f.value);
  }
  // Envoy's: milliseconds from sending the request upstream to the response
  // head (the last attempt), which Istio users read to tell proxy from app time.
  if (x.upstream_service_ns >= 0 && !overridden(route_ops, dest_ops, "x-envoy-upstream-service-time")) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, static_cast<uint64_t>(x.upstream_service_ns / 1'000'000));
    field(context, "x-envoy-upstream-service-time", std::string_view(digits, static_cast<size_t>(r.ptr - digits)));
  }
  for_each_header_operation(route_ops, dest_ops,
                            [&](std::string_view name, std::string_view value) { field(context, name, value); });
}

std::optional<uint64_t> Worker::response_content_length(const Exchange& x, const http::ResponseHead& h) {
  const auto status = static_cast<unsigned>(h.status);
  if (h.framing == http::BodyFraming::ContentLength) return h.content_length;
  if (h.framing == http::BodyFraming::None && !x.head_request && status != 304 && status != 204) return 0;
  return std::nullopt;
}

bool Worker::write_response_head(Conn& c, const http::ResponseHead& h) {
  Exchange& x = *c.exchange;
  bool close = !x.client_keep_alive || draining_;
  auto status = static_cast<unsigned>(h.status);
  HeadWriter w(c.out.writable());
  w << "HTTP/1.1 " << uint64_t{status} << " " << (h.reason.empty() ? http::reason_phrase(status) : h.reason)
    << "\r\n";
  response_fields(
      x, h, [](void* writer, std::string_view name, std::string_view value) {
        static_cast<HeadWriter*>(writer)->field(name, value);
      },
      &w);
  if (status == 101) {   // a WebSocket upgrade: no body framing, the connection becomes a tunnel
    w << "connection: upgrade\r\nupgrade: " << h.field("upgrade") << "\r\n\r\n";
    if (!w.ok()) return false;
    c.out.commit(w.size());
    x.client_keep_alive = false;
    return true;
  }
  if (auto length = response_content_length(x, h)) w << "content-length: " << *length << "\r\n";
  else if (h.framing == http::BodyFraming::Chunked && !x.dechunk) w << "transfer-encoding: chunked\r\n";
  if (close) w << "connection: close\r\n";
  else if (x.http10) w << "connection: keep-alive\r\n";
  w << "\r\n";
  if (!w.ok()) return false;
  c.out.commit(w.size());
  if (close) x.client_keep_alive = false;
  return true;
}

void Worker::reply_local(Conn& c, unsigned status, std::string_view body, std::string_view extra_fields, bool close,
                         std::string_view flags) {
  Exchange& x = *c.exchange;
  if (x.has_body && !x.request_done) close = true;   // the unread body would be taken for a request
  if (!x.client_keep_alive || draining_) close = true;
  x.client_keep_alive = !close;
  x.flags = flags;
  x.response_started = true;
  // A gRPC client reads the outcome of a call from grpc-status, not from the
  // HTTP status: its local replies are trailers-only gRPC responses, HTTP
  // 200 with grpc-status and grpc-message in the head and no body (Envoy's
  // local replies to gRPC requests; over HTTP/1.1 the same head).
  char grpc_fields[512];
  if (x.grpc && (status >= 400 || x.local_grpc_status >= 0)) {
    const uint32_t code = x.local_grpc_status >= 0 ? static_cast<uint32_t>(x.local_grpc_status)
                                                   : static_cast<uint32_t>(model::grpc_status_for_http(status));
    HeadWriter w(grpc_fields);
    w << "content-type: application/grpc\r\ngrpc-status: " << uint64_t{code} << "\r\n";
    char message[256];
    std::string_view text = body.substr(0, body.find_last_not_of('\n') + 1);
    size_t len = http::encode_grpc_message(text, message);
    if (len > 0) w << "grpc-message: " << std::string_view(message, len) << "\r\n";
    w << extra_fields;
    if (w.ok()) {
      status = 200;
      body = {};
      extra_fields = std::string_view(grpc_fields, w.size());
      x.grpc_status = static_cast<int32_t>(code);
    }
  }
  x.status = status;
  x.local_body_bytes = x.head_request ? 0 : body.size();
  http::LocalResponse r{status, body, extra_fields, close, x.http10 && !close, x.head_request};
  size_t n = http::write_local_response(c.out.writable(), r);
  if (n == 0) {
    close_conn(c);
    return;
  }
  c.out.commit(n);
  submit_send(c);
  complete_exchange(c);
}

void Worker::reply_route_timeout(Conn& c) {
  Exchange& x = *c.exchange;
  // The client's own deadline (grpc-timeout) passed: DEADLINE_EXCEEDED, as
  // Envoy answers when a route's max_stream_duration taken from grpc-timeout
  // expires; the route's timeout is a 504, which a gRPC client reads as
  // UNAVAILABLE (grpc_status_for_http), as Envoy's router timeout is.
  if (x.grpc_deadline) x.local_grpc_status = static_cast<int32_t>(model::GrpcStatus::DeadlineExceeded);
  reply_local(c, 504, "upstream request timeout\n", "", false, "UT");
}

}  // namespace sluice::proxy
