// status, routes, clusters, stats, weights: commands that ask a running
// sluiced through its admin API (userspace/agent/admin_api.h). Human tables by
// default, the agent's JSON with --json.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "admin/admin_client.h"
#include "admin/admin_server.h"
#include "ctl/commands.h"

namespace sluice::ctl {

namespace {

using nlohmann::json;

// GETs a JSON endpoint; prints the reason and returns nullopt on failure.
std::optional<json> fetch_json(const AdminOptions& o, const std::string& path) {
  const admin::AdminTarget target = read_target(o);
  try {
    auto reply = admin::admin_request(target, "GET", path, "");
    json body = json::parse(reply.body, nullptr, false);
    if (reply.status != 200) {
      std::cerr << "sluicectl: " << path << " answered " << reply.status << ": "
                << (body.is_object() && body.contains("error") ? body["error"].get<std::string>() : reply.body) << '\n';
      return std::nullopt;
    }
    if (body.is_discarded()) {
      std::cerr << "sluicectl: " << path << " did not answer JSON\n";
      return std::nullopt;
    }
    return body;
  } catch (const std::exception& e) {
    std::cerr << "sluicectl: " << e.what() << " (" << running_with(target) << ")\n";
    return std::nullopt;
  }
}

// The client namespaces with routes of their own that HOST's override leaves
// alone (`override_views_kept` of /status or of POST /weights' answer).
void print_views_kept(const json& body, const std::string& host, std::string_view indent) {
  if (!body.contains("override_views_kept") || !body["override_views_kept"].contains(host)) return;
  for (const auto& v : body["override_views_kept"][host]) {
    std::cout << indent << "not for clients of " << v.get<std::string>() << ": they keep the files' weights\n";
  }
}

std::string weights_text(const json& weights) {
  std::string out;
  for (const auto& [subset, w] : weights.items()) out += (out.empty() ? "" : " ") + subset + "=" + w.dump();
  return out;
}

void print_status(const json& st) {
  std::cout << fmt::format("version     {} ({}), applied {}\n", st.value("version", 0),
                           st.value("origin", ""), st.value("applied_at", ""));
  std::cout << fmt::format("reloads     {} applied, {} refused\n", st["reloads"].value("ok", 0),
                           st["reloads"].value("refused", 0));
  std::cout << "planes      " << (st["planes"].value("xdp", false) ? "xdp" : "no xdp") << ", "
            << (st["planes"].value("l7", false) ? "l7 proxy" : "no l7 proxy");
  if (st["planes"].value("dpdk", false))
    std::cout << ", dpdk forwarder (table generation " << st.value("dpdk_generation", 0) << ")";
  std::cout << '\n';
  if (!st["interfaces"].empty()) {
    std::string ifs;
    for (const auto& i : st["interfaces"]) ifs += (ifs.empty() ? "" : ", ") + i.get<std::string>();
    std::cout << "interfaces  " << ifs << '\n';
  }
  if (st["overrides"].empty()) {
    std::cout << "overrides   none (weights as in the files)\n";
  } else {
    for (const auto& [host, w] : st["overrides"].items()) {
      std::cout << "override    " << host << ": " << weights_text(w) << " (until the files change its routes)\n";
      print_views_kept(st, host, "            ");
    }
  }
  if (!st["last_error"].is_null()) {
    std::cout << "last change REFUSED at " << st["last_error"].value("at", "") << " (still serving version "
              << st.value("version", 0) << "):\n";
    for (const auto& m : st["last_error"]["messages"]) std::cout << "  " << m.get<std::string>() << '\n';
  }
  for (const auto& w : st.value("warnings", json::array())) std::cout << "warning     " << w.get<std::string>() << '\n';
  if (st.contains("kubernetes")) {
    const json& k = st["kubernetes"];
    std::cout << "kubernetes  " << k.value("server", "") << " (" << k.value("credentials", "") << "), "
              << (k.value("synced", false) ? "synced" : "NOT SYNCED") << '\n';
    for (const auto& r : k.value("resources", json::array())) {
      std::cout << fmt::format("  {:<44} {:<8} rv {:<10} {} objects, {} lists, {} watches, {} expired\n",
                               r.value("resource", ""),
                               !r.value("synced", false) ? "unsynced" : r.value("watching", false) ? "watching" : "idle",
                               r.value("resource_version", ""), r.value("objects", 0), r.value("lists", 0),
                               r.value("watches", 0), r.value("expired", 0));
      if (!r["last_error"].is_null()) {
        std::cout << "    last error at " << r["last_error"].value("at", "") << ": "
                  << r["last_error"].value("message", "") << '\n';
      }
    }
  }
}

void print_routes(const json& dump) {
  std::cout << fmt::format("{:<28} {:<22} {:<5} {}\n", "SERVICE", "VIP:PORT", "PLANE", "ROUTE -> DESTINATIONS");
  auto dests = [](const json& list) {
    std::string out;
    for (const auto& d : list) {
      out += (out.empty() ? "" : "  ") + d.value("host", "") + "/" +
             (d.value("subset", "").empty() ? "(all)" : d.value("subset", "")) +
             fmt::format(" {:.1f}%", 100.0 * d.value("share", 0.0));
    }
    return out;
  };
  // One port's rows; `label` is the service, or the service and the client
  // namespaces of one of its views ("productpage [team-a]").
  auto print_port = [&](const std::string& label, const std::string& vips, const json& port) {
    std::string where = vips + ":" + std::to_string(port.value("number", 0));
    if (port.value("plane", "") == "L7" && port["http_routes"].is_array()) {
      for (size_t i = 0; i < port["http_routes"].size(); ++i) {
        const auto& r = port["http_routes"][i];
        std::string name = r.value("name", "").empty() ? fmt::format("http[{}]", i) : r.value("name", "");
        std::string what = r["route"].is_array() && !r["route"].empty() ? dests(r["route"])
                           : !r["redirect"].is_null()                 ? "redirect"
                           : !r["direct_response"].is_null()          ? "direct response"
                                                                      : "-";
        std::cout << fmt::format("{:<28} {:<22} {:<5} {} ({} match blocks) -> {}\n", label, where, "L7", name,
                                 r["matches"].size(), what);
      }
    } else if (port["l4"].is_object()) {
      std::cout << fmt::format("{:<28} {:<22} {:<5} {} -> {}\n", label, where, "L4", port["l4"].value("source", ""),
                               dests(port["l4"]["destinations"]));
    }
  };
  for (const auto& svc : dump["services"]) {
    std::string vips;
    for (const auto& v : svc["vips"]) vips += (vips.empty() ? "" : ",") + v.get<std::string>();
    const std::string host = svc.value("host", "");
    for (const auto& port : svc["ports"]) print_port(host, vips, port);
    if (!svc.contains("views")) continue;
    for (const auto& view : svc["views"]) {
      std::string clients;
      for (const auto& n : view["namespaces"]) clients += (clients.empty() ? "" : ",") + n.get<std::string>();
      for (const auto& port : view["ports"]) print_port(host + " [" + clients + "]", vips, port);
    }
  }
}

void print_clusters(const json& clusters) {
  std::cout << fmt::format("{:<28} {:<6} {:<5} {:<8} {:<14} {:<22} {:<22} {:>6} {:>9} {:>9}  {}\n", "SERVICE", "PORT",
                           "PLANE", "SUBSET", "POLICY", "ENDPOINT", "ADDRESS", "WEIGHT", "L7_ACTIVE", "L4_FLOWS",
                           "HEALTH");
  for (const auto& c : clusters) {
    for (const auto& s : c["subsets"]) {
      // A client view's DestinationRule's subset: "v1 (team-a/pp)".
      std::string subset = s.value("name", "").empty() ? "(all)" : s.value("name", "");
      if (s.contains("destination_rule")) subset += " (" + s.value("destination_rule", "") + ")";
      for (const auto& e : s["endpoints"]) {
        auto opt = [&](const char* k) { return e.contains(k) ? e[k].dump() : std::string("-"); };
        std::cout << fmt::format("{:<28} {:<6} {:<5} {:<8} {:<14} {:<22} {:<22} {:>6} {:>9} {:>9}  {}\n",
                                 c.value("service", ""), c.value("port", 0), c.value("plane", ""),
                                 subset, s.value("policy", ""),
                                 e.value("name", ""), e.value("address", ""), e.value("weight", 0),
                                 opt("l7_active_requests"), opt("l4_active_flows"), e.value("health", "-"));
      }
    }
  }
}

// Prometheus text -> [{"name", "labels": {...}, "value"}], skipping comments.
json parse_prometheus(const std::string& text) {
  json out = json::array();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? text.size() : end + 1;
    if (line.empty() || line[0] == '#') continue;
    json sample;
    size_t brace = line.find('{');
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    sample["name"] = line.substr(0, std::min(brace, space));
    json labels = json::object();
    if (brace != std::string::npos && brace < space) {
      size_t close = line.rfind('}', space);
      std::string body = line.substr(brace + 1, close - brace - 1);
      size_t i = 0;
      while (i < body.size()) {
        size_t eq = body.find('=', i);
        if (eq == std::string::npos || eq + 1 >= body.size() || body[eq + 1] != '"') break;
        std::string key = body.substr(i, eq - i);
        std::string value;
        size_t j = eq + 2;
        for (; j < body.size() && body[j] != '"'; ++j) {
          if (body[j] == '\\' && j + 1 < body.size()) ++j;
          value += body[j];
        }
        labels[key] = value;
        i = j + 2;   // past the quote and the comma
      }
    }
    sample["labels"] = labels;
    sample["value"] = std::stod(line.substr(space + 1));
    out.push_back(sample);
  }
  return out;
}

}  // namespace

