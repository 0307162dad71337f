// A proxy worker's loop: it waits on its ring, hands completions to the
// transport (transport.cc), and on a 10 ms tick picks up a new snapshot,
// fires deadlines and flushes the access log; drain and stop end it.
//
// The worker is split along the seams docs/l7-proxy.md ("Inside the proxy")
// describes: transport.cc (ring, slots, receive/send, buffers),
// http1_codec.cc (HTTP/1.1 framing between the transport and the exchange),
// exchange.cc (one request and its response: routing, retries, faults,
// mirrors, the access log), tunnel.cc (WebSocket relays) and
// upstream_connections.cc (each pool's open / serve-pending / release).
#include "proxy/worker.h"

#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <random>
#include <system_error>

#include "proxy/mesh_routing.h"
#include "proxy/steady_time.h"

namespace sluice::proxy {

Worker::Worker(unsigned index, Proxy& proxy, const ProxyOptions& options)
    : index_(index),
      proxy_(proxy),
      options_(options),
      pools_([&proxy](const model::IpAddress& address, uint32_t port) { return proxy.active_counter(address, port); },
             [&proxy](const std::string& identity) { return proxy.cluster_load(identity); }) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd for proxy worker");
  router_ = options.make_router ? options.make_router() : std::make_unique<MeshRouter>();
  uint64_t seed = options.random_seed != 0 ? options.random_seed + index : std::random_device{}();
  random_ = std::make_unique<lb::SeededRandom>(seed);
  lb::ActiveCounterLookup counter_for = [&proxy](const model::IpAddress& address, uint32_t port) {
    return proxy.active_counter(address, port);
  };
  picker_ = options.make_picker ? options.make_picker(*random_, std::move(counter_for))
                                : std::make_unique<MeshPicker>(*random_, std::move(counter_for));
  trace_ = std::getenv("SLUICE_PROXY_TRACE") != nullptr;
  if (options.request_body_buffer_limit > 0) {
    body_buffers_ = std::make_unique<BufferPool>(options.request_body_buffer_limit);
  }
}

// Once a second: pooled buffers unused for the whole second are unmapped,
// and after many connections closed the allocator gives its free pages
// back (glibc keeps freed small objects in its arenas otherwise), so the
// worker's memory follows its connections down.
void Worker::trim_memory() {
  next_trim_ns_ = now_ns() + 1'000'000'000;
  conn_buffers_.trim();
  if (body_buffers_) body_buffers_->trim();
  const bool busy = freed_since_trim_ >= kSpareConns;
  freed_since_trim_ = 0;
  if (busy) {
    // What a busy second frees is reused by the next one: the spares stay
    // and the heap is left as it is (a trim would walk it every second).
    trim_after_busy_ = true;
    return;
  }
  // A quiet second: spare slots and stream states beyond what a quiet
  // second needs go back, and, the first time after a busy spell, the
  // allocator returns the free pages (the spares just released and the
  // slots the burst closed), so RSS follows the load down.
  if (spare_conns_.size() > kSpareConns) spare_conns_.resize(kSpareConns);
  if (h2_spare_streams_.size() > kSpareConns) h2_spare_streams_.resize(kSpareConns);
  if (h2up_spare_streams_.size() > kSpareConns) h2up_spare_streams_.resize(kSpareConns);
  if (trim_after_busy_) {
    malloc_trim(0);
    trim_after_busy_ = false;
  }
}

