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

namespace {

AdminReply request(const std::string& address, http::verb verb, const std::string& target,
                   const std::string& body) {
  auto [host, port] = split_host_port(address);
  asio::io_context io;
  tcp::socket socket{io};
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("admin address '" + address + "': '" + host + "' is not an IP address");
  socket.connect({addr, port}, ec);
  if (ec) throw std::runtime_error("cannot reach the agent's admin API at " + address + ": " + ec.message());
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, address);
  req.set(http::field::user_agent, "sluicectl");
  if (verb == http::verb::post) req.set(http::field::content_type, "application/json");
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  http::write(socket, req, ec);
  if (ec) throw std::runtime_error("admin API at " + address + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res, ec);
  if (ec && ec != http::error::end_of_stream) {
    throw std::runtime_error("admin API at " + address + ": " + ec.message());
  }
  return AdminReply{res.result_int(), std::move(res.body())};
}

}  // namespace

AdminReply admin_get(const std::string& address, const std::string& path_and_query) {
  return request(address, http::verb::get, path_and_query, "");
}

AdminReply admin_post(const std::string& address, const std::string& path, const std::string& json_body) {
  return request(address, http::verb::post, path, json_body);
}

}  // namespace sluice::admin
