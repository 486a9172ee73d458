#pragma once
// A Zipf(s) workload over N keys, and the hit ratio an eviction policy gets
// on it: shared by the eviction tests and bench/eviction_bench.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "storage/eviction.h"

namespace tern::testing {

// Cumulative distribution of ranks 0..keys-1 under Zipf(s).
inline std::vector<double> zipfCdf(size_t keys, double s) {
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

// Share of `requests` that hit in a cache of `capacity` unit-size objects.
inline double zipfHitRatio(storage::EvictionKind kind, const std::vector<double>& cdf,
                           size_t capacity, size_t requests, uint64_t seed = 42) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  auto policy = storage::makeEvictionPolicy(kind, capacity);
  size_t hits = 0;
  for (size_t r = 0; r < requests; ++r) {
    auto rank =
        static_cast<uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    uint64_t key = rank * 0x9e3779b97f4a7c15ULL + 7;  // ids carry no order
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

}  // namespace tern::testing
