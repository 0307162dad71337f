// Istio's pathNormalization options on request targets: what each one
// turns a path into, what it refuses, and that the query is never touched.
#include <gtest/gtest.h>

#include <string>

#include "http/message_head.h"
#include "http/path_normalisation.h"

namespace sluice::http {
namespace {

struct PathCase {
  const char* target;
  PathNormalisation mode;
  const char* expected;   // nullptr: refused
};

class PathNormalisationTest : public ::testing::TestWithParam<PathCase> {};

TEST_P(PathNormalisationTest, NormalisesAsIstioDoes) {
  const auto& c = GetParam();
  auto result = normalised(c.target, c.mode);
  if (c.expected == nullptr) {
    EXPECT_FALSE(result.has_value()) << c.target << " -> " << result.value_or("");
  } else {
    ASSERT_TRUE(result.has_value()) << c.target;
    EXPECT_EQ(*result, c.expected) << c.target << " (" << path_normalisation_name(c.mode) << ")";
  }
}

constexpr auto kNone = PathNormalisation::None;
constexpr auto kBase = PathNormalisation::Base;
constexpr auto kMerge = PathNormalisation::MergeSlashes;
constexpr auto kDecode = PathNormalisation::DecodeAndMergeSlashes;

INSTANTIATE_TEST_SUITE_P(
    Istio, PathNormalisationTest,
    ::testing::Values(
        // Dot segments (RFC 3986 5.2.4), also percent-encoded ones.
        PathCase{"/x/../admin", kBase, "/admin"}, PathCase{"/a/./b/../c", kBase, "/a/c"},
        PathCase{"/a/b/..", kBase, "/a/"}, PathCase{"/a/.", kBase, "/a/"}, PathCase{"/..", kBase, "/"},
        PathCase{"/../../admin", kBase, "/admin"},   // above the root stays at the root
        PathCase{"/%2e%2e/admin", kBase, "/admin"}, PathCase{"/x/%2E./admin", kBase, "/admin"},
        PathCase{"/a..b/c.", kBase, "/a..b/c."},     // dots inside a segment are data
        // Unreserved characters decoded, other escapes upper-cased, decoded once.
        PathCase{"/%61dmin", kBase, "/admin"}, PathCase{"/%7Euser/%2d%5F", kBase, "/~user/-_"},
        PathCase{"/a%2fb", kBase, "/a%2Fb"}, PathCase{"/a%3f?q=%61", kBase, "/a%3F?q=%61"},
        PathCase{"/%252e%252e/admin", kBase, "/%252e%252e/admin"},
        // Backslashes are slashes (Envoy's normalize_path, Istio's BASE).
        PathCase{"/x\\..\\admin", kBase, "/admin"}, PathCase{"\\admin", kBase, "\\admin"},
        // Slashes: kept under BASE, merged from MERGE_SLASHES on.
        PathCase{"//admin", kBase, "//admin"}, PathCase{"//admin", kMerge, "/admin"},
        PathCase{"/a//b///c/", kMerge, "/a/b/c/"}, PathCase{"/a/..//admin", kMerge, "/admin"},
        PathCase{"/x//..//admin", kMerge, "/admin"},   // merged first, as a merging backend reads it
        PathCase{"/x//..//admin", kBase, "/x//admin"},
        // Encoded separators: kept (upper-cased) unless DECODE_AND_MERGE_SLASHES.
        PathCase{"/x%2F..%2Fadmin", kMerge, "/x%2F..%2Fadmin"},
        PathCase{"/x%2F..%2Fadmin", kDecode, "/admin"}, PathCase{"/a%5cb", kDecode, "/a/b"},
        PathCase{"/a%2f%2fb", kDecode, "/a/b"},
        // The query is never normalised.
        PathCase{"/x/../a?p=/../%61&q=//", kMerge, "/a?p=/../%61&q=//"},
        // Refused: broken escapes and NUL.
        PathCase{"/a%4", kBase, nullptr}, PathCase{"/a%zz", kBase, nullptr}, PathCase{"/a%00b", kBase, nullptr},
        PathCase{"/a%", kDecode, nullptr},
        // NONE forwards as received; asterisk-form is left alone.
        PathCase{"/x/../%61dmin//%zz", kNone, "/x/../%61dmin//%zz"}, PathCase{"*", kBase, "*"},
        PathCase{"/", kBase, "/"}));

TEST(PathNormalisation, IstioNamesRoundTrip) {
  for (auto mode : {kNone, kBase, kMerge, kDecode}) {
    EXPECT_EQ(path_normalisation_from_name(path_normalisation_name(mode)), mode);
  }
  EXPECT_FALSE(path_normalisation_from_name("base").has_value());
}

TEST(PathNormalisation, TheRequestTargetIsRewrittenInsideTheReceivedBuffer) {
  std::string received = "GET /x/../%61dmin?q=/.. HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n";
  RequestHead head;
  ASSERT_EQ(parse_request_head(received, Limits{}, head), ParseResult::Complete);
  ASSERT_TRUE(normalise_request_target(head, received, PathNormalisation::Base));
  EXPECT_EQ(head.target, "/admin?q=/..");
  EXPECT_EQ(head.field("x-a"), "1");   // the fields after the request line are untouched
  EXPECT_EQ(head.authority, "a");
}

TEST(PathNormalisation, ABrokenEscapeIsA400) {
  std::string received = "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestHead head;
  ASSERT_EQ(parse_request_head(received, Limits{}, head), ParseResult::Complete);
  EXPECT_FALSE(normalise_request_target(head, received, PathNormalisation::Base));
  EXPECT_EQ(head.error.status, 400);
}

}  // namespace
}  // namespace sluice::http
