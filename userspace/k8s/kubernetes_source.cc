#include "k8s/kubernetes_source.h"

#include <spdlog/spdlog.h>

#include "config/duration.h"

namespace sluice::k8s {

using nlohmann::json;
using std::chrono::milliseconds;

Backoff::Backoff(milliseconds initial, milliseconds max, uint64_t seed)
    : initial_(initial), max_(std::max(initial, max)), ceiling_(initial), rng_(seed) {}

milliseconds Backoff::next() {
  const auto c = ceiling_.count();
  std::uniform_int_distribution<int64_t> pick(c / 2, c);
  const milliseconds delay(pick(rng_));
  ceiling_ = std::min(ceiling_ * 2, max_);
  return delay;
}

KubernetesSource::KubernetesSource(ApiServerConfig config, SourceOptions options, std::function<void()> on_change)
    : client_(std::move(config)), options_(std::move(options)), on_change_(std::move(on_change)) {
  for (const auto& k : options_.kinds) resources_.push_back(std::make_unique<Resource>(k));
}

KubernetesSource::~KubernetesSource() { stop(); }

void KubernetesSource::start() {
  started_ = true;
  for (auto& r : resources_) r->thread = std::thread([this, res = r.get()] { run_resource(*res); });
  debounce_thread_ = std::thread([this] { run_debounce(); });
}

void KubernetesSource::stop() {
  if (!started_) return;
  started_ = false;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& r : resources_) {
    if (r->thread.joinable()) r->thread.join();
  }
  if (debounce_thread_.joinable()) debounce_thread_.join();
}

bool KubernetesSource::synced() const {
  std::lock_guard lock(mu_);
  for (const auto& r : resources_) {
    if (!r->synced) return false;
  }
  return true;
}

std::vector<config::SourceText> KubernetesSource::sources() const {
  std::lock_guard lock(mu_);
  std::vector<config::SourceText> out;
  for (const auto& r : resources_) r->store.append_sources(out);
  return out;
}

namespace {

// The Status message of an error body ({"kind":"Status","message":...}), else the body's start.
std::string error_text(const ApiResponse& resp) {
  if (!resp.error.empty()) return resp.error;
  json status = json::parse(resp.body, nullptr, false);
  std::string msg = status.is_object() ? status.value("message", std::string()) : std::string();
  if (msg.empty()) msg = resp.body.substr(0, 200);
  return "HTTP " + std::to_string(resp.status) + (msg.empty() ? "" : ": " + msg);
}

}  // namespace

json KubernetesSource::status_json() const {
  std::lock_guard lock(mu_);
  json resources = json::array();
  bool all_synced = true;
  for (const auto& r : resources_) {
    all_synced = all_synced && r->synced;
    json e = {{"resource", r->store.kind().api_version() + "/" + r->store.kind().plural},
              {"synced", r->synced},
              {"watching", r->watching},
              {"resource_version", r->store.resource_version()},
              {"objects", r->store.size()},
              {"lists", r->lists},
              {"watches", r->watches},
              {"expired", r->expired},
              {"last_error", nullptr}};
    if (!r->last_error.empty()) e["last_error"] = {{"at", config::format_utc_time(r->last_error_at)}, {"message", r->last_error}};
    resources.push_back(std::move(e));
  }
  return {{"server", client_.config().server},
          {"credentials", client_.config().description},
          {"synced", all_synced},
          {"resources", std::move(resources)}};
}

void KubernetesSource::record_error(Resource& r, const std::string& error) {
  {
    std::lock_guard lock(mu_);
    r.last_error = error;
    r.last_error_at = std::chrono::system_clock::now();
    r.watching = false;
  }
  if (!stop_) spdlog::warn("kubernetes {}: {}", r.store.kind().collection_path(), error);
}

void KubernetesSource::mark_changed() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
    last_change_ = std::chrono::steady_clock::now();
  }
  cv_.notify_all();
}

void KubernetesSource::sleep_for(milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_.load(); });
}

