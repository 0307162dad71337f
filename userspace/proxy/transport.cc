// The transport: the worker's io_uring (provided receive buffers, multishot
// accept and receive, one send in flight per connection), its connection
// slots and their buffers. Received bytes go to the codec (deliver); the
// codec queues bytes to send in a connection's `out` and calls submit_send.
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <system_error>

#include "proxy/listen_sockets.h"
#include "proxy/socket_address.h"
#include "proxy/steady_time.h"
#include "proxy/worker.h"

namespace sluice::proxy {

void Worker::bind_listeners() {
  for (const auto& spec : options_.listeners) {
    int fd = -1;
    if (spec.inherited_fd < 0) {
      fd = open_listen_socket(spec.address);
    } else if (index_ == 0) {
      fd = spec.inherited_fd;
    } else {
      int reuseport = 0;
      socklen_t len = sizeof reuseport;
      getsockopt(spec.inherited_fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, &len);
      fd = reuseport ? open_listen_socket(spec.address) : fcntl(spec.inherited_fd, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) throw std::system_error(errno, std::generic_category(), "dup of inherited listener " + spec.address);
    }
    listener_fds_.push_back(fd);
  }
  accept_armed_.assign(listener_fds_.size(), false);
}

void Worker::setup_ring() {
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = 16384;
  int rc = io_uring_queue_init_params(2048, &ring_, &p);
  if (rc < 0) {
    p = io_uring_params{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    rc = io_uring_queue_init_params(2048, &ring_, &p);
  }
  if (rc < 0) throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init for proxy worker");
  ring_ready_ = true;

  void* mem = mmap(nullptr, kBufferCount * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap for provided buffer ring");
  buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(mem);
  reg.ring_entries = kBufferCount;
  reg.bgid = 0;
  rc = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (rc < 0) throw std::system_error(-rc, std::generic_category(), "io_uring_register_buf_ring");
  buffers_ = std::make_unique<char[]>(size_t{kBufferCount} * kBufferSize);
  for (uint32_t i = 0; i < kBufferCount; ++i) {
    io_uring_buf_ring_add(buf_ring_, buffer_address(static_cast<uint16_t>(i)), kBufferSize,
                          static_cast<uint16_t>(i), io_uring_buf_ring_mask(kBufferCount), static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buf_ring_, kBufferCount);
}

io_uring_sqe* Worker::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (s == nullptr) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

void Worker::recycle_buffer(uint16_t bid) {
  io_uring_buf_ring_add(buf_ring_, buffer_address(bid), kBufferSize, bid, io_uring_buf_ring_mask(kBufferCount), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

void Worker::arm_accept(uint32_t listener) {
  io_uring_sqe* s = sqe();
  io_uring_prep_multishot_accept(s, listener_fds_[listener], nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, encode_user_data(Op::Accept, 0, listener));
  accept_armed_[listener] = true;
}

void Worker::arm_recv(Conn& c) {
  if (c.recv_armed || c.shut || c.peer_eof || c.fd < 0) return;
  io_uring_sqe* s = sqe();
  io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = 0;
  io_uring_sqe_set_data64(s, encode_user_data(Op::Recv, c.generation, c.id));
  c.recv_armed = true;
  c.recv_paused = false;
  ++c.ops;
}

void Worker::arm_wake() {
  io_uring_sqe* s = sqe();
  io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(s, encode_user_data(Op::Wake, 0, 0));
}

// One send in flight per connection and direction. A second concurrent send
// on the same socket could run before the first finished a short write and
// interleave bytes; and the buffer a send reads from must stay put until it
// completes, so the buffer is pinned (not compacted) meanwhile.
void Worker::submit_send(Conn& c) {
  if (c.h2_parent != kNone) {   // an HTTP/2 stream: its bytes leave as frames of its connection
    if (c.shut || c.out.empty()) return;
    if (c.role == Role::Upstream) h2up_stream_output(c);
    else h2_stream_output(c);
    return;
  }
  if (c.send_inflight || c.shut || c.out.empty()) return;
  if (c.role == Role::Upstream && c.upstream_state == UpstreamState::Connecting) return;
  auto data = c.out.readable();
  io_uring_sqe* s = sqe();
  io_uring_prep_send(s, c.fd, data.data(), data.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, encode_user_data(Op::Send, c.generation, c.id));
  c.out.pin(true);
  c.send_inflight = true;
  ++c.ops;
}

// Completions in slices of kCompletionSlice: what the slice queued (sends
// of responses, forwarded requests) is submitted before the next slice, so
// the peers on the other CPU start on it while this worker goes on, instead
// of every send of a large batch waiting for the whole batch. HTTP/2
// connections are flushed once per slice, not once per completion: the
// responses that several upstream receives of a slice bring to one client
// connection leave in one send (docs/l7-proxy.md, "Write batching").
void Worker::handle_completions() {
  while (true) {
    unsigned head;
    unsigned count = 0;
    io_uring_cqe* cqe;
    clock_ns_ = now_ns();
    io_uring_for_each_cqe(&ring_, head, cqe) {
      handle_cqe(*cqe);
      if (++count == kCompletionSlice) break;
    }
    io_uring_cq_advance(&ring_, count);
    h2_flush_scheduled();
    if (count < kCompletionSlice) return;
    if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
  }
}

void Worker::handle_cqe(const io_uring_cqe& cqe) {
  UserData ud = decode_user_data(cqe.user_data);
  if (trace_) {
    std::fprintf(stderr, "worker %u: op=%d id=%u gen=%u res=%d flags=%x\n", index_, static_cast<int>(ud.op), ud.id,
                 ud.generation, cqe.res, cqe.flags);
  }
  switch (ud.op) {
    case Op::Wake:
      if (!stop_requested_.load()) arm_wake();
      return;
    case Op::Cancel:
      return;
    case Op::Accept:
      if (!(cqe.flags & IORING_CQE_F_MORE)) accept_armed_[ud.id] = false;
      if (cqe.res >= 0) on_accept(ud.id, cqe.res);
      if (!accept_armed_[ud.id] && !draining_ && listener_fds_[ud.id] >= 0) arm_accept(ud.id);
      return;
    default:
      break;
  }
  Conn* c = live(ud.id, ud.generation);
  if (c == nullptr) {
    // Cannot happen while `ops` accounting holds; still give the buffer back.
    if (ud.op == Op::Recv && (cqe.flags & IORING_CQE_F_BUFFER)) {
      recycle_buffer(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
    }
    return;
  }
  switch (ud.op) {
    case Op::Recv: on_recv(*c, cqe); break;
    case Op::Send: on_send(*c, cqe.res); break;
    case Op::Connect: on_connect(*c, cqe.res); break;
    default: break;
  }
}

Worker::Conn* Worker::alloc_conn(Role role) {
  uint32_t id;
  if (!free_conns_.empty()) {
    id = free_conns_.back();
    free_conns_.pop_back();
  } else {
    if (conns_.size() >= options_.max_connections_per_worker) return nullptr;
    id = static_cast<uint32_t>(conns_.size());
    conns_.emplace_back();
    generations_.push_back(0);
  }
  // A slot holds no buffer until bytes arrive (ByteBuffer takes them from
  // the pool on first write): an idle connection costs its Conn alone.
  if (!spare_conns_.empty()) {
    conns_[id] = std::move(spare_conns_.back());
    spare_conns_.pop_back();
  } else {
    conns_[id] = std::make_unique<Conn>();
    conns_[id]->in.bind(&conn_buffers_);
    conns_[id]->out.bind(&conn_buffers_);
    conns_[id]->exchange = std::make_unique<Exchange>();
    conns_[id]->exchange->upstream_head.bind(&conn_buffers_);
  }
  Conn* c = conns_[id].get();
  c->id = id;
  c->generation = generations_[id];
  c->role = role;
  c->fd = -1;
  c->ops = 0;
  c->recv_armed = c->send_inflight = c->shut = c->peer_eof = c->recv_paused = false;
  c->in.clear();
  c->out.clear();
  c->head_scan.reset();
  c->held_count = 0;
  c->deadline = Deadline::None;
  c->deadline_ns = 0;
  c->client_state = ClientState::AwaitingHead;
  c->upstream = c->client = c->pool = c->next = kNone;
  c->h2_parent = kNone;
  c->h2_stream = 0;
  c->h2_client_stream = nullptr;
  c->h2_trailers.clear();
  c->requests = 0;
  c->opened_ns = 0;
  c->duration_reached = false;
  c->reused = false;
  c->mirror = false;
  return c;
}

Worker::Conn* Worker::live(uint32_t id, uint32_t generation) {
  if (id >= conns_.size() || !conns_[id]) return nullptr;
  Conn* c = conns_[id].get();
  if (c->role == Role::Free || (c->generation & 0xffffffu) != generation) return nullptr;
  return c;
}

void Worker::close_conn(Conn& c) {
  if (c.shut) return;
  c.shut = true;
  c.deadline = Deadline::None;
  for (uint16_t i = 0; i < c.held_count; ++i) recycle_buffer(c.held[i].bid);
  c.held_count = 0;
  if (c.role == Role::Upstream && c.pool != kNone) {
    UpstreamPools::Pool& p = pools_.pool(c.pool);
    if (c.h2up) std::erase(p.http2_connections, c.id);
    if (c.upstream_state == UpstreamState::Idle) {
      for (uint32_t* link = &p.idle_head; *link != kNone; link = &conns_[*link]->next) {
        if (*link == c.id) {
          *link = c.next;
          break;
        }
      }
    }
    pools_.add_connections(c.pool, -1);
    count_for_pool(ProxyCounter::UpstreamConnectionsActive, c.pool, -1);
  }
  if (c.h2) h2_close_streams(c);
  if (c.h2up) h2up_close_streams(c);
  if (c.h2_parent != kNone) {
    if (c.role == Role::Upstream) h2up_detach_stream(c);
    else h2_detach_stream(c);
  } else {
    // Shutdown ends the multishot receive (it completes with 0) and fails any
    // send or connect in flight; the slot is reused only after all complete.
    ::shutdown(c.fd, SHUT_RDWR);
    ::close(c.fd);
  }
  uint32_t pool = c.role == Role::Upstream ? c.pool : kNone;
  maybe_free(c);
  if (pool != kNone) {
    if (!draining_) serve_pending(pool);
    pools_.release_if_unused(pool);
  }
}

void Worker::maybe_free(Conn& c) {
  if (c.role == Role::Free || !c.shut || c.ops > 0) return;
  if (c.role == Role::Client) {
    if (c.h2_parent == kNone) {   // an HTTP/2 stream is not a connection
      --client_count_;
      proxy_.downstream_closed();
    }
  }
  c.role = Role::Free;
  c.fd = -1;
  generations_[c.id] = (c.generation + 1) & 0xffffffu;
  // Callers up the stack may still look at `c` (c.shut): its memory goes
  // back after the batch of completions (reclaim_slots).
  freed_conns_.push_back(c.id);
}

// Memory goes back with the connection: its buffers to the pool, the
// slot object to the spares or the allocator; then the id is free.
void Worker::reclaim_slots() {
  for (uint32_t id : freed_conns_) {
    Conn& c = *conns_[id];
    c.in.clear();
    c.in.release();
    c.out.clear();
    c.out.release();
    c.exchange->upstream_head.clear();
    c.exchange->upstream_head.release();
    c.exchange->body.clear();
    c.exchange->body.release();
    std::vector<HeldBuffer>().swap(c.held);
    c.h2.reset();   // here, not at close: a close may come from inside the session's callbacks
    c.h2up.reset();
    c.h2mirror.reset();
    // A spare keeps its references to the current snapshot, so that the
    // next request on it (an HTTP/2 stream takes a slot per request) costs
    // no reference-count atomics; an older one is let go here, and
    // refresh_snapshot lets go of the spares' when the snapshot changes.
    if (c.exchange->snapshot != snapshot_) {
      c.exchange->snapshot.reset();
      c.exchange->outliers.reset();
    }
    if (spare_conns_.size() < kMaxSpareConns) spare_conns_.push_back(std::move(conns_[id]));
    else conns_[id].reset();
    free_conns_.push_back(id);
  }
  freed_since_trim_ += static_cast<uint32_t>(freed_conns_.size());
  freed_conns_.clear();
}

void Worker::on_accept(uint32_t listener, int fd) {
  if (draining_) {
    ::close(fd);
    return;
  }
  // --max-connections (all workers): over it the connection is closed at
  // once and counted, as Envoy's overload manager does (downstream_cx_overflow).
  if (!proxy_.admit_downstream()) {
    ::close(fd);
    return;
  }
  Conn* c = alloc_conn(Role::Client);
  if (c == nullptr) {
    metrics_.add(ProxyCounter::SlotLimitConnections, listener_spec(listener).service_host, "");
    proxy_.downstream_closed();
    ::close(fd);   // at the worker's slot limit: refuse rather than queue unboundedly
    return;
  }
  ++client_count_;
  c->fd = fd;
  c->listener = listener;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (listener_spec(listener).service_host.empty()) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    from_sockaddr(ss, c->local_address, c->local_port);
  }
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  c->peer_address = model::IpAddress{};
  c->peer_port = 0;
  c->client_namespace_generation = kNoGeneration;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
    from_sockaddr(peer, c->peer_address, c->peer_port);
  }
  arm_recv(*c);
  set_client_deadline(*c);
}

void Worker::on_recv(Conn& c, const io_uring_cqe& cqe) {
  bool more = cqe.flags & IORING_CQE_F_MORE;
  if (!more) {
    c.recv_armed = false;
    --c.ops;
  }
  if (cqe.res > 0) {
    auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    if (c.shut) {
      recycle_buffer(bid);
    } else {
      deliver(c, std::string_view(buffer_address(bid), static_cast<size_t>(cqe.res)), bid, 0);
    }
  } else if (cqe.res == -ENOBUFS) {
    // The provided-buffer ring ran dry; receive again once buffers return.
  } else if (cqe.res != -ECANCELED && !c.shut) {
    on_peer_eof(c);   // 0: orderly close; <0: reset or error
  }
  if (!c.shut && !more && !c.recv_paused && !c.peer_eof) arm_recv(c);
  maybe_free(c);
}

// Copies received bytes into the connection's input buffer. When it is full
// (the other side is slower), the rest stays in the provided buffer, held in
// order, and the multishot receive is cancelled until there is room again.
void Worker::deliver(Conn& c, std::string_view data, uint16_t bid, uint32_t offset) {
  size_t n = c.held_count > 0 ? 0 : std::min(data.size(), c.in.space());
  if (n > 0) {
    c.in.append(data.substr(0, n));
  }
  if (n < data.size()) {
    if (c.held_count == kMaxHeld) {
      recycle_buffer(bid);
      close_conn(c);
      return;
    }
    if (c.held.size() == c.held_count) c.held.emplace_back();
    c.held[c.held_count++] = HeldBuffer{bid, offset + static_cast<uint32_t>(n), static_cast<uint32_t>(data.size() - n)};
    if (c.recv_armed && !c.recv_paused) {
      io_uring_sqe* s = sqe();
      io_uring_prep_cancel64(s, encode_user_data(Op::Recv, c.generation, c.id), 0);
      io_uring_sqe_set_data64(s, encode_user_data(Op::Cancel, c.generation, c.id));
    }
    c.recv_paused = true;
  } else {
    recycle_buffer(bid);
  }
  if (c.role == Role::Client) {
    if (c.client_state == ClientState::Proxying) pump_request(c);
    else if (c.client_state == ClientState::Http2) h2_receive(c);
    else if (c.client_state == ClientState::Tunneling) pump_tunnel(c);
    else process_client(c);
  } else if (c.h2up) {
    h2up_receive(c);
  } else if (c.client != kNone) {
    pump_response(*conns_[c.client]);
  } else if (c.h2mirror) {
    h2mirror_receive(c);   // frames read and answered, the response dropped
  } else if (c.mirror) {
    c.in.clear();   // a mirror's response is read and dropped until the upstream closes
  } else if (!c.shut) {
    close_conn(c);   // an idle pooled connection must not send anything
  }
}

bool Worker::drain_held(Conn& c) {
  bool moved = false;
  while (c.held_count > 0 && c.in.space() > 0) {
    HeldBuffer& h = c.held[0];
    size_t n = std::min<size_t>(h.len, c.in.space());
    c.in.append(std::string_view(buffer_address(h.bid) + h.offset, n));
    moved = true;
    h.offset += static_cast<uint32_t>(n);
    h.len -= static_cast<uint32_t>(n);
    if (h.len == 0) {
      recycle_buffer(h.bid);
      std::move(c.held.begin() + 1, c.held.begin() + c.held_count, c.held.begin());
      --c.held_count;
    }
  }
  if (c.held_count == 0 && c.recv_paused && !c.recv_armed && !c.peer_eof && !c.shut) arm_recv(c);
  return moved;
}

void Worker::on_send(Conn& c, int res) {
  --c.ops;
  c.send_inflight = false;
  c.out.pin(false);
  if (c.shut) {
    maybe_free(c);
    return;
  }
  if (res < 0) {
    if (c.role == Role::Client) {
      switch (c.client_state) {
        case ClientState::AwaitingHead:
        case ClientState::Closing:
        case ClientState::Http2:
          close_conn(c);
          break;
        case ClientState::Tunneling:
          end_tunnel(c);
          break;
        default:   // an exchange in flight: release its upstream and count it
          abort_exchange(c, "DC");
          break;
      }
    } else {
      // An upstream that cannot be written to: in a tunnel, what was queued
      // for it is dropped, so the other direction can still finish.
      if (c.client != kNone && conns_[c.client]->client_state == ClientState::Tunneling) c.out.clear();
      on_peer_eof(c);
    }
    return;
  }
  c.out.consume(static_cast<size_t>(res));
  c.out.release();   // drained: the buffer goes back to the pool until more is queued
  submit_send(c);
  if (c.role == Role::Client) {
    if (c.client_state == ClientState::Closing && c.out.empty()) {
      close_conn(c);
    } else if (c.client_state == ClientState::Proxying) {
      pump_response(c);
    } else if (c.client_state == ClientState::Http2) {
      h2_flush(c);
    } else if (c.client_state == ClientState::Tunneling) {
      pump_tunnel(c);
    } else if (c.client_state == ClientState::AwaitingHead) {
      process_client(c);
    }
  } else if (c.h2up) {
    h2up_flush(c);
  } else if (c.client != kNone) {
    pump_request(*conns_[c.client]);
  } else if (c.mirror) {
    pump_mirror(c);
  }
}

void Worker::on_peer_eof(Conn& c) {
  c.peer_eof = true;
  if (c.role == Role::Upstream) {
    if (c.client == kNone) {
      close_conn(c);
      return;
    }
    Conn& client = *conns_[c.client];
    Exchange& x = *client.exchange;
    if (!x.response_head_done) {
      fail_exchange(client, Failure::Reset);
    } else {
      pump_response(client);   // ends an until-close body, or finds it truncated
    }
    return;
  }
  switch (c.client_state) {
    case ClientState::AwaitingHead:
      process_client(c);
      break;
    case ClientState::Proxying:
    case ClientState::RetryBackoff:
      // A half-close after a complete request still gets its response.
      if (!c.exchange->request_done) abort_exchange(c, "DC");
      break;
    case ClientState::FaultDelay:
    case ClientState::Queued:
      abort_exchange(c, "DC");
      break;
    case ClientState::Closing:
      if (c.out.empty()) close_conn(c);
      break;
    case ClientState::Tunneling:
      pump_tunnel(c);
      break;
    case ClientState::Http2:   // HTTP/2 has no half-close of the connection: its streams end
      close_conn(c);
      break;
  }
}

}  // namespace sluice::proxy
