#include "coordinator/core/engine_metrics.h"

#include <string_view>

namespace tern::coordinator {

namespace {

constexpr std::string_view kKindNames[5] = {"url", "prefix", "host", "tag", "all"};
constexpr std::string_view kModeNames[2] = {"hard", "soft"};

size_t kindIndex(const tern::v1::Selector& s) {
  switch (s.kind_case()) {
    case tern::v1::Selector::kUrl:
      return 0;
    case tern::v1::Selector::kPrefix:
      return 1;
    case tern::v1::Selector::kHost:
      return 2;
    case tern::v1::Selector::kTag:
      return 3;
    default:
      return 4;
  }
}

}  // namespace

EngineMetrics::EngineMetrics(metrics::Registry& registry)
    : purge_latency(registry.histogram(
          "tern_coordinator_purge_latency_seconds",
          "From a purge call arriving to the last edge applying it (or being fenced)")),
      rate_limited(registry.counter("tern_coordinator_purges_rate_limited_total",
                                    "Purge calls answered with 429 / RESOURCE_EXHAUSTED")),
      fenced(
          registry.counter("tern_coordinator_edge_fenced_total", "Times an edge's lease expired")),
      registry_(registry) {
  for (size_t k = 0; k < 5; ++k)
    for (size_t m = 0; m < 2; ++m)
      selectors_[k][m] = &registry.counter("tern_coordinator_purge_selectors_total",
                                           "Selectors logged, by kind and mode",
                                           "kind=\"" + std::string(kKindNames[k]) + "\",mode=\"" +
                                               std::string(kModeNames[m]) + "\"");
}

void EngineMetrics::logged(const tern::internal::v1::LogEntry& entry) {
  const size_t mode = entry.mode() == tern::v1::PURGE_MODE_SOFT ? 1 : 0;
  for (const auto& s : entry.selectors()) selectors_[kindIndex(s)][mode]->inc();
}

EdgeMetrics EngineMetrics::forEdge(const std::string& edge_id) {
  return {
      &registry_.gauge("tern_coordinator_edge_lag", "Purges logged but not yet applied by the edge",
                       metrics::label("edge", edge_id)),
      &registry_.histogram("tern_coordinator_edge_apply_seconds",
                           "From a purge entering the log to the edge's ack",
                           metrics::latencyBuckets(), metrics::label("edge", edge_id))};
}

}  // namespace tern::coordinator
