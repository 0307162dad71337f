// What the config reader accepts from the file system and from YAML before
// decoding: special files, symlink loops, dangling links, sizes, alias bombs.
// Each refusal is a diagnostic naming the place; nothing throws.
#include "config/input_limits.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/loader.h"

namespace sluice::config {
namespace {

namespace fs = std::filesystem;

class InputLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/slc-inlimits.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ / "ok.yaml") << "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string errors(const std::vector<std::string>& paths, const InputLimits& limits = {}) {
    std::vector<Diagnostic> diagnostics;
    read_config_sources(paths, diagnostics, limits);
    std::string out;
    for (const auto& d : diagnostics) out += model::format_diagnostic(d) + "\n";
    return out;
  }

  fs::path dir_;
};

TEST_F(InputLimitsTest, SymlinkLoopIsAnErrorNamingItNotAnException) {
  fs::create_symlink("loop", dir_ / "loop");
  fs::create_symlink("b.yaml", dir_ / "a.yaml");
  fs::create_symlink("a.yaml", dir_ / "b.yaml");
  std::string out;
  ASSERT_NO_THROW(out = errors({dir_.string()}));
  EXPECT_NE(out.find((dir_ / "loop").string() + ": error: symlink loop"), std::string::npos) << out;
  EXPECT_NE(out.find((dir_ / "a.yaml").string() + ": error: symlink loop"), std::string::npos) << out;
}

TEST_F(InputLimitsTest, DirectorySymlinkCycleIsWalkedOnce) {
  fs::create_directory(dir_ / "sub");
  std::ofstream(dir_ / "sub" / "x.yaml") << "a: 1\n";
  fs::create_directory_symlink("..", dir_ / "sub" / "up");
  std::vector<Diagnostic> diagnostics;
  auto files = list_config_files(dir_.string(), InputLimits{}, diagnostics);
  EXPECT_EQ(files.size(), 2u);
  EXPECT_TRUE(diagnostics.empty());
}

TEST_F(InputLimitsTest, DanglingYamlSymlinkIsAnErrorOtherDanglingLinksAreNot) {
  fs::create_symlink("gone.yaml", dir_ / "routes.yaml");
  fs::create_symlink("gone", dir_ / "notes");
  const std::string out = errors({dir_.string()});
  EXPECT_NE(out.find("routes.yaml: error: dangling symlink"), std::string::npos) << out;
  EXPECT_EQ(out.find("notes"), std::string::npos) << out;
}

TEST_F(InputLimitsTest, FifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo((dir_ / "pipe.yaml").c_str(), 0600), 0);
  // Also named directly, as `sluicectl validate pipe.yaml` would.
  const std::string out = errors({dir_.string(), (dir_ / "pipe.yaml").string()});
  EXPECT_NE(out.find("pipe.yaml: error: not a regular file (a FIFO)"), std::string::npos) << out;
}

TEST_F(InputLimitsTest, UnreadableFileNamesTheReason) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads a file whatever its mode";
  std::ofstream(dir_ / "secret.yaml") << "a: 1\n";
  fs::permissions(dir_ / "secret.yaml", fs::perms::none);
  const std::string out = errors({dir_.string()});
  EXPECT_NE(out.find("secret.yaml: error: cannot read file: Permission denied"), std::string::npos) << out;
}

TEST_F(InputLimitsTest, FileLargerThanTheLimitIsRefusedUnread) {
  std::ofstream(dir_ / "big.yaml") << std::string(2048, '#') << "\n";
  InputLimits limits;
  limits.max_file_bytes = 1024;
  const std::string out = errors({dir_.string()}, limits);
  EXPECT_NE(out.find("big.yaml: error: file is 2049 bytes, larger than the 1024 bytes limit on one config file"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("ok.yaml"), std::string::npos) << out;
}

TEST_F(InputLimitsTest, TotalSizeLimitCountsEveryFile) {
  std::ofstream(dir_ / "a.yaml") << std::string(600, '#') << "\n";
  std::ofstream(dir_ / "b.yaml") << std::string(600, '#') << "\n";
  InputLimits limits;
  limits.max_total_bytes = 1000;
  const std::string out = errors({dir_.string()}, limits);
  EXPECT_NE(out.find("b.yaml: error: the config files together are larger than the 1000 bytes limit"),
            std::string::npos)
      << out;
}

TEST_F(InputLimitsTest, DirectoryWithTooManyEntriesIsRefused) {
  for (int i = 0; i < 20; ++i) std::ofstream(dir_ / ("n" + std::to_string(i) + ".txt")) << "";
  InputLimits limits;
  limits.max_directory_entries = 10;
  const std::string out = errors({dir_.string()}, limits);
  EXPECT_NE(out.find("more than 10 directory entries"), std::string::npos) << out;
}

// "Billion laughs": nine levels of nine aliases each, 9^9 nodes from a few
// hundred bytes. Refused at the alias that passes the limit, with its place,
// before yaml-cpp builds anything; the address space cap makes an expansion
// fail the test instead of the machine.
TEST_F(InputLimitsTest, AliasBombIsRefusedAtItsLineAndColumn) {
  std::string text = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: x\n  labels:\n";
  text += "    a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    const char p = static_cast<char>(c - 1);
    text += std::string("    ") + c + ": &" + c + " [";
    for (int k = 0; k < 9; ++k) text += std::string(k ? "," : "") + "*" + p;
    text += "]\n";
  }
  rlimit old{};
  getrlimit(RLIMIT_AS, &old);
  rlimit capped{2ull << 30, old.rlim_max};
  setrlimit(RLIMIT_AS, &capped);
  ParsedConfig parsed = parse_sources({{"bomb.yaml", "---\n" + text}});
  setrlimit(RLIMIT_AS, &old);
  ASSERT_FALSE(parsed.diagnostics.empty());
  const auto& d = parsed.diagnostics.front();
  EXPECT_NE(d.message.find("aliases expand this document past 1000000 nodes"), std::string::npos) << d.message;
  EXPECT_EQ(d.where.file, "bomb.yaml");
  EXPECT_EQ(d.where.line, 13);   // "    g: &g [*f,...": its first alias passes a million nodes
  EXPECT_GT(d.where.column, 10);
}

TEST_F(InputLimitsTest, ModestAliasesStillLoad) {
  const std::string text =
      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n"
      "  subsets:\n  - {name: v1, labels: &l {app: r}}\n  - {name: v2, labels: *l}\n";
  ParsedConfig parsed = parse_sources({{"ok.yaml", text}});
  EXPECT_EQ(parsed.destination_rules.size(), 1u);
  for (const auto& d : parsed.diagnostics) EXPECT_EQ(d.message.find("alias"), std::string::npos) << d.message;
}

}  // namespace
}  // namespace sluice::config
