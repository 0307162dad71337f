// The API server as a config source: lists and watches each resource of
// watched_kinds() (one thread each), keeps a ResourceStore per resource, and
// once every resource has been listed calls on_change after each burst of
// changes has settled (debounced as the file watcher is). The callback then
// takes sources(): every object as an in-memory loader source.
//
// Per resource: list (paginated), then watch from the list's
// resourceVersion with bookmarks, resuming from the last resourceVersion
// seen when a watch ends; a 410 Gone (HTTP status or ERROR event) means that
// version is compacted away, so the resource is listed again. Errors back
// off exponentially with jitter. stop() ends every request within about a
// second.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/loader.h"
#include "k8s/api_client.h"
#include "k8s/resource_store.h"

namespace sluice::k8s {

// Exponential backoff with "equal jitter": the n-th delay is drawn from
// [c/2, c] where c = min(initial * 2^n, max), so retries from many nodes
// spread out but a delay never drops below half its ceiling.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed = std::random_device{}());
  std::chrono::milliseconds next();
  void reset() { ceiling_ = initial_; }
  std::chrono::milliseconds ceiling() const { return ceiling_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds ceiling_;
  std::mt19937_64 rng_;
};

struct SourceOptions {
  std::chrono::milliseconds debounce{200};
  long watch_timeout_seconds = 300;     // asked of the server (timeoutSeconds); a watch then resumes
  long list_page_size = 500;
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  std::vector<ResourceKind> kinds = watched_kinds();
};

class KubernetesSource {
 public:
  KubernetesSource(ApiServerConfig config, SourceOptions options, std::function<void()> on_change);
  ~KubernetesSource();
  KubernetesSource(const KubernetesSource&) = delete;
  KubernetesSource& operator=(const KubernetesSource&) = delete;

  void start();
  void stop();

  // True once every resource has been listed at least once.
  bool synced() const;
  // Every stored object, resource by resource in watched_kinds() order.
  std::vector<config::SourceText> sources() const;
  // For /status: the server, and per resource whether it is synced and
  // watching, its last resourceVersion, object count, list/watch/relist
  // counts and the last error.
  nlohmann::json status_json() const;

 private:
  struct Resource {
    explicit Resource(const ResourceKind& k) : store(k) {}
    ResourceStore store;                 // guarded by mu_
    bool synced = false;
    bool watching = false;
    uint64_t lists = 0;
    uint64_t watches = 0;
    uint64_t expired = 0;                // 410s that forced a relist
    std::string last_error;
    std::chrono::system_clock::time_point last_error_at;
    std::thread thread;
  };

  void run_resource(Resource& r);
  // Lists the resource into its store; false on error (recorded).
  bool list(Resource& r, bool& gone);
  // Watches from the store's resourceVersion until the watch ends. Returns
  // false on error (recorded); sets `gone` on 410.
  bool watch(Resource& r, bool& gone);
  void record_error(Resource& r, const std::string& error);
  void mark_changed();
  void run_debounce();
  void sleep_for(std::chrono::milliseconds d);

  ApiClient client_;
  SourceOptions options_;
  std::function<void()> on_change_;
  std::vector<std::unique_ptr<Resource>> resources_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_change_;
  std::atomic<bool> stop_{false};
  bool started_ = false;
  std::thread debounce_thread_;
};

}  // namespace sluice::k8s
