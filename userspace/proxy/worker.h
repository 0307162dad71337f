// One proxy worker: a thread with its own io_uring, listener sockets, client
// and upstream connections, upstream pools, outlier state and metrics. Its
// state machine is split by seam (docs/l7-proxy.md, "Inside the proxy"):
// worker.cc (loop, snapshot, deadlines, drain), transport.cc (ring, slots,
// receive/send), http1_codec.cc (HTTP/1.1 framing), exchange.cc (one
// request: route, pick, faults, mirrors, retries, log), tunnel.cc
// (WebSocket relays), upstream_connections.cc (pool lifecycle).
#pragma once

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/chunked_body.h"
#include "http/message_head.h"
#include "lb/random_source.h"
#include "proxy/request_id.h"
#include "model/snapshot.h"
#include "proxy/buffer_pool.h"
#include "proxy/byte_buffer.h"
#include "proxy/http2_session.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/request_routing.h"
#include "proxy/upstream_pools.h"
#include "proxy/user_data.h"

namespace sluice::proxy {

class Worker final {
 public:
  Worker(unsigned index, Proxy& proxy, const ProxyOptions& options);
  ~Worker();

  void bind_listeners();   // on the caller's thread, so bind errors surface from Proxy::start
  void run();              // the thread body
  void request_drain();
  void request_stop();
  const WorkerMetrics& metrics() const { return metrics_; }
  const std::vector<int>& listener_fds() const { return listener_fds_; }

 private:
  enum class Role : uint8_t { Free, Client, Upstream };
  // Client connection states. A client connection carries one request at a
  // time; pipelined requests wait in `in` until the current response is done,
  // so responses go out in request order.
  enum class ClientState : uint8_t {
    AwaitingHead,   // reading a request head, or idle between keep-alive requests
    FaultDelay,     // holding the request for an injected delay
    RetryBackoff,   // waiting between two attempts (jittered exponential back-off)
    Queued,         // waiting for an upstream connection (pool limit reached)
    Proxying,       // request and response streaming through an upstream connection
    Tunneling,      // after a WebSocket upgrade (101): bytes relayed both ways until either side closes
    Closing,        // flushing the last response, then close
    Http2,          // an HTTP/2 connection: each stream is a slot of its own (http2_codec.cc)
  };
  enum class UpstreamState : uint8_t { Connecting, Idle, Busy };
  enum class Deadline : uint8_t { None, HeaderRead, Idle, FaultDelay, RetryBackoff, Request, Connect, PoolIdle };
  // RefusedStream: an HTTP/2 upstream refused the stream (RST_STREAM
  // REFUSED_STREAM, or above a GOAWAY's last stream): nothing was processed.
  enum class Failure : uint8_t { ConnectFailure, Reset, Timeout, RefusedStream };

  struct HeldBuffer {
    uint16_t bid;
    uint32_t offset, len;
  };

