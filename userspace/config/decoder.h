// The field-decoding layer every kind's decoder is written in: a Decoder per
// document (where diagnostics go, file:line:col of any node, typed scalar
// readers) and Fields, the keys of one YAML mapping checked against what the
// schema knows, with binders that read a field straight into its target:
//
//   Fields f(d, node, "http[0].retries");
//   f.read("attempts", rt.attempts, 0, 100);
//   f.read("perTryTimeout", rt.per_try_timeout);
//   f.not_implemented("retryRemoteLocalities");
//   f.finish();   // every key nobody asked for: "unknown ... (did you mean ...?)"
//
// A binder leaves its target alone when the key is absent or its value is
// wrong (the error is reported), and says whether it assigned.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/resources.h"

namespace re2 {
class RE2;
}

namespace sluice::config {

using RegexCache = std::unordered_map<std::string, std::shared_ptr<const re2::RE2>>;

// A runaway input (or a fuzzer) could produce millions of diagnostics; past
// this many errors the rest would only bury the first ones.
constexpr size_t kMaxDiagnostics = 1000;

std::string lowercase(std::string s);
std::string uppercase(std::string s);
// "path.key[i]" (or "key[i]" at the top).
std::string indexed(const std::string& path, std::string_view key, size_t i);

// Decoding context for one document: where diagnostics go and how they are
// worded ("VirtualService field 'http[0].timeout' ...").
class Decoder {
 public:
  Decoder(ParsedConfig& out, const std::string& file, RegexCache& regex_cache)
      : out_(out), file_(file), regex_cache_(regex_cache) {}

  std::string kind = "document";
  // Documents are parsed one at a time (see split_documents); marks are
  // relative to the document's first line.
  int line_offset = 0;

  SourceLocation at(const YAML::Mark& m) const;
  SourceLocation at(const YAML::Node& node) const;

  void report(model::Severity severity, SourceLocation where, std::string message);
  void error(const YAML::Node& n, std::string message) {
    report(model::Severity::Error, at(n), std::move(message));
  }
  void error(SourceLocation where, std::string message) {
    report(model::Severity::Error, std::move(where), std::move(message));
  }
  void warning(const YAML::Node& n, std::string message) {
    report(model::Severity::Warning, at(n), std::move(message));
  }
  void note(const YAML::Node& n, std::string message) {
    report(model::Severity::Info, at(n), std::move(message));
  }

  std::string field(const std::string& path) const { return kind + " field '" + path + "'"; }

  // --- scalars (each reports a wrong value and returns nullopt) -------------
  std::optional<std::string> string(const YAML::Node& n, const std::string& path);
  std::optional<int64_t> integer(const YAML::Node& n, const std::string& path, int64_t lo, int64_t hi);
  std::optional<uint32_t> u32(const YAML::Node& n, const std::string& path, uint32_t lo = 0,
                              uint32_t hi = std::numeric_limits<uint32_t>::max());
  std::optional<uint32_t> port_number(const YAML::Node& n, const std::string& path) {
    return u32(n, path, 1, 65535);
  }
  std::optional<double> number(const YAML::Node& n, const std::string& path);
  std::optional<bool> boolean(const YAML::Node& n, const std::string& path);
  // A duration over kMaxDuration is a warning and taken as kMaxDuration.
  static constexpr model::Duration kMaxDuration = std::chrono::hours(24 * 365 * 100);
  std::optional<model::Duration> duration(const YAML::Node& n, const std::string& path);
  std::optional<double> percent_value(const YAML::Node& n, const std::string& path);
  std::optional<std::vector<std::string>> string_list(const YAML::Node& n, const std::string& path);
  std::optional<model::Labels> labels(const YAML::Node& n, const std::string& path);
  // RE2 syntax, compiled once per (pattern, case) for the whole load.
  std::shared_ptr<const re2::RE2> regex(const YAML::Node& n, const std::string& pattern, bool ignore_case,
                                        const std::string& path);

  ParsedConfig& out() { return out_; }

 private:
  ParsedConfig& out_;
  const std::string& file_;
  RegexCache& regex_cache_;
};

// The keys of one YAML mapping, checked against what the schema knows. Fields
// are looked up by name (order in the file does not matter); `finish()`
// reports every key that no `get()`, binder, `not_implemented()` or
// `accept()` asked about as an unknown field, with a suggestion when it is
// close to a known one.
class Fields {
 public:
  Fields(Decoder& d, const YAML::Node& node, std::string path);
  Fields(const Fields&) = delete;
  Fields& operator=(const Fields&) = delete;

  bool ok() const { return ok_; }
  const YAML::Node& node() const { return node_; }
  Decoder& decoder() { return d_; }
  const std::string& path() const { return path_; }
  std::string name_of(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  // A field sluice reads. nullptr when absent or null.
  const YAML::Node* get(std::string_view key);

  // Binders: read `key` into `out` when present and valid. True when assigned.
  bool read(std::string_view key, std::string& out);
  bool read(std::string_view key, bool& out);
  bool read(std::string_view key, double& out);
  bool read(std::string_view key, model::Duration& out);
  bool read(std::string_view key, model::Labels& out);
  bool read(std::string_view key, std::vector<std::string>& out);
  bool read(std::string_view key, uint32_t& out, uint32_t lo = 0,
            uint32_t hi = std::numeric_limits<uint32_t>::max());
  bool read(std::string_view key, uint64_t& out, uint64_t lo, uint64_t hi);
  bool read(std::string_view key, int32_t& out, int32_t lo, int32_t hi);
  // 1..65535.
  bool read_port(std::string_view key, uint32_t& out) { return read(key, out, 1, 65535); }
  template <typename T, typename... Range>
  bool read(std::string_view key, std::optional<T>& out, Range... range) {
    T value{};
    if (!read(key, value, range...)) return false;
    out = std::move(value);
    return true;
  }

  // Where a present key is written (for diagnostics about its value's meaning).
  SourceLocation key_at(std::string_view key) const;

  // A field of the Istio API that sluice does not act on: a warning naming it.
  void not_implemented(std::string_view key, std::string_view detail = {});

  // A field accepted without effect (documented in docs/config-reference.md).
  void accept(std::string_view key);

  void finish();

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

}  // namespace sluice::config
