// The agent's admin HTTP API: a small blocking HTTP/1.1 server. It serves
// operators, scrapers and sluicectl, never data-plane traffic, so it favours
// simplicity over throughput: Boost.Beast's parser, one request per
// connection, each connection on its own thread (at most 32 at once, each
// bounded by a 5 s read deadline) so an idle client cannot block the others.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
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

class AdminServer {
 public:
  // `listen` is HOST:PORT ("127.0.0.1:15000", "[::1]:15000", ":15000").
  // Throws std::runtime_error naming the address if it cannot bind.
  explicit AdminServer(const std::string& listen);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  void handle(const std::string& path, AdminHandler handler);
  void start();   // serve on a background thread
  void stop();    // stop accepting and join
  std::string local_address() const;   // resolved HOST:PORT (port 0 → the kernel's pick)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "HOST:PORT" / "[v6]:PORT" / ":PORT"; throws std::invalid_argument.
std::pair<std::string, unsigned short> split_host_port(const std::string& text);

}  // namespace sluice::admin
