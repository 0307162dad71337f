// sluiced: the node agent. Loads and attaches the XDP steering program (or
// re-uses the pinned one), starts the L7 proxy workers, compiles the config
// directory into a snapshot and applies it to both planes, watches the
// directory, and serves the admin API. SIGTERM drains; SIGHUP reloads;
// SIGUSR1 reopens the access log (rotation).
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "admin/admin_server.h"
#include "agent/admin_api.h"
#include "agent/agent.h"
#include "agent/config_watcher.h"
#include "agent/datapath_upkeep.h"
#include "agent/local_routes.h"
#include "agent/planes.h"
#include "bpfmaps/bpf_datapath.h"
#include "config/compiler.h"
#include "config/weight_override.h"
#include "proxy/proxy.h"

namespace {

struct Options {
  std::string config_dir;
  std::vector<std::string> interfaces;
  std::string admin = "127.0.0.1:15000";
  unsigned workers = 0;
  std::string pin_dir = SLUICE_DEFAULT_PIN_DIR;
  std::string xdp_mode = "auto";
  bool no_xdp = false;
  std::string l7_listen = "127.0.0.1:15001";
  std::string l7_listen6 = "[::1]:15001";   // empty: no IPv6 listener
  double drain_timeout_s = 30;
  double websocket_idle_timeout_s = 300;   // Envoy's stream_idle_timeout
  bool detach_on_exit = false;
  std::string log_level = "info";
  sluice::bpfmaps::DatapathOptions datapath;   // map sizes (--max-*, --maglev-slots, --conntrack-flows)
  unsigned debounce_ms = 200;
  unsigned config_parse_threads = 0;    // 0: one per CPU
  std::string access_log;               // empty: off
  std::string access_log_format = "text";
  uint32_t request_body_buffer_limit = sluice::proxy::ProxyOptions{}.request_body_buffer_limit;
  bool generate_request_id = sluice::proxy::ProxyOptions{}.generate_request_id;
  bool append_forwarded_for = sluice::proxy::ProxyOptions{}.append_forwarded_for;
  std::string dpdk_stats = "/run/sluice/sluice-fwd.json";
};

sluice::bpfmaps::AttachMode parse_mode(const std::string& m) {
  if (m == "native") return sluice::bpfmaps::AttachMode::Native;
  if (m == "generic") return sluice::bpfmaps::AttachMode::Generic;
  return sluice::bpfmaps::AttachMode::Auto;
}

// Waits for the proxy's workers to finish in-flight requests, up to `timeout`;
// then closes whatever is left. Returns false if the workers still did not
// exit: the caller must not run destructors under them.
bool drain_proxy(sluice::proxy::Proxy& proxy, std::chrono::duration<double> timeout) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto shared = std::make_shared<Shared>();
  proxy.drain();
  std::thread waiter([&proxy, shared] {
    proxy.wait();
    std::lock_guard lock(shared->mu);
    shared->done = true;
    shared->cv.notify_all();
  });
  std::unique_lock lock(shared->mu);
  if (!shared->cv.wait_for(lock, timeout, [&] { return shared->done; })) {
    spdlog::warn("drain timeout ({:.0f}s) reached; closing remaining connections", timeout.count());
    proxy.stop();
    if (!shared->cv.wait_for(lock, std::chrono::seconds(5), [&] { return shared->done; })) {
      spdlog::error("proxy workers did not stop within 5s of being told to");
      waiter.detach();
      return false;
    }
  }
  lock.unlock();
  waiter.join();
  return true;
}

// A reload of a big directory builds the next snapshot (and its parse) while
// the serving one is alive; once the old one is dropped glibc keeps the freed
// pages in its arenas, so RSS would stay at the peak of the largest reload.
// The main loop returns them (malloc_trim) a second after a reload: by then
// the proxy workers, which each hold the snapshot they serve until their next
// loop turn, have let go of the old one.
std::atomic<bool> trim_pending{false};

void reload_and_release_memory(sluice::agent::Agent& agent) {
  agent.reload_from_files();
  trim_pending.store(true, std::memory_order_release);
}

bool ipv6_available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// "HOST:PORT" whose host is an address of `family` ("[v6]:port" for IPv6).
CLI::Validator listen_address(int family) {
  return CLI::Validator(
      [family](std::string& value) -> std::string {
        if (value.empty() && family == AF_INET6) return {};   // no IPv6 listener
        std::string host = value.substr(0, value.rfind(':'));
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        unsigned char buf[16];
        if (value.rfind(':') == std::string::npos || inet_pton(family, host.c_str(), buf) != 1) {
          return std::string("expected ") + (family == AF_INET ? "IPV4:PORT" : "[IPV6]:PORT") + ", got '" + value +
                 "'";
        }
        return {};
      },
      "");
}

