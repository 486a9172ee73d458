#include "storage/purge_spec.h"

#include <gtest/gtest.h>

namespace tern::storage {
namespace {

TEST(PurgeSpecTest, NormalizesEachSelectorKind) {
  auto url = normalizeSelector(SelectorKind::kUrl, "https://Example.com/a/../b?x=1");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->value, "example.com/b?x=1");
  auto prefix = normalizeSelector(SelectorKind::kPrefix, "example.com/static/");
  ASSERT_TRUE(prefix.ok());
  EXPECT_EQ(prefix->value, "example.com/static/");
  auto host = normalizeSelector(SelectorKind::kHost, "Example.COM:80");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->value, "example.com");
  auto tag = normalizeSelector(SelectorKind::kTag, "product-42");
  ASSERT_TRUE(tag.ok());
  EXPECT_EQ(tag->value, "product-42");
  EXPECT_TRUE(normalizeSelector(SelectorKind::kAll, "").ok());
}

TEST(PurgeSpecTest, RejectsBadSelectors) {
  EXPECT_FALSE(normalizeSelector(SelectorKind::kAll, "x").ok());
  EXPECT_FALSE(normalizeSelector(SelectorKind::kTag, "").ok());
  EXPECT_FALSE(normalizeSelector(SelectorKind::kTag, "a b").ok());
  EXPECT_FALSE(normalizeSelector(SelectorKind::kTag, std::string(kMaxTagBytes + 1, 'a')).ok());
  EXPECT_FALSE(normalizeSelector(SelectorKind::kUrl, "").ok());
  EXPECT_FALSE(normalizeSelector(SelectorKind::kHost, "").ok());
  EXPECT_FALSE(normalizeSelector(SelectorKind::kUrl, std::string(kMaxSelectorBytes + 1, 'a')).ok());
}

// Normalizing can add a byte ("h?q" becomes "h/?q"): what comes out is held
// to the limit too, as an edge holds a logged selector to it.
TEST(PurgeSpecTest, TheLimitHoldsForTheNormalizedSelector) {
  const std::string at_limit = "example.com?" + std::string(kMaxSelectorBytes - 12, 'a');
  ASSERT_EQ(at_limit.size(), kMaxSelectorBytes);
  auto sel = normalizeSelector(SelectorKind::kUrl, at_limit);
  EXPECT_FALSE(sel.ok()) << "normalized to " << (sel.ok() ? sel->value.size() : 0) << " bytes";
  const std::string fits = "example.com/?" + std::string(kMaxSelectorBytes - 13, 'a');
  auto ok = normalizeSelector(SelectorKind::kUrl, fits);
  ASSERT_TRUE(ok.ok()) << ok.status().toString();
  EXPECT_TRUE(checkNormalizedSelector(SelectorKind::kUrl, ok->value).ok())
      << "what the coordinator logs, an edge takes";
}

TEST(PurgeSpecTest, KindNamesRoundTrip) {
  for (auto kind : {SelectorKind::kUrl, SelectorKind::kPrefix, SelectorKind::kHost,
                    SelectorKind::kTag, SelectorKind::kAll}) {
    SelectorKind parsed;
    ASSERT_TRUE(parseSelectorKind(selectorKindName(kind), &parsed));
    EXPECT_EQ(parsed, kind);
  }
  SelectorKind k;
  EXPECT_FALSE(parseSelectorKind("regex", &k));
}

}  // namespace
}  // namespace tern::storage
