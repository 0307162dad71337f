#include "config/loader.h"

#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <functional>
#include <sstream>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "config/duration.h"

namespace sluice::config {

namespace fs = std::filesystem;
using model::Severity;

bool ParsedConfig::has_errors() const {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::Error; });
}

namespace {

// A runaway input (or a fuzzer) could produce millions of diagnostics; past
// this many errors the rest would only bury the first ones.
constexpr size_t kMaxDiagnostics = 1000;

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string uppercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string indexed(const std::string& path, std::string_view key, size_t i) {
  std::string out = path.empty() ? std::string(key) : path + "." + std::string(key);
  return out + "[" + std::to_string(i) + "]";
}

// Decoding context for one document: where diagnostics go and how they are
// worded ("VirtualService field 'http[0].timeout' ...").
class Decoder {
 public:
  Decoder(ParsedConfig& out, const std::string& file,
          std::unordered_map<std::string, std::shared_ptr<const re2::RE2>>& regex_cache)
      : out_(out), file_(file), regex_cache_(regex_cache) {}

  std::string kind = "document";
  // Documents are parsed one at a time (see split_documents); marks are
  // relative to the document's first line.
  int line_offset = 0;

  SourceLocation at(const YAML::Mark& m) const {
    if (m.line < 0) return {file_, 0, 0};
    return {file_, m.line + 1 + line_offset, m.column + 1};
  }

  SourceLocation at(const YAML::Node& node) const {
    SourceLocation loc{file_, 0, 0};
    try {
      if (node.IsDefined()) {
        const YAML::Mark m = node.Mark();
        if (m.line >= 0) {
          loc.line = m.line + 1 + line_offset;
          loc.column = m.column + 1;
        }
      }
    } catch (const YAML::Exception&) {
      // A node without a mark: report the file only.
    }
    return loc;
  }

  void report(Severity severity, SourceLocation where, std::string message) {
    if (out_.diagnostics.size() >= kMaxDiagnostics) {
      if (out_.diagnostics.size() == kMaxDiagnostics) {
        out_.diagnostics.push_back({Severity::Error, where,
                                    "too many diagnostics; stopping here"});
      }
      return;
    }
    out_.diagnostics.push_back({severity, std::move(where), std::move(message)});
  }
  void error(const YAML::Node& n, std::string message) {
    report(Severity::Error, at(n), std::move(message));
  }
  void error(SourceLocation where, std::string message) {
    report(Severity::Error, std::move(where), std::move(message));
  }
  void warning(const YAML::Node& n, std::string message) {
    report(Severity::Warning, at(n), std::move(message));
  }

  std::string field(const std::string& path) const {
    return kind + " field '" + path + "'";
  }

  // --- scalars ---------------------------------------------------------------
  std::optional<std::string> string(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) {
      error(n, field(path) + " must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<int64_t> integer(const YAML::Node& n, const std::string& path, int64_t lo,
                                 int64_t hi) {
    long long v = 0;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) {
      error(n, field(path) + " must be an integer" + got(n));
      return std::nullopt;
    }
    if (v < lo || v > hi) {
      error(n, field(path) + " is " + std::to_string(v) + ", expected " + std::to_string(lo) +
                   ".." + std::to_string(hi));
      return std::nullopt;
    }
    return static_cast<int64_t>(v);
  }

  std::optional<uint32_t> u32(const YAML::Node& n, const std::string& path, uint32_t lo = 0,
                              uint32_t hi = std::numeric_limits<uint32_t>::max()) {
    auto v = integer(n, path, lo, hi);
    if (!v) return std::nullopt;
    return static_cast<uint32_t>(*v);
  }

  std::optional<uint32_t> port_number(const YAML::Node& n, const std::string& path) {
    return u32(n, path, 1, 65535);
  }

  std::optional<double> number(const YAML::Node& n, const std::string& path) {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) {
      error(n, field(path) + " must be a number" + got(n));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const YAML::Node& n, const std::string& path) {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      error(n, field(path) + " must be true or false" + got(n));
      return std::nullopt;
    }
    return v;
  }

  std::optional<model::Duration> duration(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) {
      error(n, field(path) + " must be a duration such as 7s, 100ms or 1.5s");
      return std::nullopt;
    }
    auto d = parse_duration(n.Scalar());
    if (!d) {
      error(n, field(path) + ": bad duration '" + n.Scalar() +
                   "' (expected e.g. 7s, 100ms, 1.5s, 1h30m; units h, m, s, ms, us, ns)");
    }
    return d;
  }

  std::optional<double> percent_value(const YAML::Node& n, const std::string& path) {
    auto v = number(n, path);
    if (v && (*v < 0 || *v > 100)) {
      error(n, field(path) + " is " + n.Scalar() + ", expected a percentage 0..100");
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::vector<std::string>> string_list(const YAML::Node& n,
                                                      const std::string& path) {
    if (!n.IsSequence()) {
      error(n, field(path) + " must be a list of strings");
      return std::nullopt;
    }
    std::vector<std::string> out;
    size_t i = 0;
    for (const auto& item : n) {
      if (auto s = string(item, path + "[" + std::to_string(i) + "]")) out.push_back(*s);
      ++i;
    }
    return out;
  }

  std::optional<model::Labels> labels(const YAML::Node& n, const std::string& path) {
    if (!n.IsMap()) {
      error(n, field(path) + " must be a mapping of label names to values");
      return std::nullopt;
    }
    model::Labels out;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
        error(kv.first, field(path) + " entries must be 'name: value' strings");
        continue;
      }
      if (!out.emplace(kv.first.Scalar(), kv.second.Scalar()).second) {
        error(kv.first, field(path) + " repeats label '" + kv.first.Scalar() + "'");
      }
    }
    return out;
  }

  // RE2 syntax, compiled once per (pattern, case) for the whole load.
  std::shared_ptr<const re2::RE2> regex(const YAML::Node& n, const std::string& pattern,
                                        bool ignore_case, const std::string& path) {
    std::string key = (ignore_case ? "i:" : "c:") + pattern;
    if (auto it = regex_cache_.find(key); it != regex_cache_.end()) return it->second;
    re2::RE2::Options options;
    options.set_log_errors(false);
    options.set_case_sensitive(!ignore_case);
    auto re = std::make_shared<const re2::RE2>(pattern, options);
    if (!re->ok()) {
      error(n, field(path) + ": bad regex '" + pattern + "': " + re->error() +
                   " (RE2 syntax)");
      return nullptr;
    }
    regex_cache_.emplace(std::move(key), re);
    return re;
  }

  ParsedConfig& out() { return out_; }

 private:
  static std::string got(const YAML::Node& n) {
    if (n.IsScalar()) return ", got '" + n.Scalar() + "'";
    if (n.IsSequence()) return ", got a list";
    if (n.IsMap()) return ", got a mapping";
    return "";
  }

  ParsedConfig& out_;
  const std::string& file_;
  std::unordered_map<std::string, std::shared_ptr<const re2::RE2>>& regex_cache_;
};

