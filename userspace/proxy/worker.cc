// The proxy's connection state machine: every io_uring completion lands in
// handle_cqe(), and every transition of a client or upstream connection is a
// function below. Read top to bottom: ring plumbing, receive/send, the client
// request path (head → route → actions → upstream), the response path, and
// the upstream pools, outliers and deadlines.
#include "proxy/worker.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>

#include <re2/re2.h>

#include "http/local_response.h"
#include "proxy/mesh_routing.h"
#include "proxy/retry_policy.h"

namespace sluice::proxy {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t to_ns(model::Duration d) { return d.count(); }

// Appends pieces into a fixed span; remembers if anything did not fit.
class HeadWriter {
 public:
  explicit HeadWriter(std::span<char> out) : out_(out) {}
  HeadWriter& operator<<(std::string_view s) {
    if (!ok_ || s.size() > out_.size() - len_) {
      ok_ = false;
      return *this;
    }
    std::memcpy(out_.data() + len_, s.data(), s.size());
    len_ += s.size();
    return *this;
  }
  HeadWriter& operator<<(uint64_t n) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, n);
    return *this << std::string_view(digits, static_cast<size_t>(r.ptr - digits));
  }
  void field(std::string_view name, std::string_view value) { *this << name << ": " << value << "\r\n"; }
  bool ok() const { return ok_; }
  size_t size() const { return len_; }

 private:
  std::span<char> out_;
  size_t len_ = 0;
  bool ok_ = true;
};

bool listed(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return http::iequals(n, name); });
}

bool listed(const std::vector<std::pair<std::string, std::string>>& pairs, std::string_view name) {
  return std::any_of(pairs.begin(), pairs.end(), [&](const auto& p) { return http::iequals(p.first, name); });
}

// Field removed or replaced by a route's (or destination's) header operations.
bool overridden(const model::HeaderOperations* a, const model::HeaderOperations* b, std::string_view name) {
  for (const auto* ops : {a, b}) {
    if (ops != nullptr && (listed(ops->remove, name) || listed(ops->set, name))) return true;
  }
  return false;
}

void write_header_operations(HeadWriter& w, const model::HeaderOperations* a, const model::HeaderOperations* b) {
  for (const auto* ops : {a, b}) {
    if (ops == nullptr) continue;
    for (const auto& [name, value] : ops->set) w.field(name, value);
    for (const auto& [name, value] : ops->add) w.field(name, value);
  }
}

// A client's address as x-forwarded-for carries it: the IP alone (no port,
// no brackets), as Envoy writes it.
void write_forwarded_address(HeadWriter& w, const model::IpAddress& ip) {
  std::array<char, model::IpAddress::kMaxText> text;
  w << ip.format(text);
}

std::pair<std::string, uint16_t> split_host_port(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("listener '" + address + "': expected ADDR:PORT");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto port_text = std::string_view(address).substr(colon + 1);
  auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (r.ec != std::errc() || r.ptr != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    throw std::invalid_argument("listener '" + address + "': invalid port '" + std::string(port_text) + "'");
  }
  return {host, static_cast<uint16_t>(port)};
}

socklen_t to_sockaddr(const model::IpAddress& ip, uint32_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (ip.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sin->sin_addr, ip.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(port));
  std::memcpy(&sin6->sin6_addr, ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

void from_sockaddr(const sockaddr_storage& ss, model::IpAddress& ip, uint32_t& port) {
  ip = model::IpAddress{};
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    ip.family = model::IpAddress::kV4;
    std::memcpy(ip.bytes.data(), &sin->sin_addr, 4);
    port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ip.family = model::IpAddress::kV6;
    std::memcpy(ip.bytes.data(), &sin6->sin6_addr, 16);
    port = ntohs(sin6->sin6_port);
  }
}

// Istio's destination_version for a subset name; the whole service has none.
std::string_view version_label(std::string_view subset) { return subset.empty() ? "unknown" : subset; }

}  // namespace

Worker::Worker(unsigned index, Proxy& proxy, const ProxyOptions& options)
    : index_(index),
      proxy_(proxy),
      options_(options),
      pools_([&proxy](const model::IpAddress& address, uint32_t port) { return proxy.active_counter(address, port); },
             [&proxy](const std::string& identity) { return proxy.cluster_load(identity); }) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd for proxy worker");
  router_ = options.make_router ? options.make_router() : std::make_unique<MeshRouter>();
  picker_ = options.make_picker ? options.make_picker() : std::make_unique<MeshPicker>();
  uint64_t seed = options.random_seed != 0 ? options.random_seed + index : std::random_device{}();
  random_ = std::make_unique<lb::SeededRandom>(seed);
  trace_ = std::getenv("SLUICE_PROXY_TRACE") != nullptr;
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

