#include "agent/config_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "config/input_limits.h"

namespace sluice::agent {

bool event_concerns_config(const std::string& dir, std::string_view name, uint32_t mask) {
  if (name.empty()) return true;   // the directory itself went or moved
  // Kubernetes' ConfigMap volumes: every file is a symlink through "..data",
  // and an update swaps that one symlink.
  if (name == "..data") return true;
  if (name.front() == '.') return false;   // the loader skips dot-entries (editor temp and swap files too)
  if (mask & IN_ISDIR) return true;
  if (config::is_config_file_name(name)) return true;
  // Anything else matters only if it is (or was) a directory the loader
  // walks: a symlink to one does not say IN_ISDIR. A name that is gone and
  // carried a file extension was a file.
  struct stat st {};
  if (::stat((dir + "/" + std::string(name)).c_str(), &st) == 0) return S_ISDIR(st.st_mode);
  const size_t dot = name.rfind('.');
  return dot == std::string_view::npos && !name.ends_with('~');
}

ConfigWatcher::ConfigWatcher(std::string dir, std::chrono::milliseconds debounce, Callback on_change)
    : dir_(std::move(dir)), debounce_(debounce), on_change_(std::move(on_change)) {
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (inotify_fd_ < 0 || stop_fd_ < 0) {
    throw std::runtime_error(std::string("inotify: ") + std::strerror(errno));
  }
  // IN_MOVED_TO/IN_CREATE catch rename-over and re-create saves; IN_CLOSE_WRITE
  // catches in-place writes only once the writer is done.
  constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                             IN_DELETE_SELF | IN_MOVE_SELF;
  if (inotify_add_watch(inotify_fd_, dir_.c_str(), kMask) < 0) {
    int err = errno;
    close(inotify_fd_);
    close(stop_fd_);
    throw std::runtime_error("cannot watch config directory '" + dir_ + "': " + std::strerror(err));
  }
}

ConfigWatcher::~ConfigWatcher() {
  stop();
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void ConfigWatcher::start() {
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

void ConfigWatcher::stop() {
  if (!running_.exchange(false)) return;
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(stop_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void ConfigWatcher::run() {
  alignas(struct inotify_event) char buf[4096];
  bool pending = false;
  while (running_) {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int timeout = pending ? static_cast<int>(debounce_.count()) : -1;
    int n = poll(fds, 2, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents & POLLIN) return;
    if (n == 0) {  // quiet for a whole debounce period: the burst is over
      pending = false;
      on_change_();
      continue;
    }
    bool relevant = false;
    ssize_t len;
    while ((len = read(inotify_fd_, buf, sizeof buf)) > 0) {
      for (char* p = buf; p < buf + len;) {
        auto* ev = reinterpret_cast<struct inotify_event*>(p);
        std::string_view name = ev->len ? std::string_view(ev->name) : std::string_view();
        if (!relevant && event_concerns_config(dir_, name, ev->mask)) relevant = true;
        p += sizeof(struct inotify_event) + ev->len;
      }
    }
    if (relevant) pending = true;
  }
}

}  // namespace sluice::agent
