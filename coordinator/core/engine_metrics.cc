#include "coordinator/core/engine_metrics.h"

#include <string_view>

namespace tern::coordinator {

namespace {

constexpr size_t kKinds = static_cast<size_t>(storage::SelectorKind::kAll) + 1;

}  // namespace

EngineMetrics::EngineMetrics(metrics::Registry& registry)
    : purge_latency(registry.histogram(
          "tern_coordinator_purge_latency_seconds",
          "From a purge call arriving to the last edge applying it (or being fenced)")),
      commit_latency(registry.histogram(
          "tern_coordinator_log_commit_seconds",
          "From a purge call arriving to its entry being durable in the log (a synced write, or "
          "an etcd transaction committed by a quorum)")),
      rate_limited(registry.counter("tern_coordinator_purges_rate_limited_total",
                                    "Purge calls answered with 429 / RESOURCE_EXHAUSTED")),
      fenced(
          registry.counter("tern_coordinator_edge_fenced_total", "Times an edge's lease expired")),
      registry_(registry) {
  for (size_t k = 0; k < kKinds; ++k)
    for (size_t m = 0; m < 2; ++m)
      selectors_[k][m] = &registry.counter(
          "tern_coordinator_purge_selectors_total", "Selectors logged, by kind and mode",
          "kind=\"" +
              std::string(storage::selectorKindName(static_cast<storage::SelectorKind>(k))) +
              "\",mode=\"" +
              std::string(storage::purgeModeName(static_cast<storage::PurgeMode>(m))) + "\"");
}

void EngineMetrics::logged(const LogEntry& entry) {
  const auto mode = static_cast<size_t>(entry.mode);
  for (const auto& s : entry.selectors) selectors_[static_cast<size_t>(s.kind)][mode]->inc();
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
