// One decoder per kind, written in the field-decoding layer (config/decoder.h).
// The document dispatcher (config/loader.cc) reads apiVersion, kind and
// metadata, then hands the spec to the kind's decoder, which appends the
// decoded resource to Decoder::out() and reports every problem it finds.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/decoder.h"

namespace sluice::config {

// networking.istio.io
void decode_virtual_service(Decoder& d, Fields& spec, ResourceMeta meta);
void decode_destination_rule(Decoder& d, Fields& spec, ResourceMeta meta);
void decode_service_entry(Decoder& d, Fields& spec, ResourceMeta meta);
void decode_workload_entry(Decoder& d, const YAML::Node& spec, ResourceMeta meta);

// Kubernetes (config/decode_kubernetes.cc). `doc` is the whole object for
// an EndpointSlice (its fields are top-level), else its spec / status.
void decode_kube_service(Decoder& d, const YAML::Node& spec, ResourceMeta meta);
void decode_endpoint_slice(Decoder& d, const YAML::Node& doc, ResourceMeta meta);
void decode_pod(Decoder& d, const YAML::Node* spec, const YAML::Node* status, ResourceMeta meta);

// exportTo as written (config/export_to.cc): checked, '.' made the object's
// namespace, stored in meta.export_to. '~' (no namespace) only when allow_none.
void decode_export_to(Decoder& d, Fields& spec, ResourceMeta& meta, bool allow_none);
void set_export_to(Decoder& d, const YAML::Node& where, const std::vector<std::string>& values,
                   const std::string& field, ResourceMeta& meta, bool allow_none);

// "HTTP", "grpc-web", ... (case-insensitive) as Istio names protocols.
std::optional<model::Protocol> protocol_from_name(std::string_view text);

}  // namespace sluice::config
