// Durations as Istio writes them: Go/protobuf syntax ("7s", "100ms", "1.5s",
// "1h30m", "250us"), never negative.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "model/snapshot.h"

namespace sluice::config {

// nullopt when `text` is not a valid non-negative duration.
std::optional<model::Duration> parse_duration(std::string_view text);

// The shortest exact form that parse_duration reads back: "7s", "100ms", "1.5s", "0s".
std::string format_duration(model::Duration d);

// A wall-clock instant as the status endpoints write it: "2026-12-05T07:44:16Z" (UTC, seconds).
std::string format_utc_time(std::chrono::system_clock::time_point t);

}  // namespace sluice::config
