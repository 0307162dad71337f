// Upstream connections and their pools' lifecycle: open a connection for an
// attempt, hand an idle one over, queue an attempt the pool cannot serve
// yet, serve the queue as connections free up, release a connection back to
// its pool (or close it), and revisit pools a new snapshot changed.
#include <netinet/tcp.h>
#include <unistd.h>

#include "proxy/socket_address.h"
#include "proxy/steady_time.h"
#include "proxy/worker.h"

namespace sluice::proxy {

void Worker::count_for_pool(ProxyCounter counter, uint32_t pool, int64_t delta) {
  const UpstreamPools::Cluster& cluster = pools_.cluster_of(pool);
  metrics_.add(counter, cluster.service, pools_.backend(pools_.pool(pool).backend).workload, delta,
               version_label(cluster.subset));
}

void Worker::remove_pending(Conn& c) {
  if (c.client_state != ClientState::Queued) return;
  UpstreamPools::Pool& p = pools_.pool(c.exchange->pool);
  uint32_t prev = kNone;
  for (uint32_t id = p.pending_head; id != kNone; prev = id, id = conns_[id]->next) {
    if (id != c.id) continue;
    if (prev == kNone) p.pending_head = c.next;
    else conns_[prev]->next = c.next;
    if (p.pending_tail == c.id) p.pending_tail = prev;
    pools_.add_pending(c.exchange->pool, -1);
    break;
  }
  c.client_state = ClientState::Proxying;
}

// Queued requests take the pool's idle connections, then new ones while
// the cluster's maxConnections allows. The pool is looked up again after
// each hand-over: a failed connect may retry, and a retry may create pools.
void Worker::serve_pending(uint32_t pool) {
  while (pools_.pool(pool).pending_head != kNone) {
    Conn& c = *conns_[pools_.pool(pool).pending_head];
    if (pools_.cluster_of(pool).http2) {
      const uint32_t room = h2up_connection_with_room(pool);
      if (room == kNone && !pools_.may_open(pool)) break;
      remove_pending(c);
      if (room != kNone) h2up_start_stream(c, *conns_[room]);
      else h2up_open(c, pool);
      continue;
    }
    if (pools_.pool(pool).idle_head == kNone && !pools_.may_open(pool)) break;
    remove_pending(c);
    UpstreamPools::Pool& p = pools_.pool(pool);
    if (p.idle_head != kNone) {
      Conn& u = *conns_[p.idle_head];
      p.idle_head = u.next;
      attach_upstream(c, u);
    } else {
      open_upstream(c, pool);
    }
  }
}

void Worker::revisit_pools(std::vector<uint32_t> pools) {
  for (uint32_t pool : pools) {
    revisit_scratch_.clear();
    for (uint32_t id = pools_.pool(pool).idle_head; id != kNone; id = conns_[id]->next) revisit_scratch_.push_back(id);
    for (uint32_t id : revisit_scratch_) {
      if (!pools_.pool(pool).in_use) break;   // the last close freed it
      Conn& u = *conns_[id];
      if (u.shut || u.pool != pool || u.upstream_state != UpstreamState::Idle) continue;
      if (upstream_spent(u, u.requests)) {
        close_conn(u);
      } else {
        u.deadline_ns = pool_idle_deadline(u);
      }
    }
    // HTTP/2 connections without streams: closed if retired or spent, else
    // idle from their idle start for the new idleTimeout and
    // maxConnectionDuration (h2up_after_stream).
    revisit_scratch_.assign(pools_.pool(pool).http2_connections.begin(), pools_.pool(pool).http2_connections.end());
    for (uint32_t id : revisit_scratch_) {
      if (!pools_.pool(pool).in_use) break;
      Conn& u = *conns_[id];
      if (u.shut || u.pool != pool || !u.h2up || u.deadline != Deadline::PoolIdle) continue;
      h2up_after_stream(u);
    }
    if (pools_.pool(pool).in_use && !draining_) serve_pending(pool);   // maxConnections may have grown
  }
}

void Worker::open_upstream(Conn& c, uint32_t pool) {
  Exchange& x = *c.exchange;
  const UpstreamPools::BackendKey key = pools_.backend(pools_.pool(pool).backend).key;
  Conn* u = alloc_conn(Role::Upstream);
  if (u == nullptr) count_for_pool(ProxyCounter::SlotLimitUpstreams, pool, 1);
  int fd = u == nullptr ? -1 : ::socket(key.address.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (u != nullptr) {
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
  count_for_pool(ProxyCounter::UpstreamConnectionsOpened, pool, 1);
  count_for_pool(ProxyCounter::UpstreamConnectionsActive, pool, 1);
  set_upstream_socket_options(fd, pools_.settings(pool));
  u->client = c.id;
  c.upstream = u->id;
  c.client_state = ClientState::Proxying;
  u->out.append(x.upstream_head.readable());
  io_uring_sqe* s = sqe();
  io_uring_prep_connect(s, fd, reinterpret_cast<sockaddr*>(&u->address), u->address_len);
  io_uring_sqe_set_data64(s, encode_user_data(Op::Connect, u->generation, u->id));
  ++u->ops;
  u->deadline = Deadline::Connect;
  u->deadline_ns = loop_now_ns() + to_ns(pools_.settings(pool).connect_timeout);
  pump_request(c);
  set_client_deadline(c);
}

void Worker::attach_upstream(Conn& c, Conn& u) {
  Exchange& x = *c.exchange;
  u.upstream_state = UpstreamState::Busy;
  u.client = c.id;
  u.reused = true;
  u.deadline = Deadline::None;
  c.upstream = u.id;
  c.client_state = ClientState::Proxying;
  // An HTTP/2 stream's HEADERS are made from the exchange's copy of the
  // head (kept for retries) at once; an HTTP/1.1 connection sends it.
  if (u.h2_parent != kNone) h2up_submit_request(u, x.upstream_head.readable());
  else u.out.append(x.upstream_head.readable());
  pump_request(c);
  submit_send(u);
  set_client_deadline(c);
}

void Worker::on_connect(Conn& u, int res) {
  --u.ops;
  if (u.shut) {
    maybe_free(u);
    return;
  }
  u.deadline = Deadline::None;
  if (res < 0) {
    uint32_t client = u.client;
    u.client = kNone;
    if (client != kNone) conns_[client]->upstream = kNone;
    close_conn(u);
    if (client != kNone) fail_exchange(*conns_[client], Failure::ConnectFailure);
    return;
  }
  u.upstream_state = UpstreamState::Busy;
  u.opened_ns = loop_now_ns();
  arm_recv(u);
  if (u.mirror) {
    u.deadline = Deadline::Idle;   // bound a mirror's life: the response is not awaited by anyone
    u.deadline_ns = loop_now_ns() + to_ns(std::chrono::seconds(10));
    pump_mirror(u);
    return;
  }
  submit_send(u);
}

// A reusable connection goes back to its pool unless it has served its
// cluster's maxRequestsPerConnection, lived its maxConnectionDuration or
// the pool was retired (its cluster or backend left the snapshot); it then
// waits at most the cluster's idleTimeout for its next request (and no
// longer than its maxConnectionDuration). The settings are the pool's own,
// never those of another subset that reaches the same backend.
void Worker::release_upstream(Conn& u, bool reusable) {
  u.client = kNone;
  if (u.shut) return;
  if (u.h2_parent != kNone) {   // an HTTP/2 stream ends; its connection stays (h2up_detach_stream)
    close_conn(u);
    return;
  }
  const uint32_t pool = u.pool;
  if (!reusable || draining_ || u.peer_eof || !u.in.empty() || u.held_count > 0 || upstream_spent(u, u.requests)) {
    close_conn(u);
    return;
  }
  u.in.release();   // an idle pooled connection holds no buffer
  u.out.release();
  UpstreamPools::Pool& p = pools_.pool(pool);
  u.upstream_state = UpstreamState::Idle;
  u.next = p.idle_head;
  p.idle_head = u.id;
  u.idle_since_ns = loop_now_ns();
  u.deadline = Deadline::PoolIdle;
  u.deadline_ns = pool_idle_deadline(u);
  serve_pending(pool);
}

bool Worker::duration_reached(Conn& u) {
  if (u.duration_reached) return true;
  const model::Duration max = pools_.settings(u.pool).max_connection_duration;
  if (max.count() == 0 || u.opened_ns == 0 || loop_now_ns() - u.opened_ns < to_ns(max)) return false;
  u.duration_reached = true;
  count_for_pool(ProxyCounter::UpstreamMaxDurationReached, u.pool, 1);
  return true;
}

bool Worker::upstream_spent(Conn& u, uint32_t requests) {
  return pools_.pool(u.pool).retired || pools_.exhausted(u.pool, requests) || duration_reached(u);
}

int64_t Worker::pool_idle_deadline(const Conn& u) const {
  const model::ConnectionPool& settings = pools_.settings(u.pool);
  int64_t deadline = u.idle_since_ns + to_ns(settings.idle_timeout);
  if (settings.max_connection_duration.count() > 0 && u.opened_ns != 0) {
    deadline = std::min(deadline, u.opened_ns + to_ns(settings.max_connection_duration));
  }
  return deadline;
}

void Worker::detach_upstream(Conn& c, bool reusable) {
  if (c.upstream == kNone) return;
  Conn& u = *conns_[c.upstream];
  c.upstream = kNone;
  ++u.requests;
  release_upstream(u, reusable);
}

void Worker::end_attempt(Conn& c) {
  Exchange& x = *c.exchange;
  if (!x.counted_active) return;
  const uint32_t pool = x.pool;
  UpstreamPools::Pool& p = pools_.pool(pool);
  pools_.add_active(pool, -1);
  pools_.backend(p.backend).shared_active->fetch_sub(1, std::memory_order_relaxed);
  x.counted_active = false;
  x.pool = kNone;
  pools_.release_if_unused(pool);
}

}  // namespace sluice::proxy
