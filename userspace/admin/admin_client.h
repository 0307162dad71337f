// sluicectl's side of the admin API: one blocking request per call.
#pragma once

#include <string>

namespace sluice::admin {

struct AdminReply {
  unsigned status = 0;
  std::string body;
};

// GET/POST http://HOST:PORT/path. Throws std::runtime_error with the address
// and the reason when the agent cannot be reached (so the CLI can say "is
// sluiced running with --admin HOST:PORT?").
AdminReply admin_get(const std::string& address, const std::string& path_and_query);
AdminReply admin_post(const std::string& address, const std::string& path, const std::string& json_body);

}  // namespace sluice::admin
