// Access log of the L7 proxy, off unless sluiced is given --access-log.
//
// One line per request in Istio's default layouts, so the lines read and
// parse like the ones a sidecar writes:
//  - text: Istio's default TEXT format (Envoy's default plus upstream
//    cluster, addresses and route name), fields we do not have are "-";
//  - json: Istio's JSON encoding, the same fields as keys, null when absent.
//
// Workers format into their own buffer (no lock, no allocation once the
// buffer has grown) and hand whole lines to the shared AccessLogFile, which
// appends them with one write(2) on an O_APPEND descriptor: lines from
// different workers never interleave. Workers flush on their 10 ms tick and
// when the buffer passes kAccessLogFlushBytes, so logging costs a syscall per
// batch, not per request.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace sluice::proxy {

enum class AccessLogFormat { Text, Json };

// "text" / "json"; throws std::invalid_argument naming the value otherwise.
AccessLogFormat parse_access_log_format(std::string_view name);

inline constexpr size_t kAccessLogFlushBytes = 32 * 1024;

// What one line says. Views are valid for the call to append_access_log only.
// Empty views and negative numbers print as "-" (text) or null (json).
struct AccessLogRecord {
  int64_t start_unix_ns = 0;             // when the request head was complete
  std::string_view method, path, protocol;
  unsigned response_code = 0;            // 0: no response was sent (the client went away)
  std::string_view response_flags;       // Envoy's flags: "-", "UH", "UO", "NR", "UT", "DC", "FI", ...
  std::string_view response_code_details;   // "via_upstream" or empty
  uint64_t bytes_received = 0;           // request body bytes read from the client
  uint64_t bytes_sent = 0;               // response body bytes written to the client
  int64_t duration_ms = -1;              // head complete to last byte handed to the socket
  int64_t upstream_service_time_ms = -1;   // request sent upstream to its response head
  std::string_view x_forwarded_for, user_agent, request_id, authority;
  std::string_view upstream_host;        // "10.200.11.2:9080"
  std::string_view upstream_cluster;     // Istio's "outbound|9080|v1|productpage"
  std::string_view downstream_local_address, downstream_remote_address;
  std::string_view route_name;
};

// Appends one line, '\n' included.
void append_access_log(std::string& out, const AccessLogRecord& record, AccessLogFormat format);

// The destination: a file opened for append (created 0640 if missing), or
// standard output for "-". Thread-safe.
class AccessLogFile {
 public:
  explicit AccessLogFile(std::string path);   // throws std::system_error naming the path
  ~AccessLogFile();
  AccessLogFile(const AccessLogFile&) = delete;
  AccessLogFile& operator=(const AccessLogFile&) = delete;

  // Whole lines, one write(2) (retried on a short write). A failing write is
  // counted, never thrown: logging must not stop the proxy.
  void write(std::string_view lines);
  // Reopens the path (log rotation: sluiced calls it on SIGUSR1, as Envoy
  // reopens its access logs). Keeps the old descriptor if the open fails.
  void reopen();
  uint64_t write_errors() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  mutable std::mutex mu_;   // guards fd_ against reopen(), not the writes' order
  int fd_ = -1;
  uint64_t write_errors_ = 0;
};

}  // namespace sluice::proxy
