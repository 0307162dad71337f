#include "k8s/kubeconfig.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace fs = std::filesystem;
using sluice::k8s::ApiServerConfig;
using sluice::k8s::base64_decode;
using sluice::k8s::in_cluster_config;
using sluice::k8s::load_kubeconfig;

namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sluice-k8s-test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr const char* kTwoContexts = R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod-cluster
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
- name: lab
  cluster:
    server: https://lab.example:443
    certificate-authority: ca/lab.pem
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
- name: viewer
  user:
    token: s3cr3t
contexts:
- name: prod
  context: {cluster: prod-cluster, user: admin, namespace: mesh}
- name: lab
  context: {cluster: lab, user: viewer}
)";

}  // namespace

TEST(Kubeconfig, CurrentContextGivesServerCaAndClientCertificate) {
  TempDir dir;
  ApiServerConfig c = load_kubeconfig(dir.write("config", kTwoContexts));
  EXPECT_EQ(c.server, "https://10.0.0.1:6443");   // trailing '/' dropped: paths are appended
  EXPECT_EQ(c.ca_pem, "-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(c.client_cert_pem, "cert");
  EXPECT_EQ(c.client_key_pem, "key");
  EXPECT_TRUE(c.token.empty());
  EXPECT_FALSE(c.insecure_skip_tls_verify);
  EXPECT_EQ(c.namespace_, "mesh");
}

TEST(Kubeconfig, NamedContextResolvesRelativeFilesFromTheKubeconfigDirectory) {
  TempDir dir;
  ApiServerConfig c = load_kubeconfig(dir.write("config", kTwoContexts), "lab");
  EXPECT_EQ(c.server, "https://lab.example:443");
  EXPECT_EQ(c.ca_file, dir.path() + "/ca/lab.pem");
  EXPECT_TRUE(c.insecure_skip_tls_verify);
  EXPECT_EQ(c.token, "s3cr3t");
  EXPECT_TRUE(c.client_cert_pem.empty());
}

TEST(Kubeconfig, UnknownContextIsNamedInTheError) {
  TempDir dir;
  std::string path = dir.write("config", kTwoContexts);
  try {
    load_kubeconfig(path, "staging");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'staging'"), std::string::npos) << e.what();
  }
}

TEST(Kubeconfig, ExecCredentialPluginsAreRefused) {
  TempDir dir;
  std::string path = dir.write("config", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:443"}}]
users: [{name: u, user: {exec: {command: aws, args: [eks, get-token]}}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  EXPECT_THROW(
      {
        try {
          load_kubeconfig(path);
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("exec"), std::string::npos) << e.what();
          throw;
        }
      },
      std::runtime_error);
}

TEST(Kubeconfig, ClusterWithoutServerIsAnError) {
  TempDir dir;
  std::string path = dir.write("config", R"(current-context: c
clusters: [{name: k, cluster: {certificate-authority: ca.pem}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  EXPECT_THROW(load_kubeconfig(path), std::runtime_error);
}

TEST(Kubeconfig, YamlSyntaxErrorNamesFileAndLine) {
  TempDir dir;
  std::string path = dir.write("config", "current-context: c\nclusters: [\n");
  try {
    load_kubeconfig(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":", 0), 0u) << e.what();
  }
}

TEST(Kubeconfig, Base64AcceptsPaddingNewlinesAndUrlAlphabet) {
  EXPECT_EQ(base64_decode("aGVsbG8gd29ybGQ="), "hello world");
  EXPECT_EQ(base64_decode("aGVs\nbG8="), "hello");
  EXPECT_EQ(base64_decode("-_8="), std::string("\xfb\xff", 2));
  EXPECT_THROW(base64_decode("aGV*"), std::runtime_error);
}

TEST(InCluster, ServiceAccountFilesAndServiceEnvironment) {
  TempDir dir;
  dir.write("token", "tok\n");
  dir.write("ca.crt", "pem");
  dir.write("namespace", "sluice-system\n");
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  auto getenv = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  ApiServerConfig c = in_cluster_config(dir.path(), getenv);
  EXPECT_EQ(c.server, "https://10.96.0.1:443");
  EXPECT_EQ(c.token_file, dir.path() + "/token");
  EXPECT_EQ(c.ca_file, dir.path() + "/ca.crt");
  EXPECT_EQ(c.namespace_, "sluice-system");

  env["KUBERNETES_SERVICE_HOST"] = "fd00::1";
  EXPECT_EQ(in_cluster_config(dir.path(), getenv).server, "https://[fd00::1]:443");
}

TEST(InCluster, OutsideAPodSaysSo) {
  TempDir dir;
  auto no_env = [](const char*) -> const char* { return nullptr; };
  EXPECT_THROW(in_cluster_config(dir.path(), no_env), std::runtime_error);
}
