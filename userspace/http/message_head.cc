#include "http/message_head.h"

#include <algorithm>
#include <cstring>

#include "http/picohttpparser_abi.h"

namespace sluice::http {
namespace {

constexpr bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}


std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each comma-separated, trimmed, non-empty list element
// (RFC 9110 5.6.1). Returns false as soon as fn does.
template <typename Fn>
bool for_each_list_element(std::string_view value, Fn&& fn) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view element = trim(value.substr(0, comma));
    if (!element.empty() && !fn(element)) return false;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return true;
}

bool parse_content_length(std::string_view v, uint64_t& out) {
  // 1*DIGIT only: no sign, no list ("5, 5"), at most 18 digits so it cannot overflow.
  if (v.empty() || v.size() > 18) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out = n;
  return true;
}

bool is_valid_host(std::string_view host) {
  if (host.empty()) return false;
  for (unsigned char c : host) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              std::strchr("-._~%!$&'()*+,;=:[]", c) != nullptr;
    if (!ok || c == 0) return false;
  }
  return true;
}

// Field values may hold VCHAR, obs-text, SP and HTAB; the tokenizer already
// refuses NUL, bare CR and other controls, this keeps the rule in one place.
bool is_valid_field_value(std::string_view v) {
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

std::string_view find_field(const std::array<Field, kMaxHeaderFields>& fields, size_t count,
                            std::string_view name) {
  for (size_t i = 0; i < count; ++i) {
    if (iequals(fields[i].name, name)) return fields[i].value;
  }
  return {};
}

// What the common field rules decided about framing, for requests and responses.
struct FramingFields {
  int content_length_count = 0;
  uint64_t content_length = 0;
  bool content_length_valid = true;
  bool has_transfer_encoding = false;
  bool transfer_encoding_is_chunked = false;   // exactly one coding, "chunked"
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool obs_fold = false;
  bool bad_name = false;
  bool bad_value = false;
};

// The framing, Connection and validity facts of a field list, whichever
// codec decoded it. A field without a name (null data) is an obs-fold
// continuation line the HTTP/1.1 tokenizer reported (RFC 9112 5.2).
FramingFields scan_fields(const std::array<Field, kMaxHeaderFields>& fields, size_t n) {
  FramingFields f;
  int te_codings = 0;
  bool te_last_chunked = false;
  for (size_t i = 0; i < n; ++i) {
    const std::string_view name = fields[i].name, value = fields[i].value;
    if (name.data() == nullptr) {
      f.obs_fold = true;
      continue;
    }
    if (!is_token(name)) f.bad_name = true;   // includes whitespace before the colon
    if (!is_valid_field_value(value)) f.bad_value = true;
    if (iequals(name, "content-length")) {
      ++f.content_length_count;
      if (!parse_content_length(value, f.content_length)) f.content_length_valid = false;
    } else if (iequals(name, "transfer-encoding")) {
      f.has_transfer_encoding = true;
      for_each_list_element(value, [&](std::string_view coding) {
        ++te_codings;
        te_last_chunked = iequals(coding, "chunked");
        return true;
      });
    } else if (iequals(name, "connection")) {
      for_each_list_element(value, [&](std::string_view option) {
        if (iequals(option, "close")) f.connection_close = true;
        if (iequals(option, "keep-alive")) f.connection_keep_alive = true;
        return true;
      });
    }
  }
  // Only a lone "chunked" is accepted: any other coding (or chunked twice) is
  // a coding we would have to undo to find the message end.
  f.transfer_encoding_is_chunked = f.has_transfer_encoding && te_codings == 1 && te_last_chunked;
  return f;
}

// The tokenizer's field lines as views (values trimmed); obs-fold lines
// stay nameless for scan_fields to refuse.
void copy_fields(const phr_header* raw, size_t n, std::array<Field, kMaxHeaderFields>& out) {
  for (size_t i = 0; i < n; ++i) {
    if (raw[i].name == nullptr) {
      out[i] = Field{};   // the array is reused: no earlier message's field may show through
      continue;
    }
    out[i] = Field{std::string_view(raw[i].name, raw[i].name_len),
                   trim(std::string_view(raw[i].value, raw[i].value_len))};
  }
}

bool has_bare_lf(std::string_view head) {
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) return true;
  }
  return false;
}

size_t count_lines(std::string_view s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

ParseResult refuse(ParseError& error, uint16_t status, std::string_view reason) {
  error = ParseError{status, reason};
  return ParseResult::Invalid;
}

}  // namespace

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

