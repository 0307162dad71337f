// sluice-l7-proxy: the L7 proxy alone, for tests and benchmarks. It serves a
// config directory on explicit listeners (plain binding, no BPF needed):
//
//   sluice-l7-proxy --config-dir DIR --listen 127.0.0.2:9080=productpage:9080 [--workers N]
//
// SIGHUP recompiles the directory and swaps the snapshot; SIGTERM/SIGINT
// drains (in-flight requests finish, keep-alive clients get Connection:
// close) and writes the Prometheus metrics to --metrics-out if given.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "config/compiler.h"
#include "proxy/proxy.h"

namespace {

sluice::model::SnapshotPtr compile_or_report(const std::string& dir, uint64_t version) {
  auto result = sluice::config::compile_paths({dir}, version);
  for (const auto& d : result.diagnostics) {
    if (d.severity == sluice::model::Severity::Error) std::cerr << sluice::model::format_diagnostic(d) << "\n";
  }
  return result.snapshot;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice L7 proxy (standalone)"};
  std::string config_dir, metrics_out, access_log, access_log_format = "text";
  std::vector<std::string> listens;
  unsigned workers = 0;
  uint64_t seed = 0;
  unsigned idle_timeout_ms = 60'000, header_timeout_ms = 10'000;
  auto stream_idle_timeout_ms = static_cast<unsigned>(sluice::proxy::ProxyOptions{}.stream_idle_timeout.count());
  unsigned request_timeout_ms = 0;
  uint32_t body_buffer_limit = sluice::proxy::ProxyOptions{}.request_body_buffer_limit;
  bool generate_request_id = sluice::proxy::ProxyOptions{}.generate_request_id;
  bool append_forwarded_for = sluice::proxy::ProxyOptions{}.append_forwarded_for;
  std::string path_normalization = "BASE";
  uint64_t max_connections = 0;
  uint32_t max_slots = sluice::proxy::ProxyOptions{}.max_connections_per_worker;
  uint32_t http2_max_streams = sluice::proxy::Http2Limits{}.max_concurrent_streams;
  app.add_option("--config-dir", config_dir, "Istio YAML directory")->required();
  app.add_option("--listen", listens,
                 "ADDR:PORT=SERVICE_HOST:SERVICE_PORT, or ADDR:PORT alone (service from the original destination)")
      ->required();
  app.add_option("--workers", workers, "worker threads (0: one per CPU)");
  app.add_option("--seed", seed, "random seed for weighted choices and faults (0: random)");
  app.add_option("--idle-timeout-ms", idle_timeout_ms, "close keep-alive connections idle this long");
  app.add_option("--stream-idle-timeout-ms,--websocket-idle-timeout-ms", stream_idle_timeout_ms,
                 "end a request or WebSocket tunnel that moves no byte this long (408 before the response head; "
                 "0: never)")
      ->capture_default_str();
  app.add_option("--header-timeout-ms,--request-headers-timeout-ms", header_timeout_ms,
                 "408 when a request head takes longer");
  app.add_option("--request-timeout-ms", request_timeout_ms,
                 "408 when a request's body has not all arrived this long after its head (0: no limit)");
  app.add_option("--max-connections", max_connections,
                 "client connections open at once, all workers; more are closed at accept (0: no limit)");
  app.add_option("--max-slots-per-worker", max_slots,
                 "client connections, HTTP/2 streams and upstream connections one worker holds at once; past "
                 "it connections are closed at accept, streams refused (REFUSED_STREAM), upstream attempts "
                 "fail, each counted in sluice_slot_limit_refusals_total")
      ->check(CLI::Range(4u, 1u << 24))
      ->capture_default_str();
  app.add_option("--http2-max-concurrent-streams", http2_max_streams,
                 "SETTINGS_MAX_CONCURRENT_STREAMS the L7 proxy advertises on HTTP/2 client connections: streams "
                 "one connection has open at once (a gRPC client queues RPCs past it, so long-lived streams "
                 "beyond it wait); each open stream holds a slot and up to 128 KiB of buffers")
      ->check(CLI::Range(1u, 0x7fffffffu))
      ->capture_default_str();
  app.add_option("--metrics-out", metrics_out, "write Prometheus metrics here on exit");
  app.add_option("--request-body-buffer-limit", body_buffer_limit,
                 "bytes of a request body kept for retries and mirrors (0: none)")
      ->capture_default_str();
  app.add_flag("--generate-request-id,!--no-generate-request-id", generate_request_id,
               "give a request without x-request-id a random UUID");
  app.add_flag("--append-x-forwarded-for", append_forwarded_for, "append the client's address to x-forwarded-for");
  app.add_option("--path-normalization", path_normalization,
                 "NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES (Istio's pathNormalization)")
      ->check(CLI::IsMember({"NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"}))
      ->capture_default_str();
  app.add_option("--access-log", access_log, "one line per request to this file ('-': stdout)");
  app.add_option("--access-log-format", access_log_format, "text (Istio's default) or json")
      ->check(CLI::IsMember({"text", "json"}));
  CLI11_PARSE(app, argc, argv);

  sluice::proxy::ProxyOptions options;
  options.workers = workers;
  options.random_seed = seed;
  options.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  options.stream_idle_timeout = std::chrono::milliseconds(stream_idle_timeout_ms);
  options.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  options.request_header_timeout = std::chrono::milliseconds(header_timeout_ms);
  options.request_body_buffer_limit = body_buffer_limit;
  options.generate_request_id = generate_request_id;
  options.append_forwarded_for = append_forwarded_for;
  options.path_normalisation = *sluice::http::path_normalisation_from_name(path_normalization);
  options.max_connections = max_connections;
  options.max_connections_per_worker = max_slots;
  options.http2.max_concurrent_streams = http2_max_streams;
  if (!access_log.empty()) {
    try {
      options.access_log = std::make_shared<sluice::proxy::AccessLogFile>(access_log);
    } catch (const std::exception& e) {
      std::cerr << "sluice-l7-proxy: " << e.what() << "\n";
      return 1;
    }
    options.access_log_format = sluice::proxy::parse_access_log_format(access_log_format);
  }
  for (const auto& l : listens) {
    sluice::proxy::ListenerSpec spec;
    size_t eq = l.find('=');
    spec.address = l.substr(0, eq);
    if (eq != std::string::npos) {
      std::string service = l.substr(eq + 1);
      size_t colon = service.rfind(':');
      if (colon == std::string::npos) {
        std::cerr << "--listen " << l << ": expected SERVICE_HOST:SERVICE_PORT after '='\n";
        return 2;
      }
      spec.service_host = service.substr(0, colon);
      spec.service_port = static_cast<uint32_t>(std::stoul(service.substr(colon + 1)));
    }
    options.listeners.push_back(spec);
  }

  uint64_t version = 1;
  auto snapshot = compile_or_report(config_dir, version);
  if (!snapshot) return 1;

  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);   // before workers start, so they inherit the mask

  sluice::proxy::Proxy proxy(options, snapshot);
  try {
    proxy.start();
  } catch (const std::exception& e) {
    std::cerr << "sluice-l7-proxy: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "sluice-l7-proxy: serving snapshot " << version << "\n";
  while (true) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      auto next = compile_or_report(config_dir, ++version);
      if (next) {
        proxy.update_snapshot(next);
        std::cerr << "sluice-l7-proxy: serving snapshot " << version << "\n";
      } else {
        std::cerr << "sluice-l7-proxy: reload refused, still serving the previous snapshot\n";
      }
      continue;
    }
    break;
  }
  proxy.drain();
  proxy.wait();
  if (!metrics_out.empty()) std::ofstream(metrics_out) << proxy.render_prometheus();
  return 0;
}
