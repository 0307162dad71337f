// gRPC on the wire as the proxy reads and writes it: which requests are
// gRPC, grpc-timeout, grpc-status, grpc-message, and the status names and
// HTTP mapping of local replies.
#include "http/grpc.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "model/grpc_status.h"

namespace sluice::http {
namespace {

TEST(GrpcContentType, IsApplicationGrpcAloneOrWithASuffix) {
  EXPECT_TRUE(is_grpc_content_type("application/grpc"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+proto"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc;charset=utf-8"));
  EXPECT_TRUE(is_grpc_content_type("Application/GRPC"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web+proto"));
  EXPECT_FALSE(is_grpc_content_type("application/grpcx"));
  EXPECT_FALSE(is_grpc_content_type("application/json"));
  EXPECT_FALSE(is_grpc_content_type(""));
}

TEST(GrpcTimeout, ReadsEveryUnit) {
  EXPECT_EQ(parse_grpc_timeout("2H"), 2 * 3'600'000'000'000LL);
  EXPECT_EQ(parse_grpc_timeout("3M"), 3 * 60'000'000'000LL);
  EXPECT_EQ(parse_grpc_timeout("4S"), 4'000'000'000LL);
  EXPECT_EQ(parse_grpc_timeout("250m"), 250'000'000LL);
  EXPECT_EQ(parse_grpc_timeout("999u"), 999'000LL);
  EXPECT_EQ(parse_grpc_timeout("12345678n"), 12'345'678LL);
  EXPECT_EQ(parse_grpc_timeout("0m"), 0);
  EXPECT_EQ(parse_grpc_timeout("00000007S"), 7'000'000'000LL);   // leading zeros count as digits
}

TEST(GrpcTimeout, RefusesMalformedValues) {
  for (const char* bad : {"", "m", "5", "5s", "5ms", "-5m", "+5m", " 5m", "5m ", "5 m", "1.5S", "123456789m",
                          "0x10S", "5h", "5U", "5N", "\xff" "5m"}) {
    EXPECT_EQ(parse_grpc_timeout(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(GrpcTimeout, EightDigitsOfHoursSaturateInsteadOfOverflowing) {
  EXPECT_EQ(parse_grpc_timeout("99999999H"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse_grpc_timeout("99999999M"), 99'999'999LL * 60'000'000'000LL);   // fits
}

TEST(GrpcStatusField, ReadsDigitsThatFitUint32) {
  EXPECT_EQ(parse_grpc_status("0"), 0u);
  EXPECT_EQ(parse_grpc_status("14"), 14u);
  EXPECT_EQ(parse_grpc_status("4294967295"), 4294967295u);
  EXPECT_EQ(parse_grpc_status("4294967296"), std::nullopt);
  EXPECT_EQ(parse_grpc_status(""), std::nullopt);
  EXPECT_EQ(parse_grpc_status("-1"), std::nullopt);
  EXPECT_EQ(parse_grpc_status("14 "), std::nullopt);
  EXPECT_EQ(parse_grpc_status("UNAVAILABLE"), std::nullopt);
}

TEST(GrpcMessage, PercentEncodesPercentAndBytesOutsidePrintableAscii) {
  char out[64];
  size_t n = encode_grpc_message("50% done\r\n\xc3\xa9", out);
  EXPECT_EQ(std::string(out, n), "50%25 done%0D%0A%C3%A9");
  char small[4];
  EXPECT_EQ(encode_grpc_message("abc%", small), 0u);   // does not fit: left out, not cut
}

TEST(GrpcStatusNames, RoundTripAndRefuseOtherSpellings) {
  for (uint32_t code = 0; code <= model::kGrpcStatusMax; ++code) {
    auto name = model::grpc_status_name(code);
    ASSERT_FALSE(name.empty());
    EXPECT_EQ(model::grpc_status_from_name(name), static_cast<model::GrpcStatus>(code));
  }
  EXPECT_EQ(model::grpc_status_from_name("UNAVAILABLE"), model::GrpcStatus::Unavailable);
  EXPECT_EQ(model::grpc_status_from_name("unavailable"), std::nullopt);
  EXPECT_EQ(model::grpc_status_from_name("14"), std::nullopt);
  EXPECT_EQ(model::grpc_status_from_name("CANCELED"), std::nullopt);   // gRPC spells it CANCELLED
  EXPECT_EQ(model::grpc_status_name(17), "");
}

TEST(GrpcStatusForHttp, FollowsEnvoysLocalReplyMapping) {
  using model::GrpcStatus;
  EXPECT_EQ(model::grpc_status_for_http(400), GrpcStatus::Internal);
  EXPECT_EQ(model::grpc_status_for_http(401), GrpcStatus::Unauthenticated);
  EXPECT_EQ(model::grpc_status_for_http(403), GrpcStatus::PermissionDenied);
  EXPECT_EQ(model::grpc_status_for_http(404), GrpcStatus::Unimplemented);
  for (unsigned s : {429u, 502u, 503u, 504u}) EXPECT_EQ(model::grpc_status_for_http(s), GrpcStatus::Unavailable) << s;
  for (unsigned s : {200u, 408u, 431u, 500u}) EXPECT_EQ(model::grpc_status_for_http(s), GrpcStatus::Unknown) << s;
}

}  // namespace
}  // namespace sluice::http
