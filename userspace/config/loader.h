// Reading Istio YAML: files and directories -> decoded resources plus
// diagnostics. Never throws on bad input: every YAML or type problem becomes
// a Diagnostic with file:line:col, and decoding continues with the next field.
#pragma once

#include <string>
#include <vector>

#include "config/resources.h"

namespace sluice::config {

struct SourceText {
  std::string path;   // as it should appear in diagnostics
  std::string text;
};

// The YAML files a set of command-line paths names: a file as given; a
// directory's *.yaml and *.yml files, recursively, sorted, skipping entries
// whose name starts with '.' (Kubernetes ConfigMap mounts keep a second copy
// of every file under "..data"). Problems (missing path, unreadable file) are
// appended to `diagnostics` as errors.
std::vector<SourceText> read_config_sources(const std::vector<std::string>& paths,
                                            std::vector<Diagnostic>& diagnostics);

// Decodes every document of every source. Kinds other than the four Istio
// networking kinds are reported as warnings and skipped.
ParsedConfig parse_sources(const std::vector<SourceText>& sources);

// read_config_sources + parse_sources.
ParsedConfig load_paths(const std::vector<std::string>& paths);

}  // namespace sluice::config