// The keys of one YAML mapping, checked against what the schema knows. Fields
// are looked up by name (order in the file does not matter); `finish()`
// reports every key that no `get()` or `not_implemented()` asked about as an
// unknown field, with a suggestion when it is close to a known one.
class Fields {
 public:
  Fields(Decoder& d, const YAML::Node& node, std::string path)
      : d_(d), node_(node), path_(std::move(path)) {
    if (!node.IsMap()) {
      d_.error(node, d_.field(path_.empty() ? "spec" : path_) + " must be a mapping");
      return;
    }
    ok_ = true;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        d_.error(kv.first, d_.field(path_) + " has a key that is not a string");
        continue;
      }
      const std::string& key = kv.first.Scalar();
      bool duplicate = false;
      for (const auto& e : entries_) duplicate = duplicate || e.key == key;
      if (duplicate) {
        d_.error(kv.first, d_.field(name_of(key)) + " is given twice");
        continue;
      }
      entries_.push_back({key, kv.first, kv.second, false});
    }
  }
  Fields(const Fields&) = delete;
  Fields& operator=(const Fields&) = delete;

  bool ok() const { return ok_; }
  const YAML::Node& node() const { return node_; }
  std::string name_of(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  // A field sluice reads. nullptr when absent or null.
  const YAML::Node* get(std::string_view key) {
    known_.emplace_back(key);
    for (auto& e : entries_) {
      if (e.key == key) {
        e.used = true;
        return e.value.IsNull() ? nullptr : &e.value;
      }
    }
    return nullptr;
  }

  // Where a present key is written (for diagnostics about its value's meaning).
  SourceLocation key_at(std::string_view key) const {
    for (const auto& e : entries_) {
      if (e.key == key) return d_.at(e.key_node);
    }
    return d_.at(node_);
  }

  // A field of the Istio API that sluice does not act on: a warning naming it.
  void not_implemented(std::string_view key, std::string_view detail = {}) {
    known_.emplace_back(key);
    for (auto& e : entries_) {
      if (e.key == key) {
        e.used = true;
        std::string msg = d_.field(name_of(key)) + " is not implemented by sluice and is ignored";
        if (!detail.empty()) msg += " (" + std::string(detail) + ")";
        d_.warning(e.key_node, msg);
      }
    }
  }

  // A field accepted without effect (documented in docs/config-reference.md).
  void accept(std::string_view key) {
    known_.emplace_back(key);
    for (auto& e : entries_) {
      if (e.key == key) e.used = true;
    }
  }

  void finish() {
    for (const auto& e : entries_) {
      if (e.used) continue;
      std::string msg = "unknown " + d_.field(name_of(e.key));
      std::string best;
      size_t best_distance = 3;
      for (const auto& k : known_) {
        const size_t dist = edit_distance(e.key, k);
        if (dist < best_distance) {
          best_distance = dist;
          best = k;
        }
      }
      if (!best.empty()) msg += " (did you mean '" + best + "'?)";
      d_.error(e.key_node, msg);
    }
  }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
    bool used;
  };
  Decoder& d_;
  YAML::Node node_;
  std::string path_;
  bool ok_ = false;
  std::vector<Entry> entries_;
  std::vector<std::string> known_;
};

// ---------------------------------------------------------------------------
// Shared pieces

std::optional<model::StringMatch> decode_string_match(Decoder& d, const YAML::Node& n,
                                                      const std::string& path,
                                                      bool ignore_case = false) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  std::optional<model::StringMatch> out;
  int kinds = 0;
  using Kind = model::StringMatch::Kind;
  for (auto [key, kind] : {std::pair{"exact", Kind::Exact}, std::pair{"prefix", Kind::Prefix},
                           std::pair{"regex", Kind::Regex}}) {
    if (const auto* v = f.get(key)) {
      ++kinds;
      auto s = d.string(*v, f.name_of(key));
      if (!s) continue;
      model::StringMatch m;
      m.kind = kind;
      m.value = *s;
      if (kind == Kind::Regex) {
        m.regex = d.regex(*v, *s, ignore_case, f.name_of(key));
        if (!m.regex) continue;
      }
      out = std::move(m);
    }
  }
  f.finish();
  if (kinds > 1) {
    d.error(n, d.field(path) + " must set exactly one of exact, prefix, regex");
    return std::nullopt;
  }
  return out;
}

// headers / queryParams / withoutHeaders: name -> StringMatch ({} = present).
std::vector<model::KeyMatch> decode_key_matches(Decoder& d, const YAML::Node& n,
                                                const std::string& path, bool lowercase_names) {
  std::vector<model::KeyMatch> out;
  if (!n.IsMap()) {
    d.error(n, d.field(path) + " must be a mapping of names to string matches");
    return out;
  }
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) {
      d.error(kv.first, d.field(path) + " has a key that is not a string");
      continue;
    }
    model::KeyMatch km;
    km.name = lowercase_names ? lowercase(kv.first.Scalar()) : kv.first.Scalar();
    const std::string sub = path + "." + kv.first.Scalar();
    if (!kv.second.IsNull() && !(kv.second.IsMap() && kv.second.size() == 0)) {
      km.match = decode_string_match(d, kv.second, sub);
      if (!km.match) continue;
    }
    out.push_back(std::move(km));
  }
  return out;
}

void decode_header_operations(Decoder& d, const YAML::Node& n, const std::string& path,
                              model::HeaderOperations& ops) {
  Fields f(d, n, path);
  if (!f.ok()) return;
  for (auto [key, target] : {std::pair{"set", &ops.set}, std::pair{"add", &ops.add}}) {
    if (const auto* v = f.get(key)) {
      if (!v->IsMap()) {
        d.error(*v, d.field(f.name_of(key)) + " must be a mapping of header names to values");
        continue;
      }
      for (const auto& kv : *v) {
        if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
          d.error(kv.first, d.field(f.name_of(key)) + " entries must be 'name: value' strings");
          continue;
        }
        target->emplace_back(lowercase(kv.first.Scalar()), kv.second.Scalar());
      }
    }
  }
  if (const auto* v = f.get("remove")) {
    if (auto list = d.string_list(*v, f.name_of("remove"))) {
      for (auto& h : *list) ops.remove.push_back(lowercase(h));
    }
  }
  f.finish();
}

void decode_headers(Decoder& d, const YAML::Node& n, const std::string& path,
                    model::Headers& headers) {
  Fields f(d, n, path);
  if (!f.ok()) return;
  if (const auto* v = f.get("request")) decode_header_operations(d, *v, f.name_of("request"), headers.request);
  if (const auto* v = f.get("response")) decode_header_operations(d, *v, f.name_of("response"), headers.response);
  f.finish();
}

std::optional<DestinationRef> decode_destination(Decoder& d, const YAML::Node& n,
                                                 const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  DestinationRef dest;
  dest.where = d.at(n);
  bool ok = true;
  if (const auto* v = f.get("host")) {
    auto s = d.string(*v, f.name_of("host"));
    ok = ok && s.has_value();
    if (s) dest.host = *s;
    dest.host_where = d.at(*v);
  } else {
    d.error(n, d.field(f.name_of("host")) + " is required");
    ok = false;
  }
  if (const auto* v = f.get("subset")) {
    if (auto s = d.string(*v, f.name_of("subset"))) dest.subset = *s;
    dest.subset_where = d.at(*v);
  }
  if (const auto* v = f.get("port")) {
    Fields pf(d, *v, f.name_of("port"));
    if (pf.ok()) {
      if (const auto* num = pf.get("number")) {
        if (auto p = d.port_number(*num, pf.name_of("number"))) dest.port = *p;
        dest.port_where = d.at(*num);
      }
      pf.finish();
    }
  }
  f.finish();
  if (!ok) return std::nullopt;
  return dest;
}

