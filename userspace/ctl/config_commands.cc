// validate and explain: commands that compile configuration files locally.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "config/compiler.h"
#include "config/snapshot_json.h"
#include "ctl/commands.h"
#include "config/explain_text.h"

namespace sluice::ctl {

namespace {

struct Counts {
  size_t errors = 0, warnings = 0, notes = 0;
};

Counts print_diagnostics(const config::CompileResult& result) {
  Counts c;
  for (const auto& d : result.diagnostics) {
    std::cerr << model::format_diagnostic(d) << '\n';
    switch (d.severity) {
      case model::Severity::Error: ++c.errors; break;
      case model::Severity::Warning: ++c.warnings; break;
      case model::Severity::Info: ++c.notes; break;
    }
  }
  return c;
}

std::string plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// A path that cannot be read is a usage problem, not an invalid config.
bool unreadable_input(const config::CompileResult& result) {
  for (const auto& d : result.diagnostics) {
    if (d.severity == model::Severity::Error && d.where.line == 0 &&
        (d.message == "no such file or directory" || d.message == "cannot read file" ||
         d.message.rfind("cannot list directory", 0) == 0)) {
      return true;
    }
  }
  return false;
}

}  // namespace

CommandBody define_validate(CLI::App& command) {
  struct Options {
    std::vector<std::string> paths;
    bool warnings_as_errors = false;
  };
  auto opts = std::make_shared<Options>();
  command.add_option("PATH", opts->paths,
                     "YAML files or directories (*.yaml, *.yml, *.json, recursively; dot-entries skipped)")
      ->required();
  command.add_flag("-W,--warnings-as-errors", opts->warnings_as_errors,
                   "exit 1 when there are warnings, too (for CI)");
  command.footer(
      "Prints every diagnostic as 'file:line:col: error|warning|note: message' on stderr.\n"
      "Exit status 0 when the files compile (warnings allowed), 1 when they have errors.");
  return [opts] {
    const auto result = config::compile_paths(opts->paths, 1);
    const Counts c = print_diagnostics(result);
    if (unreadable_input(result)) return kExitUsage;
    if (!result.ok() || (opts->warnings_as_errors && c.warnings > 0)) {
      std::cerr << "sluicectl: invalid: " << plural(c.errors, "error") << ", "
                << plural(c.warnings, "warning") << "\n";
      return kExitInvalid;
    }
    const auto& s = *result.snapshot;
    size_t endpoints = 0, subsets = 0;
    for (const auto& svc : s.services) {
      endpoints += svc.endpoints.size();
      subsets += svc.subsets.size() - 1;
    }
    std::cout << "valid: " << plural(s.source_files.size(), "file") << ", "
              << plural(s.services.size(), "service") << ", " << plural(subsets, "subset") << ", "
              << plural(endpoints, "endpoint") << "; " << plural(c.warnings, "warning") << "\n";
    return kExitOk;
  };
}

CommandBody define_explain(CLI::App& command) {
  struct Options {
    std::vector<std::string> paths;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  command.add_option("PATH", opts->paths, "YAML files or directories")->required();
  command.add_flag("--json", opts->json,
                   "print the snapshot as JSON (schema in docs/explain-json.md) instead of tables");
  command.footer("Diagnostics go to stderr; with errors nothing is explained and the exit status is 1.");
  return [opts] {
    const auto result = config::compile_paths(opts->paths, 1);
    print_diagnostics(result);
    if (unreadable_input(result)) return kExitUsage;
    if (!result.ok()) return kExitInvalid;
    if (opts->json) {
      std::cout << config::snapshot_json_text(*result.snapshot) << "\n";
    } else {
      std::cout << config::explain_text(*result.snapshot);
    }
    return kExitOk;
  };
}

}  // namespace sluice::ctl
