// sluice-loadgen: bounded load that reports which backend answered. Every mode
// stops after --count (or --duration-s) and never runs past --timeout-s; the
// result is one JSON object on stdout.
//   tcp   N connections, C at a time; reads the backend's "NAME\n" greeting.
//   udp   N datagrams, each from a fresh socket (a new flow); reads "NAME".
//   http  N requests over C connections (--keepalive reuses them); tallies
//         the x-backend header and status codes.
//   hold  K long-lived connections that ping every --interval-ms and check the
//         echo; a reset or a different backend on reconnect is recorded. The
//         report is printed on SIGUSR1 and at the end (affinity tests).
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
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "netio/socket_address.h"

namespace {

using sluice::tools::SocketAddress;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct Options {
  SocketAddress target;
  std::optional<SocketAddress> source;
  uint64_t count = 1000;
  uint32_t concurrency = 50;
  uint32_t hold_ms = 0;
  double timeout_s = 30;           // hard limit for the whole run
  uint32_t conn_timeout_ms = 5000; // per connection / request / datagram
  // http
  std::string host_header;
  std::string path = "/";
  std::string method = "GET";
  std::vector<std::string> headers;
  bool keepalive = false;
  // hold
  uint32_t connections = 10;
  double duration_s = 10;
  uint32_t interval_ms = 200;
};

// Errors by what a user debugging a data plane needs to tell apart. A
// client-side shortage (no free ephemeral port, no file descriptor) is named
// apart from the data plane's failures, and every other errno is listed by
// name under "other_errnos" so a failed run says what happened.
struct ErrorTally {
  uint64_t reset = 0, timeout = 0, refused = 0, closed = 0, no_local_port = 0, other = 0;
  std::map<std::string, uint64_t> other_errnos;

  void count_errno(int err) {
    if (err == ECONNRESET || err == EPIPE) {
      ++reset;
    } else if (err == ECONNREFUSED) {
      ++refused;
    } else if (err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH) {
      ++timeout;
    } else if (err == EADDRNOTAVAIL) {
      ++no_local_port;   // connect(): every local port to this destination busy (TIME_WAIT)
    } else {
      ++other;
      const char* name = strerrorname_np(err);
      ++other_errnos[name != nullptr ? name : std::to_string(err)];
    }
  }
  uint64_t total() const { return reset + timeout + refused + closed + no_local_port + other; }
  Json to_json() const {
    return Json{{"reset", reset},   {"timeout", timeout},           {"refused", refused},
                {"closed", closed}, {"no_local_port", no_local_port}, {"other", other}};
  }
  Json errnos_json() const { return Json(other_errnos); }
};

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

// A non-blocking socket connecting (TCP) or connected (UDP) to the target.
// Returns -1 with errno set on immediate failure.
int open_socket(const Options& o, int type) {
  const int fd = socket(o.target.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (type == SOCK_STREAM) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (o.source) {
    SocketAddress src = *o.source;
    if (bind(fd, src.get(), src.length) != 0) {
      const int err = errno;
      close(fd);
      errno = err;
      return -1;
    }
  }
  if (connect(fd, o.target.get(), o.target.length) != 0 && errno != EINPROGRESS) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

class Epoll {
 public:
  Epoll() : fd_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~Epoll() { close(fd_); }
  void add(int fd, uint32_t events) { ctl(EPOLL_CTL_ADD, fd, events); }
  void modify(int fd, uint32_t events) { ctl(EPOLL_CTL_MOD, fd, events); }
  void remove(int fd) { epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }
  int wait(std::vector<epoll_event>& events, int timeout_ms) {
    const int n = epoll_wait(fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    return n < 0 ? 0 : n;
  }

 private:
  void ctl(int op, int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(fd_, op, fd, &ev);
  }
  int fd_;
};

// Reads what is available; returns bytes read, 0 on EOF, -1 with errno (EAGAIN: nothing yet).
ssize_t read_some(int fd, std::string& into) {
  char buf[16384];
  ssize_t total = 0;
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      into.append(buf, static_cast<size_t>(n));
      total += n;
      continue;
    }
    if (n == 0) return total > 0 ? total : 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && total > 0) return total;
    return -1;
  }
}

// ---------------------------------------------------------------- tcp / hold

struct TcpConn {
  enum class State { Connecting, ReadingName, Holding, Pinging };
  int fd = -1;
  State state = State::Connecting;
  Clock::time_point deadline;
  std::string in;
  // hold mode
  size_t slot = 0;
};

struct HoldRecord {
  std::string local;
  std::vector<std::string> backends_seen;   // first is the original backend
  uint64_t echoes = 0, resets = 0, echo_timeouts = 0, reconnects = 0;
  bool connected = false;
};

class TcpRun {
 public:
  explicit TcpRun(const Options& o) : o_(o) {}