  // The per-request state of an exchange: plain values only, so a new
  // request on the slot resets it with one assignment.
  struct ExchangeState {
    const model::Service* service = nullptr;
    const model::HttpRoute* route = nullptr;
    const model::WeightedDestination* destination = nullptr;
    uint32_t service_index = 0, service_port = 0, backend = kNone, endpoint = 0;
    uint32_t pool = kNone;               // the (cluster, backend) pool of the dispatched attempt, while counted_active
    uint32_t retry_cluster = kNone;      // the cluster this request's outstanding retry counts against (maxRetries)
    bool head_request = false, idempotent = false, client_keep_alive = true, http10 = false;
    bool counted_active = false, has_body = false, expect_continue = false, fresh_connection = false;
    bool websocket = false;   // the client asked to upgrade to WebSocket (forwarded; 101 starts a tunnel)
    // gRPC (content-type application/grpc*): local replies are trailers-only
    // gRPC responses, grpc-timeout bounds the request, the grpc-status is a
    // metric label (docs/l7-proxy.md, "gRPC").
    bool grpc = false;
    bool grpc_deadline = false;      // route_deadline_ns came from grpc-timeout (it was the shorter)
    int64_t grpc_timeout_ns = 0;     // the request's valid grpc-timeout; 0: none
    int32_t grpc_status = -1;        // the response's grpc-status (head or trailers); -1: none seen
    int32_t local_grpc_status = -1;  // the status reply_local gives a gRPC request; -1: from the HTTP status
    bool body_kept = false, mirrors_pending = false;
    uint32_t body_sent = 0;              // bytes of `body` already in this attempt's upstream stream
    http::BodyFraming request_framing = http::BodyFraming::None;
    uint64_t request_remaining = 0;
    bool request_done = false, request_body_sent = false;
    bool response_head_done = false, response_started = false, response_done = false;
    http::BodyFraming response_framing = http::BodyFraming::None;
    uint64_t response_remaining = 0;
    bool dechunk = false, upstream_keep_alive = true;
    unsigned status = 0;
    uint32_t retries_done = 0;
    int64_t start_ns = 0, route_deadline_ns = 0, try_deadline_ns = 0, delay_until_ns = 0, retry_at_ns = 0;
    std::string_view flags = "-";
    // For the access log: the last attempt's dispatch and response head
    // times, and where the response body starts in the client's output.
    int64_t attempt_start_ns = 0, upstream_service_ns = -1;
    RequestId generated_request_id{};   // valid when request_id_generated
    bool request_id_generated = false;
    uint64_t body_out_mark = 0, local_body_bytes = 0;
    uint64_t idle_mark = 0;   // bytes_moved() when the stream idle timer last started
  };

  // The request a client connection is proxying and its response: its
  // state, and what the slot keeps from one request to the next (buffers,
  // the snapshot references, `fallback`, which is assigned whole whenever it
  // is used).
  struct Exchange : ExchangeState {
    model::SnapshotPtr snapshot;
    std::shared_ptr<OutlierRegistry> outliers;   // the snapshot's
    model::WeightedDestination fallback;   // the whole service, when the port has no routes
    ByteBuffer upstream_head;            // the request head as sent upstream (kept for retries)
    // The request body as forwarded (in its framing), kept up to
    // ProxyOptions::request_body_buffer_limit for retries and mirrors.
    // body_kept turns false for good when the body outgrows the limit.
    ByteBuffer body;
    http::ChunkedBodyScanner request_chunks;
    http::ChunkedBodyScanner response_chunks;

    // A new request on the slot: the state back to its initial values,
    // buffers emptied (their memory kept), the snapshot references kept
    // (start_exchange replaces them only when the snapshot changed, so a
    // request costs no reference-count atomics; complete_exchange lets an
    // HTTP/1.1 connection's snapshot go, refresh_snapshot the references
    // of slots outside an exchange).
    void reset_for_request() {
      static_cast<ExchangeState&>(*this) = ExchangeState{};
      upstream_head.clear();
      body.clear();
      request_chunks.reset();
      response_chunks.reset();
    }
  };

  // What the access log needs of a request head, copied before the head is
  // consumed. Kept in the connection slot: the strings keep their capacity,
  // so logging allocates nothing once a slot has seen a long request.
  struct LoggedRequest {
    std::string method, path, authority, user_agent, request_id, forwarded_for;
    int64_t start_unix_ns = 0;
    uint64_t in_mark = 0;    // the client's input bytes consumed before this request
    size_t head_bytes = 0;
  };

  // An HTTP/2 client connection's session and its streams (http2_codec.cc).
  struct Http2ClientStream;
  struct Http2ClientStreamDeleter {
    void operator()(Http2ClientStream* st) const;
  };
  struct Http2Connection;
  struct Http2ConnectionDeleter {
    void operator()(Http2Connection* h) const;
  };
  // An upstream HTTP/2 connection's client session and its streams (http2_upstream.cc).
  struct Http2UpstreamStream;
  struct Http2UpstreamStreamDeleter {
    void operator()(Http2UpstreamStream* st) const;
  };
  struct Http2Upstream;
  struct Http2UpstreamDeleter {
    void operator()(Http2Upstream* h) const;
  };
  // A mirror's own HTTP/2 session (http2_mirror.cc).
  struct Http2Mirror;
  struct Http2MirrorDeleter {
    void operator()(Http2Mirror* m) const;
  };