// The hint after a failed admin call. "Needs root" only where that can be
// the reason: the socket is there and sluicectl runs as another user.
std::string running_with(const admin::AdminTarget& target) {
  if (target.socket_path.empty()) return "is sluiced running with --admin " + target.address + "?";
  std::string hint = "is sluiced running with --admin-socket " + target.socket_path + "?";
  if (::access(target.socket_path.c_str(), F_OK) == 0 && ::geteuid() != 0) hint += " the socket needs root";
  return hint;
}

admin::AdminTarget read_target(const AdminOptions& options) {
  admin::AdminTarget target;
  if (options.socket_given && !options.admin_given) target.socket_path = options.socket;
  else target.address = options.admin;
  return target;
}

void add_admin_options(CLI::App& command, AdminOptions& options) {
  // Each sets its value and notes that the user gave it (read_target).
  auto given = [](std::string& value, bool& flag) {
    return [&value, &flag](const std::string& v) {
      value = v;
      flag = true;
    };
  };
  command
      .add_option_function<std::string>("--admin", given(options.admin, options.admin_given),
                                        "the agent's admin TCP address (reads; writes with a token)")
      ->type_name("HOST:PORT")
      ->default_str(options.admin);
  command
      .add_option_function<std::string>(
          "--admin-socket", given(options.socket, options.socket_given),
          "the agent's admin Unix socket (writes; reads too when --admin is not given; needs root)")
      ->type_name("PATH")
      ->default_str(options.socket);
  command.add_option("--admin-token-file", options.token_file,
                     "send writes over --admin with this bearer token (sluiced --admin-token-file)")
      ->type_name("FILE");
  command.add_flag("--json", options.json, "print JSON instead of tables");
}