  Json run_count() {
    const auto stop_at = Clock::now() + to_duration(o_.timeout_s);
    while ((started_ < o_.count || !conns_.empty()) && Clock::now() < stop_at) {
      while (started_ < o_.count && conns_.size() < o_.concurrency) start(0);
      poll_once(stop_at);
    }
    errors_.timeout += conns_.size();   // still open at the hard limit
    for (auto& [fd, c] : conns_) close(fd);
    conns_.clear();
    Json j;
    j["backends"] = backends_;
    j["errors"] = errors_.to_json();
    j["other_errnos"] = errors_.errnos_json();
    j["total"] = completed_ + errors_.total();
    j["requested"] = o_.count;
    j["elapsed_s"] = elapsed();
    return j;
  }

  Json run_hold(int signal_fd) {
    hold_mode_ = true;
    records_.resize(o_.connections);
    const auto end_at = Clock::now() + to_duration(std::min(o_.duration_s, o_.timeout_s));
    signal_fd_ = signal_fd;
    epoll_.add(signal_fd, EPOLLIN);
    for (size_t i = 0; i < o_.connections; ++i) start(i);
    auto next_ping = Clock::now() + std::chrono::milliseconds(o_.interval_ms);
    while (Clock::now() < end_at) {
      poll_once(std::min(end_at, next_ping));
      if (Clock::now() >= next_ping) {
        ping_all();
        next_ping += std::chrono::milliseconds(o_.interval_ms);
        // Reconnect what dropped (once per interval), so a flow that moved
        // shows up as a backend change.
        for (size_t i = 0; i < records_.size(); ++i) {
          if (!records_[i].connected && !slot_busy(i)) {
            records_[i].reconnects++;
            start(i);
          }
        }
      }
    }
    for (auto& [fd, c] : conns_) close(fd);
    conns_.clear();
    return hold_report();
  }