  struct Conn {
    uint32_t id = 0, generation = 0;
    Role role = Role::Free;
    int fd = -1;
    uint8_t ops = 0;                 // submissions in flight; the slot is freed at 0
    bool recv_armed = false, send_inflight = false, shut = false, peer_eof = false, recv_paused = false;
    ByteBuffer in, out;
    http::HeadEndScanner head_scan;   // where in `in` the next head may end
    uint32_t inflight_send = 0;
    // Receive completions already posted when a pause (cancel) is decided
    // must be kept: at most the socket's receive queue (tcp_rmem max, 6 MiB
    // by default) in 16 KiB buffers = 384 entries (kMaxHeld). Grown only
    // under backpressure; freed with the slot.
    std::vector<HeldBuffer> held;
    uint16_t held_count = 0;
    Deadline deadline = Deadline::None;
    int64_t deadline_ns = 0;
    // Client side.
    ClientState client_state = ClientState::AwaitingHead;
    uint32_t listener = 0, upstream = kNone, requests = 0;
    model::IpAddress local_address;
    uint32_t local_port = 0;
    model::IpAddress peer_address;   // the client, for consistentHash useSourceIp
    uint32_t peer_port = 0;
    // The client's namespace (its view of each service), looked up from
    // peer_address once per connection and snapshot generation.
    uint16_t client_namespace = 0;
    uint64_t client_namespace_generation = kNoGeneration;
    std::unique_ptr<Exchange> exchange;   // allocated with the slot, reused
    // HTTP/2: a connection that opened with the preface has a session; each
    // of its streams is a client slot of its own without a socket, whose
    // exchange starts on the decoded request, whose `in` gets the request
    // body and whose `out` the response body, sent as DATA frames
    // (docs/l7-proxy.md, "HTTP/2 downstream").
    std::unique_ptr<Http2Connection, Http2ConnectionDeleter> h2;
    // Upstream HTTP/2: the connection's session; each stream is an
    // upstream slot without a socket (h2_parent, h2_stream) whose HEADERS
    // come from the exchange's head, whose `out` gets the request body
    // (in its HTTP/1.1 framing) and whose `in` the
    // response body (its head is decoded: h2up_response_head;
    // docs/l7-proxy.md, "HTTP/2 upstream").
    std::unique_ptr<Http2Upstream, Http2UpstreamDeleter> h2up;
    // A mirror to an HTTP/2 cluster: the copy goes out as one stream on the
    // mirror's own connection (docs/l7-proxy.md, "Mirrors").
    std::unique_ptr<Http2Mirror, Http2MirrorDeleter> h2mirror;
    uint32_t h2_parent = kNone;      // a stream: its connection's slot
    int32_t h2_stream = 0;           // a stream: its id
    // A client stream: its codec state while it is this slot's (set when
    // the stream opens, cleared when the slot detaches or nghttp2 closes
    // the stream), so that the slot's side needs no lookup of the id in
    // nghttp2's stream map.
    Http2ClientStream* h2_client_stream = nullptr;
    std::string h2_trailers;         // a client stream: the response's forwarded trailer lines
    LoggedRequest logged;                 // filled only with an access log
    // Upstream side.
    UpstreamState upstream_state = UpstreamState::Connecting;
    uint32_t client = kNone, pool = kNone, next = kNone;   // next: link in the pool's idle or pending list
    int64_t idle_since_ns = 0;       // when it went back to its pool
    int64_t opened_ns = 0;           // when its connect completed (0: not yet), for maxConnectionDuration
    bool duration_reached = false;   // it reached maxConnectionDuration (counted once)
    bool reused = false;
    bool in_process = false;         // process_client is on the stack for this connection
    bool mirror = false;             // a fire-and-forget mirror request: response discarded
    sockaddr_storage address{};
    socklen_t address_len = 0;
  };