CommandBody define_status(CLI::App& command) {
  auto o = std::make_shared<AdminOptions>();
  add_admin_options(command, *o);
  return [o] {
    auto st = fetch_json(*o, "/status");
    if (!st) return kExitUsage;
    if (o->json) {
      std::cout << st->dump(2) << '\n';
    } else {
      print_status(*st);
    }
    return (*st)["last_error"].is_null() ? kExitOk : kExitInvalid;
  };
}

CommandBody define_routes(CLI::App& command) {
  auto o = std::make_shared<AdminOptions>();
  add_admin_options(command, *o);
  return [o] {
    auto dump = fetch_json(*o, "/config_dump");
    if (!dump) return kExitUsage;
    if (o->json) {
      json routes = json::array();
      // One entry per port and view: client_namespaces is null for the
      // default view (every client no other view names).
      for (const auto& svc : (*dump)["services"]) {
        for (const auto& port : svc["ports"]) {
          routes.push_back({{"service", svc["host"]}, {"vips", svc["vips"]}, {"port", port["number"]},
                            {"client_namespaces", nullptr}, {"plane", port["plane"]},
                            {"http_routes", port["http_routes"]}, {"l4", port["l4"]}});
        }
        if (!svc.contains("views")) continue;
        for (const auto& view : svc["views"]) {
          for (const auto& port : view["ports"]) {
            routes.push_back({{"service", svc["host"]}, {"vips", svc["vips"]}, {"port", port["number"]},
                              {"client_namespaces", view["namespaces"]}, {"plane", port["plane"]},
                              {"http_routes", port["http_routes"]}, {"l4", port["l4"]}});
          }
        }
      }
      std::cout << routes.dump(2) << '\n';
    } else {
      print_routes(*dump);
    }
    return kExitOk;
  };
}