// `percentage: {value: 12.5}` or the legacy integer `percent: 12`.
std::optional<double> decode_percentage(Decoder& d, Fields& f, std::string_view percentage_key,
                                        std::string_view legacy_key) {
  std::optional<double> out;
  if (const auto* v = f.get(percentage_key)) {
    Fields pf(d, *v, f.name_of(percentage_key));
    if (pf.ok()) {
      if (const auto* value = pf.get("value")) out = d.percent_value(*value, pf.name_of("value"));
      pf.finish();
    }
  }
  if (!legacy_key.empty()) {
    if (const auto* v = f.get(legacy_key)) {
      if (auto p = d.integer(*v, f.name_of(legacy_key), 0, 100)) {
        if (out) {
          d.error(*v, d.field(f.name_of(legacy_key)) + " and '" + f.name_of(percentage_key) +
                          "' are both set; use only '" + std::string(percentage_key) + "'");
        }
        out = static_cast<double>(*p);
      }
    }
  }
  return out;
}

void decode_weighted_destinations(Decoder& d, const YAML::Node& n, const std::string& path,
                                  bool allow_headers,
                                  std::vector<WeightedDestinationRef>& out) {
  if (!n.IsSequence()) {
    d.error(n, d.field(path) + " must be a list of destinations");
    return;
  }
  size_t i = 0;
  for (const auto& item : n) {
    const std::string ipath = path + "[" + std::to_string(i++) + "]";
    Fields f(d, item, ipath);
    if (!f.ok()) continue;
    WeightedDestinationRef w;
    w.where = d.at(item);
    std::optional<DestinationRef> dest;
    if (const auto* v = f.get("destination")) {
      dest = decode_destination(d, *v, f.name_of("destination"));
    } else {
      d.error(item, d.field(f.name_of("destination")) + " is required");
    }
    if (const auto* v = f.get("weight")) {
      // Read wide so a negative weight gets its own message.
      if (auto wt = d.integer(*v, f.name_of("weight"), std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int32_t>::max())) {
        if (*wt < 0) {
          d.error(*v, d.field(f.name_of("weight")) + " is " + std::to_string(*wt) +
                          ": weights must not be negative");
        } else {
          w.weight = *wt;
        }
      }
    }
    if (allow_headers) {
      if (const auto* v = f.get("headers")) decode_headers(d, *v, f.name_of("headers"), w.headers);
    }
    f.finish();
    if (dest) {
      w.destination = std::move(*dest);
      out.push_back(std::move(w));
    }
  }
}

// ---------------------------------------------------------------------------
// VirtualService

std::optional<model::HttpMatch> decode_http_match(Decoder& d, const YAML::Node& n,
                                                  const std::string& path,
                                                  SourceLocation& port_where) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::HttpMatch m;
  m.where = d.at(n);
  if (const auto* v = f.get("name")) {
    if (auto s = d.string(*v, f.name_of("name"))) m.name = *s;
  }
  if (const auto* v = f.get("ignoreUriCase")) {
    if (auto b = d.boolean(*v, f.name_of("ignoreUriCase"))) m.ignore_uri_case = *b;
  }
  if (const auto* v = f.get("uri")) m.uri = decode_string_match(d, *v, f.name_of("uri"), m.ignore_uri_case);
  if (const auto* v = f.get("scheme")) m.scheme = decode_string_match(d, *v, f.name_of("scheme"));
  if (const auto* v = f.get("method")) m.method = decode_string_match(d, *v, f.name_of("method"));
  if (const auto* v = f.get("authority")) m.authority = decode_string_match(d, *v, f.name_of("authority"));
  if (const auto* v = f.get("headers")) m.headers = decode_key_matches(d, *v, f.name_of("headers"), true);
  if (const auto* v = f.get("withoutHeaders")) m.without_headers = decode_key_matches(d, *v, f.name_of("withoutHeaders"), true);
  if (const auto* v = f.get("queryParams")) m.query_params = decode_key_matches(d, *v, f.name_of("queryParams"), false);
  if (const auto* v = f.get("port")) {
    if (auto p = d.port_number(*v, f.name_of("port"))) m.port = *p;
    port_where = d.at(*v);
  }
  f.not_implemented("sourceLabels", "sluice does not know the client workload");
  f.not_implemented("sourceNamespace", "sluice does not know the client workload");
  f.not_implemented("gateways", "sluice has no gateways");
  f.not_implemented("statPrefix");
  f.finish();
  return m;
}

