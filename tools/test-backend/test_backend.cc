// sluice-test-backend: the upstream every integration test and the demo run in
// backend namespaces. One epoll thread serves:
//   HTTP/1.1 (keep-alive, pipelining): 200 with `x-backend: NAME` and body
//     "NAME\n"; `?status=N` answers N; `?delay_ms=N` (or --delay-ms) answers
//     late; paths under /echo answer a JSON description of the request
//     (with `peer` and `connection`, the connection's serial number: a
//     peer address:port comes back when loopback ports are re-used);
//     GET /__stats answers the counters (not counted itself).
//   TCP: writes "NAME\n" on connect, then echoes.
//   UDP: answers "NAME" to every datagram.
// SIGTERM or SIGINT closes the listeners and every connection, prints the
// counters on stderr and exits 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "netio/socket_address.h"

namespace {

using sluice::tools::SocketAddress;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHeaderBytes = 64 * 1024;

enum class Listener { Http, Tcp, Udp };

struct Counters {
  uint64_t http_requests = 0;
  uint64_t http_connections = 0;
  uint64_t tcp_connections = 0;
  uint64_t udp_datagrams = 0;
};

struct Connection {
  int fd = -1;
  uint64_t serial = 0;
  bool http = true;
  SocketAddress peer, local;
  std::string in, out;
  bool close_after_flush = false;   // we decided to close (Connection: close, error)
  bool peer_closed = false;         // the peer half-closed: answer what it sent, then close
  bool waiting_for_delay = false;   // a delayed response holds back later pipelined requests
  std::string delayed_response;
  bool want_write = false;

  bool done() const { return (close_after_flush || peer_closed) && out.empty() && !waiting_for_delay; }
};

struct DelayedResponse {
  Clock::time_point due;
  int fd;
  uint64_t serial;
  bool operator>(const DelayedResponse& o) const { return due > o.due; }
};

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<int> query_int(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key && eq != std::string_view::npos) {
      std::string_view v = pair.substr(eq + 1);
      int n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec == std::errc() && end == v.data() + v.size()) return n;
      return std::nullopt;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

struct Request {
  std::string method, target, version, path, query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;
};

enum class ParseResult { Complete, NeedMore, Bad, TooLarge };

// Chunked request bodies are decoded (and discarded unless echoed); sizes and
// extensions are checked only as far as framing needs.
ParseResult decode_chunked(std::string_view data, size_t& consumed, std::string& body) {
  size_t pos = 0;
  while (true) {
    const size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) return ParseResult::NeedMore;
    std::string_view size_text = data.substr(pos, eol - pos);
    size_text = size_text.substr(0, size_text.find(';'));
    size_t size = 0;
    auto [end, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc() || size_text.empty()) return ParseResult::Bad;
    (void)end;
    pos = eol + 2;
    if (size == 0) {
      // Trailers end with an empty line.
      while (true) {
        const size_t t = data.find("\r\n", pos);
        if (t == std::string_view::npos) return ParseResult::NeedMore;
        const bool empty = (t == pos);
        pos = t + 2;
        if (empty) {
          consumed = pos;
          return ParseResult::Complete;
        }
      }
    }
    if (data.size() < pos + size + 2) return ParseResult::NeedMore;
    body.append(data.substr(pos, size));
    pos += size + 2;
  }
}

ParseResult parse_request(std::string_view data, Request& req, size_t& consumed) {
  const size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    return data.size() > kMaxHeaderBytes ? ParseResult::TooLarge : ParseResult::NeedMore;
  }
  std::string_view head = data.substr(0, head_end);
  const size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return ParseResult::Bad;
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.version = line.substr(sp2 + 1);
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") return ParseResult::Bad;
  const size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
  req.keep_alive = req.version == "HTTP/1.1";
  size_t content_length = 0;
  bool chunked = false;
  std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  while (!rest.empty()) {
    const size_t e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? "" : rest.substr(e + 2);
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return ParseResult::Bad;
    std::string name = lowercase(h.substr(0, colon));
    std::string value(trim(h.substr(colon + 1)));
    if (name == "content-length") {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (ec != std::errc() || end != value.data() + value.size()) return ParseResult::Bad;
    } else if (name == "transfer-encoding") {
      chunked = lowercase(value).find("chunked") != std::string::npos;
    } else if (name == "connection") {
      const std::string v = lowercase(value);
      if (v.find("close") != std::string::npos) req.keep_alive = false;
      if (v.find("keep-alive") != std::string::npos) req.keep_alive = true;
    }
    req.headers.emplace_back(std::move(name), std::move(value));
  }
  const size_t body_start = head_end + 4;
  if (chunked) {
    size_t used = 0;
    ParseResult r = decode_chunked(data.substr(body_start), used, req.body);
    if (r != ParseResult::Complete) return r;
    consumed = body_start + used;
    return ParseResult::Complete;
  }
  if (data.size() < body_start + content_length) return ParseResult::NeedMore;
  req.body = data.substr(body_start, content_length);
  consumed = body_start + content_length;
  return ParseResult::Complete;
}

