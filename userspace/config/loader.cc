#include "config/loader.h"

#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <functional>
#include <sstream>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "config/decoders.h"

namespace sluice::config {

namespace fs = std::filesystem;
using model::Severity;

bool ParsedConfig::has_errors() const {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::Error; });
}

namespace {

constexpr std::string_view kGroup = "networking.istio.io/";

// What a `kind: XList` gives the items that leave apiVersion and kind out
// (the API server's list responses do: every item is an X of the list's
// apiVersion).
struct ItemDefaults {
  std::string api_version;
  std::string kind;
  const YAML::Node* kind_node;   // where to point diagnostics about the kind
};

// kubectl's `get -o yaml` of several objects wraps them in `kind: List`; a
// typed list (ServiceList, VirtualServiceList, ...) is what the API returns.
// Lists inside lists are expanded too, to a small depth (no real list nests).
constexpr int kMaxListDepth = 4;

void decode_document(Decoder& d, const YAML::Node& doc, const ItemDefaults* defaults = nullptr, int depth = 0);

void decode_list(Decoder& d, Fields& top, const std::string& api, const std::string& kind, const YAML::Node& kind_node,
                 int depth) {
  const YAML::Node* items = top.get("items");
  top.accept("metadata");
  top.finish();
  if (!items) return;   // an empty list: `items: []` or `items: null`
  if (!items->IsSequence()) {
    d.error(*items, kind + " field 'items' must be a list of objects");
    return;
  }
  if (depth >= kMaxListDepth) {
    d.error(*items, kind + " nests lists more than " + std::to_string(kMaxListDepth) + " deep");
    return;
  }
  const ItemDefaults defaults{api, kind == "List" ? std::string() : kind.substr(0, kind.size() - 4), &kind_node};
  for (const auto& item : *items) decode_document(d, item, &defaults, depth + 1);
}

enum class KubeKind { None, Service, EndpointSlice, Pod, Workload };

KubeKind kube_kind(const std::string& api, const std::string& kind) {
  if (api == "v1") {
    if (kind == "Service") return KubeKind::Service;
    if (kind == "Pod") return KubeKind::Pod;
    if (kind == "Endpoints" || kind == "Namespace" || kind == "ServiceAccount") return KubeKind::Workload;
  }
  if ((api == "discovery.k8s.io/v1" || api == "discovery.k8s.io/v1beta1") && kind == "EndpointSlice")
    return KubeKind::EndpointSlice;
  // What `kubectl get all` returns beside Pods and Services: the Pods carry
  // what sluice needs from them.
  if (api == "apps/v1" &&
      (kind == "Deployment" || kind == "ReplicaSet" || kind == "StatefulSet" || kind == "DaemonSet"))
    return KubeKind::Workload;
  return KubeKind::None;
}

void decode_document(Decoder& d, const YAML::Node& doc, const ItemDefaults* defaults, int depth) {
  if (doc.IsNull()) return;   // an empty document, e.g. after a trailing '---'
  d.kind = "document";
  Fields top(d, doc, "");
  if (!top.ok()) return;
  const YAML::Node* api = top.get("apiVersion");
  const YAML::Node* kind = top.get("kind");
  if (defaults && !defaults->kind.empty()) {
    // A typed list's item: missing apiVersion and kind come from the list.
    if (!api) api = defaults->kind_node;
    if (!kind) kind = defaults->kind_node;
  }
  if (!api || !kind) {
    d.error(doc, std::string("document has no ") + (!api ? "apiVersion" : "kind") +
                     " (every document needs apiVersion and kind)");
    return;
  }
  auto api_s = api == (defaults ? defaults->kind_node : nullptr) ? std::optional(defaults->api_version)
                                                                  : d.string(*api, "apiVersion");
  auto kind_s = kind == (defaults ? defaults->kind_node : nullptr) ? std::optional(defaults->kind)
                                                                   : d.string(*kind, "kind");
  if (!api_s || !kind_s) return;
  if (*kind_s == "List" || (kind_s->size() > 4 && kind_s->ends_with("List"))) {
    decode_list(d, top, *api_s, *kind_s, *kind, depth);
    return;
  }
  const YAML::Node* metadata = top.get("metadata");
  const YAML::Node* spec = top.get("spec");
  top.accept("status");
  static constexpr std::string_view kKinds[] = {"ServiceEntry", "WorkloadEntry", "VirtualService",
                                                "DestinationRule"};
  const bool known_kind = std::find(std::begin(kKinds), std::end(kKinds), *kind_s) != std::end(kKinds);
  const bool istio_group = api_s->rfind(kGroup, 0) == 0;
  const KubeKind kube = kube_kind(*api_s, *kind_s);
  if (kube == KubeKind::Workload) {
    d.note(*kind, "skipping " + *kind_s + " (" + *api_s +
                      "): sluice reads the Pods themselves (labels and IPs), Services and EndpointSlices");
    return;
  }
  const std::string version = istio_group ? api_s->substr(kGroup.size()) : "";
  if (*kind_s == "Gateway" && istio_group) {
    // Ingress configuration: VirtualServices bound only to it are skipped too.
    d.note(*kind, "skipping Gateway (" + *api_s + "): sluice serves mesh traffic, not gateways");
    return;
  }
  if (kube == KubeKind::None && (!known_kind || !istio_group)) {
    d.warning(*kind, "skipping " + *kind_s + " (" + *api_s +
                         "): sluice reads only ServiceEntry, WorkloadEntry, VirtualService and "
                         "DestinationRule of networking.istio.io, and Kubernetes Service, "
                         "EndpointSlice and Pod");
    return;
  }
  if (kube == KubeKind::None && version != "v1alpha3" && version != "v1beta1" && version != "v1") {
    d.warning(*api, "skipping " + *kind_s + ": apiVersion '" + *api_s +
                        "' is not one of networking.istio.io/v1alpha3, v1beta1, v1");
    return;
  }
  d.kind = *kind_s;
  ResourceMeta meta;
  meta.kind = *kind_s;
  meta.api_version = *api_s;
  meta.where = d.at(*kind);
  if (metadata) {
    if (!metadata->IsMap()) {
      d.error(*metadata, "metadata must be a mapping");
    } else {
      // Other metadata (labels, annotations, uid, ...) is Kubernetes' business.
      if (const auto n = (*metadata)["name"]; n && n.IsScalar()) meta.name = n.Scalar();
      if (const auto n = (*metadata)["creationTimestamp"]; n && n.IsScalar()) meta.creation_timestamp = n.Scalar();
      if (const auto n = (*metadata)["namespace"]; n && n.IsScalar() && !n.Scalar().empty()) {
        meta.namespace_ = n.Scalar();
      }
    }
  }
  if (meta.name.empty()) {
    d.error(metadata ? *metadata : doc, *kind_s + " has no metadata.name");
  }
  if (kube != KubeKind::None) {
    // Machine-written objects: their other top-level fields are ignored.
    if (metadata && metadata->IsMap()) {
      if (const auto labels = (*metadata)["labels"]; labels && !labels.IsNull()) {
        if (auto l = d.labels(labels, "metadata.labels")) meta.labels = std::move(*l);
      }
      // Istio's exportTo for a Service: a comma-separated annotation.
      if (const auto annotations = (*metadata)["annotations"]; kube == KubeKind::Service && annotations &&
                                                               annotations.IsMap()) {
        if (const auto e = annotations["networking.istio.io/exportTo"]; e && e.IsScalar()) {
          std::vector<std::string> values;
          std::string_view text = e.Scalar();
          for (size_t start = 0; start <= text.size();) {
            const size_t comma = std::min(text.find(',', start), text.size());
            values.emplace_back(text.substr(start, comma - start));
            start = comma + 1;
          }
          set_export_to(d, e, values, "metadata.annotations[networking.istio.io/exportTo]", meta, true);
        }
      }
    }
    const YAML::Node* status = top.get("status");
    if (kube == KubeKind::EndpointSlice) {
      decode_endpoint_slice(d, doc, std::move(meta));
    } else if (kube == KubeKind::Pod) {
      decode_pod(d, spec, status, std::move(meta));
    } else if (!spec) {
      d.error(doc, *kind_s + " '" + meta.name + "' has no spec");
    } else {
      decode_kube_service(d, *spec, std::move(meta));
    }
    return;
  }
  if (!spec) {
    d.error(doc, *kind_s + " '" + meta.name + "' has no spec");
    return;
  }
  top.finish();
  if (*kind_s == "WorkloadEntry") {
    decode_workload_entry(d, *spec, std::move(meta));
    return;
  }
  Fields spec_fields(d, *spec, "");
  if (!spec_fields.ok()) return;
  if (*kind_s == "VirtualService") decode_virtual_service(d, spec_fields, std::move(meta));
  else if (*kind_s == "DestinationRule") decode_destination_rule(d, spec_fields, std::move(meta));
  else decode_service_entry(d, spec_fields, std::move(meta));
}

// One YAML document of a stream: its text and the 0-based line it starts on.
struct DocumentText {
  std::string_view text;
  int first_line = 0;
};

// Splits a stream at its document markers: a line starting with "---" opens
// a document, a line starting with "..." closes one. Both are only markers
// at column 0, and YAML forbids them there inside scalars, so this split is
// exact. Parsing documents one by one, rather than with YAML::LoadAll, keeps
// a syntax error in one document from hiding the others, and avoids
// yaml-cpp 0.7's endless loop when a document holds a stray ',' (LoadAll
// keeps calling the parser, which never consumes the token; fixed upstream
// after 0.7 by jbeder/yaml-cpp#1319).
std::vector<DocumentText> split_documents(std::string_view stream) {
  const auto is_marker = [](std::string_view line, std::string_view marker) {
    return line.substr(0, 3) == marker &&
           (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
  };
  std::vector<DocumentText> docs;
  size_t doc_start = 0;
  int doc_line = 0;
  int line_no = 0;
  for (size_t pos = 0; pos < stream.size(); ++line_no) {
    size_t end = stream.find('\n', pos);
    const size_t next = end == std::string_view::npos ? stream.size() : end + 1;
    const std::string_view line = stream.substr(pos, (end == std::string_view::npos ? stream.size() : end) - pos);
    if (is_marker(line, "---") && pos > doc_start) {
      docs.push_back({stream.substr(doc_start, pos - doc_start), doc_line});
      doc_start = pos;
      doc_line = line_no;
    } else if (is_marker(line, "...")) {
      docs.push_back({stream.substr(doc_start, next - doc_start), doc_line});
      doc_start = next;
      doc_line = line_no + 1;
    }
    pos = next;
  }
  if (doc_start < stream.size()) docs.push_back({stream.substr(doc_start), doc_line});
  return docs;
}

// Records where the first event of a document is, and nothing else.
class FirstEventMark : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> mark;
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { note(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { note(m); }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { note(m); }
  void OnMapEnd() override {}

 private:
  void note(const YAML::Mark& m) {
    if (!mark) mark = m;
  }
};

// YAML::Load parses one document and silently ignores tokens after it. A
// block mapping at column 0 (every real Istio document) cannot be followed
// by anything but an error, so only other roots need this second look.
std::optional<YAML::Mark> trailing_content(const YAML::Node& root, std::string_view text) {
  if (root.IsMap() && root.Style() == YAML::EmitterStyle::Block && root.Mark().column == 0) return std::nullopt;
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  FirstEventMark first, second;
  if (!parser.HandleNextDocument(first)) return std::nullopt;
  if (!parser.HandleNextDocument(second) || !second.mark) return std::nullopt;
  // yaml-cpp also reports an empty document at the end of some streams
  // ("---\n"): only text that is more than blanks and comments is content.
  std::string_view rest = text.substr(std::min<size_t>(static_cast<size_t>(std::max(second.mark->pos, 0)), text.size()));
  while (!rest.empty()) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    const size_t text_at = line.find_first_not_of(" \t\r");
    if (text_at != std::string_view::npos && line[text_at] != '#') return second.mark;
    if (eol == std::string_view::npos) break;
    rest.remove_prefix(eol + 1);
  }
  return std::nullopt;
}

}  // namespace

namespace {

// One document of one file, decoded into its own ParsedConfig (resources and
// diagnostics), so that documents can be decoded side by side.
void parse_document(ParsedConfig& out, const std::string& path, const DocumentText& doc, RegexCache& regex_cache,
                    const InputLimits& limits) {
  Decoder d(out, path, regex_cache);
  d.line_offset = doc.first_line;
  if (auto refused = check_alias_expansion(doc.text, path, doc.first_line, limits)) {
    d.report(refused->severity, refused->where, refused->message);
    return;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(doc.text));
    if (auto junk = trailing_content(root, doc.text)) {
      d.error(d.at(*junk), "YAML syntax error: unexpected content after the document's "
                           "top-level node (a stray ',' ?)");
      return;
    }
  } catch (const YAML::Exception& e) {
    d.report(Severity::Error, d.at(e.mark), "YAML syntax error: " + e.msg);
    return;
  }
  try {
    decode_document(d, root);
  } catch (const std::exception& e) {
    // yaml-cpp throws on some malformed nodes; keep it a diagnostic.
    d.error(root, std::string("cannot decode document: ") + e.what());
  }
}

template <typename T>
void append_moved(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

// Diagnostics keep the sequential parse's cap: the first kMaxDiagnostics,
// then one "too many" error where the next one was.
void append_diagnostics(std::vector<Diagnostic>& to, std::vector<Diagnostic>& from) {
  for (Diagnostic& diagnostic : from) {
    if (to.size() > kMaxDiagnostics) return;
    if (to.size() == kMaxDiagnostics) {
      to.push_back({Severity::Error, diagnostic.where, "too many diagnostics; stopping here"});
      return;
    }
    to.push_back(std::move(diagnostic));
  }
}

}  // namespace

ParsedConfig parse_sources(const std::vector<SourceText>& sources, const ParseOptions& options) {
  struct Task {
    size_t source;
    DocumentText doc;
  };
  std::vector<Task> tasks;
  for (size_t i = 0; i < sources.size(); ++i) {
    for (const auto& doc : split_documents(sources[i].text)) tasks.push_back({i, doc});
  }
  std::vector<ParsedConfig> parts(tasks.size());

  // Workers take batches of documents in turn; each has its own regex cache
  // (a regex repeated across batches is compiled once per worker).
  constexpr size_t kBatch = 32;
  unsigned threads = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, (tasks.size() + kBatch - 1) / kBatch));
  std::atomic<size_t> next{0};
  auto work = [&] {
    RegexCache regex_cache;
    for (size_t first; (first = next.fetch_add(kBatch)) < tasks.size();) {
      for (size_t t = first; t < std::min(first + kBatch, tasks.size()); ++t)
        parse_document(parts[t], sources[tasks[t].source].path, tasks[t].doc, regex_cache, options.limits);
    }
  };
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::jthread> pool;
    for (unsigned i = 0; i < threads; ++i) pool.emplace_back(work);
  }

  ParsedConfig out;
  size_t t = 0;
  for (size_t i = 0; i < sources.size(); ++i) {
    out.files.push_back(sources[i].path);
    for (; t < tasks.size() && tasks[t].source == i; ++t) {
      ParsedConfig& p = parts[t];
      append_moved(out.service_entries, p.service_entries);
      append_moved(out.workload_entries, p.workload_entries);
      append_moved(out.virtual_services, p.virtual_services);
      append_moved(out.destination_rules, p.destination_rules);
      append_moved(out.kube_services, p.kube_services);
      append_moved(out.endpoint_slices, p.endpoint_slices);
      append_moved(out.pods, p.pods);
      append_diagnostics(out.diagnostics, p.diagnostics);
    }
  }
  return out;
}

