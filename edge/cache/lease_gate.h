#pragma once
// LeaseGate: whether this edge may serve stored responses without asking the
// origin first. The purge agent opens it until its lease expires, and only
// once it has caught up with the coordinator's log; when the lease lapses
// (partition, coordinator down, this process stalled) the edge is fenced by
// the clock alone, with no thread needing to notice.
//
// Thread-safety: thread-safe (one atomic).

#include <atomic>
#include <cstdint>
#include <limits>

namespace tern::edge::cache {

class LeaseGate {
 public:
  // Standalone edges (no coordinator) are never fenced.
  static constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

  explicit LeaseGate(int64_t open_until_us = kForever) : until_us_(open_until_us) {}

  bool fenced(int64_t steady_now_us) const {
    return steady_now_us >= until_us_.load(std::memory_order_acquire);
  }
  // Opens the gate until `steady_us` (a lease expiry as the edge computes it).
  void openUntil(int64_t steady_us) { until_us_.store(steady_us, std::memory_order_release); }
  int64_t openUntil() const { return until_us_.load(std::memory_order_acquire); }

 private:
  std::atomic<int64_t> until_us_;
};

}  // namespace tern::edge::cache
