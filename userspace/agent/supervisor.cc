#include "agent/supervisor.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "proxy/listen_sockets.h"

namespace sluice::agent {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kListenFdsStart = 3;   // where socket activation puts the first descriptor
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
constexpr auto kStableRun = std::chrono::seconds(10);   // a child that lived this long resets the backoff

// In the forked child, before exec: the listeners at 3..3+N-1 without
// close-on-exec, LISTEN_FDS/LISTEN_PID as systemd sets them, the signal mask
// the supervisor started with, and SIGTERM (drain) if the supervisor dies.
// The supervisor is single-threaded, so setenv after fork is safe here.
[[noreturn]] void exec_child(const SupervisorOptions& options, const std::vector<int>& listeners,
                             const sigset_t& original_mask, pid_t supervisor) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != supervisor) _exit(1);   // the supervisor died before prctl
  const int count = static_cast<int>(listeners.size());
  std::vector<int> moved;
  for (int fd : listeners) {
    // Out of the way first: a listener may already sit where another goes.
    const int high = fcntl(fd, F_DUPFD_CLOEXEC, kListenFdsStart + count);
    if (high < 0) _exit(127);
    moved.push_back(high);
  }
  for (int i = 0; i < count; ++i) {
    if (dup2(moved[i], kListenFdsStart + i) < 0) _exit(127);   // dup2 clears close-on-exec
  }
  setenv("LISTEN_FDS", std::to_string(count).c_str(), 1);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  unsetenv("LISTEN_FDNAMES");
  sigprocmask(SIG_SETMASK, &original_mask, nullptr);
  std::vector<char*> argv;
  for (const auto& arg : options.child_args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execv(options.program.c_str(), argv.data());
  std::fprintf(stderr, "sluiced --supervise: exec %s: %s\n", options.program.c_str(), std::strerror(errno));
  _exit(127);
}

std::string describe_end(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("was killed by SIG") + (name ? name : std::to_string(WTERMSIG(status)).c_str());
  }
  return "ended (status " + std::to_string(status) + ")";
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int supervise(const SupervisorOptions& options) {
  std::vector<int> listeners;
  for (const auto& address : options.listen_addresses) listeners.push_back(proxy::open_listen_socket(address));

  sigset_t handled, original;
  sigemptyset(&handled);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD}) sigaddset(&handled, sig);
  sigprocmask(SIG_BLOCK, &handled, &original);

  const pid_t self = getpid();
  pid_t child = -1;
  Clock::time_point started{}, restart_at{};
  Clock::duration backoff{};
  bool stopping = false;

  auto start_child = [&] {
    const pid_t pid = fork();
    if (pid < 0) {
      spdlog::error("supervisor: fork: {}; retrying in {} ms", std::strerror(errno), kMaxBackoff.count());
      restart_at = Clock::now() + kMaxBackoff;
      return;
    }
    if (pid == 0) exec_child(options, listeners, original, self);
    child = pid;
    started = Clock::now();
    spdlog::info("supervisor: started sluiced (pid {}) with {} L7 listener(s)", pid, listeners.size());
  };

  spdlog::info("supervisor: holding the L7 listeners on {} across restarts of sluiced",
               fmt::join(options.listen_addresses, " and "));
  start_child();
  for (;;) {
    timespec wait{1, 0};
    if (child < 0) {
      const auto left = std::max(Clock::duration::zero(), restart_at - Clock::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      wait = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    }
    const int sig = sigtimedwait(&handled, nullptr, &wait);
    if (sig < 0) {   // timeout (or EINTR)
      if (child < 0 && !stopping && Clock::now() >= restart_at) start_child();
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      if (child < 0) return 0;
      if (!stopping) spdlog::info("supervisor: SIG{}: stopping sluiced (pid {})", sigabbrev_np(sig), child);
      stopping = true;
      kill(child, sig);
      continue;
    }
    if (sig == SIGHUP || sig == SIGUSR1) {
      if (child > 0) kill(child, sig);
      continue;
    }
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != child) continue;
      child = -1;
      if (stopping) {
        spdlog::info("supervisor: sluiced (pid {}) {}; closing the L7 listeners", pid, describe_end(status));
        return exit_code_of(status);
      }
      if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
        spdlog::error("supervisor: sluiced (pid {}) exited with status 2 (bad usage); not restarting", pid);
        return 2;
      }
      const auto now = Clock::now();
      if (now - started >= kStableRun) backoff = Clock::duration::zero();
      else backoff = backoff == Clock::duration::zero() ? Clock::duration(kFirstBackoff)
                                                        : std::min<Clock::duration>(backoff * 2, kMaxBackoff);
      restart_at = now + backoff;
      spdlog::warn("supervisor: sluiced (pid {}) {} after {:.1f} s; the L7 listeners stay open (new connections wait "
                   "in their backlog); starting a new one {}",
                   pid, describe_end(status), std::chrono::duration<double>(now - started).count(),
                   backoff == Clock::duration::zero()
                       ? std::string("now")
                       : fmt::format("in {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count()));
      if (backoff == Clock::duration::zero()) start_child();
    }
  }
}

}  // namespace sluice::agent
