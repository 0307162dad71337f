// sluiced: the node agent. Loads and attaches the XDP steering program (or
// re-uses the pinned one), starts the L7 proxy workers, compiles the config
// directory into a snapshot and applies it to both planes, watches the
// directory (and, with --kubernetes, lists and watches the API server's
// objects), and serves the admin API. SIGTERM drains; SIGHUP reloads;
// SIGUSR1 reopens the access log (rotation).
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
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
#include "agent/supervisor.h"
#include "bpfmaps/bpf_datapath.h"
#include "config/compiler.h"
#include "k8s/kubeconfig.h"
#include "k8s/kubernetes_source.h"
#include "config/weight_override.h"
#include "proxy/listen_sockets.h"
#include "proxy/proxy.h"

namespace {

struct Options {
  std::string config_dir;
  bool kubernetes = false;
  std::string kubeconfig;               // empty: in-cluster service account
  std::string kube_context;
  long kube_watch_timeout_s = sluice::k8s::SourceOptions{}.watch_timeout_seconds;
  std::vector<std::string> interfaces;
  std::string admin = "127.0.0.1:15000";
  std::string admin_socket = "/run/sluice/admin.sock";
  std::string admin_token_file;
  unsigned workers = 0;
  std::string pin_dir = SLUICE_DEFAULT_PIN_DIR;
  std::string xdp_mode = "auto";
  bool no_xdp = false;
  std::string l7_listen = "127.0.0.1:15001";
  std::string l7_listen6 = "[::1]:15001";   // empty: no IPv6 listener
  double drain_timeout_s = 30;
  double stream_idle_timeout_s = 300;      // Envoy's stream_idle_timeout (WebSocket tunnels included)
  double request_headers_timeout_s = 10;   // Envoy's request_headers_timeout
  double request_timeout_s = 0;            // Envoy's request_timeout; 0: none
  bool detach_on_exit = false;
  std::string log_level = "info";
  sluice::bpfmaps::DatapathOptions datapath;   // map sizes (--max-*, --maglev-slots, --conntrack-flows)
  unsigned debounce_ms = 200;
  unsigned config_parse_threads = 0;    // 0: one per CPU
  sluice::config::InputLimits config_limits;
  std::string access_log;               // empty: off
  std::string access_log_format = "text";
  uint32_t request_body_buffer_limit = sluice::proxy::ProxyOptions{}.request_body_buffer_limit;
  bool generate_request_id = sluice::proxy::ProxyOptions{}.generate_request_id;
  bool append_forwarded_for = sluice::proxy::ProxyOptions{}.append_forwarded_for;
  std::string path_normalization = "BASE";   // Istio's MeshConfig pathNormalization
  std::string dpdk_stats = "/run/sluice/sluice-fwd.json";
  uint64_t max_connections = 0;   // L7 client connections, all workers; 0: no limit
  uint32_t max_slots_per_worker = sluice::proxy::ProxyOptions{}.max_connections_per_worker;
  uint32_t http2_max_concurrent_streams = sluice::proxy::Http2Limits{}.max_concurrent_streams;
  bool supervise = false;
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

// The files (if any) and the API server's objects as one source list, so a
// change from either goes through the same parse, compile and apply.
sluice::config::CompileResult compile_with_kubernetes(const std::string& dir, const sluice::k8s::KubernetesSource& k8s,
                                                      const sluice::config::ParseOptions& parse, uint64_t version) {
  if (!k8s.synced()) {
    // A file change or SIGHUP before every resource has been listed: a
    // snapshot now would hold half the cluster's objects.
    sluice::config::CompileResult waiting;
    waiting.diagnostics.push_back({sluice::model::Severity::Error, {"kubernetes", 0, 0},
                                   "not every resource has been listed from the API server yet (sluicectl status)"});
    return waiting;
  }
  std::vector<sluice::config::Diagnostic> read_errors;
  std::vector<sluice::config::SourceText> sources;
  if (!dir.empty()) sources = sluice::config::read_config_sources({dir}, read_errors, parse.limits);
  for (auto& s : k8s.sources()) sources.push_back(std::move(s));
  auto parsed = sluice::config::parse_sources(sources, parse);
  parsed.origin = dir.empty() ? "kubernetes" : "files+kubernetes";
  parsed.diagnostics.insert(parsed.diagnostics.begin(), read_errors.begin(), read_errors.end());
  return sluice::config::compile(parsed, version);
}

int run(const Options& opt) {
  namespace sa = sluice::agent;
  namespace fs = std::filesystem;
  // L7 listeners passed by systemd's sluiced.socket or `sluiced --supervise`
  // (sd_listen_fds semantics): they outlive this process, so connections that
  // arrived while no sluiced ran wait in their backlog for this one.
  std::vector<int> inherited = sluice::proxy::take_inherited_sockets();
  std::error_code dir_error;
  if (!opt.config_dir.empty() && !fs::is_directory(opt.config_dir, dir_error)) {
    spdlog::error("--config-dir {}: {}", opt.config_dir, dir_error ? dir_error.message() : "not a directory");
    return 2;
  }

  // Credentials first: a bad kubeconfig or a missing service account stops
  // sluiced before it touches the datapath.
  std::optional<sluice::k8s::ApiServerConfig> api;
  if (opt.kubernetes) {
    api = opt.kubeconfig.empty() ? sluice::k8s::in_cluster_config()
                                 : sluice::k8s::load_kubeconfig(opt.kubeconfig, opt.kube_context);
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

  // Bound first: a second agent on the same socket stops here, before it
  // touches the datapath.
  sluice::admin::AdminServer admin(sluice::admin::AdminListeners{
      opt.admin, opt.admin_socket,
      opt.admin_token_file.empty() ? "" : sluice::admin::read_token_file(opt.admin_token_file)});

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
  popt.stream_idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.stream_idle_timeout_s * 1000));
  popt.request_header_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(opt.request_headers_timeout_s * 1000));
  popt.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.request_timeout_s * 1000));
  popt.append_forwarded_for = opt.append_forwarded_for;
  popt.path_normalisation = *sluice::http::path_normalisation_from_name(opt.path_normalization);
  popt.max_connections = opt.max_connections;
  popt.max_connections_per_worker = opt.max_slots_per_worker;
  popt.http2.max_concurrent_streams = opt.http2_max_concurrent_streams;
  // Listener i is sk_lookup slot i: IPv4 VIPs go to slot SLUICE_L7_LISTENER_V4,
  // IPv6 VIPs to SLUICE_L7_LISTENER_V6 (a socket of the lookup's family).
  static_assert(SLUICE_L7_LISTENER_V4 == 0 && SLUICE_L7_LISTENER_V6 == 1);
  popt.listeners.push_back({opt.l7_listen, "", 0});
  if (!opt.l7_listen6.empty()) {
    if (ipv6_available()) popt.listeners.push_back({opt.l7_listen6, "", 0});
    else spdlog::warn("IPv6 is disabled on this host: no IPv6 L7 listener, IPv6 VIPs on L7 ports are not served");
  }
  for (auto& listener : popt.listeners) {
    listener.inherited_fd = sluice::proxy::claim_inherited_listener(inherited, listener.address);
    if (listener.inherited_fd >= 0) {
      spdlog::info("L7 listener {}: taking over the inherited socket (fd {}) and the connections queued on it",
                   listener.address, listener.inherited_fd);
    }
  }
  if (!inherited.empty()) {
    std::vector<std::string> stray;
    for (int fd : inherited) stray.push_back(sluice::proxy::describe_local_address(fd));
    spdlog::error("inherited socket(s) {} match neither --l7-listen {} nor --l7-listen6 {}: make the socket unit's "
                  "ListenStream= lines and these flags name the same addresses",
                  fmt::join(stray, ", "), opt.l7_listen, opt.l7_listen6.empty() ? "''" : opt.l7_listen6);
    return 2;
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
      sluice::config::ParseOptions{opt.config_parse_threads, opt.config_limits});
  // Set before the first reload, read by the compile function under the agent's lock.
  std::unique_ptr<sluice::k8s::KubernetesSource> k8s;
  sa::Agent agent(
      [dir, loader, &k8s, &opt](uint64_t version) {
        if (k8s) {
          auto r = compile_with_kubernetes(dir, *k8s, sluice::config::ParseOptions{opt.config_parse_threads, opt.config_limits}, version);
          return sa::CompileOutcome{r.snapshot, r.diagnostics};
        }
        auto r = sluice::config::compile_paths(*loader, {dir}, version);
        spdlog::debug("config: parsed {} of {} files (the others unchanged)", loader->last_counts().parsed,
                      loader->last_counts().files);
        return sa::CompileOutcome{r.snapshot, r.diagnostics};
      },
      [](const sluice::model::Snapshot& base, const std::string& host, const sa::SubsetWeights& weights,
         uint64_t version) {
        auto r = sluice::config::override_weights(base, host, weights, version);
        return sa::OverrideOutcome{r.snapshot, r.error, r.views_kept};
      },
      planes);
  if (api) {
    spdlog::info("kubernetes: watching {} ({})", api->server, api->description);
    sluice::k8s::SourceOptions kopt;
    kopt.debounce = std::chrono::milliseconds(opt.debounce_ms);
    kopt.watch_timeout_seconds = opt.kube_watch_timeout_s;
    // The first snapshot waits for every resource's first list (the source
    // calls back once all are synced).
    k8s = std::make_unique<sluice::k8s::KubernetesSource>(*api, kopt,
                                                          [&agent] { reload_and_release_memory(agent); });
  } else {
    reload_and_release_memory(agent);
  }

  // Once a second, both planes' per-subset counters into the window behind
  // /stats/window (sluicectl top, /ui).
  sa::StatsWindow window;
  sa::AdminContext admin_context{
      &agent, xdp.get(), &proxy, iface_report, opt.dpdk_stats, &window,
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()};
  admin_context.redirect_watch = redirect_watch.get();
  admin_context.reap_watch = reap_watch.get();
  if (k8s) admin_context.kubernetes_status = [source = k8s.get()] { return source->status_json(); };
  std::mutex sampler_mu;
  std::condition_variable sampler_cv;
  bool sampler_stop = false;
  std::thread sampler([&] {
    std::unique_lock lock(sampler_mu);
    auto next = std::chrono::steady_clock::now();
    while (!sampler_stop) {
      lock.unlock();
      window.record(sa::sample_planes(admin_context));
      lock.lock();
      next += std::chrono::seconds(1);
      sampler_cv.wait_until(lock, next, [&] { return sampler_stop; });
    }
  });
  sa::register_admin_endpoints(admin, admin_context);
  admin.start();
  if (!opt.admin.empty()) {
    spdlog::info("admin API on http://{}/ ({}; ui, stats/window, stats/prometheus, status, ...)", admin.local_address(),
                 opt.admin_token_file.empty() ? "GET only" : "GET; POST with the bearer token of --admin-token-file");
  }
  if (!opt.admin_socket.empty()) spdlog::info("admin API on unix:{} (every endpoint, root only)", admin.socket_path());

  std::unique_ptr<sa::ConfigWatcher> watcher;
  if (!opt.config_dir.empty()) {
    watcher = std::make_unique<sa::ConfigWatcher>(opt.config_dir, std::chrono::milliseconds(opt.debounce_ms),
                                                  [&agent] { reload_and_release_memory(agent); });
    watcher->start();
  }
  if (k8s) k8s->start();
  spdlog::info("sluiced running: config {}{}, L7 listeners {}{}, {} interface(s)",
               opt.config_dir.empty() ? "(no directory)" : opt.config_dir, k8s ? " + kubernetes" : "", opt.l7_listen,
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
      spdlog::info("SIGHUP: reloading {}{}", opt.config_dir, k8s ? " + kubernetes" : "");
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
  if (watcher) watcher->stop();
  if (k8s) k8s->stop();
  const bool proxy_stopped = drain_proxy(proxy, std::chrono::duration<double>(opt.drain_timeout_s));
  admin.stop();
  {
    std::lock_guard lock(sampler_mu);
    sampler_stop = true;
  }
  sampler_cv.notify_all();
  sampler.join();
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

// The supervisor opens the listeners run() would (the same flags) and runs
// this binary again, with the same arguments minus --supervise.
int supervise(const Options& opt, int argc, char** argv) {
  sluice::agent::SupervisorOptions sopt;
  sopt.listen_addresses.push_back(opt.l7_listen);
  if (!opt.l7_listen6.empty() && ipv6_available()) sopt.listen_addresses.push_back(opt.l7_listen6);
  std::error_code ec;
  sopt.program = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) {
    spdlog::critical("--supervise: cannot find this program (/proc/self/exe): {}", ec.message());
    return 1;
  }
  for (int i = 0; i < argc; ++i) {
    if (!std::string_view(argv[i]).starts_with("--supervise")) sopt.child_args.emplace_back(argv[i]);   // also --supervise=true
  }
  return sluice::agent::supervise(sopt);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "sluiced: the sluice node agent. Enforces Istio VirtualService/DestinationRule/ServiceEntry/"
      "WorkloadEntry config on this node: XDP steering for L4 ports, an io_uring proxy for HTTP ports.",
      "sluiced"};
  auto* config_dir = app.add_option("--config-dir", opt.config_dir, "directory of Istio YAML, watched for changes")
                         ->type_name("DIR");
  auto* kubernetes = app.add_flag(
      "--kubernetes", opt.kubernetes,
      "also (or, without --config-dir, only) take config from the Kubernetes API server: list and watch Services, "
      "EndpointSlices, Pods and the networking.istio.io kinds (in-cluster service account unless --kubeconfig)");
  app.add_option("--kubeconfig", opt.kubeconfig, "with --kubernetes: reach the API server as this kubeconfig says")
      ->type_name("FILE")
      ->needs(kubernetes);
  app.add_option("--kube-context", opt.kube_context, "with --kubeconfig: this context instead of current-context")
      ->type_name("NAME")
      ->needs(kubernetes);
  app.add_option("--kube-watch-timeout", opt.kube_watch_timeout_s,
                 "seconds each watch asks the API server to keep it open (timeoutSeconds) before resuming")
      ->check(CLI::Range(1L, 3600L))
      ->needs(kubernetes)
      ->capture_default_str();
  app.add_option("--iface", opt.interfaces, "interface to attach XDP to (repeat for each)")->type_name("IF");
  app.add_option("--admin", opt.admin,
                 "admin API TCP address: GET endpoints only unless --admin-token-file ('' for none)")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_option("--admin-socket", opt.admin_socket,
                 "admin API Unix socket (mode 0600, root only): every endpoint, including POST /weights ('' for "
                 "none; its directory is created 0700)")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_option("--admin-token-file", opt.admin_token_file,
                 "a file (mode 0600) holding a token of 16+ bytes; the TCP admin listener then also takes POST "
                 "requests carrying 'Authorization: Bearer TOKEN'")
      ->type_name("FILE");
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
  app.add_option("--config-max-file-bytes", opt.config_limits.max_file_bytes,
                 "a config file larger than this is refused (naming it) and the last good config keeps serving")
      ->type_name("BYTES")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--config-max-total-bytes", opt.config_limits.max_total_bytes,
                 "the config files together may not be larger than this")
      ->type_name("BYTES")
      ->check(CLI::PositiveNumber)
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
  app.add_option("--stream-idle-timeout,--websocket-idle-timeout", opt.stream_idle_timeout_s,
                 "seconds an L7 request or WebSocket tunnel may move no byte either way before it ends: 408 if "
                 "no response head went out, else the connection closes (Envoy's stream_idle_timeout; 0: never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--request-headers-timeout", opt.request_headers_timeout_s,
                 "seconds from a request's first byte to its whole head; 408 after (Envoy's request_headers_timeout)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--request-timeout", opt.request_timeout_s,
                 "seconds from a request's head to the end of its body; 408 after (Envoy's request_timeout; "
                 "0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-connections", opt.max_connections,
                 "L7 client connections open at once, all workers (Envoy's overload manager "
                 "global_downstream_max_connections); one over it is closed at accept and counted in "
                 "sluice_downstream_connections_overflow_total (0: no limit)")
      ->capture_default_str();
  app.add_option("--max-slots-per-worker", opt.max_slots_per_worker,
                 "client connections, HTTP/2 streams and upstream connections one L7 worker holds at once (a "
                 "bound on its memory); past it connections are closed at accept, streams refused "
                 "(REFUSED_STREAM), upstream attempts fail, each counted in sluice_slot_limit_refusals_total")
      ->check(CLI::Range(4u, 1u << 24))
      ->capture_default_str();
  app.add_option("--http2-max-concurrent-streams", opt.http2_max_concurrent_streams,
                 "SETTINGS_MAX_CONCURRENT_STREAMS the L7 proxy advertises on HTTP/2 client connections: streams "
                 "one connection has open at once (a gRPC client queues RPCs past it, so long-lived streams "
                 "beyond it wait); each open stream holds a slot and up to 128 KiB of buffers")
      ->check(CLI::Range(1u, 0x7fffffffu))
      ->capture_default_str();
  app.add_flag("--append-x-forwarded-for", opt.append_forwarded_for,
               "append the client's address to x-forwarded-for (Envoy's use_remote_address, as at an Istio "
               "gateway); off: the header passes unchanged, as in a sidecar");
  app.add_option("--path-normalization", opt.path_normalization,
                 "request paths routed on and forwarded, as Istio's MeshConfig pathNormalization: NONE, BASE "
                 "(RFC 3986: dot segments, unreserved escapes, backslashes), MERGE_SLASHES, DECODE_AND_MERGE_SLASHES")
      ->check(CLI::IsMember({"NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"}))
      ->capture_default_str();
  app.add_option("--access-log", opt.access_log,
                 "write one line per L7 request to this file ('-': stdout); off by default; SIGUSR1 reopens it")
      ->type_name("PATH");
  app.add_option("--access-log-format", opt.access_log_format, "access log layout: Istio's default text or JSON")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_flag("--supervise", opt.supervise,
               "run sluiced as a child of a small supervisor that holds the L7 listening sockets and starts a new "
               "sluiced when one dies: new L7 connections wait in the backlog instead of being refused (for nodes "
               "without systemd's sluiced.socket; docs/operations.md)");
  CLI11_PARSE(app, argc, argv);
  if (config_dir->count() == 0 && !opt.kubernetes) {
    std::fprintf(stderr, "sluiced: --config-dir DIR or --kubernetes is required\n");
    return 2;
  }
  if (std::string bad = opt.datapath.sizing().check(); !bad.empty()) {
    std::fprintf(stderr, "sluiced: %s\n", bad.c_str());
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("sluiced");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(opt.log_level));
  try {
    if (opt.supervise) return supervise(opt, argc, argv);
    return run(opt);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
