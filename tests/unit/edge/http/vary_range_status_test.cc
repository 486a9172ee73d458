#include <gtest/gtest.h>

#include "edge/http/cache_status.h"
#include "edge/http/range.h"
#include "edge/http/surrogate_keys.h"
#include "edge/http/vary.h"

namespace tern::edge::http {
namespace {

// RFC 9111 4.1.
TEST(VaryTest, FieldsAndStar) {
  auto f = varyFields({{"Vary", "Accept-Encoding, accept-language"}, {"Vary", "ACCEPT-ENCODING"}});
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, (std::vector<std::string>{"accept-encoding", "accept-language"}));
  EXPECT_FALSE(varyFields({{"Vary", "Cookie, *"}}).has_value());
  EXPECT_TRUE(varyFields({})->empty());
}

TEST(VaryTest, AcceptEncodingNormalization) {
  EXPECT_EQ(normalizeAcceptEncoding("gzip, deflate, br"), "br,deflate,gzip");
  EXPECT_EQ(normalizeAcceptEncoding("br, gzip ,deflate"), "br,deflate,gzip");
  EXPECT_EQ(normalizeAcceptEncoding("gzip;q=1.0, br;q=0"), "gzip");
  EXPECT_EQ(normalizeAcceptEncoding("*"), "br,deflate,gzip,zstd");
  EXPECT_EQ(normalizeAcceptEncoding("*, gzip;q=0"), "br,deflate,zstd");
  EXPECT_EQ(normalizeAcceptEncoding(""), "identity");
  const std::vector<std::string> ae = {"accept-encoding"};
  // Spellings of one set share a variant...
  EXPECT_EQ(variantId({{"Accept-Encoding", "gzip, deflate, br"}}, ae),
            variantId({{"Accept-Encoding", "br,gzip, deflate"}}, ae));
  // ...but a client that accepts only br never shares with one that also
  // takes gzip (the origin may answer that one with gzip).
  EXPECT_NE(variantId({{"Accept-Encoding", "gzip, br"}}, ae),
            variantId({{"Accept-Encoding", "br"}}, ae));
  EXPECT_NE(variantId({{"Accept-Encoding", "gzip"}}, ae),
            variantId({{"Accept-Encoding", "br"}}, ae));
}

TEST(VaryTest, ContentCodingMustBeAccepted) {
  EXPECT_TRUE(acceptsCoding("gzip, br", "br"));
  EXPECT_FALSE(acceptsCoding("br", "gzip"));
  EXPECT_FALSE(acceptsCoding("gzip;q=0, br", "gzip"));
  EXPECT_TRUE(acceptsCoding("*", "zstd"));
  EXPECT_TRUE(acceptsCoding("", ""));
  EXPECT_TRUE(acceptsCoding("", "identity"));
  EXPECT_FALSE(acceptsCoding("", "br")) << "no Accept-Encoding: identity only";
}

TEST(VaryTest, ListFieldsAreNormalizedBeforeMatching) {
  const std::vector<std::string> al = {"accept-language"};
  EXPECT_EQ(variantId({{"Accept-Language", "en-US, fr;q=0.5"}}, al),
            variantId({{"Accept-Language", "EN-us,fr; q=0.5"}}, al));
  EXPECT_NE(variantId({{"Accept-Language", "en-US, fr"}}, al),
            variantId({{"Accept-Language", "fr, en-US"}}, al))
      << "order carries preference";
  const std::vector<std::string> a = {"accept"};
  EXPECT_EQ(variantId({{"Accept", "text/html, application/json"}}, a),
            variantId({{"Accept", "text/html,application/json"}}, a));
}

TEST(VaryTest, VariantIdIsStableAndTellsAbsentFromEmpty) {
  std::vector<std::string> al = {"accept-language"};
  EXPECT_EQ(variantId({{"Accept-Language", "en,  fr"}}, al),
            variantId({{"Accept-Language", "en, fr"}}, al));
  EXPECT_NE(variantId({{"Accept-Language", ""}}, al), variantId({}, al));
  EXPECT_EQ(variantId({{"Accept-Language", "en"}}, {}), "");
  EXPECT_EQ(variantId({}, al).size(), 16u);
}

// RFC 9110 14.
TEST(RangeTest, SingleRanges) {
  Fields s = {{"ETag", "\"v1\""}};
  auto d = decideRange("GET", {{"Range", "bytes=0-9"}}, s, 100);
  EXPECT_EQ(d.outcome, RangeOutcome::kPartial);
  EXPECT_EQ(d.content_range, "bytes 0-9/100");
  d = decideRange("GET", {{"Range", "bytes=90-"}}, s, 100);
  EXPECT_EQ(d.content_range, "bytes 90-99/100");
  d = decideRange("GET", {{"Range", "bytes=-10"}}, s, 100);
  EXPECT_EQ(d.content_range, "bytes 90-99/100");
  d = decideRange("GET", {{"Range", "bytes=50-1000"}}, s, 100);
  EXPECT_EQ(d.content_range, "bytes 50-99/100");
  d = decideRange("GET", {{"Range", "bytes=-1000"}}, s, 100);
  EXPECT_EQ(d.content_range, "bytes 0-99/100");
}

TEST(RangeTest, UnsatisfiableInvalidAndIgnored) {
  Fields s = {{"ETag", "\"v1\""}};
  auto d = decideRange("GET", {{"Range", "bytes=100-"}}, s, 100);
  EXPECT_EQ(d.outcome, RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(d.content_range, "bytes */100");
  EXPECT_EQ(decideRange("GET", {{"Range", "bytes=-0"}}, s, 100).outcome,
            RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(decideRange("GET", {{"Range", "bytes=9-1"}}, s, 100).outcome, RangeOutcome::kFull);
  EXPECT_EQ(decideRange("GET", {{"Range", "items=0-1"}}, s, 100).outcome, RangeOutcome::kFull);
  EXPECT_EQ(decideRange("GET", {{"Range", "bytes=0-1,5-6"}}, s, 100).outcome, RangeOutcome::kFull);
  EXPECT_EQ(decideRange("HEAD", {{"Range", "bytes=0-1"}}, s, 100).outcome, RangeOutcome::kFull);
  EXPECT_EQ(decideRange("GET", {{"Range", "bytes=0-1"}, {"If-Range", "\"v1\""}}, s, 100).outcome,
            RangeOutcome::kPartial);
  EXPECT_EQ(decideRange("GET", {{"Range", "bytes=0-1"}, {"If-Range", "\"v2\""}}, s, 100).outcome,
            RangeOutcome::kFull);
}

// RFC 9211.
TEST(CacheStatusTest, Formats) {
  CacheStatus hit;
  hit.hit = true;
  hit.ttl_s = 42;
  EXPECT_EQ(formatCacheStatus(hit), "tern; hit; ttl=42");
  CacheStatus miss;
  miss.fwd = "miss";
  miss.fwd_status = 200;
  miss.stored = true;
  miss.collapsed = true;
  miss.key = "http://a/\"b\"";
  EXPECT_EQ(formatCacheStatus(miss),
            "tern; fwd=miss; fwd-status=200; stored; collapsed; key=\"http://a/\\\"b\\\"\"");
}

TEST(SurrogateKeysTest, EveryHeaderAndDeduplicated) {
  Fields h = {{"Surrogate-Key", "a  b\tc"},
              {"Cache-Tag", "c, d"},
              {"Edge-Cache-Tag", "e"},
              {"CDN-Tag", "f"},
              {"xkey", "g a"},
              {"Cache-Groups", "\"h\", \"i\\\"j\";p=1"}};
  EXPECT_EQ(surrogateKeys(h),
            (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h", "i\"j"}));
  EXPECT_TRUE(isSurrogateKeyField("SURROGATE-KEY"));
  EXPECT_FALSE(isSurrogateKeyField("cache-groups"));  // RFC 9875 groups are end-to-end
  EXPECT_EQ(groupInvalidations({{"Cache-Group-Invalidation", "\"x\", \"y\""}}),
            (std::vector<std::string>{"x", "y"}));
}

TEST(SurrogateKeysTest, ManyKeysAndBadOnes) {
  std::string many;
  for (int i = 0; i < 1500; ++i) many += "k" + std::to_string(i) + " ";
  EXPECT_EQ(surrogateKeys({{"Surrogate-Key", many}}).size(), 1500u);
  EXPECT_TRUE(surrogateKeys({{"Surrogate-Key", std::string(2000, 'x')}}).empty());
}

}  // namespace
}  // namespace tern::edge::http
