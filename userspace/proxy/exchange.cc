// The exchange: one request and its response, whatever codec carried it.
// Routing and the endpoint pick, fault injection, mirrors, dispatch to an
// upstream pool, retries with back-off, the outcome for outlier detection,
// and the request's metrics and access-log line when it ends.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <limits>
#include <span>

#include "http/grpc.h"
#include "model/grpc_status.h"
#include "proxy/head_writer.h"
#include "proxy/retry_policy.h"
#include "proxy/socket_address.h"
#include "proxy/steady_time.h"
#include "proxy/worker.h"

namespace sluice::proxy {

void Worker::start_exchange(Conn& c) {
  Exchange& x = *c.exchange;
  const http::RequestHead& head = request_head_;
  refresh_snapshot();
  if (x.snapshot != snapshot_) x.snapshot = snapshot_;
  if (x.outliers != outliers_) x.outliers = outliers_;
  x.head_request = head.method == "HEAD";
  x.idempotent = head.is_idempotent();
  x.http10 = head.minor_version == 0;
  x.client_keep_alive = head.keep_alive && !draining_;
  x.request_framing = head.framing;
  x.request_remaining = head.content_length;
  x.request_done = head.framing == http::BodyFraming::None;
  x.has_body = !x.request_done;
  x.expect_continue = head.expect_continue && x.has_body;
  x.body_kept = x.has_body && options_.request_body_buffer_limit > 0;
  if (x.body_kept) x.body.bind(body_buffers_.get());   // memory taken as the body arrives
  x.websocket = http::is_websocket_upgrade(head);
  x.grpc = http::is_grpc_content_type(head.field("content-type"));
  if (x.grpc) {
    // A malformed grpc-timeout is ignored, as Envoy ignores it; 0 means no
    // deadline, as in Envoy (gRPC clients send what remains of theirs).
    auto timeout = http::parse_grpc_timeout(head.field("grpc-timeout"));
    if (timeout && *timeout > 0) x.grpc_timeout_ns = *timeout;
  }
  x.request_id_generated = options_.generate_request_id && head.field("x-request-id").empty();
  if (x.request_id_generated) {
    const uint64_t high = random_->next();
    format_uuid4(high, random_->next(), x.generated_request_id);
    if (options_.access_log) c.logged.request_id.assign(view_of(x.generated_request_id));
  }

  const model::Snapshot* snap = snapshot_.get();
  const ListenerSpec& spec = listener_spec(c.listener);
  const model::Service* service = nullptr;
  uint32_t port = spec.service_port;
  if (snap != nullptr && !spec.service_host.empty()) {
    service = snap->find_service(spec.service_host);
  } else if (snap != nullptr) {
    port = c.local_port;
    for (const auto& s : snap->services) {
      if (s.port(port) != nullptr && std::find(s.vips.begin(), s.vips.end(), c.local_address) != s.vips.end()) {
        service = &s;
        break;
      }
    }
  }
  if (service == nullptr) {
    c.in.consume(head.head_bytes);
    reply_local(c, 404, "no service for this address\n", "x-sluice-no-route: 1\r\n", false, "NR");
    return;
  }
  x.service = service;
  // HTTP/1.0 may omit Host; the request goes upstream as HTTP/1.1, which needs one.
  if (request_head_.authority.empty()) request_head_.authority = service->host;
  x.service_index = static_cast<uint32_t>(service - snap->services.data());
  x.service_port = port;

  if (c.client_namespace_generation != snapshot_generation_) {
    c.client_namespace = snap->client_namespace(c.peer_address);
    c.client_namespace_generation = snapshot_generation_;
  }
  const model::PortRoutes* routes = service->routes_for(port, c.client_namespace);
  RequestView view{head, head.target, head.authority, port, c.peer_address};
  RouteDecision decision;
  if (routes != nullptr && !routes->http.empty()) {
    decision = router_->route(*routes, view, *random_);
  } else if (routes != nullptr && !routes->l4.empty()) {
    // No HTTP routes: the port's connection-level destinations, chosen per request.
    double r = random_->fraction(), cumulative = 0;
    decision.destination = &routes->l4.back();
    for (const auto& d : routes->l4) {
      cumulative += d.share;
      if (r < cumulative) {
        decision.destination = &d;
        break;
      }
    }
  } else {
    x.fallback.destination = model::Destination{x.service_index, 0, port};
    x.fallback.share = 1;
    decision.destination = &x.fallback;
  }
  x.route = decision.route;
  x.destination = decision.destination;
  const model::HttpRoute* route = decision.route;
  if (route == nullptr && decision.destination == nullptr) {
    c.in.consume(head.head_bytes);
    reply_local(c, 404, "no route matched\n", "x-sluice-no-route: 1\r\n", false, "NR");
    return;
  }
  if (route != nullptr && route->redirect) {
    const model::Redirect& r = *route->redirect;
    char location[4096];
    HeadWriter w(location);
    std::string_view authority = r.authority.empty() ? head.authority : std::string_view(r.authority);
    if (r.port != 0) authority = authority.substr(0, authority.rfind(':'));
    w << "location: " << (r.scheme.empty() ? std::string_view("http") : std::string_view(r.scheme)) << "://"
      << authority;
    if (r.port != 0) w << ":" << uint64_t{r.port};
    w << (r.uri.empty() ? head.target : std::string_view(r.uri)) << "\r\n";
    c.in.consume(head.head_bytes);
    if (!w.ok()) {
      reply_local(c, 500, "redirect location too long\n", "", false, "-");
      return;
    }
    reply_local(c, r.status, "", std::string_view(location, w.size()), false, "-");
    return;
  }
  if (route != nullptr && route->direct_response) {
    c.in.consume(head.head_bytes);
    reply_local(c, route->direct_response->status, route->direct_response->body, "", false, "-");
    return;
  }
  if (!build_upstream_head(c, head, head.authority)) {
    c.in.consume(head.head_bytes);
    reply_local(c, 431, "request head too large after header operations\n", "", true, "-");
    return;
  }
  bool picked = select_endpoint(c, &view);
  c.in.consume(head.head_bytes);
  if (!picked) {
    reply_local(c, 503, "no healthy upstream\n", "", false, "UH");
    return;
  }
  // The route's timeout, or a gRPC request's grpc-timeout if shorter (or if
  // the route has none): Istio's route timeout with Envoy's
  // grpc_timeout_header_max / max_grpc_timeout set to it.
  int64_t timeout_ns = route != nullptr ? to_ns(route->timeout) : 0;
  if (x.grpc_timeout_ns > 0 && (timeout_ns <= 0 || x.grpc_timeout_ns < timeout_ns)) {
    timeout_ns = std::min(x.grpc_timeout_ns, std::numeric_limits<int64_t>::max() - x.start_ns);
    x.grpc_deadline = true;
  }
  if (timeout_ns > 0) x.route_deadline_ns = x.start_ns + timeout_ns;
  if (route != nullptr && route->fault && route->fault->delay &&
      random_->fraction() * 100 < route->fault->delay->percent) {
    metrics_.add(ProxyCounter::FaultDelays, service->host, "");
    x.flags = "DI";
    x.delay_until_ns = loop_now_ns() + to_ns(route->fault->delay->fixed);
    c.client_state = ClientState::FaultDelay;
    set_client_deadline(c);
    return;
  }
  continue_after_delay(c);
}

void Worker::continue_after_delay(Conn& c) {
  Exchange& x = *c.exchange;
  const model::HttpRoute* route = x.route;
  if (route != nullptr && route->fault && route->fault->abort &&
      random_->fraction() * 100 < route->fault->abort->percent) {
    metrics_.add(ProxyCounter::FaultAborts, x.service->host, "");
    const model::Fault::Abort& abort = *route->fault->abort;
    if (abort.grpc_status) {
      // A gRPC abort: a gRPC request gets that status (trailers-only); any
      // other request an HTTP 200, as Envoy's fault filter answers it.
      x.local_grpc_status = static_cast<int32_t>(*abort.grpc_status);
      reply_local(c, 200, "fault filter abort\n", "", false, "FI");
    } else {
      reply_local(c, abort.status, "fault filter abort\n", "", false, "FI");
    }
    return;
  }
  send_mirrors(c);
  dispatch(c);
}

// A request with a body is mirrored once its body has been read whole
// (pump_request calls back here), and only if the body was kept.
void Worker::send_mirrors(Conn& c) {
  Exchange& x = *c.exchange;
  if (x.route == nullptr || x.route->mirrors.empty()) return;
  if (!x.request_done) {
    x.mirrors_pending = true;
    return;
  }
  x.mirrors_pending = false;
  if (x.has_body && !x.body_kept) {
    metrics_.add(ProxyCounter::MirrorsBodyNotKept, x.service->host, "");
    return;
  }
  for (const model::Mirror& m : x.route->mirrors) {
    if (random_->fraction() * 100 < m.percent) mirror_request(c, m);
  }
}

// A copy of the request to the mirror destination with Host "<host>-shadow"
// (Istio's convention) and "connection: close"; the response is discarded
// and nothing about it reaches the client, the metrics of the request, or
// the outlier detector.
void Worker::mirror_request(Conn& c, const model::Mirror& mirror) {
  Exchange& x = *c.exchange;
  model::Destination d = mirror.destination;
  if (d.port == 0) d.port = x.service_port;
  RequestView view{empty_head_, "/", "", d.port, c.peer_address};
  auto endpoint = picker_->pick(*x.snapshot, d, view, *x.outliers);
  if (!endpoint) return;
  const model::Service& service = x.snapshot->services[d.service];
  const model::Endpoint& e = service.endpoints[*endpoint];
  uint32_t backend = backend_for(service, e, d.port);
  Conn* u = alloc_conn(Role::Upstream);
  if (u == nullptr) return;
  const UpstreamPools::BackendKey key = pools_.backend(backend).key;
  int fd = ::socket(key.address.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    u->shut = true;
    maybe_free(*u);
    return;
  }
  // The mirror destination's own connectionPool, as for its cluster's
  // pooled connections: TCP_NODELAY, tcpKeepalive, connectTimeout.
  const model::ConnectionPool& settings = service.subsets[d.subset].policy_for(d.port).connection_pool;
  set_upstream_socket_options(fd, settings);
  u->fd = fd;
  u->mirror = true;
  u->upstream_state = UpstreamState::Connecting;
  u->address_len = to_sockaddr(key.address, key.port, u->address);
  // The upstream head starts "METHOD target HTTP/1.1\r\nhost: H\r\n" when a
  // host is known (build_upstream_head writes host first).
  std::string_view head = x.upstream_head.readable();
  size_t line_end = head.find("\r\n") + 2;
  std::string_view rest = head.substr(line_end, head.size() - line_end - 2);   // fields, no final CRLF
  u->out.append(head.substr(0, line_end));
  if (rest.starts_with("host: ")) {
    size_t host_end = rest.find("\r\n");
    u->out.append(rest.substr(0, host_end));
    u->out.append("-shadow");
    rest.remove_prefix(host_end);
    u->out.append(rest.substr(0, 2));
    rest.remove_prefix(2);
  }
  u->out.append(rest);
  u->out.append("connection: close\r\n\r\n");
  // The mirror has its own copy of the body: the client's exchange moves on
  // to its next request while the mirror may still be sending.
  Exchange& mx = *u->exchange;
  mx.body.clear();
  mx.body_sent = 0;
  if (x.has_body) {
    mx.body.bind(body_buffers_.get());
    mx.body.append(x.body.readable());
  }
  // An HTTP/2 cluster gets the copy as an h2c stream (http2_mirror.cc).
  if (speaks_http2(service, d.port, settings, c.h2_parent != kNone) &&
      !h2mirror_open(*u)) {
    ::close(fd);
    u->fd = -1;
    u->h2mirror.reset();
    u->shut = true;
    maybe_free(*u);
    return;
  }
  io_uring_sqe* s = sqe();
  io_uring_prep_connect(s, fd, reinterpret_cast<sockaddr*>(&u->address), u->address_len);
  io_uring_sqe_set_data64(s, encode_user_data(Op::Connect, u->generation, u->id));
  ++u->ops;
  u->deadline = Deadline::Connect;
  u->deadline_ns = loop_now_ns() + to_ns(settings.connect_timeout);
  metrics_.add(ProxyCounter::MirrorRequests, service.host, e.name);
}

// A mirror's body, from its own copy, as its send buffer drains.
void Worker::pump_mirror(Conn& u) {
  if (u.h2mirror) return h2mirror_flush(u);
  Exchange& mx = *u.exchange;
  if (mx.body_sent < mx.body.size()) {
    std::string_view kept = mx.body.readable().substr(mx.body_sent);
    size_t n = std::min(kept.size(), u.out.space());
    u.out.append(kept.substr(0, n));
    mx.body_sent += static_cast<uint32_t>(n);
  }
  submit_send(u);
}

uint32_t Worker::port_of(const Exchange& x) const {
  uint32_t port = x.destination->destination.port;
  return port != 0 ? port : x.service_port;
}

bool Worker::select_endpoint(Conn& c, const RequestView* view) {
  Exchange& x = *c.exchange;
  model::Destination d = x.destination->destination;
  d.port = port_of(x);
  RequestView retry_view{empty_head_, "/", "", d.port, c.peer_address};
  auto endpoint = picker_->pick(*x.snapshot, d, view != nullptr ? *view : retry_view, *x.outliers);
  if (!endpoint) return false;
  const model::Service& service = x.snapshot->services[d.service];
  x.endpoint = *endpoint;
  x.backend = backend_for(service, service.endpoints[*endpoint], d.port);
  return true;
}

// The backend an endpoint serves the service port on (its address:port).
uint32_t Worker::backend_for(const model::Service& service, const model::Endpoint& endpoint, uint32_t port) {
  const model::ServicePort* sp = service.port(port);
  return pools_.backend_for(endpoint, sp != nullptr ? endpoint.port_for(*sp) : port);
}

// The attempt's pool is its (subset cluster, backend) pool: the cluster's
// connectionPool settings and limits apply to it alone (another subset on
// the same backend has its own connections and counts).
void Worker::dispatch(Conn& c) {
  Exchange& x = *c.exchange;
  model::Destination d = x.destination->destination;
  d.port = port_of(x);
  const uint32_t pool = pools_.pool_for(*x.snapshot, d, x.endpoint, c.h2_parent != kNone);
  const model::HttpRoute* route = x.route;
  x.attempt_start_ns = loop_now_ns();
  if (route != nullptr && route->retries && route->retries->per_try_timeout.count() > 0) {
    x.try_deadline_ns = x.attempt_start_ns + to_ns(route->retries->per_try_timeout);
  } else {
    x.try_deadline_ns = 0;
  }
  const bool http2 = pools_.cluster_of(pool).http2;
  const uint32_t room = http2 ? h2up_connection_with_room(pool) : kNone;
  const UpstreamPools::Admission admission = pools_.admit(pool, x.fresh_connection, room != kNone);
  if (admission == UpstreamPools::Admission::Overflow) {
    count_for_pool(ProxyCounter::PoolOverflows, pool, 1);
    reply_local(c, 503, "upstream connection pool overflow\n", "", false, "UO");
    return;
  }
  UpstreamPools::Pool& p = pools_.pool(pool);
  pools_.add_active(pool, 1);
  pools_.backend(p.backend).shared_active->fetch_add(1, std::memory_order_relaxed);
  x.counted_active = true;
  x.pool = pool;
  if (x.expect_continue) {
    // The proxy answers the expectation itself once it commits to
    // forwarding; the upstream never sees Expect (RFC 9110 10.1.1).
    c.out.append("HTTP/1.1 100 Continue\r\n\r\n");
    x.expect_continue = false;
    submit_send(c);
  }
  switch (admission) {
    case UpstreamPools::Admission::Reuse: {
      if (http2) {
        h2up_start_stream(c, *conns_[room]);
        break;
      }
      Conn& u = *conns_[p.idle_head];
      p.idle_head = u.next;
      attach_upstream(c, u);
      break;
    }
    case UpstreamPools::Admission::Open:
      if (http2) h2up_open(c, pool);
      else open_upstream(c, pool);
      break;
    case UpstreamPools::Admission::Queue:
      c.client_state = ClientState::Queued;
      c.next = kNone;
      if (p.pending_tail == kNone) p.pending_head = c.id;
      else conns_[p.pending_tail]->next = c.id;
      p.pending_tail = c.id;
      pools_.add_pending(pool, 1);
      set_client_deadline(c);
      break;
    case UpstreamPools::Admission::Overflow:
      break;
  }
}

// Outlier detection (Envoy's consecutive_5xx and consecutive_gateway_failure)
// in the subset's detector shared by all workers.
void Worker::record_outcome(const Exchange& x, unsigned status) {
  if (x.backend == kNone || x.outliers == nullptr || x.destination == nullptr) return;
  model::Destination d = x.destination->destination;
  d.port = port_of(x);
  if (x.outliers->report_status(d, x.endpoint, status)) count_ejection(x, d);
}

void Worker::record_local_failure(const Exchange& x, Failure failure) {
  if (x.backend == kNone || x.outliers == nullptr || x.destination == nullptr) return;
  model::Destination d = x.destination->destination;
  d.port = port_of(x);
  using F = lb::OutlierDetector::LocalFailure;
  const F kind = failure == Failure::ConnectFailure ? F::ConnectFailure
                 : failure == Failure::Timeout      ? F::Timeout
                                                    : F::Reset;
  if (x.outliers->report_local_failure(d, x.endpoint, kind)) count_ejection(x, d);
}

void Worker::count_ejection(const Exchange& x, const model::Destination& d) {
  const model::Service& s = x.snapshot->services[d.service];
  metrics_.add(ProxyCounter::Ejections, x.service->host, pools_.backend(x.backend).workload, 1,
               version_label(s.subsets[d.subset].name));
}

// Keeps forwarded body bytes for a retry or a mirror while they fit in
// the per-request limit; past it the body is dropped and counted.
void Worker::keep_body(Conn& c, std::string_view forwarded) {
  Exchange& x = *c.exchange;
  if (!x.body_kept) return;
  if (forwarded.size() <= options_.request_body_buffer_limit - x.body.size()) {
    x.body.append(forwarded);
    x.body_sent += static_cast<uint32_t>(forwarded.size());
    return;
  }
  x.body_kept = false;
  x.body.clear();
  x.body_sent = 0;
  metrics_.add(ProxyCounter::BodyOverLimit, x.service->host, "");
}

void Worker::finish_exchange(Conn& c) {
  Exchange& x = *c.exchange;
  // Reusable only if the upstream saw the whole request (a retry's replay included).
  bool reusable = x.upstream_keep_alive && x.request_done && x.body_sent == x.body.size();
  end_attempt(c);
  detach_upstream(c, reusable);
  // A response that ends before its request body: the rest of the body is
  // still arriving and cannot be told apart from a next request.
  if (!x.request_done) x.client_keep_alive = false;
  complete_exchange(c);
}

void Worker::record_request(Conn& c) {
  Exchange& x = *c.exchange;
  pools_.release_retry(x.retry_cluster);   // the request ended: so did its retry
  x.retry_cluster = kNone;
  RequestLabels labels{"unknown", "unknown", "unknown", "unknown", "unknown"};
  if (x.destination != nullptr && x.snapshot) {
    const model::Service& s = x.snapshot->services[x.destination->destination.service];
    labels.service = s.host;
    labels.service_name = s.name;
    labels.namespace_ = s.namespace_;
    const std::string& subset = s.subsets[x.destination->destination.subset].name;
    labels.version = version_label(subset);
    labels.port = x.destination->destination.port;
  } else if (x.service != nullptr) {
    labels.service = x.service->host;
    labels.service_name = x.service->name;
    labels.namespace_ = x.service->namespace_;
  }
  if (x.backend != kNone && x.response_started) labels.workload = pools_.backend(x.backend).workload;
  // Istio's grpc_response_status: the response's grpc-status, else (no
  // grpc-status seen) the one its HTTP status maps to; none without a response.
  if (x.grpc && x.grpc_status < 0) {   // a status in the trailers an HTTP/2 client gets
    std::string_view t = c.h2_trailers;
    for (size_t line = 0; line < t.size();) {
      const size_t end = std::min(t.find("\r\n", line), t.size());
      std::string_view field = t.substr(line, end - line);
      if (field.size() > 12 && http::iequals(field.substr(0, 12), "grpc-status:")) {
        std::string_view value = field.substr(12);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        if (auto code = http::parse_grpc_status(value)) x.grpc_status = static_cast<int32_t>(std::min<uint32_t>(*code, INT32_MAX));
        break;
      }
      line = end + 2;
    }
  }
  if (x.grpc && x.grpc_status >= 0) labels.grpc_status = x.grpc_status;
  else if (x.grpc && x.status != 0) labels.grpc_status = static_cast<int32_t>(model::grpc_status_for_http(x.status));
  double ms = static_cast<double>(loop_now_ns() - x.start_ns) / 1e6;
  metrics_.record_request(labels, x.status, x.flags, ms);
  if (options_.access_log) log_access(c);
}

void Worker::complete_exchange(Conn& c) {
  Exchange& x = *c.exchange;
  record_request(c);
  ++c.requests;
  // An idle HTTP/1.1 connection must not keep an old snapshot alive until
  // its next request. An HTTP/2 stream's slot is freed next and kept as a
  // spare with the current snapshot (reclaim_slots, refresh_snapshot), so
  // that the next stream on it costs no reference-count atomics.
  if (c.h2_parent == kNone) x.snapshot.reset();
  x.upstream_head.clear();   // kept for retries and mirrors until now
  x.upstream_head.release();
  x.body.clear();
  x.body.release();
  if (!x.client_keep_alive || draining_) {
    c.client_state = ClientState::Closing;
    set_client_deadline(c);
    if (c.out.empty() && !c.send_inflight) close_conn(c);
    return;
  }
  c.client_state = ClientState::AwaitingHead;
  set_client_deadline(c);
  process_client(c);
}

void Worker::abort_exchange(Conn& c, std::string_view flags) {
  Exchange& x = *c.exchange;
  remove_pending(c);
  end_attempt(c);
  detach_upstream(c, false);
  if (x.flags == "-") x.flags = flags;
  record_request(c);
  close_conn(c);
}

void Worker::end_stream_on_timeout(Conn& c, ProxyCounter counter, std::string_view body, std::string_view flags) {
  Exchange& x = *c.exchange;
  metrics_.add(counter, x.service != nullptr ? std::string_view(x.service->host) : std::string_view(), "");
  if (x.response_started) {
    abort_exchange(c, flags);   // the head is out: all that is left is to close
    return;
  }
  remove_pending(c);
  detach_upstream(c, false);
  end_attempt(c);
  reply_local(c, 408, body, "", true, flags);
}

bool Worker::retry_allowed(const Exchange& x, Failure failure, unsigned status, bool response_seen,
                           std::optional<uint32_t> grpc_status) {
  AttemptOutcome o;
  if (x.grpc) o.grpc_status = grpc_status;
  o.failure = response_seen ? AttemptFailure::None
              : failure == Failure::ConnectFailure ? AttemptFailure::ConnectFailure
              : failure == Failure::Reset          ? AttemptFailure::Reset
              : failure == Failure::RefusedStream  ? AttemptFailure::RefusedStream
                                                   : AttemptFailure::Timeout;
  o.status = status;
  o.retries_done = x.retries_done;
  o.idempotent = x.idempotent;
  o.body_streamed = !body_replayable(x);
  o.response_started = x.response_started;
  const model::Retries* retries = x.route != nullptr && x.route->retries ? &*x.route->retries : nullptr;
  if (should_retry(retries, o)) {
    if (x.pool == kNone || pools_.retry_budget_allows(x.pool, x.retry_cluster)) return true;
    count_for_pool(ProxyCounter::RetryOverflows, x.pool, 1);
    return false;
  }
  if (o.body_streamed) {
    o.body_streamed = false;
    if (should_retry(retries, o)) metrics_.add(ProxyCounter::RetriesBodyNotKept, x.service->host, "");
  }
  return false;
}

void Worker::retry(Conn& c) {
  Exchange& x = *c.exchange;
  ++x.retries_done;
  metrics_.add(ProxyCounter::Retries, x.service->host, "");
  if (x.pool != kNone) {   // retry_allowed checked the cluster's maxRetries
    const uint32_t cluster = pools_.hold_retry(x.pool);
    pools_.release_retry(x.retry_cluster);
    x.retry_cluster = cluster;
  }
  end_attempt(c);
  detach_upstream(c, false);
  x.response_head_done = x.response_done = false;
  x.response_chunks.reset();
  x.body_sent = 0;   // the kept body goes out again; request_done still tells what the client sent
  c.client_state = ClientState::Proxying;
  // Prefer another host than the one that just failed (Envoy's
  // previous_hosts retry predicate, Istio's retryIgnorePreviousHosts
  // default), with a bounded number of re-picks: 5 picks in all, as
  // Istio's host_selection_retry_max_attempts.
  static const model::Retries kDefaults;
  const model::Retries& policy = x.route != nullptr && x.route->retries ? *x.route->retries : kDefaults;
  uint32_t previous = x.backend;
  bool picked = select_endpoint(c, nullptr);
  for (int i = 0; policy.ignore_previous_hosts && picked && x.backend == previous && i < 4; ++i) {
    picked = select_endpoint(c, nullptr);
  }
  if (!picked) {
    reply_local(c, 503, "no healthy upstream\n", "", false, "UH");
    return;
  }
  // Envoy's back-off between attempts: a random wait in [0, (2^n - 1) x
  // base] before retry n, at most 10 x base (base: retries.backoff, 25 ms
  // by default), so a struggling backend is not hit again at once and
  // retries from many clients spread out. Deadlines run on the 10 ms tick,
  // so a wait rounds up to it.
  const int64_t base_ns = std::min(to_ns(policy.backoff), std::numeric_limits<int64_t>::max() / 16);
  const int64_t ceiling = std::min<int64_t>((int64_t{1} << std::min<uint32_t>(x.retries_done, 4)) - 1, 10) * base_ns;
  const auto wait = static_cast<int64_t>(random_->fraction() * static_cast<double>(ceiling));
  if (wait <= 0) {
    dispatch(c);
    return;
  }
  x.retry_at_ns = loop_now_ns() + wait;
  c.client_state = ClientState::RetryBackoff;
  set_client_deadline(c);
}

void Worker::fail_exchange(Conn& c, Failure failure) {
  Exchange& x = *c.exchange;
  remove_pending(c);
  bool dead_pooled = false;
  if (c.upstream != kNone) {
    Conn& u = *conns_[c.upstream];
    dead_pooled = failure == Failure::Reset && u.reused && u.h2_parent == kNone;   // HTTP/2: the stream's own
    detach_upstream(c, false);
  }
  // A pooled connection the server had already closed: the request never
  // got an answer, so an idempotent one whose body (if any) is still whole
  // here is safely sent again on a fresh connection (once; it does not
  // count as a retry).
  if (dead_pooled && x.idempotent && body_replayable(x) && !x.fresh_connection) {
    end_attempt(c);
    x.fresh_connection = true;
    x.response_head_done = false;
    x.body_sent = 0;
    dispatch(c);
    return;
  }
  record_local_failure(x, failure);
  if (retry_allowed(x, failure, 0, false)) {
    retry(c);
    return;
  }
  end_attempt(c);
  switch (failure) {
    case Failure::ConnectFailure:
      reply_local(c, 503, "upstream connect error\n", "", false, "UF");
      break;
    case Failure::Reset:
      reply_local(c, 503, "upstream reset before response headers\n", "", false, "UC");
      break;
    case Failure::Timeout:
      reply_local(c, 504, "upstream request timeout\n", "", false, "UT");
      break;
    case Failure::RefusedStream:
      reply_local(c, 503, "upstream refused the stream\n", "", false, "UR");
      break;
  }
}

namespace {

std::string_view format_endpoint(const model::IpAddress& ip, uint32_t port, std::span<char> out) {
  if (ip.family != model::IpAddress::kV4 && ip.family != model::IpAddress::kV6) return {};
  std::array<char, model::IpAddress::kMaxText> text;
  const char* addr = ip.format(text).data();
  int n = ip.family == model::IpAddress::kV4 ? std::snprintf(out.data(), out.size(), "%s:%u", addr, port)
                                             : std::snprintf(out.data(), out.size(), "[%s]:%u", addr, port);
  return n > 0 ? std::string_view(out.data(), std::min<size_t>(static_cast<size_t>(n), out.size() - 1))
               : std::string_view();
}

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void Worker::log_request_head(Conn& c, bool valid) {
  LoggedRequest& r = c.logged;
  const http::RequestHead& h = request_head_;
  r.start_unix_ns = unix_now_ns();
  r.in_mark = c.in.consumed_total();
  r.head_bytes = valid ? h.head_bytes : 0;
  r.method.assign(valid ? h.method : std::string_view());
  r.path.assign(valid ? h.target : std::string_view());
  r.authority.assign(valid ? h.authority : std::string_view());
  r.user_agent.assign(valid ? h.field("user-agent") : std::string_view());
  r.request_id.assign(valid ? h.field("x-request-id") : std::string_view());
  r.forwarded_for.assign(valid ? h.field("x-forwarded-for") : std::string_view());
}

void Worker::log_access(const Conn& c) {
  const Exchange& x = *c.exchange;
  const LoggedRequest& r = c.logged;
  AccessLogRecord rec;
  rec.start_unix_ns = r.start_unix_ns;
  rec.method = r.method;
  rec.path = r.path;
  rec.protocol = r.method.empty()          ? std::string_view()
                 : c.h2_parent != kNone    ? "HTTP/2"
                 : x.http10                ? "HTTP/1.0"
                                           : "HTTP/1.1";
  rec.response_code = x.response_started ? x.status : 0;
  rec.response_flags = x.flags;
  rec.response_code_details = x.response_head_done ? "via_upstream" : "";
  uint64_t consumed = c.in.consumed_total() - r.in_mark;
  rec.bytes_received = consumed > r.head_bytes ? consumed - r.head_bytes : 0;
  rec.bytes_sent = x.response_head_done ? c.out.committed_total() - x.body_out_mark : x.local_body_bytes;
  rec.duration_ms = (loop_now_ns() - x.start_ns) / 1'000'000;
  rec.upstream_service_time_ms = x.upstream_service_ns < 0 ? -1 : x.upstream_service_ns / 1'000'000;
  rec.x_forwarded_for = r.forwarded_for;
  rec.user_agent = r.user_agent;
  rec.request_id = r.request_id;
  rec.authority = r.authority;
  std::array<char, 64> upstream{}, local{}, remote{};
  std::array<char, 320> cluster{};
  if (x.backend != kNone) {
    const UpstreamPools::BackendKey& k = pools_.backend(x.backend).key;
    rec.upstream_host = format_endpoint(k.address, k.port, upstream);
  }
  if (x.destination != nullptr && x.snapshot) {
    const model::Service& s = x.snapshot->services[x.destination->destination.service];
    const std::string& subset = s.subsets[x.destination->destination.subset].name;
    int n = std::snprintf(cluster.data(), cluster.size(), "outbound|%u|%s|%s", x.service_port, subset.c_str(),
                          s.host.c_str());
    if (n > 0) rec.upstream_cluster = {cluster.data(), std::min<size_t>(static_cast<size_t>(n), cluster.size() - 1)};
  }
  rec.downstream_local_address = format_endpoint(c.local_address, c.local_port, local);
  rec.downstream_remote_address = format_endpoint(c.peer_address, c.peer_port, remote);
  if (x.route != nullptr) rec.route_name = x.route->name;
  append_access_log(access_log_buffer_, rec, options_.access_log_format);
  if (access_log_buffer_.size() >= kAccessLogFlushBytes) flush_access_log();
}

void Worker::flush_access_log() {
  if (access_log_buffer_.empty() || !options_.access_log) return;
  options_.access_log->write(access_log_buffer_);
  access_log_buffer_.clear();
}

}  // namespace sluice::proxy
