#include "admin/admin_server.h"

#include <utility>  // boost 1.74 asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <poll.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>

namespace sluice::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::pair<std::string, unsigned short> split_host_port(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("expected [IPv6]:PORT, got '" + text + "'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("expected HOST:PORT, got '" + text + "'");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) host = "127.0.0.1";
  if (host == "localhost") host = "127.0.0.1";
  unsigned long n = 0;
  try {
    size_t used = 0;
    n = std::stoul(port, &used);
    if (used != port.size() || n > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    throw std::invalid_argument("bad port '" + port + "' in '" + text + "'");
  }
  return {host, static_cast<unsigned short>(n)};
}

namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

AdminRequest to_admin_request(const http::request<http::string_body>& req) {
  AdminRequest out;
  out.method = std::string(req.method_string());
  std::string_view target(req.target().data(), req.target().size());
  auto q = target.find('?');
  out.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      auto eq = pair.find('=');
      out.query[percent_decode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      rest = rest.substr(amp + 1);
    }
  }
  out.body = req.body();
  return out;
}

}  // namespace

struct AdminServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::map<std::string, AdminHandler> handlers;
  std::thread thread;
  std::atomic<bool> stopping{false};

  AdminResponse dispatch(const AdminRequest& req) {
    auto it = handlers.find(req.path);
    if (it == handlers.end()) {
      AdminResponse r;
      r.status = 404;
      r.body = "no such admin endpoint: " + req.path + "\navailable:\n";
      for (const auto& [path, _] : handlers) r.body += "  " + path + "\n";
      return r;
    }
    try {
      return it->second(req);
    } catch (const std::exception& e) {
      return AdminResponse{500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
    }
  }

  // Each connection gets its own short-lived thread and one request: the
  // admin API's clients (sluicectl, scrapers) are few, and one client that
  // holds a keep-alive connection or never sends must not block the others.
  static constexpr int kMaxConnections = 32;
  static constexpr int kReadTimeoutMs = 5000;
  std::mutex conn_mu;
  std::condition_variable conn_cv;
  int connections = 0;

  // Waits until the socket has bytes (or the peer closed); false on timeout.
  // Asio's synchronous reads ignore SO_RCVTIMEO, so the deadline is a poll().
  static bool wait_readable(tcp::socket& socket) {
    pollfd pfd{socket.native_handle(), POLLIN, 0};
    return ::poll(&pfd, 1, kReadTimeoutMs) == 1;
  }

  void serve_connection(tcp::socket socket) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    while (!parser.is_done()) {
      // read_some parses what is buffered before it reads the socket: only
      // wait for the socket when nothing unparsed is left.
      if (buffer.size() == 0 && !wait_readable(socket)) return;
      http::read_some(socket, buffer, parser, ec);
      if (ec) return;
    }
    auto& req = parser.get();
    AdminResponse r = dispatch(to_admin_request(req));
    http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
    res.set(http::field::server, "sluiced");
    res.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.keep_alive(false);
    res.body() = std::move(r.body);
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  void run() {
    while (!stopping.load()) {
      beast::error_code ec;
      tcp::socket socket{io};
      acceptor.accept(socket, ec);
      if (ec) {
        if (stopping.load()) break;
        continue;
      }
      std::unique_lock lock(conn_mu);
      conn_cv.wait(lock, [&] { return connections < kMaxConnections || stopping.load(); });
      if (stopping.load()) break;
      ++connections;
      lock.unlock();
      std::thread([this, s = std::move(socket)]() mutable {
        serve_connection(std::move(s));
        std::lock_guard done(conn_mu);
        --connections;
        conn_cv.notify_all();
      }).detach();
    }
    // Connection threads use this object: wait for them (each ends within
    // kReadTimeoutMs of its last byte).
    std::unique_lock lock(conn_mu);
    conn_cv.wait(lock, [&] { return connections == 0; });
  }
};

AdminServer::AdminServer(const std::string& listen) : impl_(std::make_unique<Impl>()) {
  auto [host, port] = split_host_port(listen);
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("admin: '" + host + "' is not an IP address");
  tcp::endpoint ep{addr, port};
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(64, ec);
  if (ec) throw std::runtime_error("admin: cannot listen on " + listen + ": " + ec.message());
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::handle(const std::string& path, AdminHandler handler) {
  impl_->handlers[path] = std::move(handler);
}

void AdminServer::start() {
  impl_->thread = std::thread([this] { impl_->run(); });
}

void AdminServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  beast::error_code ec;
  // shutdown() wakes the blocking accept(); close() alone does not on Linux.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  {
    std::lock_guard lock(impl_->conn_mu);
    impl_->conn_cv.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->acceptor.close(ec);
}

std::string AdminServer::local_address() const {
  auto ep = impl_->acceptor.local_endpoint();
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace sluice::admin