 private:
  static std::chrono::steady_clock::duration to_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - began_).count(); }

  bool slot_busy(size_t slot) const {
    for (const auto& [fd, c] : conns_) {
      if (c.slot == slot) return true;
    }
    return false;
  }

  void start(size_t slot) {
    ++started_;
    const int fd = open_socket(o_, SOCK_STREAM);
    if (fd < 0) {
      if (!hold_mode_) errors_.count_errno(errno);
      return;   // hold mode retries the slot on the next interval
    }
    TcpConn c;
    c.fd = fd;
    c.slot = slot;
    c.deadline = Clock::now() + std::chrono::milliseconds(o_.conn_timeout_ms);
    conns_[fd] = c;
    epoll_.add(fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP);
  }

  void finish(int fd) {
    epoll_.remove(fd);
    close(fd);
    conns_.erase(fd);
  }

  void fail(TcpConn& c, int err, bool eof) {
    if (hold_mode_) {
      HoldRecord& r = records_[c.slot];
      r.connected = false;
      if (err == ECONNRESET || err == EPIPE || eof) r.resets++;
      if (err == ETIMEDOUT) r.echo_timeouts++;
    } else if (eof) {
      errors_.closed++;
    } else {
      errors_.count_errno(err);
    }
    finish(c.fd);
  }

  void on_event(TcpConn& c, uint32_t events) {
    if (c.state == TcpConn::State::Connecting) {
      const int err = socket_error(c.fd);
      if (err != 0) return fail(c, err, false);
      if (!(events & (EPOLLOUT | EPOLLIN))) return;
      c.state = TcpConn::State::ReadingName;
      epoll_.modify(c.fd, EPOLLIN | EPOLLRDHUP);
    }
    const ssize_t n = read_some(c.fd, c.in);
    if (n < 0 && errno != EAGAIN) return fail(c, errno, false);
    const bool eof = n == 0;
    if (c.state == TcpConn::State::ReadingName) {
      const size_t nl = c.in.find('\n');
      if (nl == std::string::npos) {
        if (eof) fail(c, 0, true);
        return;
      }
      const std::string name = c.in.substr(0, nl);
      c.in.erase(0, nl + 1);
      if (hold_mode_) {
        HoldRecord& r = records_[c.slot];
        if (r.backends_seen.empty() || r.backends_seen.back() != name) r.backends_seen.push_back(name);
        r.connected = true;
        sockaddr_storage local{};
        socklen_t len = sizeof local;
        getsockname(c.fd, reinterpret_cast<sockaddr*>(&local), &len);
        r.local = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&local), len).to_string();
        c.state = TcpConn::State::Holding;
        c.deadline = Clock::time_point::max();
        return;
      }
      backends_[name] = backends_.value(name, 0) + 1;
      ++completed_;
      if (o_.hold_ms == 0) return finish(c.fd);
      c.state = TcpConn::State::Holding;
      c.deadline = Clock::now() + std::chrono::milliseconds(o_.hold_ms);
      if (eof) finish(c.fd);   // counted: the greeting arrived; the early close is the backend's business
      return;
    }
    if (c.state == TcpConn::State::Pinging && !c.in.empty()) {
      records_[c.slot].echoes += std::count(c.in.begin(), c.in.end(), 'p');
      c.in.clear();
      c.state = TcpConn::State::Holding;
      c.deadline = Clock::time_point::max();
    }
    if (eof) {
      if (hold_mode_) return fail(c, 0, true);
      finish(c.fd);
    }
  }

  void ping_all() {
    for (auto& [fd, c] : conns_) {
      if (c.state != TcpConn::State::Holding) continue;
      if (send(fd, "p", 1, MSG_NOSIGNAL) != 1) continue;   // the error surfaces on the next read
      c.state = TcpConn::State::Pinging;
      c.deadline = Clock::now() + std::chrono::milliseconds(std::max<uint32_t>(o_.interval_ms, 1000));
    }
  }

  void poll_once(Clock::time_point until) {
    const auto now = Clock::now();
    const int wait_ms = static_cast<int>(std::clamp<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count(), 0, 10));
    const int n = epoll_.wait(events_, wait_ms);
    for (int i = 0; i < n; ++i) {
      const int fd = events_[i].data.fd;
      if (fd == signal_fd_) {
        signalfd_siginfo info;
        while (read(signal_fd_, &info, sizeof info) == sizeof info) {
        }
        std::printf("%s\n", hold_report().dump().c_str());
        std::fflush(stdout);
        continue;
      }
      auto it = conns_.find(fd);
      if (it != conns_.end()) on_event(it->second, events_[i].events);
    }
    const auto later = Clock::now();
    std::vector<int> expired;
    for (auto& [fd, c] : conns_) {
      if (later >= c.deadline) expired.push_back(fd);
    }
    for (int fd : expired) {
      TcpConn& c = conns_.at(fd);
      if (c.state == TcpConn::State::Holding && !hold_mode_) {
        finish(fd);   // held for --hold-ms: done
      } else {
        fail(c, ETIMEDOUT, false);
      }
    }
  }

  Json hold_report() const {
    Json conns = Json::array();
    uint64_t resets = 0, changed = 0, timeouts = 0;
    Json backends = Json::object();
    for (size_t i = 0; i < records_.size(); ++i) {
      const HoldRecord& r = records_[i];
      const std::string first = r.backends_seen.empty() ? "" : r.backends_seen.front();
      conns.push_back({{"id", i},
                       {"local", r.local},
                       {"backend", first},
                       {"backends_seen", r.backends_seen},
                       {"echoes", r.echoes},
                       {"resets", r.resets},
                       {"echo_timeouts", r.echo_timeouts},
                       {"connected", r.connected}});
      resets += r.resets;
      timeouts += r.echo_timeouts;
      changed += r.backends_seen.size() > 1;
      if (!first.empty()) backends[first] = backends.value(first, 0) + 1;
    }
    return Json{{"connections", conns},
                {"backends", backends},
                {"summary",
                 {{"connections", records_.size()},
                  {"resets", resets},
                  {"echo_timeouts", timeouts},
                  {"changed_backend", changed}}},
                {"elapsed_s", elapsed()}};
  }

  const Options& o_;
  Epoll epoll_;
  std::vector<epoll_event> events_ = std::vector<epoll_event>(1024);
  std::unordered_map<int, TcpConn> conns_;
  uint64_t started_ = 0, completed_ = 0;
  ErrorTally errors_;
  Json backends_ = Json::object();
  bool hold_mode_ = false;
  int signal_fd_ = -1;
  std::vector<HoldRecord> records_;
  Clock::time_point began_ = Clock::now();
};

