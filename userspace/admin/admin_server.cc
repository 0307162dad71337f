#include "admin/admin_server.h"

#include <utility>  // boost 1.74 asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <list>
#include <optional>
#include <stdexcept>
#include <thread>

namespace sluice::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

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


bool host_header_allowed(std::string_view host) {
  std::string_view name = host;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(1, close - 1);
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, std::string(name).c_str(), buf) != 1) return false;
  } else {
    const size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      name = host.substr(0, colon);
      port = host.substr(colon + 1);
      if (port.empty()) return false;
    }
    unsigned char buf[4];
    const bool is_localhost = name.size() == 9 && std::equal(name.begin(), name.end(), "localhost", [](char a, char b) {
                                return std::tolower(static_cast<unsigned char>(a)) == b;
                              });
    if (!is_localhost && inet_pton(AF_INET, std::string(name).c_str(), buf) != 1) return false;
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Every byte of the longer string is looked at, whatever the contents.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string read_token_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw std::runtime_error("admin token file " + path + ": " + std::strerror(errno));
  struct stat st {};
  std::string token;
  std::string problem;
  if (::fstat(fd, &st) != 0) {
    problem = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
  } else if ((st.st_mode & 077) != 0) {
    problem = "readable or writable by group or others (chmod 600 it)";
  } else {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && token.size() < 65536) token.append(buf, static_cast<size_t>(n));
    if (n < 0) problem = std::strerror(errno);
  }
  ::close(fd);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (problem.empty() && token.size() < 16) problem = "the token must be at least 16 bytes";
  if (problem.empty() && token.find_first_of(" \t\r\n") != std::string::npos) problem = "the token holds whitespace";
  if (!problem.empty()) throw std::runtime_error("admin token file " + path + ": " + problem);
  return token;
}

namespace {

// The Unix socket's file: its directory is created 0700 when missing and
// must not be writable by others when it exists (else someone could replace
// the socket); a socket left behind by a killed agent is removed, one that
// still answers belongs to a running agent and is an error.
void prepare_socket_path(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error("admin socket " + path + ": path longer than " +
                             std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  }
  const fs::path dir = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) throw std::runtime_error("admin socket directory " + dir.string() + ": " + std::strerror(errno));
    std::error_code ec;
    fs::create_directories(dir.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      throw std::runtime_error("admin socket directory " + dir.string() + ": cannot create: " + std::strerror(errno));
    }
    if (::stat(dir.c_str(), &st) != 0) throw std::runtime_error("admin socket directory " + dir.string() + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error("admin socket directory " + dir.string() + ": not a directory");
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    throw std::runtime_error("admin socket directory " + dir.string() + ": owned by uid " + std::to_string(st.st_uid) +
                             ", not by root or this process");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    throw std::runtime_error("admin socket directory " + dir.string() + ": writable by group or others");
  }
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) throw std::runtime_error("admin socket " + path + ": exists and is not a socket");
  asio::io_context io;
  local::socket probe(io);
  beast::error_code ec;
  probe.connect(local::endpoint(path), ec);
  if (!ec) throw std::runtime_error("admin socket " + path + ": another agent is serving it");
  ::unlink(path.c_str());
}

// A connection as the eviction list sees it. The list holds sessions still
// reading their request, oldest first; it is touched on the I/O thread only,
// and a session leaves it before it is destroyed.
struct Session {
  virtual ~Session() = default;
  virtual void close() = 0;
  std::list<Session*>* list = nullptr;
  std::list<Session*>::iterator at;
  void enlist(std::list<Session*>& l) {
    list = &l;
    at = l.insert(l.end(), this);
  }
  void unlist() {
    if (list != nullptr) list->erase(at);
    list = nullptr;
  }
};

}  // namespace

struct AdminServer::Impl {
  std::map<std::string, AdminHandler> handlers;
  std::string token;
  std::string socket_path;
  ino_t socket_inode = 0;
  std::atomic<bool> stopping{false};
  std::list<Session*> reading;   // see Session
  size_t open = 0;   // open connections (I/O thread only)

  asio::thread_pool handler_pool{kHandlerThreads};
  asio::io_context io;   // after what its pending handlers' sessions touch, so it is destroyed first
  std::optional<tcp::acceptor> tcp_acceptor;
  std::optional<local::acceptor> unix_acceptor;
  std::thread io_thread;

