#include "config/explain_text.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "config/duration.h"

namespace sluice::config {

namespace {

// Display width of UTF-8 text: code points, not bytes (the arrows are 3 bytes).
size_t display_width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// Left-aligned columns, two spaces apart; the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void render(std::ostream& out, const std::string& indent) const {
    std::vector<size_t> width;
    for (const auto& r : rows_) {
      if (width.size() < r.size()) width.resize(r.size(), 0);
      for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], display_width(r[i]));
    }
    for (const auto& r : rows_) {
      std::string line = indent;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(width[i] - display_width(r[i]) + 2, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << line << '\n';
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100);
  return buf;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string labels_text(const model::Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out.empty() ? "-" : out;
}

std::string string_match(const model::StringMatch& m) {
  switch (m.kind) {
    case model::StringMatch::Kind::Exact: return "= " + m.value;
    case model::StringMatch::Kind::Prefix: return "prefix " + m.value;
    case model::StringMatch::Kind::Regex: return "~ /" + m.value + "/";
  }
  return m.value;
}

std::string key_match(const std::string& what, const model::KeyMatch& k, bool negated) {
  std::string out = what + " " + k.name;
  if (!k.match) return (negated ? "no " : "has ") + out;
  return (negated ? "not(" : "") + out + " " + string_match(*k.match) + (negated ? ")" : "");
}

std::string match_text(const model::HttpMatch& m) {
  std::vector<std::string> parts;
  if (m.uri) parts.push_back("uri " + string_match(*m.uri) + (m.ignore_uri_case ? " (any case)" : ""));
  if (m.method) parts.push_back("method " + string_match(*m.method));
  if (m.authority) parts.push_back("authority " + string_match(*m.authority));
  if (m.scheme) parts.push_back("scheme " + string_match(*m.scheme));
  for (const auto& h : m.headers) parts.push_back(key_match("header", h, false));
  for (const auto& h : m.without_headers) parts.push_back(key_match("header", h, true));
  for (const auto& q : m.query_params) parts.push_back(key_match("query", q, false));
  if (parts.empty()) return "any request";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " and ") + p;
  return out;
}

std::string destination_text(const model::Snapshot& s, const model::Destination& d) {
  const auto& svc = s.services.at(d.service);
  const auto& subset = svc.subsets.at(d.subset).name;
  return svc.host + " " + (subset.empty() ? std::string("(all)") : subset) + " :" + std::to_string(d.port);
}

void destinations(std::ostream& out, const model::Snapshot& s,
                  const std::vector<model::WeightedDestination>& list, const std::string& indent) {
  Table t({"", "SHARE", "WEIGHT", "DESTINATION", "ENDPOINTS"});
  for (const auto& w : list) {
    const auto& svc = s.services.at(w.destination.service);
    const size_t n = svc.subsets.at(w.destination.subset).endpoints.size();
    std::string extra = std::to_string(n);
    if (!w.headers.request.empty() || !w.headers.response.empty()) extra += "  (+header ops)";
    t.add({"\u2192", percent(w.share), std::to_string(w.weight), destination_text(s, w.destination), extra});
  }
  t.render(out, indent);
}