// ---------------------------------------------------------------- udp

Json run_udp(const Options& o) {
  Epoll epoll;
  std::vector<epoll_event> events(1024);
  std::unordered_map<int, Clock::time_point> inflight;
  Json backends = Json::object();
  ErrorTally errors;
  uint64_t started = 0, completed = 0;
  const auto began = Clock::now();
  const auto stop_at = began + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
  auto drop = [&](int fd) {
    epoll.remove(fd);
    close(fd);
    inflight.erase(fd);
  };
  while ((started < o.count || !inflight.empty()) && Clock::now() < stop_at) {
    while (started < o.count && inflight.size() < o.concurrency) {
      ++started;
      const int fd = open_socket(o, SOCK_DGRAM);
      if (fd < 0 || send(fd, "ping", 4, 0) != 4) {
        errors.count_errno(errno);
        if (fd >= 0) close(fd);
        continue;
      }
      inflight[fd] = Clock::now() + std::chrono::milliseconds(o.conn_timeout_ms);
      epoll.add(fd, EPOLLIN);
    }
    const int n = epoll.wait(events, 10);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      char buf[2048];
      const ssize_t got = recv(fd, buf, sizeof buf, 0);
      if (got < 0 && errno == EAGAIN) continue;
      if (got < 0) {
        errors.count_errno(errno);   // ECONNREFUSED: an ICMP port unreachable came back
      } else {
        std::string name(buf, static_cast<size_t>(got));
        while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
        backends[name] = backends.value(name, 0) + 1;
        ++completed;
      }
      drop(fd);
    }
    const auto now = Clock::now();
    std::vector<int> expired;
    for (const auto& [fd, due] : inflight) {
      if (now >= due) expired.push_back(fd);
    }
    for (int fd : expired) {
      errors.timeout++;
      drop(fd);
    }
  }
  errors.timeout += inflight.size();
  std::vector<int> left;
  for (const auto& [fd, due] : inflight) left.push_back(fd);
  for (int fd : left) drop(fd);
  return Json{{"backends", backends},
              {"errors", errors.to_json()},
              {"other_errnos", errors.errnos_json()},
              {"total", completed + errors.total()},
              {"requested", o.count},
              {"elapsed_s", std::chrono::duration<double>(Clock::now() - began).count()}};
}

// ---------------------------------------------------------------- http

// Response framing as RFC 9112 section 6.3 orders it: no body for HEAD/1xx/204/304,
// chunked, Content-Length, else until close.
struct ResponseReader {
  enum class Result { NeedMore, Done, Bad };
  int status = 0;
  std::string backend;
  bool close_after = false;
  bool head_done = false;
  bool chunked = false;
  bool until_close = false;
  size_t body_left = 0;
  size_t pos = 0;   // parse position in the buffer

