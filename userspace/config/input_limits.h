// What the config reader accepts from the file system before any YAML is
// decoded: which directory entries are config files, how big they may be,
// and how far YAML aliases may expand. Every refusal is a Diagnostic naming
// the place (file, or file:line:col), never an exception, so a bad entry in
// the watched directory is reported and the last good snapshot keeps serving
// (docs/operations.md, "Security").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/resources.h"

namespace sluice::config {

struct InputLimits {
  uint64_t max_file_bytes = 4ull << 20;      // one YAML file
  uint64_t max_total_bytes = 256ull << 20;   // all files of one load together
  size_t max_files = 100000;                 // YAML files in one load
  size_t max_directory_entries = 1000000;    // entries walked under one directory, of any kind
  // Nodes of one document with every alias expanded (a "billion laughs"
  // document is a few KB of text and billions of nodes). Without aliases a
  // document's node count is bounded by its size already.
  uint64_t max_expanded_nodes = 1000000;
};

// Whether the loader reads a file of this name: *.yaml, *.yml, *.json (JSON,
// as the Kubernetes API returns objects, is YAML to the parser). The config
// watcher reloads on events for these names only.
bool is_config_file_name(std::string_view name);

// The config files (is_config_file_name) under `dir`, recursively (symlinked directories
// followed, each directory at most once), skipping entries whose name starts
// with '.'. An entry that cannot be examined (a symlink loop, a dangling
// symlink named like a config file, no permission) is an error naming it; so is a
// directory past max_directory_entries or max_files. Unsorted.
std::vector<std::string> list_config_files(const std::string& dir, const InputLimits& limits,
                                         std::vector<Diagnostic>& diagnostics);

// The bytes of one config file, or nullopt with an error naming it: not a
// regular file (a FIFO would block the reader, a device never ends), larger
// than max_file_bytes or than what is left of max_total_bytes (`total_bytes`
// counts what this load read so far), unreadable, or changed while it was
// read (the writer's close brings another reload).
std::optional<std::string> read_config_file(const std::string& path, const InputLimits& limits,
                                            uint64_t& total_bytes, std::vector<Diagnostic>& diagnostics);

// Refuses a YAML document whose aliases would expand past
// max_expanded_nodes, by walking the parser's events (aliases are not
// expanded there) before yaml-cpp builds the document. `first_line` is the
// document's 0-based line in its file. nullopt: fine, or not YAML the event
// walk can read (the real parse reports that).
std::optional<Diagnostic> check_alias_expansion(std::string_view document, const std::string& file, int first_line,
                                                const InputLimits& limits);

}  // namespace sluice::config
