// proto/purge_convert: a purge from the API is normalized once, by the
// coordinator; an edge takes the logged selectors as they are, checked.
#include "proto/purge_convert.h"

#include <gtest/gtest.h>

#include "storage/cache_key.h"

namespace tern::proto {
namespace {

v1::Purge logged(std::string url) {
  v1::Purge p;
  p.set_seq(7);
  p.mutable_selectors()->Add()->set_url(std::move(url));
  return p;
}

// "https://h:80/a" is "h:80/a"; read again without its scheme that would be
// "h/a" (80 is http's default) and the purge would miss what the edge
// stored for the https request (found by tests/fuzz/purge_json).
TEST(PurgeConvert, AnEdgeAppliesTheSelectorTheCoordinatorNormalized) {
  v1::Selector given;
  given.set_url("https://Example.com:80/a");
  auto normalized = fromProto(given);
  ASSERT_TRUE(normalized.ok());
  EXPECT_EQ(normalized->value, "example.com:80/a");
  auto spec = specFromProto(logged(normalized->value));
  ASSERT_TRUE(spec.ok()) << spec.status().toString();
  ASSERT_EQ(spec->selectors.size(), 1u);
  EXPECT_EQ(spec->selectors[0].value, "example.com:80/a");
  auto stored = storage::CacheKey::fromRequest("https", "example.com:80", "/a");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->urlId(), spec->selectors[0].value);
}

TEST(PurgeConvert, AnEdgeRefusesLoggedSelectorsThatAreNotNormalized) {
  for (const char* bad : {"", "example.com", "http://example.com/a", "exa mple.com/a",
                          "example.com/a#f", "example.com/a\r\nx"}) {
    EXPECT_FALSE(specFromProto(logged(bad)).ok()) << bad;
  }
  v1::Purge no_seq = logged("example.com/a");
  no_seq.set_seq(0);
  EXPECT_FALSE(specFromProto(no_seq).ok());
  v1::Purge tag;
  tag.set_seq(1);
  tag.mutable_selectors()->Add()->set_tag("has space");
  EXPECT_FALSE(specFromProto(tag).ok());
}

}  // namespace
}  // namespace tern::proto
