// Hit ratio of W-TinyLFU against plain LRU on Zipf workloads: the evidence
// for the eviction policy choice (docs/storage.md).
//   eviction_bench [requests]
// Prints a table: alpha, cache size (share of keys), LRU and W-TinyLFU hit
// ratios and the gain. Deterministic (fixed seed); not a timing benchmark.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/eviction.h"
#include "tests/support/zipf.h"

using tern::storage::EvictionKind;

using tern::testing::zipfCdf;
using tern::testing::zipfHitRatio;

int main(int argc, char** argv) {
  const size_t keys = 1000000;
  const size_t requests = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 5000000;
  std::printf("Zipf workload: %zu keys, %zu requests, unit-size objects\n", keys, requests);
  std::printf("%-6s %-10s %-8s %-10s %-8s\n", "alpha", "cache", "LRU", "W-TinyLFU", "gain");
  for (double alpha : {0.7, 0.9, 1.1}) {
    auto cdf = zipfCdf(keys, alpha);
    for (double share : {0.001, 0.01, 0.1}) {
      size_t capacity = static_cast<size_t>(static_cast<double>(keys) * share);
      double lru = zipfHitRatio(EvictionKind::kLru, cdf, capacity, requests);
      double tiny = zipfHitRatio(EvictionKind::kTinyLfu, cdf, capacity, requests);
      std::printf("%-6.1f %-10s %-8.3f %-10.3f %+.3f\n", alpha,
                  (std::to_string(share * 100).substr(0, 4) + "%").c_str(), lru, tiny, tiny - lru);
    }
  }
  return 0;
}
