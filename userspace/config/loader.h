// Reading Istio YAML: files and directories -> decoded resources plus
// diagnostics. Never throws on bad input: every YAML or type problem becomes
// a Diagnostic with file:line:col, and decoding continues with the next field.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/input_limits.h"
#include "config/resources.h"

namespace sluice::config {

struct SourceText {
  std::string path;   // as it should appear in diagnostics
  std::string text;
};

// The YAML files a set of command-line paths names: a file as given; a
// directory's *.yaml, *.yml and *.json files (JSON is read as the YAML it
// is, one object per file, as the API server returns them), recursively, sorted, skipping entries
// whose name starts with '.' (Kubernetes ConfigMap mounts keep a second copy
// of every file under "..data"). Problems (missing path, unreadable file,
// symlink loop, special file, a limit passed: config/input_limits.h) are
// appended to `diagnostics` as errors.
std::vector<SourceText> read_config_sources(const std::vector<std::string>& paths,
                                            std::vector<Diagnostic>& diagnostics, const InputLimits& limits = {});

struct ParseOptions {
  // Threads that parse documents side by side (YAML parsing is most of a big
  // config's load time). 0: one per online CPU. The result is the same for
  // any count: documents are merged back in file and document order.
  unsigned threads = 0;
  InputLimits limits;   // file sizes and alias expansion
};

// Decodes every document of every source. Kinds other than the four Istio
// networking kinds are reported as warnings and skipped.
ParsedConfig parse_sources(const std::vector<SourceText>& sources, const ParseOptions& options = {});

// read_config_sources + parse_sources.
ParsedConfig load_paths(const std::vector<std::string>& paths);

// load_paths for a process that loads the same paths again and again (the
// agent, on every change): keeps each file's decoded resources and
// diagnostics keyed by its path and a hash of its bytes, and parses only the
// files that are new or whose bytes changed. The bytes are read every time
// (cheap next to parsing), so a rewrite within one mtime tick or one that
// keeps the size is still seen. The result equals load_paths' for the same
// files. Not thread-safe: one caller at a time.
class IncrementalLoader {
 public:
  struct Counts {
    size_t files = 0;    // files in the last load
    size_t parsed = 0;   // of those, parsed (new or changed)
  };

  explicit IncrementalLoader(ParseOptions options = {}) : options_(options) {}
  ParsedConfig load(const std::vector<std::string>& paths);
  const Counts& last_counts() const { return counts_; }

 private:
  struct CachedFile {
    size_t size = 0;
    uint64_t hash = 0;
    ParsedConfig parsed;
  };
  ParseOptions options_;
  std::unordered_map<std::string, CachedFile> files_;
  Counts counts_;
};

}  // namespace sluice::config
