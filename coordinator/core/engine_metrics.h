#pragma once
// The purge engine's own metrics (the log's and the edges' gauges that read
// engine state are registered by the Coordinator itself).
//
// Thread-safety: the metrics are thread-safe; forEdge() must not be called
// with the engine's lock held (the registry may call back into the engine).

#include <string>

#include "common/metrics.h"
#include "coordinator/log/log_records.h"

namespace tern::coordinator {

struct EdgeMetrics {
  metrics::Gauge* lag = nullptr;        // purges logged, not yet applied
  metrics::Histogram* apply = nullptr;  // log to the edge's ack
};

class EngineMetrics {
 public:
  explicit EngineMetrics(metrics::Registry& registry);

  // A purge entered the engine's tracking: counts its selectors.
  void logged(const LogEntry& entry);
  EdgeMetrics forEdge(const std::string& edge_id);

  metrics::Histogram& purge_latency;
  metrics::Histogram& commit_latency;
  metrics::Counter& rate_limited;
  metrics::Counter& fenced;

 private:
  metrics::Registry& registry_;
  metrics::Counter* selectors_[5][2] = {};  // [kind][mode]
};

}  // namespace tern::coordinator
