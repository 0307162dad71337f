#include "proxy/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>
#include <stdexcept>
#include <system_error>

namespace sluice::proxy {

AccessLogFormat parse_access_log_format(std::string_view name) {
  if (name == "text") return AccessLogFormat::Text;
  if (name == "json") return AccessLogFormat::Json;
  throw std::invalid_argument("access log format '" + std::string(name) + "': expected 'text' or 'json'");
}

namespace {

void append_number(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// RFC 3339 UTC with milliseconds, as Envoy prints %START_TIME%.
void append_time(std::string& out, int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  auto ms = static_cast<int>((unix_ns / 1'000'000) % 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  out += '.';
  out += static_cast<char>('0' + ms / 100);
  out += static_cast<char>('0' + ms / 10 % 10);
  out += static_cast<char>('0' + ms % 10);
  out += 'Z';
}

// Text fields are printed as received, except control bytes (a header value
// cannot hold CR or LF after parsing, but a log line must never be split or
// carry terminal escapes): each becomes '?'.
void append_text(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += '-';
    return;
  }
  for (char ch : s) out += (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ? '?' : ch;
}

void append_quoted_text(std::string& out, std::string_view s) {
  out += '"';
  append_text(out, s);
  out += '"';
}

void append_json_string(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += "null";
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    auto u = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 15];
        } else {
          out += ch;   // UTF-8 passes through; invalid bytes are the client's
        }
    }
  }
  out += '"';
}

void append_json_number(std::string& out, int64_t v) {
  if (v < 0) out += "null";
  else append_number(out, v);
}

void append_text_line(std::string& out, const AccessLogRecord& r) {
  out += '[';
  append_time(out, r.start_unix_ns);
  out += "] \"";
  append_text(out, r.method);
  out += ' ';
  append_text(out, r.path);
  out += ' ';
  append_text(out, r.protocol);
  out += "\" ";
  append_number(out, r.response_code);
  out += ' ';
  append_text(out, r.response_flags);
  out += ' ';
  append_text(out, r.response_code_details);
  out += " - \"-\" ";   // connection termination details, upstream transport failure reason
  append_number(out, static_cast<int64_t>(r.bytes_received));
  out += ' ';
  append_number(out, static_cast<int64_t>(r.bytes_sent));
  out += ' ';
  if (r.duration_ms < 0) out += '-';
  else append_number(out, r.duration_ms);
  out += ' ';
  if (r.upstream_service_time_ms < 0) out += '-';
  else append_number(out, r.upstream_service_time_ms);
  out += ' ';
  append_quoted_text(out, r.x_forwarded_for);
  out += ' ';
  append_quoted_text(out, r.user_agent);
  out += ' ';
  append_quoted_text(out, r.request_id);
  out += ' ';
  append_quoted_text(out, r.authority);
  out += ' ';
  append_quoted_text(out, r.upstream_host);
  out += ' ';
  append_text(out, r.upstream_cluster);
  out += " - ";   // upstream local address
  append_text(out, r.downstream_local_address);
  out += ' ';
  append_text(out, r.downstream_remote_address);
  out += " - ";   // requested server name (no TLS here)
  append_text(out, r.route_name);
  out += '\n';
}

void append_json_line(std::string& out, const AccessLogRecord& r) {
  out += "{\"start_time\":\"";
  append_time(out, r.start_unix_ns);
  out += "\",\"method\":";
  append_json_string(out, r.method);
  out += ",\"path\":";
  append_json_string(out, r.path);
  out += ",\"protocol\":";
  append_json_string(out, r.protocol);
  out += ",\"response_code\":";
  append_number(out, r.response_code);
  out += ",\"response_flags\":";
  append_json_string(out, r.response_flags);
  out += ",\"response_code_details\":";
  append_json_string(out, r.response_code_details);
  out += ",\"connection_termination_details\":null,\"upstream_transport_failure_reason\":null";
  out += ",\"bytes_received\":";
  append_number(out, static_cast<int64_t>(r.bytes_received));
  out += ",\"bytes_sent\":";
  append_number(out, static_cast<int64_t>(r.bytes_sent));
  out += ",\"duration\":";
  append_json_number(out, r.duration_ms);
  out += ",\"upstream_service_time\":";
  append_json_number(out, r.upstream_service_time_ms);
  out += ",\"x_forwarded_for\":";
  append_json_string(out, r.x_forwarded_for);
  out += ",\"user_agent\":";
  append_json_string(out, r.user_agent);
  out += ",\"request_id\":";
  append_json_string(out, r.request_id);
  out += ",\"authority\":";
  append_json_string(out, r.authority);
  out += ",\"upstream_host\":";
  append_json_string(out, r.upstream_host);
  out += ",\"upstream_cluster\":";
  append_json_string(out, r.upstream_cluster);
  out += ",\"upstream_local_address\":null,\"downstream_local_address\":";
  append_json_string(out, r.downstream_local_address);
  out += ",\"downstream_remote_address\":";
  append_json_string(out, r.downstream_remote_address);
  out += ",\"requested_server_name\":null,\"route_name\":";
  append_json_string(out, r.route_name);
  out += "}\n";
}

int open_log(const std::string& path) {
  if (path == "-") return ::dup(STDOUT_FILENO);
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

}  // namespace

void append_access_log(std::string& out, const AccessLogRecord& record, AccessLogFormat format) {
  if (format == AccessLogFormat::Json) append_json_line(out, record);
  else append_text_line(out, record);
}

AccessLogFile::AccessLogFile(std::string path) : path_(std::move(path)) {
  fd_ = open_log(path_);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "access log '" + path_ + "'");
}

AccessLogFile::~AccessLogFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AccessLogFile::write(std::string_view lines) {
  std::lock_guard lock(mu_);
  while (!lines.empty()) {
    ssize_t n = ::write(fd_, lines.data(), lines.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++write_errors_;
      return;
    }
    lines.remove_prefix(static_cast<size_t>(n));
  }
}

void AccessLogFile::reopen() {
  if (path_ == "-") return;
  int fd = open_log(path_);
  if (fd < 0) {
    std::lock_guard lock(mu_);
    ++write_errors_;
    return;
  }
  std::lock_guard lock(mu_);
  ::close(fd_);
  fd_ = fd;
}

uint64_t AccessLogFile::write_errors() const {
  std::lock_guard lock(mu_);
  return write_errors_;
}

}  // namespace sluice::proxy