void decode_http_route(Decoder& d, const YAML::Node& n, const std::string& path,
                       VirtualServiceSpec& vs) {
  Fields f(d, n, path);
  if (!f.ok()) return;
  HttpRouteSpec spec;
  model::HttpRoute& r = spec.route;
  r.virtual_service = vs.meta.name;
  r.where = d.at(n);
  if (const auto* v = f.get("name")) {
    if (auto s = d.string(*v, f.name_of("name"))) r.name = *s;
  }
  if (const auto* v = f.get("match")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field(f.name_of("match")) + " must be a list of match conditions");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        SourceLocation port_where;
        if (auto m = decode_http_match(d, item, indexed(path, "match", i++), port_where)) {
          r.matches.push_back(std::move(*m));
          spec.match_port_where.push_back(port_where);
        }
      }
    }
  }
  if (const auto* v = f.get("route")) {
    decode_weighted_destinations(d, *v, f.name_of("route"), true, spec.destinations);
  }
  if (const auto* v = f.get("redirect")) {
    Fields rf(d, *v, f.name_of("redirect"));
    if (rf.ok()) {
      model::Redirect red;
      if (const auto* x = rf.get("uri")) { if (auto s = d.string(*x, rf.name_of("uri"))) red.uri = *s; }
      if (const auto* x = rf.get("authority")) { if (auto s = d.string(*x, rf.name_of("authority"))) red.authority = *s; }
      if (const auto* x = rf.get("scheme")) { if (auto s = d.string(*x, rf.name_of("scheme"))) red.scheme = *s; }
      if (const auto* x = rf.get("port")) { if (auto p = d.port_number(*x, rf.name_of("port"))) red.port = *p; }
      if (const auto* x = rf.get("redirectCode")) {
        if (auto c = d.u32(*x, rf.name_of("redirectCode"), 300, 399)) red.status = *c;
      }
      rf.not_implemented("derivePort");
      rf.finish();
      r.redirect = red;
    }
  }
  if (const auto* v = f.get("rewrite")) {
    Fields rf(d, *v, f.name_of("rewrite"));
    if (rf.ok()) {
      model::Rewrite rw;
      if (const auto* x = rf.get("uri")) { if (auto s = d.string(*x, rf.name_of("uri"))) rw.uri = *s; }
      if (const auto* x = rf.get("authority")) { if (auto s = d.string(*x, rf.name_of("authority"))) rw.authority = *s; }
      if (const auto* x = rf.get("uriRegexRewrite")) {
        Fields xf(d, *x, rf.name_of("uriRegexRewrite"));
        if (xf.ok()) {
          if (const auto* m = xf.get("match")) {
            if (auto s = d.string(*m, xf.name_of("match"))) {
              model::StringMatch sm;
              sm.kind = model::StringMatch::Kind::Regex;
              sm.value = *s;
              sm.regex = d.regex(*m, *s, false, xf.name_of("match"));
              if (sm.regex) rw.uri_regex = std::move(sm);
            }
          }
          if (const auto* m = xf.get("rewrite")) {
            if (auto s = d.string(*m, xf.name_of("rewrite"))) rw.uri_regex_rewrite = *s;
          }
          xf.finish();
        }
      }
      rf.finish();
      if (!rw.uri.empty() && rw.uri_regex) {
        d.error(*v, d.field(f.name_of("rewrite")) + " sets both uri and uriRegexRewrite; use one");
      }
      r.rewrite = std::move(rw);
    }
  }
  if (const auto* v = f.get("directResponse")) {
    Fields rf(d, *v, f.name_of("directResponse"));
    if (rf.ok()) {
      model::DirectResponse dr;
      if (const auto* x = rf.get("status")) {
        if (auto c = d.u32(*x, rf.name_of("status"), 200, 599)) dr.status = *c;
      } else {
        d.error(*v, d.field(rf.name_of("status")) + " is required");
      }
      if (const auto* x = rf.get("body")) {
        Fields bf(d, *x, rf.name_of("body"));
        if (bf.ok()) {
          if (const auto* s = bf.get("string")) {
            if (auto t = d.string(*s, bf.name_of("string"))) dr.body = *t;
          }
          bf.not_implemented("bytes", "use body.string");
          bf.finish();
        }
      }
      rf.finish();
      r.direct_response = dr;
    }
  }
  if (const auto* v = f.get("timeout")) {
    if (auto t = d.duration(*v, f.name_of("timeout"))) r.timeout = *t;
  }
  if (const auto* v = f.get("retries")) {
    Fields rf(d, *v, f.name_of("retries"));
    if (rf.ok()) {
      model::Retries rt;
      if (const auto* x = rf.get("attempts")) {
        if (auto a = d.u32(*x, rf.name_of("attempts"), 0, 100)) rt.attempts = *a;
      }
      if (const auto* x = rf.get("perTryTimeout")) {
        if (auto t = d.duration(*x, rf.name_of("perTryTimeout"))) rt.per_try_timeout = *t;
      }
      if (const auto* x = rf.get("retryOn")) {
        if (auto s = d.string(*x, rf.name_of("retryOn"))) {
          std::stringstream tokens(*s);
          std::string token;
          while (std::getline(tokens, token, ',')) {
            token.erase(0, token.find_first_not_of(' '));
            token.erase(token.find_last_not_of(' ') + 1);
            if (token.empty()) continue;
            // Istio turns a bare status code into retriable-status-codes.
            if (std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                token.size() == 3) {
              rt.retriable_status_codes.push_back(static_cast<uint32_t>(std::stoul(token)));
              if (std::find(rt.retry_on.begin(), rt.retry_on.end(), "retriable-status-codes") ==
                  rt.retry_on.end()) {
                rt.retry_on.push_back("retriable-status-codes");
              }
            } else {
              rt.retry_on.push_back(token);
            }
          }
        }
      }
      rf.not_implemented("retryRemoteLocalities");
      rf.finish();
      r.retries = std::move(rt);
    }
  }
  if (const auto* v = f.get("fault")) {
    Fields ff(d, *v, f.name_of("fault"));
    if (ff.ok()) {
      model::Fault fault;
      if (const auto* x = ff.get("delay")) {
        Fields df(d, *x, ff.name_of("delay"));
        if (df.ok()) {
          model::Fault::Delay delay;
          if (const auto* fx = df.get("fixedDelay")) {
            if (auto t = d.duration(*fx, df.name_of("fixedDelay"))) delay.fixed = *t;
          } else {
            d.error(*x, d.field(df.name_of("fixedDelay")) + " is required");
          }
          if (auto p = decode_percentage(d, df, "percentage", "percent")) delay.percent = *p;
          df.not_implemented("exponentialDelay");
          df.finish();
          fault.delay = delay;
        }
      }
      if (const auto* x = ff.get("abort")) {
        Fields af(d, *x, ff.name_of("abort"));
        if (af.ok()) {
          model::Fault::Abort abort;
          if (const auto* s = af.get("httpStatus")) {
            if (auto c = d.u32(*s, af.name_of("httpStatus"), 200, 599)) abort.status = *c;
          } else if (af.node()["grpcStatus"] || af.node()["http2Error"]) {
            // reported as not implemented below
          } else {
            d.error(*x, d.field(af.name_of("httpStatus")) + " is required");
          }
          if (auto p = decode_percentage(d, af, "percentage", "percent")) abort.percent = *p;
          af.not_implemented("grpcStatus");
          af.not_implemented("http2Error");
          af.finish();
          if (abort.status != 0) fault.abort = abort;
        }
      }
      ff.finish();
      r.fault = fault;
    }
  }
  if (const auto* v = f.get("mirror")) {
    if (auto dest = decode_destination(d, *v, f.name_of("mirror"))) {
      MirrorRef m{std::move(*dest), 100};
      if (auto p = decode_percentage(d, f, "mirrorPercentage", "mirrorPercent")) m.percent = *p;
      spec.mirrors.push_back(std::move(m));
    }
  } else {
    // Keep the percentage keys known even without a mirror.
    if (auto p = decode_percentage(d, f, "mirrorPercentage", "mirrorPercent")) {
      d.warning(f.node(), d.field(f.name_of("mirrorPercentage")) + " has no effect without 'mirror'");
    }
  }
  if (const auto* v = f.get("mirror_percent")) {
    if (auto p = d.integer(*v, f.name_of("mirror_percent"), 0, 100)) {
      if (!spec.mirrors.empty()) spec.mirrors.front().percent = static_cast<double>(*p);
    }
  }
  if (const auto* v = f.get("mirrors")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field(f.name_of("mirrors")) + " must be a list");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        const std::string ipath = indexed(path, "mirrors", i++);
        Fields mf(d, item, ipath);
        if (!mf.ok()) continue;
        std::optional<DestinationRef> dest;
        if (const auto* x = mf.get("destination")) {
          dest = decode_destination(d, *x, mf.name_of("destination"));
        } else {
          d.error(item, d.field(mf.name_of("destination")) + " is required");
        }
        auto p = decode_percentage(d, mf, "percentage", "");
        mf.finish();
        if (dest) spec.mirrors.push_back({std::move(*dest), p.value_or(100)});
      }
    }
  }
  if (const auto* v = f.get("headers")) decode_headers(d, *v, f.name_of("headers"), r.headers);
  f.not_implemented("corsPolicy");
  f.not_implemented("delegate");
  f.finish();

  const int actions = (spec.destinations.empty() ? 0 : 1) + (r.redirect ? 1 : 0) +
                      (r.direct_response ? 1 : 0);
  if (actions == 0 && !f.node()["delegate"]) {
    d.error(n, d.field(path) + " needs one of route, redirect or directResponse");
  } else if (actions > 1) {
    d.error(n, d.field(path) + " may set only one of route, redirect, directResponse");
  }
  vs.http.push_back(std::move(spec));
}

