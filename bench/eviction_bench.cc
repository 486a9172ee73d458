// Hit ratio of W-TinyLFU against plain LRU on Zipf workloads: the evidence
// for the eviction policy choice (docs/storage.md).
//   eviction_bench [requests]
// Prints a table: alpha, cache size (share of keys), LRU and W-TinyLFU hit
// ratios and the gain. Deterministic (fixed seed); not a timing benchmark.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "storage/eviction.h"

using tern::storage::EvictionKind;

namespace {

std::vector<double> zipfCdf(size_t keys, double s) {
  std::vector<double> cdf(keys);
  double sum = 0;
  for (size_t i = 0; i < keys; ++i) sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
  double acc = 0;
  for (size_t i = 0; i < keys; ++i) {
    acc += 1.0 / std::pow(static_cast<double>(i + 1), s) / sum;
    cdf[i] = acc;
  }
  return cdf;
}

double hitRatio(EvictionKind kind, const std::vector<double>& cdf, size_t capacity,
                size_t requests) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  auto policy = tern::storage::makeEvictionPolicy(kind, capacity);
  size_t hits = 0;
  for (size_t r = 0; r < requests; ++r) {
    uint64_t key =
        static_cast<uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    key = key * 0x9e3779b97f4a7c15ULL + 7;
    if (policy->contains(key)) {
      ++hits;
      policy->touch(key);
    } else {
      policy->insert(key, 1);
      while (policy->bytes() > capacity) policy->evict();
    }
  }
  return static_cast<double>(hits) / static_cast<double>(requests);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t keys = 1000000;
  const size_t requests = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 5000000;
  std::printf("Zipf workload: %zu keys, %zu requests, unit-size objects\n", keys, requests);
  std::printf("%-6s %-10s %-8s %-10s %-8s\n", "alpha", "cache", "LRU", "W-TinyLFU", "gain");
  for (double alpha : {0.7, 0.9, 1.1}) {
    auto cdf = zipfCdf(keys, alpha);
    for (double share : {0.001, 0.01, 0.1}) {
      size_t capacity = static_cast<size_t>(static_cast<double>(keys) * share);
      double lru = hitRatio(EvictionKind::kLru, cdf, capacity, requests);
      double tiny = hitRatio(EvictionKind::kTinyLfu, cdf, capacity, requests);
      std::printf("%-6.1f %-10s %-8.3f %-10.3f %+.3f\n", alpha,
                  (std::to_string(share * 100).substr(0, 4) + "%").c_str(), lru, tiny, tiny - lru);
    }
  }
  return 0;
}
