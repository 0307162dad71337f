#include "config/decoders.h"
#include "model/grpc_status.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <limits>
#include <sstream>

namespace sluice::config {

namespace {

// Istio's retryOn policies (its validation refuses any other word); all
// but the last four are enforced by the proxy (proxy/retry_policy.cc). The
// gRPC ones match the grpc-status of a gRPC request's response.
constexpr std::string_view kRetryOnPolicies =
    "5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, "
    "cancelled, deadline-exceeded, internal, resource-exhausted, unavailable, "
    "retriable-headers, envoy-ratelimited, reset-before-request, http3-post-connect-failure";
constexpr std::string_view kRetryOnImplemented[] = {
    "5xx",       "gateway-error",     "reset",    "connect-failure",    "retriable-4xx",
    "refused-stream", "retriable-status-codes", "cancelled", "deadline-exceeded", "internal",
    "resource-exhausted", "unavailable"};
constexpr std::string_view kRetryOnNotImplemented[] = {"retriable-headers", "envoy-ratelimited",
                                                       "reset-before-request", "http3-post-connect-failure"};

bool retry_on_implemented(std::string_view token) {
  return std::find(std::begin(kRetryOnImplemented), std::end(kRetryOnImplemented), token) !=
         std::end(kRetryOnImplemented);
}
bool retry_on_known(std::string_view token) {
  return std::find(std::begin(kRetryOnNotImplemented), std::end(kRetryOnNotImplemented), token) !=
         std::end(kRetryOnNotImplemented);
}

// What configuration writes into an HTTP head must stay inside the field or
// the request line it is meant for: a CR or LF in a header value, a space in
// a rewritten path or a colon in a header name would let a VirtualService
// add fields or a whole second request on a pooled upstream connection
// (request smuggling), or split a response. Envoy refuses such values when
// the route is loaded; so does sluice, naming the field and the value.
bool is_tchar(unsigned char c) {   // RFC 9110 5.6.2
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
bool is_field_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}
// RFC 9110 5.5: visible characters, SP and HTAB (not at either end), and
// obs-text; no control character, so never CR, LF or NUL.
bool is_field_value(std::string_view s) {
  if (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t')) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}
// Fields the proxy writes itself from the message it forwards: the framing
// (a second Content-Length or Transfer-Encoding is a smuggling vector), the
// hop-by-hop fields of RFC 9110 7.6.1, and Host (rewrite.authority sets it).
bool written_by_proxy(std::string_view lower) {
  static constexpr std::string_view kNames[] = {"host", "content-length", "transfer-encoding", "connection",
                                                "keep-alive", "proxy-connection", "upgrade", "te", "trailer"};
  return std::find(std::begin(kNames), std::end(kNames), lower) != std::end(kNames);
}
// A path (and query) as it goes into a request line or a Location field:
// printable ASCII without spaces (RFC 3986 characters; nothing is encoded
// on the way).
bool is_target_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f && c != '#';
  });
}
// host[:port] (RFC 3986 3.2.2-3.2.3): reg-name, IPv4 or [IPv6] characters.
bool is_authority_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || std::string_view("-._~%!$&'()*+,;=:[]").find(ch) != std::string_view::npos;
  });
}
bool is_scheme(std::string_view s) {   // RFC 3986 3.1
  return !s.empty() && std::isalpha(static_cast<unsigned char>(s.front())) &&
         std::all_of(s.begin(), s.end(), [](char ch) {
           return std::isalnum(static_cast<unsigned char>(ch)) || ch == '+' || ch == '-' || ch == '.';
         });
}
// The value as the error message shows it: controls escaped, long ones cut.
std::string shown(std::string_view s) {
  std::string out = "'";
  for (char ch : s.substr(0, 80)) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '\r') out += "\\r";
    else if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  if (s.size() > 80) out += "...";
  return out + "'";
}

