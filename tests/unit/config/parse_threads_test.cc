// parse_sources decodes documents on several threads: the result (resources,
// their order and locations, diagnostics and their cap) must be exactly what
// one thread gives.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/loader.h"

namespace sluice::config {
namespace {

// One line per resource and diagnostic, in order: what a difference between
// two parses would show in.
std::vector<std::string> summary(const ParsedConfig& p) {
  std::vector<std::string> lines;
  auto where = [](const model::SourceLocation& w) {
    return w.file + ":" + std::to_string(w.line) + ":" + std::to_string(w.column);
  };
  for (const auto& f : p.files) lines.push_back("file " + f);
  for (const auto& r : p.service_entries) lines.push_back("se " + r.meta.name + " " + where(r.meta.where));
  for (const auto& r : p.workload_entries) lines.push_back("we " + r.meta.name + " " + where(r.meta.where));
  for (const auto& r : p.virtual_services) {
    lines.push_back("vs " + r.meta.name + " " + where(r.meta.where) + " routes " + std::to_string(r.http.size()));
  }
  for (const auto& r : p.destination_rules) lines.push_back("dr " + r.meta.name + " " + where(r.meta.where));
  for (const auto& d : p.diagnostics) lines.push_back("diag " + model::format_diagnostic(d));
  return lines;
}

// DOCS documents of every kind, with a YAML syntax error every 7th, an
// unknown kind every 11th and a bad field value every 13th.
std::string mixed_documents(const std::string& prefix, int docs) {
  std::string text;
  for (int i = 0; i < docs; ++i) {
    const std::string name = prefix + std::to_string(i);
    text += "---\n";
    if (i % 7 == 3) {
      text += "kind: ServiceEntry\nmetadata: {name: " + name + "\nspec: [\n";
    } else if (i % 11 == 5) {
      text += "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\n";
    } else if (i % 4 == 0) {
      text += "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata: {name: " + name +
              "}\nspec:\n  hosts: [" + name + ".example]\n  addresses: [10.1." + std::to_string(i / 250) + "." +
              std::to_string(i % 250) + "]\n  ports:\n  - {number: " + (i % 13 == 0 ? "http" : "80") +
              ", name: http, protocol: HTTP}\n  resolution: STATIC\n";
    } else if (i % 4 == 1) {
      text += "apiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\nmetadata: {name: " + name +
              "}\nspec:\n  address: 10.2.0." + std::to_string(i % 250) + "\n  labels: {app: " + name + "}\n";
    } else if (i % 4 == 2) {
      text += "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: " + name +
              "}\nspec:\n  hosts: [" + name + ".example]\n  http:\n  - match:\n    - uri: {regex: \"/api/v[0-9]+/" +
              name + "\"}\n    route:\n    - destination: {host: " + name + ".example}\n";
    } else {
      text += "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: " + name +
              "}\nspec:\n  host: " + name + ".example\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM}\n";
    }
  }
  return text;
}

TEST(ParseThreads, ManyThreadsGiveWhatOneThreadGives) {
  const std::vector<SourceText> sources = {
      {"a.yaml", mixed_documents("a", 300)}, {"b.yaml", mixed_documents("b", 5)}, {"c.yaml", mixed_documents("c", 200)}};
  const auto one = summary(parse_sources(sources, ParseOptions{1}));
  ASSERT_GT(one.size(), 500u);
  for (unsigned threads : {2u, 3u, 8u}) EXPECT_EQ(summary(parse_sources(sources, ParseOptions{threads})), one) << threads;
}

TEST(ParseThreads, TheDiagnosticsCapIsTheSame) {
  // 1,500 documents with a syntax error each: more than the 1,000 kept.
  std::string text;
  for (int i = 0; i < 1500; ++i) text += "---\nkind: [\n";
  const std::vector<SourceText> sources = {{"broken.yaml", text}};
  const ParsedConfig one = parse_sources(sources, ParseOptions{1});
  const ParsedConfig many = parse_sources(sources, ParseOptions{4});
  ASSERT_FALSE(one.diagnostics.empty());
  EXPECT_EQ(one.diagnostics.back().message, "too many diagnostics; stopping here");
  EXPECT_EQ(summary(many), summary(one));
}

}  // namespace
}  // namespace sluice::config
