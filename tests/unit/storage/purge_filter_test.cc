#include "storage/purge_filter.h"

#include <gtest/gtest.h>

namespace tern::storage {
namespace {

PurgeSpec spec(uint64_t seq, PurgeMode mode, SelectorKind kind, std::string value) {
  return PurgeSpec{seq, mode, {{kind, std::move(value)}}};
}

const std::vector<std::string> kTags = {"t1", "t2"};

PurgeVerdict check(const PurgeFilter& f, uint64_t store_seq) {
  return f.check("example.com", "example.com/static/app.js?v=1", kTags, store_seq);
}

struct Case {
  SelectorKind kind;
  std::string matching;
  std::string other;
};

class PurgeFilterSelectorTest : public ::testing::TestWithParam<std::tuple<Case, PurgeMode>> {};

TEST_P(PurgeFilterSelectorTest, MatchesOnlyOlderObjectsOfItsSelector) {
  auto [c, mode] = GetParam();
  PurgeFilter f;
  f.add(spec(10, mode, c.kind, c.matching));
  PurgeVerdict hit = mode == PurgeMode::kHard ? PurgeVerdict::kGone : PurgeVerdict::kStale;
  EXPECT_EQ(check(f, 9), hit);                    // stored before the purge
  EXPECT_EQ(check(f, 10), PurgeVerdict::kValid);  // fetched after it was applied
  if (c.kind != SelectorKind::kAll) {
    PurgeFilter g;
    g.add(spec(10, mode, c.kind, c.other));
    EXPECT_EQ(check(g, 9), PurgeVerdict::kValid);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllSelectorsAndModes, PurgeFilterSelectorTest,
    ::testing::Combine(
        ::testing::Values(Case{SelectorKind::kUrl, "example.com/static/app.js?v=1",
                               "example.com/static/app.js?v=2"},
                          Case{SelectorKind::kPrefix, "example.com/static/", "example.com/img/"},
                          Case{SelectorKind::kPrefix, "example.com/", "example.org/"},
                          Case{SelectorKind::kHost, "example.com", "example.org"},
                          Case{SelectorKind::kTag, "t2", "t3"}, Case{SelectorKind::kAll, "", ""}),
        ::testing::Values(PurgeMode::kHard, PurgeMode::kSoft)));

TEST(PurgeFilterTest, HardWinsOverSoft) {
  PurgeFilter f;
  f.add(spec(5, PurgeMode::kSoft, SelectorKind::kTag, "t1"));
  f.add(spec(6, PurgeMode::kHard, SelectorKind::kHost, "example.com"));
  EXPECT_EQ(check(f, 4), PurgeVerdict::kGone);
  EXPECT_EQ(check(f, 5), PurgeVerdict::kGone);
  EXPECT_EQ(check(f, 6), PurgeVerdict::kValid);
}

TEST(PurgeFilterTest, PrefixLongerThanUrlDoesNotMatch) {
  PurgeFilter f;
  f.add(spec(3, PurgeMode::kHard, SelectorKind::kPrefix, "example.com/static/app.js?v=1&more"));
  EXPECT_EQ(check(f, 1), PurgeVerdict::kValid);
}

TEST(PurgeFilterTest, RetireRaisesFloorAndForgetsMarker) {
  PurgeFilter f;
  f.add(spec(7, PurgeMode::kHard, SelectorKind::kTag, "t1"));
  auto markers = f.markers();
  ASSERT_EQ(markers.size(), 1u);
  // A newer purge of the same selector makes the read marker outdated.
  f.add(spec(8, PurgeMode::kSoft, SelectorKind::kTag, "t1"));
  EXPECT_FALSE(f.retire(markers[0]));
  markers = f.markers();
  EXPECT_TRUE(f.retire(markers[0]));
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(f.floor(), 8u);
  EXPECT_EQ(check(f, 1), PurgeVerdict::kValid);  // clean-up handled stored objects
}

TEST(PurgeFilterTest, RetiringPrefixesKeepsLengthIndexRight) {
  PurgeFilter f;
  f.add(spec(1, PurgeMode::kHard, SelectorKind::kPrefix, "example.com/st"));
  f.add(spec(2, PurgeMode::kHard, SelectorKind::kPrefix, "example.org/st"));
  auto markers = f.markers();
  ASSERT_EQ(markers.size(), 2u);
  for (const auto& m : markers) {
    if (m.value == "example.org/st") {
      ASSERT_TRUE(f.retire(m));
    }
  }
  EXPECT_EQ(check(f, 0), PurgeVerdict::kGone);  // same length, still indexed
}

TEST(PurgeFilterTest, ManyMarkersStayHashLookups) {
  PurgeFilter f;
  for (uint64_t i = 1; i <= 100000; ++i) {
    f.add(spec(i, PurgeMode::kHard, SelectorKind::kTag, "tag-" + std::to_string(i)));
  }
  EXPECT_EQ(f.size(), 100000u);
  EXPECT_EQ(f.check("h", "h/x", {"tag-77"}, 76), PurgeVerdict::kGone);
  EXPECT_EQ(f.check("h", "h/x", {"tag-77"}, 77), PurgeVerdict::kValid);
  EXPECT_EQ(f.check("h", "h/x", {"none"}, 0), PurgeVerdict::kValid);
}

}  // namespace
}  // namespace tern::storage