  static std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
  }
  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  }

  Result feed(std::string& buf, bool head_request, bool eof) {
    if (!head_done) {
      const size_t end = buf.find("\r\n\r\n");
      if (end == std::string::npos) return eof ? Result::Bad : Result::NeedMore;
      std::string_view head(buf.data(), end);
      const size_t le = head.find("\r\n");
      std::string_view line = head.substr(0, le);
      if (!line.starts_with("HTTP/1.") || line.size() < 12) return Result::Bad;
      std::from_chars(line.data() + 9, line.data() + 12, status);
      close_after = line.starts_with("HTTP/1.0");
      std::string_view rest = le == std::string_view::npos ? "" : head.substr(le + 2);
      bool has_length = false;
      while (!rest.empty()) {
        const size_t e = rest.find("\r\n");
        std::string_view h = rest.substr(0, e);
        rest = e == std::string_view::npos ? "" : rest.substr(e + 2);
        const size_t colon = h.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string name = lower(h.substr(0, colon));
        const std::string_view value = trim(h.substr(colon + 1));
        if (name == "x-backend") {
          backend = value;
        } else if (name == "content-length") {
          std::from_chars(value.data(), value.data() + value.size(), body_left);
          has_length = true;
        } else if (name == "transfer-encoding") {
          chunked = lower(value).find("chunked") != std::string::npos;
        } else if (name == "connection") {
          const std::string v = lower(value);
          if (v.find("close") != std::string::npos) close_after = true;
          if (v.find("keep-alive") != std::string::npos) close_after = false;
        }
      }
      head_done = true;
      buf.erase(0, end + 4);
      const bool no_body = head_request || status / 100 == 1 || status == 204 || status == 304;
      if (no_body) {
        chunked = false;
        body_left = 0;
      } else if (!chunked && !has_length) {
        until_close = true;
        close_after = true;
      }
    }
    if (until_close) {
      buf.clear();
      return eof ? Result::Done : Result::NeedMore;
    }
    if (!chunked) {
      const size_t take = std::min(body_left, buf.size());
      buf.erase(0, take);
      body_left -= take;
      if (body_left == 0) return Result::Done;
      return eof ? Result::Bad : Result::NeedMore;
    }
    while (true) {
      if (body_left > 0) {
        const size_t take = std::min(body_left, buf.size());
        buf.erase(0, take);
        body_left -= take;
        if (body_left > 0) return eof ? Result::Bad : Result::NeedMore;
      }
      const size_t le = buf.find("\r\n");
      if (le == std::string::npos) return eof ? Result::Bad : Result::NeedMore;
      if (pos == 1) {   // expecting the CRLF that ends a chunk's data
        buf.erase(0, le + 2);
        pos = 0;
        continue;
      }
      if (pos == 2) {   // trailers until an empty line
        const bool empty = le == 0;
        buf.erase(0, le + 2);
        if (empty) return Result::Done;
        continue;
      }
      size_t size = 0;
      std::string_view size_text(buf.data(), le);
      size_text = size_text.substr(0, size_text.find(';'));
      auto [p, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
      (void)p;
      if (ec != std::errc()) return Result::Bad;
      buf.erase(0, le + 2);
      if (size == 0) {
        pos = 2;
      } else {
        body_left = size;
        pos = 1;
      }
    }
  }
};

struct HttpConn {
  int fd = -1;
  bool connected = false;
  std::string out, in;
  ResponseReader reader;
  bool awaiting = false;
  Clock::time_point deadline;
};

class HttpRun {
 public:
  explicit HttpRun(const Options& o) : o_(o) {
    request_ = o.method + " " + o.path + " HTTP/1.1\r\nHost: " +
               (o.host_header.empty() ? o.target.to_string() : o.host_header) + "\r\n";
    for (const auto& h : o.headers) request_ += h + "\r\n";
    request_ += "user-agent: sluice-loadgen\r\n";
    if (!o.keepalive) request_ += "connection: close\r\n";
    request_ += "\r\n";
  }