void Worker::bind_listeners() {
  for (const auto& spec : options_.listeners) {
    auto [host, port] = split_host_port(spec.address);
    auto ip = model::IpAddress::parse(host);
    if (!ip) throw std::invalid_argument("listener '" + spec.address + "': invalid address '" + host + "'");
    sockaddr_storage ss;
    socklen_t len = to_sockaddr(*ip, port, ss);
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket for listener " + spec.address);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // One socket per worker in a SO_REUSEPORT group: the kernel spreads
    // connections across workers, and each worker accepts on its own ring.
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
      int err = errno;
      ::close(fd);
      throw std::system_error(err, std::generic_category(), "bind/listen on " + spec.address);
    }
    listener_fds_.push_back(fd);
  }
  accept_armed_.assign(listener_fds_.size(), false);
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

// ---- ring plumbing ----------------------------------------------------------

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
  if (c.recv_armed || c.shut || c.peer_eof) return;
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

void Worker::run() {
  setup_ring();
  arm_wake();
  for (uint32_t i = 0; i < listener_fds_.size(); ++i) arm_accept(i);
  refresh_snapshot();
  int64_t next_tick = now_ns() + 10'000'000;
  while (true) {
    __kernel_timespec ts{0, 10'000'000};
    io_uring_cqe* first = nullptr;
    io_uring_submit_and_wait_timeout(&ring_, &first, 1, &ts, nullptr);
    handle_completions();
    if (stop_requested_.load()) break;
    if (drain_requested_.load() && !draining_) begin_drain();
    int64_t now = now_ns();
    if (now >= next_tick) {
      refresh_snapshot();   // also without requests: pools of clusters that left close their idle connections
      check_deadlines();
      if (outliers_) outliers_->sweep_if_due();
      flush_access_log();
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

// Completions in slices of kCompletionSlice: what the slice queued (sends
// of responses, forwarded requests) is submitted before the next slice, so
// the peers on the other CPU start on it while this worker goes on, instead
// of every send of a large batch waiting for the whole batch.
void Worker::handle_completions() {
  while (true) {
    unsigned head;
    unsigned count = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      handle_cqe(*cqe);
      if (++count == kCompletionSlice) break;
    }
    io_uring_cq_advance(&ring_, count);
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

// ---- connection slots ---------------------------------------------------------

Worker::Conn* Worker::alloc_conn(Role role) {
  Conn* c;
  if (!free_conns_.empty()) {
    c = conns_[free_conns_.back()].get();
    free_conns_.pop_back();
  } else {
    if (conns_.size() >= options_.max_connections_per_worker) return nullptr;
    conns_.push_back(std::make_unique<Conn>());
    c = conns_.back().get();
    c->id = static_cast<uint32_t>(conns_.size() - 1);
    c->in.allocate(kConnBufferSize);
    c->out.allocate(kConnBufferSize);
    c->exchange = std::make_unique<Exchange>();
    c->exchange->upstream_head.allocate(kConnBufferSize);
  }
  c->role = role;
  c->fd = -1;
  c->ops = 0;
  c->recv_armed = c->send_inflight = c->shut = c->peer_eof = c->recv_paused = false;
  c->in.clear();
  c->out.clear();
  c->held_count = 0;
  c->deadline = Deadline::None;
  c->deadline_ns = 0;
  c->client_state = ClientState::AwaitingHead;
  c->upstream = c->client = c->pool = c->next = kNone;
  c->requests = 0;
  c->reused = false;
  c->mirror = false;
  return c;
}

Worker::Conn* Worker::live(uint32_t id, uint32_t generation) {
  if (id >= conns_.size()) return nullptr;
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
  // Shutdown ends the multishot receive (it completes with 0) and fails any
  // send or connect in flight; the slot is reused only after all complete.
  ::shutdown(c.fd, SHUT_RDWR);
  ::close(c.fd);
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
    --client_count_;
    c.exchange->snapshot.reset();
  }
  c.role = Role::Free;
  c.fd = -1;
  ++c.generation;
  free_conns_.push_back(c.id);
}

void Worker::on_accept(uint32_t listener, int fd) {
  if (draining_) {
    ::close(fd);
    return;
  }
  Conn* c = alloc_conn(Role::Client);
  if (c == nullptr) {
    ::close(fd);   // at the connection limit: refuse rather than queue unboundedly
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
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
    from_sockaddr(peer, c->peer_address, c->peer_port);
  }
  arm_recv(*c);
  set_client_deadline(*c);
}

// ---- receive and send ---------------------------------------------------------

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
    if (c.held_count == c.held.size()) {
      recycle_buffer(bid);
      close_conn(c);
      return;
    }
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
    else if (c.client_state == ClientState::Tunneling) pump_tunnel(c);
    else process_client(c);
  } else if (c.client != kNone) {
    pump_response(*conns_[c.client]);
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
          close_conn(c);
          break;
        case ClientState::Tunneling:
          end_tunnel(c);
          break;
        default:   // an exchange in flight: release its upstream and count it
          abort_exchange(c);
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
  submit_send(c);
  if (c.role == Role::Client) {
    if (c.client_state == ClientState::Closing && c.out.empty()) {
      close_conn(c);
    } else if (c.client_state == ClientState::Proxying) {
      pump_response(c);
    } else if (c.client_state == ClientState::Tunneling) {
      pump_tunnel(c);
    } else if (c.client_state == ClientState::AwaitingHead) {
      process_client(c);
    }
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
      if (!c.exchange->request_done) abort_exchange(c);
      break;
    case ClientState::FaultDelay:
    case ClientState::Queued:
      abort_exchange(c);
      break;
    case ClientState::Closing:
      if (c.out.empty()) close_conn(c);
      break;
    case ClientState::Tunneling:
      pump_tunnel(c);
      break;
  }
}

// ---- client request path --------------------------------------------------------

void Worker::process_client(Conn& c) {
  if (c.in_process) return;   // the loop below on this connection will see the new state
  c.in_process = true;
  while (!c.shut && c.client_state == ClientState::AwaitingHead) {
    if (c.in.empty() && drain_held(c)) continue;
    if (c.in.empty()) {
      if (c.peer_eof) {
        if (c.out.empty() && !c.send_inflight) close_conn(c);
        else c.client_state = ClientState::Closing;
      } else {
        set_client_deadline(c);
      }
      break;
    }
    if (c.out.space() < 8192) break;   // pipelined requests: wait until the client reads responses
    auto result = http::parse_request_head(c.in.readable(), options_.limits, request_head_);
    if (result == http::ParseResult::Incomplete) {
      if (drain_held(c)) continue;
      if (c.peer_eof) close_conn(c);
      else set_client_deadline(c);
      break;
    }
    Exchange& x = *c.exchange;
    ByteBuffer head_buffer = std::move(x.upstream_head);   // keep the slot's buffers: no allocation
    ByteBuffer body_buffer = std::move(x.body);
    x = Exchange{};
    x.upstream_head = std::move(head_buffer);
    x.upstream_head.clear();
    x.body = std::move(body_buffer);
    x.body.clear();
    x.start_ns = now_ns();
    if (options_.access_log) log_request_head(c, result == http::ParseResult::Complete);
    if (result == http::ParseResult::Invalid) {
      x.client_keep_alive = false;
      reply_local(c, request_head_.error.status, request_head_.error.reason, "", true, "-");
      break;
    }
    start_exchange(c);
  }
  c.in_process = false;
}

void Worker::refresh_snapshot() {
  uint64_t generation = proxy_.snapshot_generation();
  if (generation == snapshot_generation_) return;
  auto published = proxy_.published();
  snapshot_ = std::move(published.snapshot);
  outliers_ = std::move(published.outliers);
  snapshot_generation_ = generation;
  if (snapshot_) picker_->on_snapshot(*snapshot_);
  static const model::Snapshot kNoServices;
  revisit_pools(pools_.apply_snapshot(snapshot_ ? *snapshot_ : kNoServices));
}

void Worker::start_exchange(Conn& c) {
  Exchange& x = *c.exchange;
  const http::RequestHead& head = request_head_;
  refresh_snapshot();
  x.snapshot = snapshot_;
  x.outliers = outliers_;
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
  if (x.body_kept) x.body.allocate(options_.request_body_buffer_limit);   // once per slot
  x.websocket = http::is_websocket_upgrade(head);
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
  x.service_index = static_cast<uint32_t>(service - snap->services.data());
  x.service_port = port;

  const model::PortRoutes* routes = service->routes_for(port);
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
  if (route != nullptr && route->timeout.count() > 0) x.route_deadline_ns = x.start_ns + to_ns(route->timeout);
  if (route != nullptr && route->fault && route->fault->delay &&
      random_->fraction() * 100 < route->fault->delay->percent) {
    metrics_.add(ProxyCounter::FaultDelays, service->host, "");
    x.flags = "DI";
    x.delay_until_ns = now_ns() + to_ns(route->fault->delay->fixed);
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
    reply_local(c, route->fault->abort->status, "fault filter abort\n", "", false, "FI");
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
  set_picker_context(x, d.port);
  RequestView view{empty_head_, "/", "", d.port, c.peer_address};
  auto endpoint = picker_->pick(*x.snapshot, d, view, *random_, *this);
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
    mx.body.allocate(options_.request_body_buffer_limit);
    mx.body.append(x.body.readable());
  }
  io_uring_sqe* s = sqe();
  io_uring_prep_connect(s, fd, reinterpret_cast<sockaddr*>(&u->address), u->address_len);
  io_uring_sqe_set_data64(s, encode_user_data(Op::Connect, u->generation, u->id));
  ++u->ops;
  u->deadline = Deadline::Connect;
  u->deadline_ns = now_ns() + to_ns(std::chrono::seconds(5));
  metrics_.add(ProxyCounter::MirrorRequests, service.host, e.name);
}

uint32_t Worker::port_of(const Exchange& x) const {
  uint32_t port = x.destination->destination.port;
  return port != 0 ? port : x.service_port;
}

bool Worker::select_endpoint(Conn& c, const RequestView* view) {
  Exchange& x = *c.exchange;
  model::Destination d = x.destination->destination;
  d.port = port_of(x);
  set_picker_context(x, d.port);
  RequestView retry_view{empty_head_, "/", "", d.port, c.peer_address};
  auto endpoint = picker_->pick(*x.snapshot, d, view != nullptr ? *view : retry_view, *random_, *this);
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

void Worker::set_picker_context(const Exchange& x, uint32_t port) {
  picker_port_ = port;
  picker_snapshot_ = x.snapshot.get();
  picker_outliers_ = x.outliers.get();
}

int64_t Worker::active_requests(uint32_t service, uint32_t endpoint) {
  const model::Service& s = picker_snapshot_->services[service];
  return pools_.backend(backend_for(s, s.endpoints[endpoint], picker_port_)).shared_active->load(
      std::memory_order_relaxed);
}

bool Worker::is_ejected(const model::Destination& destination, uint32_t endpoint) {
  return picker_outliers_ != nullptr && picker_outliers_->is_ejected(destination, endpoint);
}

bool Worker::build_upstream_head(Conn& c, const http::RequestHead& head, std::string_view authority) {
  Exchange& x = *c.exchange;
  const model::HeaderOperations* route_ops = x.route != nullptr ? &x.route->headers.request : nullptr;
  const model::HeaderOperations* dest_ops = x.destination != nullptr ? &x.destination->headers.request : nullptr;
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
    if (http::iequals(f.name, "host") || http::iequals(f.name, "expect") || http::is_hop_by_hop(f.name, connection) ||
        overridden(route_ops, dest_ops, f.name)) {
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
  w << "\r\n";
  if (!w.ok()) return false;
  x.upstream_head.commit(w.size());
  return true;
}

// ---- upstream connections and pools ---------------------------------------------------

// The attempt's pool is its (subset cluster, backend) pool: the cluster's
// connectionPool settings and limits apply to it alone (another subset on
// the same backend has its own connections and counts).
void Worker::dispatch(Conn& c) {
  Exchange& x = *c.exchange;
  model::Destination d = x.destination->destination;
  d.port = port_of(x);
  const uint32_t pool = pools_.pool_for(*x.snapshot, d, x.endpoint);
  const model::HttpRoute* route = x.route;
  x.attempt_start_ns = now_ns();
  if (route != nullptr && route->retries && route->retries->per_try_timeout.count() > 0) {
    x.try_deadline_ns = x.attempt_start_ns + to_ns(route->retries->per_try_timeout);
  } else {
    x.try_deadline_ns = 0;
  }
  const UpstreamPools::Admission admission = pools_.admit(pool, x.fresh_connection);
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
      Conn& u = *conns_[p.idle_head];
      p.idle_head = u.next;
      attach_upstream(c, u);
      break;
    }
    case UpstreamPools::Admission::Open:
      open_upstream(c, pool);
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
    const int64_t idle_timeout_ns = to_ns(pools_.settings(pool).idle_timeout);
    for (uint32_t id : revisit_scratch_) {
      if (!pools_.pool(pool).in_use) break;   // the last close freed it
      Conn& u = *conns_[id];
      if (u.shut || u.pool != pool || u.upstream_state != UpstreamState::Idle) continue;
      if (pools_.pool(pool).retired || pools_.exhausted(pool, u.requests)) {
        close_conn(u);
      } else {
        u.deadline_ns = u.idle_since_ns + idle_timeout_ns;
      }
    }
    if (pools_.pool(pool).in_use && !draining_) serve_pending(pool);   // maxConnections may have grown
  }
}

void Worker::open_upstream(Conn& c, uint32_t pool) {
  Exchange& x = *c.exchange;
  const UpstreamPools::BackendKey key = pools_.backend(pools_.pool(pool).backend).key;
  Conn* u = alloc_conn(Role::Upstream);
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
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  u->client = c.id;
  c.upstream = u->id;
  c.client_state = ClientState::Proxying;
  u->out.append(x.upstream_head.readable());
  io_uring_sqe* s = sqe();
  io_uring_prep_connect(s, fd, reinterpret_cast<sockaddr*>(&u->address), u->address_len);
  io_uring_sqe_set_data64(s, encode_user_data(Op::Connect, u->generation, u->id));
  ++u->ops;
  u->deadline = Deadline::Connect;
  u->deadline_ns = now_ns() + to_ns(pools_.settings(pool).connect_timeout);
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
  u.out.append(x.upstream_head.readable());
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
  arm_recv(u);
  if (u.mirror) {
    u.deadline = Deadline::Idle;   // bound a mirror's life: the response is not awaited by anyone
    u.deadline_ns = now_ns() + to_ns(std::chrono::seconds(10));
    pump_mirror(u);
    return;
  }
  submit_send(u);
}

// A reusable connection goes back to its pool unless it has served its
// cluster's maxRequestsPerConnection or the pool was retired (its cluster
// or backend left the snapshot); it then waits at most the cluster's
// idleTimeout for its next request. The settings are the pool's own, never
// those of another subset that reaches the same backend.
void Worker::release_upstream(Conn& u, bool reusable) {
  u.client = kNone;
  if (u.shut) return;
  const uint32_t pool = u.pool;
  if (!reusable || draining_ || u.peer_eof || !u.in.empty() || u.held_count > 0 || pools_.pool(pool).retired ||
      pools_.exhausted(pool, u.requests)) {
    close_conn(u);
    return;
  }
  UpstreamPools::Pool& p = pools_.pool(pool);
  u.upstream_state = UpstreamState::Idle;
  u.next = p.idle_head;
  p.idle_head = u.id;
  u.idle_since_ns = now_ns();
  u.deadline = Deadline::PoolIdle;
  u.deadline_ns = u.idle_since_ns + to_ns(pools_.settings(pool).idle_timeout);
  serve_pending(pool);
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

// Outlier detection (Envoy's consecutive_5xx and consecutive_gateway_failure)
// in the subset's detector shared by all workers; locally originated
// failures arrive here as 503/504, as Envoy maps them.
void Worker::record_outcome(const Exchange& x, unsigned status) {
  if (x.backend == kNone || x.outliers == nullptr || x.destination == nullptr) return;
  model::Destination d = x.destination->destination;
  d.port = port_of(x);
  if (x.outliers->report_status(d, x.endpoint, status)) {
    const model::Service& s = x.snapshot->services[d.service];
    metrics_.add(ProxyCounter::Ejections, x.service->host, pools_.backend(x.backend).workload, 1,
                 version_label(s.subsets[d.subset].name));
  }
}

// ---- streaming -------------------------------------------------------------------------

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
    if (x.request_framing == http::BodyFraming::ContentLength) {
      forwarded = avail.substr(0, static_cast<size_t>(std::min<uint64_t>({avail.size(), space, x.request_remaining})));
      x.request_remaining -= forwarded.size();
      x.request_done = x.request_remaining == 0;
    } else {
      std::string_view chunk = avail.substr(0, space);
      size_t n = x.request_chunks.feed(chunk);
      if (x.request_chunks.failed()) {
        if (x.response_started) {
          abort_exchange(c);
        } else {
          detach_upstream(c, false);
          end_attempt(c);
          reply_local(c, 400, x.request_chunks.error(), "", true, "-");
        }
        return;
      }
      forwarded = chunk.substr(0, n);
      x.request_done = x.request_chunks.done();
    }
    keep_body(c, forwarded);
    u.out.append(forwarded);
    c.in.consume(forwarded.size());
    x.request_body_sent = true;
  }
  submit_send(u);
  if (x.request_done && x.mirrors_pending) send_mirrors(c);
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

// A mirror's body, from its own copy, as its send buffer drains.
void Worker::pump_mirror(Conn& u) {
  Exchange& mx = *u.exchange;
  if (mx.body_sent < mx.body.size()) {
    std::string_view kept = mx.body.readable().substr(mx.body_sent);
    size_t n = std::min(kept.size(), u.out.space());
    u.out.append(kept.substr(0, n));
    mx.body_sent += static_cast<uint32_t>(n);
  }
  submit_send(u);
}

namespace {
void append_to_buffer(void* buffer, std::string_view data) { static_cast<ByteBuffer*>(buffer)->append(data); }
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
      auto result = http::parse_response_head(u.in.readable(), x.head_request ? "HEAD" : "GET", options_.limits,
                                              response_head_);
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
      if (retry_allowed(x, Failure::Reset, static_cast<unsigned>(h.status), true)) {
        retry(c);
        return;
      }
      x.status = static_cast<unsigned>(h.status);
      x.upstream_keep_alive = h.keep_alive;
      x.response_framing = h.framing;
      x.response_remaining = h.content_length;
      x.dechunk = h.framing == http::BodyFraming::Chunked && x.http10;
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
        std::string_view chunk = avail.substr(0, space);
        size_t n = x.dechunk ? x.response_chunks.feed(chunk, append_to_buffer, &c.out)
                             : x.response_chunks.feed(chunk);
        if (x.response_chunks.failed()) {
          x.status = 502;
          abort_exchange(c);   // the head is already out: all we can do is close
          return;
        }
        if (!x.dechunk) c.out.append(chunk.substr(0, n));
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
  submit_send(c);
  if (x.response_done) {
    finish_exchange(c);
  } else if (u.peer_eof && u.in.empty() && u.held_count == 0) {
    abort_exchange(c);   // the upstream closed inside the body: the response is truncated
  }
}

// The response head goes to the client (rewritten by write_response_head);
// the per-try timeout ends here. A head too large for the client buffer is a
// 502 instead (false).
bool Worker::forward_response_head(Conn& c, Conn& u, const http::ResponseHead& h) {
  Exchange& x = *c.exchange;
  x.upstream_service_ns = now_ns() - x.attempt_start_ns;
  if (!write_response_head(c, h)) {
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

// ---- WebSocket tunnels --------------------------------------------------------------

// The upstream accepted the client's WebSocket upgrade: the 101 goes to the
// client and from then on both connections carry the WebSocket protocol,
// relayed byte for byte (as Envoy's upgrade support does; Istio enables it
// for websocket by default). The route's timeout ended with the 101; the
// request stays active on its backend (least-request) until the tunnel ends.
void Worker::start_tunnel(Conn& c, const http::ResponseHead& h) {
  Exchange& x = *c.exchange;
  x.status = 101;
  if (!forward_response_head(c, *conns_[c.upstream], h)) return;
  x.route_deadline_ns = 0;
  c.client_state = ClientState::Tunneling;
  set_client_deadline(c);
  pump_tunnel(c);
}

namespace {

// Moves what `from` received into `to`'s send buffer, as much as fits.
template <typename ConnT, typename DrainHeld>
void relay(ConnT& from, ConnT& to, DrainHeld&& drain_held) {
  for (;;) {
    std::string_view avail = from.in.readable();
    if (avail.empty() && drain_held(from)) continue;
    const size_t n = std::min(avail.size(), to.out.space());
    if (n == 0) return;
    to.out.append(avail.substr(0, n));
    from.in.consume(n);
  }
}

}  // namespace

// Relays both ways. The tunnel ends once either side has closed and
// everything in flight has been delivered (a side that closed its sending
// half may still read): WebSocket peers close after their closing
// handshake, so nothing is cut short. A side whose send failed cannot read:
// the client's ends the tunnel at once (on_send), the upstream's drops what
// was queued for it.
void Worker::pump_tunnel(Conn& c) {
  if (c.upstream == kNone) return;
  Conn& u = *conns_[c.upstream];
  auto drain = [this](Conn& conn) { return drain_held(conn); };
  const uint64_t moved = c.in.consumed_total() + u.in.consumed_total();
  relay(c, u, drain);
  relay(u, c, drain);
  if (c.in.consumed_total() + u.in.consumed_total() != moved) set_client_deadline(c);   // not idle
  submit_send(u);
  submit_send(c);
  const bool client_done = c.peer_eof && c.in.empty() && c.held_count == 0;
  const bool upstream_done = u.peer_eof && u.in.empty() && u.held_count == 0;
  const bool flushed = c.out.empty() && !c.send_inflight && u.out.empty() && !u.send_inflight;
  if ((client_done || upstream_done) && flushed) end_tunnel(c);
}

void Worker::end_tunnel(Conn& c) {
  Exchange& x = *c.exchange;
  end_attempt(c);
  detach_upstream(c, false);
  x.response_done = true;
  record_request(c);
  close_conn(c);
}

bool Worker::write_response_head(Conn& c, const http::ResponseHead& h) {
  Exchange& x = *c.exchange;
  const model::HeaderOperations* route_ops = x.route != nullptr ? &x.route->headers.response : nullptr;
  const model::HeaderOperations* dest_ops = x.destination != nullptr ? &x.destination->headers.response : nullptr;
  bool close = !x.client_keep_alive || draining_;
  auto status = static_cast<unsigned>(h.status);
  HeadWriter w(c.out.writable());
  w << "HTTP/1.1 " << uint64_t{status} << " " << (h.reason.empty() ? http::reason_phrase(status) : h.reason)
    << "\r\n";
  std::string_view connection = h.field("connection");
  bool keep_length = x.head_request || status == 304;   // describes a body that is not sent
  for (size_t i = 0; i < h.field_count; ++i) {
    const auto& f = h.fields[i];
    if (http::is_hop_by_hop(f.name, connection) || overridden(route_ops, dest_ops, f.name)) continue;
    if (http::iequals(f.name, "content-length") && !keep_length) continue;
    w.field(f.name, f.value);
  }
  // Envoy's: milliseconds from sending the request upstream to the response
  // head (the last attempt), which Istio users read to tell proxy from app time.
  if (x.upstream_service_ns >= 0 && !overridden(route_ops, dest_ops, "x-envoy-upstream-service-time"))
    w << "x-envoy-upstream-service-time: " << static_cast<uint64_t>(x.upstream_service_ns / 1'000'000) << "\r\n";
  write_header_operations(w, route_ops, dest_ops);
  if (status == 101) {   // a WebSocket upgrade: no body framing, the connection becomes a tunnel
    w << "connection: upgrade\r\nupgrade: " << h.field("upgrade") << "\r\n\r\n";
    if (!w.ok()) return false;
    c.out.commit(w.size());
    x.client_keep_alive = false;
    return true;
  }
  switch (h.framing) {
    case http::BodyFraming::ContentLength:
      w << "content-length: " << h.content_length << "\r\n";
      break;
    case http::BodyFraming::Chunked:
      if (!x.dechunk) w << "transfer-encoding: chunked\r\n";
      break;
    case http::BodyFraming::None:
      if (!keep_length && status != 204) w << "content-length: 0\r\n";
      break;
    case http::BodyFraming::UntilClose:
      break;
  }
  if (close) w << "connection: close\r\n";
  else if (x.http10) w << "connection: keep-alive\r\n";
  w << "\r\n";
  if (!w.ok()) return false;
  c.out.commit(w.size());
  if (close) x.client_keep_alive = false;
  return true;
}

// ---- access log ----------------------------------------------------------------------

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
  rec.protocol = r.method.empty() ? std::string_view() : x.http10 ? "HTTP/1.0" : "HTTP/1.1";
  rec.response_code = x.response_started ? x.status : 0;
  rec.response_flags = x.flags;
  rec.response_code_details = x.response_head_done ? "via_upstream" : "";
  uint64_t consumed = c.in.consumed_total() - r.in_mark;
  rec.bytes_received = consumed > r.head_bytes ? consumed - r.head_bytes : 0;
  rec.bytes_sent = x.response_head_done ? c.out.committed_total() - x.body_out_mark : x.local_body_bytes;
  rec.duration_ms = (now_ns() - x.start_ns) / 1'000'000;
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

// ---- ending an exchange -------------------------------------------------------------

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
  double ms = static_cast<double>(now_ns() - x.start_ns) / 1e6;
  metrics_.record_request(labels, x.status, x.flags, ms);
  if (options_.access_log) log_access(c);
}

void Worker::complete_exchange(Conn& c) {
  Exchange& x = *c.exchange;
  record_request(c);
  ++c.requests;
  x.snapshot.reset();
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

void Worker::reply_local(Conn& c, unsigned status, std::string_view body, std::string_view extra_fields, bool close,
                         std::string_view flags) {
  Exchange& x = *c.exchange;
  if (x.has_body && !x.request_done) close = true;   // the unread body would be taken for a request
  if (!x.client_keep_alive || draining_) close = true;
  x.client_keep_alive = !close;
  x.status = status;
  x.flags = flags;
  x.response_started = true;
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

void Worker::abort_exchange(Conn& c) {
  Exchange& x = *c.exchange;
  remove_pending(c);
  end_attempt(c);
  detach_upstream(c, false);
  if (x.status == 0) x.flags = "DC";
  record_request(c);
  close_conn(c);
}

bool Worker::retry_allowed(const Exchange& x, Failure failure, unsigned status, bool response_seen) {
  AttemptOutcome o;
  o.failure = response_seen ? AttemptFailure::None
              : failure == Failure::ConnectFailure ? AttemptFailure::ConnectFailure
              : failure == Failure::Reset          ? AttemptFailure::Reset
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
  // previous_hosts retry predicate), with a bounded number of re-picks.
  uint32_t previous = x.backend;
  bool picked = select_endpoint(c, nullptr);
  for (int i = 0; picked && x.backend == previous && i < 4; ++i) picked = select_endpoint(c, nullptr);
  if (!picked) {
    reply_local(c, 503, "no healthy upstream\n", "", false, "UH");
    return;
  }
  // Envoy's default back-off between attempts (Istio exposes no setting):
  // a random wait in [0, (2^n - 1) x 25 ms] before retry n, at most 250 ms,
  // so a struggling backend is not hit again at once and retries from many
  // clients spread out. Deadlines run on the 10 ms tick, so a wait rounds up
  // to it.
  constexpr int64_t kBackoffBaseNs = 25'000'000, kBackoffMaxNs = 250'000'000;
  const int64_t ceiling =
      std::min(((int64_t{1} << std::min<uint32_t>(x.retries_done, 10)) - 1) * kBackoffBaseNs, kBackoffMaxNs);
  const auto wait = static_cast<int64_t>(random_->fraction() * static_cast<double>(ceiling));
  if (wait <= 0) {
    dispatch(c);
    return;
  }
  x.retry_at_ns = now_ns() + wait;
  c.client_state = ClientState::RetryBackoff;
  set_client_deadline(c);
}

void Worker::fail_exchange(Conn& c, Failure failure) {
  Exchange& x = *c.exchange;
  remove_pending(c);
  bool dead_pooled = false;
  if (c.upstream != kNone) {
    Conn& u = *conns_[c.upstream];
    dead_pooled = failure == Failure::Reset && u.reused;
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
  record_outcome(x, failure == Failure::Timeout ? 504 : 503);
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
  }
}

// ---- deadlines and drain ----------------------------------------------------------------

void Worker::set_client_deadline(Conn& c) {
  int64_t now = now_ns();
  auto ms = [](std::chrono::milliseconds d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); };
  const Exchange& x = *c.exchange;
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
      int64_t d = x.route_deadline_ns;
      if (x.try_deadline_ns != 0 && (d == 0 || x.try_deadline_ns < d)) d = x.try_deadline_ns;
      c.deadline = d == 0 ? Deadline::None : Deadline::Request;
      c.deadline_ns = d;
      break;
    }
    case ClientState::Closing:
      c.deadline = Deadline::Idle;
      c.deadline_ns = now + ms(options_.request_header_timeout);
      break;
    case ClientState::Tunneling:   // a WebSocket lives while bytes move, up to the idle timeout between them
      c.deadline = options_.websocket_idle_timeout.count() > 0 ? Deadline::Idle : Deadline::None;
      c.deadline_ns = now + ms(options_.websocket_idle_timeout);
      break;
  }
}

void Worker::check_deadlines() {
  int64_t now = now_ns();
  size_t count = conns_.size();
  for (size_t i = 0; i < count; ++i) {
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
      case Deadline::Idle:
      case Deadline::PoolIdle:
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
          reply_local(c, 504, "upstream request timeout\n", "", false, "UT");
        } else {
          dispatch(c);
        }
        break;
      }
      case Deadline::Request: {
        Exchange& x = *c.exchange;
        if (x.route_deadline_ns != 0 && now >= x.route_deadline_ns) {
          if (x.response_started) {
            abort_exchange(c);
          } else {
            remove_pending(c);
            if (c.upstream != kNone) record_outcome(x, 504);
            detach_upstream(c, false);
            end_attempt(c);
            reply_local(c, 504, "upstream request timeout\n", "", false, "UT");
          }
        } else {
          fail_exchange(c, Failure::Timeout);
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
  for (auto& conn : conns_) {
    Conn& c = *conn;
    if (c.role == Role::Free || c.shut) continue;
    if (c.role == Role::Upstream && c.upstream_state == UpstreamState::Idle) close_conn(c);
    if (c.role == Role::Client && c.client_state == ClientState::AwaitingHead && c.in.empty()) {
      if (c.out.empty() && !c.send_inflight) close_conn(c);
      else c.client_state = ClientState::Closing;
    }
  }
}

}  // namespace sluice::proxy