// Checks a string field that goes into a request line, Host or Location.
void check_head_text(Decoder& d, Fields& f, std::string_view key, const std::string& value,
                     bool (*valid)(std::string_view), std::string_view what) {
  if (value.empty() || valid(value)) return;
  const YAML::Node* n = f.get(key);
  const std::string message = d.field(f.name_of(key)) + " " + shown(value) + " is not " + std::string(what);
  if (n != nullptr) d.error(*n, message);
  else d.error(f.key_at(key), message);
}

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
        std::string name = lowercase(kv.first.Scalar());
        const std::string where = d.field(f.name_of(key) + "." + kv.first.Scalar());
        if (!is_field_name(name)) {
          d.error(kv.first, where + ": " + shown(kv.first.Scalar()) +
                                " is not a header name (RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~; "
                                "pseudo-headers such as :authority cannot be set)");
          continue;
        }
        if (written_by_proxy(name)) {
          d.error(kv.first, where + ": the proxy writes '" + name + "' itself from the message it forwards" +
                                (name == "host" ? "; set rewrite.authority to change it" : ""));
          continue;
        }
        if (!is_field_value(kv.second.Scalar())) {
          d.error(kv.second, where + " value " + shown(kv.second.Scalar()) +
                                 " is not a header value (one line: no CR, LF, NUL or other control "
                                 "character, no space or tab at either end)");
          continue;
        }
        target->emplace_back(std::move(name), kv.second.Scalar());
      }
    }
  }
  if (const auto* v = f.get("remove")) {
    if (auto list = d.string_list(*v, f.name_of("remove"))) {
      size_t i = 0;
      for (auto& h : *list) {
        const YAML::Node item = (*v)[i++];
        if (!is_field_name(h)) {
          d.error(item, d.field(f.name_of("remove")) + ": " + shown(h) + " is not a header name (RFC 9110 token)");
          continue;
        }
        ops.remove.push_back(lowercase(h));
      }
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

// Istio's binding rule: a match's own `gateways` replace the VirtualService's;
// no list at either level means `mesh` only. sluice serves mesh traffic.
bool binds_mesh(const std::vector<std::string>& match_gateways, const std::vector<std::string>& vs_gateways) {
  const auto& list = match_gateways.empty() ? vs_gateways : match_gateways;
  return list.empty() || std::find(list.begin(), list.end(), "mesh") != list.end();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A match bound only to gateways: a note, and the caller drops the match.
bool keep_for_mesh(Decoder& d, const YAML::Node& match, const std::string& path,
                   const std::vector<std::string>& gateways, const VirtualServiceSpec& vs) {
  if (binds_mesh(gateways, vs.gateways)) return true;
  if (gateways.empty()) return false;   // the whole VirtualService is skipped, with its own note
  d.note(match, d.field(path) + " applies to gateways " + joined(gateways) +
                    " only, not to 'mesh': sluice serves mesh traffic, so this match is skipped");
  return false;
}

std::optional<model::HttpMatch> decode_http_match(Decoder& d, const YAML::Node& n,
                                                  const std::string& path,
                                                  SourceLocation& port_where,
                                                  std::vector<std::string>& gateways) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::HttpMatch m;
  m.where = d.at(n);
  f.read("name", m.name);
  f.read("ignoreUriCase", m.ignore_uri_case);
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
  f.read("gateways", gateways);
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
  f.read("name", r.name);
  if (const auto* v = f.get("match")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field(f.name_of("match")) + " must be a list of match conditions");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        SourceLocation port_where;
        std::vector<std::string> gateways;
        const std::string mpath = indexed(path, "match", i++);
        if (auto m = decode_http_match(d, item, mpath, port_where, gateways)) {
          if (!keep_for_mesh(d, item, mpath, gateways, vs)) continue;
          r.matches.push_back(std::move(*m));
          spec.match_port_where.push_back(port_where);
        }
      }
      // Every match was for a gateway: the route never sees mesh traffic.
      spec.mesh = !r.matches.empty() || v->size() == 0;
    }
  }
  if (const auto* v = f.get("route")) {
    decode_weighted_destinations(d, *v, f.name_of("route"), true, spec.destinations);
  }
  if (const auto* v = f.get("redirect")) {
    Fields rf(d, *v, f.name_of("redirect"));
    if (rf.ok()) {
      model::Redirect red;
      rf.read("uri", red.uri);
      rf.read("authority", red.authority);
      rf.read("scheme", red.scheme);
      rf.read_port("port", red.port);
      rf.read("redirectCode", red.status, 300, 399);
      check_head_text(d, rf, "uri", red.uri, is_target_text, "a path (printable ASCII, no spaces)");
      check_head_text(d, rf, "authority", red.authority, is_authority_text, "an authority (host[:port])");
      check_head_text(d, rf, "scheme", red.scheme, is_scheme, "a URI scheme (RFC 3986 3.1)");
      rf.not_implemented("derivePort");
      rf.finish();
      r.redirect = red;
    }
  }
  if (const auto* v = f.get("rewrite")) {
    Fields rf(d, *v, f.name_of("rewrite"));
    if (rf.ok()) {
      model::Rewrite rw;
      rf.read("uri", rw.uri);
      rf.read("authority", rw.authority);
      check_head_text(d, rf, "uri", rw.uri, is_target_text, "a path (printable ASCII, no spaces)");
      check_head_text(d, rf, "authority", rw.authority, is_authority_text, "an authority (host[:port])");
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
          xf.read("rewrite", rw.uri_regex_rewrite);
          check_head_text(d, xf, "rewrite", rw.uri_regex_rewrite, is_target_text,
                          "a path replacement (printable ASCII, no spaces)");
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
      if (rf.get("status")) {
        rf.read("status", dr.status, 200, 599);
      } else {
        d.error(*v, d.field(rf.name_of("status")) + " is required");
      }
      if (const auto* x = rf.get("body")) {
        Fields bf(d, *x, rf.name_of("body"));
        if (bf.ok()) {
          bf.read("string", dr.body);
          bf.not_implemented("bytes", "use body.string");
          bf.finish();
        }
      }
      rf.finish();
      r.direct_response = dr;
    }
  }
  f.read("timeout", r.timeout);
  if (const auto* v = f.get("retries")) {
    Fields rf(d, *v, f.name_of("retries"));
    if (rf.ok()) {
      model::Retries rt;
      rf.read("attempts", rt.attempts, 0, 100);
      rf.read("perTryTimeout", rt.per_try_timeout);
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
            } else if (retry_on_implemented(token)) {
              rt.retry_on.push_back(token);
            } else if (retry_on_known(token)) {
              d.warning(*x, d.field(rf.name_of("retryOn")) + " policy '" + token +
                                "' is not implemented by sluice and is ignored");
            } else {
              d.error(*x, d.field(rf.name_of("retryOn")) + ": '" + token +
                              "' is not a valid retryOn policy (expected an HTTP status code or one of " +
                              std::string(kRetryOnPolicies) + ")");
            }
          }
        }
      }
      rf.not_implemented("retryRemoteLocalities");
      rf.read("retryIgnorePreviousHosts", rt.ignore_previous_hosts);
      if (const auto* b = rf.get("backoff"); b != nullptr && rf.read("backoff", rt.backoff) &&
          rt.backoff < std::chrono::milliseconds(1)) {
        d.error(*b, d.field(rf.name_of("backoff")) + " is " + b->as<std::string>() +
                        ": the retry back-off's base interval is at least 1ms (leave it out for 25ms)");
        rt.backoff = std::chrono::milliseconds(25);
      }
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
          const bool fixed = df.get("fixedDelay") != nullptr;
          if (fixed) {
            df.read("fixedDelay", delay.fixed);
          } else if (!df.node()["exponentialDelay"]) {
            d.error(*x, d.field(df.name_of("fixedDelay")) + " is required");
          }   // else: only exponentialDelay, reported as not implemented below
          if (auto p = decode_percentage(d, df, "percentage", "percent")) delay.percent = *p;
          df.not_implemented("exponentialDelay");
          df.finish();
          if (fixed) fault.delay = delay;
        }
      }
      if (const auto* x = ff.get("abort")) {
        Fields af(d, *x, ff.name_of("abort"));
        if (af.ok()) {
          model::Fault::Abort abort;
          const YAML::Node* grpc = af.get("grpcStatus");
          if (af.get("httpStatus")) {
            af.read("httpStatus", abort.status, 200, 599);
            if (grpc != nullptr) {
              d.error(*grpc, d.field(af.name_of("grpcStatus")) + " and httpStatus are exclusive; use one");
            }
          } else if (grpc != nullptr) {
            // Istio's string form ("UNAVAILABLE"); the answer is a
            // trailers-only gRPC response (docs/l7-proxy.md, "gRPC").
            if (auto name = d.string(*grpc, af.name_of("grpcStatus"))) {
              if (auto code = model::grpc_status_from_name(*name)) {
                abort.grpc_status = static_cast<uint32_t>(*code);
              } else {
                d.error(*grpc, d.field(af.name_of("grpcStatus")) + ": '" + *name +
                                   "' is not a gRPC status name (expected one of " +
                                   std::string(model::grpc_status_names()) + ")");
              }
            }
          } else if (!af.node()["http2Error"]) {   // else: reported as not implemented below
            d.error(*x, d.field(af.name_of("httpStatus")) + " is required");
          }
          if (auto p = decode_percentage(d, af, "percentage", "percent")) abort.percent = *p;
          af.not_implemented("http2Error");
          af.finish();
          if (abort.status != 0 || abort.grpc_status) fault.abort = abort;
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
        std::vector<std::string> gateways;
        mf.read("gateways", gateways);
        mf.finish();
        if (keep_for_mesh(d, item, indexed(path, "match", i - 1), gateways, vs)) spec.matches.push_back(m);
      }
    }
  }
  if (const auto* v = f.get("match"); v && v->IsSequence() && v->size() > 0) spec.mesh = !spec.matches.empty();
  if (const auto* v = f.get("route")) {
    decode_weighted_destinations(d, *v, f.name_of("route"), false, spec.destinations);
  } else {
    d.error(n, d.field(f.name_of("route")) + " is required");
  }
  f.finish();
  vs.tcp.push_back(std::move(spec));
}

}  // namespace

void decode_virtual_service(Decoder& d, Fields& spec, ResourceMeta meta) {
  VirtualServiceSpec vs;
  vs.meta = std::move(meta);
  spec.read("gateways", vs.gateways);
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
  decode_export_to(d, spec, vs.meta, false);
  spec.finish();
  if (!binds_mesh({}, vs.gateways)) {
    // An ingress VirtualService (often `hosts: ["*"]`): its hosts are the
    // gateway's, not mesh services, so none of it is resolved or applied.
    d.note(spec.node()["gateways"], "VirtualService '" + vs.meta.name + "' is bound to gateways " +
                                        joined(vs.gateways) +
                                        " only, not to 'mesh': sluice serves mesh traffic, so it is skipped");
    return;
  }
  d.out().virtual_services.push_back(std::move(vs));
}


}  // namespace sluice::config