void decode_tcp_route(Decoder& d, const YAML::Node& n, const std::string& path,
                      VirtualServiceSpec& vs) {
  Fields f(d, n, path);
  if (!f.ok()) return;
  TcpRouteSpec spec;
  spec.where = d.at(n);
  if (const auto* v = f.get("match")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field(f.name_of("match")) + " must be a list of match conditions");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        Fields mf(d, item, indexed(path, "match", i++));
        if (!mf.ok()) continue;
        TcpMatchSpec m;
        if (const auto* p = mf.get("port")) {
          if (auto num = d.port_number(*p, mf.name_of("port"))) m.port = *num;
          m.port_where = d.at(*p);
        }
        mf.not_implemented("destinationSubnets");
        mf.not_implemented("sourceLabels", "sluice does not know the client workload");
        mf.not_implemented("sourceNamespace", "sluice does not know the client workload");
        mf.not_implemented("sourceSubnet");
        mf.not_implemented("gateways", "sluice has no gateways");
        mf.finish();
        spec.matches.push_back(m);
      }
    }
  }
  if (const auto* v = f.get("route")) {
    decode_weighted_destinations(d, *v, f.name_of("route"), false, spec.destinations);
  } else {
    d.error(n, d.field(f.name_of("route")) + " is required");
  }
  f.finish();
  vs.tcp.push_back(std::move(spec));
}

void decode_virtual_service(Decoder& d, Fields& spec, ResourceMeta meta) {
  VirtualServiceSpec vs;
  vs.meta = std::move(meta);
  if (const auto* v = spec.get("hosts")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("hosts") + " must be a list of host names");
    } else {
      size_t i = 0;
      for (const auto& h : *v) {
        if (auto s = d.string(h, "hosts[" + std::to_string(i) + "]")) vs.hosts.push_back({*s, d.at(h)});
        ++i;
      }
    }
  }
  if (vs.hosts.empty()) d.error(spec.node(), d.field("hosts") + " must name at least one host");
  if (const auto* v = spec.get("http")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("http") + " must be a list of routes");
    } else {
      size_t i = 0;
      for (const auto& item : *v) decode_http_route(d, item, indexed("", "http", i++), vs);
    }
  }
  if (const auto* v = spec.get("tcp")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("tcp") + " must be a list of routes");
    } else {
      size_t i = 0;
      for (const auto& item : *v) decode_tcp_route(d, item, indexed("", "tcp", i++), vs);
    }
  }
  spec.not_implemented("tls", "TLS SNI routing");
  spec.not_implemented("gateways", "sluice has no gateways; routes apply to mesh traffic");
  spec.not_implemented("exportTo");
  spec.finish();
  d.out().virtual_services.push_back(std::move(vs));
}

// ---------------------------------------------------------------------------
// DestinationRule

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
          if (const auto* c = cf.get("name")) {
            if (auto s = d.string(*c, cf.name_of("name"))) lb.hash.name = *s;
          } else {
            d.error(*x, d.field(cf.name_of("name")) + " is required");
          }
          if (const auto* c = cf.get("path")) {
            if (auto s = d.string(*c, cf.name_of("path"))) lb.hash.cookie_path = *s;
          }
          if (const auto* c = cf.get("ttl")) {
            if (auto t = d.duration(*c, cf.name_of("ttl"))) lb.hash.cookie_ttl = *t;
          }
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
          if (const auto* m = rf.get("minimumRingSize")) {
            if (auto s = d.u32(*m, rf.name_of("minimumRingSize"), 1, 8 * 1024 * 1024)) lb.ring_minimum_size = *s;
          }
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
      if (const auto* x = hf.get("minimumRingSize")) {   // deprecated spelling
        if (auto s = d.u32(*x, hf.name_of("minimumRingSize"), 1, 8 * 1024 * 1024)) lb.ring_minimum_size = *s;
      }
      hf.finish();
    }
  }
  f.not_implemented("localityLbSetting");
  f.not_implemented("warmupDurationSecs");
  f.not_implemented("warmup");
  f.finish();
  return lb;
}

std::optional<model::ConnectionPool> decode_connection_pool(Decoder& d, const YAML::Node& n,
                                                            const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::ConnectionPool cp;
  if (const auto* v = f.get("tcp")) {
    Fields tf(d, *v, f.name_of("tcp"));
    if (tf.ok()) {
      if (const auto* x = tf.get("maxConnections")) {
        if (auto c = d.u32(*x, tf.name_of("maxConnections"), 1)) cp.max_connections = *c;
      }
      if (const auto* x = tf.get("connectTimeout")) {
        if (auto t = d.duration(*x, tf.name_of("connectTimeout"))) cp.connect_timeout = *t;
      }
      tf.not_implemented("tcpKeepalive");
      tf.not_implemented("maxConnectionDuration");
      tf.not_implemented("idleTimeout", "the http idleTimeout is honoured");
      tf.finish();
    }
  }
  if (const auto* v = f.get("http")) {
    Fields hf(d, *v, f.name_of("http"));
    if (hf.ok()) {
      if (const auto* x = hf.get("http1MaxPendingRequests")) {
        if (auto c = d.u32(*x, hf.name_of("http1MaxPendingRequests"), 1)) cp.http1_max_pending_requests = *c;
      }
      if (const auto* x = hf.get("http2MaxRequests")) {
        if (auto c = d.u32(*x, hf.name_of("http2MaxRequests"), 1)) cp.http2_max_requests = *c;
      }
      if (const auto* x = hf.get("maxRequestsPerConnection")) {
        if (auto c = d.u32(*x, hf.name_of("maxRequestsPerConnection"))) cp.max_requests_per_connection = *c;
      }
      if (const auto* x = hf.get("maxRetries")) {
        if (auto c = d.u32(*x, hf.name_of("maxRetries"))) cp.max_retries = *c;
      }
      if (const auto* x = hf.get("idleTimeout")) {
        if (auto t = d.duration(*x, hf.name_of("idleTimeout"))) cp.idle_timeout = *t;
      }
      hf.not_implemented("h2UpgradePolicy", "sluice proxies HTTP/1.1");
      hf.not_implemented("useClientProtocol");
      hf.not_implemented("maxConcurrentStreams");
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
  if (const auto* v = f.get("consecutive5xxErrors")) {
    if (auto c = d.u32(*v, f.name_of("consecutive5xxErrors"))) od.consecutive_5xx_errors = *c;
  }
  if (const auto* v = f.get("consecutiveErrors")) {   // deprecated spelling of the 5xx detector
    if (auto c = d.u32(*v, f.name_of("consecutiveErrors"))) od.consecutive_5xx_errors = *c;
  }
  if (const auto* v = f.get("consecutiveGatewayErrors")) {
    if (auto c = d.u32(*v, f.name_of("consecutiveGatewayErrors"))) od.consecutive_gateway_errors = *c;
  }
  if (const auto* v = f.get("interval")) {
    if (auto t = d.duration(*v, f.name_of("interval"))) od.interval = *t;
  }
  if (const auto* v = f.get("baseEjectionTime")) {
    if (auto t = d.duration(*v, f.name_of("baseEjectionTime"))) od.base_ejection_time = *t;
  }
  if (const auto* v = f.get("maxEjectionPercent")) {
    if (auto c = d.u32(*v, f.name_of("maxEjectionPercent"), 0, 100)) od.max_ejection_percent = *c;
  }
  if (const auto* v = f.get("minHealthPercent")) {
    if (auto c = d.integer(*v, f.name_of("minHealthPercent"), 0, 100)) od.min_health_percent = static_cast<int32_t>(*c);
  }
  f.not_implemented("splitExternalLocalOriginErrors");
  f.not_implemented("consecutiveLocalOriginFailures");
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
            if (const auto* num = nf.get("number")) {
              if (auto x = d.port_number(*num, nf.name_of("number"))) pp.port = *x;
            }
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
  f.not_implemented("proxyProtocol");
  f.finish();
  return tp;
}

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
        if (const auto* x = sf.get("labels")) {
          if (auto l = d.labels(*x, sf.name_of("labels"))) s.labels = std::move(*l);
        }
        if (const auto* x = sf.get("trafficPolicy")) s.policy = decode_traffic_policy(d, *x, sf.name_of("trafficPolicy"));
        sf.finish();
        if (!s.name.empty()) dr.subsets.push_back(std::move(s));
      }
    }
  }
  spec.not_implemented("exportTo");
  spec.not_implemented("workloadSelector", "the rule applies to every client");
  spec.finish();
  d.out().destination_rules.push_back(std::move(dr));
}

