// One case per RFC 9112 framing rule the proxy enforces on requests and
// responses: what is accepted, what is refused, and with which status.
#include <gtest/gtest.h>

#include <string>

#include "http/chunked_body.h"
#include "http/message_head.h"

namespace sluice::http {
namespace {

struct RefusedRequest {
  const char* rule;
  std::string raw;
  uint16_t status;
};

class RefusedRequestTest : public ::testing::TestWithParam<RefusedRequest> {};

TEST_P(RefusedRequestTest, IsRefusedWithStatus) {
  const auto& c = GetParam();
  RequestHead head;
  ASSERT_EQ(parse_request_head(c.raw, Limits{}, head), ParseResult::Invalid) << c.rule;
  EXPECT_EQ(head.error.status, c.status) << c.rule << ": " << head.error.reason;
  // The worker parses every request into one head: what a larger head
  // before it left in the field array must not change the verdict.
  RequestHead reused;
  ASSERT_EQ(parse_request_head("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", Limits{}, reused),
            ParseResult::Complete);
  ASSERT_EQ(parse_request_head(c.raw, Limits{}, reused), ParseResult::Invalid) << c.rule << " after another head";
  EXPECT_EQ(reused.error.status, c.status) << c.rule << " after another head: " << reused.error.reason;
}

INSTANTIATE_TEST_SUITE_P(
    Rfc9112, RefusedRequestTest,
    ::testing::Values(
        RefusedRequest{"content_length_with_transfer_encoding",
                       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        RefusedRequest{"transfer_encoding_then_content_length",
                       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
        RefusedRequest{"duplicate_content_length_same_value",
                       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400},
        RefusedRequest{"duplicate_content_length_as_list",
                       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400},
        RefusedRequest{"signed_content_length",
                       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400},
        RefusedRequest{"hex_content_length",
                       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\n", 400},
        RefusedRequest{"overflowing_content_length",
                       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        RefusedRequest{"chunked_twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
        RefusedRequest{"chunked_in_two_fields",
                       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        RefusedRequest{"chunked_not_final", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        RefusedRequest{"unknown_coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
        RefusedRequest{"transfer_encoding_in_http10",
                       "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        RefusedRequest{"obs_fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n", 400},
        RefusedRequest{"obs_fold_hiding_transfer_encoding",
                       "POST / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
        RefusedRequest{"whitespace_before_colon", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
        RefusedRequest{"bare_cr_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n", 400},
        RefusedRequest{"bare_lf_line_ending", "GET / HTTP/1.1\nHost: a\nX-A: 1\n\n", 400},
        RefusedRequest{"missing_host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400},
        RefusedRequest{"duplicate_host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        RefusedRequest{"invalid_host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        RefusedRequest{"relative_target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        // An overlong UTF-8 '/' a backend might decode, any raw byte over
        // 0x7e, and a fragment: the target is visible ASCII only.
        RefusedRequest{"raw_overlong_slash_in_target", "GET /x\xc0\xaf..\xc0\xaf" "admin HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        RefusedRequest{"raw_utf8_in_query", "GET /?q=\xe4\xbd\xa0 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        RefusedRequest{"fragment_in_target", "GET /public#/../admin HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        RefusedRequest{"raw_byte_in_absolute_form", "GET http://a/\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        RefusedRequest{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 501},
        RefusedRequest{"unknown_expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", 417}));

TEST(RequestHead, RefusesTooManyFieldsWith431) {
  std::string raw = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 20; ++i) raw += "X-" + std::to_string(i) + ": v\r\n";
  raw += "\r\n";
  Limits limits;
  limits.max_headers = 10;
  RequestHead head;
  ASSERT_EQ(parse_request_head(raw, limits, head), ParseResult::Invalid);
  EXPECT_EQ(head.error.status, 431);
}

TEST(RequestHead, RefusesOversizedHeadWith431EvenWhenIncomplete) {
  std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(20000, 'b');
  RequestHead head;
  ASSERT_EQ(parse_request_head(raw, Limits{}, head), ParseResult::Invalid);
  EXPECT_EQ(head.error.status, 431);
}

TEST(RequestHead, RefusesLongUriWith414) {
  std::string raw = "GET /" + std::string(9000, 'u') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestHead head;
  ASSERT_EQ(parse_request_head(raw, Limits{}, head), ParseResult::Invalid);
  EXPECT_EQ(head.error.status, 414);
}

TEST(RequestHead, RefusesLongUriWith414BeforeTheLineEnds) {
  std::string raw = "GET /" + std::string(12000, 'u');
  RequestHead head;
  ASSERT_EQ(parse_request_head(raw, Limits{}, head), ParseResult::Invalid);
  EXPECT_EQ(head.error.status, 414);
}

TEST(RequestHead, IncompleteHeadAsksForMore) {
  RequestHead head;
  EXPECT_EQ(parse_request_head("GET / HTTP/1.1\r\nHost: a\r\n", Limits{}, head), ParseResult::Incomplete);
}

TEST(RequestHead, ContentLengthBodyIsFramedByLength) {
  RequestHead head;
  std::string raw = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  ASSERT_EQ(parse_request_head(raw, Limits{}, head), ParseResult::Complete);
  EXPECT_EQ(head.framing, BodyFraming::ContentLength);
  EXPECT_EQ(head.content_length, 5u);
  EXPECT_EQ(head.head_bytes, raw.size() - 5);
  EXPECT_EQ(head.authority, "a");
  EXPECT_TRUE(head.keep_alive);
}

TEST(RequestHead, ChunkedIsCaseInsensitive) {
  RequestHead head;
  ASSERT_EQ(parse_request_head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", Limits{}, head),
            ParseResult::Complete);
  EXPECT_EQ(head.framing, BodyFraming::Chunked);
}

TEST(RequestHead, Http10ClosesUnlessKeepAliveAndMayOmitHost) {
  RequestHead head;
  ASSERT_EQ(parse_request_head("GET / HTTP/1.0\r\n\r\n", Limits{}, head), ParseResult::Complete);
  EXPECT_FALSE(head.keep_alive);
  ASSERT_EQ(parse_request_head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Limits{}, head),
            ParseResult::Complete);
  EXPECT_TRUE(head.keep_alive);
}

TEST(RequestHead, ConnectionCloseEndsKeepAlive) {
  RequestHead head;
  ASSERT_EQ(parse_request_head("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", Limits{}, head),
            ParseResult::Complete);
  EXPECT_FALSE(head.keep_alive);
}

TEST(RequestHead, ExpectContinueIsRecognised) {
  RequestHead head;
  ASSERT_EQ(parse_request_head("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
                               Limits{}, head),
            ParseResult::Complete);
  EXPECT_TRUE(head.expect_continue);
}

TEST(RequestHead, AbsoluteFormIsNormalisedToOriginFormWithItsAuthority) {
  RequestHead head;
  ASSERT_EQ(parse_request_head("GET http://svc.example:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", Limits{}, head),
            ParseResult::Complete);
  EXPECT_TRUE(head.absolute_form);
  EXPECT_EQ(head.target, "/p?q=1");
  EXPECT_EQ(head.authority, "svc.example:8080");
}

TEST(RequestHead, FieldValuesAreTrimmed) {
  RequestHead head;
  ASSERT_EQ(parse_request_head("GET / HTTP/1.1\r\nHost:  a  \r\nEnd-User: \tjason \r\n\r\n", Limits{}, head),
            ParseResult::Complete);
  EXPECT_EQ(head.field("end-user"), "jason");
  EXPECT_EQ(head.authority, "a");
}

TEST(RequestHead, HopByHopIncludesFieldsNamedByConnection) {
  EXPECT_TRUE(is_hop_by_hop("Keep-Alive", ""));
  EXPECT_TRUE(is_hop_by_hop("x-secret", "close, X-Secret"));
  EXPECT_FALSE(is_hop_by_hop("x-other", "close, X-Secret"));
}

// Connection: content-length once stripped the length of a body that was
// still forwarded: the next hop read the body as a second request.
TEST(RequestHead, ConnectionNeverRemovesFramingRoutingOrProxyFields) {
  const char* connection = "close, Content-Length, HOST, transfer-encoding, x-request-id, X-Forwarded-For, "
                           "x-forwarded-proto, x-secret";
  EXPECT_FALSE(is_hop_by_hop("Content-Length", connection));
  EXPECT_FALSE(is_hop_by_hop("host", connection));
  EXPECT_FALSE(is_hop_by_hop("x-request-id", connection));
  EXPECT_FALSE(is_hop_by_hop("x-forwarded-for", connection));
  EXPECT_FALSE(is_hop_by_hop("X-Forwarded-Proto", connection));
  EXPECT_TRUE(is_hop_by_hop("x-secret", connection));
  EXPECT_TRUE(is_hop_by_hop("transfer-encoding", connection));   // hop-by-hop anyway: the proxy writes its own
}

// The parse proper runs at the end of the first line and at the empty line,
// not once per received byte; each byte is looked at once.
TEST(HeadEndScanner, AHeadSentAByteAtATimeIsScannedOnceAndParsedTwice) {
  std::string head = "GET /a HTTP/1.1\r\nHost: a\r\n";
  while (head.size() < 15 * 1024) head += "x-filler: " + std::string(190, 'f') + "\r\n";
  head += "\r\n";
  Limits limits;
  HeadEndScanner scanner;
  RequestHead parsed;
  int parses = 0;
  ParseResult result = ParseResult::Incomplete;
  for (size_t n = 1; n <= head.size(); ++n) {
    std::string_view received(head.data(), n);
    if (!scanner.ready(received, 0, limits)) continue;
    ++parses;
    result = parse_request_head(received, limits, parsed);
  }
  EXPECT_EQ(result, ParseResult::Complete);
  EXPECT_EQ(parsed.head_bytes, head.size());
  EXPECT_EQ(parses, 2);
  EXPECT_EQ(scanner.bytes_scanned(), head.size());
}

TEST(HeadEndScanner, StartsOverWhenTheStreamMovesToTheNextHead) {
  Limits limits;
  HeadEndScanner scanner;
  std::string two = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_TRUE(scanner.ready(std::string_view(two).substr(0, 16), 0, limits));   // first line
  EXPECT_TRUE(scanner.ready(two, 0, limits));                                   // empty line
  std::string_view next = std::string_view(two).substr(27);
  EXPECT_TRUE(scanner.ready(next, 27, limits));   // the second head's first line, found again
  EXPECT_TRUE(scanner.ready(next, 27, limits));   // and its end
  EXPECT_FALSE(scanner.ready(next, 27, limits));
}

TEST(HeadEndScanner, ABareLfHeadStillEndsTheWaitAndIsRefused) {
  Limits limits;
  HeadEndScanner scanner;
  std::string raw = "GET / HTTP/1.1\nHost: a\n\n";
  EXPECT_TRUE(scanner.ready(raw, 0, limits));
  EXPECT_TRUE(scanner.ready(raw, 0, limits));
  RequestHead head;
  EXPECT_EQ(parse_request_head(raw, limits, head), ParseResult::Invalid);
}

TEST(HeadEndScanner, ALongFirstLineAndAFullBufferAreParsedToBeRefused) {
  Limits limits;
  limits.max_uri_bytes = 64;
  limits.max_header_bytes = 256;
  HeadEndScanner scanner;
  std::string line = "GET /" + std::string(200, 'a');
  EXPECT_TRUE(scanner.ready(line, 0, limits));   // past max_uri_bytes with no LF: 414
  RequestHead head;
  EXPECT_EQ(parse_request_head(line, limits, head), ParseResult::Invalid);
  EXPECT_EQ(head.error.status, 414);
  std::string fields = "GET / HTTP/1.1\r\nHost: a\r\nx: " + std::string(300, 'v');
  HeadEndScanner other;
  EXPECT_TRUE(other.ready(fields.substr(0, 16), 0, limits));
  EXPECT_TRUE(other.ready(fields, 0, limits));   // at max_header_bytes: 431
}

struct ResponseCase {
  const char* rule;
  std::string raw;
  const char* method;
  ParseResult result;
  BodyFraming framing;
};

class ResponseFramingTest : public ::testing::TestWithParam<ResponseCase> {};

TEST_P(ResponseFramingTest, FramesOrRefusesWith502) {
  const auto& c = GetParam();
  ResponseHead head;
  ASSERT_EQ(parse_response_head(c.raw, c.method, Limits{}, head), c.result) << c.rule;
  if (c.result == ParseResult::Complete) {
    EXPECT_EQ(head.framing, c.framing) << c.rule;
  }
  if (c.result == ParseResult::Invalid) {
    EXPECT_EQ(head.error.status, 502) << c.rule;
  }
  // One head for every response, as the worker parses them: the same
  // outcome after a larger head.
  ResponseHead reused;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n", "GET", Limits{},
                                reused),
            ParseResult::Complete);
  ASSERT_EQ(parse_response_head(c.raw, c.method, Limits{}, reused), c.result) << c.rule << " after another head";
  if (c.result == ParseResult::Complete) {
    EXPECT_EQ(reused.framing, c.framing) << c.rule << " after another head";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rfc9112, ResponseFramingTest,
    ::testing::Values(
        ResponseCase{"content_length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "GET",
                     ParseResult::Complete, BodyFraming::ContentLength},
        ResponseCase{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET",
                     ParseResult::Complete, BodyFraming::Chunked},
        ResponseCase{"until_close", "HTTP/1.1 200 OK\r\n\r\n", "GET", ParseResult::Complete, BodyFraming::UntilClose},
        ResponseCase{"head_has_no_body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD",
                     ParseResult::Complete, BodyFraming::None},
        ResponseCase{"no_content", "HTTP/1.1 204 No Content\r\n\r\n", "GET", ParseResult::Complete,
                     BodyFraming::None},
        ResponseCase{"cl_and_te", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                     "GET", ParseResult::Invalid, BodyFraming::None},
        ResponseCase{"duplicate_cl", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", "GET",
                     ParseResult::Invalid, BodyFraming::None},
        ResponseCase{"invalid_cl", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "GET", ParseResult::Invalid,
                     BodyFraming::None},
        ResponseCase{"gzip_coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET",
                     ParseResult::Invalid, BodyFraming::None},
        ResponseCase{"obs_fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", "GET",
                     ParseResult::Invalid, BodyFraming::None},
        ResponseCase{"garbage", "HTTX/1.1 200 OK\r\n\r\n", "GET", ParseResult::Invalid, BodyFraming::None}));

std::string decode_all(ChunkedBodyScanner& scanner, std::string_view input, size_t* consumed) {
  std::string data;
  *consumed = scanner.feed(
      input, [](void* ctx, std::string_view d) { static_cast<std::string*>(ctx)->append(d); }, &data);
  return data;
}

TEST(ChunkedBody, FindsTheEndAndTheData) {
  ChunkedBodyScanner scanner;
  size_t consumed = 0;
  std::string wire = "5\r\nhello\r\n6;name=\"v\" ; x\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
  EXPECT_EQ(decode_all(scanner, wire, &consumed), "hello world");
  EXPECT_TRUE(scanner.done());
  EXPECT_EQ(wire.substr(consumed), "NEXT");
}

TEST(ChunkedBody, WorksOneByteAtATime) {
  ChunkedBodyScanner scanner;
  std::string wire = "a\r\n0123456789\r\n0\r\n\r\n";
  std::string data;
  size_t consumed = 0;
  for (char c : wire) data += decode_all(scanner, std::string_view(&c, 1), &consumed);
  EXPECT_TRUE(scanner.done());
  EXPECT_EQ(data, "0123456789");
}

// A scanner reused for the next request (reset) reads it as a new one
// would, whatever state the last body left it in: done, failed, inside a
// size line, or inside a trailer section.
TEST(ChunkedBody, AResetScannerReadsTheNextBodyAsANewOneWould) {
  const std::string next = "3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
  for (std::string_view before : {std::string_view("5\r\nhello\r\n0\r\n\r\n"), std::string_view("zz\r\n"),
                                   std::string_view("1f"), std::string_view("1\r\na\r\n0\r\nX-Half: ")}) {
    ChunkedBodyScanner reused;
    size_t consumed = 0;
    decode_all(reused, before, &consumed);
    reused.reset();
    ChunkedBodyScanner fresh;
    size_t fresh_consumed = 0;
    EXPECT_EQ(decode_all(reused, next, &consumed), decode_all(fresh, next, &fresh_consumed)) << before;
    EXPECT_EQ(consumed, fresh_consumed) << before;
    EXPECT_TRUE(reused.done()) << before;
    EXPECT_FALSE(reused.failed()) << before;
    EXPECT_EQ(reused.body_bytes(), 3u) << before;
    EXPECT_EQ(reused.error(), "") << before;
  }
}

// De-chunking for an HTTP/2 client keeps the forwarded trailer fields aside
// (they leave as a trailer HEADERS frame: gRPC's grpc-status) and drops the
// ones the proxy never forwards, as forward() does.
TEST(ChunkedBody, DecodingHandsForwardedTrailersToTheTrailerSink) {
  ChunkedBodyScanner scanner;
  struct Sinks {
    std::string data, trailers;
  } sinks;
  std::string wire = "3\r\nabc\r\n0\r\ngrpc-status: 0\r\nContent-Length: 9\r\ngrpc-message: ok\r\n\r\n";
  size_t consumed = scanner.feed(
      wire, [](void* ctx, std::string_view d) { static_cast<Sinks*>(ctx)->data.append(d); }, &sinks,
      [](void* ctx, std::string_view line) { static_cast<Sinks*>(ctx)->trailers.append(line).append("|"); });
  EXPECT_TRUE(scanner.done());
  EXPECT_EQ(consumed, wire.size());
  EXPECT_EQ(sinks.data, "abc");
  EXPECT_EQ(sinks.trailers, "grpc-status: 0|grpc-message: ok|");
}

std::string forward_all(ChunkedBodyScanner& scanner, std::string_view input, size_t room) {
  std::string out;
  std::string window(room, '\0');
  while (!input.empty() && !scanner.done() && !scanner.failed()) {
    auto moved = scanner.forward(input, window);
    out.append(window.data(), moved.written);
    input.remove_prefix(moved.consumed);
    if (moved.consumed == 0) break;
  }
  return out;
}

TEST(ChunkedBody, ForwardingDropsFramingAndProxyTrailersAndKeepsOthers) {
  ChunkedBodyScanner scanner;
  std::string body = "5;ext=1\r\nhello\r\n0\r\nContent-Length: 47\r\nx-checksum: abc\r\nHost: evil\r\n"
                     "Transfer-Encoding: chunked\r\nserver-timing: db;dur=5\r\n\r\n";
  std::string out = forward_all(scanner, body, 4096);
  EXPECT_TRUE(scanner.done());
  EXPECT_EQ(out, "5;ext=1\r\nhello\r\n0\r\nx-checksum: abc\r\nserver-timing: db;dur=5\r\n\r\n");
  EXPECT_EQ(scanner.trailers_dropped(), 3u);
}

TEST(ChunkedBody, ForwardingOneByteOfRoomAtATimeWritesTheSame) {
  std::string body = "3\r\nabc\r\n0\r\nx-kept: 1\r\ncontent-length: 9\r\n\r\n";
  ChunkedBodyScanner whole, bytewise;
  std::string expected = forward_all(whole, body, 4096);
  std::string out;
  std::string_view input = body;
  std::string window(64, '\0');
  while (!input.empty() && !bytewise.done()) {   // one input byte per call, as a slow client sends
    auto moved = bytewise.forward(input.substr(0, 1), window);
    out.append(window.data(), moved.written);
    input.remove_prefix(moved.consumed);
    ASSERT_EQ(moved.consumed, 1u);
  }
  EXPECT_EQ(out, expected);
  EXPECT_EQ(out, "3\r\nabc\r\n0\r\nx-kept: 1\r\n\r\n");
}

TEST(ChunkedBody, ForwardingWaitsForRoomForAKeptTrailerLine) {
  ChunkedBodyScanner scanner;
  std::string body = "0\r\nx-kept: 12345\r\n\r\n";
  std::string window(8, '\0');
  auto first = scanner.forward(body, window);
  EXPECT_EQ(first.written, 3u);                          // "0\r\n"; the 15-byte trailer line does not fit in 5
  EXPECT_EQ(first.consumed, body.find("\n", 5));          // stopped before the trailer's LF
  std::string room(64, '\0');
  auto rest = scanner.forward(std::string_view(body).substr(first.consumed), room);
  EXPECT_EQ(std::string(room.data(), rest.written), "x-kept: 12345\r\n\r\n");
  EXPECT_TRUE(scanner.done());
}

class RefusedChunkTest : public ::testing::TestWithParam<std::pair<const char*, std::string>> {};

TEST_P(RefusedChunkTest, FailsTheBody) {
  ChunkedBodyScanner scanner;
  scanner.feed(GetParam().second);
  EXPECT_TRUE(scanner.failed()) << GetParam().first;
}

INSTANTIATE_TEST_SUITE_P(
    Rfc9112, RefusedChunkTest,
    ::testing::Values(std::pair<const char*, std::string>{"non_hex_size", "g\r\n"},
                      std::pair<const char*, std::string>{"empty_size", "\r\n"},
                      std::pair<const char*, std::string>{"negative_size", "-1\r\n"},
                      std::pair<const char*, std::string>{"size_with_leading_space", " 5\r\nhello\r\n"},
                      std::pair<const char*, std::string>{"overflowing_size", "10000000000000000\r\n"},
                      std::pair<const char*, std::string>{"bare_lf_after_size", "5\nhello\r\n"},
                      std::pair<const char*, std::string>{"bare_cr_after_size", "5\rhello\r\n"},
                      std::pair<const char*, std::string>{"extension_without_name", "5;\r\nhello\r\n"},
                      std::pair<const char*, std::string>{"extension_garbage", "5 x\r\nhello\r\n"},
                      std::pair<const char*, std::string>{"unterminated_quoted_ext", "5;a=\"b\r\nhello\r\n"},
                      std::pair<const char*, std::string>{"data_longer_than_size", "5\r\nhello!\r\n"},
                      std::pair<const char*, std::string>{"malformed_trailer", "0\r\nno colon\r\n\r\n"}));

TEST(Upgrade, AWebSocketUpgradeIsAnHttp11GetWithBothFields) {
  auto upgrade = [](const std::string& raw) {
    RequestHead head;
    EXPECT_EQ(parse_request_head(raw, Limits{}, head), ParseResult::Complete) << raw;
    return is_websocket_upgrade(head);
  };
  EXPECT_TRUE(upgrade("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"));
  EXPECT_TRUE(upgrade("GET /ws HTTP/1.1\r\nHost: a\r\nconnection: upgrade\r\nupgrade: WebSocket\r\n\r\n"));
  EXPECT_FALSE(upgrade("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"));   // not in Connection
  EXPECT_FALSE(upgrade("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"));
  EXPECT_FALSE(upgrade("POST /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                       "Content-Length: 2\r\n\r\n"));
  EXPECT_FALSE(upgrade("GET /ws HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
}

TEST(Upgrade, OnlyA101WithBothFieldsAcceptsIt) {
  auto accepts = [](const std::string& raw) {
    ResponseHead head;
    EXPECT_EQ(parse_response_head(raw, "GET", Limits{}, head), ParseResult::Complete) << raw;
    return accepts_websocket_upgrade(head);
  };
  EXPECT_TRUE(accepts("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
  EXPECT_FALSE(accepts("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"));
  EXPECT_FALSE(accepts("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"));
  EXPECT_FALSE(accepts("HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n"));
}

TEST(Upgrade, ListsTokenComparesWholeElementsIgnoringCase) {
  EXPECT_TRUE(lists_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(lists_token(" upgrade ", "upgrade"));
  EXPECT_FALSE(lists_token("upgraded, x-upgrade", "upgrade"));
  EXPECT_FALSE(lists_token("", "upgrade"));
}

}  // namespace
}  // namespace sluice::http

// Field names compare case-insensitively in ASCII letters only: punctuation
// that differs from a letter by the case bit ('@'/'`', '['/'{') is unequal.
TEST(FieldNames, CompareCaseInsensitivelyInLettersOnly) {
  EXPECT_TRUE(sluice::http::iequals("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(sluice::http::iequals("", ""));
  EXPECT_FALSE(sluice::http::iequals("content-length", "content-lengtH "));
  EXPECT_FALSE(sluice::http::iequals("x@", "x`"));
  EXPECT_FALSE(sluice::http::iequals("x[", "x{"));
  EXPECT_FALSE(sluice::http::iequals("x^", "x~"));
  EXPECT_FALSE(sluice::http::iequals("te", "tf"));
}
