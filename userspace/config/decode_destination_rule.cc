#include "config/decoders.h"

#include <re2/re2.h>

#include <algorithm>
#include <limits>
#include <sstream>

namespace sluice::config {

namespace {

bool is_prime(uint64_t n) {
  if (n < 2) return false;
  for (uint64_t i = 2; i * i <= n; ++i) {
    if (n % i == 0) return false;
  }
  return true;
}

std::optional<model::LoadBalancer> decode_load_balancer(Decoder& d, const YAML::Node& n,
                                                        const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::LoadBalancer lb;
  bool have_simple = false;
  if (const auto* v = f.get("simple")) {
    if (auto s = d.string(*v, f.name_of("simple"))) {
      have_simple = true;
      const std::string name = uppercase(*s);
      using A = model::LbAlgorithm;
      if (name == "ROUND_ROBIN") lb.algorithm = A::RoundRobin;
      else if (name == "LEAST_REQUEST" || name == "LEAST_CONN" || name == "UNSPECIFIED") lb.algorithm = A::LeastRequest;
      else if (name == "RANDOM") lb.algorithm = A::Random;
      else if (name == "PASSTHROUGH") lb.algorithm = A::Passthrough;
      else {
        d.error(*v, d.field(f.name_of("simple")) + ": unknown load balancer policy '" + *s +
                        "' (expected ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH, "
                        "LEAST_CONN or UNSPECIFIED)");
      }
    }
  }
  if (const auto* v = f.get("consistentHash")) {
    if (have_simple) {
      d.error(*v, d.field(path) + " may set only one of simple and consistentHash");
    }
    Fields hf(d, *v, f.name_of("consistentHash"));
    if (hf.ok()) {
      lb.algorithm = model::LbAlgorithm::RingHash;   // Istio's default consistent hash
      using Src = model::HashKey::Source;
      int keys = 0;
      if (const auto* x = hf.get("httpHeaderName")) {
        ++keys;
        if (auto s = d.string(*x, hf.name_of("httpHeaderName"))) lb.hash = {Src::Header, lowercase(*s), {}, {}};
      }
      if (const auto* x = hf.get("httpCookie")) {
        ++keys;
        Fields cf(d, *x, hf.name_of("httpCookie"));
        if (cf.ok()) {
          lb.hash.source = Src::Cookie;
          if (cf.get("name")) {
            cf.read("name", lb.hash.name);
          } else {
            d.error(*x, d.field(cf.name_of("name")) + " is required");
          }
          cf.read("path", lb.hash.cookie_path);
          cf.read("ttl", lb.hash.cookie_ttl);
          cf.not_implemented("attributes");
          cf.finish();
        }
      }
      if (const auto* x = hf.get("useSourceIp")) {
        if (auto b = d.boolean(*x, hf.name_of("useSourceIp")); b && *b) {
          ++keys;
          lb.hash = {Src::SourceIp, {}, {}, {}};
        }
      }
      if (const auto* x = hf.get("httpQueryParameterName")) {
        ++keys;
        if (auto s = d.string(*x, hf.name_of("httpQueryParameterName"))) lb.hash = {Src::QueryParameter, *s, {}, {}};
      }
      if (keys > 1) {
        d.error(*v, d.field(f.name_of("consistentHash")) +
                        " must set only one of httpHeaderName, httpCookie, useSourceIp, "
                        "httpQueryParameterName");
      }
      bool have_ring = false;
      if (const auto* x = hf.get("ringHash")) {
        have_ring = true;
        Fields rf(d, *x, hf.name_of("ringHash"));
        if (rf.ok()) {
          rf.read("minimumRingSize", lb.ring_minimum_size, 1, 8 * 1024 * 1024);
          rf.finish();
        }
      }
      if (const auto* x = hf.get("maglev")) {
        if (have_ring) d.error(*x, d.field(hf.name_of("maglev")) + " and ringHash are exclusive");
        lb.algorithm = model::LbAlgorithm::Maglev;
        Fields mf(d, *x, hf.name_of("maglev"));
        if (mf.ok()) {
          if (const auto* m = mf.get("tableSize")) {
            if (auto s = d.u32(*m, mf.name_of("tableSize"), 1, 5000011)) {
              if (!is_prime(*s)) {
                d.error(*m, d.field(mf.name_of("tableSize")) + " is " + std::to_string(*s) +
                                ", which is not prime (Maglev needs a prime table size, e.g. 65537)");
              } else {
                lb.maglev_table_size = *s;
              }
            }
          }
          mf.finish();
        }
      }
      hf.read("minimumRingSize", lb.ring_minimum_size, 1, 8 * 1024 * 1024);   // deprecated spelling
      hf.finish();
    }
  }
  f.not_implemented("localityLbSetting");
  f.not_implemented("warmupDurationSecs");
  f.not_implemented("warmup");
  f.not_implemented("zoneAwareLbSetting");
  f.finish();
  return lb;
}

// tcpKeepalive {probes, time, interval}, within what Linux takes (TCP_KEEPCNT
// 1..127, TCP_KEEPIDLE and TCP_KEEPINTVL 1..32767 s, whole seconds).
std::optional<model::TcpKeepalive> decode_tcp_keepalive(Decoder& d, const YAML::Node& n, const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::TcpKeepalive k;
  f.read("probes", k.probes, 1, 127);
  for (auto [key, out] : {std::pair<const char*, model::Duration*>{"time", &k.time}, {"interval", &k.interval}}) {
    const auto* v = f.get(key);
    if (v == nullptr || !f.read(key, *out)) continue;
    constexpr auto kMax = std::chrono::seconds(32767);
    if (*out < std::chrono::seconds(1) || *out > kMax || *out % std::chrono::seconds(1) != model::Duration(0)) {
      d.error(*v, d.field(f.name_of(key)) + " is " + v->as<std::string>() +
                      ": TCP keepalive takes whole seconds from 1s to 32767s");
      *out = model::Duration(0);
    }
  }
  f.finish();
  return k;
}

std::optional<model::ConnectionPool> decode_connection_pool(Decoder& d, const YAML::Node& n,
                                                            const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::ConnectionPool cp;
  if (const auto* v = f.get("tcp")) {
    Fields tf(d, *v, f.name_of("tcp"));
    if (tf.ok()) {
      tf.read("maxConnections", cp.max_connections, 1);
      tf.read("connectTimeout", cp.connect_timeout);
      if (const auto* k = tf.get("tcpKeepalive")) cp.tcp_keepalive = decode_tcp_keepalive(d, *k, tf.name_of("tcpKeepalive"));
      const auto* m = tf.get("maxConnectionDuration");
      if (m != nullptr && tf.read("maxConnectionDuration", cp.max_connection_duration) &&
          cp.max_connection_duration < std::chrono::milliseconds(1)) {
        d.error(*m, d.field(tf.name_of("maxConnectionDuration")) + " is " + m->as<std::string>() +
                        ": a connection's maximum duration is at least 1ms (leave it out for none)");
        cp.max_connection_duration = model::Duration(0);
      }
      tf.not_implemented("idleTimeout", "the http idleTimeout is honoured");
      tf.finish();
    }
  }
  if (const auto* v = f.get("http")) {
    Fields hf(d, *v, f.name_of("http"));
    if (hf.ok()) {
      hf.read("http1MaxPendingRequests", cp.http1_max_pending_requests, 1);
      hf.read("http2MaxRequests", cp.http2_max_requests, 1);
      hf.read("maxRequestsPerConnection", cp.max_requests_per_connection);
      hf.read("maxRetries", cp.max_retries);
      hf.read("idleTimeout", cp.idle_timeout);
      if (const auto* u = hf.get("h2UpgradePolicy")) {
        if (auto s = d.string(*u, hf.name_of("h2UpgradePolicy"))) {
          using H = model::ConnectionPool::H2Upgrade;
          if (*s == "DEFAULT") cp.h2_upgrade = H::Default;
          else if (*s == "DO_NOT_UPGRADE") cp.h2_upgrade = H::DoNotUpgrade;
          else if (*s == "UPGRADE") cp.h2_upgrade = H::Upgrade;
          else
            d.error(*u, d.field(hf.name_of("h2UpgradePolicy")) + ": unknown policy '" + *s +
                            "' (expected DEFAULT, DO_NOT_UPGRADE or UPGRADE)");
        }
      }
      hf.read("maxConcurrentStreams", cp.max_concurrent_streams, 1);
      hf.read("useClientProtocol", cp.use_client_protocol);
      hf.finish();
    }
  }
  f.finish();
  return cp;
}

std::optional<model::OutlierDetection> decode_outlier_detection(Decoder& d, const YAML::Node& n,
                                                                const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::OutlierDetection od;
  od.enabled = true;
  f.read("consecutive5xxErrors", od.consecutive_5xx_errors);
  f.read("consecutiveErrors", od.consecutive_5xx_errors);   // deprecated spelling of the 5xx detector
  f.read("consecutiveGatewayErrors", od.consecutive_gateway_errors);
  f.read("interval", od.interval);
  f.read("baseEjectionTime", od.base_ejection_time);
  f.read("maxEjectionPercent", od.max_ejection_percent, 0, 100);
  f.read("minHealthPercent", od.min_health_percent, 0, 100);
  f.read("splitExternalLocalOriginErrors", od.split_external_local_origin_errors);
  const auto* local = f.get("consecutiveLocalOriginFailures");
  f.read("consecutiveLocalOriginFailures", od.consecutive_local_origin_failures);
  if (local != nullptr && !od.split_external_local_origin_errors) {
    d.warning(*local, d.field(f.name_of("consecutiveLocalOriginFailures")) +
                          " takes effect only with splitExternalLocalOriginErrors: true; without it local-origin "
                          "failures count as 503s toward consecutive5xxErrors and consecutiveGatewayErrors");
  }
  f.finish();
  return od;
}

void decode_policy_components(Decoder& d, Fields& f, PolicyComponents& c) {
  if (const auto* v = f.get("loadBalancer")) c.load_balancer = decode_load_balancer(d, *v, f.name_of("loadBalancer"));
  if (const auto* v = f.get("connectionPool")) c.connection_pool = decode_connection_pool(d, *v, f.name_of("connectionPool"));
  if (const auto* v = f.get("outlierDetection")) c.outlier_detection = decode_outlier_detection(d, *v, f.name_of("outlierDetection"));
  f.not_implemented("tls", "sluice does not originate TLS");
}

std::optional<TrafficPolicySpec> decode_traffic_policy(Decoder& d, const YAML::Node& n,
                                                       const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  TrafficPolicySpec tp;
  decode_policy_components(d, f, tp.components);
  if (const auto* v = f.get("portLevelSettings")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field(f.name_of("portLevelSettings")) + " must be a list");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        Fields pf(d, item, indexed(path, "portLevelSettings", i++));
        if (!pf.ok()) continue;
        PortPolicySpec pp;
        pp.where = d.at(item);
        if (const auto* p = pf.get("port")) {
          Fields nf(d, *p, pf.name_of("port"));
          if (nf.ok()) {
            nf.read_port("number", pp.port);
            nf.finish();
          }
        }
        if (pp.port == 0) d.error(item, d.field(pf.name_of("port.number")) + " is required");
        decode_policy_components(d, pf, pp.components);
        pf.finish();
        for (const auto& other : tp.port_level) {
          if (other.port == pp.port && pp.port != 0) {
            d.error(item, d.field(pf.name_of("port")) + ": port " + std::to_string(pp.port) +
                              " already has settings at line " + std::to_string(other.where.line));
          }
        }
        if (pp.port != 0) tp.port_level.push_back(std::move(pp));
      }
    }
  }
  f.not_implemented("tunnel");
  f.not_implemented("retryBudget", "connectionPool.http.maxRetries is the retry limit sluice enforces");
  f.not_implemented("proxyProtocol");
  f.finish();
  return tp;
}

}  // namespace