// ---------------------------------------------------------------------------
// ServiceEntry and WorkloadEntry

// The WorkloadEntry shape, shared by WorkloadEntry.spec and ServiceEntry.endpoints[].
std::optional<model::Endpoint> decode_workload(Decoder& d, const YAML::Node& n,
                                               const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::Endpoint e;
  e.where = d.at(n);
  bool ok = true;
  if (const auto* v = f.get("address")) {
    if (auto s = d.string(*v, f.name_of("address"))) {
      if (auto ip = model::IpAddress::parse(*s)) {
        e.address = *ip;
      } else {
        d.error(*v, d.field(f.name_of("address")) + ": '" + *s +
                        "' is not an IPv4 or IPv6 address (sluice does not resolve DNS names "
                        "or Unix sockets)");
        ok = false;
      }
    } else {
      ok = false;
    }
  } else {
    d.error(n, d.field(f.name_of("address")) + " is required");
    ok = false;
  }
  if (const auto* v = f.get("labels")) {
    if (auto l = d.labels(*v, f.name_of("labels"))) e.labels = std::move(*l);
  }
  if (const auto* v = f.get("ports")) {
    if (!v->IsMap()) {
      d.error(*v, d.field(f.name_of("ports")) + " must map port names to numbers");
    } else {
      for (const auto& kv : *v) {
        if (!kv.first.IsScalar()) continue;
        if (auto p = d.port_number(kv.second, f.name_of("ports") + "." + kv.first.Scalar())) {
          e.ports[kv.first.Scalar()] = *p;
        }
      }
    }
  }
  if (const auto* v = f.get("weight")) {
    // 0 is protobuf's "unset": the default weight 1.
    if (auto w = d.u32(*v, f.name_of("weight"))) e.weight = *w == 0 ? 1 : *w;
  }
  if (const auto* v = f.get("locality")) {
    if (auto s = d.string(*v, f.name_of("locality"))) e.locality = *s;
  }
  f.not_implemented("network");
  f.not_implemented("serviceAccount");
  f.finish();
  if (!ok) return std::nullopt;
  return e;
}

std::optional<model::Protocol> protocol_from_name(std::string_view text) {
  const std::string p = uppercase(std::string(text));
  using P = model::Protocol;
  if (p == "HTTP") return P::HTTP;
  if (p == "HTTPS") return P::HTTPS;
  if (p == "HTTP2") return P::HTTP2;
  if (p == "GRPC" || p == "GRPC-WEB") return P::GRPC;
  if (p == "TCP") return P::TCP;
  if (p == "TLS") return P::TLS;
  if (p == "UDP") return P::UDP;
  if (p == "MONGO") return P::Mongo;
  if (p == "REDIS") return P::Redis;
  if (p == "MYSQL") return P::MySQL;
  return std::nullopt;
}

void decode_service_entry(Decoder& d, Fields& spec, ResourceMeta meta) {
  ServiceEntrySpec se;
  se.meta = std::move(meta);
  if (const auto* v = spec.get("hosts")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("hosts") + " must be a list of host names");
    } else {
      size_t i = 0;
      for (const auto& h : *v) {
        if (auto s = d.string(h, "hosts[" + std::to_string(i) + "]")) {
          if (s->find('*') != std::string::npos) {
            d.error(h, d.field("hosts[" + std::to_string(i) + "]") + ": wildcard host '" + *s +
                           "' is not supported (sluice needs a concrete host and VIP)");
          } else {
            se.hosts.push_back({*s, d.at(h)});
          }
        }
        ++i;
      }
    }
  }
  if (se.hosts.empty()) d.error(spec.node(), d.field("hosts") + " must name at least one host");
  if (const auto* v = spec.get("addresses")) {
    if (auto list = d.string_list(*v, "addresses")) {
      size_t i = 0;
      for (const auto& a : *list) {
        if (auto ip = model::IpAddress::parse(a)) {
          se.vips.push_back(*ip);
        } else {
          d.error((*v)[i], d.field("addresses[" + std::to_string(i) + "]") + ": '" + a +
                               "' is not an IP address (CIDR ranges are not supported as VIPs)");
        }
        ++i;
      }
    }
  }
  if (const auto* v = spec.get("ports")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("ports") + " must be a list");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        Fields pf(d, item, indexed("", "ports", i++));
        if (!pf.ok()) continue;
        model::ServicePort port;
        if (const auto* x = pf.get("number")) {
          if (auto n = d.port_number(*x, pf.name_of("number"))) port.number = *n;
        } else {
          d.error(item, d.field(pf.name_of("number")) + " is required");
        }
        if (const auto* x = pf.get("name")) {
          if (auto s = d.string(*x, pf.name_of("name"))) port.name = *s;
        }
        if (const auto* x = pf.get("protocol")) {
          if (auto s = d.string(*x, pf.name_of("protocol"))) {
            if (auto p = protocol_from_name(*s)) {
              port.protocol = *p;
            } else {
              d.error(*x, d.field(pf.name_of("protocol")) + ": unknown protocol '" + *s +
                              "' (expected HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, UDP, MONGO, "
                              "REDIS or MYSQL)");
            }
          }
        } else {
          // Istio's convention: the name's prefix before '-' says the protocol.
          const std::string prefix = port.name.substr(0, port.name.find('-'));
          if (auto p = protocol_from_name(prefix)) port.protocol = *p;
        }
        if (const auto* x = pf.get("targetPort")) {
          if (auto n = d.port_number(*x, pf.name_of("targetPort"))) port.target_port = *n;
        }
        pf.finish();
        if (port.number == 0) continue;
        bool duplicate = false;
        for (const auto& other : se.ports) duplicate = duplicate || other.number == port.number;
        if (duplicate) {
          d.error(item, d.field(pf.name_of("number")) + ": port " + std::to_string(port.number) +
                            " is listed twice");
          continue;
        }
        se.ports.push_back(port);
        se.port_where.push_back(d.at(item));
      }
    }
  }
  if (se.ports.empty()) d.error(spec.node(), d.field("ports") + " must list at least one port");
  if (const auto* v = spec.get("resolution")) {
    if (auto s = d.string(*v, "resolution")) {
      const std::string r = uppercase(*s);
      if (r == "NONE" || r == "DNS" || r == "DNS_ROUND_ROBIN") {
        d.warning(*v, d.field("resolution") + " " + r +
                          " is not implemented by sluice; endpoints are used as STATIC addresses");
      } else if (r != "STATIC") {
        d.error(*v, d.field("resolution") + ": unknown resolution '" + *s +
                        "' (expected STATIC, NONE, DNS or DNS_ROUND_ROBIN)");
      }
    }
  }
  if (const auto* v = spec.get("endpoints")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("endpoints") + " must be a list");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        const std::string path = indexed("", "endpoints", i);
        if (auto e = decode_workload(d, item, path)) {
          e->name = se.meta.name + "/endpoints[" + std::to_string(i) + "]";
          se.endpoints.push_back(std::move(*e));
        }
        ++i;
      }
    }
  }
  if (const auto* v = spec.get("workloadSelector")) {
    Fields wf(d, *v, "workloadSelector");
    if (wf.ok()) {
      se.selector_where = d.at(*v);
      if (const auto* l = wf.get("labels")) {
        se.workload_selector = d.labels(*l, wf.name_of("labels"));
      } else {
        se.workload_selector = model::Labels{};
      }
      wf.finish();
    }
    if (!se.endpoints.empty()) {
      d.error(*v, d.field("workloadSelector") + " and 'endpoints' are exclusive; use one");
    }
  }
  spec.not_implemented("location", "every service is steered the same way");
  spec.not_implemented("exportTo");
  spec.not_implemented("subjectAltNames");
  spec.finish();
  d.out().service_entries.push_back(std::move(se));
}