class TestBackend {
 public:
  TestBackend(std::string name, int default_delay_ms) : name_(std::move(name)), default_delay_ms_(default_delay_ms) {}

  bool listen_on(const SocketAddress& addr, Listener kind, std::string& error);
  int run();

 private:
  void accept_all(int listen_fd, Listener kind);
  void serve_udp(int fd);
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  void process_http(Connection& c);
  std::string respond(Connection& c, const Request& req, int& delay_ms);
  void queue_output(Connection& c, std::string_view data);
  void flush(Connection& c);
  void update_interest(Connection& c);
  void close_connection(int fd);
  void fire_due_delays();
  int next_timeout_ms() const;
  std::string stats_json() const;

  std::string name_;
  int default_delay_ms_;
  int epoll_fd_ = -1;
  std::unordered_map<int, Listener> listeners_;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
  std::priority_queue<DelayedResponse, std::vector<DelayedResponse>, std::greater<>> delays_;
  uint64_t next_serial_ = 1;
  Counters counters_;
  std::vector<std::string> listening_;
};

bool TestBackend::listen_on(const SocketAddress& addr, Listener kind, std::string& error) {
  if (epoll_fd_ < 0) epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  const int type = (kind == Listener::Udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const int fd = socket(addr.family(), type, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // v4 and v6 wildcards are bound separately, so the v6 one must not claim v4.
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, addr.get(), addr.length) != 0) {
    error = "bind " + addr.to_string() + ": " + std::strerror(errno);
    close(fd);
    return false;
  }
  if (kind != Listener::Udp && listen(fd, 4096) != 0) {
    error = "listen " + addr.to_string() + ": " + std::strerror(errno);
    close(fd);
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  listeners_[fd] = kind;
  const char* label = kind == Listener::Http ? "http" : kind == Listener::Tcp ? "tcp" : "udp";
  listening_.push_back(std::string(label) + " " + addr.to_string());
  return true;
}

void TestBackend::accept_all(int listen_fd, Listener kind) {
  while (true) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) std::fprintf(stderr, "accept: %s\n", std::strerror(errno));
      return;
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->serial = next_serial_++;
    c->http = kind == Listener::Http;
    c->peer = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), len);
    sockaddr_storage local{};
    socklen_t llen = sizeof local;
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen);
    c->local = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&local), llen);
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    Connection& ref = *c;
    connections_[fd] = std::move(c);
    if (kind == Listener::Http) {
      counters_.http_connections++;
    } else {
      counters_.tcp_connections++;
      queue_output(ref, name_ + "\n");
    }
  }
}

void TestBackend::serve_udp(int fd) {
  char buf[65536];
  while (true) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) return;
    counters_.udp_datagrams++;
    sendto(fd, name_.data(), name_.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
  }
}

void TestBackend::queue_output(Connection& c, std::string_view data) {
  c.out.append(data);
  flush(c);
}

