#include "proxy/http2_session.h"

#include <array>

namespace sluice::proxy {

nghttp2_session* open_http2_server_session(const nghttp2_session_callbacks* callbacks, void* user_data,
                                           const Http2Limits& limits) {
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) return nullptr;
  // Window updates follow what the exchange took from a stream's buffer
  // (nghttp2_session_consume), so a slow upstream stops the client.
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_option_set_max_continuations(option, limits.max_continuations);
  nghttp2_option_set_max_settings(option, limits.max_settings_entries);
  nghttp2_option_set_max_outbound_ack(option, limits.max_outbound_acks);
  nghttp2_session* session = nullptr;
  int rc = nghttp2_session_server_new2(&session, callbacks, user_data, option);
  nghttp2_option_del(option);
  if (rc != 0) return nullptr;
  const std::array<nghttp2_settings_entry, 4> settings{{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_bytes},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  }};
  if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(), settings.size()) != 0 ||
      nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                            static_cast<int32_t>(limits.connection_window)) != 0) {
    nghttp2_session_del(session);
    return nullptr;
  }
  return session;
}

nghttp2_session* open_http2_client_session(const nghttp2_session_callbacks* callbacks, void* user_data,
                                           uint32_t stream_window, uint32_t max_header_list_bytes) {
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) return nullptr;
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_session* session = nullptr;
  int rc = nghttp2_session_client_new2(&session, callbacks, user_data, option);
  nghttp2_option_del(option);
  if (rc != 0) return nullptr;
  const std::array<nghttp2_settings_entry, 3> settings{{
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, max_header_list_bytes},
  }};
  // The connection window is what all streams may have in flight at once;
  // each stream stays within its own (half its slot's buffer).
  if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(), settings.size()) != 0 ||
      nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0, 1024 * 1024) != 0) {
    nghttp2_session_del(session);
    return nullptr;
  }
  return session;
}

bool count_client_reset(nghttp2_session* session, ClientResetWindow& window, const Http2Limits& limits,
                        int64_t now_ns) {
  if (window.count == 0 || now_ns - window.start_ns >= int64_t{limits.reset_window_ms} * 1'000'000) {
    window.start_ns = now_ns;
    window.count = 0;
  }
  if (++window.count <= limits.max_client_resets) return true;
  nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
  return false;
}

bool is_connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "te";
}

namespace {
// Names (lower case) whose values differ from one message to the next.
bool unique_per_message(std::string_view name) {
  switch (name.size()) {
    case 11: return name == "traceparent" || name == "x-b3-spanid";
    case 12: return name == "x-request-id" || name == "x-b3-traceid";
    case 17: return name == "x-b3-parentspanid" || name == "x-client-trace-id";
    case 29: return name == "x-envoy-upstream-service-time";
    default: return false;
  }
}
}  // namespace

void Http2FieldList::append(std::string_view name, std::string_view value, bool forwarded, bool drop_host) {
  const auto at = static_cast<uint32_t>(text_.size());
  text_.resize(at + name.size());   // one size change, not one per character
  char* out = text_.data() + at;
  for (size_t i = 0; i < name.size(); ++i) {
    const char ch = name[i];
    out[i] = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  const std::string_view lower(out, name.size());
  if (forwarded && (is_connection_specific(lower) || (drop_host && lower == "host"))) {
    text_.resize(at);
    return;
  }
  text_.append(value);
  at_.push_back({at, static_cast<uint32_t>(name.size()), static_cast<uint32_t>(at + name.size()),
                 static_cast<uint32_t>(value.size()), unique_per_message(lower)});
}

const nghttp2_nv* Http2FieldList::nva() {
  nva_.resize(at_.size());
  auto* base = reinterpret_cast<uint8_t*>(text_.data());
  for (size_t i = 0; i < at_.size(); ++i) {
    nva_[i] = {base + at_[i].name, base + at_[i].value, at_[i].name_len, at_[i].value_len,
               static_cast<uint8_t>(at_[i].never_index ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE)};
  }
  return nva_.data();
}

}  // namespace sluice::proxy