bool is_hop_by_hop(std::string_view name, std::string_view connection_value) {
  static constexpr std::string_view kHopByHop[] = {
      "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
      "trailer", "proxy-authenticate", "proxy-authorization"};
  for (auto h : kHopByHop) {
    if (iequals(name, h)) return true;
  }
  if (connection_value.empty() || is_connection_protected(name)) return false;
  bool listed = false;
  for_each_list_element(connection_value, [&](std::string_view option) {
    if (iequals(option, name)) listed = true;
    return !listed;
  });
  return listed;
}

bool is_connection_protected(std::string_view name) {
  // Framing and routing (a removed Content-Length while the body still
  // streams is request smuggling; the proxy writes framing itself), and the
  // fields the proxy reads, logs or adds on the request's behalf.
  static constexpr std::string_view kProtected[] = {
      "content-length", "transfer-encoding", "host", "x-request-id", "x-forwarded-for", "x-forwarded-proto"};
  for (auto p : kProtected) {
    if (iequals(name, p)) return true;
  }
  return false;
}

bool lists_token(std::string_view list_value, std::string_view token) {
  return !for_each_list_element(list_value, [&](std::string_view element) { return !iequals(element, token); });
}

bool is_websocket_upgrade(const RequestHead& head) {
  return head.method == "GET" && head.minor_version == 1 && head.framing == BodyFraming::None &&
         lists_token(head.field("connection"), "upgrade") && lists_token(head.field("upgrade"), "websocket");
}

bool accepts_websocket_upgrade(const ResponseHead& head) {
  return head.status == 101 && lists_token(head.field("connection"), "upgrade") &&
         lists_token(head.field("upgrade"), "websocket");
}

std::string_view RequestHead::field(std::string_view name) const {
  return find_field(fields, field_count, name);
}

std::string_view ResponseHead::field(std::string_view name) const {
  return find_field(fields, field_count, name);
}

void RequestHead::reset() {
  method = target = authority = {};
  minor_version = 1;
  field_count = head_bytes = 0;
  framing = BodyFraming::None;
  content_length = 0;
  keep_alive = true;
  expect_continue = absolute_form = false;
  error = ParseError{};
}

void ResponseHead::reset() {
  status = 0;
  reason = {};
  minor_version = 1;
  field_count = head_bytes = 0;
  framing = BodyFraming::None;
  content_length = 0;
  keep_alive = true;
  error = ParseError{};
}