void decode_destination_rule(Decoder& d, Fields& spec, ResourceMeta meta) {
  DestinationRuleSpec dr;
  dr.meta = std::move(meta);
  if (const auto* v = spec.get("host")) {
    if (auto s = d.string(*v, "host")) dr.host = {*s, d.at(*v)};
  } else {
    d.error(spec.node(), d.field("host") + " is required");
  }
  if (const auto* v = spec.get("trafficPolicy")) dr.policy = decode_traffic_policy(d, *v, "trafficPolicy");
  if (const auto* v = spec.get("subsets")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("subsets") + " must be a list");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        const std::string path = indexed("", "subsets", i++);
        Fields sf(d, item, path);
        if (!sf.ok()) continue;
        SubsetSpec s;
        s.where = d.at(item);
        if (const auto* x = sf.get("name")) {
          if (auto name = d.string(*x, sf.name_of("name"))) s.name = *name;
          for (const auto& other : dr.subsets) {
            if (other.name == s.name) {
              d.error(*x, "duplicate subset name '" + s.name + "' in DestinationRule '" +
                              dr.meta.name + "' (first defined at line " +
                              std::to_string(other.where.line) + ")");
            }
          }
        } else {
          d.error(item, d.field(sf.name_of("name")) + " is required");
        }
        sf.read("labels", s.labels);
        if (const auto* x = sf.get("trafficPolicy")) s.policy = decode_traffic_policy(d, *x, sf.name_of("trafficPolicy"));
        sf.finish();
        if (!s.name.empty()) dr.subsets.push_back(std::move(s));
      }
    }
  }
  decode_export_to(d, spec, dr.meta, false);
  spec.not_implemented("workloadSelector", "the rule applies to every client");
  spec.finish();
  d.out().destination_rules.push_back(std::move(dr));
}


}  // namespace sluice::config
