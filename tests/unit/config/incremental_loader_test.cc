// IncrementalLoader: the agent's reload path parses only files whose bytes
// changed, and its result is what a full load of the same files gives.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/compiler.h"
#include "config/loader.h"
#include "config/snapshot_json.h"
#include "model/snapshot.h"

namespace sluice::config {
namespace {

namespace fs = std::filesystem;

class IncrementalLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/slc-incload.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const fs::path examples = fs::path(std::getenv("SLUICE_SOURCE_ROOT") ? std::getenv("SLUICE_SOURCE_ROOT") : ".") /
                              "docs/examples/productpage";
    for (const auto& entry : fs::directory_iterator(examples)) fs::copy_file(entry.path(), dir_ / entry.path().filename());
  }
  void TearDown() override { fs::remove_all(dir_); }

  void replace_in(const std::string& file, const std::string& from, const std::string& to) {
    std::ifstream in(dir_ / file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    std::ofstream(dir_ / file, std::ios::trunc) << text;
  }

  // The same files compiled by a full load_paths, as JSON (everything the snapshot holds).
  std::string full_compile_json() {
    auto r = compile_paths({dir_.string()}, 1);
    return r.ok() ? snapshot_json_text(*r.snapshot) : "errors";
  }
  std::string incremental_compile_json() {
    auto r = compile_paths(loader_, {dir_.string()}, 1);
    return r.ok() ? snapshot_json_text(*r.snapshot) : "errors";
  }
  uint32_t v1_weight(const CompileResult& r) {
    const auto& routes = r.snapshot->find_service("productpage")->routes_for(9081)->l4;
    return routes.at(0).weight;
  }

  fs::path dir_;
  IncrementalLoader loader_;
};

TEST_F(IncrementalLoaderTest, FirstLoadParsesEveryFileAndEqualsAFullLoad) {
  EXPECT_EQ(incremental_compile_json(), full_compile_json());
  EXPECT_EQ(loader_.last_counts().files, 3u);
  EXPECT_EQ(loader_.last_counts().parsed, 3u);
}

TEST_F(IncrementalLoaderTest, UnchangedFilesAreNotParsedAgain) {
  loader_.load({dir_.string()});
  EXPECT_EQ(incremental_compile_json(), full_compile_json());
  EXPECT_EQ(loader_.last_counts().parsed, 0u);
}

// "weight: 70" -> "weight: 50" keeps the size (and may keep the mtime tick):
// the bytes decide, not the file's metadata.
TEST_F(IncrementalLoaderTest, ASameSizeRewriteIsParsedAgainAndOnlyThatFile) {
  loader_.load({dir_.string()});
  replace_in("virtualservice-destinationrule.yaml", "weight: 70", "weight: 50");
  replace_in("virtualservice-destinationrule.yaml", "weight: 30", "weight: 50");
  auto r = compile_paths(loader_, {dir_.string()}, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(loader_.last_counts().parsed, 1u);
  EXPECT_EQ(v1_weight(r), 50u);
  EXPECT_EQ(incremental_compile_json(), full_compile_json());
}

TEST_F(IncrementalLoaderTest, ADeletedFileLeavesAndANewFileIsRead) {
  loader_.load({dir_.string()});
  fs::rename(dir_ / "workloadentries.yaml", dir_ / "workloads-renamed.yaml");
  auto r = compile_paths(loader_, {dir_.string()}, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(loader_.last_counts().files, 3u);
  EXPECT_EQ(loader_.last_counts().parsed, 1u);
  EXPECT_EQ(r.snapshot->find_service("productpage")->endpoints.size(), 4u);   // not 8: the old path is gone
  EXPECT_EQ(incremental_compile_json(), full_compile_json());
}

// An invalid file that did not change is not parsed again, and its errors
// still come back at the same file:line:col.
TEST_F(IncrementalLoaderTest, ACachedInvalidFileKeepsReportingItsExactLocation) {
  replace_in("virtualservice-destinationrule.yaml", "weight: 30", "wieght: 30");
  auto first = compile_paths(loader_, {dir_.string()}, 1);
  auto again = compile_paths(loader_, {dir_.string()}, 2);
  auto full = compile_paths({dir_.string()}, 3);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(loader_.last_counts().parsed, 0u);
  ASSERT_EQ(again.diagnostics.size(), full.diagnostics.size());
  for (size_t i = 0; i < full.diagnostics.size(); ++i)
    EXPECT_EQ(model::format_diagnostic(again.diagnostics[i]), model::format_diagnostic(full.diagnostics[i]));
  std::string errors;
  for (const auto& d : again.diagnostics)
    if (d.severity == model::Severity::Error) errors += model::format_diagnostic(d) + "\n";
  EXPECT_NE(errors.find("virtualservice-destinationrule.yaml:11:7: error"), std::string::npos) << errors;
}

}  // namespace
}  // namespace sluice::config