  // Ring plumbing.
  void setup_ring();
  io_uring_sqe* sqe();
  void arm_accept(uint32_t listener);
  void arm_recv(Conn& c);
  void arm_wake();
  void submit_send(Conn& c);
  void handle_completions();
  void handle_cqe(const io_uring_cqe& cqe);
  void recycle_buffer(uint16_t bid);
  char* buffer_address(uint16_t bid) { return buffers_.get() + size_t{bid} * kBufferSize; }

  // Connection lifecycle.
  Conn* alloc_conn(Role role);
  Conn* live(uint32_t id, uint32_t generation);
  void close_conn(Conn& c);
  void maybe_free(Conn& c);
  void on_accept(uint32_t listener, int fd);
  void on_recv(Conn& c, const io_uring_cqe& cqe);
  void on_send(Conn& c, int res);
  void deliver(Conn& c, std::string_view data, uint16_t bid, uint32_t offset);
  bool drain_held(Conn& c);   // moves held receive data into `in`; true if any moved
  void on_peer_eof(Conn& c);

  // HTTP/2 downstream (http2_codec.cc).
  void start_http2(Conn& c);
  void h2_receive(Conn& c);                  // the connection's received bytes into its session
  void h2_flush(Conn& c);                    // the session's frames into the connection's `out`
  void h2_open_stream(Http2Connection& h, int32_t id, bool end_stream);   // HEADERS received: a slot
  void h2_feed_stream(Conn& s);              // request bytes arrived in a stream's `in`
  void h2_stream_output(Conn& s);            // a stream's `out` changed: a local reply's head, DATA
  bool h2_submit_response_head(Conn& s, const http::ResponseHead& h);   // a forwarded head as HEADERS
  Http2FieldList h2_fields_;                 // scratch: a HEADERS frame's fields
  Http2FieldList h2_trailer_fields_;         // scratch: a response's trailers (read_body, inside nghttp2_session_send)
  void h2_stream_consumed(Conn& s);          // a stream's body left its `in`: WINDOW_UPDATE
  void h2_detach_stream(Conn& s);            // a stream slot closes
  void h2_close_streams(Conn& c);            // the connection closes: every stream ends
  void h2_goaway_all();                      // draining: GOAWAY on every HTTP/2 connection
  // A flush asked for from inside the exchange's code (a stream's response
  // bytes, a window update, a stream end) runs at the end of the completion
  // slice that caused it (handle_completions): flushing reads stream bodies
  // and follows up on their slots (pump_response), which must not re-enter
  // an exchange still on the stack, and one flush per slice puts the frames
  // of every stream a slice answered into one send per connection.
  void h2_schedule_flush(Conn& c);
  void h2_flush_scheduled();
  // The send loop both codecs' flushes share (h2_flush, h2up_flush): the
  // session's frames out with nghttp2_session_send, then `follow_up(slot)`
  // for each live stream slot whose body a round drained, then
  // `after_round()`; again while a follow-up asked for another flush. Not
  // re-entered: a flush asked for while one runs only marks it pending.
  // False when the caller has nothing more to do: a flush already running,
  // a session error (the connection is closed) or a connection a follow-up
  // closed.
  template <typename Session, typename FollowUp, typename AfterRound>
  bool h2_send_rounds(Conn& c, Session& h, FollowUp&& follow_up, AfterRound&& after_round) {
    if (h.busy) {
      h.flush_pending = true;
      return false;
    }
    h.busy = true;
    do {
      h.flush_pending = false;
      if (nghttp2_session_send(h.session) != 0) {
        h.busy = false;
        close_conn(c);
        return false;
      }
      h.drained_scratch.swap(h.drained);
      h.drained.clear();
      for (int32_t id : h.drained_scratch) {
        auto* st = h.find(id);
        if (st == nullptr || st->slot == kNone || conns_[st->slot]->shut) continue;
        follow_up(*conns_[st->slot]);
        if (c.shut) break;
      }
      h.drained_scratch.clear();
      if (!c.shut) after_round();
    } while (h.flush_pending && !c.shut);
    h.busy = false;
    return !c.shut;
  }
  std::vector<std::pair<uint32_t, uint32_t>> h2_scheduled_, h2_scheduled_scratch_;   // slot, generation
  friend struct Http2Callbacks;
  // Client streams' codec state given back when nghttp2 closed them, for
  // the next streams (up to kSpareStreams; released on the tick after a
  // quiet second, as connection slots are).
  std::vector<std::unique_ptr<Http2ClientStream, Http2ClientStreamDeleter>> h2_spare_streams_;
  static constexpr size_t kSpareStreams = 1024;

