// WebSocket tunnels: after an accepted upgrade, bytes relayed both ways
// between the client and upstream connections until either side ends.
#include <algorithm>

#include "proxy/steady_time.h"
#include "proxy/worker.h"

namespace sluice::proxy {

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

}  // namespace sluice::proxy
