// sluicectl's side of the admin API: one blocking request per call.
#pragma once

#include <string>

namespace sluice::admin {

struct AdminReply {
  unsigned status = 0;
  std::string body;
};

// Where a request goes: the agent's Unix socket when `socket_path` is set,
// else its TCP listener at `address`; `token`, when set, is sent as
// `Authorization: Bearer` (the TCP listener takes mutating requests only so).
struct AdminTarget {
  std::string address;       // HOST:PORT
  std::string socket_path;
  std::string token;
  std::string describe() const;   // "http://127.0.0.1:15000" or "the admin socket /run/sluice/admin.sock"
};

// Throws std::runtime_error naming the address or socket and the reason when
// the agent cannot be reached.
AdminReply admin_request(const AdminTarget& target, const std::string& method, const std::string& path_and_query,
                         const std::string& body);

// GET/POST http://HOST:PORT/path.
AdminReply admin_get(const std::string& address, const std::string& path_and_query);
AdminReply admin_post(const std::string& address, const std::string& path, const std::string& json_body);

}  // namespace sluice::admin
