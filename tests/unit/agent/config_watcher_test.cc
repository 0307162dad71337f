#include "agent/config_watcher.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/inotify.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace sluice::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/sluice-watch-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

// Waits (bounded) until the callback count stops changing for `quiet`.
int settle(const std::atomic<int>& calls, std::chrono::milliseconds quiet) {
  int last = -1;
  for (int i = 0; i < 100 && calls.load() != last; ++i) {
    last = calls.load();
    std::this_thread::sleep_for(quiet);
  }
  return calls.load();
}

TEST(ConfigWatcher, EditorRenameSaveBurstIsOneReload) {
  TempDir dir;
  std::atomic<int> calls{0};
  ConfigWatcher w(dir.path, 100ms, [&] { ++calls; });
  w.start();
  // What vim/emacs do: write a temp file, rename it over the target, plus a swap file.
  for (int i = 0; i < 5; ++i) {
    std::ofstream(dir.path / ".vs.yaml.swp") << "x";
    std::ofstream(dir.path / "vs.yaml.tmp") << "kind: VirtualService #" << i;
    fs::rename(dir.path / "vs.yaml.tmp", dir.path / "vs.yaml");
  }
  EXPECT_EQ(settle(calls, 300ms), 1);
  w.stop();
}

TEST(ConfigWatcher, SeparateChangesAreSeparateReloads) {
  TempDir dir;
  std::atomic<int> calls{0};
  ConfigWatcher w(dir.path, 50ms, [&] { ++calls; });
  w.start();
  std::ofstream(dir.path / "a.yaml") << "a";
  settle(calls, 200ms);
  fs::remove(dir.path / "a.yaml");
  EXPECT_EQ(settle(calls, 200ms), 2);
  w.stop();
}

TEST(ConfigWatcher, SwapFilesAloneDoNotReload) {
  TempDir dir;
  std::atomic<int> calls{0};
  ConfigWatcher w(dir.path, 50ms, [&] { ++calls; });
  w.start();
  std::ofstream(dir.path / ".x.swp") << "x";
  std::ofstream(dir.path / "backup~") << "x";
  EXPECT_EQ(settle(calls, 200ms), 0);
  w.stop();
}

TEST(ConfigWatcher, FilesTheLoaderDoesNotReadDoNotReload) {
  TempDir dir;
  std::atomic<int> calls{0};
  ConfigWatcher w(dir.path, 50ms, [&] { ++calls; });
  w.start();
  std::ofstream(dir.path / "README.md") << "notes";
  std::ofstream(dir.path / "values.txt") << "{}";
  fs::rename(dir.path / "values.txt", dir.path / "values.old");
  EXPECT_EQ(settle(calls, 200ms), 0);
  std::ofstream(dir.path / "routes.yml") << "a: 1";
  EXPECT_EQ(settle(calls, 200ms), 1);
  std::ofstream(dir.path / "service.json") << "{}";   // JSON objects, as the Kubernetes API returns them
  EXPECT_EQ(settle(calls, 200ms), 2);
  w.stop();
}

TEST(ConfigWatcherEvents, WhatTheLoaderReads) {
  TempDir dir;
  fs::create_directory(dir.path / "team");
  fs::create_directory_symlink(dir.path / "team", dir.path / "linked");
  std::ofstream(dir.path / "Makefile") << "";
  EXPECT_TRUE(event_concerns_config(dir.path, "vs.yaml", IN_CLOSE_WRITE));
  EXPECT_TRUE(event_concerns_config(dir.path, "vs.yml", IN_DELETE));
  EXPECT_TRUE(event_concerns_config(dir.path, "svc.json", IN_CLOSE_WRITE));
  EXPECT_TRUE(event_concerns_config(dir.path, "..data", IN_MOVED_TO));   // a ConfigMap update
  EXPECT_TRUE(event_concerns_config(dir.path, "team", IN_CREATE | IN_ISDIR));
  EXPECT_TRUE(event_concerns_config(dir.path, "linked", IN_CREATE));     // a symlink to a directory
  EXPECT_TRUE(event_concerns_config(dir.path, "", IN_DELETE_SELF));
  EXPECT_FALSE(event_concerns_config(dir.path, ".vs.yaml.swp", IN_CLOSE_WRITE));
  EXPECT_FALSE(event_concerns_config(dir.path, "vs.yaml~", IN_CLOSE_WRITE));
  EXPECT_FALSE(event_concerns_config(dir.path, "README.md", IN_CLOSE_WRITE));
  EXPECT_FALSE(event_concerns_config(dir.path, "gone.txt", IN_DELETE));
  EXPECT_FALSE(event_concerns_config(dir.path, "Makefile", IN_CLOSE_WRITE));
}

TEST(ConfigWatcher, MissingDirectoryIsAnErrorNamingIt) {
  try {
    ConfigWatcher w("/nonexistent/sluice-config", 50ms, [] {});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/sluice-config"), std::string::npos);
  }
}

}  // namespace
}  // namespace sluice::agent