void TestBackend::flush(Connection& c) {
  while (!c.out.empty()) {
    const ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      c.out.clear();
      c.close_after_flush = true;
      break;
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  const bool want_write = !c.out.empty();
  if (want_write != c.want_write) {
    c.want_write = want_write;
    update_interest(c);
  }
}

void TestBackend::update_interest(Connection& c) {
  epoll_event ev{};
  // After the peer's EOF, readiness for reading stays on forever; stop asking.
  ev.events = 0;
  if (!c.peer_closed) ev.events |= EPOLLIN | EPOLLRDHUP;
  if (c.want_write) ev.events |= EPOLLOUT;
  ev.data.fd = c.fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void TestBackend::close_connection(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  connections_.erase(fd);
}

std::string TestBackend::stats_json() const {
  nlohmann::json j;
  j["name"] = name_;
  j["requests"] = counters_.http_requests;
  j["http_connections"] = counters_.http_connections;
  j["tcp_connections"] = counters_.tcp_connections;
  j["udp_datagrams"] = counters_.udp_datagrams;
  j["open_connections"] = connections_.size();
  return j.dump();
}

std::string TestBackend::respond(Connection& c, const Request& req, int& delay_ms) {
  int status = 200;
  std::string body = name_ + "\n";
  std::string content_type = "text/plain";
  if (req.path == "/__stats") {
    body = stats_json() + "\n";
    content_type = "application/json";
  } else {
    counters_.http_requests++;
    if (auto s = query_int(req.query, "status"); s && *s >= 100 && *s <= 599) status = *s;
    if (auto d = query_int(req.query, "delay_ms"); d && *d >= 0) delay_ms = *d;
    if (req.path.starts_with("/echo")) {
      nlohmann::json j;
      j["backend"] = name_;
      j["method"] = req.method;
      j["path"] = req.path;
      j["query"] = req.query;
      j["version"] = req.version;
      j["headers"] = nlohmann::json::object();
      for (const auto& [k, v] : req.headers) {
        // Repeated headers are joined as HTTP allows (RFC 9110 5.3).
        auto& slot = j["headers"][k];
        slot = slot.is_null() ? v : slot.get<std::string>() + ", " + v;
      }
      j["body_bytes"] = req.body.size();
      j["peer"] = c.peer.to_string();
      j["connection"] = c.serial;
      j["local"] = c.local.to_string();
      body = j.dump() + "\n";
      content_type = "application/json";
    }
  }
  const bool has_body = req.method != "HEAD" && status != 204 && status != 304 && status >= 200;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
                     "\r\nx-backend: " + name_ + "\r\ncontent-type: " + content_type +
                     "\r\ncontent-length: " + std::to_string(has_body ? body.size() : 0) + "\r\n";
  if (!req.keep_alive) head += "connection: close\r\n";
  head += "\r\n";
  if (has_body) head += body;
  return head;
}

void TestBackend::process_http(Connection& c) {
  while (!c.waiting_for_delay && !c.close_after_flush && !c.in.empty()) {
    Request req;
    size_t consumed = 0;
    const ParseResult r = parse_request(c.in, req, consumed);
    if (r == ParseResult::NeedMore) return;
    if (r != ParseResult::Complete) {
      const int status = r == ParseResult::TooLarge ? 431 : 400;
      queue_output(c, "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
                          "\r\nx-backend: " + name_ + "\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      c.close_after_flush = true;
      return;
    }
    c.in.erase(0, consumed);
    int delay_ms = default_delay_ms_;
    std::string response = respond(c, req, delay_ms);
    if (!req.keep_alive) c.close_after_flush = true;
    if (delay_ms > 0 && req.path != "/__stats") {
      c.waiting_for_delay = true;
      c.delayed_response = std::move(response);
      delays_.push({Clock::now() + std::chrono::milliseconds(delay_ms), c.fd, c.serial});
      return;
    }
    queue_output(c, response);
  }
}

void TestBackend::on_readable(Connection& c) {
  char buf[16384];
  while (true) {
    const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (c.http) {
        c.in.append(buf, static_cast<size_t>(n));
      } else {
        queue_output(c, std::string_view(buf, static_cast<size_t>(n)));
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {
      c.out.clear();
      c.close_after_flush = true;
      break;
    }
    // EOF: the peer may still await answers to what it sent (a half-close
    // after the last request), so answer those, then close.
    c.peer_closed = true;
    update_interest(c);
    break;
  }
  if (c.http) process_http(c);
}

void TestBackend::fire_due_delays() {
  const auto now = Clock::now();
  while (!delays_.empty() && delays_.top().due <= now) {
    const DelayedResponse d = delays_.top();
    delays_.pop();
    auto it = connections_.find(d.fd);
    if (it == connections_.end() || it->second->serial != d.serial) continue;
    Connection& c = *it->second;
    c.waiting_for_delay = false;
    queue_output(c, c.delayed_response);
    c.delayed_response.clear();
    process_http(c);
    if (c.done()) close_connection(c.fd);
  }
}

int TestBackend::next_timeout_ms() const {
  if (delays_.empty()) return -1;
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(delays_.top().due - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, wait.count() + 1));
}

int TestBackend::run() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  epoll_event sev{};
  sev.events = EPOLLIN;
  sev.data.fd = sig_fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sig_fd, &sev);
  for (const auto& l : listening_) std::fprintf(stderr, "sluice-test-backend %s: %s\n", name_.c_str(), l.c_str());
  std::vector<epoll_event> events(1024);
  bool running = true;
  while (running) {
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), next_timeout_ms());
    if (n < 0 && errno != EINTR) {
      std::perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == sig_fd) {
        running = false;
        continue;
      }
      if (auto l = listeners_.find(fd); l != listeners_.end()) {
        if (l->second == Listener::Udp) {
          serve_udp(fd);
        } else {
          accept_all(fd, l->second);
        }
        continue;
      }
      auto it = connections_.find(fd);
      if (it == connections_.end()) continue;
      Connection& c = *it->second;
      if ((events[i].events & (EPOLLHUP | EPOLLERR)) && c.peer_closed) {
        // Both directions are gone (or reset): nothing queued or delayed can
        // be delivered, and HUP would be reported on every wait until closed.
        close_connection(fd);
        continue;
      }
      if (events[i].events & EPOLLOUT) flush(c);
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c);
      if (c.done()) close_connection(fd);
    }
    fire_due_delays();
  }
  for (auto& [fd, kind] : listeners_) close(fd);
  std::vector<int> open;
  for (auto& [fd, c] : connections_) open.push_back(fd);
  for (int fd : open) close_connection(fd);
  close(sig_fd);
  close(epoll_fd_);
  std::fprintf(stderr, "sluice-test-backend %s: exiting on signal: %s\n", name_.c_str(), stats_json().c_str());
  return 0;
}