bool KubernetesSource::list(Resource& r, bool& gone) {
  const ResourceKind& kind = r.store.kind();
  json all = {{"items", json::array()}, {"metadata", json::object()}};
  std::string cont;
  do {
    std::string query = kind.collection_path() + "?limit=" + std::to_string(options_.list_page_size);
    if (!cont.empty()) query += "&continue=" + cont;
    ApiResponse resp = client_.get(query, 120, stop_);
    if (resp.error.empty() && resp.status == 404 && cont.empty()) {
      // The resource is not served (the Istio CRDs are not installed): no
      // objects of it, and the rest of the config still syncs. Retried later.
      bool changed;
      {
        std::lock_guard lock(mu_);
        ++r.lists;
        changed = r.store.replace(all) || !r.synced;
        r.synced = true;
      }
      record_error(r, "not served by the API server (HTTP 404; CRD not installed?)");
      if (changed) mark_changed();
      return false;
    }
    if (!resp.error.empty() || resp.status != 200) {
      gone = resp.status == 410;   // a continue token that expired: start the list over
      record_error(r, "list: " + error_text(resp));
      return false;
    }
    json page = json::parse(resp.body, nullptr, false);
    if (!page.is_object() || !page.contains("items") || !page["items"].is_array()) {
      record_error(r, "list: response is not a " + kind.kind + "List");
      return false;
    }
    for (auto& item : page["items"]) all["items"].push_back(std::move(item));
    const json meta = page.value("metadata", json::object());
    all["metadata"]["resourceVersion"] = meta.value("resourceVersion", std::string());
    cont = meta.value("continue", std::string());
  } while (!cont.empty() && !stop_);
  if (stop_) return false;
  bool changed;
  try {
    std::lock_guard lock(mu_);
    // The first list counts as a change even when empty: it may be what
    // completes the initial sync.
    changed = r.store.replace(all) || !r.synced;
    ++r.lists;
    r.synced = true;
  } catch (const std::exception& e) {
    record_error(r, std::string("list: ") + e.what());
    return false;
  }
  spdlog::info("kubernetes {}: listed {} objects at resourceVersion {}", kind.collection_path(),
               all["items"].size(), r.store.resource_version());
  if (changed) mark_changed();
  return true;
}

bool KubernetesSource::watch(Resource& r, bool& gone) {
  const ResourceKind& kind = r.store.kind();
  std::string rv;
  {
    std::lock_guard lock(mu_);
    rv = r.store.resource_version();
    r.watching = true;
    ++r.watches;
  }
  const std::string query = kind.collection_path() + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + rv +
                            "&timeoutSeconds=" + std::to_string(options_.watch_timeout_seconds);
  std::string stream_error;
  ApiResponse resp = client_.stream(
      query, options_.watch_timeout_seconds + 30,
      [&](std::string_view line) {
        WatchEvent ev;
        try {
          ev = parse_watch_event(line);
        } catch (const std::exception& e) {
          stream_error = std::string("watch: ") + e.what();
          return false;
        }
        if (ev.type == EventType::Error) {
          gone = ev.error_code == 410;
          stream_error = "watch: ERROR event " + std::to_string(ev.error_code) + ": " + ev.error_message;
          return false;
        }
        bool changed = false;
        try {
          std::lock_guard lock(mu_);
          changed = r.store.apply(ev);
        } catch (const std::exception& e) {
          stream_error = std::string("watch: ") + e.what();
          return false;
        }
        if (changed) mark_changed();
        return true;
      },
      stop_);
  {
    std::lock_guard lock(mu_);
    r.watching = false;
  }
  if (stop_) return true;
  if (resp.status == 410) gone = true;
  if (!stream_error.empty()) {
    record_error(r, stream_error);
    return false;
  }
  if (!resp.error.empty() || resp.status != 200) {
    record_error(r, "watch: " + error_text(resp));
    return false;
  }
  return true;   // the server ended the watch (timeoutSeconds): resume from the last resourceVersion
}

void KubernetesSource::run_resource(Resource& r) {
  Backoff backoff(options_.backoff_initial, options_.backoff_max);
  bool need_list = true;
  bool just_listed = false;
  while (!stop_) {
    bool gone = false;
    const bool listing = need_list;
    bool ok = need_list ? list(r, gone) : watch(r, gone);
    if (stop_) break;
    if (gone) {
      // 410 Gone: the resourceVersion we hold was compacted away; only a
      // fresh list can say what changed meanwhile. A 410 on a list, or on
      // the watch right after one, backs off: a server that keeps answering
      // so must not be hammered with lists.
      {
        std::lock_guard lock(mu_);
        ++r.expired;
      }
      spdlog::info("kubernetes {}: resourceVersion expired (410); listing again", r.store.kind().collection_path());
      if (listing || just_listed) sleep_for(backoff.next());
      need_list = true;
      just_listed = false;
      continue;
    }
    just_listed = listing && ok;
    if (ok) {
      need_list = false;
      backoff.reset();
      continue;
    }
    sleep_for(backoff.next());
  }
}

void KubernetesSource::run_debounce() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait(lock, [this] { return stop_ || dirty_; });
    if (stop_) break;
    const auto quiet_until = last_change_ + options_.debounce;
    if (std::chrono::steady_clock::now() < quiet_until) {
      cv_.wait_until(lock, quiet_until, [this] { return stop_.load(); });
      continue;   // look again: a change may have come in meanwhile
    }
    bool all_synced = true;
    for (const auto& r : resources_) all_synced = all_synced && r->synced;
    if (!all_synced) {
      // Wait for the rest of the initial lists: a snapshot of half the
      // resources would route to subsets whose rules have not arrived yet.
      cv_.wait_for(lock, options_.debounce, [this] { return stop_.load(); });
      continue;
    }
    dirty_ = false;
    lock.unlock();
    on_change_();
    lock.lock();
  }
}

}  // namespace sluice::k8s
