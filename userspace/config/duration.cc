#include "config/duration.h"

#include <cstdint>
#include <ctime>
#include <limits>

namespace sluice::config {

namespace {

// Nanoseconds per unit; the longest suffixes first so "ms" is not read as "m".
struct Unit {
  std::string_view suffix;
  int64_t nanos;
};
constexpr Unit kUnits[] = {
    {"ns", 1},          {"us", 1000},          {"\xC2\xB5s", 1000},  // U+00B5 micro sign
    {"\xCE\xBCs", 1000},  // U+03BC Greek mu
    {"ms", 1000000},    {"s", 1000000000},     {"m", 60LL * 1000000000},
    {"h", 3600LL * 1000000000},
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<model::Duration> parse_duration(std::string_view text) {
  if (text == "0") return model::Duration{0};
  if (text.empty() || text.size() > 64) return std::nullopt;
  if (text.front() == '+') text.remove_prefix(1);
  long double total = 0;
  while (!text.empty()) {
    // One "<number><unit>" group: digits, optional fraction, unit.
    size_t i = 0;
    long double value = 0;
    bool any_digit = false;
    while (i < text.size() && is_digit(text[i])) {
      value = value * 10 + (text[i] - '0');
      any_digit = true;
      ++i;
    }
    if (i < text.size() && text[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < text.size() && is_digit(text[i])) {
        value += scale * (text[i] - '0');
        scale /= 10;
        any_digit = true;
        ++i;
      }
    }
    if (!any_digit) return std::nullopt;
    text.remove_prefix(i);
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (text.substr(0, u.suffix.size()) == u.suffix &&
          (u.suffix != "m" || text.substr(0, 2) != "ms")) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;
    text.remove_prefix(unit->suffix.size());
    total += value * static_cast<long double>(unit->nanos);
    if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  }
  return model::Duration{static_cast<int64_t>(total + 0.5L)};
}

std::string format_duration(model::Duration d) {
  const int64_t ns = d.count();
  if (ns == 0) return "0s";
  struct Step {
    int64_t nanos;
    const char* suffix;
  };
  // Whole units first; otherwise seconds with a fraction when exact to the millisecond.
  for (Step s : {Step{3600LL * 1000000000, "h"}, Step{60LL * 1000000000, "m"},
                 Step{1000000000, "s"}, Step{1000000, "ms"}, Step{1000, "us"}}) {
    if (ns % s.nanos == 0) {
      // Prefer "90s" over "1.5m": only use h/m when they are whole.
      return std::to_string(ns / s.nanos) + s.suffix;
    }
    if (s.nanos == 1000000000 && ns > 1000000000 && ns % 1000000 == 0) {
      std::string frac = std::to_string(ns % 1000000000 / 1000000);
      frac.insert(0, 3 - frac.size(), '0');
      while (frac.back() == '0') frac.pop_back();
      return std::to_string(ns / 1000000000) + "." + frac + "s";
    }
  }
  return std::to_string(ns) + "ns";
}

std::string format_utc_time(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace sluice::config
