#include "k8s/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sluice::k8s {

namespace fs = std::filesystem;

std::string base64_decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    int v = value(c);
    if (v < 0) throw std::runtime_error(std::string("invalid base64 character '") + c + "'");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The entry of a named list (clusters, users, contexts) whose name is `name`.
YAML::Node find_named(const YAML::Node& list, const std::string& name) {
  if (list && list.IsSequence()) {
    for (const auto& item : list) {
      if (item.IsMap() && item["name"] && item["name"].as<std::string>("") == name) return item;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string scalar(const YAML::Node& map, const char* key) {
  const YAML::Node n = map[key];
  return n && n.IsScalar() ? n.Scalar() : std::string();
}

}  // namespace

ApiServerConfig load_kubeconfig(const std::string& path, const std::string& context_name) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                             ": " + e.msg);
  }
  if (!root.IsMap()) throw std::runtime_error(path + ": not a kubeconfig (expected a mapping)");
  const std::string ctx_name = context_name.empty() ? scalar(root, "current-context") : context_name;
  if (ctx_name.empty()) throw std::runtime_error(path + ": no current-context and no --kube-context given");
  const YAML::Node ctx_entry = find_named(root["contexts"], ctx_name);
  if (!ctx_entry) throw std::runtime_error(path + ": contexts: no context named '" + ctx_name + "'");
  const YAML::Node ctx = ctx_entry["context"];
  if (!ctx || !ctx.IsMap()) throw std::runtime_error(path + ": context '" + ctx_name + "' has no context mapping");

  const fs::path base = fs::path(path).parent_path();
  auto resolve = [&](const std::string& p) {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (base / p).string();
  };
  auto decode = [&](const std::string& data, const std::string& field) {
    try {
      return base64_decode(data);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": " + field + ": " + e.what());
    }
  };

  ApiServerConfig out;
  out.description = "kubeconfig " + path + ", context " + ctx_name;
  out.namespace_ = scalar(ctx, "namespace");

  const std::string cluster_name = scalar(ctx, "cluster");
  const YAML::Node cluster_entry = find_named(root["clusters"], cluster_name);
  if (!cluster_entry || !cluster_entry["cluster"].IsMap()) {
    throw std::runtime_error(path + ": clusters: no cluster named '" + cluster_name + "' (context '" + ctx_name + "')");
  }
  const YAML::Node cluster = cluster_entry["cluster"];
  out.server = scalar(cluster, "server");
  if (out.server.empty()) throw std::runtime_error(path + ": cluster '" + cluster_name + "' has no server");
  while (!out.server.empty() && out.server.back() == '/') out.server.pop_back();
  out.ca_file = resolve(scalar(cluster, "certificate-authority"));
  if (auto d = scalar(cluster, "certificate-authority-data"); !d.empty()) {
    out.ca_pem = decode(d, "cluster '" + cluster_name + "' certificate-authority-data");
  }
  out.insecure_skip_tls_verify = scalar(cluster, "insecure-skip-tls-verify") == "true";

  const std::string user_name = scalar(ctx, "user");
  if (!user_name.empty()) {
    const YAML::Node user_entry = find_named(root["users"], user_name);
    if (!user_entry) throw std::runtime_error(path + ": users: no user named '" + user_name + "'");
    const YAML::Node user = user_entry["user"];
    if (user && user.IsMap()) {
      for (const char* plugin : {"exec", "auth-provider"}) {
        if (user[plugin]) {
          throw std::runtime_error(path + ": user '" + user_name + "': " + plugin +
                                   " credentials are not supported by sluiced; use a token or a client certificate");
        }
      }
      out.token = scalar(user, "token");
      out.token_file = resolve(scalar(user, "tokenFile"));
      out.client_cert_file = resolve(scalar(user, "client-certificate"));
      out.client_key_file = resolve(scalar(user, "client-key"));
      if (auto d = scalar(user, "client-certificate-data"); !d.empty()) {
        out.client_cert_pem = decode(d, "user '" + user_name + "' client-certificate-data");
      }
      if (auto d = scalar(user, "client-key-data"); !d.empty()) {
        out.client_key_pem = decode(d, "user '" + user_name + "' client-key-data");
      }
      const bool has_cert = !out.client_cert_file.empty() || !out.client_cert_pem.empty();
      const bool has_key = !out.client_key_file.empty() || !out.client_key_pem.empty();
      if (has_cert != has_key) {
        throw std::runtime_error(path + ": user '" + user_name + "': a client certificate needs both the "
                                 "certificate and the key");
      }
    }
  }
  return out;
}

ApiServerConfig in_cluster_config(const std::string& account_dir,
                                  const std::function<const char*(const char*)>& getenv_fn) {
  auto env = [&](const char* name) -> std::string {
    const char* v = getenv_fn ? getenv_fn(name) : std::getenv(name);
    return v ? v : "";
  };
  const std::string host = env("KUBERNETES_SERVICE_HOST");
  const std::string port = env("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    throw std::runtime_error("not running in a pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set "
                             "(use --kubeconfig FILE outside a cluster)");
  }
  ApiServerConfig out;
  out.server = "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  out.ca_file = account_dir + "/ca.crt";
  out.token_file = account_dir + "/token";
  if (!fs::exists(out.token_file)) throw std::runtime_error(out.token_file + ": no service account token");
  if (!fs::exists(out.ca_file)) throw std::runtime_error(out.ca_file + ": no service account CA");
  if (fs::exists(account_dir + "/namespace")) {
    out.namespace_ = read_file(account_dir + "/namespace");
    while (!out.namespace_.empty() && std::isspace(static_cast<unsigned char>(out.namespace_.back()))) {
      out.namespace_.pop_back();
    }
  }
  out.description = "in-cluster (" + out.server + ")";
  return out;
}

}  // namespace sluice::k8s