std::vector<SourceText> read_config_sources(const std::vector<std::string>& paths,
                                            std::vector<Diagnostic>& diagnostics, const InputLimits& limits) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    const auto status = fs::status(p, ec);
    if (ec || !fs::exists(status)) {
      diagnostics.push_back({Severity::Error, {p, 0, 0}, "no such file or directory"});
      continue;
    }
    if (!fs::is_directory(status)) {
      files.push_back(p);
      continue;
    }
    std::vector<std::string> found = list_config_files(p, limits, diagnostics);
    if (found.empty()) {
      diagnostics.push_back({Severity::Warning, {p, 0, 0}, "directory has no *.yaml, *.yml or *.json files"});
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  std::vector<SourceText> out;
  uint64_t total_bytes = 0;
  for (const auto& f : files) {
    if (auto text = read_config_file(f, limits, total_bytes, diagnostics)) out.push_back({f, std::move(*text)});
  }
  return out;
}

ParsedConfig load_paths(const std::vector<std::string>& paths) {
  std::vector<Diagnostic> read_errors;
  auto sources = read_config_sources(paths, read_errors);
  ParsedConfig parsed = parse_sources(sources);
  parsed.diagnostics.insert(parsed.diagnostics.begin(), read_errors.begin(), read_errors.end());
  return parsed;
}

