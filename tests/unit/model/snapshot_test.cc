#include "model/snapshot.h"

#include <gtest/gtest.h>

namespace sluice::model {
namespace {

TEST(IpAddress, ParsesAndFormatsBothFamilies) {
  auto v4 = IpAddress::parse("10.96.0.10");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->to_string(), "10.96.0.10");
  auto v6 = IpAddress::parse("fd00::a");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, IpAddress::kV6);
  EXPECT_EQ(v6->to_string(), "fd00::a");
  EXPECT_FALSE(IpAddress::parse("10.96.0"));
  EXPECT_FALSE(IpAddress::parse("productpage"));
}

TEST(Endpoint, PortForPrefersNamedMappingThenTargetPort) {
  Endpoint e;
  e.ports = {{"http", 8080}};
  EXPECT_EQ(e.port_for({9080, Protocol::HTTP, "http", 0}), 8080u);
  EXPECT_EQ(e.port_for({9090, Protocol::TCP, "tcp", 7070}), 7070u);
  EXPECT_EQ(e.port_for({9091, Protocol::TCP, "other", 0}), 9091u);
}

TEST(StringMatch, ExactAndPrefixHonourIgnoreCase) {
  StringMatch exact{StringMatch::Kind::Exact, "/Login", nullptr};
  EXPECT_TRUE(exact.matches("/Login"));
  EXPECT_FALSE(exact.matches("/login"));
  EXPECT_TRUE(exact.matches("/login", true));
  StringMatch prefix{StringMatch::Kind::Prefix, "/api/", nullptr};
  EXPECT_TRUE(prefix.matches("/api/v1"));
  EXPECT_FALSE(prefix.matches("/API/v1"));
  EXPECT_TRUE(prefix.matches("/API/v1", true));
  EXPECT_FALSE(prefix.matches("/ap"));
}

TEST(Diagnostic, FormatsFileLineColumn) {
  Diagnostic d{Severity::Error, {"vs.yaml", 12, 7}, "unknown subset \"v3\""};
  EXPECT_EQ(format_diagnostic(d), "vs.yaml:12:7: error: unknown subset \"v3\"");
}

}  // namespace
}  // namespace sluice::model