bool RequestHead::is_idempotent() const {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

bool HeadEndScanner::ready(std::string_view buffer, uint64_t stream_offset, const Limits& limits) {
  if (stream_offset != stream_offset_ || scanned_ > buffer.size()) {
    const uint64_t total = bytes_scanned_;
    reset();
    bytes_scanned_ = total;
    stream_offset_ = stream_offset;
  }
  if (buffer.size() >= limits.max_header_bytes) return true;
  // An empty line ends the head: LF LF or LF CR LF (bare LFs are refused by
  // the parse proper, but must still end the wait). Look back over at most
  // two bytes already seen; find LFs with memchr.
  const char* data = buffer.data();
  while (scanned_ < buffer.size()) {
    const void* lf = std::memchr(data + scanned_, '\n', buffer.size() - scanned_);
    size_t end = lf == nullptr ? buffer.size() : static_cast<size_t>(static_cast<const char*>(lf) - data) + 1;
    bytes_scanned_ += end - scanned_;
    scanned_ = end;
    if (lf == nullptr) break;
    size_t i = end - 1;
    bool empty_line = (i >= 1 && data[i - 1] == '\n') || (i >= 2 && data[i - 1] == '\r' && data[i - 2] == '\n');
    if (!first_line_ || empty_line) {
      first_line_ = true;
      return true;   // the next call resumes after this LF
    }
  }
  if (!first_line_ && !uri_checked_ && buffer.size() > limits.max_uri_bytes + 32) {
    uri_checked_ = true;
    return true;
  }
  return false;
}

ParseResult parse_request_head(std::string_view buffer, const Limits& limits, RequestHead& head) {
  head.reset();
  size_t capacity = std::min(limits.max_headers, kMaxHeaderFields);
  phr_header raw[kMaxHeaderFields];
  size_t n = capacity;
  const char* method = nullptr;
  const char* path = nullptr;
  size_t method_len = 0, path_len = 0;
  int minor = -1;
  size_t window = std::min(buffer.size(), limits.max_header_bytes);
  int rc = phr_parse_request(buffer.data(), window, &method, &method_len, &path, &path_len, &minor,
                             raw, &n, 0);
  if (rc == -2) {
    std::string_view seen = buffer.substr(0, window);
    if (seen.find('\n') == std::string_view::npos && seen.size() > limits.max_uri_bytes + 32) {
      return refuse(head.error, 414, "request line longer than the URI limit");
    }
    if (buffer.size() >= limits.max_header_bytes) {
      return refuse(head.error, 431, "request head larger than the header byte limit");
    }
    return ParseResult::Incomplete;
  }
  if (rc == -1) {
    // The tokenizer also fails when the field table is full: tell the two apart.
    std::string_view seen = buffer.substr(0, window);
    size_t end = seen.find("\r\n\r\n");
    if (count_lines(seen.substr(0, end)) > capacity + 1) {
      return refuse(head.error, 431, "too many header fields");
    }
    return refuse(head.error, 400, "malformed request head");
  }
  head.head_bytes = static_cast<size_t>(rc);
  head.method = std::string_view(method, method_len);
  head.target = std::string_view(path, path_len);
  head.minor_version = minor;
  head.field_count = n;
  if (has_bare_lf(buffer.substr(0, head.head_bytes))) return refuse(head.error, 400, "bare LF line ending");
  copy_fields(raw, n, head.fields);
  return validate_request_head(limits, head);
}

ParseResult validate_request_head(const Limits& limits, RequestHead& head) {
  const int minor = head.minor_version;
  const size_t n = head.field_count;
  if (!is_token(head.method)) return refuse(head.error, 400, "invalid method");
  if (head.target.size() > limits.max_uri_bytes) return refuse(head.error, 414, "URI too long");
  if (minor != 0 && minor != 1) return refuse(head.error, 505, "unsupported HTTP version");
  // The target's bytes (RFC 9112 3.2, RFC 3986): visible ASCII only. A raw
  // byte over 0x7e is refused as Envoy's HTTP/1 codec refuses it — a backend
  // that decodes it (an overlong UTF-8 '/', say) would see another path than
  // the one routed on — and so is a fragment, which a client never sends
  // (Envoy's default). HTTP/2's :path meets the same rule here.
  for (char ch : head.target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '#') return refuse(head.error, 400, "fragment in request-target");
    if (c <= ' ' || c >= 0x7f) return refuse(head.error, 400, "invalid character in request-target");
  }

  FramingFields f = scan_fields(head.fields, n);
  if (f.obs_fold) return refuse(head.error, 400, "obs-fold in header field");
  if (f.bad_name) return refuse(head.error, 400, "invalid header field name");
  if (f.bad_value) return refuse(head.error, 400, "invalid header field value");

  // Host: exactly one, valid (RFC 9112 3.2).
  int host_count = 0;
  std::string_view host;
  for (size_t i = 0; i < n; ++i) {
    if (iequals(head.fields[i].name, "host")) {
      ++host_count;
      host = head.fields[i].value;
    }
  }
  if (host_count > 1) return refuse(head.error, 400, "duplicate Host");
  if (host_count == 1 && !is_valid_host(host)) return refuse(head.error, 400, "invalid Host");
  if (host_count == 0 && minor == 1) return refuse(head.error, 400, "missing Host");
  head.authority = host;

  // Request-target forms (RFC 9112 3.2).
  std::string_view target = head.target;
  if (target == "*") {
    if (head.method != "OPTIONS") return refuse(head.error, 400, "asterisk-form outside OPTIONS");
  } else if (head.method == "CONNECT") {
    return refuse(head.error, 501, "CONNECT is not supported");
  } else if (target.front() != '/') {
    size_t scheme_end = target.find("://");
    std::string_view scheme = scheme_end == std::string_view::npos ? "" : target.substr(0, scheme_end);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
      return refuse(head.error, 400, "invalid request-target");
    }
    std::string_view rest = target.substr(scheme_end + 3);
    size_t path_start = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, path_start);
    if (authority.find('@') != std::string_view::npos || !is_valid_host(authority)) {
      return refuse(head.error, 400, "invalid authority in absolute-form");
    }
    std::string_view origin = path_start == std::string_view::npos ? "/" : rest.substr(path_start);
    if (origin.front() != '/') return refuse(head.error, 400, "absolute-form without a path");
    // The target's authority wins over Host (RFC 9112 3.2.2); the proxy
    // forwards origin-form with Host set to it.
    head.authority = authority;
    head.target = origin;
    head.absolute_form = true;
  }

  // Body framing (RFC 9112 6.1-6.3), refusing every ambiguity.
  if (f.has_transfer_encoding) {
    if (f.content_length_count > 0) return refuse(head.error, 400, "Content-Length with Transfer-Encoding");
    if (minor == 0) return refuse(head.error, 400, "Transfer-Encoding in HTTP/1.0");
    if (!f.transfer_encoding_is_chunked) return refuse(head.error, 400, "transfer coding other than a final chunked");
    head.framing = BodyFraming::Chunked;
  } else if (f.content_length_count > 1) {
    return refuse(head.error, 400, "duplicate Content-Length");
  } else if (f.content_length_count == 1) {
    if (!f.content_length_valid) return refuse(head.error, 400, "invalid Content-Length");
    head.content_length = f.content_length;
    head.framing = f.content_length > 0 ? BodyFraming::ContentLength : BodyFraming::None;
  }

  head.keep_alive = minor == 1 ? !f.connection_close : (f.connection_keep_alive && !f.connection_close);
  for (size_t i = 0; i < n; ++i) {
    if (!iequals(head.fields[i].name, "expect")) continue;
    if (!iequals(head.fields[i].value, "100-continue")) return refuse(head.error, 417, "unsupported expectation");
    head.expect_continue = minor == 1;   // HTTP/1.0 clients do not wait for 100 (RFC 9110 10.1.1)
  }
  return ParseResult::Complete;
}