  // HTTP/2 upstream (http2_upstream.cc).
  uint32_t h2up_connection_with_room(uint32_t pool);     // a connection that takes one more stream, or kNone
  void h2up_open(Conn& c, uint32_t pool);                // a new connection and the request's stream on it
  void h2up_start_stream(Conn& c, Conn& connection);     // the request's stream on an open connection
  void h2up_receive(Conn& connection);
  void h2up_flush(Conn& connection);
  void h2up_submit_request(Conn& u, std::string_view head);   // the request head (HTTP/1.1 text) as HEADERS
  void h2up_stream_output(Conn& u);        // the exchange wrote request body bytes into a stream's `out`
  void h2up_stream_consumed(Conn& u);      // the exchange took response bytes from a stream's `in`
  http::ParseResult h2up_response_head(Conn& u, std::string_view request_method, http::ResponseHead& head);
  void h2up_detach_stream(Conn& u);        // a stream slot closes (RST_STREAM if still open)
  void h2up_after_stream(Conn& connection);   // a stream ended: close, idle or serve the queue
  void h2up_close_streams(Conn& connection);  // the connection closes: every stream's attempt fails
  void h2up_schedule_flush(Conn& connection);
  friend struct Http2UpstreamCallbacks;
  friend struct Http2MirrorCallbacks;
  // Upstream streams' codec state for the next streams, as h2_spare_streams_.
  std::vector<std::unique_ptr<Http2UpstreamStream, Http2UpstreamStreamDeleter>> h2up_spare_streams_;
  void give_back(std::unique_ptr<Http2UpstreamStream, Http2UpstreamStreamDeleter> st);

