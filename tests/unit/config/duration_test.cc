#include <gtest/gtest.h>

#include "config/duration.h"

namespace sluice::config {
namespace {

using namespace std::chrono;

TEST(Duration, ReadsGoAndProtobufSyntax) {
  EXPECT_EQ(parse_duration("7s"), seconds(7));
  EXPECT_EQ(parse_duration("100ms"), milliseconds(100));
  EXPECT_EQ(parse_duration("1.5s"), milliseconds(1500));
  EXPECT_EQ(parse_duration("2h"), hours(2));
  EXPECT_EQ(parse_duration("3m"), minutes(3));
  EXPECT_EQ(parse_duration("250us"), microseconds(250));
  EXPECT_EQ(parse_duration("250\xC2\xB5s"), microseconds(250));
  EXPECT_EQ(parse_duration("10ns"), nanoseconds(10));
  EXPECT_EQ(parse_duration("1h30m"), minutes(90));
  EXPECT_EQ(parse_duration("0.001s"), milliseconds(1));
  EXPECT_EQ(parse_duration(".5s"), milliseconds(500));
  EXPECT_EQ(parse_duration("0"), nanoseconds(0));
}

TEST(Duration, RejectsWhatIsNotADuration) {
  for (const char* bad : {"", "7", "7 s", "-1s", "s", "1.s5", "7sec", "1d", "1e3s", "99999999999h", "1h-5m"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
}

TEST(Duration, FormatsTheShortestExactFormThatReadsBack) {
  EXPECT_EQ(format_duration(seconds(7)), "7s");
  EXPECT_EQ(format_duration(milliseconds(100)), "100ms");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(format_duration(minutes(90)), "90m");
  EXPECT_EQ(format_duration(hours(1)), "1h");
  EXPECT_EQ(format_duration(nanoseconds(0)), "0s");
  EXPECT_EQ(format_duration(microseconds(3)), "3us");
  for (auto d : {nanoseconds(1), nanoseconds(1234567), nanoseconds(61'500'000'000)}) {
    EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
  }
}

}  // namespace
}  // namespace sluice::config
