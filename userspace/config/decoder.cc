#include "config/decoder.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>

#include "config/duration.h"

namespace sluice::config {

using model::Severity;

namespace {

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

std::string got(const YAML::Node& n) {
  if (n.IsScalar()) return ", got '" + n.Scalar() + "'";
  if (n.IsSequence()) return ", got a list";
  if (n.IsMap()) return ", got a mapping";
  return "";
}

}  // namespace

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

// --- Decoder -------------------------------------------------------------------

SourceLocation Decoder::at(const YAML::Mark& m) const {
  if (m.line < 0) return {file_, 0, 0};
  return {file_, m.line + 1 + line_offset, m.column + 1};
}

SourceLocation Decoder::at(const YAML::Node& node) const {
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

void Decoder::report(Severity severity, SourceLocation where, std::string message) {
  if (out_.diagnostics.size() >= kMaxDiagnostics) {
    if (out_.diagnostics.size() == kMaxDiagnostics) {
      out_.diagnostics.push_back({Severity::Error, where, "too many diagnostics; stopping here"});
    }
    return;
  }
  out_.diagnostics.push_back({severity, std::move(where), std::move(message)});
}

std::optional<std::string> Decoder::string(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) {
    error(n, field(path) + " must be a string");
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<int64_t> Decoder::integer(const YAML::Node& n, const std::string& path, int64_t lo, int64_t hi) {
  long long v = 0;
  if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) {
    error(n, field(path) + " must be an integer" + got(n));
    return std::nullopt;
  }
  if (v < lo || v > hi) {
    error(n, field(path) + " is " + std::to_string(v) + ", expected " + std::to_string(lo) + ".." +
                 std::to_string(hi));
    return std::nullopt;
  }
  return static_cast<int64_t>(v);
}

std::optional<uint32_t> Decoder::u32(const YAML::Node& n, const std::string& path, uint32_t lo, uint32_t hi) {
  auto v = integer(n, path, lo, hi);
  if (!v) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

std::optional<double> Decoder::number(const YAML::Node& n, const std::string& path) {
  double v = 0;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) {
    error(n, field(path) + " must be a number" + got(n));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Decoder::boolean(const YAML::Node& n, const std::string& path) {
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
    error(n, field(path) + " must be true or false" + got(n));
    return std::nullopt;
  }
  return v;
}

std::optional<model::Duration> Decoder::duration(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) {
    error(n, field(path) + " must be a duration such as 7s, 100ms or 1.5s");
    return std::nullopt;
  }
  auto d = parse_duration(n.Scalar());
  if (!d) {
    error(n, field(path) + ": bad duration '" + n.Scalar() +
                 "' (expected e.g. 7s, 100ms, 1.5s, 1h30m; units h, m, s, ms, us, ns)");
  } else if (*d > kMaxDuration) {
    // Deadlines are nanoseconds in an int64_t: a clock reading plus a
    // duration (or a few of them) must not overflow. 100 years is never.
    warning(n, field(path) + " is " + n.Scalar() + ": longer than " + format_duration(kMaxDuration) +
                   " (100 years), taken as " + format_duration(kMaxDuration));
    d = kMaxDuration;
  }
  return d;
}

std::optional<double> Decoder::percent_value(const YAML::Node& n, const std::string& path) {
  auto v = number(n, path);
  if (v && (*v < 0 || *v > 100)) {
    error(n, field(path) + " is " + n.Scalar() + ", expected a percentage 0..100");
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<std::string>> Decoder::string_list(const YAML::Node& n, const std::string& path) {
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

std::optional<model::Labels> Decoder::labels(const YAML::Node& n, const std::string& path) {
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

std::shared_ptr<const re2::RE2> Decoder::regex(const YAML::Node& n, const std::string& pattern, bool ignore_case,
                                               const std::string& path) {
  std::string key = (ignore_case ? "i:" : "c:") + pattern;
  if (auto it = regex_cache_.find(key); it != regex_cache_.end()) return it->second;
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_case_sensitive(!ignore_case);
  auto re = std::make_shared<const re2::RE2>(pattern, options);
  if (!re->ok()) {
    error(n, field(path) + ": bad regex '" + pattern + "': " + re->error() + " (RE2 syntax)");
    return nullptr;
  }
  regex_cache_.emplace(std::move(key), re);
  return re;
}

// --- Fields --------------------------------------------------------------------

Fields::Fields(Decoder& d, const YAML::Node& node, std::string path) : d_(d), node_(node), path_(std::move(path)) {
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

const YAML::Node* Fields::get(std::string_view key) {
  known_.emplace_back(key);
  for (auto& e : entries_) {
    if (e.key == key) {
      e.used = true;
      return e.value.IsNull() ? nullptr : &e.value;
    }
  }
  return nullptr;
}

namespace {

template <typename T>
bool assign(std::optional<T> value, T& out) {
  if (!value) return false;
  out = std::move(*value);
  return true;
}

}  // namespace

bool Fields::read(std::string_view key, std::string& out) {
  const auto* v = get(key);
  return v && assign(d_.string(*v, name_of(key)), out);
}

bool Fields::read(std::string_view key, bool& out) {
  const auto* v = get(key);
  return v && assign(d_.boolean(*v, name_of(key)), out);
}

bool Fields::read(std::string_view key, double& out) {
  const auto* v = get(key);
  return v && assign(d_.number(*v, name_of(key)), out);
}

bool Fields::read(std::string_view key, model::Duration& out) {
  const auto* v = get(key);
  return v && assign(d_.duration(*v, name_of(key)), out);
}

bool Fields::read(std::string_view key, model::Labels& out) {
  const auto* v = get(key);
  return v && assign(d_.labels(*v, name_of(key)), out);
}

bool Fields::read(std::string_view key, std::vector<std::string>& out) {
  const auto* v = get(key);
  return v && assign(d_.string_list(*v, name_of(key)), out);
}

bool Fields::read(std::string_view key, uint32_t& out, uint32_t lo, uint32_t hi) {
  const auto* v = get(key);
  return v && assign(d_.u32(*v, name_of(key), lo, hi), out);
}

bool Fields::read(std::string_view key, uint64_t& out, uint64_t lo, uint64_t hi) {
  const auto* v = get(key);
  if (!v) return false;
  auto value = d_.integer(*v, name_of(key), static_cast<int64_t>(lo), static_cast<int64_t>(hi));
  if (!value) return false;
  out = static_cast<uint64_t>(*value);
  return true;
}

bool Fields::read(std::string_view key, int32_t& out, int32_t lo, int32_t hi) {
  const auto* v = get(key);
  if (!v) return false;
  auto value = d_.integer(*v, name_of(key), lo, hi);
  if (!value) return false;
  out = static_cast<int32_t>(*value);
  return true;
}

SourceLocation Fields::key_at(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.key == key) return d_.at(e.key_node);
  }
  return d_.at(node_);
}

void Fields::not_implemented(std::string_view key, std::string_view detail) {
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

void Fields::accept(std::string_view key) {
  known_.emplace_back(key);
  for (auto& e : entries_) {
    if (e.key == key) e.used = true;
  }
}

void Fields::finish() {
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

}  // namespace sluice::config
