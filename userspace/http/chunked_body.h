// Streaming validator for the chunked transfer coding (RFC 9112 7.1). The
// proxy forwards chunked bodies as received, so this only has to find where
// the body ends and refuse anything two implementations could read
// differently: a size that is not 1-16 hex digits, a malformed extension, a
// line not ended by CRLF, a malformed trailer field. Data bytes are reported
// to an optional sink for callers that must remove the coding (HTTP/1.0
// clients). No allocation: size and trailer lines are kept in fixed arrays.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace sluice::http {

// Trailer fields the proxy passes on (RFC 9110 6.5.1): all but those that
// frame, route, authenticate or control the message, or that the proxy
// itself sets. A recipient that merges trailers into the header section
// would otherwise take a trailer Content-Length, Host or x-forwarded-for
// as the sender's. docs/l7-proxy.md lists them.
bool is_forwarded_trailer(std::string_view name);

class ChunkedBodyScanner {
 public:
  using DataSink = void (*)(void* context, std::string_view data);

  // Consumes bytes of `input` up to the end of the body; returns how many.
  // Stops early only at the end of the body or on an error.
  // `trailer_sink` gets each trailer field is_forwarded_trailer() keeps,
  // as its line without CRLF (an HTTP/2 client gets them as trailers).
  size_t feed(std::string_view input, DataSink sink = nullptr, void* context = nullptr,
              DataSink trailer_sink = nullptr);

  // The forwarding form of feed(): consumes bytes of `input` and writes to
  // `out` what the proxy passes on — size lines, data and CRLFs as received,
  // and the trailer fields is_forwarded_trailer() keeps (whole lines; the
  // others are dropped). Writes at most out.size() bytes and stops before a
  // byte whose output does not fit (a kept trailer line is written when its
  // CRLF is read). Returns {consumed, written}.
  struct Forwarded {
    size_t consumed = 0;
    size_t written = 0;
  };
  Forwarded forward(std::string_view input, std::span<char> out);
  uint32_t trailers_dropped() const { return trailers_dropped_; }

  bool done() const { return state_ == State::Done; }
  bool failed() const { return state_ == State::Failed; }
  std::string_view error() const { return error_; }
  uint64_t body_bytes() const { return body_bytes_; }   // decoded data bytes so far
  // Back to the start of a body. The line buffer is not cleared: only its
  // first line_len_ bytes are ever read (and the reset is per request).
  void reset() {
    state_ = State::SizeLine;
    saw_cr_ = false;
    remaining_ = body_bytes_ = 0;
    trailers_dropped_ = 0;
    trailer_bytes_ = line_len_ = 0;
    error_ = {};
  }

  static constexpr size_t kMaxLineBytes = 1024;      // a size line or one trailer field
  static constexpr size_t kMaxTrailerBytes = 8192;   // all trailer fields

 private:
  enum class State : uint8_t { SizeLine, Data, DataCR, DataLF, TrailerLine, Done, Failed };
  bool end_size_line();
  bool end_trailer_line();
  void fail(std::string_view why) {
    state_ = State::Failed;
    error_ = why;
  }

  State state_ = State::SizeLine;
  bool saw_cr_ = false;
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
  uint32_t trailers_dropped_ = 0;
  size_t trailer_bytes_ = 0;
  size_t line_len_ = 0;
  std::array<char, kMaxLineBytes> line_{};
  std::string_view error_;
};

}  // namespace sluice::http
