#include "k8s/api_client.h"

#include <curl/curl.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

namespace sluice::k8s {

namespace {

struct Transfer {
  CURL* curl = nullptr;
  const std::function<bool(std::string_view)>* on_line = nullptr;
  const std::atomic<bool>* stop = nullptr;
  std::string pending;   // stream: bytes after the last newline; get: the body
  ApiResponse* response = nullptr;
  bool streaming = false;
  bool aborted_by_reader = false;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!t->on_line) {
    t->pending.append(data, n);
    return n;
  }
  if (!t->streaming) {
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    t->streaming = status == 200;
  }
  t->pending.append(data, n);
  if (!t->streaming) return n;   // an error body: kept whole for the caller
  size_t start = 0;
  for (size_t nl; (nl = t->pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(t->pending.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (!(*t->on_line)(line)) {
      t->aborted_by_reader = true;
      return 0;   // makes curl stop with CURLE_WRITE_ERROR
    }
  }
  t->pending.erase(0, start);
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->stop->load() ? 1 : 0;
}

std::string read_token(const ApiServerConfig& c) {
  if (c.token_file.empty()) return c.token;
  std::ifstream in(c.token_file);
  std::ostringstream s;
  s << in.rdbuf();
  std::string token = s.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return token.empty() ? c.token : token;
}

void set_blob(CURL* curl, CURLoption option, const std::string& pem) {
  curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  curl_easy_setopt(curl, option, &blob);
}

}  // namespace

ApiClient::ApiClient(ApiServerConfig config) : config_(std::move(config)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

ApiResponse ApiClient::get(const std::string& path_and_query, long timeout_seconds,
                           const std::atomic<bool>& stop) const {
  return perform(path_and_query, timeout_seconds, nullptr, stop);
}

ApiResponse ApiClient::stream(const std::string& path_and_query, long timeout_seconds,
                              const std::function<bool(std::string_view)>& on_line,
                              const std::atomic<bool>& stop) const {
  return perform(path_and_query, timeout_seconds, &on_line, stop);
}

ApiResponse ApiClient::perform(const std::string& path_and_query, long timeout_seconds,
                               const std::function<bool(std::string_view)>* on_line,
                               const std::atomic<bool>& stop) const {
  ApiResponse response;
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    response.error = "curl_easy_init failed";
    return response;
  }
  Transfer t{curl.get(), on_line, &stop, {}, &response};
  const std::string url = config_.server + path_and_query;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_seconds);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sluiced");
  // A dead peer on a quiet watch is noticed by TCP keepalive, not by waiting
  // for the whole timeout.
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);

  if (!config_.ca_pem.empty()) set_blob(c, CURLOPT_CAINFO_BLOB, config_.ca_pem);
  else if (!config_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, config_.ca_file.c_str());
  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!config_.client_cert_pem.empty()) set_blob(c, CURLOPT_SSLCERT_BLOB, config_.client_cert_pem);
  else if (!config_.client_cert_file.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, config_.client_cert_file.c_str());
  if (!config_.client_key_pem.empty()) set_blob(c, CURLOPT_SSLKEY_BLOB, config_.client_key_pem);
  else if (!config_.client_key_file.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, config_.client_key_file.c_str());

  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  const std::string token = read_token(config_);
  std::string auth;
  if (!token.empty()) {
    auth = "Authorization: Bearer " + token;
    headers = curl_slist_append(headers, auth.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  if (!on_line || !t.streaming) response.body = std::move(t.pending);
  if (rc != CURLE_OK && !(t.aborted_by_reader && rc == CURLE_WRITE_ERROR)) {
    response.error = stop.load() ? "stopped" : curl_easy_strerror(rc);
  }
  return response;
}

}  // namespace sluice::k8s
