#include "http/path_normalisation.h"

#include <cstring>

namespace sluice::http {
namespace {

bool is_unreserved(unsigned char c) {   // RFC 3986 2.3
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// Percent-encoding (RFC 3986 6.2.2.1-2): unreserved characters decoded,
// other escapes upper-cased, decoded only once (%252e stays %252E). With
// `decode_slashes`, %2F and %5C become separators too. Backslashes are
// slashes (Envoy's normalize_path, which Istio's BASE turns on).
std::string_view normalise_percent(char* p, size_t& n, bool decode_slashes) {
  size_t w = 0;
  for (size_t r = 0; r < n; ++r) {
    char c = p[r];
    if (c == '%') {
      int hi = r + 2 < n ? hex_digit_value(p[r + 1]) : -1;
      int lo = r + 2 < n ? hex_digit_value(p[r + 2]) : -1;
      if (hi < 0 || lo < 0) return "invalid percent-encoding in path";
      auto v = static_cast<unsigned char>(hi * 16 + lo);
      if (v == 0) return "%00 in path";
      r += 2;
      if (is_unreserved(v)) {
        p[w++] = static_cast<char>(v);
      } else if (decode_slashes && (v == '/' || v == '\\')) {
        p[w++] = '/';
      } else {
        static constexpr char kHex[] = "0123456789ABCDEF";
        p[w++] = '%';
        p[w++] = kHex[v >> 4];
        p[w++] = kHex[v & 15];
      }
    } else {
      p[w++] = c == '\\' ? '/' : c;
    }
  }
  n = w;
  return {};
}

// RFC 3986 5.2.4 on an absolute path, in place: the output (a stack of
// segments) never outgrows what was read. ".." above the root stays at the
// root; a final "." or ".." leaves a trailing slash (/a/b/.. is /a/).
void remove_dot_segments(char* p, size_t& n) {
  size_t w = 0, r = 0;
  while (r < n) {   // p[r] == '/'
    size_t start = r + 1;
    const void* slash = std::memchr(p + start, '/', n - start);
    size_t end = slash == nullptr ? n : static_cast<size_t>(static_cast<const char*>(slash) - p);
    std::string_view segment(p + start, end - start);
    bool last = end == n;
    if (segment == "." || segment == "..") {
      if (segment == "..") {
        while (w > 0 && p[w - 1] != '/') --w;   // drop the last output segment...
        if (w > 0) --w;                         // ...and its slash
      }
      if (last) p[w++] = '/';
    } else {
      std::memmove(p + w, p + r, end - r);
      w += end - r;
    }
    r = end;
  }
  if (w == 0) p[w++] = '/';
  n = w;
}

void merge_slashes(char* p, size_t& n) {
  size_t w = 0;
  for (size_t r = 0; r < n; ++r) {
    if (p[r] == '/' && w > 0 && p[w - 1] == '/') continue;
    p[w++] = p[r];
  }
  n = w;
}

}  // namespace

std::optional<PathNormalisation> path_normalisation_from_name(std::string_view name) {
  if (name == "NONE") return PathNormalisation::None;
  if (name == "BASE") return PathNormalisation::Base;
  if (name == "MERGE_SLASHES") return PathNormalisation::MergeSlashes;
  if (name == "DECODE_AND_MERGE_SLASHES") return PathNormalisation::DecodeAndMergeSlashes;
  return std::nullopt;
}

std::string_view path_normalisation_name(PathNormalisation mode) {
  switch (mode) {
    case PathNormalisation::None: return "NONE";
    case PathNormalisation::Base: return "BASE";
    case PathNormalisation::MergeSlashes: return "MERGE_SLASHES";
    case PathNormalisation::DecodeAndMergeSlashes: return "DECODE_AND_MERGE_SLASHES";
  }
  return "NONE";
}

NormalisedPath normalise_target(std::span<char> target, PathNormalisation mode) {
  NormalisedPath result{target.size(), {}};
  if (mode == PathNormalisation::None || target.empty() || target[0] != '/') return result;
  char* p = target.data();
  const void* q = std::memchr(p, '?', target.size());
  size_t path = q == nullptr ? target.size() : static_cast<size_t>(static_cast<const char*>(q) - p);
  size_t query = target.size() - path;   // with its '?'
  size_t n = path;
  result.error = normalise_percent(p, n, mode == PathNormalisation::DecodeAndMergeSlashes);
  if (!result.error.empty()) return result;
  // Slashes are merged before dot segments are resolved, not after as in
  // Envoy: a backend that merges first (nginx) reads /x//..//admin as
  // /admin, which Envoy's order would route as /x/admin.
  if (mode != PathNormalisation::Base) merge_slashes(p, n);
  remove_dot_segments(p, n);
  std::memmove(p + n, p + path, query);
  result.size = n + query;
  return result;
}

std::optional<std::string> normalised(std::string_view target, PathNormalisation mode) {
  std::string s(target);
  NormalisedPath r = normalise_target(s, mode);
  if (!r.error.empty()) return std::nullopt;
  s.resize(r.size);
  return s;
}

bool normalise_request_target(RequestHead& head, std::span<char> buffer, PathNormalisation mode) {
  const char* begin = head.target.data();
  if (mode == PathNormalisation::None || head.target.empty() || begin < buffer.data() ||
      begin + head.target.size() > buffer.data() + buffer.size()) {
    return true;
  }
  char* p = buffer.data() + (begin - buffer.data());
  NormalisedPath r = normalise_target(std::span<char>(p, head.target.size()), mode);
  if (!r.error.empty()) {
    head.error = ParseError{400, r.error};
    return false;
  }
  head.target = std::string_view(p, r.size);
  return true;
}

}  // namespace sluice::http