  // Client state machine.
  void process_client(Conn& c);
  bool begin_request(Conn& c, bool valid);   // request_head_ is the slot's next request (http1_codec.cc)
  void start_exchange(Conn& c);
  void continue_after_delay(Conn& c);
  void dispatch(Conn& c);
  void send_mirrors(Conn& c);
  void mirror_request(Conn& c, const model::Mirror& mirror);
  void pump_mirror(Conn& u);
  bool h2mirror_open(Conn& u);      // the session and the request's stream, from the head in u.out
  void h2mirror_receive(Conn& u);   // the backend's frames: read (acks, windows), the response dropped
  void h2mirror_flush(Conn& u);     // frames out; the connection closes once the stream has ended
  void keep_body(Conn& c, std::string_view forwarded);
  void attach_upstream(Conn& c, Conn& u);
  void pump_request(Conn& c);
  bool forward_response_head(Conn& c, Conn& u, const http::ResponseHead& h);
  void start_tunnel(Conn& c, const http::ResponseHead& h);
  void pump_tunnel(Conn& c);
  void end_tunnel(Conn& c);
  void pump_response(Conn& c);
  void finish_exchange(Conn& c);
  void complete_exchange(Conn& c);
  // Ends the exchange unfinished and closes the client (stream): `flags` is
  // Envoy's response flag for why — DC the client went away, UC the backend
  // closed inside the body, UPE/DPE a framing error, UT/SI a timeout after
  // the head. A reason already recorded (a local reply's) is kept.
  void abort_exchange(Conn& c, std::string_view flags);
  void end_attempt(Conn& c);
  bool select_endpoint(Conn& c, const RequestView* view);
  void record_request(Conn& c);
  // For a gRPC request the reply is a trailers-only gRPC response (HTTP 200,
  // grpc-status from x.local_grpc_status or mapped from `status`,
  // grpc-message from `body`).
  void reply_local(Conn& c, unsigned status, std::string_view body, std::string_view extra_fields,
                   bool close, std::string_view flags);
  // The route timeout (or the grpc-timeout under it) expired before a response head.
  void reply_route_timeout(Conn& c);
  void fail_exchange(Conn& c, Failure failure);
  // Counts a retry the policy allowed but a body over the buffer limit prevented.
  bool retry_allowed(const Exchange& x, Failure failure, unsigned status, bool response_seen,
                     std::optional<uint32_t> grpc_status = std::nullopt);
  // The body can be sent again: none, none of it sent yet, or all of it kept.
  static bool body_replayable(const Exchange& x) { return !x.has_body || !x.request_body_sent || x.body_kept; }
  void retry(Conn& c);
  bool build_upstream_head(Conn& c, const http::RequestHead& head, std::string_view authority);
  bool write_response_head(Conn& c, const http::ResponseHead& head);
  // The fields of a forwarded response head whichever codec writes it
  // (http1_codec.cc): the upstream's less hop-by-hop ones, those the header
  // operations replace or remove, and a content-length describing no body
  // unless the body is not sent (HEAD, 304); then
  // x-envoy-upstream-service-time and the header operations. Framing and
  // connection fields are the codec's; response_content_length is the
  // content-length both write.
  using FieldFn = void (*)(void* context, std::string_view name, std::string_view value);
  void response_fields(const Exchange& x, const http::ResponseHead& h, FieldFn field, void* context);
  static std::optional<uint64_t> response_content_length(const Exchange& x, const http::ResponseHead& h);
  void set_client_deadline(Conn& c);
  // Bytes the request and its response moved so far, both connections.
  uint64_t bytes_moved(const Conn& c) const;
  // Envoy's request_timeout or stream_idle_timeout fired: 408, or a close
  // once the response head went out; the upstream connection is released.
  void end_stream_on_timeout(Conn& c, ProxyCounter counter, std::string_view body, std::string_view flags);

  // Upstream side.
  uint32_t backend_for(const model::Service& service, const model::Endpoint& endpoint, uint32_t port);
  void open_upstream(Conn& client, uint32_t pool);
  void on_connect(Conn& u, int res);
  void release_upstream(Conn& u, bool reusable);
  // connectionPool.tcp.maxConnectionDuration: whether the upstream
  // connection has been established that long (counted once per connection).
  bool duration_reached(Conn& u);
  // Whether an upstream connection may take no further request: its pool
  // retired, `requests` reached maxRequestsPerConnection, or its
  // maxConnectionDuration passed. It then closes once its requests are done.
  bool upstream_spent(Conn& u, uint32_t requests);
  // When a connection without requests in its pool closes: idleTimeout
  // after its idle start, or at its maxConnectionDuration if that is sooner.
  int64_t pool_idle_deadline(const Conn& u) const;
  void detach_upstream(Conn& c, bool reusable);
  void record_outcome(const Exchange& x, unsigned status);
  // A locally originated failure of the attempt (no answer from the
  // backend): a 503 (504 for a timeout) to the detector unless its subset
  // splits local-origin errors (outlierDetection.splitExternalLocalOriginErrors).
  void record_local_failure(const Exchange& x, Failure failure);
  void count_ejection(const Exchange& x, const model::Destination& destination);   // sluice_outlier_ejections_total
  uint32_t port_of(const Exchange& x) const;
  void serve_pending(uint32_t pool);
  // A metric of a pool's cluster (destination_version) and backend.
  void count_for_pool(ProxyCounter counter, uint32_t pool, int64_t delta);
  void remove_pending(Conn& c);
  // After a snapshot changed a pool's settings or retired it: its idle
  // connections are closed or get the new idle timeout, its queue is served.
  void revisit_pools(std::vector<uint32_t> pools);   // a copy: closing may re-enter refresh_snapshot


