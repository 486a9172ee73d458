#include "common/metrics.h"

#include <gtest/gtest.h>

namespace tern::metrics {
namespace {

TEST(MetricsTest, RendersPrometheusText) {
  Registry r;
  r.counter("req_total", "Requests", "tier=\"memory\"").inc(3);
  r.counter("req_total", "Requests", "tier=\"disk\"").inc();
  r.gauge("open", "Open").set(-2);
  r.callbackGauge("ratio", "Ratio", [] { return 0.5; });
  auto& h = r.histogram("lat_seconds", "Latency", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string text = r.render();
  EXPECT_NE(text.find("# HELP req_total Requests\n# TYPE req_total counter\n"), std::string::npos);
  EXPECT_EQ(text.find("# HELP req_total", text.find("# HELP req_total") + 1), std::string::npos);
  EXPECT_NE(text.find("req_total{tier=\"memory\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("req_total{tier=\"disk\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("open -2\n"), std::string::npos);
  EXPECT_NE(text.find("ratio 0.5\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.10000000000000001\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 3\n"), std::string::npos);
  EXPECT_EQ(h.quantile(0.5), 1);
  EXPECT_EQ(&r.counter("req_total", "Requests", "tier=\"memory\""),
            &r.counter("req_total", "x", "tier=\"memory\""));
}

// Label values that come from clients cannot break the exposition format.
TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(label("edge", "e1"), "edge=\"e1\"");
  EXPECT_EQ(label("edge", "a\"b\\c\nd"), "edge=\"a\\\"b\\\\c\\nd\"");
  Registry r;
  r.gauge("lag", "x", label("edge", "x\"} 1\nfake_metric 2")).set(3);
  const std::string text = r.render();
  EXPECT_EQ(text.find("\nfake_metric"), std::string::npos) << text;
  EXPECT_NE(text.find("lag{edge=\"x\\\"} 1\\nfake_metric 2\"} 3"), std::string::npos) << text;
}

}  // namespace
}  // namespace tern::metrics