void decode_workload_entry(Decoder& d, const YAML::Node& spec, ResourceMeta meta) {
  auto e = decode_workload(d, spec, "");
  if (!e) return;
  e->name = meta.name;
  WorkloadEntrySpec we{std::move(meta), std::move(*e)};
  d.out().workload_entries.push_back(std::move(we));
}

// ---------------------------------------------------------------------------
// Documents

constexpr std::string_view kGroup = "networking.istio.io/";

void decode_document(Decoder& d, const YAML::Node& doc) {
  if (doc.IsNull()) return;   // an empty document, e.g. after a trailing '---'
  d.kind = "document";
  Fields top(d, doc, "");
  if (!top.ok()) return;
  const YAML::Node* api = top.get("apiVersion");
  const YAML::Node* kind = top.get("kind");
  const YAML::Node* metadata = top.get("metadata");
  const YAML::Node* spec = top.get("spec");
  top.accept("status");
  if (!api || !kind) {
    d.error(doc, std::string("document has no ") + (!api ? "apiVersion" : "kind") +
                     " (every document needs apiVersion and kind)");
    return;
  }
  auto api_s = d.string(*api, "apiVersion");
  auto kind_s = d.string(*kind, "kind");
  if (!api_s || !kind_s) return;
  static constexpr std::string_view kKinds[] = {"ServiceEntry", "WorkloadEntry", "VirtualService",
                                                "DestinationRule"};
  const bool known_kind = std::find(std::begin(kKinds), std::end(kKinds), *kind_s) != std::end(kKinds);
  const bool istio_group = api_s->rfind(kGroup, 0) == 0;
  const std::string version = istio_group ? api_s->substr(kGroup.size()) : "";
  if (!known_kind || !istio_group) {
    d.warning(*kind, "skipping " + *kind_s + " (" + *api_s +
                         "): sluice reads only ServiceEntry, WorkloadEntry, VirtualService and "
                         "DestinationRule of networking.istio.io");
    return;
  }
  if (version != "v1alpha3" && version != "v1beta1" && version != "v1") {
    d.warning(*api, "skipping " + *kind_s + ": apiVersion '" + *api_s +
                        "' is not one of networking.istio.io/v1alpha3, v1beta1, v1");
    return;
  }
  d.kind = *kind_s;
  ResourceMeta meta;
  meta.kind = *kind_s;
  meta.api_version = *api_s;
  meta.where = d.at(*kind);
  if (metadata) {
    if (!metadata->IsMap()) {
      d.error(*metadata, "metadata must be a mapping");
    } else {
      // Other metadata (labels, annotations, uid, ...) is Kubernetes' business.
      if (const auto n = (*metadata)["name"]; n && n.IsScalar()) meta.name = n.Scalar();
      if (const auto n = (*metadata)["namespace"]; n && n.IsScalar() && !n.Scalar().empty()) {
        meta.namespace_ = n.Scalar();
      }
    }
  }
  if (meta.name.empty()) {
    d.error(metadata ? *metadata : doc, *kind_s + " has no metadata.name");
  }
  if (!spec) {
    d.error(doc, *kind_s + " '" + meta.name + "' has no spec");
    return;
  }
  top.finish();
  if (*kind_s == "WorkloadEntry") {
    decode_workload_entry(d, *spec, std::move(meta));
    return;
  }
  Fields spec_fields(d, *spec, "");
  if (!spec_fields.ok()) return;
  if (*kind_s == "VirtualService") decode_virtual_service(d, spec_fields, std::move(meta));
  else if (*kind_s == "DestinationRule") decode_destination_rule(d, spec_fields, std::move(meta));
  else decode_service_entry(d, spec_fields, std::move(meta));
}

// One YAML document of a stream: its text and the 0-based line it starts on.
struct DocumentText {
  std::string_view text;
  int first_line = 0;
};

// Splits a stream at its document markers: a line starting with "---" opens
// a document, a line starting with "..." closes one. Both are only markers
// at column 0, and YAML forbids them there inside scalars, so this split is
// exact. Parsing documents one by one, rather than with YAML::LoadAll, keeps
// a syntax error in one document from hiding the others, and avoids
// yaml-cpp 0.7's endless loop when a document holds a stray ',' (LoadAll
// keeps calling the parser, which never consumes the token; fixed upstream
// after 0.7 by jbeder/yaml-cpp#1319).
std::vector<DocumentText> split_documents(std::string_view stream) {
  const auto is_marker = [](std::string_view line, std::string_view marker) {
    return line.substr(0, 3) == marker &&
           (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
  };
  std::vector<DocumentText> docs;
  size_t doc_start = 0;
  int doc_line = 0;
  int line_no = 0;
  for (size_t pos = 0; pos < stream.size(); ++line_no) {
    size_t end = stream.find('\n', pos);
    const size_t next = end == std::string_view::npos ? stream.size() : end + 1;
    const std::string_view line = stream.substr(pos, (end == std::string_view::npos ? stream.size() : end) - pos);
    if (is_marker(line, "---") && pos > doc_start) {
      docs.push_back({stream.substr(doc_start, pos - doc_start), doc_line});
      doc_start = pos;
      doc_line = line_no;
    } else if (is_marker(line, "...")) {
      docs.push_back({stream.substr(doc_start, next - doc_start), doc_line});
      doc_start = next;
      doc_line = line_no + 1;
    }
    pos = next;
  }
  if (doc_start < stream.size()) docs.push_back({stream.substr(doc_start), doc_line});
  return docs;
}

// Records where the first event of a document is, and nothing else.
class FirstEventMark : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> mark;
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { note(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { note(m); }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { note(m); }
  void OnMapEnd() override {}

 private:
  void note(const YAML::Mark& m) {
    if (!mark) mark = m;
  }
};

// YAML::Load parses one document and silently ignores tokens after it. A
// block mapping at column 0 (every real Istio document) cannot be followed
// by anything but an error, so only other roots need this second look.
std::optional<YAML::Mark> trailing_content(const YAML::Node& root, std::string_view text) {
  if (root.IsMap() && root.Style() == YAML::EmitterStyle::Block && root.Mark().column == 0) return std::nullopt;
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  FirstEventMark first, second;
  if (!parser.HandleNextDocument(first)) return std::nullopt;
  if (!parser.HandleNextDocument(second) || !second.mark) return std::nullopt;
  // yaml-cpp also reports an empty document at the end of some streams
  // ("---\n"): only text that is more than blanks and comments is content.
  std::string_view rest = text.substr(std::min<size_t>(static_cast<size_t>(std::max(second.mark->pos, 0)), text.size()));
  while (!rest.empty()) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    const size_t text_at = line.find_first_not_of(" \t\r");
    if (text_at != std::string_view::npos && line[text_at] != '#') return second.mark;
    if (eol == std::string_view::npos) break;
    rest.remove_prefix(eol + 1);
  }
  return std::nullopt;
}

}  // namespace