int run(const Options& opt) {
  namespace sa = sluice::agent;
  namespace fs = std::filesystem;
  if (!fs::is_directory(opt.config_dir)) {
    spdlog::error("--config-dir {}: not a directory", opt.config_dir);
    return 2;
  }

  // Signals are taken synchronously by the main thread; every other thread
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<sluice::bpfmaps::BpfDatapath> datapath;
  std::unique_ptr<sa::XdpPlane> xdp;
  std::unique_ptr<sa::LocalRoutes> local_routes;
  std::vector<std::string> iface_report;
  std::unique_ptr<sa::RedirectTargetWatch> redirect_watch;
  std::unique_ptr<sa::ConntrackReapWatch> reap_watch;
  if (!opt.no_xdp) {
    sluice::bpfmaps::DatapathOptions dopt = opt.datapath;
    dopt.pin_dir = opt.pin_dir;
    datapath = std::make_unique<sluice::bpfmaps::BpfDatapath>(dopt);
    datapath->load();
    spdlog::info("datapath loaded ({} pinned maps under {})",
                 datapath->reused_pinned_maps() ? "re-using" : "new", opt.pin_dir);
    sa::reset_stale_l7_counts(*datapath);
    for (const auto& ifname : opt.interfaces) {
      auto a = datapath->attach(ifname, parse_mode(opt.xdp_mode));
      spdlog::info("xdp attached to {} in {} mode{}", a.name, a.mode, a.reused ? " (re-used pinned link)" : "");
      iface_report.push_back(a.name + " (" + a.mode + ")");
    }
    datapath->attach_sk_lookup();
    redirect_watch = std::make_unique<sa::RedirectTargetWatch>(*datapath, std::chrono::seconds(5));
    redirect_watch->check();
    // A DPDK forwarder counts its own flows into the same least-request
    // map; they are not in this conntrack, so evictions are not reconciled.
    reap_watch = std::make_unique<sa::ConntrackReapWatch>(*datapath, std::chrono::seconds(2), opt.dpdk_stats.empty());
    xdp = std::make_unique<sa::XdpPlane>(*datapath);
    local_routes = std::make_unique<sa::LocalRoutes>();
  }

  sluice::proxy::ProxyOptions popt;
  popt.workers = opt.workers;
  popt.request_body_buffer_limit = opt.request_body_buffer_limit;
  popt.generate_request_id = opt.generate_request_id;
  popt.websocket_idle_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(opt.websocket_idle_timeout_s * 1000));
  popt.append_forwarded_for = opt.append_forwarded_for;
  // Listener i is sk_lookup slot i: IPv4 VIPs go to slot SLUICE_L7_LISTENER_V4,
  // IPv6 VIPs to SLUICE_L7_LISTENER_V6 (a socket of the lookup's family).
  static_assert(SLUICE_L7_LISTENER_V4 == 0 && SLUICE_L7_LISTENER_V6 == 1);
  popt.listeners.push_back({opt.l7_listen, "", 0});
  if (!opt.l7_listen6.empty()) {
    if (ipv6_available()) popt.listeners.push_back({opt.l7_listen6, "", 0});
    else spdlog::warn("IPv6 is disabled on this host: no IPv6 L7 listener, IPv6 VIPs on L7 ports are not served");
  }
  if (datapath) popt.active_requests = std::make_shared<sa::BpfActiveRequests>(opt.pin_dir);
  if (!opt.access_log.empty()) {
    popt.access_log = std::make_shared<sluice::proxy::AccessLogFile>(opt.access_log);
    popt.access_log_format = sluice::proxy::parse_access_log_format(opt.access_log_format);
    spdlog::info("access log: {} ({})", opt.access_log, opt.access_log_format);
  }
  sluice::proxy::Proxy proxy(popt, std::make_shared<sluice::model::Snapshot>());
  proxy.start();
  if (datapath) {
    auto fds = proxy.listener_fds();
    for (uint32_t slot = 0; slot < fds.size(); ++slot) datapath->register_l7_listener(fds[slot], slot);
  }
  sa::ProxyPlane proxy_plane(proxy);

  std::vector<sa::DataPlane*> planes;
  if (xdp) planes.push_back(xdp.get());
  if (local_routes) planes.push_back(local_routes.get());
  planes.push_back(&proxy_plane);

  const std::string dir = opt.config_dir;
  // Called under the agent's lock only, so the loader has one caller at a time.
  auto loader = std::make_shared<sluice::config::IncrementalLoader>(
      sluice::config::ParseOptions{opt.config_parse_threads});
  sa::Agent agent(
      [dir, loader](uint64_t version) {
        auto r = sluice::config::compile_paths(*loader, {dir}, version);
        spdlog::debug("config: parsed {} of {} files (the others unchanged)", loader->last_counts().parsed,
                      loader->last_counts().files);
        return sa::CompileOutcome{r.snapshot, r.diagnostics};
      },
      [](const sluice::model::Snapshot& base, const std::string& host, const sa::SubsetWeights& weights,
         uint64_t version) {
        auto r = sluice::config::override_weights(base, host, weights, version);
        return sa::OverrideOutcome{r.snapshot, r.error};
      },
      planes);
  reload_and_release_memory(agent);

  sluice::admin::AdminServer admin(opt.admin);
  sa::register_admin_endpoints(admin, {&agent, xdp.get(), &proxy, iface_report, opt.dpdk_stats, redirect_watch.get(),
                                       reap_watch.get()});
  admin.start();
  spdlog::info("admin API on http://{}/ (ready, status, config_dump, clusters, stats/prometheus, weights)",
               admin.local_address());

  sa::ConfigWatcher watcher(opt.config_dir, std::chrono::milliseconds(opt.debounce_ms),
                            [&agent] { reload_and_release_memory(agent); });
  watcher.start();
  spdlog::info("sluiced running: config {}, L7 listeners {}{}, {} interface(s)", opt.config_dir, opt.l7_listen,
               popt.listeners.size() > 1 ? " and " + opt.l7_listen6 : std::string(), opt.interfaces.size());

  for (;;) {
    const timespec one_second{1, 0};
    const int sig = sigtimedwait(&signals, nullptr, &one_second);
    if (sig < 0) {   // timeout (or EINTR)
      if (redirect_watch) redirect_watch->tick();
      if (reap_watch) reap_watch->tick();
      if (trim_pending.exchange(false, std::memory_order_acq_rel)) malloc_trim(0);
      continue;
    }
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", opt.config_dir);
      reload_and_release_memory(agent);
      continue;
    }
    if (sig == SIGUSR1) {
      if (popt.access_log) {
        popt.access_log->reopen();
        spdlog::info("SIGUSR1: reopened access log {}", opt.access_log);
      }
      continue;
    }
    spdlog::info("{}: draining (up to {:.0f}s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", opt.drain_timeout_s);
    break;
  }
  watcher.stop();
  const bool proxy_stopped = drain_proxy(proxy, std::chrono::duration<double>(opt.drain_timeout_s));
  admin.stop();
  if (datapath && opt.detach_on_exit) {
    for (const auto& ifname : opt.interfaces) datapath->detach(ifname);
    local_routes->remove_all();
    datapath->unpin_all();
    spdlog::info("detached and unpinned everything under {}", opt.pin_dir);
  } else if (datapath) {
    spdlog::info("leaving XDP attached and maps pinned under {}: L4 keeps flowing", opt.pin_dir);
  }
  spdlog::info("sluiced stopped");
  if (!proxy_stopped) {
    spdlog::default_logger()->flush();
    std::_Exit(1);   // worker threads still run: skip destructors they might race with
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "sluiced: the sluice node agent. Enforces Istio VirtualService/DestinationRule/ServiceEntry/"
      "WorkloadEntry config on this node: XDP steering for L4 ports, an io_uring proxy for HTTP ports.",
      "sluiced"};
  app.add_option("--config-dir", opt.config_dir, "directory of Istio YAML, watched for changes")
      ->required()
      ->type_name("DIR");
  app.add_option("--iface", opt.interfaces, "interface to attach XDP to (repeat for each)")->type_name("IF");
  app.add_option("--admin", opt.admin, "admin API address")->type_name("HOST:PORT")->capture_default_str();
  app.add_option("--workers", opt.workers, "L7 proxy worker threads (0: one per CPU)")->capture_default_str();
  app.add_option("--pin-dir", opt.pin_dir, "bpffs directory for pinned maps and links")->capture_default_str();
  app.add_option("--xdp-mode", opt.xdp_mode, "XDP attach mode")
      ->check(CLI::IsMember({"auto", "native", "generic"}))
      ->capture_default_str();
  app.add_flag("--no-xdp", opt.no_xdp, "run without the kernel datapath (L7 proxy only)");
  app.add_option("--l7-listen", opt.l7_listen,
                 "the proxy's IPv4 listener; sk_lookup hands every IPv4 L7 VIP:port to it")
      ->type_name("IPV4:PORT")
      ->check(listen_address(AF_INET))
      ->capture_default_str();
  app.add_option("--l7-listen6", opt.l7_listen6,
                 "the proxy's IPv6 listener, for IPv6 L7 VIPs ('' for none; skipped where IPv6 is disabled)")
      ->type_name("[IPV6]:PORT")
      ->check(listen_address(AF_INET6))
      ->capture_default_str();
  app.add_option("--drain-timeout", opt.drain_timeout_s, "seconds SIGTERM waits for in-flight requests")
      ->capture_default_str();
  app.add_flag("--detach-on-exit", opt.detach_on_exit,
               "on exit detach XDP and remove pinned maps (default: leave them so L4 keeps flowing)");
  // Map sizes, set before the BPF programs load (as Cilium's --bpf-lb-map-max).
  // A snapshot that needs more is refused, naming the table and the flag; a
  // restart with other sizes replaces the pinned maps (a layout change).
  auto sizing = app.add_option_group("XDP table sizes",
                                     "set before load; changing one at restart replaces the pinned maps");
  sizing->add_option("--max-services", opt.datapath.max_services,
                     "service ports (VIP x port x protocol) the XDP tables hold")
      ->capture_default_str();
  sizing->add_option("--max-subsets", opt.datapath.max_subsets,
                     "L4 subsets (service port x subset x address family)")
      ->capture_default_str();
  sizing->add_option("--max-backends", opt.datapath.max_backends,
                     "backends (endpoint address x port x protocol, L7 ports included); also sizes subset "
                     "members and round-robin schedules")
      ->capture_default_str();
  sizing->add_option("--maglev-slots", opt.datapath.maglev_slots,
                     "Maglev lookup slots for all consistent-hash subsets together (65537 per default-size table)")
      ->capture_default_str();
  sizing->add_option("--conntrack-flows", opt.datapath.conntrack_flows, "conntrack LRU size (flows)")
      ->capture_default_str();
  app.add_option("--debounce-ms", opt.debounce_ms, "quiet time after a config change before reloading")
      ->capture_default_str();
  app.add_option("--config-parse-threads", opt.config_parse_threads,
                 "threads that parse changed YAML documents side by side (0: one per CPU); fewer keeps CPU for "
                 "the L7 workers while a big change is parsed")
      ->capture_default_str();
  app.add_option("--dpdk-stats", opt.dpdk_stats,
                 "the DPDK forwarder's stats file (sluice-fwd --stats-file), exported as sluice_dpdk_* on "
                 "/stats/prometheus and /stats/dpdk while it exists ('' disables)")
      ->type_name("FILE")
      ->capture_default_str();
  app.add_option("--log-level", opt.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--request-body-buffer-limit", opt.request_body_buffer_limit,
                 "request body bytes kept per request so retries and mirrors can resend it (0: none; larger bodies "
                 "stream and are not retried once sent)")
      ->type_name("BYTES")
      ->capture_default_str();
  app.add_flag("--generate-request-id,!--no-generate-request-id", opt.generate_request_id,
               "give an L7 request without x-request-id a random UUID (sent upstream and to mirrors, logged), as "
               "Envoy does in Istio; on by default");
  app.add_option("--websocket-idle-timeout", opt.websocket_idle_timeout_s,
                 "seconds a WebSocket tunnel may carry nothing either way before it is closed (Envoy's "
                 "stream_idle_timeout; 0: never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--append-x-forwarded-for", opt.append_forwarded_for,
               "append the client's address to x-forwarded-for (Envoy's use_remote_address, as at an Istio "
               "gateway); off: the header passes unchanged, as in a sidecar");
  app.add_option("--access-log", opt.access_log,
                 "write one line per L7 request to this file ('-': stdout); off by default; SIGUSR1 reopens it")
      ->type_name("PATH");
  app.add_option("--access-log-format", opt.access_log_format, "access log layout: Istio's default text or JSON")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (std::string bad = opt.datapath.sizing().check(); !bad.empty()) {
    std::fprintf(stderr, "sluiced: %s\n", bad.c_str());
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("sluiced");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(opt.log_level));
  try {
    return run(opt);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
