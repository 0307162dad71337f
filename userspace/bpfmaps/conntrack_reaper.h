// Makes the least-request L4 counts converge to the truth. A backend's open
// L4 flows are l4_opened - l4_closed - l4_reaped (sluice_backend_load), and
// the XDP program counts a close only on FIN/RST or when a later packet of
// the flow finds its entry expired. A flow that just stops (a SYN to a dead
// backend the client gave up on, an idle timeout with no later packet, a
// lost RST) or that the LRU evicts would stay "open" for ever, and
// LEAST_REQUEST would starve its backend.
//
// One reap() walks sluice_conntrack (batch lookups):
//  - an entry past its timeout (closing_ns for a closing flow or a TCP flow
//    the backend never answered, else the idle timeout) is deleted; if it
//    had not been counted closed, its backend's l4_reaped goes up by one;
//  - with `reconcile_evictions`, each backend's counted open flows are
//    compared with the live entries the walk saw, and the excess (flows the
//    LRU evicted) is added to l4_reaped. The estimate is a lower bound:
//    counters are read before and after the walk so that flows opening or
//    closing meanwhile can only make it smaller, never count a live flow
//    gone. Only for a backend_load map the XDP program alone counts into
//    (not with a DPDK forwarder, whose flows are not in this conntrack).
#pragma once

#include <cstdint>

namespace sluice::bpfmaps {

class BpfDatapath;

struct ReapResult {
  uint64_t walked = 0;    // forward entries seen
  uint64_t expired = 0;   // deleted for their timeout
  uint64_t reaped = 0;    // of those, not counted closed before: added to l4_reaped
  uint64_t evicted = 0;   // reconciled as evicted: added to l4_reaped
};

ReapResult reap_conntrack(BpfDatapath& datapath, bool reconcile_evictions);

}  // namespace sluice::bpfmaps