  Json run() {
    const auto stop_at = began_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.timeout_s));
    while ((started_ < o_.count || !conns_.empty()) && Clock::now() < stop_at) {
      while (started_ < o_.count && conns_.size() < o_.concurrency) {
        if (!open_connection()) continue;
      }
      poll_once();
    }
    errors_.timeout += in_flight();
    for (auto& [fd, c] : conns_) close(fd);
    conns_.clear();
    return Json{{"backends", backends_},
                {"status", statuses_},
                {"errors", errors_.to_json()},
                {"other_errnos", errors_.errnos_json()},
                {"total", completed_ + errors_.total()},
                {"requested", o_.count},
                {"connections_opened", opened_},
                {"elapsed_s", std::chrono::duration<double>(Clock::now() - began_).count()}};
  }

 private:
  uint64_t in_flight() const {
    uint64_t n = 0;
    for (const auto& [fd, c] : conns_) n += c.awaiting;
    return n;
  }

  bool open_connection() {
    const int fd = open_socket(o_, SOCK_STREAM);
    ++opened_;
    if (fd < 0) {
      ++started_;
      errors_.count_errno(errno);
      return false;
    }
    HttpConn c;
    c.fd = fd;
    conns_[fd] = std::move(c);
    send_request(conns_[fd]);
    epoll_.add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    return true;
  }

  void send_request(HttpConn& c) {
    ++started_;
    c.out = request_;
    c.in.clear();
    c.reader = ResponseReader{};
    c.awaiting = true;
    c.deadline = Clock::now() + std::chrono::milliseconds(o_.conn_timeout_ms);
    if (c.connected) flush(c);
  }

  void flush(HttpConn& c) {
    while (!c.out.empty()) {
      const ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0) return;   // EAGAIN waits for EPOLLOUT; errors surface on read
      c.out.erase(0, static_cast<size_t>(n));
    }
    epoll_.modify(c.fd, EPOLLIN | EPOLLRDHUP);
  }

  void drop(HttpConn& c) {
    epoll_.remove(c.fd);
    close(c.fd);
    conns_.erase(c.fd);
  }

  void fail(HttpConn& c, int err, bool eof) {
    if (c.awaiting) {
      if (eof) {
        errors_.closed++;
      } else {
        errors_.count_errno(err);
      }
    }
    drop(c);
  }

  void on_event(HttpConn& c, uint32_t events) {
    if (!c.connected) {
      const int err = socket_error(c.fd);
      if (err != 0) return fail(c, err, false);
      if (!(events & (EPOLLOUT | EPOLLIN))) return;
      c.connected = true;
    }
    if (!c.out.empty()) flush(c);
    const ssize_t n = read_some(c.fd, c.in);
    if (n < 0 && errno != EAGAIN) return fail(c, errno, false);
    const bool eof = n == 0;
    if (!c.awaiting) {
      if (eof) drop(c);
      return;
    }
    const auto r = c.reader.feed(c.in, o_.method == "HEAD", eof);
    if (r == ResponseReader::Result::NeedMore) return;
    if (r == ResponseReader::Result::Bad) {
      if (eof && c.in.empty() && !c.reader.head_done) return fail(c, 0, true);
      errors_.other++;
      c.awaiting = false;
      return drop(c);
    }
    c.awaiting = false;
    ++completed_;
    const std::string name = c.reader.backend.empty() ? "(none)" : c.reader.backend;
    backends_[name] = backends_.value(name, 0) + 1;
    const std::string code = std::to_string(c.reader.status);
    statuses_[code] = statuses_.value(code, 0) + 1;
    if (o_.keepalive && !c.reader.close_after && !eof && started_ < o_.count) {
      send_request(c);
    } else {
      drop(c);
    }
  }

  void poll_once() {
    const int n = epoll_.wait(events_, 10);
    for (int i = 0; i < n; ++i) {
      auto it = conns_.find(events_[i].data.fd);
      if (it != conns_.end()) on_event(it->second, events_[i].events);
    }
    const auto now = Clock::now();
    std::vector<int> expired;
    for (auto& [fd, c] : conns_) {
      if (c.awaiting && now >= c.deadline) expired.push_back(fd);
    }
    for (int fd : expired) fail(conns_.at(fd), ETIMEDOUT, false);
  }

  const Options& o_;
  std::string request_;
  Epoll epoll_;
  std::vector<epoll_event> events_ = std::vector<epoll_event>(1024);
  std::unordered_map<int, HttpConn> conns_;
  uint64_t started_ = 0, completed_ = 0, opened_ = 0;
  ErrorTally errors_;
  Json backends_ = Json::object(), statuses_ = Json::object();
  Clock::time_point began_ = Clock::now();
};