namespace {

using RegexCache = std::unordered_map<std::string, std::shared_ptr<const re2::RE2>>;

// One document of one file, decoded into its own ParsedConfig (resources and
// diagnostics), so that documents can be decoded side by side.
void parse_document(ParsedConfig& out, const std::string& path, const DocumentText& doc, RegexCache& regex_cache,
                    const InputLimits& limits) {
  Decoder d(out, path, regex_cache);
  d.line_offset = doc.first_line;
  if (auto refused = check_alias_expansion(doc.text, path, doc.first_line, limits)) {
    d.report(refused->severity, refused->where, refused->message);
    return;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(doc.text));
    if (auto junk = trailing_content(root, doc.text)) {
      d.error(d.at(*junk), "YAML syntax error: unexpected content after the document's "
                           "top-level node (a stray ',' ?)");
      return;
    }
  } catch (const YAML::Exception& e) {
    d.report(Severity::Error, d.at(e.mark), "YAML syntax error: " + e.msg);
    return;
  }
  try {
    decode_document(d, root);
  } catch (const std::exception& e) {
    // yaml-cpp throws on some malformed nodes; keep it a diagnostic.
    d.error(root, std::string("cannot decode document: ") + e.what());
  }
}

template <typename T>
void append_moved(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

// Diagnostics keep the sequential parse's cap: the first kMaxDiagnostics,
// then one "too many" error where the next one was.
void append_diagnostics(std::vector<Diagnostic>& to, std::vector<Diagnostic>& from) {
  for (Diagnostic& diagnostic : from) {
    if (to.size() > kMaxDiagnostics) return;
    if (to.size() == kMaxDiagnostics) {
      to.push_back({Severity::Error, diagnostic.where, "too many diagnostics; stopping here"});
      return;
    }
    to.push_back(std::move(diagnostic));
  }
}

}  // namespace

ParsedConfig parse_sources(const std::vector<SourceText>& sources, const ParseOptions& options) {
  struct Task {
    size_t source;
    DocumentText doc;
  };
  std::vector<Task> tasks;
  for (size_t i = 0; i < sources.size(); ++i) {
    for (const auto& doc : split_documents(sources[i].text)) tasks.push_back({i, doc});
  }
  std::vector<ParsedConfig> parts(tasks.size());

  // Workers take batches of documents in turn; each has its own regex cache
  // (a regex repeated across batches is compiled once per worker).
  constexpr size_t kBatch = 32;
  unsigned threads = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, (tasks.size() + kBatch - 1) / kBatch));
  std::atomic<size_t> next{0};
  auto work = [&] {
    RegexCache regex_cache;
    for (size_t first; (first = next.fetch_add(kBatch)) < tasks.size();) {
      for (size_t t = first; t < std::min(first + kBatch, tasks.size()); ++t)
        parse_document(parts[t], sources[tasks[t].source].path, tasks[t].doc, regex_cache, options.limits);
    }
  };
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::jthread> pool;
    for (unsigned i = 0; i < threads; ++i) pool.emplace_back(work);
  }

  ParsedConfig out;
  size_t t = 0;
  for (size_t i = 0; i < sources.size(); ++i) {
    out.files.push_back(sources[i].path);
    for (; t < tasks.size() && tasks[t].source == i; ++t) {
      ParsedConfig& p = parts[t];
      append_moved(out.service_entries, p.service_entries);
      append_moved(out.workload_entries, p.workload_entries);
      append_moved(out.virtual_services, p.virtual_services);
      append_moved(out.destination_rules, p.destination_rules);
      append_diagnostics(out.diagnostics, p.diagnostics);
    }
  }
  return out;
}

std::vector<SourceText> read_config_sources(const std::vector<std::string>& paths,
                                            std::vector<Diagnostic>& diagnostics, const InputLimits& limits) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    const auto status = fs::status(p, ec);
    if (ec || !fs::exists(status)) {
      diagnostics.push_back({Severity::Error, {p, 0, 0}, "no such file or directory"});
      continue;
    }
    if (!fs::is_directory(status)) {
      files.push_back(p);
      continue;
    }
    std::vector<std::string> found = list_yaml_files(p, limits, diagnostics);
    if (found.empty()) {
      diagnostics.push_back({Severity::Warning, {p, 0, 0}, "directory has no *.yaml or *.yml files"});
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  std::vector<SourceText> out;
  uint64_t total_bytes = 0;
  for (const auto& f : files) {
    if (auto text = read_config_file(f, limits, total_bytes, diagnostics)) out.push_back({f, std::move(*text)});
  }
  return out;
}

ParsedConfig load_paths(const std::vector<std::string>& paths) {
  std::vector<Diagnostic> read_errors;
  auto sources = read_config_sources(paths, read_errors);
  ParsedConfig parsed = parse_sources(sources);
  parsed.diagnostics.insert(parsed.diagnostics.begin(), read_errors.begin(), read_errors.end());
  return parsed;
}

namespace {

template <typename T>
void append_copies(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

ParsedConfig IncrementalLoader::load(const std::vector<std::string>& paths) {
  ParsedConfig out;
  auto sources = read_config_sources(paths, out.diagnostics, options_.limits);
  counts_ = Counts{sources.size(), 0};
  std::unordered_map<std::string, CachedFile> kept;
  for (auto& src : sources) {
    const std::string path = src.path;
    const uint64_t hash = std::hash<std::string_view>{}(src.text);
    auto it = files_.find(path);
    CachedFile file;
    if (it != files_.end() && it->second.size == src.text.size() && it->second.hash == hash) {
      file = std::move(it->second);
    } else {
      file.size = src.text.size();
      file.hash = hash;
      file.parsed = parse_sources({std::move(src)}, options_);
      ++counts_.parsed;
    }
    const ParsedConfig& p = file.parsed;
    append_copies(out.files, p.files);
    append_copies(out.service_entries, p.service_entries);
    append_copies(out.workload_entries, p.workload_entries);
    append_copies(out.virtual_services, p.virtual_services);
    append_copies(out.destination_rules, p.destination_rules);
    append_copies(out.diagnostics, p.diagnostics);
    kept.emplace(path, std::move(file));
  }
  files_ = std::move(kept);   // files that disappeared are forgotten
  return out;
}

}  // namespace sluice::config
