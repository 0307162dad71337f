#include "proxy/http2_session.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

namespace sluice::proxy {

namespace {
// Each block starts with a header that says which list it goes back to
// (kLarge: malloc's), 16 bytes so the payload keeps malloc's alignment.
constexpr size_t kHeader = 16;
constexpr uint32_t kLarge = 0xffffffffu;
constexpr size_t kSmallest = 32;

size_t size_index(size_t size) {   // the smallest list whose blocks hold `size` (kSizes and up: none)
  if (size <= kSmallest) return 0;
  return static_cast<size_t>(std::bit_width(size - 1)) - 5;   // 33..64 -> 1, 65..128 -> 2, ...
}
size_t block_size(size_t index) { return kSmallest << index; }
uint32_t& header_of(void* payload) { return *reinterpret_cast<uint32_t*>(static_cast<char*>(payload) - kHeader); }
}  // namespace

Http2Allocator::Http2Allocator() {
  mem_.mem_user_data = this;
  mem_.malloc = [](size_t size, void* self) { return static_cast<Http2Allocator*>(self)->allocate(size); };
  mem_.free = [](void* block, void* self) { static_cast<Http2Allocator*>(self)->release(block); };
  mem_.calloc = [](size_t n, size_t size, void* self) -> void* {
    if (size != 0 && n > (SIZE_MAX - kHeader) / size) return nullptr;
    void* block = static_cast<Http2Allocator*>(self)->allocate(n * size);
    if (block != nullptr) std::memset(block, 0, n * size);
    return block;
  };
  mem_.realloc = [](void* block, size_t size, void* self) {
    return static_cast<Http2Allocator*>(self)->reallocate(block, size);
  };
}

Http2Allocator::~Http2Allocator() {
  for (FreeBlock*& list : free_) {
    while (list != nullptr) {
      FreeBlock* next = list->next;
      std::free(reinterpret_cast<char*>(list) - kHeader);
      list = next;
    }
  }
}

size_t Http2Allocator::free_blocks() const {
  size_t n = 0;
  for (size_t count : free_count_) n += count;
  return n;
}

void* Http2Allocator::allocate(size_t size) {
  if (size > SIZE_MAX - kHeader) return nullptr;
  const size_t index = size_index(size);
  if (index < kSizes && free_[index] != nullptr) {
    FreeBlock* block = free_[index];
    free_[index] = block->next;
    --free_count_[index];
    return block;
  }
  const bool small = index < kSizes;
  char* raw = static_cast<char*>(std::malloc(kHeader + (small ? block_size(index) : size)));
  if (raw == nullptr) return nullptr;
  *reinterpret_cast<uint32_t*>(raw) = small ? static_cast<uint32_t>(index) : kLarge;
  return raw + kHeader;
}

void Http2Allocator::release(void* block) {
  if (block == nullptr) return;
  const uint32_t index = header_of(block);
  if (index == kLarge || free_count_[index] == max_free_blocks(block_size(index))) {
    std::free(static_cast<char*>(block) - kHeader);
    return;
  }
  auto* b = static_cast<FreeBlock*>(block);
  b->next = free_[index];
  free_[index] = b;
  ++free_count_[index];
}

void* Http2Allocator::reallocate(void* block, size_t size) {
  if (block == nullptr) return allocate(size);
  const uint32_t index = header_of(block);
  if (index != kLarge) {
    if (size <= block_size(index)) return block;   // it already fits
    void* bigger = allocate(size);
    if (bigger == nullptr) return nullptr;         // the old block stays valid, as realloc's does
    std::memcpy(bigger, block, block_size(index));
    release(block);
    return bigger;
  }
  if (size_index(size) < kSizes) {   // a large block shrinking into a list's size: keep it as it is
    return block;
  }
  if (size > SIZE_MAX - kHeader) return nullptr;
  char* raw = static_cast<char*>(std::realloc(static_cast<char*>(block) - kHeader, kHeader + size));
  return raw == nullptr ? nullptr : raw + kHeader;
}

nghttp2_session* open_http2_server_session(const nghttp2_session_callbacks* callbacks, void* user_data,
                                           const Http2Limits& limits, Http2Allocator* allocator) {
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
  int rc = nghttp2_session_server_new3(&session, callbacks, user_data, option,
                                       allocator != nullptr ? allocator->mem() : nullptr);
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
                                           uint32_t stream_window, uint32_t max_header_list_bytes,
                                           Http2Allocator* allocator) {
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) return nullptr;
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_session* session = nullptr;
  int rc = nghttp2_session_client_new3(&session, callbacks, user_data, option,
                                       allocator != nullptr ? allocator->mem() : nullptr);
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

void lower_ascii_in_place(char* p, size_t n) {
  size_t i = 0;
  // Eight bytes at a time: a byte's 0x20 bit is set where it is 'A'..'Z'
  // (7-bit sums that cannot carry into the next byte), others are kept.
  constexpr uint64_t kHigh = 0x8080808080808080ULL, kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    const uint64_t low7 = w & kLow7;
    const uint64_t at_least_a = low7 + 0x3f3f3f3f3f3f3f3fULL;   // high bit: >= 'A' (0x41)
    const uint64_t above_z = low7 + 0x2525252525252525ULL;      // high bit: > 'Z' (0x5a)
    const uint64_t upper = at_least_a & ~above_z & ~w & kHigh;   // ~w: ASCII bytes only
    w |= upper >> 2;
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; ++i) {
    if (p[i] >= 'A' && p[i] <= 'Z') p[i] = static_cast<char>(p[i] + 32);
  }
}

