// Request path normalisation, as Istio's MeshConfig pathNormalization
// configures Envoy's: the proxy routes on the normalised path and forwards
// it, so a route for /admin sees /x/../admin, /%61dmin (and, with merged
// slashes, //admin) as the /admin they reach at a backend. The query is
// never touched. docs/l7-proxy.md ("Path normalisation") lists each step.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "http/message_head.h"

namespace sluice::http {

enum class PathNormalisation : uint8_t {
  None,                    // forwarded as received
  Base,                    // RFC 3986 6.2.2 + 5.2.4, backslash to slash (Istio's default)
  MergeSlashes,            // Base, with runs of '/' merged (before dot segments)
  DecodeAndMergeSlashes,   // %2F and %5C decoded first, then MergeSlashes
};

// Istio's names: NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES.
std::optional<PathNormalisation> path_normalisation_from_name(std::string_view name);
std::string_view path_normalisation_name(PathNormalisation mode);

struct NormalisedPath {
  size_t size = 0;            // new length of the target (path and query)
  std::string_view error;     // non-empty: the target cannot be normalised (answer 400)
};

// Normalises the origin-form target in `target` (path, then an optional
// '?query') in place: every step only shortens it, so the result is the
// first `size` bytes. A target that does not start with '/' (asterisk-form)
// is left as is. Refused: '%' not followed by two hex digits, and %00.
NormalisedPath normalise_target(std::span<char> target, PathNormalisation mode);

// The same on a string (tests, tools).
std::optional<std::string> normalised(std::string_view target, PathNormalisation mode);

// Normalises head.target inside `buffer`, the writable bytes the head was
// parsed from, and points head.target at the result. False (head.error set
// to a 400) when the path cannot be normalised.
bool normalise_request_target(RequestHead& head, std::span<char> buffer, PathNormalisation mode);

}  // namespace sluice::http