ParseResult parse_response_head(std::string_view buffer, std::string_view request_method,
                                const Limits& limits, ResponseHead& head) {
  head.reset();
  size_t capacity = std::min(limits.max_headers, kMaxHeaderFields);
  phr_header raw[kMaxHeaderFields];
  size_t n = capacity;
  const char* msg = nullptr;
  size_t msg_len = 0;
  int minor = -1, status = 0;
  size_t window = std::min(buffer.size(), limits.max_header_bytes);
  int rc = phr_parse_response(buffer.data(), window, &minor, &status, &msg, &msg_len, raw, &n, 0);
  if (rc == -2) {
    if (buffer.size() >= limits.max_header_bytes) return refuse(head.error, 502, "response head too large");
    return ParseResult::Incomplete;
  }
  if (rc == -1) return refuse(head.error, 502, "malformed response head");
  head.head_bytes = static_cast<size_t>(rc);
  head.status = status;
  head.reason = std::string_view(msg, msg_len);
  head.minor_version = minor;
  head.field_count = n;
  copy_fields(raw, n, head.fields);
  return validate_response_head(request_method, head);
}

ParseResult validate_response_head(std::string_view request_method, ResponseHead& head) {
  const int minor = head.minor_version, status = head.status;
  if (status < 100 || status > 999) return refuse(head.error, 502, "invalid status code");
  FramingFields f = scan_fields(head.fields, head.field_count);
  if (f.obs_fold) return refuse(head.error, 502, "obs-fold in response header");
  if (f.bad_name) return refuse(head.error, 502, "invalid response header name");
  if (f.bad_value) return refuse(head.error, 502, "invalid response header value");
  if (f.has_transfer_encoding && f.content_length_count > 0) {
    return refuse(head.error, 502, "Content-Length with Transfer-Encoding in response");
  }
  if (f.content_length_count > 1) return refuse(head.error, 502, "duplicate Content-Length in response");
  if (f.content_length_count == 1 && !f.content_length_valid) {
    return refuse(head.error, 502, "invalid Content-Length in response");
  }
  if (f.has_transfer_encoding && !f.transfer_encoding_is_chunked) {
    return refuse(head.error, 502, "response transfer coding other than chunked");
  }

  head.keep_alive = minor == 1 ? !f.connection_close : (f.connection_keep_alive && !f.connection_close);
  bool bodiless = status < 200 || status == 204 || status == 304 || request_method == "HEAD";
  if (bodiless) {
    head.framing = BodyFraming::None;
  } else if (f.has_transfer_encoding) {
    head.framing = BodyFraming::Chunked;
  } else if (f.content_length_count == 1) {
    head.content_length = f.content_length;
    head.framing = f.content_length > 0 ? BodyFraming::ContentLength : BodyFraming::None;
  } else {
    head.framing = BodyFraming::UntilClose;
    head.keep_alive = false;
  }
  return ParseResult::Complete;
}

}  // namespace sluice::http
