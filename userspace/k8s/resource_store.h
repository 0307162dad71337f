// The Kubernetes objects sluiced watches, kept in memory one store per
// resource, and turned into the loader's in-memory sources. Files and the
// API server are two sources of the same documents: the store hands every
// object to config::parse_sources as JSON text (valid YAML), named
// "k8s:APIVERSION/KIND/NAMESPACE/NAME" so a diagnostic says which object is
// wrong, and the snapshot is compiled, validated and applied exactly as a
// file change is.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/loader.h"

namespace sluice::k8s {

struct ResourceKind {
  std::string group;        // "" for the core group
  std::string version;      // "v1"
  std::string plural;       // "services": the URL segment
  std::string kind;         // "Service"
  // Keep only the metadata the config needs (Pods: there are many, and their
  // specs and statuses are large).
  bool metadata_only = false;

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  // The cluster-wide collection: /api/v1/services, /apis/GROUP/VERSION/PLURAL.
  std::string collection_path() const;
};

// What sluiced lists and watches, in this order.
const std::vector<ResourceKind>& watched_kinds();

enum class EventType { Added, Modified, Deleted, Bookmark, Error };

struct WatchEvent {
  EventType type = EventType::Added;
  nlohmann::json object;
  // For Error events: the Status object's code and message (410: the
  // resourceVersion is too old, relist).
  int error_code = 0;
  std::string error_message;
};

// One line of a watch stream ({"type": "...", "object": {...}}). Throws
// std::runtime_error saying what is wrong with the line.
WatchEvent parse_watch_event(std::string_view line);

// The part of an object the store keeps: without metadata.managedFields,
// metadata.resourceVersion (kept beside it) and status; for a metadata_only
// kind, apiVersion, kind, metadata (name, namespace, uid, labels),
// spec.nodeName and status.podIP(s) only.
nlohmann::json trim_object(const nlohmann::json& object, const ResourceKind& kind);

// One resource's objects by "namespace/name", as the last list plus the
// watch events since.
class ResourceStore {
 public:
  explicit ResourceStore(ResourceKind kind) : kind_(std::move(kind)) {}

  // Replaces everything with a list response (kind FooList: metadata.resourceVersion, items).
  // Returns true if the contents changed. Throws std::runtime_error on a malformed list.
  bool replace(const nlohmann::json& list);
  // Applies an ADDED/MODIFIED/DELETED/BOOKMARK event; returns true if the
  // contents changed. A BOOKMARK only moves resource_version().
  bool apply(const WatchEvent& event);

  const ResourceKind& kind() const { return kind_; }
  const std::string& resource_version() const { return resource_version_; }
  size_t size() const { return objects_.size(); }
  // Appends one source per object, sorted by namespace/name.
  void append_sources(std::vector<config::SourceText>& out) const;

 private:
  struct Entry {
    std::string resource_version;
    std::string source_name;
    std::string text;   // the trimmed object as indented JSON
  };
  bool put(const nlohmann::json& object);

  ResourceKind kind_;
  std::string resource_version_;
  std::map<std::string, Entry> objects_;
};

}  // namespace sluice::k8s
