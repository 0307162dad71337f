#include "http/local_response.h"

#include <charconv>
#include <cstring>

namespace sluice::http {

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

namespace {

class Writer {
 public:
  explicit Writer(std::span<char> out) : out_(out) {}
  void put(std::string_view s) {
    if (!ok_ || s.size() > out_.size() - len_) {
      ok_ = false;
      return;
    }
    std::memcpy(out_.data() + len_, s.data(), s.size());
    len_ += s.size();
  }
  void put(uint64_t n) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, n);
    put(std::string_view(digits, static_cast<size_t>(r.ptr - digits)));
  }
  size_t result() const { return ok_ ? len_ : 0; }

 private:
  std::span<char> out_;
  size_t len_ = 0;
  bool ok_ = true;
};

}  // namespace

size_t write_local_response(std::span<char> out, const LocalResponse& r) {
  Writer w(out);
  w.put("HTTP/1.1 ");
  w.put(uint64_t{r.status});
  w.put(" ");
  w.put(reason_phrase(r.status));
  w.put("\r\n");
  w.put(r.extra_fields);
  bool bodiless = r.status < 200 || r.status == 204 || r.status == 304;
  if (!bodiless) {
    if (!r.body.empty()) w.put("content-type: text/plain\r\n");
    w.put("content-length: ");
    w.put(uint64_t{r.body.size()});
    w.put("\r\n");
  }
  if (r.close) w.put("connection: close\r\n");
  else if (r.http10_keep_alive) w.put("connection: keep-alive\r\n");
  w.put("server: sluice\r\n\r\n");
  if (!bodiless && !r.head_request) w.put(r.body);
  return w.result();
}

}  // namespace sluice::http
