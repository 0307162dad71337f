#include "model/snapshot.h"

#include <arpa/inet.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>

namespace sluice::model {

std::string format_diagnostic(const Diagnostic& d) {
  std::string out;
  out += d.where.file.empty() ? "<input>" : d.where.file;
  if (d.where.line > 0) {
    out += ':' + std::to_string(d.where.line) + ':' + std::to_string(d.where.column);
  }
  switch (d.severity) {
    case Severity::Error: out += ": error: "; break;
    case Severity::Warning: out += ": warning: "; break;
    case Severity::Info: out += ": note: "; break;
  }
  out += d.message;
  return out;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = kV4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = kV6;
    return a;
  }
  return std::nullopt;
}

std::string_view IpAddress::format(std::array<char, kMaxText>& out) const {
  static_assert(kMaxText == INET6_ADDRSTRLEN);
  out[0] = '\0';
  if (family == kV4 || family == kV6) inet_ntop(family == kV4 ? AF_INET : AF_INET6, bytes.data(), out.data(), out.size());
  return out.data();
}

std::string IpAddress::to_string() const {
  std::array<char, kMaxText> buf;
  return std::string(format(buf));
}

std::string_view to_string(Protocol p) {
  switch (p) {
    case Protocol::Unspecified: return "UNSPECIFIED";
    case Protocol::HTTP: return "HTTP";
    case Protocol::HTTPS: return "HTTPS";
    case Protocol::HTTP2: return "HTTP2";
    case Protocol::GRPC: return "GRPC";
    case Protocol::TCP: return "TCP";
    case Protocol::TLS: return "TLS";
    case Protocol::UDP: return "UDP";
    case Protocol::Mongo: return "MONGO";
    case Protocol::Redis: return "REDIS";
    case Protocol::MySQL: return "MYSQL";
  }
  return "UNSPECIFIED";
}

bool is_http(Protocol p) {
  return p == Protocol::HTTP || p == Protocol::HTTP2 || p == Protocol::GRPC;
}

std::string_view to_string(LbAlgorithm a) {
  switch (a) {
    case LbAlgorithm::RoundRobin: return "ROUND_ROBIN";
    case LbAlgorithm::LeastRequest: return "LEAST_REQUEST";
    case LbAlgorithm::Random: return "RANDOM";
    case LbAlgorithm::Passthrough: return "PASSTHROUGH";
    case LbAlgorithm::RingHash: return "RING_HASH";
    case LbAlgorithm::Maglev: return "MAGLEV";
  }
  return "LEAST_REQUEST";
}

std::string_view to_string(HashKey::Source s) {
  switch (s) {
    case HashKey::Source::FiveTuple: return "five_tuple";
    case HashKey::Source::Header: return "http_header";
    case HashKey::Source::Cookie: return "http_cookie";
    case HashKey::Source::SourceIp: return "source_ip";
    case HashKey::Source::QueryParameter: return "query_parameter";
  }
  return "five_tuple";
}

uint32_t Endpoint::port_for(const ServicePort& port) const {
  // An unnamed port is found too: a Kubernetes EndpointSlice names a
  // single-port Service's port "".
  if (auto it = ports.find(port.name); it != ports.end()) {
    return it->second;
  }
  return port.target_port != 0 ? port.target_port : port.number;
}

const TrafficPolicy& Subset::policy_for(uint32_t port) const {
  static const TrafficPolicy kDefault{};
  if (auto it = policy_by_port.find(port); it != policy_by_port.end()) return it->second;
  return kDefault;
}

namespace {
bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}
}  // namespace

bool StringMatch::matches(std::string_view s, bool ignore_case) const {
  switch (kind) {
    case Kind::Exact:
      return ignore_case ? (s.size() == value.size() && iequals_prefix(s, value)) : s == value;
    case Kind::Prefix:
      return ignore_case ? iequals_prefix(s, value) : s.substr(0, value.size()) == value;
    case Kind::Regex:
      // The compiler builds a case-insensitive RE2 when the match asks for it.
      return regex && RE2::FullMatch(re2::StringPiece(s.data(), s.size()), *regex);
  }
  return false;
}

const ServicePort* Service::port(uint32_t number) const {
  for (const auto& p : ports) {
    if (p.number == number) return &p;
  }
  return nullptr;
}

const PortRoutes* Service::routes_for(uint32_t port_number) const {
  for (const auto& r : routes) {
    if (r.port == port_number) return &r;
  }
  return nullptr;
}

const PortRoutes* Service::routes_for(uint32_t port_number, uint32_t client_namespace) const {
  const uint32_t view = view_index(client_namespace);
  if (view == 0 || view > views.size()) return routes_for(port_number);
  for (const auto& r : views[view - 1].routes) {
    if (r.port == port_number) return &r;
  }
  return nullptr;
}

std::optional<uint32_t> Service::subset_index(std::string_view subset_name) const {
  const auto n = default_subsets == 0 ? subsets.size() : std::min<size_t>(default_subsets, subsets.size());
  for (uint32_t i = 0; i < n; ++i) {
    if (subsets[i].name == subset_name) return i;
  }
  return std::nullopt;
}

std::string_view Service::subset_rule(uint32_t subset) const {
  if (views.empty() || subset < default_subsets) return {};
  for (const ServiceView& view : views) {
    if (subset >= view.first_subset && subset < view.first_subset + view.subset_count)
      return view.destination_rule.empty() ? std::string_view("no DestinationRule") : view.destination_rule;
  }
  return {};
}

size_t IpAddressHash::operator()(const IpAddress& a) const noexcept {
  // FNV-1a over the family and the bytes in use.
  uint64_t h = 1469598103934665603ULL ^ a.family;
  const size_t n = a.is_v4() ? 4 : a.bytes.size();
  for (size_t i = 0; i < n; ++i) h = (h ^ a.bytes[i]) * 1099511628211ULL;
  return static_cast<size_t>(h);
}

uint16_t Snapshot::client_namespace(const IpAddress& source) const {
  if (client_namespace_by_address.empty()) return 0;
  auto it = client_namespace_by_address.find(source);
  return it == client_namespace_by_address.end() ? 0 : it->second;
}

const Service* Snapshot::find_service(std::string_view host) const {
  auto it = service_by_host.find(std::string(host));
  return it == service_by_host.end() ? nullptr : &services[it->second];
}

}  // namespace sluice::model
