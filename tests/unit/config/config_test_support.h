// Shared fixtures for the config tests: compile YAML text held in the test,
// find diagnostics, and the productpage service of the team's address plan.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/compiler.h"
#include "config/loader.h"

namespace sluice::config::testing {

inline CompileResult compile_yaml(const std::vector<SourceText>& files, uint64_t version = 1) {
  return compile(parse_sources(files), version);
}

inline std::string diagnostics_text(const CompileResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += model::format_diagnostic(d) + "\n";
  return out;
}

// The first diagnostic whose message contains `needle`, or nullptr.
inline const model::Diagnostic* find_diagnostic(const CompileResult& r, std::string_view needle) {
  for (const auto& d : r.diagnostics) {
    if (d.message.find(needle) != std::string::npos) return &d;
  }
  return nullptr;
}

inline std::string source_root() {
  const char* root = std::getenv("SLUICE_SOURCE_ROOT");
  return root ? root : ".";
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// productpage: VIP 10.96.0.10, 9080 http/HTTP and 9081 tcp/TCP, four
// WorkloadEntries (two per version) selected by app=productpage.
inline const std::string kProductpageService = R"(apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  addresses: [10.96.0.10]
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  - {number: 9081, name: tcp, protocol: TCP}
  resolution: STATIC
  workloadSelector:
    labels: {app: productpage}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: productpage-v1-a}
spec: {address: 10.200.11.2, labels: {app: productpage, version: v1}}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: productpage-v1-b}
spec: {address: 10.200.12.2, labels: {app: productpage, version: v1}}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: productpage-v2-a}
spec: {address: 10.200.13.2, labels: {app: productpage, version: v2}}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: productpage-v2-b}
spec: {address: 10.200.14.2, labels: {app: productpage, version: v2}}
)";

// DestinationRule with subsets v1 and v2 and nothing else.
inline const std::string kProductpageSubsets = R"(apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
)";

// Compiles `routing` (file "vs.yaml") next to the productpage service
// ("se.yaml") and, unless given, the v1/v2 DestinationRule ("dr.yaml").
inline CompileResult compile_with_productpage(const std::string& routing,
                                              const std::string& destination_rule = kProductpageSubsets) {
  std::vector<SourceText> files = {{"se.yaml", kProductpageService}};
  if (!destination_rule.empty()) files.push_back({"dr.yaml", destination_rule});
  if (!routing.empty()) files.push_back({"vs.yaml", routing});
  return compile_yaml(files);
}

// A VirtualService "pp" for productpage whose spec goes on with `rest`
// (YAML lines indented by two spaces, after `hosts`), for
// compile_with_productpage's first argument. Line 6 is rest's first.
inline std::string productpage_routes(const std::string& rest) {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: pp}\nspec:\n"
         "  hosts: [productpage]\n" + rest;
}

// A DestinationRule "pp" for productpage whose spec goes on with `rest`
// (YAML lines indented by two spaces, after `host`), for
// compile_with_productpage's second argument. Line 6 is rest's first.
inline std::string productpage_rule(const std::string& rest) {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: pp}\nspec:\n"
         "  host: productpage\n" + rest;
}

inline std::string subset_name(const model::Snapshot& s, const model::Destination& d) {
  return s.services.at(d.service).subsets.at(d.subset).name;
}

}  // namespace sluice::config::testing
