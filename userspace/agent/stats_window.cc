#include "agent/stats_window.h"

namespace sluice::agent {

using nlohmann::json;

namespace {

// A counter that went down was reset (a restarted process, a reused slot):
// what it counts now is what happened since.
uint64_t delta(uint64_t now, uint64_t then) { return now >= then ? now - then : now; }

SubsetCounters difference(const SubsetCounters& now, const SubsetCounters* then) {
  SubsetCounters d = now;
  if (then == nullptr) return d;
  d.l4_new_flows = delta(now.l4_new_flows, then->l4_new_flows);
  d.l7_requests = delta(now.l7_requests, then->l7_requests);
  d.l7_errors = delta(now.l7_errors, then->l7_errors);
  // A reset of the request count resets the buckets too.
  const bool reset = now.l7_requests < then->l7_requests;
  for (size_t i = 0; i < d.l7_buckets.size(); ++i)
    d.l7_buckets[i] = reset ? now.l7_buckets[i] : delta(now.l7_buckets[i], then->l7_buckets[i]);
  return d;
}

// The figure a port's plane counts per subset: new connections on L4, requests on L7.
uint64_t plane_count(const std::string& plane, const SubsetCounters& c) {
  return plane == "l7" ? c.l7_requests : c.l4_new_flows;
}

json optional_number(std::optional<double> v) { return v ? json(*v) : json(nullptr); }

json ratio(uint64_t part, uint64_t whole) {
  return whole == 0 ? json(nullptr) : json(static_cast<double>(part) / static_cast<double>(whole));
}

// The port's subsets between two samples (then may lack the port: all since 0).
std::map<std::string, SubsetCounters> port_delta(const PortSample& now, const PortSample* then) {
  std::map<std::string, SubsetCounters> out;
  for (const auto& [name, c] : now.subsets) {
    const SubsetCounters* before = nullptr;
    if (then != nullptr) {
      auto it = then->subsets.find(name);
      if (it != then->subsets.end()) before = &it->second;
    }
    out[name] = then == nullptr ? SubsetCounters{c.configured} : difference(c, before);
  }
  return out;
}

}  // namespace

std::optional<double> bucket_quantile(double q, const std::array<uint64_t, proxy::kDurationBucketsMs.size() + 1>& counts) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  uint64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(below + counts[i]) >= rank) {
      if (i == proxy::kDurationBucketsMs.size()) return proxy::kDurationBucketsMs.back();
      const double lower = i == 0 ? 0.0 : proxy::kDurationBucketsMs[i - 1];
      const double upper = proxy::kDurationBucketsMs[i];
      return lower + (upper - lower) * (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
    }
    below += counts[i];
  }
  return proxy::kDurationBucketsMs.back();
}

void StatsWindow::record(Sample sample) {
  std::lock_guard lock(mu_);
  samples_.push_back(std::move(sample));
  while (samples_.size() > static_cast<size_t>(kSeconds) + 1) samples_.pop_front();
}

size_t StatsWindow::samples() const {
  std::lock_guard lock(mu_);
  return samples_.size();
}

json StatsWindow::view(const std::string& service) const {
  std::lock_guard lock(mu_);
  json out;
  out["window_seconds"] = kSeconds;
  out["ports"] = json::array();
  if (samples_.empty()) {
    out["covered_seconds"] = 0;
    out["sampled_at"] = nullptr;
    return out;
  }
  const Sample& newest = samples_.back();
  const Sample& oldest = samples_.front();
  out["covered_seconds"] = newest.at - oldest.at;
  out["sampled_at"] = newest.at;
  out["version"] = newest.version;
  for (const auto& [key, now] : newest.ports) {
    if (!service.empty() && key.service != service) continue;
    auto then_it = oldest.ports.find(key);
    const PortSample* then = &oldest == &newest ? &now : (then_it == oldest.ports.end() ? nullptr : &then_it->second);
    const auto window = port_delta(now, then);
    const double seconds = std::max(newest.at - oldest.at, 1e-9);

    uint64_t plane_total = 0;
    SubsetCounters all;
    for (const auto& [name, d] : window) {
      plane_total += plane_count(now.plane, d);
      all.l4_new_flows += d.l4_new_flows;
      all.l7_requests += d.l7_requests;
      all.l7_errors += d.l7_errors;
      for (size_t i = 0; i < all.l7_buckets.size(); ++i) all.l7_buckets[i] += d.l7_buckets[i];
    }
    auto figures = [&](json& j, const SubsetCounters& d) {
      j["new_connections"] = d.l4_new_flows;
      j["requests"] = d.l7_requests;
      j["errors"] = d.l7_errors;
      j["connections_per_s"] = &oldest == &newest ? json(nullptr) : json(static_cast<double>(d.l4_new_flows) / seconds);
      j["requests_per_s"] = &oldest == &newest ? json(nullptr) : json(static_cast<double>(d.l7_requests) / seconds);
      j["error_rate"] = ratio(d.l7_errors, d.l7_requests);
      j["p50_ms"] = optional_number(bucket_quantile(0.5, d.l7_buckets));
      j["p99_ms"] = optional_number(bucket_quantile(0.99, d.l7_buckets));
    };
    json port;
    port["service"] = key.service;
    port["port"] = key.port;
    port["plane"] = now.plane;
    figures(port, all);
    port["subsets"] = json::array();
    for (const auto& [name, d] : window) {
      if (d.configured < 0 && plane_count(now.plane, d) == 0 && d.l4_new_flows == 0 && d.l7_requests == 0) continue;
      json s;
      s["name"] = name;
      s["configured"] = d.configured < 0 ? json(nullptr) : json(d.configured);
      s["observed"] = ratio(plane_count(now.plane, d), plane_total);
      figures(s, d);
      port["subsets"].push_back(s);
    }
    // One point per second of the window: the configured shares in force and
    // what that second's traffic did.
    port["seconds"] = json::array();
    for (size_t i = 1; i < samples_.size(); ++i) {
      auto a = samples_[i - 1].ports.find(key);
      auto b = samples_[i].ports.find(key);
      if (b == samples_[i].ports.end()) continue;
      const auto step = port_delta(b->second, a == samples_[i - 1].ports.end() ? nullptr : &a->second);
      uint64_t total = 0;
      for (const auto& [name, d] : step) total += plane_count(b->second.plane, d);
      json point{{"t", samples_[i].at}, {"version", samples_[i].version}, {"total", total}};
      point["configured"] = json::object();
      point["observed"] = json::object();
      for (const auto& [name, d] : step) {
        if (d.configured >= 0) point["configured"][name] = d.configured;
        if (total > 0) point["observed"][name] = static_cast<double>(plane_count(b->second.plane, d)) / total;
      }
      port["seconds"].push_back(point);
    }
    out["ports"].push_back(port);
  }
  return out;
}

}  // namespace sluice::agent
