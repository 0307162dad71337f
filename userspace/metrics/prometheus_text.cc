#include "metrics/prometheus_text.h"

#include <fmt/format.h>

namespace sluice::metrics {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

Labels& Labels::add(std::string_view name, std::string_view value) {
  if (!text_.empty()) text_ += ',';
  text_ += name;
  text_ += "=\"";
  text_ += escape_label_value(value);
  text_ += '"';
  return *this;
}

Labels& Labels::add(std::string_view name, uint64_t value) { return add(name, std::to_string(value)); }

void PrometheusText::family(std::string_view name, MetricType type, std::string_view help) {
  static constexpr std::string_view kTypes[] = {"counter", "gauge", "histogram"};
  if (!help.empty()) out_ += fmt::format("# HELP {} {}\n", name, help);
  out_ += fmt::format("# TYPE {} {}\n", name, kTypes[static_cast<size_t>(type)]);
}

void PrometheusText::line(std::string_view name, const Labels& labels, std::string_view value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    out_ += labels.text();
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void PrometheusText::sample(std::string_view name, const Labels& labels, uint64_t value) {
  line(name, labels, std::to_string(value));
}

void PrometheusText::sample(std::string_view name, const Labels& labels, int64_t value) {
  line(name, labels, std::to_string(value));
}

void PrometheusText::sample(std::string_view name, const Labels& labels, double value) {
  line(name, labels, fmt::format("{}", value));
}

void PrometheusText::sample_text(std::string_view name, const Labels& labels, std::string_view value) {
  line(name, labels, value);
}

void PrometheusText::histogram(std::string_view name, const Labels& labels, std::span<const double> bounds,
                               std::span<const uint64_t> counts, double sum, uint64_t count) {
  const std::string bucket = fmt::format("{}_bucket", name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    Labels with_le = labels;
    with_le.add("le", fmt::format("{}", bounds[i]));
    sample(bucket, with_le, cumulative);
  }
  Labels inf = labels;
  inf.add("le", "+Inf");
  sample(bucket, inf, count);
  sample(fmt::format("{}_sum", name), labels, sum);
  sample(fmt::format("{}_count", name), labels, count);
}

}  // namespace sluice::metrics
