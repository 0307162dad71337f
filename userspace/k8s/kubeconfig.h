// Where the Kubernetes API server is and how to authenticate to it: from a
// kubeconfig file (its current context) or from the pod's service account
// (in-cluster). Only what a watch-only client needs: the server URL, the CA
// to trust, and a bearer token or a client certificate.
#pragma once

#include <functional>
#include <string>

namespace sluice::k8s {

struct ApiServerConfig {
  std::string server;                 // "https://10.0.0.1:443", no trailing '/'
  std::string ca_file;                // PEM bundle to trust (certificate-authority)
  std::string ca_pem;                 // the same inline (certificate-authority-data, decoded)
  bool insecure_skip_tls_verify = false;
  std::string token;                  // bearer token given inline
  std::string token_file;             // bearer token read on every request (bound tokens rotate)
  std::string client_cert_file, client_cert_pem;
  std::string client_key_file, client_key_pem;
  std::string namespace_;             // the context's or the service account's namespace
  std::string description;            // "kubeconfig FILE, context NAME" or "in-cluster": for logs and status
};

// Reads `path` (YAML). `context` empty: the file's current-context. Relative
// file names inside are taken from the kubeconfig's directory, as kubectl
// does. Throws std::runtime_error naming the file and the missing or bad
// field; exec and auth-provider plugins are refused by name.
ApiServerConfig load_kubeconfig(const std::string& path, const std::string& context = "");

// The pod's service account: KUBERNETES_SERVICE_HOST/PORT and the token, CA
// and namespace files under `account_dir`. `getenv` is injectable for tests.
// Throws std::runtime_error when not running in a pod.
ApiServerConfig in_cluster_config(
    const std::string& account_dir = "/var/run/secrets/kubernetes.io/serviceaccount",
    const std::function<const char*(const char*)>& getenv = nullptr);

// RFC 4648 base64 (kubeconfig's *-data fields). Throws std::runtime_error on
// a character outside the alphabet.
std::string base64_decode(const std::string& text);

}  // namespace sluice::k8s
