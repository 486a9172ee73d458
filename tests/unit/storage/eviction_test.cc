#include "storage/eviction.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace tern::storage {
namespace {

TEST(LruPolicyTest, EvictsLeastRecentlyUsed) {
  auto p = makeEvictionPolicy(EvictionKind::kLru, 100);
  p->insert(1, 10);
  p->insert(2, 10);
  p->insert(3, 10);
  p->touch(1);
  EXPECT_EQ(p->evict(), 2u);
  EXPECT_EQ(p->evict(), 3u);
  EXPECT_EQ(p->evict(), 1u);
  EXPECT_EQ(p->evict(), std::nullopt);
}

TEST(EvictionPolicyTest, TracksBytesAndRemovals) {
  for (auto kind : {EvictionKind::kLru, EvictionKind::kTinyLfu}) {
    auto p = makeEvictionPolicy(kind, 1000);
    p->insert(1, 100);
    p->insert(2, 250);
    EXPECT_EQ(p->bytes(), 350u);
    p->insert(2, 50);  // replacement
    EXPECT_EQ(p->bytes(), 150u);
    p->remove(1);
    EXPECT_FALSE(p->contains(1));
    EXPECT_EQ(p->bytes(), 50u);
    EXPECT_EQ(p->size(), 1u);
    EXPECT_EQ(p->evict(), 2u);
    EXPECT_EQ(p->bytes(), 0u);
  }
}

TEST(TinyLfuPolicyTest, FrequentObjectSurvivesScan) {
  auto p = makeEvictionPolicy(EvictionKind::kTinyLfu, 100);
  for (int i = 0; i < 100; ++i) {
    p->insert(static_cast<uint64_t>(i), 1);
  }
  for (int r = 0; r < 10; ++r) p->touch(42);
  // A scan of one-hit objects: each insert over budget evicts one object.
  for (uint64_t i = 1000; i < 2000; ++i) {
    p->insert(i, 1);
    while (p->bytes() > 100) ASSERT_TRUE(p->evict().has_value());
  }
  EXPECT_TRUE(p->contains(42));
}

TEST(FrequencySketchTest, CountsAndAges) {
  FrequencySketch s(1000);
  for (int i = 0; i < 5; ++i) s.increment(7);
  EXPECT_GE(s.estimate(7), 5u);
  EXPECT_LE(s.estimate(8), 1u);
  for (int i = 0; i < 20; ++i) s.increment(9);
  EXPECT_EQ(s.estimate(9), 15u);  // 4-bit counters saturate
}

// Hit ratio of a policy on a Zipf(s) workload over `keys` keys.
double zipfHitRatio(EvictionKind kind, size_t keys, size_t capacity, double s, size_t requests) {
  std::vector<double> cdf(keys);
  double sum = 0;
  for (size_t i = 0; i < keys; ++i) sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
  double acc = 0;
  for (size_t i = 0; i < keys; ++i) {
    acc += 1.0 / std::pow(static_cast<double>(i + 1), s) / sum;
    cdf[i] = acc;
  }
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> u(0, 1);
  auto p = makeEvictionPolicy(kind, capacity);
  size_t hits = 0;
  for (size_t r = 0; r < requests; ++r) {
    uint64_t key =
        static_cast<uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    // Scramble ranks so that ids carry no order.
    key = key * 0x9e3779b97f4a7c15ULL + 1;
    if (p->contains(key)) {
      ++hits;
      p->touch(key);
    } else {
      p->insert(key, 1);
      while (p->bytes() > capacity) p->evict();
    }
  }
  return static_cast<double>(hits) / static_cast<double>(requests);
}

TEST(TinyLfuPolicyTest, BeatsLruOnZipf) {
  double lru = zipfHitRatio(EvictionKind::kLru, 100000, 1000, 0.9, 400000);
  double tiny = zipfHitRatio(EvictionKind::kTinyLfu, 100000, 1000, 0.9, 400000);
  RecordProperty("lru_hit_ratio", std::to_string(lru));
  RecordProperty("tinylfu_hit_ratio", std::to_string(tiny));
  EXPECT_GT(tiny, lru + 0.03) << "lru=" << lru << " tinylfu=" << tiny;
}

}  // namespace
}  // namespace tern::storage
