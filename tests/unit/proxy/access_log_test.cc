// The access log's two layouts (Istio's default text and JSON) and the file
// sink's append and reopen (log rotation).
#include "proxy/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace sluice::proxy {
namespace {

AccessLogRecord full_record() {
  AccessLogRecord r;
  r.start_unix_ns = 1'795'000'000'123'000'000;   // 2026-11-18T11:06:40.123Z
  r.method = "POST";
  r.path = "/reviews/1?x=y";
  r.protocol = "HTTP/1.1";
  r.response_code = 201;
  r.response_flags = "-";
  r.response_code_details = "via_upstream";
  r.bytes_received = 17;
  r.bytes_sent = 612;
  r.duration_ms = 4;
  r.upstream_service_time_ms = 3;
  r.x_forwarded_for = "10.0.0.9";
  r.user_agent = "curl/7.88.1";
  r.request_id = "req-42";
  r.authority = "productpage:9080";
  r.upstream_host = "10.200.11.2:9080";
  r.upstream_cluster = "outbound|9080|v1|productpage";
  r.downstream_local_address = "10.96.0.10:9080";
  r.downstream_remote_address = "10.200.1.2:40000";
  r.route_name = "primary";
  return r;
}

TEST(AccessLogText, IstioDefaultLayout) {
  std::string line;
  append_access_log(line, full_record(), AccessLogFormat::Text);
  EXPECT_EQ(line,
            "[2026-11-18T11:06:40.123Z] \"POST /reviews/1?x=y HTTP/1.1\" 201 - via_upstream - \"-\" 17 612 4 3 "
            "\"10.0.0.9\" \"curl/7.88.1\" \"req-42\" \"productpage:9080\" \"10.200.11.2:9080\" "
            "outbound|9080|v1|productpage - 10.96.0.10:9080 10.200.1.2:40000 - primary\n");
}

TEST(AccessLogText, AbsentFieldsAreDashes) {
  AccessLogRecord r;
  r.start_unix_ns = 0;
  r.method = "GET";
  r.path = "/";
  r.protocol = "HTTP/1.1";
  r.response_code = 404;
  r.response_flags = "NR";
  std::string line;
  append_access_log(line, r, AccessLogFormat::Text);
  EXPECT_EQ(line,
            "[1970-01-01T00:00:00.000Z] \"GET / HTTP/1.1\" 404 NR - - \"-\" 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\" "
            "- - - - - -\n");
}

TEST(AccessLogText, ControlBytesCannotSplitTheLine) {
  AccessLogRecord r = full_record();
  r.user_agent = "evil\nagent\x1b[31m";
  std::string line;
  append_access_log(line, r, AccessLogFormat::Text);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_NE(line.find("\"evil?agent?[31m\""), std::string::npos) << line;
}

TEST(AccessLogJson, IstioKeysAndValues) {
  std::string line;
  append_access_log(line, full_record(), AccessLogFormat::Json);
  ASSERT_EQ(line.back(), '\n');
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["start_time"], "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/reviews/1?x=y");
  EXPECT_EQ(j["protocol"], "HTTP/1.1");
  EXPECT_EQ(j["response_code"], 201);
  EXPECT_EQ(j["response_flags"], "-");
  EXPECT_EQ(j["response_code_details"], "via_upstream");
  EXPECT_EQ(j["bytes_received"], 17);
  EXPECT_EQ(j["bytes_sent"], 612);
  EXPECT_EQ(j["duration"], 4);
  EXPECT_EQ(j["upstream_service_time"], 3);
  EXPECT_EQ(j["x_forwarded_for"], "10.0.0.9");
  EXPECT_EQ(j["user_agent"], "curl/7.88.1");
  EXPECT_EQ(j["request_id"], "req-42");
  EXPECT_EQ(j["authority"], "productpage:9080");
  EXPECT_EQ(j["upstream_host"], "10.200.11.2:9080");
  EXPECT_EQ(j["upstream_cluster"], "outbound|9080|v1|productpage");
  EXPECT_EQ(j["downstream_local_address"], "10.96.0.10:9080");
  EXPECT_EQ(j["downstream_remote_address"], "10.200.1.2:40000");
  EXPECT_EQ(j["route_name"], "primary");
  EXPECT_TRUE(j["upstream_local_address"].is_null());
  EXPECT_TRUE(j["requested_server_name"].is_null());
}

TEST(AccessLogJson, AbsentFieldsAreNullAndStringsAreEscaped) {
  AccessLogRecord r;
  r.method = "GET";
  r.path = "/a\"b\\c";
  r.user_agent = std::string_view("x\ny\x01", 4);
  std::string line;
  append_access_log(line, r, AccessLogFormat::Json);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["path"], "/a\"b\\c");
  EXPECT_EQ(j["user_agent"], std::string("x\ny\x01", 4));
  EXPECT_TRUE(j["duration"].is_null());
  EXPECT_TRUE(j["upstream_host"].is_null());
  EXPECT_TRUE(j["request_id"].is_null());
  EXPECT_EQ(j["response_code"], 0);
}

TEST(AccessLogFormatName, RejectsUnknownNamingTheValue) {
  EXPECT_EQ(parse_access_log_format("json"), AccessLogFormat::Json);
  EXPECT_EQ(parse_access_log_format("text"), AccessLogFormat::Text);
  try {
    parse_access_log_format("xml");
    FAIL() << "accepted 'xml'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'xml'"), std::string::npos) << e.what();
  }
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(AccessLogFile, AppendsAndReopensAfterRotation) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-access-log-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "access.log";
  {
    std::ofstream(path) << "kept\n";   // an existing file is appended to, not truncated
  }
  AccessLogFile log(path.string());
  log.write("one\n");
  std::filesystem::rename(path, dir / "access.log.1");
  log.write("two\n");   // still the rotated file until reopen
  log.reopen();
  log.write("three\n");
  EXPECT_EQ(read_file(dir / "access.log.1"), "kept\none\ntwo\n");
  EXPECT_EQ(read_file(path), "three\n");
  EXPECT_EQ(log.write_errors(), 0u);
  std::filesystem::remove_all(dir);
}

TEST(AccessLogFile, UnopenablePathIsAnErrorNamingIt) {
  try {
    AccessLogFile log("/nonexistent-dir-sluice/access.log");
    FAIL() << "opened a path in a missing directory";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-sluice/access.log"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice::proxy
