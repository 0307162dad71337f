// Watches the config directory with inotify and calls back once a burst of
// changes has settled. Editors save by writing a temp file and renaming it
// over the original (or deleting and re-creating it), which produces several
// events in a few milliseconds; the debounce turns such a burst into one
// reload, so the compiler never sees a half-written file set. Events on
// files the loader does not read are ignored (event_concerns_config).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

namespace sluice::agent {

// Whether an inotify event on `name` in `dir` can change what the config
// loader reads: *.yaml and *.yml files, directories (followed symlinks
// included) and Kubernetes' "..data" symlink. Other files (a README, an
// editor's swap or backup file, dot-entries the loader skips) do not reload.
bool event_concerns_config(const std::string& dir, std::string_view name, uint32_t mask);

class ConfigWatcher {
 public:
  using Callback = std::function<void()>;

  // Throws std::runtime_error naming the directory if it cannot be watched.
  ConfigWatcher(std::string dir, std::chrono::milliseconds debounce, Callback on_change);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  void start();
  void stop();

 private:
  void run();

  std::string dir_;
  std::chrono::milliseconds debounce_;
  Callback on_change_;
  int inotify_fd_ = -1;
  int stop_fd_ = -1;   // eventfd that wakes the poll loop on stop()
  std::thread thread_;
  std::atomic<bool> running_{false};
};

}  // namespace sluice::agent
