// The per-request routing decision of the L7 plane, as pure logic: given a
// service port's compiled routes (model::PortRoutes) and a view of one
// request, find the first matching route (Istio order: first match wins;
// within one match block every condition must hold, across blocks any one
// block suffices), then decide everything the proxy acts on — destination by
// weight, fault delay/abort, mirrors, rewrite, redirect, and the
// consistent-hash key for the destination subset's policy.
//
// Matching and the destination/fault/mirror draws allocate nothing: they read
// string_views of the request. Only a configured rewrite or redirect builds a
// string. Randomness comes from the caller (one RandomSource per worker), so
// tests are deterministic.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "lb/random_source.h"
#include "model/snapshot.h"

namespace sluice::routing {

struct HeaderField {
  std::string_view name;    // any case; compared case-insensitively
  std::string_view value;
};

struct RequestView {
  std::string_view method;
  std::string_view path;        // without the query string
  std::string_view query;       // after '?', without it; "" if none
  std::string_view authority;   // Host / :authority
  std::string_view scheme = "http";
  std::span<const HeaderField> headers;
  model::IpAddress source;      // client address (source-IP hashing)
  uint32_t port = 0;            // service port the request arrived on

  // First value of a header, by case-insensitive name.
  std::optional<std::string_view> header(std::string_view name) const;
  // Raw (not percent-decoded) value of a query parameter; "" for "?flag".
  std::optional<std::string_view> query_param(std::string_view name) const;
  // A cookie's value from the Cookie header(s).
  std::optional<std::string_view> cookie(std::string_view name) const;
};

struct RouteDecision {
  enum class Action {
    Forward,          // proxy to `destination`
    Redirect,         // answer redirect_status with `location`
    DirectResponse,   // answer route->direct_response
    NotFound,         // no route matched: answer 404 (Envoy's NR flag)
  };
  Action action = Action::NotFound;
  const model::HttpRoute* route = nullptr;
  uint32_t route_index = 0;                      // index in PortRoutes::http
  const model::HttpMatch* match = nullptr;       // the block that matched (nullptr: route has none)
  const model::WeightedDestination* destination = nullptr;

  // Fault injection for this request (both may apply: delay, then abort).
  std::optional<model::Duration> fault_delay;
  std::optional<uint32_t> fault_abort_status;

  // Bit i set: mirror route->mirrors[i] this request (first 64 mirrors).
  uint64_t mirror_mask = 0;

  // Rewrite: the new path (query kept) and authority, when configured.
  std::optional<std::string> rewritten_path;
  std::optional<std::string> rewritten_authority;

  // Redirect.
  std::string location;
  uint32_t redirect_status = 0;

  // Consistent hashing for the destination subset (RingHash / Maglev only):
  // hash64 of the key; nullopt when the policy does not hash or the request
  // lacks the key (the policy then picks at random).
  std::optional<uint64_t> hash_key;
  // The subset hashes on a cookie the request lacks and a ttl is set: the
  // proxy should set this cookie on the response (Envoy generates it).
  const model::HashKey* cookie_to_set = nullptr;
};

// True if every condition of the block holds for the request.
bool matches(const model::HttpMatch& match, const RequestView& request);

// The first route whose match blocks accept the request (or that has none).
// Returns nullptr and leaves route_index untouched when nothing matches.
const model::HttpRoute* find_route(const model::PortRoutes& routes, const RequestView& request,
                                   uint32_t* route_index = nullptr, const model::HttpMatch** matched = nullptr);

// The full decision. `snapshot` is the one `routes` came from (needed for the
// destination subset's load-balancer policy).
RouteDecision decide_route(const model::Snapshot& snapshot, const model::PortRoutes& routes,
                           const RequestView& request, lb::RandomSource& random);

// Pieces of decide_route, exposed for the L4 plane and for tests.
const model::WeightedDestination* choose_destination(std::span<const model::WeightedDestination> route,
                                                     lb::RandomSource& random);
std::string rewrite_path(const model::Rewrite& rewrite, const model::HttpMatch* match, const RequestView& request);
std::string redirect_location(const model::Redirect& redirect, const RequestView& request);
std::optional<uint64_t> hash_key_for(const model::HashKey& key, const RequestView& request);

}  // namespace sluice::routing