namespace {

template <typename T>
void append_copies(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

ParsedConfig IncrementalLoader::load(const std::vector<std::string>& paths) {
  ParsedConfig out;
  auto sources = read_config_sources(paths, out.diagnostics, options_.limits);
  counts_ = Counts{sources.size(), 0};
  std::unordered_map<std::string, CachedFile> kept;
  for (auto& src : sources) {
    const std::string path = src.path;
    const uint64_t hash = std::hash<std::string_view>{}(src.text);
    auto it = files_.find(path);
    CachedFile file;
    if (it != files_.end() && it->second.size == src.text.size() && it->second.hash == hash) {
      file = std::move(it->second);
    } else {
      file.size = src.text.size();
      file.hash = hash;
      file.parsed = parse_sources({std::move(src)}, options_);
      ++counts_.parsed;
    }
    const ParsedConfig& p = file.parsed;
    append_copies(out.files, p.files);
    append_copies(out.service_entries, p.service_entries);
    append_copies(out.workload_entries, p.workload_entries);
    append_copies(out.virtual_services, p.virtual_services);
    append_copies(out.destination_rules, p.destination_rules);
    append_copies(out.kube_services, p.kube_services);
    append_copies(out.endpoint_slices, p.endpoint_slices);
    append_copies(out.pods, p.pods);
    append_copies(out.diagnostics, p.diagnostics);
    kept.emplace(path, std::move(file));
  }
  files_ = std::move(kept);   // files that disappeared are forgotten
  return out;
}

}  // namespace sluice::config