std::vector<uint16_t> parse_ports(const std::string& list, const char* option) {
  std::vector<uint16_t> ports;
  std::string_view rest = list;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view p = rest.substr(0, comma);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535) {
      throw CLI::ValidationError(option, "'" + std::string(p) + "' is not a port (1-65535)");
    }
    ports.push_back(static_cast<uint16_t>(v));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return ports;
}

void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice-test-backend: HTTP/TCP/UDP upstream for sluice tests"};
  std::string name;
  std::string http_ports, tcp_ports, udp_ports;
  std::vector<std::string> binds;
  int delay_ms = 0;
  app.add_option("--name", name, "backend name returned in x-backend, TCP greeting and UDP replies")->required();
  app.add_option("--http", http_ports, "HTTP/1.1 ports, comma-separated");
  app.add_option("--tcp", tcp_ports, "TCP greeting+echo ports, comma-separated");
  app.add_option("--udp", udp_ports, "UDP ports, comma-separated");
  app.add_option("--bind", binds, "addresses to bind (repeatable or comma-separated; default 0.0.0.0 and ::)")
      ->delimiter(',');
  app.add_option("--delay-ms", delay_ms, "delay every HTTP response by this many ms")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  if (http_ports.empty() && tcp_ports.empty() && udp_ports.empty()) {
    std::fprintf(stderr, "sluice-test-backend: give at least one of --http, --tcp, --udp\n");
    return 2;
  }
  raise_fd_limit();
  const bool default_bind = binds.empty();
  if (default_bind) binds = {"0.0.0.0", "::"};
  TestBackend backend(name, delay_ms);
  try {
    const std::pair<const std::string*, Listener> groups[] = {
        {&http_ports, Listener::Http}, {&tcp_ports, Listener::Tcp}, {&udp_ports, Listener::Udp}};
    for (const auto& [list, kind] : groups) {
      if (list->empty()) continue;
      for (uint16_t port : parse_ports(*list, "--http/--tcp/--udp")) {
        for (const auto& b : binds) {
          auto addr = SocketAddress::from_host(b, port);
          if (!addr) {
            std::fprintf(stderr, "sluice-test-backend: --bind '%s' is not a numeric IPv4/IPv6 address\n", b.c_str());
            return 2;
          }
          std::string error;
          if (!backend.listen_on(*addr, kind, error)) {
            // The default v6 wildcard is optional: a namespace may have IPv6 off.
            if (default_bind && addr->family() == AF_INET6) {
              std::fprintf(stderr, "sluice-test-backend: note: %s (IPv6 skipped)\n", error.c_str());
              continue;
            }
            std::fprintf(stderr, "sluice-test-backend: %s\n", error.c_str());
            return 1;
          }
        }
      }
    }
  } catch (const CLI::ValidationError& e) {
    std::fprintf(stderr, "sluice-test-backend: %s\n", e.what());
    return 2;
  }
  return backend.run();
}