std::string route_extras(const model::Snapshot& s, const model::HttpRoute& r) {
  std::vector<std::string> parts;
  if (r.timeout.count()) parts.push_back("timeout " + format_duration(r.timeout));
  if (r.retries) {
    std::string rt = "retries " + std::to_string(r.retries->attempts);
    if (r.retries->per_try_timeout.count()) rt += " x " + format_duration(r.retries->per_try_timeout);
    if (!r.retries->retry_on.empty()) {
      rt += " on ";
      for (size_t i = 0; i < r.retries->retry_on.size(); ++i) rt += (i ? "," : "") + r.retries->retry_on[i];
    }
    const model::Retries defaults;
    if (r.retries->backoff != defaults.backoff) rt += ", backoff " + format_duration(r.retries->backoff);
    if (!r.retries->ignore_previous_hosts) rt += ", same host allowed";
    parts.push_back(rt);
  }
  if (r.fault && r.fault->delay) {
    parts.push_back("fault delay " + format_duration(r.fault->delay->fixed) + " to " +
                    number(r.fault->delay->percent) + "%");
  }
  if (r.fault && r.fault->abort) {
    parts.push_back("fault abort " + std::to_string(r.fault->abort->status) + " to " +
                    number(r.fault->abort->percent) + "%");
  }
  if (r.rewrite) {
    std::string rw = "rewrite";
    if (!r.rewrite->uri.empty()) rw += " uri " + r.rewrite->uri;
    if (r.rewrite->uri_regex) rw += " uri ~ /" + r.rewrite->uri_regex->value + "/ -> " + r.rewrite->uri_regex_rewrite;
    if (!r.rewrite->authority.empty()) rw += " authority " + r.rewrite->authority;
    parts.push_back(rw);
  }
  for (const auto& m : r.mirrors) {
    parts.push_back("mirror " + number(m.percent) + "% to " + destination_text(s, m.destination));
  }
  const auto ops = [](const char* side, const model::HeaderOperations& h) {
    if (h.empty()) return std::string();
    return std::string(side) + " headers set " + std::to_string(h.set.size()) + " add " +
           std::to_string(h.add.size()) + " remove " + std::to_string(h.remove.size());
  };
  if (auto x = ops("request", r.headers.request); !x.empty()) parts.push_back(x);
  if (auto x = ops("response", r.headers.response); !x.empty()) parts.push_back(x);
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

std::string lb_text(const model::LoadBalancer& lb) {
  std::string out(model::to_string(lb.algorithm));
  using A = model::LbAlgorithm;
  if (lb.algorithm == A::RingHash || lb.algorithm == A::Maglev) {
    out += " by ";
    using Src = model::HashKey::Source;
    switch (lb.hash.source) {
      case Src::FiveTuple: out += "5-tuple"; break;
      case Src::SourceIp: out += "source IP"; break;
      case Src::Header: out += "header " + lb.hash.name; break;
      case Src::Cookie: out += "cookie " + lb.hash.name; break;
      case Src::QueryParameter: out += "query " + lb.hash.name; break;
    }
    out += lb.algorithm == A::Maglev ? " (table " + std::to_string(lb.maglev_table_size) + ")"
                                     : " (ring >= " + std::to_string(lb.ring_minimum_size) + ")";
  }
  return out;
}

std::string policy_text(const model::TrafficPolicy& p) {
  std::string out = lb_text(p.load_balancer);
  const model::ConnectionPool defaults;
  const auto& cp = p.connection_pool;
  std::vector<std::string> pool;
  if (cp.max_connections != defaults.max_connections) pool.push_back("max " + std::to_string(cp.max_connections) + " conns");
  if (cp.connect_timeout != defaults.connect_timeout) pool.push_back("connect " + format_duration(cp.connect_timeout));
  if (cp.http1_max_pending_requests != defaults.http1_max_pending_requests) pool.push_back("max " + std::to_string(cp.http1_max_pending_requests) + " pending");
  if (cp.http2_max_requests != defaults.http2_max_requests) pool.push_back("max " + std::to_string(cp.http2_max_requests) + " requests");
  if (cp.max_requests_per_connection != 0) pool.push_back(std::to_string(cp.max_requests_per_connection) + " req/conn");
  if (cp.max_retries != defaults.max_retries) pool.push_back("max " + std::to_string(cp.max_retries) + " retries");
  if (cp.idle_timeout != defaults.idle_timeout) pool.push_back("idle " + format_duration(cp.idle_timeout));
  if (cp.max_connection_duration.count() > 0) pool.push_back("conn max " + format_duration(cp.max_connection_duration));
  if (cp.tcp_keepalive) {   // "keepalive 7s/3s x4"; "-" for a field the node's default fills
    const model::TcpKeepalive& k = *cp.tcp_keepalive;
    pool.push_back("keepalive " + (k.time.count() > 0 ? format_duration(k.time) : std::string("-")) + "/" +
                   (k.interval.count() > 0 ? format_duration(k.interval) : std::string("-")) + " x" +
                   (k.probes > 0 ? std::to_string(k.probes) : std::string("-")));
  }
  if (!pool.empty()) {
    out += "; pool";
    for (size_t i = 0; i < pool.size(); ++i) out += (i ? ", " : " ") + pool[i];
  }
  const auto& od = p.outlier_detection;
  if (od.enabled) {
    out += "; eject after " + std::to_string(od.consecutive_5xx_errors) + "x5xx";
    if (od.consecutive_gateway_errors) out += "/" + std::to_string(od.consecutive_gateway_errors) + "xgateway";
    if (od.split_external_local_origin_errors) {
      out += "/" + std::to_string(od.consecutive_local_origin_failures) + "xlocal (split)";
    }
    out += " every " + format_duration(od.interval) + " for " + format_duration(od.base_ejection_time) +
           " (max " + std::to_string(od.max_ejection_percent) + "%)";
  }
  return out;
}

bool same_policy(const model::TrafficPolicy& a, const model::TrafficPolicy& b) {
  return policy_text(a) == policy_text(b);
}

// One line per distinct policy: "ROUND_ROBIN" or ":9080 RING_HASH ...; :9081 ROUND_ROBIN".
std::vector<std::string> subset_policy_lines(const model::Subset& subset) {
  std::vector<std::string> lines;
  if (subset.policy_by_port.empty()) return {"-"};
  const auto& first = subset.policy_by_port.begin()->second;
  const bool uniform = std::all_of(subset.policy_by_port.begin(), subset.policy_by_port.end(),
                                   [&](const auto& kv) { return same_policy(kv.second, first); });
  if (uniform) return {policy_text(first)};
  for (const auto& [port, p] : subset.policy_by_port) lines.push_back(":" + std::to_string(port) + " " + policy_text(p));
  return lines;
}

std::string endpoint_ports(const model::Service& svc, const model::Endpoint& e) {
  std::string out;
  for (const auto& p : svc.ports) {
    const uint32_t target = e.port_for(p);
    out += (out.empty() ? "" : " ") + std::to_string(p.number);
    if (target != p.number) out += "\u2192" + std::to_string(target);
  }
  return out;
}

void service_text(std::ostream& out, const model::Snapshot& s, const model::Service& svc) {
  out << svc.host << "  (" << svc.kind << " " << svc.namespace_ << "/" << svc.name;
  if (!svc.where.file.empty()) out << ", " << svc.where.file << ":" << svc.where.line;
  out << ")\n";
  if (svc.hosts.size() > 1) {
    out << "  hosts: ";
    for (size_t i = 0; i < svc.hosts.size(); ++i) out << (i ? ", " : "") << svc.hosts[i];
    out << "\n";
  }
  out << "  routing: "
      << (svc.virtual_services.empty() ? std::string("no VirtualService") : "VirtualService " + svc.virtual_services.front())
      << "; policy: "
      << (svc.destination_rule.empty() ? std::string("no DestinationRule (defaults)") : "DestinationRule " + svc.destination_rule)
      << "\n";
  // Client namespaces that see the service otherwise (explain --json has their routes).
  for (const auto& v : svc.views) {
    out << "  clients of namespace" << (v.namespaces.size() > 1 ? "s " : " ");
    for (size_t i = 0; i < v.namespaces.size(); ++i) out << (i ? ", " : "") << v.namespaces[i];
    out << ": " << (v.virtual_services.empty() ? std::string("no VirtualService") : "VirtualService " + v.virtual_services.front())
        << "; " << (v.destination_rule.empty() ? std::string("no DestinationRule (defaults)") : "DestinationRule " + v.destination_rule)
        << "\n";
  }
  out << "\n";

  // Ports are shown on the first VIP; the others follow the same routes.
  std::string vip = svc.vips.empty() ? std::string("(no VIP)") : svc.vips.front().to_string();
  if (!svc.vips.empty() && !svc.vips.front().is_v4()) vip = "[" + vip + "]";
  for (const auto& port : svc.ports) {
    const model::PortRoutes* pr = svc.routes_for(port.number);
    if (!pr) continue;
    const std::string addr = vip + ":" + std::to_string(port.number);
    out << "  " << addr << "  " << (port.name.empty() ? "-" : port.name) << "/" << model::to_string(port.protocol);
    if (pr->plane == model::Plane::L7) {
      out << "  L7 (HTTP proxy, per request)\n";
      for (size_t i = 0; i < pr->http.size(); ++i) {
        const auto& r = pr->http[i];
        out << "    " << (r.name.empty() ? "route " + std::to_string(i + 1) : r.name);
        if (!r.where.file.empty()) out << " (" << r.where.file << ":" << r.where.line << ")";
        out << ": ";
        if (r.matches.empty()) {
          out << "any request";
        } else {
          for (size_t m = 0; m < r.matches.size(); ++m) out << (m ? "  OR  " : "") << match_text(r.matches[m]);
        }
        out << "\n";
        if (r.redirect) {
          out << "      redirect " << r.redirect->status << " to "
              << (r.redirect->scheme.empty() ? "" : r.redirect->scheme + "://")
              << r.redirect->authority << (r.redirect->port ? ":" + std::to_string(r.redirect->port) : "")
              << r.redirect->uri << "\n";
        }
        if (r.direct_response) {
          out << "      respond " << r.direct_response->status;
          if (!r.direct_response->body.empty()) out << " \"" << r.direct_response->body.substr(0, 40) << "\"";
          out << "\n";
        }
        if (!r.route.empty()) destinations(out, s, r.route, "      ");
        if (auto extras = route_extras(s, r); !extras.empty()) out << "      " << extras << "\n";
      }
    } else {
      out << "  L4 (XDP, per connection) "
          << (pr->l4_source == "default" ? std::string("no route: whole service") : "from " + pr->l4_source) << "\n";
      destinations(out, s, pr->l4, "    ");
    }
  }
  for (size_t i = 1; i < svc.vips.size(); ++i) out << "  also on VIP " << svc.vips[i].to_string() << " (same ports and routes)\n";

  out << "\n";
  Table subsets({"  SUBSET", "SELECTOR", "ENDPOINTS", "POLICY"});
  for (const auto& subset : svc.subsets) {
    const auto lines = subset_policy_lines(subset);
    subsets.add({"  " + (subset.name.empty() ? std::string("(all)") : subset.name), labels_text(subset.labels),
                 std::to_string(subset.endpoints.size()), lines.front()});
    for (size_t i = 1; i < lines.size(); ++i) subsets.add({"", "", "", lines[i]});
  }
  subsets.render(out, "");

  out << "\n";
  Table endpoints({"  ENDPOINT", "ADDRESS", "PORTS", "WEIGHT", "SUBSETS", "LABELS"});
  for (uint32_t e = 0; e < svc.endpoints.size(); ++e) {
    const auto& ep = svc.endpoints[e];
    std::string in;
    for (size_t si = 1; si < svc.subsets.size(); ++si) {
      const auto& list = svc.subsets[si].endpoints;
      if (std::binary_search(list.begin(), list.end(), e)) in += (in.empty() ? "" : ",") + svc.subsets[si].name;
    }
    endpoints.add({"  " + ep.name, ep.address.to_string(), endpoint_ports(svc, ep), std::to_string(ep.weight),
                   in.empty() ? "-" : in, labels_text(ep.labels)});
  }
  if (svc.endpoints.empty()) {
    out << "  (no endpoints)\n";
  } else {
    endpoints.render(out, "");
  }
}

}  // namespace

std::string explain_text(const model::Snapshot& snapshot) {
  std::ostringstream out;
  size_t warnings = 0;
  for (const auto& d : snapshot.warnings) warnings += d.severity == model::Severity::Warning ? 1 : 0;
  out << "snapshot v" << snapshot.version << " (" << snapshot.origin << "): " << snapshot.services.size()
      << " service" << (snapshot.services.size() == 1 ? "" : "s") << " from " << snapshot.source_files.size()
      << " file" << (snapshot.source_files.size() == 1 ? "" : "s") << ", " << warnings << " warning"
      << (warnings == 1 ? "" : "s") << "\n";
  for (const auto& svc : snapshot.services) {
    out << "\n";
    service_text(out, snapshot, svc);
  }
  return out.str();
}

}  // namespace sluice::config