// "http://HOST:PORT/path?query" with a numeric host; the port defaults to 80.
bool parse_url(const std::string& url, Options& o, std::string& error) {
  constexpr std::string_view scheme = "http://";
  if (!std::string_view(url).starts_with(scheme)) {
    error = "--url '" + url + "' must start with http://";
    return false;
  }
  std::string_view rest = std::string_view(url).substr(scheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  o.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const bool bracketed = authority.starts_with("[");
  const size_t close_bracket = authority.find(']');
  const size_t colon = authority.rfind(':');
  const bool has_port = colon != std::string_view::npos && (!bracketed || colon > close_bracket);
  std::string_view host = has_port ? authority.substr(0, colon) : authority;
  uint16_t port = 80;
  if (has_port) {
    std::string_view p = authority.substr(colon + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535) {
      error = "--url '" + url + "': bad port '" + std::string(p) + "'";
      return false;
    }
    port = static_cast<uint16_t>(v);
  }
  auto addr = SocketAddress::from_host(host, port);
  if (!addr) {
    error = "--url '" + url + "': host '" + std::string(host) + "' must be a numeric IPv4 or [IPv6] address (use --host for the Host header)";
    return false;
  }
  o.target = *addr;
  if (o.host_header.empty()) o.host_header = std::string(authority);
  return true;
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
  CLI::App app{"sluice-loadgen: bounded TCP/UDP/HTTP load that tallies which backend answered"};
  app.require_subcommand(1);
  Options o;
  std::string connect, source, url;

  auto add_common = [&](CLI::App* sub, bool needs_connect) {
    if (needs_connect) sub->add_option("--connect", connect, "target HOST:PORT or [V6]:PORT")->required();
    sub->add_option("--source", source, "bind this local address before connecting");
    sub->add_option("--timeout-s", o.timeout_s, "hard limit for the whole run, seconds")->capture_default_str();
    sub->add_option("--conn-timeout-ms", o.conn_timeout_ms, "per connection/request/datagram limit")
        ->capture_default_str();
  };
  CLI::App* tcp = app.add_subcommand("tcp", "N connections; read the backend's greeting line");
  add_common(tcp, true);
  tcp->add_option("--count", o.count, "connections to open")->capture_default_str();
  tcp->add_option("--concurrency", o.concurrency, "connections open at once")->capture_default_str()
      ->check(CLI::PositiveNumber);
  tcp->add_option("--hold-ms", o.hold_ms, "keep each connection open this long after the greeting");

  CLI::App* udp = app.add_subcommand("udp", "N datagrams, each from a new socket");
  add_common(udp, true);
  udp->add_option("--count", o.count, "datagrams (flows)")->capture_default_str();
  udp->add_option("--concurrency", o.concurrency, "in flight at once")->capture_default_str()
      ->check(CLI::PositiveNumber);

  CLI::App* http = app.add_subcommand("http", "N HTTP/1.1 requests; tally x-backend and status");
  add_common(http, false);
  http->add_option("--url", url, "http://HOST:PORT/path (numeric host)")->required();
  http->add_option("--count", o.count, "requests")->capture_default_str();
  http->add_option("--concurrency", o.concurrency, "connections")->capture_default_str()
      ->check(CLI::PositiveNumber);
  http->add_flag("--keepalive", o.keepalive, "reuse connections (default: one request per connection)");
  http->add_option("--method", o.method, "request method")->capture_default_str();
  http->add_option("--header,-H", o.headers, "extra request header 'name: value' (repeatable)");
  http->add_option("--host", o.host_header, "Host header (default: the URL's authority)");

  CLI::App* hold = app.add_subcommand("hold", "K long-lived connections checked for resets and backend changes");
  add_common(hold, true);
  hold->add_option("--connections", o.connections, "connections to hold")->capture_default_str()
      ->check(CLI::PositiveNumber);
  hold->add_option("--duration-s", o.duration_s, "how long to hold them")->capture_default_str();
  hold->add_option("--interval-ms", o.interval_ms, "ping period per connection")->capture_default_str()
      ->check(CLI::PositiveNumber);

  CLI11_PARSE(app, argc, argv);
  raise_fd_limit();

  if (!connect.empty()) {
    auto target = SocketAddress::parse_host_port(connect);
    if (!target) {
      std::fprintf(stderr, "sluice-loadgen: --connect '%s' is not HOST:PORT or [V6]:PORT with a numeric host\n",
                   connect.c_str());
      return 2;
    }
    o.target = *target;
  }
  if (!url.empty()) {
    std::string error;
    if (!parse_url(url, o, error)) {
      std::fprintf(stderr, "sluice-loadgen: %s\n", error.c_str());
      return 2;
    }
  }
  if (!source.empty()) {
    o.source = SocketAddress::from_host(source, 0);
    if (!o.source || o.source->family() != o.target.family()) {
      std::fprintf(stderr, "sluice-loadgen: --source '%s' is not a numeric address of the target's family\n",
                   source.c_str());
      return 2;
    }
  }
  // Block SIGUSR1 before any work so an early signal is not fatal; hold mode
  // reads it from a signalfd.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, nullptr);

  Json result;
  if (tcp->parsed()) {
    result = TcpRun(o).run_count();
  } else if (udp->parsed()) {
    result = run_udp(o);
  } else if (http->parsed()) {
    result = HttpRun(o).run();
  } else {
    const int sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    result = TcpRun(o).run_hold(sig_fd);
    close(sig_fd);
  }
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