  // Istio's destination_version for a subset name; the whole service has none.
  static std::string_view version_label(std::string_view subset) { return subset.empty() ? "unknown" : subset; }

  void refresh_snapshot();
  void check_deadlines();
  void log_request_head(Conn& c, bool valid);
  void log_access(const Conn& c);
  void flush_access_log();
  void begin_drain();
  const ListenerSpec& listener_spec(uint32_t i) const { return options_.listeners[i]; }

  static constexpr uint32_t kBufferSize = 16 * 1024;   // provided receive buffers
  static constexpr uint32_t kBufferCount = 1024;       // per worker (power of two)
  static constexpr uint32_t kConnBufferSize = 64 * 1024;
  static constexpr uint16_t kMaxHeld = 512;
  // Freed connection objects kept for reuse, up to kMaxSpareConns (an
  // HTTP/2 load frees and takes hundreds of stream slots per batch of
  // completions); a quiet second brings them down to kSpareConns, and the
  // allocator gives memory back to the system (trim_memory).
  static constexpr size_t kSpareConns = 64, kMaxSpareConns = 1024;
  void reclaim_slots();   // after each batch of completions: see maybe_free
  void trim_memory();     // on the tick, at most once a second
  static constexpr unsigned kCompletionSlice = 16;

  unsigned index_;
  Proxy& proxy_;
  const ProxyOptions& options_;
  io_uring ring_{};
  bool ring_ready_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;
  std::unique_ptr<char[]> buffers_;
  std::vector<int> listener_fds_;
  std::vector<bool> accept_armed_;
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  std::atomic<bool> drain_requested_{false}, stop_requested_{false};
  bool draining_ = false;
  bool trace_ = false;   // SLUICE_PROXY_TRACE set: log every completion to stderr

  // Buffers before the connections that hold them (destroyed after them).
  // Receive, send and upstream-head buffers are taken when bytes arrive or
  // are queued and given back when drained; kept bodies use their own size.
  BufferPool conn_buffers_{kConnBufferSize};
  std::unique_ptr<BufferPool> body_buffers_;   // request_body_buffer_limit bytes each; null if 0
  // Connection slots by id; null when free. A slot's generation outlives
  // its Conn object, so a late completion for a previous occupant is told
  // apart from the current one.
  // Before the slots: their nghttp2 sessions must go first.
  Http2Allocator h2_allocator_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> generations_;
  std::vector<uint32_t> free_conns_;
  std::vector<uint32_t> freed_conns_;   // freed during this batch, reclaimed after it
  std::vector<std::unique_ptr<Conn>> spare_conns_;
  uint32_t client_count_ = 0;
  uint32_t freed_since_trim_ = 0;
  bool trim_after_busy_ = false;   // a busy second passed: trim the heap once the load is quiet
  int64_t next_trim_ns_ = 0;
  // The loop's clock: steady_clock read once per slice of completions and
  // per tick, which every deadline, duration and timestamp of the slice
  // uses (Envoy's dispatcher "approximate monotonic time"): one vDSO clock
  // read per slice instead of five to eight per request. Staleness is at
  // most one slice's work (microseconds), far below any timeout's unit.
  int64_t clock_ns_ = 0;
  int64_t loop_now_ns() const { return clock_ns_; }

  model::SnapshotPtr snapshot_;
  uint64_t snapshot_generation_ = 0;
  std::unique_ptr<RequestRouter> router_;
  std::unique_ptr<EndpointPicker> picker_;
  std::unique_ptr<lb::RandomSource> random_;
  std::shared_ptr<OutlierRegistry> outliers_;    // for snapshot_
  UpstreamPools pools_;
  std::vector<uint32_t> revisit_scratch_;         // idle connections revisit_pools closes
  http::RequestHead empty_head_;                  // the request view for retries (headers are gone)
  http::RequestHead request_head_;     // scratch, reused per request
  http::ResponseHead response_head_;   // scratch
  WorkerMetrics metrics_;
  std::string access_log_buffer_;      // whole lines, flushed on the tick
};

}  // namespace sluice::proxy