CommandBody define_clusters(CLI::App& command) {
  auto o = std::make_shared<AdminOptions>();
  add_admin_options(command, *o);
  return [o] {
    auto clusters = fetch_json(*o, "/clusters");
    if (!clusters) return kExitUsage;
    if (o->json) {
      std::cout << clusters->dump(2) << '\n';
    } else {
      print_clusters(*clusters);
    }
    return kExitOk;
  };
}

CommandBody define_stats(CLI::App& command) {
  auto o = std::make_shared<AdminOptions>();
  auto all = std::make_shared<bool>(false);
  add_admin_options(command, *o);
  command.add_flag("--all", *all, "include samples whose value is 0");
  return [o, all] {
    admin::AdminReply reply;
    const admin::AdminTarget target = read_target(*o);
    try {
      reply = admin::admin_request(target, "GET", "/stats/prometheus", "");
    } catch (const std::exception& e) {
      std::cerr << "sluicectl: " << e.what() << " (" << running_with(target) << ")\n";
      return kExitUsage;
    }
    json samples = parse_prometheus(reply.body);
    if (o->json) {
      std::cout << samples.dump(2) << '\n';
      return kExitOk;
    }
    for (const auto& s : samples) {
      if (!*all && s["value"].get<double>() == 0) continue;
      std::string labels;
      for (const auto& [k, v] : s["labels"].items()) {
        labels += (labels.empty() ? "" : ",") + k + "=" + v.get<std::string>();
      }
      std::cout << fmt::format("{:<48} {:<90} {}\n", s["name"].get<std::string>(), labels, s["value"].dump());
    }
    return kExitOk;
  };
}

CommandBody define_weights(CLI::App& command) {
  struct Options {
    AdminOptions admin;
    std::string host;
    std::vector<std::string> weights;
  };
  auto o = std::make_shared<Options>();
  add_admin_options(command, o->admin);
  command.add_option("HOST", o->host, "the service whose route weights to set")->required();
  command.add_option("SUBSET=WEIGHT", o->weights,
                     "new weights; subsets not named get 0 (until the files change this service's routes)")
      ->required();
  return [o] {
    json weights = json::object();
    for (const auto& w : o->weights) {
      auto eq = w.find('=');
      unsigned long value = 0;
      bool ok = eq != std::string::npos && eq > 0 && eq + 1 < w.size();
      if (ok) {
        try {
          size_t used = 0;
          value = std::stoul(w.substr(eq + 1), &used);
          ok = used == w.size() - eq - 1 && value <= 0xffffffffUL && w[eq + 1] != '-';
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (!ok) {
        std::cerr << "sluicectl weights: expected SUBSET=WEIGHT with a non-negative integer weight, got '" << w
                  << "'\n";
        return kExitUsage;
      }
      weights[w.substr(0, eq)] = value;
    }
    admin::AdminReply reply;
    admin::AdminTarget target;
    try {
      if (o->admin.token_file.empty()) {
        target.socket_path = o->admin.socket;
      } else {
        target.address = o->admin.admin;
        target.token = admin::read_token_file(o->admin.token_file);
      }
      reply = admin::admin_request(target, "POST", "/weights",
                                   json{{"host", o->host}, {"weights", weights}}.dump());
    } catch (const std::exception& e) {
      std::cerr << "sluicectl: " << e.what() << " (" << running_with(target) << ")\n";
      return kExitUsage;
    }
    json body = json::parse(reply.body, nullptr, false);
    if (reply.status != 200) {
      std::cerr << "sluicectl weights: refused: "
                << (body.is_object() && body.contains("error") ? body["error"].get<std::string>() : reply.body)
                << '\n';
      return kExitInvalid;
    }
    if (o->admin.json) {
      std::cout << body.dump(2) << '\n';
    } else {
      std::cout << fmt::format("{}: {} applied as version {}\n", o->host, weights_text(weights),
                               body.value("version", 0));
      print_views_kept(body, o->host, "");
    }
    return kExitOk;
  };
}

}  // namespace sluice::ctl
