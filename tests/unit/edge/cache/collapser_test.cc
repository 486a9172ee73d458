// Request collapsing: one fetch per key, and never sharing a fetch that began
// before a purge the new request has to respect.

#include "edge/cache/collapser.h"

#include <gtest/gtest.h>

namespace tern::edge::cache {
namespace {

TEST(CollapserTest, ConcurrentMissesShareOneFetch) {
  Collapser c;
  auto a = c.join("k", 5);
  auto b = c.join("k", 5);
  EXPECT_TRUE(a.leader);
  EXPECT_FALSE(b.leader);
  EXPECT_EQ(a.inflight, b.inflight);
  EXPECT_EQ(a.inflight->startSeq(), 5u);
  c.release("k", a.inflight);
  EXPECT_TRUE(c.join("k", 5).leader) << "released: the next request fetches anew";
}

TEST(CollapserTest, AFetchOlderThanAPurgeIsNotShared) {
  Collapser c;
  auto before = c.join("k", 5);
  auto after = c.join("k", 6);  // a purge (seq 6) was applied meanwhile
  EXPECT_TRUE(after.leader);
  EXPECT_NE(before.inflight, after.inflight);
  auto later = c.join("k", 6);
  EXPECT_EQ(later.inflight, after.inflight) << "the new fetch is shared";
  c.release("k", before.inflight);  // the old leader does not remove the new fetch
  EXPECT_EQ(c.join("k", 6).inflight, after.inflight);
}

}  // namespace
}  // namespace tern::edge::cache
