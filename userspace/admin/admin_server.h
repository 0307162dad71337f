// The agent's admin HTTP API: a small HTTP/1.1 server for operators,
// scrapers and sluicectl, never data-plane traffic. Boost.Beast's parser;
// one request per connection.
//
// Who may do what (docs/operations.md, "Security"):
// - A Unix socket (mode 0600, peers must be root or the agent's own user)
//   serves every endpoint, including the mutating ones (any method but GET).
// - A TCP listener serves GET only, unless a token is configured: then a
//   mutating request must carry `Authorization: Bearer TOKEN`. Its `Host`
//   must be an IP literal or `localhost`, so a web page that rebinds its DNS
//   name to 127.0.0.1 cannot reach it from a browser.
//
// Slow clients: every connection is read by one I/O thread with an absolute
// deadline for the whole request (kRequestDeadline, however slowly the bytes
// trickle in); only a complete request reaches the handler threads. When
// kMaxOpenConnections are open, a new connection closes the oldest one still
// sending its request, so a flood of idle connections cannot keep `/ready`
// from being answered.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::admin {

struct AdminRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // without the query string
  std::map<std::string, std::string> query;    // decoded ?a=b&c=d
  std::string body;
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;   // extra response headers (name, value)
};

// A handler per exact path; anything else answers 404 listing the paths.
using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

inline constexpr std::chrono::seconds kRequestDeadline{5};      // request head and body, in total
inline constexpr std::chrono::seconds kResponseDeadline{30};    // writing the response
inline constexpr size_t kMaxOpenConnections = 256;
inline constexpr unsigned kHandlerThreads = 4;

struct AdminListeners {
  std::string tcp;           // HOST:PORT ("127.0.0.1:15000", "[::1]:15000", ":15000"); "" for none
  std::string unix_socket;   // path; "" for none
  std::string token;         // non-empty: TCP accepts mutating requests that carry it as a bearer token
};

class AdminServer {
 public:
  // A TCP listener only (read-only: mutating requests are refused).
  explicit AdminServer(const std::string& tcp_listen);
  // Throws std::runtime_error naming the address or path that cannot be
  // listened on. The socket's directory is created 0700 if missing; a stale
  // socket left by a killed agent is replaced, a live one is an error.
  explicit AdminServer(const AdminListeners& listeners);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  void handle(const std::string& path, AdminHandler handler);
  void start();   // serve on background threads
  void stop();    // stop accepting, close connections, join; removes the socket file
  std::string local_address() const;   // resolved TCP HOST:PORT (port 0 → the kernel's pick)
  std::string socket_path() const;     // "" without a Unix socket

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "HOST:PORT" / "[v6]:PORT" / ":PORT"; throws std::invalid_argument.
std::pair<std::string, unsigned short> split_host_port(const std::string& text);

// True for a Host header a browser cannot be tricked into sending to this
// agent by DNS rebinding: an IPv4 literal, a bracketed IPv6 literal or
// `localhost`, each with an optional numeric port.
bool host_header_allowed(std::string_view host);

// Compares in time that depends only on the lengths, not on where the
// strings first differ.
bool constant_time_equal(std::string_view a, std::string_view b);

// Reads a bearer token from a file: a regular file not readable or writable
// by group or others (as ssh demands of its keys), at least 16 bytes once
// trailing whitespace is removed. Throws std::runtime_error naming the file.
std::string read_token_file(const std::string& path);

}  // namespace sluice::admin
