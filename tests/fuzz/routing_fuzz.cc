// Fuzz target for per-request route matching and the decision built on it.
// The input is a small text program, so seeds are readable and mutations stay
// meaningful:
//
//   R                 start a route (its destinations: v1 70%, v2 30%)
//   M                 start a match block in the current route
//   u=KVALUE          uri match; K is e(xact), p(refix) or r(egex)
//   m=KVALUE a=KVALUE s=KVALUE   method / authority / scheme match
//   h=NAME:KVALUE     header match (h=NAME: alone = presence)
//   H=NAME:KVALUE     withoutHeaders entry
//   q=NAME:KVALUE     query parameter match
//   i                 ignoreUriCase on the current block
//   w=URI             rewrite.uri      x=REGEX|SUBST   uriRegexRewrite
//   d=URI             redirect.uri     f=NN            fault abort at NN%
//   ---               end of routes; the request follows:
//   METHOD PATH[?QUERY]
//   NAME: VALUE       headers (host: sets the authority)
//
// Whatever the bytes, the router must not crash, and its answer must agree
// with the matching functions: the chosen route accepts the request and no
// earlier route does; NotFound only when no route accepts it.
#include <re2/re2.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "routing/router.h"

namespace {

using sluice::model::StringMatch;

void require(bool ok) {
  if (!ok) std::abort();
}

std::optional<StringMatch> parse_match(std::string_view spec) {
  if (spec.empty()) return std::nullopt;
  StringMatch m;
  m.value = std::string(spec.substr(1));
  switch (spec[0]) {
    case 'e': m.kind = StringMatch::Kind::Exact; break;
    case 'p': m.kind = StringMatch::Kind::Prefix; break;
    case 'r': {
      m.kind = StringMatch::Kind::Regex;
      RE2::Options options;
      options.set_log_errors(false);
      options.set_max_mem(1 << 20);   // keep pathological patterns cheap
      auto re = std::make_shared<const RE2>(m.value, options);
      if (!re->ok()) return std::nullopt;   // the config compiler rejects these
      m.regex = re;
      break;
    }
    default: return std::nullopt;
  }
  return m;
}

sluice::model::KeyMatch parse_key(std::string_view spec) {
  const size_t colon = spec.find(':');
  sluice::model::KeyMatch k;
  k.name = std::string(spec.substr(0, colon));
  if (colon != std::string_view::npos) k.match = parse_match(spec.substr(colon + 1));
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  model::Snapshot snapshot;
  snapshot.services.resize(1);
  snapshot.services[0].subsets.resize(3);
  model::PortRoutes routes;
  routes.port = 9080;
  routes.plane = model::Plane::L7;

  std::vector<std::string> request_lines;
  bool in_request = false;
  size_t pos = 0;
  while (pos <= input.size()) {
    const size_t end = std::min(input.find('\n', pos), input.size());
    const std::string_view line = input.substr(pos, end - pos);
    pos = end + 1;
    if (in_request) {
      request_lines.emplace_back(line);
      continue;
    }
    if (line == "---") {
      in_request = true;
      continue;
    }
    if (line.empty()) continue;
    if (line == "R" || routes.http.empty()) {
      if (routes.http.size() >= 16) continue;
      model::HttpRoute r;
      r.route = {{{0, 1, 9080}, 70, 0.7, {}}, {{0, 2, 9080}, 30, 0.3, {}}};
      routes.http.push_back(std::move(r));
      if (line == "R") continue;
    }
    model::HttpRoute& route = routes.http.back();
    if (line == "M" || route.matches.empty()) {
      if (route.matches.size() >= 8) continue;
      route.matches.emplace_back();
      if (line == "M") continue;
    }
    model::HttpMatch& block = route.matches.back();
    if (line == "i") {
      block.ignore_uri_case = true;
      continue;
    }
    if (line.size() < 2 || line[1] != '=') continue;
    const std::string_view arg = line.substr(2);
    switch (line[0]) {
      case 'u': block.uri = parse_match(arg); break;
      case 'm': block.method = parse_match(arg); break;
      case 'a': block.authority = parse_match(arg); break;
      case 's': block.scheme = parse_match(arg); break;
      case 'h': block.headers.push_back(parse_key(arg)); break;
      case 'H': block.without_headers.push_back(parse_key(arg)); break;
      case 'q': block.query_params.push_back(parse_key(arg)); break;
      case 'w':
        if (!route.rewrite) route.rewrite.emplace();
        route.rewrite->uri = std::string(arg);
        break;
      case 'x': {
        const size_t bar = arg.find('|');
        if (bar == std::string_view::npos) break;
        if (auto m = parse_match("r" + std::string(arg.substr(0, bar))); m) {
          if (!route.rewrite) route.rewrite.emplace();
          route.rewrite->uri_regex = std::move(m);
          route.rewrite->uri_regex_rewrite = std::string(arg.substr(bar + 1));
        }
        break;
      }
      case 'd':
        route.redirect = model::Redirect{std::string(arg), "", "", 0, 301};
        route.route.clear();
        break;
      case 'f': {
        const double percent = std::atof(std::string(arg).c_str());
        route.fault = model::Fault{std::nullopt, model::Fault::Abort{503, percent}};
        break;
      }
      default: break;
    }
  }

  std::vector<routing::HeaderField> headers;
  routing::RequestView request;
  request.port = 9080;
  request.method = "GET";
  request.path = "/";
  if (!request_lines.empty()) {
    const std::string_view first = request_lines[0];
    const size_t sp = first.find(' ');
    request.method = first.substr(0, sp);
    const std::string_view target = sp == std::string_view::npos ? std::string_view{} : first.substr(sp + 1);
    const size_t q = target.find('?');
    request.path = target.substr(0, q);
    request.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  }
  for (size_t i = 1; i < request_lines.size(); ++i) {
    const std::string_view h = request_lines[i];
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    headers.push_back({h.substr(0, colon), value});
  }
  request.headers = headers;
  if (auto host = request.header("host")) request.authority = *host;

  lb::SeededRandom random(size);
  const routing::RouteDecision d = routing::decide_route(snapshot, routes, request, random);

  auto accepts = [&](const model::HttpRoute& r) {
    if (r.matches.empty()) return true;
    for (const auto& m : r.matches) {
      if (routing::matches(m, request)) return true;
    }
    return false;
  };
  if (d.action == routing::RouteDecision::Action::NotFound) {
    for (const auto& r : routes.http) require(!accepts(r));
    return 0;
  }
  require(d.route == &routes.http[d.route_index]);
  require(accepts(*d.route));
  for (uint32_t i = 0; i < d.route_index; ++i) require(!accepts(routes.http[i]));
  if (d.match) require(routing::matches(*d.match, request));
  if (d.action == routing::RouteDecision::Action::Forward) {
    require(d.destination != nullptr);
    require(d.destination->destination.subset == 1 || d.destination->destination.subset == 2);
    if (d.rewritten_path && d.route->rewrite && !d.route->rewrite->uri_regex) {
      require(std::string_view(*d.rewritten_path).starts_with(d.route->rewrite->uri));
    }
  }
  if (d.action == routing::RouteDecision::Action::Redirect) {
    require(d.location.find("://") != std::string::npos);
  }
  // The parsers behind hash keys must cope with any header/query bytes too.
  (void)request.cookie("session");
  (void)request.query_param("id");
  return 0;
}
