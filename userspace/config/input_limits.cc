#include "config/input_limits.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

namespace sluice::config {

namespace fs = std::filesystem;
using model::Severity;

namespace {

std::string mib(uint64_t bytes) {
  if (bytes % (1 << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

}  // namespace

bool is_config_file_name(std::string_view name) {
  return name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json");
}

std::vector<std::string> list_config_files(const std::string& dir, const InputLimits& limits,
                                         std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> found;
  auto error = [&](const std::string& where, std::string message) {
    diagnostics.push_back({Severity::Error, {where, 0, 0}, std::move(message)});
  };
  // Directories by (device, inode): a symlink to an ancestor would otherwise
  // list the same files again under ever longer paths.
  std::set<std::pair<dev_t, ino_t>> visited;
  std::vector<fs::path> pending{fs::path(dir)};
  size_t entries = 0;
  while (!pending.empty()) {
    const fs::path current = std::move(pending.back());
    pending.pop_back();
    struct stat st {};
    if (::stat(current.c_str(), &st) != 0) {
      error(current.string(), std::string("cannot list directory: ") + std::strerror(errno));
      continue;
    }
    if (!visited.insert({st.st_dev, st.st_ino}).second) continue;
    std::error_code ec;
    fs::directory_iterator it(current, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      if (++entries > limits.max_directory_entries) {
        error(dir, "more than " + std::to_string(limits.max_directory_entries) +
                       " directory entries; not loading a directory this large");
        return found;
      }
      const fs::path& path = it->path();
      const std::string name = path.filename().string();
      if (!name.empty() && name[0] == '.') continue;
      std::error_code type_ec;
      const fs::file_status status = fs::status(path, type_ec);   // follows symlinks
      if (type_ec) {
        if (type_ec == std::errc::no_such_file_or_directory && !is_config_file_name(path.filename().string())) continue;   // dangling, not config
        error(path.string(), type_ec == std::errc::too_many_symbolic_link_levels
                                 ? "symlink loop (too many levels of symbolic links)"
                                 : type_ec == std::errc::no_such_file_or_directory
                                       ? "dangling symlink: its target does not exist"
                                       : "cannot examine: " + type_ec.message());
        continue;
      }
      if (fs::is_directory(status)) {
        pending.push_back(path);
      } else if (is_config_file_name(path.filename().string())) {
        if (found.size() >= limits.max_files) {
          error(dir, "more than " + std::to_string(limits.max_files) + " config files; not loading this many");
          return found;
        }
        found.push_back(path.string());   // read_config_file refuses what is not a regular file
      }
    }
    if (ec) error(current.string(), "cannot list directory: " + ec.message());
  }
  return found;
}

std::optional<std::string> read_config_file(const std::string& path, const InputLimits& limits,
                                            uint64_t& total_bytes, std::vector<Diagnostic>& diagnostics) {
  auto refuse = [&](std::string message) -> std::optional<std::string> {
    diagnostics.push_back({Severity::Error, {path, 0, 0}, std::move(message)});
    return std::nullopt;
  };
  // O_NONBLOCK: opening a FIFO without a writer must not hang the reader.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return refuse(std::string("cannot read file: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat before {};
  if (::fstat(fd, &before) != 0) return refuse(std::string("cannot read file: ") + std::strerror(errno));
  if (!S_ISREG(before.st_mode)) return refuse(std::string("not a regular file (") + file_type_name(before.st_mode) + ")");
  const uint64_t size = static_cast<uint64_t>(before.st_size);
  const std::string over_file = "larger than the " + mib(limits.max_file_bytes) +
                                " limit on one config file (sluiced --config-max-file-bytes)";
  if (size > limits.max_file_bytes) return refuse("file is " + std::to_string(size) + " bytes, " + over_file);
  if (total_bytes + size > limits.max_total_bytes) {
    return refuse("the config files together are larger than the " + mib(limits.max_total_bytes) +
                  " limit (sluiced --config-max-total-bytes)");
  }
  std::string text;
  text.reserve(size);
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return refuse(std::string("cannot read file: ") + std::strerror(errno));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > limits.max_file_bytes) return refuse(over_file);   // it grew while read
  }
  struct stat after {};
  if (::fstat(fd, &after) != 0 || after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
      after.st_mtim.tv_nsec != before.st_mtim.tv_nsec || text.size() != static_cast<size_t>(after.st_size)) {
    return refuse("file changed while it was read; it is read again on its next change");
  }
  if (total_bytes + text.size() > limits.max_total_bytes) {
    return refuse("the config files together are larger than the " + mib(limits.max_total_bytes) +
                  " limit (sluiced --config-max-total-bytes)");
  }
  total_bytes += text.size();
  return text;
}

namespace {

// Counts a document's nodes as if every alias were replaced by a copy of
// what its anchor names, from the parser's events, which carry an alias as
// one event. Stops (by throwing) at the first node past the limit.
class ExpansionCounter : public YAML::EventHandler {
 public:
  struct Exceeded {
    YAML::Mark mark;
  };
  explicit ExpansionCounter(uint64_t limit) : limit_(limit) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t anchor) override { leaf(m, anchor); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor, const std::string&) override {
    leaf(m, anchor);
  }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t anchor) override {
    auto it = sizes_.find(anchor);
    add(it == sizes_.end() ? 1 : it->second, m);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(m, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(m, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  void add(uint64_t n, const YAML::Mark& m) {
    count_ += n;
    if (count_ > limit_) throw Exceeded{m};
  }
  void leaf(const YAML::Mark& m, YAML::anchor_t anchor) {
    add(1, m);
    if (anchor != YAML::NullAnchor) sizes_[anchor] = 1;
  }
  void open(const YAML::Mark& m, YAML::anchor_t anchor) {
    add(1, m);
    open_.push_back({anchor, count_ - 1});
  }
  void close() {
    if (open_.empty()) return;
    const auto [anchor, start] = open_.back();
    open_.pop_back();
    if (anchor != YAML::NullAnchor) sizes_[anchor] = count_ - start;
  }

  uint64_t limit_;
  uint64_t count_ = 0;
  std::vector<std::pair<YAML::anchor_t, uint64_t>> open_;   // open collections: anchor, count before them
  std::unordered_map<YAML::anchor_t, uint64_t> sizes_;      // anchor -> expanded size of its node
};

}  // namespace

std::optional<Diagnostic> check_alias_expansion(std::string_view document, const std::string& file, int first_line,
                                                const InputLimits& limits) {
  // An alias needs an anchor, and an anchor needs a '&': most documents
  // have none and skip the extra pass.
  if (document.find('&') == std::string_view::npos) return std::nullopt;
  std::istringstream in{std::string(document)};
  YAML::Parser parser(in);
  ExpansionCounter counter(limits.max_expanded_nodes);
  try {
    while (parser.HandleNextDocument(counter)) {
    }
  } catch (const ExpansionCounter::Exceeded& e) {
    return Diagnostic{Severity::Error,
                      {file, e.mark.line + 1 + first_line, e.mark.column + 1},
                      "YAML aliases expand this document past " + std::to_string(limits.max_expanded_nodes) +
                          " nodes (an alias bomb?); refused before expanding it"};
  } catch (const YAML::Exception&) {
    // Not YAML the parser accepts: the real parse reports where.
  }
  return std::nullopt;
}

}  // namespace sluice::config
