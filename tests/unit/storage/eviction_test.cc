#include "storage/eviction.h"

#include <gtest/gtest.h>

#include "tests/support/zipf.h"

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

// A full TinyLFU cache takes a newcomer only when it is wanted more often
// than the object it would displace (asked before the copy is made).
TEST(TinyLfuPolicyTest, AdmitsOnlyWhatIsWantedMoreThanItsVictim) {
  auto p = makeEvictionPolicy(EvictionKind::kTinyLfu, 1000);
  for (uint64_t id = 1; id <= 10; ++id) {
    EXPECT_TRUE(p->admits(id, 100)) << "there is room";
    p->insert(id, 100);
  }
  for (int round = 0; round < 3; ++round)
    for (uint64_t id = 1; id <= 10; ++id) p->touch(id);
  // Full, and every resident used four times: a first-time object is not
  // worth a copy.
  EXPECT_FALSE(p->admits(500, 100));
  // Wanted again and again, it is.
  bool admitted = false;
  for (int i = 0; i < 10 && !admitted; ++i) admitted = p->admits(501, 100);
  EXPECT_TRUE(admitted);
  // What is held is always worth keeping; LRU takes anything.
  EXPECT_TRUE(p->admits(3, 100));
  EXPECT_TRUE(makeEvictionPolicy(EvictionKind::kLru, 100)->admits(7, 1000));
}

TEST(FrequencySketchTest, CountsAndAges) {
  FrequencySketch s(1000);
  for (int i = 0; i < 5; ++i) s.increment(7);
  EXPECT_GE(s.estimate(7), 5u);
  EXPECT_LE(s.estimate(8), 1u);
  for (int i = 0; i < 20; ++i) s.increment(9);
  EXPECT_EQ(s.estimate(9), 15u);  // 4-bit counters saturate
}

TEST(TinyLfuPolicyTest, BeatsLruOnZipf) {
  auto cdf = testing::zipfCdf(100000, 0.9);
  double lru = testing::zipfHitRatio(EvictionKind::kLru, cdf, 1000, 400000, 12345);
  double tiny = testing::zipfHitRatio(EvictionKind::kTinyLfu, cdf, 1000, 400000, 12345);
  RecordProperty("lru_hit_ratio", std::to_string(lru));
  RecordProperty("tinylfu_hit_ratio", std::to_string(tiny));
  EXPECT_GT(tiny, lru + 0.03) << "lru=" << lru << " tinylfu=" << tiny;
}

}  // namespace
}  // namespace tern::storage