  AdminResponse dispatch(const AdminRequest& req) const {
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

  // The transport's own refusals, before any handler runs; nullopt to go on.
  std::optional<AdminResponse> screen(const http::request<http::string_body>& req, bool on_socket) const {
    if (on_socket) return std::nullopt;
    auto host = req.find(http::field::host);
    if (host == req.end() || !host_header_allowed(std::string_view(host->value().data(), host->value().size()))) {
      return AdminResponse{403, "text/plain; charset=utf-8",
                           "Host must be an IP address or localhost (DNS rebinding protection)\n"};
    }
    if (req.method() == http::verb::get) return std::nullopt;
    if (token.empty()) {
      return AdminResponse{403, "text/plain; charset=utf-8",
                           "the TCP admin listener is read-only: send " + std::string(req.method_string()) +
                               " to the admin socket" + (socket_path.empty() ? "" : " " + socket_path) +
                               " (sluicectl --admin-socket), or start sluiced with --admin-token-file\n"};
    }
    auto auth = req.find(http::field::authorization);
    const std::string_view given =
        auth == req.end() ? std::string_view() : std::string_view(auth->value().data(), auth->value().size());
    const std::string expected = "Bearer " + token;
    if (!constant_time_equal(given, expected)) {
      // RFC 6750 section 3: a 401 names the scheme the client must use.
      return AdminResponse{401, "text/plain; charset=utf-8", "missing or wrong Authorization: Bearer token\n",
                           {{"WWW-Authenticate", R"(Bearer realm="sluiced admin")"}}};
    }
    return std::nullopt;
  }

  template <typename Socket>
  class Connection : public Session, public std::enable_shared_from_this<Connection<Socket>> {
   public:
    Connection(Impl& server, Socket socket, bool on_socket)
        : server_(server), socket_(std::move(socket)), timer_(server.io), on_socket_(on_socket) {
      ++server_.open;
    }
    ~Connection() override {
      unlist();
      --server_.open;
    }

    void start() {
      enlist(server_.reading);
      parser_.body_limit(1 << 20);
      arm(kRequestDeadline);
      http::async_read(socket_, buffer_, parser_,
                       [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

    void close() override {
      beast::error_code ec;
      socket_.close(ec);
      timer_.cancel();
    }

   private:
    void arm(std::chrono::seconds deadline) {
      timer_.expires_after(deadline);
      timer_.async_wait([weak = this->weak_from_this()](beast::error_code ec) {
        if (ec) return;   // cancelled: the step finished in time
        if (auto self = weak.lock()) self->close();
      });
    }

    void on_read(beast::error_code ec) {
      unlist();
      if (ec) {
        if (ec == http::error::body_limit || ec == http::error::header_limit || ec == http::error::bad_method ||
            ec == http::error::bad_target || ec == http::error::bad_version || ec == http::error::bad_field ||
            ec == http::error::bad_value) {
          respond(AdminResponse{400, "text/plain; charset=utf-8", "bad request: " + ec.message() + "\n"}, 11);
        } else {
          close();   // the deadline passed, or the client went away
        }
        return;
      }
      timer_.cancel();
      const auto& req = parser_.get();
      const unsigned version = req.version();
      if (auto refusal = server_.screen(req, on_socket_)) {
        respond(std::move(*refusal), version);
        return;
      }
      asio::post(server_.handler_pool, [self = this->shared_from_this(), request = to_admin_request(req), version] {
        AdminResponse r = self->server_.dispatch(request);
        asio::post(self->server_.io, [self, r = std::move(r), version]() mutable { self->respond(std::move(r), version); });
      });
    }

    void respond(AdminResponse r, unsigned version) {
      response_.result(static_cast<http::status>(r.status));
      response_.version(version);
      response_.set(http::field::server, "sluiced");
      response_.set(http::field::content_type, r.content_type);
      for (const auto& [name, value] : r.headers) response_.set(name, value);
      response_.keep_alive(false);
      response_.body() = std::move(r.body);
      response_.prepare_payload();
      arm(kResponseDeadline);
      http::async_write(socket_, response_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
        if (!ec) self->socket_.shutdown(Socket::shutdown_send, ec);
        self->close();
      });
    }

    Impl& server_;
    Socket socket_;
    asio::steady_timer timer_;
    bool on_socket_;
    beast::flat_buffer buffer_;
    http::request_parser<http::string_body> parser_;
    http::response<http::string_body> response_;
  };

  // Room for one more connection: past the cap, the oldest connection still
  // sending its request goes. False if every open connection is past reading
  // (in a handler or being answered): the new one is refused instead.
  bool make_room() {
    if (open < kMaxOpenConnections) return true;
    if (reading.empty()) return false;
    Session* oldest = reading.front();
    oldest->unlist();
    oldest->close();   // its count drops once its pending read completes
    return true;
  }

  template <typename Acceptor>
  void accept_loop(Acceptor& acceptor, bool on_socket) {
    acceptor.async_accept([this, &acceptor, on_socket](beast::error_code ec, typename Acceptor::protocol_type::socket s) {
      if (stopping.load() || ec == asio::error::operation_aborted) return;
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        // Out of descriptors: try again shortly rather than spin.
        spdlog::warn("admin: accept: {}", ec.message());
        auto pause = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
        pause->async_wait([this, &acceptor, on_socket, pause](beast::error_code) { accept_loop(acceptor, on_socket); });
        return;
      }
      if (!ec && on_socket && !peer_may_use_socket(s.native_handle())) ec = asio::error::access_denied;
      if (!ec && make_room()) {
        std::make_shared<Connection<typename Acceptor::protocol_type::socket>>(*this, std::move(s), on_socket)->start();
      }
      accept_loop(acceptor, on_socket);
    });
  }

  // Defence in depth behind the socket's 0600 mode: only root and the
  // agent's own user may talk to the socket.
  static bool peer_may_use_socket(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
    if (cred.uid == 0 || cred.uid == ::geteuid()) return true;
    spdlog::warn("admin socket: refused a connection from uid {} (pid {})", cred.uid, cred.pid);
    return false;
  }
};

AdminServer::AdminServer(const std::string& tcp_listen) : AdminServer(AdminListeners{tcp_listen, "", ""}) {}

AdminServer::AdminServer(const AdminListeners& listeners) : impl_(std::make_unique<Impl>()) {
  impl_->token = listeners.token;
  beast::error_code ec;
  if (!listeners.tcp.empty()) {
    auto [host, port] = split_host_port(listeners.tcp);
    auto addr = asio::ip::make_address(host, ec);
    if (ec) throw std::runtime_error("admin: '" + host + "' is not an IP address");
    tcp::endpoint ep{addr, port};
    auto& a = impl_->tcp_acceptor.emplace(impl_->io);
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(64, ec);
    if (ec) throw std::runtime_error("admin: cannot listen on " + listeners.tcp + ": " + ec.message());
  }
  if (!listeners.unix_socket.empty()) {
    const std::string& path = listeners.unix_socket;
    prepare_socket_path(path);
    auto& a = impl_->unix_acceptor.emplace(impl_->io);
    a.open(local(), ec);
    if (!ec) a.bind(local::endpoint(path), ec);
    if (ec) throw std::runtime_error("admin socket " + path + ": cannot bind: " + ec.message());
    struct stat st {};
    if (::chmod(path.c_str(), 0600) != 0 || ::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      throw std::runtime_error("admin socket " + path + ": " + std::strerror(err));
    }
    impl_->socket_path = path;
    impl_->socket_inode = st.st_ino;
    a.listen(64, ec);
    if (ec) throw std::runtime_error("admin socket " + path + ": cannot listen: " + ec.message());
  }
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::handle(const std::string& path, AdminHandler handler) {
  impl_->handlers[path] = std::move(handler);
}

void AdminServer::start() {
  if (impl_->tcp_acceptor) impl_->accept_loop(*impl_->tcp_acceptor, false);
  if (impl_->unix_acceptor) impl_->accept_loop(*impl_->unix_acceptor, true);
  impl_->io_thread = std::thread([this] { impl_->io.run(); });
}

void AdminServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->io.stop();
  if (impl_->io_thread.joinable()) impl_->io_thread.join();
  // Handlers still running finish; what they post back to the stopped
  // io_context is dropped with it.
  impl_->handler_pool.join();
  beast::error_code ec;
  if (impl_->tcp_acceptor) impl_->tcp_acceptor->close(ec);
  if (impl_->unix_acceptor) impl_->unix_acceptor->close(ec);
  struct stat st {};
  // Remove the socket file only if it is still ours (not a successor's).
  if (!impl_->socket_path.empty() && ::lstat(impl_->socket_path.c_str(), &st) == 0 &&
      st.st_ino == impl_->socket_inode) {
    ::unlink(impl_->socket_path.c_str());
  }
}

std::string AdminServer::local_address() const {
  if (!impl_->tcp_acceptor) return "";
  auto ep = impl_->tcp_acceptor->local_endpoint();
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

std::string AdminServer::socket_path() const { return impl_->socket_path; }

}  // namespace sluice::admin
