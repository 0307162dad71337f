#include "k8s/resource_store.h"

#include <stdexcept>

namespace sluice::k8s {

using nlohmann::json;

std::string ResourceKind::collection_path() const {
  return (group.empty() ? "/api/" + version : "/apis/" + group + "/" + version) + "/" + plural;
}

const std::vector<ResourceKind>& watched_kinds() {
  static const std::vector<ResourceKind> kinds = {
      {"", "v1", "services", "Service", false},
      {"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", false},
      {"", "v1", "pods", "Pod", true},
      {"networking.istio.io", "v1beta1", "serviceentries", "ServiceEntry", false},
      {"networking.istio.io", "v1beta1", "workloadentries", "WorkloadEntry", false},
      {"networking.istio.io", "v1beta1", "virtualservices", "VirtualService", false},
      {"networking.istio.io", "v1beta1", "destinationrules", "DestinationRule", false},
  };
  return kinds;
}

WatchEvent parse_watch_event(std::string_view line) {
  json doc = json::parse(line, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw std::runtime_error("watch event is not a JSON object");
  const auto type = doc.find("type");
  const auto object = doc.find("object");
  if (type == doc.end() || !type->is_string()) throw std::runtime_error("watch event has no type");
  if (object == doc.end() || !object->is_object()) throw std::runtime_error("watch event has no object");
  WatchEvent ev;
  const std::string& t = type->get_ref<const std::string&>();
  if (t == "ADDED") ev.type = EventType::Added;
  else if (t == "MODIFIED") ev.type = EventType::Modified;
  else if (t == "DELETED") ev.type = EventType::Deleted;
  else if (t == "BOOKMARK") ev.type = EventType::Bookmark;
  else if (t == "ERROR") ev.type = EventType::Error;
  else throw std::runtime_error("unknown watch event type '" + t + "'");
  if (ev.type == EventType::Error) {
    // A metav1.Status: {"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: ..."}
    ev.error_code = object->value("code", 0);
    ev.error_message = object->value("message", object->value("reason", std::string("watch error")));
  }
  ev.object = std::move(*object);
  return ev;
}

json trim_object(const json& object, const ResourceKind& kind) {
  // What is dropped changes without changing the config (resourceVersion
  // on every write, status as controllers report), so an update that only
  // touches it does not cost a reload.
  if (!kind.metadata_only) {
    json out = object;
    out.erase("status");
    if (auto m = out.find("metadata"); m != out.end() && m->is_object()) {
      m->erase("managedFields");
      m->erase("resourceVersion");
    }
    return out;
  }
  json out = {{"apiVersion", object.value("apiVersion", kind.api_version())},
              {"kind", object.value("kind", kind.kind)}};
  json meta = json::object();
  if (auto m = object.find("metadata"); m != object.end() && m->is_object()) {
    for (const char* key : {"name", "namespace", "uid", "labels"}) {
      if (auto f = m->find(key); f != m->end()) meta[key] = *f;
    }
  }
  out["metadata"] = std::move(meta);
  if (auto s = object.find("spec"); s != object.end() && s->is_object() && s->contains("nodeName")) {
    out["spec"] = {{"nodeName", (*s)["nodeName"]}};
  }
  if (auto s = object.find("status"); s != object.end() && s->is_object()) {
    json status = json::object();
    for (const char* key : {"podIP", "podIPs"}) {
      if (auto f = s->find(key); f != s->end()) status[key] = *f;
    }
    if (!status.empty()) out["status"] = std::move(status);
  }
  return out;
}

namespace {

// "namespace/name" (cluster-scoped objects: "/name"); empty if there is no name.
std::string key_of(const json& object) {
  const auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return {};
  const std::string name = m->value("name", "");
  if (name.empty()) return {};
  return m->value("namespace", "") + "/" + name;
}

std::string resource_version_of(const json& object) {
  const auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return {};
  return m->value("resourceVersion", "");
}

}  // namespace

bool ResourceStore::put(const json& object) {
  const std::string key = key_of(object);
  if (key.empty()) throw std::runtime_error(kind_.kind + " object without metadata.name");
  json trimmed = trim_object(object, kind_);
  // A list's items carry no apiVersion/kind; the loader needs both.
  if (!trimmed.contains("apiVersion")) trimmed["apiVersion"] = kind_.api_version();
  if (!trimmed.contains("kind")) trimmed["kind"] = kind_.kind;
  Entry e{resource_version_of(object), "k8s:" + kind_.api_version() + "/" + kind_.kind + "/" + key,
          trimmed.dump(2)};
  auto it = objects_.find(key);
  if (it != objects_.end() && it->second.text == e.text) {
    it->second.resource_version = e.resource_version;
    return false;
  }
  objects_[key] = std::move(e);
  return true;
}

bool ResourceStore::replace(const json& list) {
  if (!list.is_object() || !list.contains("items") || !list["items"].is_array()) {
    throw std::runtime_error(kind_.kind + " list response has no items array");
  }
  ResourceStore fresh(kind_);
  for (const auto& item : list["items"]) fresh.put(item);
  bool changed = fresh.objects_.size() != objects_.size();
  if (!changed) {
    for (auto a = objects_.begin(), b = fresh.objects_.begin(); a != objects_.end(); ++a, ++b) {
      if (a->first != b->first || a->second.text != b->second.text) {
        changed = true;
        break;
      }
    }
  }
  objects_ = std::move(fresh.objects_);
  if (auto m = list.find("metadata"); m != list.end() && m->is_object()) {
    resource_version_ = m->value("resourceVersion", resource_version_);
  }
  return changed;
}

bool ResourceStore::apply(const WatchEvent& event) {
  if (event.type == EventType::Error) throw std::logic_error("ResourceStore::apply: error events are the caller's");
  const std::string rv = resource_version_of(event.object);
  bool changed = false;
  switch (event.type) {
    case EventType::Added:
    case EventType::Modified:
      changed = put(event.object);
      break;
    case EventType::Deleted:
      changed = objects_.erase(key_of(event.object)) > 0;
      break;
    default:
      break;
  }
  if (!rv.empty()) resource_version_ = rv;
  return changed;
}

void ResourceStore::append_sources(std::vector<config::SourceText>& out) const {
  for (const auto& [key, e] : objects_) out.push_back({e.source_name, e.text});
}

}  // namespace sluice::k8s