Worker::~Worker() {
  for (auto& c : conns_) {
    if (c && c->fd >= 0) ::close(c->fd);
  }
  for (int fd : listener_fds_) {
    if (fd >= 0) ::close(fd);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (ring_ready_) io_uring_queue_exit(&ring_);
  if (buf_ring_ != nullptr) munmap(buf_ring_, kBufferCount * sizeof(io_uring_buf));
}

void Worker::request_drain() {
  drain_requested_.store(true);
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void Worker::request_stop() {
  stop_requested_.store(true);
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void Worker::run() {
  setup_ring();
  arm_wake();
  for (uint32_t i = 0; i < listener_fds_.size(); ++i) arm_accept(i);
  refresh_snapshot();
  clock_ns_ = now_ns();
  int64_t next_tick = clock_ns_ + 10'000'000;
  while (true) {
    __kernel_timespec ts{0, 10'000'000};
    io_uring_cqe* first = nullptr;
    io_uring_submit_and_wait_timeout(&ring_, &first, 1, &ts, nullptr);
    handle_completions();
    reclaim_slots();
    if (stop_requested_.load()) break;
    if (drain_requested_.load() && !draining_) begin_drain();
    int64_t now = now_ns();
    clock_ns_ = now;
    if (now >= next_tick) {
      refresh_snapshot();   // also without requests: pools of clusters that left close their idle connections
      check_deadlines();
      h2_flush_scheduled();
      if (outliers_) outliers_->sweep_if_due();
      flush_access_log();
      reclaim_slots();
      if (now >= next_trim_ns_) trim_memory();
      next_tick = now + 10'000'000;
    }
    if (draining_ && client_count_ == 0) break;
  }
  flush_access_log();
  for (auto& c : conns_) {
    if (c && c->role != Role::Free && !c->shut) close_conn(*c);
  }
  io_uring_submit(&ring_);
}

void Worker::refresh_snapshot() {
  uint64_t generation = proxy_.snapshot_generation();
  if (generation == snapshot_generation_) return;
  auto published = proxy_.published();
  snapshot_ = std::move(published.snapshot);
  outliers_ = std::move(published.outliers);
  snapshot_generation_ = generation;
  // No slot outside an exchange keeps an old snapshot alive: the spares
  // (reclaim_slots) and the slots that are not clients' (only a client's
  // exchange reads its references).
  auto let_go = [](Conn& slot) {
    slot.exchange->snapshot.reset();
    slot.exchange->outliers.reset();
  };
  for (auto& spare : spare_conns_) let_go(*spare);
  for (auto& slot : conns_) {
    if (slot && slot->role != Role::Client) let_go(*slot);
  }
  if (snapshot_) picker_->on_snapshot(*snapshot_);
  static const model::Snapshot kNoServices;
  revisit_pools(pools_.apply_snapshot(snapshot_ ? *snapshot_ : kNoServices));
}

void Worker::set_client_deadline(Conn& c) {
  int64_t now = loop_now_ns();
  auto ms = [](std::chrono::milliseconds d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); };
  Exchange& x = *c.exchange;
  switch (c.client_state) {
    case ClientState::AwaitingHead:
      if (!c.in.empty() || c.requests == 0) {
        if (c.deadline != Deadline::HeaderRead) {
          c.deadline = Deadline::HeaderRead;
          c.deadline_ns = now + ms(options_.request_header_timeout);
        }
      } else {
        c.deadline = Deadline::Idle;
        c.deadline_ns = now + ms(options_.idle_timeout);
      }
      break;
    case ClientState::FaultDelay:
      c.deadline = Deadline::FaultDelay;
      c.deadline_ns = x.delay_until_ns;
      break;
    case ClientState::RetryBackoff:
      c.deadline = Deadline::RetryBackoff;
      c.deadline_ns = x.route_deadline_ns != 0 ? std::min(x.retry_at_ns, x.route_deadline_ns) : x.retry_at_ns;
      break;
    case ClientState::Queued:
    case ClientState::Proxying: {
      int64_t d = 0;
      auto earliest = [&d](int64_t t) {
        if (t != 0 && (d == 0 || t < d)) d = t;
      };
      earliest(x.route_deadline_ns);
      earliest(x.try_deadline_ns);
      if (!x.request_done && options_.request_timeout.count() > 0) earliest(x.start_ns + ms(options_.request_timeout));
      if (options_.stream_idle_timeout.count() > 0 && c.client_state == ClientState::Proxying) {
        // Checked when it fires: if bytes moved since, it starts again, so
        // an idle stream ends between one and two timeouts after its last
        // byte. A request queued for a connection is waiting, not idle: the
        // requests holding the pool's connections have these timeouts.
        x.idle_mark = bytes_moved(c);
        earliest(now + ms(options_.stream_idle_timeout));
      }
      c.deadline = d == 0 ? Deadline::None : Deadline::Request;
      c.deadline_ns = d;
      break;
    }
    case ClientState::Closing:
      c.deadline = Deadline::Idle;
      c.deadline_ns = now + ms(options_.request_header_timeout);
      break;
    case ClientState::Http2:   // idle while no stream is open: h2_flush sets it
      break;
    case ClientState::Tunneling:   // a WebSocket lives while bytes move, up to the idle timeout between them
      c.deadline = options_.stream_idle_timeout.count() > 0 ? Deadline::Idle : Deadline::None;
      c.deadline_ns = now + ms(options_.stream_idle_timeout);
      break;
  }
}

uint64_t Worker::bytes_moved(const Conn& c) const {
  uint64_t n = c.in.consumed_total() + c.out.consumed_total();
  if (c.upstream != kNone) n += conns_[c.upstream]->in.consumed_total() + conns_[c.upstream]->out.consumed_total();
  return n;
}

void Worker::check_deadlines() {
  int64_t now = now_ns();
  size_t count = conns_.size();
  for (size_t i = 0; i < count; ++i) {
    if (!conns_[i]) continue;
    Conn& c = *conns_[i];
    if (c.role == Role::Free || c.shut || c.deadline == Deadline::None || c.deadline_ns > now) continue;
    Deadline d = c.deadline;
    c.deadline = Deadline::None;
    switch (d) {
      case Deadline::HeaderRead:
        if (c.client_state == ClientState::AwaitingHead && !c.in.empty()) {
          Exchange& x = *c.exchange;
          x.has_body = false;
          x.client_keep_alive = false;
          x.destination = nullptr;
          x.service = nullptr;
          x.backend = kNone;
          x.start_ns = now;
          reply_local(c, 408, "request header timeout\n", "", true, "-");
        } else {
          close_conn(c);
        }
        break;
      case Deadline::PoolIdle:
        if (c.role == Role::Upstream) duration_reached(c);   // counted if that is why it closes
        [[fallthrough]];
      case Deadline::Idle:
        if (c.role == Role::Client && c.client_state == ClientState::Tunneling) end_tunnel(c);
        else close_conn(c);
        break;
      case Deadline::FaultDelay:
        continue_after_delay(c);
        break;
      case Deadline::RetryBackoff: {
        Exchange& x = *c.exchange;
        c.client_state = ClientState::Proxying;
        if (x.route_deadline_ns != 0 && now >= x.route_deadline_ns) {
          reply_route_timeout(c);
        } else {
          dispatch(c);
        }
        break;
      }
      case Deadline::Request: {
        Exchange& x = *c.exchange;
        if (x.route_deadline_ns != 0 && now >= x.route_deadline_ns) {
          if (x.response_started) {
            abort_exchange(c, "UT");
          } else {
            remove_pending(c);
            if (c.upstream != kNone) record_local_failure(x, Failure::Timeout);
            detach_upstream(c, false);
            end_attempt(c);
            reply_route_timeout(c);
          }
        } else if (x.try_deadline_ns != 0 && now >= x.try_deadline_ns) {
          fail_exchange(c, Failure::Timeout);
        } else if (!x.request_done && options_.request_timeout.count() > 0 &&
                   now >= x.start_ns + to_ns(options_.request_timeout)) {
          end_stream_on_timeout(c, ProxyCounter::RequestTimeouts, "request timeout\n", "-");
        } else if (options_.stream_idle_timeout.count() > 0 && c.client_state == ClientState::Proxying &&
                   bytes_moved(c) == x.idle_mark) {
          end_stream_on_timeout(c, ProxyCounter::StreamIdleTimeouts, "stream timeout\n", "SI");
        } else {
          set_client_deadline(c);   // bytes moved since the idle timer started: not idle
        }
        break;
      }
      case Deadline::Connect: {
        uint32_t client = c.client;
        c.client = kNone;
        if (client != kNone) conns_[client]->upstream = kNone;
        close_conn(c);
        if (client != kNone) fail_exchange(*conns_[client], Failure::ConnectFailure);
        break;
      }
      case Deadline::None:
        break;
    }
  }
}

void Worker::begin_drain() {
  draining_ = true;
  for (uint32_t i = 0; i < listener_fds_.size(); ++i) {
    if (listener_fds_[i] < 0) continue;
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, encode_user_data(Op::Accept, 0, i), 0);
    io_uring_sqe_set_data64(s, encode_user_data(Op::Cancel, 0, i));
    io_uring_submit(&ring_);
    ::close(listener_fds_[i]);
    listener_fds_[i] = -1;
  }
  h2_goaway_all();
  for (auto& conn : conns_) {
    if (!conn) continue;
    Conn& c = *conn;
    if (c.role == Role::Free || c.shut) continue;
    if (c.role == Role::Upstream && c.upstream_state == UpstreamState::Idle) close_conn(c);
    if (c.role == Role::Upstream && c.h2up) h2up_after_stream(c);   // closes it once it has no stream
    if (c.role == Role::Client && c.client_state == ClientState::AwaitingHead && c.in.empty()) {
      if (c.out.empty() && !c.send_inflight) close_conn(c);
      else c.client_state = ClientState::Closing;
    }
  }
}

}  // namespace sluice::proxy
