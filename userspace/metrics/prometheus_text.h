// The one Prometheus text-format writer (exposition format 0.0.4) every
// plane renders through: the L7 proxy's request metrics, the XDP datapath's
// counters, the DPDK forwarder's and the agent's own. A family is declared
// once (name, type, help) and its samples follow; label values are escaped
// here and nowhere else.
//
//   PrometheusText out;
//   out.family("istio_tcp_connections_opened_total", MetricType::Counter, "Connections opened");
//   out.sample("istio_tcp_connections_opened_total", Labels().add("destination_service", "productpage"), 5);
//   std::string text = out.take();
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sluice::metrics {

enum class MetricType : uint8_t { Counter, Gauge, Histogram };

// Escapes a label value: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);

// An ordered label set, rendered once as name="escaped value" pairs. Order is
// kept as added (Istio dashboards do not care, but tests and diffs read better).
class Labels {
 public:
  Labels& add(std::string_view name, std::string_view value);
  Labels& add(std::string_view name, uint64_t value);
  const std::string& text() const { return text_; }
  bool empty() const { return text_.empty(); }

 private:
  std::string text_;
};

class PrometheusText {
 public:
  // # HELP and # TYPE lines. An empty help writes only # TYPE.
  void family(std::string_view name, MetricType type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, uint64_t value);
  void sample(std::string_view name, const Labels& labels, int64_t value);
  void sample(std::string_view name, const Labels& labels, double value);
  // A value already formatted ("+Inf", "912.4").
  void sample_text(std::string_view name, const Labels& labels, std::string_view value);
  // NAME_bucket{labels,le=...} (cumulative, +Inf last), NAME_sum, NAME_count.
  // counts[i] is the count of observations in (bounds[i-1], bounds[i]]
  // (not cumulative); observations above the last bound count only in +Inf.
  void histogram(std::string_view name, const Labels& labels, std::span<const double> bounds,
                 std::span<const uint64_t> counts, double sum, uint64_t count);

  void append(std::string_view text) { out_ += text; }
  std::string take() { return std::move(out_); }

 private:
  void line(std::string_view name, const Labels& labels, std::string_view value);
  std::string out_;
};

}  // namespace sluice::metrics
