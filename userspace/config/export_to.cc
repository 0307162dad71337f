// exportTo, the visibility of an Istio object across namespaces: spec.exportTo
// of VirtualService, DestinationRule and ServiceEntry, and a Kubernetes
// Service's networking.istio.io/exportTo annotation (a comma-separated list).
// What sluice does with it is the compiler's (docs/config-reference.md,
// "exportTo").
#include "config/decoders.h"

#include <algorithm>

namespace sluice::config {

namespace {

// A Kubernetes namespace name: an RFC 1123 label.
bool namespace_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; });
}

}  // namespace

void set_export_to(Decoder& d, const YAML::Node& where, const std::vector<std::string>& values,
                   const std::string& field, ResourceMeta& meta, bool allow_none) {
  std::vector<std::string> out;
  bool ok = true;
  for (const auto& raw : values) {
    std::string v = raw;
    v.erase(0, v.find_first_not_of(' '));
    v.erase(v.find_last_not_of(' ') + 1);
    if (v == ".") v = meta.namespace_;
    if (v != "*" && v != "~" && !namespace_name(v)) {
      d.error(where, d.field(field) + ": '" + v +
                         "' is not '.', '*'" + (allow_none ? ", '~'" : "") + " or a namespace name");
      ok = false;
      continue;
    }
    if (v == "~" && !allow_none) {
      d.error(where, d.field(field) + ": '~' (exported to no namespace) is only for ServiceEntry and Service");
      ok = false;
      continue;
    }
    if (std::find(out.begin(), out.end(), v) != out.end()) {
      d.error(where, d.field(field) + ": namespace '" + v + "' is listed twice" +
                         (v == meta.namespace_ ? " ('.' is the object's own namespace)" : ""));
      ok = false;
      continue;
    }
    out.push_back(std::move(v));
  }
  for (const char* alone : {"*", "~"}) {
    if (out.size() > 1 && std::find(out.begin(), out.end(), alone) != out.end()) {
      d.error(where, d.field(field) + ": '" + alone + "' cannot be listed with other namespaces");
      ok = false;
    }
  }
  if (!ok) return;
  meta.export_to = std::move(out);
  meta.export_to_where = d.at(where);
}

void decode_export_to(Decoder& d, Fields& spec, ResourceMeta& meta, bool allow_none) {
  const YAML::Node* v = spec.get("exportTo");
  if (!v) return;
  if (auto list = d.string_list(*v, spec.name_of("exportTo"))) {
    set_export_to(d, *v, *list, spec.name_of("exportTo"), meta, allow_none);
  }
}

}  // namespace sluice::config
