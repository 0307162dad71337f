#include "admin/admin_client.h"

#include <utility>  // boost 1.74 asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <stdexcept>

#include "admin/admin_server.h"

namespace sluice::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

namespace {

template <typename Socket>
AdminReply exchange(Socket& socket, const AdminTarget& target, const std::string& host, http::verb verb,
                    const std::string& path_and_query, const std::string& body) {
  beast::error_code ec;
  http::request<http::string_body> req{verb, path_and_query, 11};
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "sluicectl");
  if (!target.token.empty()) req.set(http::field::authorization, "Bearer " + target.token);
  if (verb == http::verb::post) req.set(http::field::content_type, "application/json");
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  http::write(socket, req, ec);
  if (ec) throw std::runtime_error("admin API at " + target.describe() + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res, ec);
  if (ec && ec != http::error::end_of_stream) {
    throw std::runtime_error("admin API at " + target.describe() + ": " + ec.message());
  }
  return AdminReply{res.result_int(), std::move(res.body())};
}

}  // namespace

std::string AdminTarget::describe() const {
  return socket_path.empty() ? "http://" + address : "the admin socket " + socket_path;
}

AdminReply admin_request(const AdminTarget& target, const std::string& method, const std::string& path_and_query,
                         const std::string& body) {
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) throw std::invalid_argument("unknown HTTP method '" + method + "'");
  asio::io_context io;
  beast::error_code ec;
  if (!target.socket_path.empty()) {
    local::socket socket{io};
    socket.connect(local::endpoint(target.socket_path), ec);
    if (ec) throw std::runtime_error("cannot reach " + target.describe() + ": " + ec.message());
    return exchange(socket, target, "localhost", verb, path_and_query, body);
  }
  auto [host, port] = split_host_port(target.address);
  tcp::socket socket{io};
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("admin address '" + target.address + "': '" + host + "' is not an IP address");
  socket.connect({addr, port}, ec);
  if (ec) throw std::runtime_error("cannot reach the agent's admin API at " + target.address + ": " + ec.message());
  return exchange(socket, target, target.address, verb, path_and_query, body);
}

AdminReply admin_get(const std::string& address, const std::string& path_and_query) {
  return admin_request(AdminTarget{address, "", ""}, "GET", path_and_query, "");
}

AdminReply admin_post(const std::string& address, const std::string& path, const std::string& json_body) {
  return admin_request(AdminTarget{address, "", ""}, "POST", path, json_body);
}

}  // namespace sluice::admin