void Http2FieldList::append(std::string_view name, std::string_view value, bool forwarded, bool drop_host) {
  const auto at = static_cast<uint32_t>(text_.size());
  text_.append(name);
  char* out = text_.data() + at;
  lower_ascii_in_place(out, name.size());
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

bool split_own_request_head(std::string_view text, Http2FieldList& list, OwnRequestHead& r) {
  // One pass over the lines, each ended by CRLF; the empty line ends the
  // head (no separate search for it first: the head is read once).
  size_t at = 0;
  auto next_line = [&](std::string_view& line) {
    const size_t eol = text.find('\n', at);
    if (eol == std::string_view::npos || eol == at) return false;
    line = text.substr(at, eol - at - 1);   // without the CR
    at = eol + 1;
    return true;
  };
  std::string_view request_line, line;
  if (!next_line(request_line)) return false;
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = request_line.rfind(' ');
  if (!next_line(line)) return false;
  std::string_view authority;
  if (line.starts_with("host: ")) {
    authority = line.substr(6);
    if (!next_line(line)) return false;
  }
  list.clear();
  list.add(":method", request_line.substr(0, sp1));
  list.add(":scheme", "http");
  list.add(":authority", authority);
  list.add(":path", request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  r = OwnRequestHead{};
  while (!line.empty()) {
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
    if (name == "content-length") {
      r.framing = http::BodyFraming::ContentLength;
      std::from_chars(value.data(), value.data() + value.size(), r.content_length);
    } else if (name == "transfer-encoding") {
      r.framing = http::BodyFraming::Chunked;   // RFC 9113 8.2.2: not sent; DATA frames carry the chunks
    } else if (http::iequals(name, "content-type") && value.starts_with("application/grpc")) {
      r.grpc = true;
    }
    list.add_forwarded(name, value, true);
    if (!next_line(line)) return false;   // not whole yet
  }
  r.head_bytes = at;
  return true;
}

FramedBodyRead read_framed_body(std::string_view avail, http::BodyFraming framing, uint64_t& remaining,
                                http::ChunkedBodyScanner& chunks, uint8_t* buf, size_t length) {
  FramedBodyRead r;
  if (framing == http::BodyFraming::ContentLength) {
    r.written = r.consumed = static_cast<size_t>(std::min<uint64_t>({length, avail.size(), remaining}));
    std::memcpy(buf, avail.data(), r.written);
    remaining -= r.written;
    r.done = remaining == 0;
    return r;
  }
  struct Frame {
    uint8_t* buf;
    size_t n;
  } frame{buf, 0};
  r.consumed = chunks.feed(
      avail.substr(0, length),
      [](void* context, std::string_view data) {
        auto* f = static_cast<Frame*>(context);
        std::memcpy(f->buf + f->n, data.data(), data.size());
        f->n += data.size();
      },
      &frame);
  r.written = frame.n;
  r.done = chunks.done();
  r.failed = chunks.failed();
  return r;
}

void Http2RequestBlock::clear() {
  method.clear();
  path.clear();
  authority.clear();
  cookie.clear();
  fields.clear();
  header_bytes = header_count = 0;
  too_large = chunked = false;
}

void Http2RequestBlock::add(std::string_view name, std::string_view value, uint32_t max_header_list_bytes,
                            size_t max_headers) {
  if (too_large) return;
  header_bytes += name.size() + value.size() + 32;   // RFC 9113 6.5.2's accounting
  if (header_bytes > max_header_list_bytes || ++header_count > max_headers) {
    too_large = true;
    return;
  }
  // nghttp2 has validated names (lower-case tokens), values (no CR, LF,
  // NUL, no surrounding white space), pseudo-headers and refused the
  // connection-specific fields (RFC 9113 8.2.2); "te: trailers" is the one
  // it lets through, and it means nothing upstream.
  if (name == ":method") method.assign(value);
  else if (name == ":path") path.assign(value);
  else if (name == ":authority") authority.assign(value);
  else if (name.starts_with(':') || name == "te" || name == "expect") return;
  else if (name == "cookie") {
    if (!cookie.empty()) cookie += "; ";
    cookie.append(value);
  } else {
    fields.add(name, value);
  }
}

bool Http2RequestBlock::to_request_head(bool end_stream, const http::Limits& limits,
                                        http::PathNormalisation normalisation, http::RequestHead& head) {
  head.reset();
  head.method = method;
  head.target = path;
  head.minor_version = 1;
  const size_t capacity = std::min(limits.max_headers, http::kMaxHeaderFields);
  size_t n = 0, bytes = method.size() + 1 + path.size() + 11 + 19 + 2;
  bool too_many = false, has_length = false;
  auto add_field = [&](std::string_view name, std::string_view value) {
    bytes += name.size() + value.size() + 4;
    if (n + 2 > capacity) too_many = true;   // room is left for the connection field
    else head.fields[n++] = http::Field{name, value};
  };
  if (!authority.empty()) add_field("host", authority);
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string_view name = fields.name(i);
    if (!authority.empty() && name == "host") continue;
    has_length = has_length || name == "content-length";
    add_field(name, fields.value(i));
  }
  if (!cookie.empty()) add_field("cookie", cookie);
  chunked = !end_stream && !has_length;
  if (chunked) add_field("transfer-encoding", "chunked");
  head.field_count = n;
  if (bytes > limits.max_header_bytes) {
    head.error = http::ParseError{431, "request head larger than the header byte limit"};
    return false;
  }
  if (too_many) {
    head.error = http::ParseError{431, "too many header fields"};
    return false;
  }
  if (http::validate_request_head(limits, head) != http::ParseResult::Complete) return false;
  head.keep_alive = false;   // one request per stream
  return http::normalise_request_target(head, std::span<char>(path.data(), path.size()), normalisation);
}

}  // namespace sluice::proxy
