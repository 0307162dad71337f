#include "config/snapshot_json.h"

#include "config/duration.h"

namespace sluice::config {

using nlohmann::json;

namespace {

std::string_view severity_name(model::Severity s) {
  switch (s) {
    case model::Severity::Error: return "error";
    case model::Severity::Warning: return "warning";
    case model::Severity::Info: return "note";
  }
  return "error";
}

json location(const model::SourceLocation& w) {
  if (w.file.empty()) return nullptr;
  return w.file + ":" + std::to_string(w.line) + ":" + std::to_string(w.column);
}

json labels(const model::Labels& l) {
  json out = json::object();
  for (const auto& [k, v] : l) out[k] = v;
  return out;
}

json duration(model::Duration d) { return format_duration(d); }

// Unlimited limits are null rather than 4294967295.
json limit(uint32_t v) {
  return v == model::ConnectionPool::kUnlimited ? json(nullptr) : json(v);
}

json string_match(const std::optional<model::StringMatch>& m) {
  if (!m) return nullptr;
  switch (m->kind) {
    case model::StringMatch::Kind::Exact: return {{"exact", m->value}};
    case model::StringMatch::Kind::Prefix: return {{"prefix", m->value}};
    case model::StringMatch::Kind::Regex: return {{"regex", m->value}};
  }
  return nullptr;
}

json key_matches(const std::vector<model::KeyMatch>& list) {
  json out = json::object();
  for (const auto& k : list) out[k.name] = k.match ? string_match(k.match) : json{{"present", true}};
  return out;
}

json header_operations(const model::HeaderOperations& ops) {
  json set = json::object(), add = json::object();
  for (const auto& [k, v] : ops.set) set[k] = v;
  for (const auto& [k, v] : ops.add) add[k] = v;
  return {{"set", set}, {"add", add}, {"remove", ops.remove}};
}

json headers(const model::Headers& h) {
  if (h.request.empty() && h.response.empty()) return nullptr;
  return {{"request", header_operations(h.request)}, {"response", header_operations(h.response)}};
}

json destination(const model::Snapshot& s, const model::Destination& d) {
  const auto& svc = s.services.at(d.service);
  return {{"host", svc.host}, {"subset", svc.subsets.at(d.subset).name}, {"port", d.port}};
}

json weighted(const model::Snapshot& s, const std::vector<model::WeightedDestination>& list) {
  json out = json::array();
  for (const auto& w : list) {
    json d = destination(s, w.destination);
    d["weight"] = w.weight;
    d["share"] = w.share;
    d["headers"] = headers(w.headers);
    out.push_back(std::move(d));
  }
  return out;
}

json http_route(const model::Snapshot& s, const model::HttpRoute& r) {
  json matches = json::array();
  for (const auto& m : r.matches) {
    matches.push_back({{"name", m.name},
                       {"uri", string_match(m.uri)},
                       {"scheme", string_match(m.scheme)},
                       {"method", string_match(m.method)},
                       {"authority", string_match(m.authority)},
                       {"headers", key_matches(m.headers)},
                       {"without_headers", key_matches(m.without_headers)},
                       {"query_params", key_matches(m.query_params)},
                       {"ignore_uri_case", m.ignore_uri_case},
                       {"port", m.port},
                       {"source", location(m.where)}});
  }
  json out = {{"name", r.name},
              {"virtual_service", r.virtual_service},
              {"source", location(r.where)},
              {"matches", matches},
              {"route", weighted(s, r.route)},
              {"timeout", r.timeout.count() ? duration(r.timeout) : json(nullptr)},
              {"headers", headers(r.headers)}};
  out["redirect"] = r.redirect ? json{{"uri", r.redirect->uri},
                                      {"authority", r.redirect->authority},
                                      {"scheme", r.redirect->scheme},
                                      {"port", r.redirect->port},
                                      {"status", r.redirect->status}}
                               : json(nullptr);
  out["rewrite"] = r.rewrite ? json{{"uri", r.rewrite->uri},
                                    {"authority", r.rewrite->authority},
                                    {"uri_regex", r.rewrite->uri_regex ? json(r.rewrite->uri_regex->value) : json(nullptr)},
                                    {"uri_regex_rewrite", r.rewrite->uri_regex_rewrite}}
                             : json(nullptr);
  out["direct_response"] = r.direct_response
                               ? json{{"status", r.direct_response->status}, {"body", r.direct_response->body}}
                               : json(nullptr);
  out["retries"] = r.retries ? json{{"attempts", r.retries->attempts},
                                    {"per_try_timeout", r.retries->per_try_timeout.count()
                                                            ? duration(r.retries->per_try_timeout)
                                                            : json(nullptr)},
                                    {"retry_on", r.retries->retry_on},
                                    {"retriable_status_codes", r.retries->retriable_status_codes},
                                    {"backoff", duration(r.retries->backoff)},
                                    {"ignore_previous_hosts", r.retries->ignore_previous_hosts}}
                             : json(nullptr);
  json fault = nullptr;
  if (r.fault) {
    fault = {{"delay", nullptr}, {"abort", nullptr}};
    if (r.fault->delay) fault["delay"] = {{"fixed", duration(r.fault->delay->fixed)}, {"percent", r.fault->delay->percent}};
    if (r.fault->abort) fault["abort"] = {{"status", r.fault->abort->status}, {"percent", r.fault->abort->percent}};
  }
  out["fault"] = fault;
  json mirrors = json::array();
  for (const auto& m : r.mirrors) {
    json d = destination(s, m.destination);
    d["percent"] = m.percent;
    mirrors.push_back(std::move(d));
  }
  out["mirrors"] = mirrors;
  return out;
}

json policy(const model::TrafficPolicy& p) {
  const auto& lb = p.load_balancer;
  json hash = nullptr;
  if (lb.algorithm == model::LbAlgorithm::RingHash || lb.algorithm == model::LbAlgorithm::Maglev) {
    hash = {{"source", std::string(model::to_string(lb.hash.source))}, {"name", lb.hash.name}};
    if (lb.hash.source == model::HashKey::Source::Cookie) {
      hash["cookie_ttl"] = duration(lb.hash.cookie_ttl);
      hash["cookie_path"] = lb.hash.cookie_path;
    }
  }
  json load_balancer = {{"algorithm", std::string(model::to_string(lb.algorithm))}, {"hash", hash}};
  if (lb.algorithm == model::LbAlgorithm::RingHash) load_balancer["ring_minimum_size"] = lb.ring_minimum_size;
  if (lb.algorithm == model::LbAlgorithm::Maglev) load_balancer["maglev_table_size"] = lb.maglev_table_size;
  const auto& cp = p.connection_pool;
  const auto& od = p.outlier_detection;
  json keepalive = nullptr;
  if (cp.tcp_keepalive) {   // a field left out: null (the node's default)
    const model::TcpKeepalive& k = *cp.tcp_keepalive;
    keepalive = {{"time", k.time.count() > 0 ? duration(k.time) : json(nullptr)},
                 {"interval", k.interval.count() > 0 ? duration(k.interval) : json(nullptr)},
                 {"probes", k.probes > 0 ? json(k.probes) : json(nullptr)}};
  }
  return {{"load_balancer", load_balancer},
          {"connection_pool",
           {{"max_connections", limit(cp.max_connections)},
            {"connect_timeout", duration(cp.connect_timeout)},
            {"http1_max_pending_requests", limit(cp.http1_max_pending_requests)},
            {"http2_max_requests", limit(cp.http2_max_requests)},
            {"max_requests_per_connection", cp.max_requests_per_connection},
            {"max_retries", limit(cp.max_retries)},
            {"idle_timeout", duration(cp.idle_timeout)},
            {"max_connection_duration",
             cp.max_connection_duration.count() > 0 ? duration(cp.max_connection_duration) : json(nullptr)},
            {"tcp_keepalive", keepalive}}},
          {"outlier_detection",
           od.enabled ? json{{"consecutive_5xx_errors", od.consecutive_5xx_errors},
                             {"consecutive_gateway_errors", od.consecutive_gateway_errors},
                             {"split_external_local_origin_errors", od.split_external_local_origin_errors},
                             {"consecutive_local_origin_failures", od.consecutive_local_origin_failures},
                             {"interval", duration(od.interval)},
                             {"base_ejection_time", duration(od.base_ejection_time)},
                             {"max_ejection_percent", od.max_ejection_percent},
                             {"min_health_percent", od.min_health_percent}}
                      : json(nullptr)}};
}

json endpoint(const model::Service& svc, const model::Endpoint& e) {
  json ports = json::object();
  for (const auto& p : svc.ports) ports[std::to_string(p.number)] = e.port_for(p);
  return {{"name", e.name},
          {"address", e.address.to_string()},
          {"ports", ports},
          {"weight", e.weight},
          {"labels", labels(e.labels)},
          {"locality", e.locality},
          {"source", location(e.where)}};
}

json port_json(const model::Snapshot& s, const model::ServicePort& p, const model::PortRoutes* pr) {
  json port = {{"number", p.number},
               {"name", p.name},
               {"protocol", std::string(model::to_string(p.protocol))},
               {"target_port", p.target_port},
               {"plane", pr && pr->plane == model::Plane::L7 ? "L7" : "L4"},
               {"l4", nullptr},
               {"http_routes", nullptr}};
  if (pr && (pr->plane == model::Plane::L4 || pr->http.empty())) {
    port["l4"] = {{"source", pr->l4_source}, {"destinations", weighted(s, pr->l4)}};
  }
  if (pr && pr->plane == model::Plane::L7) {
    json routes = json::array();
    for (const auto& r : pr->http) routes.push_back(http_route(s, r));
    port["http_routes"] = routes;
  }
  return port;
}

// The views of client namespaces that see the service otherwise than its
// own namespace (docs/config-reference.md, "Namespaces and exportTo").
json views_json(const model::Snapshot& s, const model::Service& svc) {
  json views = json::array();
  for (const auto& v : svc.views) {
    json ports = json::array();
    for (size_t i = 0; i < svc.ports.size() && i < v.routes.size(); ++i) ports.push_back(port_json(s, svc.ports[i], &v.routes[i]));
    views.push_back({{"namespaces", v.namespaces},
                     {"destination_rule", v.destination_rule.empty() ? json(nullptr) : json(v.destination_rule)},
                     {"virtual_services", v.virtual_services},
                     {"first_subset", v.first_subset},
                     {"subset_count", v.subset_count},
                     {"ports", ports}});
  }
  return views;
}

json service(const model::Snapshot& s, const model::Service& svc) {
  json vips = json::array();
  for (const auto& v : svc.vips) vips.push_back(v.to_string());
  json ports = json::array();
  for (const auto& p : svc.ports) ports.push_back(port_json(s, p, svc.routes_for(p.number)));
  json subsets = json::array();
  for (const auto& sub : svc.subsets) {
    json endpoints = json::array();
    for (uint32_t idx : sub.endpoints) endpoints.push_back(endpoint(svc, svc.endpoints.at(idx)));
    json policies = json::object();
    for (const auto& [port, p] : sub.policy_by_port) policies[std::to_string(port)] = policy(p);
    subsets.push_back({{"name", sub.name},
                       {"labels", labels(sub.labels)},
                       {"endpoints", endpoints},
                       {"policy", policies},
                       {"source", location(sub.where)}});
  }
  return {{"host", svc.host},
          {"hosts", svc.hosts},
          {"kind", svc.kind},
          {"name", svc.name},
          {"namespace", svc.namespace_},
          {"vips", vips},
          {"ports", ports},
          {"subsets", subsets},
          {"destination_rule", svc.destination_rule.empty() ? json(nullptr) : json(svc.destination_rule)},
          {"virtual_services", svc.virtual_services},
          {"views", views_json(s, svc)},
          {"source", location(svc.where)}};
}

}  // namespace

json diagnostic_to_json(const model::Diagnostic& d) {
  return {{"severity", severity_name(d.severity)},
          {"file", d.where.file},
          {"line", d.where.line},
          {"column", d.where.column},
          {"message", d.message}};
}

json snapshot_to_json(const model::Snapshot& snapshot) {
  json services = json::array();
  for (const auto& svc : snapshot.services) services.push_back(service(snapshot, svc));
  json diagnostics = json::array();
  for (const auto& d : snapshot.warnings) diagnostics.push_back(diagnostic_to_json(d));
  return {{"schema", kSnapshotJsonSchema},
          {"version", snapshot.version},
          {"origin", snapshot.origin},
          {"source_files", snapshot.source_files},
          {"services", services},
          {"diagnostics", diagnostics}};
}

std::string snapshot_json_text(const model::Snapshot& snapshot, int indent) {
  return snapshot_to_json(snapshot).dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace sluice::config
