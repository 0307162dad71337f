// The /ui page's files (userspace/agent/ui/), built into sluiced by
// ui/embed_assets.py at build time.
#pragma once

#include <span>
#include <string_view>

namespace sluice::agent {

struct UiAsset {
  std::string_view path;           // "/ui/app.js"
  std::string_view content_type;   // "text/javascript; charset=utf-8"
  std::string_view body;
};

std::span<const UiAsset> ui_assets();

}  // namespace sluice::agent
