#include "http/chunked_body.h"

#include <algorithm>
#include <cstring>

#include "http/message_head.h"

namespace sluice::http {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t'; }

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

size_t scan_token(std::string_view s, size_t i) {
  size_t start = i;
  while (i < s.size() && is_token(s.substr(i, 1))) ++i;
  return i == start ? std::string_view::npos : i;
}

size_t scan_quoted_string(std::string_view s, size_t i) {
  if (i >= s.size() || s[i] != '"') return std::string_view::npos;
  for (++i; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (++i >= s.size()) return std::string_view::npos;
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) return std::string_view::npos;
  }
  return std::string_view::npos;
}

// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
bool is_valid_chunk_ext(std::string_view s) {
  size_t i = 0;
  while (true) {
    i = skip_ws(s, i);
    if (i == s.size()) return true;
    if (s[i] != ';') return false;
    i = scan_token(s, skip_ws(s, i + 1));
    if (i == std::string_view::npos) return false;
    size_t j = skip_ws(s, i);
    if (j < s.size() && s[j] == '=') {
      j = skip_ws(s, j + 1);
      i = (j < s.size() && s[j] == '"') ? scan_quoted_string(s, j) : scan_token(s, j);
      if (i == std::string_view::npos) return false;
    }
  }
}

}  // namespace

bool is_forwarded_trailer(std::string_view name) {
  static constexpr std::string_view kDropped[] = {
      // framing and connection management
      "content-length", "transfer-encoding", "trailer", "connection", "keep-alive", "proxy-connection", "te",
      "upgrade",
      // routing and request modifiers
      "host", "expect", "max-forwards", "range", "if-match", "if-none-match", "if-modified-since",
      "if-unmodified-since", "if-range", "cache-control", "pragma",
      // authentication and state
      "authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate", "cookie", "set-cookie",
      // response control and content description
      "age", "expires", "date", "location", "retry-after", "vary", "content-type", "content-encoding",
      "content-range", "content-location",
      // set by the proxy
      "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-envoy-upstream-service-time"};
  for (auto d : kDropped) {
    if (iequals(name, d)) return false;
  }
  return true;
}

ChunkedBodyScanner::Forwarded ChunkedBodyScanner::forward(std::string_view input, std::span<char> out) {
  Forwarded f;
  while (f.consumed < input.size() && state_ != State::Done && state_ != State::Failed) {
    const size_t room = out.size() - f.written;
    if (state_ == State::Data) {
      size_t take = static_cast<size_t>(std::min<uint64_t>({remaining_, input.size() - f.consumed, room}));
      if (take == 0) break;
      std::memcpy(out.data() + f.written, input.data() + f.consumed, take);
      f.consumed += take;
      f.written += take;
      remaining_ -= take;
      body_bytes_ += take;
      if (remaining_ == 0) state_ = State::DataCR;
      continue;
    }
    if (state_ != State::TrailerLine) {   // size lines and CRLFs pass byte by byte
      if (room == 0) break;
      char c = input[f.consumed];
      if (feed(input.substr(f.consumed, 1)) != 1) break;
      out[f.written++] = c;
      ++f.consumed;
      continue;
    }
    // A trailer line is kept until its CRLF, then written whole or dropped.
    char c = input[f.consumed];
    std::string_view line(line_.data(), line_len_);
    if (saw_cr_ && c == '\n') {
      size_t colon = line.find(':');
      bool keep = !line.empty() && colon != std::string_view::npos && is_forwarded_trailer(line.substr(0, colon));
      size_t need = keep || line.empty() ? line.size() + 2 : 0;
      if (need > room) break;
      feed(input.substr(f.consumed, 1));
      ++f.consumed;
      if (state_ == State::Failed) break;
      if (need > 0) {
        std::memcpy(out.data() + f.written, line.data(), line.size());
        std::memcpy(out.data() + f.written + line.size(), "\r\n", 2);
        f.written += need;
      } else {
        ++trailers_dropped_;
      }
      continue;
    }
    feed(input.substr(f.consumed, 1));
    ++f.consumed;
  }
  return f;
}

bool ChunkedBodyScanner::end_size_line() {
  std::string_view line(line_.data(), line_len_);
  uint64_t size = 0;
  size_t digits = 0;
  while (digits < line.size() && hex_digit_value(line[digits]) >= 0) {
    if (digits == 16) {
      fail("chunk size overflows 64 bits");
      return false;
    }
    size = (size << 4) | static_cast<uint64_t>(hex_digit_value(line[digits]));
    ++digits;
  }
  if (digits == 0) {
    fail("chunk size is not hexadecimal");
    return false;
  }
  if (!is_valid_chunk_ext(line.substr(digits))) {
    fail("malformed chunk extension");
    return false;
  }
  remaining_ = size;
  state_ = size == 0 ? State::TrailerLine : State::Data;
  return true;
}

bool ChunkedBodyScanner::end_trailer_line() {
  std::string_view line(line_.data(), line_len_);
  if (line.empty()) {
    state_ = State::Done;
    return true;
  }
  trailer_bytes_ += line.size() + 2;
  size_t colon = line.find(':');
  if (trailer_bytes_ > kMaxTrailerBytes) {
    fail("trailer section too large");
    return false;
  }
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
    fail("malformed trailer field");
    return false;
  }
  for (unsigned char c : line.substr(colon + 1)) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      fail("invalid trailer field value");
      return false;
    }
  }
  return true;
}

size_t ChunkedBodyScanner::feed(std::string_view input, DataSink sink, void* context, DataSink trailer_sink) {
  size_t i = 0;
  while (i < input.size() && state_ != State::Done && state_ != State::Failed) {
    switch (state_) {
      case State::SizeLine:
      case State::TrailerLine: {
        char c = input[i++];
        if (saw_cr_) {
          if (c != '\n') {
            fail("bare CR in chunk framing");
            break;
          }
          saw_cr_ = false;
          const bool trailer = state_ == State::TrailerLine;
          bool ok = trailer ? end_trailer_line() : end_size_line();
          if (ok && trailer && trailer_sink != nullptr && state_ == State::TrailerLine) {
            std::string_view line(line_.data(), line_len_);
            if (is_forwarded_trailer(line.substr(0, line.find(':')))) trailer_sink(context, line);
          }
          line_len_ = 0;
          if (!ok) break;
        } else if (c == '\r') {
          saw_cr_ = true;
        } else if (c == '\n') {
          fail("bare LF in chunk framing");
        } else if (line_len_ == line_.size()) {
          fail("chunk line too long");
        } else {
          line_[line_len_++] = c;
        }
        break;
      }
      case State::Data: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - i));
        if (sink != nullptr) sink(context, input.substr(i, take));
        i += take;
        remaining_ -= take;
        body_bytes_ += take;
        if (remaining_ == 0) state_ = State::DataCR;
        break;
      }
      case State::DataCR:
        if (input[i++] != '\r') fail("chunk data not followed by CRLF");
        else state_ = State::DataLF;
        break;
      case State::DataLF:
        if (input[i++] != '\n') fail("chunk data not followed by CRLF");
        else state_ = State::SizeLine;
        break;
      case State::Done:
      case State::Failed:
        break;
    }
  }
  return i;
}

}  // namespace sluice::http
