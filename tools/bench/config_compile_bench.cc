// Times the config pipeline on a directory: YAML parsing alone (plain
// yaml-cpp LoadAll, the baseline), sluice's load (YAML + schema decoding)
// and the compile to a Snapshot. Prints the median of RUNS runs of each and
// the ratios against the baseline measured in the same run. Times are
// process CPU time (see cpu_seconds), with the load on one thread. Then the
// load's wall time on one thread and on every CPU (ParseOptions::threads),
// which is what an agent start waits for.
//
// usage: config_compile_bench DIR [RUNS]
#include <yaml-cpp/yaml.h>

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "config/compiler.h"
#include "config/loader.h"

namespace {

// CPU time of this process: the machine is shared, and wall time there
// measures the neighbours as much as the code.
double clock_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double cpu_seconds() { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }
double wall_seconds() { return clock_seconds(CLOCK_MONOTONIC); }

// `reset` runs untimed before each run, so freeing the previous run's result
// is not charged to the next one.
double median_seconds(int runs, const std::function<void()>& body, const std::function<void()>& reset = [] {},
                      double (*clock)() = cpu_seconds) {
  std::vector<double> samples;
  for (int i = 0; i < runs; ++i) {
    reset();
    const double start = clock();
    body();
    samples.push_back(clock() - start);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice::config;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [RUNS]\n", argv[0]);
    return 2;
  }
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  std::vector<sluice::model::Diagnostic> read_errors;
  const auto sources = read_config_sources({argv[1]}, read_errors);
  if (!read_errors.empty() || sources.empty()) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 2;
  }
  size_t bytes = 0;
  for (const auto& s : sources) bytes += s.text.size();

  size_t baseline_docs = 0;
  const double yaml_only = median_seconds(runs, [&] {
    baseline_docs = 0;
    for (const auto& s : sources) baseline_docs += YAML::LoadAll(s.text).size();
  });
  ParsedConfig parsed;
  const ParseOptions one_thread{1}, every_cpu{0};
  const double load = median_seconds(
      runs, [&] { parsed = parse_sources(sources, one_thread); }, [&] { parsed = ParsedConfig{}; });
  const double load_wall_one = median_seconds(
      runs, [&] { parsed = parse_sources(sources, one_thread); }, [&] { parsed = ParsedConfig{}; }, wall_seconds);
  const double load_wall_all = median_seconds(
      runs, [&] { parsed = parse_sources(sources, every_cpu); }, [&] { parsed = ParsedConfig{}; }, wall_seconds);
  CompileResult result;
  uint64_t version = 0;
  const double compile_only = median_seconds(
      runs, [&] { result = compile(parsed, ++version); }, [&] { result = CompileResult{}; });
  if (!result.ok()) {
    std::fprintf(stderr, "config does not compile: %zu errors\n", result.error_count());
    return 1;
  }
  size_t endpoints = 0;
  for (const auto& svc : result.snapshot->services) endpoints += svc.endpoints.size();

  std::printf("input: %zu files, %.1f MB, %zu documents -> %zu services, %zu endpoints\n", sources.size(),
              static_cast<double>(bytes) / 1e6, baseline_docs, result.snapshot->services.size(), endpoints);
  std::printf("median CPU time of %d runs:\n", runs);
  std::printf("  baseline: yaml-cpp LoadAll only         %8.3f s\n", yaml_only);
  std::printf("  sluice load (YAML + schema decode)      %8.3f s  (%.2fx baseline)\n", load, load / yaml_only);
  std::printf("  sluice compile (resolve, select, route) %8.3f s  (%.2fx baseline)\n", compile_only,
              compile_only / yaml_only);
  std::printf("  sluice total (load + compile)           %8.3f s  (%.2fx baseline)\n", load + compile_only,
              (load + compile_only) / yaml_only);
  std::printf("  split: YAML %.0f%%, decode %.0f%%, compile %.0f%% of total\n",
              100 * yaml_only / (load + compile_only), 100 * std::max(0.0, load - yaml_only) / (load + compile_only),
              100 * compile_only / (load + compile_only));
  std::printf("median wall time of %d runs of the load:\n", runs);
  std::printf("  one thread                              %8.3f s\n", load_wall_one);
  std::printf("  %2u threads (one per CPU)                %8.3f s  (%.2fx faster)\n",
              std::max(1u, std::thread::hardware_concurrency()), load_wall_all, load_wall_one / load_wall_all);
  return 0;
}
