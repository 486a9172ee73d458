#include "edge/http/conditional.h"

#include <gtest/gtest.h>

namespace tern::edge::http {
namespace {

const Fields kStored = {{"ETag", "\"v1\""},
                        {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"},
                        {"Content-Type", "text/plain"},
                        {"Cache-Control", "max-age=60"},
                        {"Content-Length", "5"}};

// RFC 9110 13.1.2 / 8.8.3.2.
TEST(ConditionalTest, IfNoneMatchUsesWeakComparison) {
  EXPECT_TRUE(notModified("GET", {{"If-None-Match", "\"v1\""}}, kStored));
  EXPECT_TRUE(notModified("GET", {{"If-None-Match", "W/\"v1\""}}, kStored));
  EXPECT_TRUE(notModified("HEAD", {{"If-None-Match", "\"x\", \"v1\""}}, kStored));
  EXPECT_TRUE(notModified("GET", {{"If-None-Match", "*"}}, kStored));
  EXPECT_FALSE(notModified("GET", {{"If-None-Match", "\"v2\""}}, kStored));
  EXPECT_FALSE(notModified("POST", {{"If-None-Match", "\"v1\""}}, kStored));
}

// RFC 9110 13.2.2: If-None-Match takes precedence over If-Modified-Since.
TEST(ConditionalTest, Precedence) {
  Fields req = {{"If-None-Match", "\"v2\""},
                {"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}};
  EXPECT_FALSE(notModified("GET", req, kStored));
  EXPECT_TRUE(
      notModified("GET", {{"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}}, kStored));
  EXPECT_TRUE(
      notModified("GET", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}, kStored));
  EXPECT_FALSE(
      notModified("GET", {{"If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT"}}, kStored));
  EXPECT_FALSE(notModified("GET", {{"If-Modified-Since", "not a date"}}, kStored));
}

TEST(ConditionalTest, NotModifiedHeadersAndMerge) {
  Fields h = headersFor304(kStored);
  EXPECT_TRUE(hasField(h, "etag"));
  EXPECT_TRUE(hasField(h, "cache-control"));
  EXPECT_FALSE(hasField(h, "content-type"));
  Fields stored = kStored;
  mergeNotModified(stored, {{"Cache-Control", "max-age=300"},
                            {"ETag", "\"v1\""},
                            {"Content-Length", "0"},
                            {"Surrogate-Key", "new"}});
  EXPECT_EQ(*findField(stored, "cache-control"), "max-age=300");
  EXPECT_EQ(*findField(stored, "content-length"), "5");  // framing of the stored body kept
  EXPECT_EQ(*findField(stored, "surrogate-key"), "new");
  EXPECT_EQ(countField(stored, "etag"), 1u);
}

TEST(ConditionalTest, ValidatorsForRevalidation) {
  Fields v = validatorsFor(kStored);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].name, "If-None-Match");
  Fields lm_only = validatorsFor({{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  ASSERT_EQ(lm_only.size(), 1u);
  EXPECT_EQ(lm_only[0].name, "If-Modified-Since");
  EXPECT_TRUE(validatorsFor({}).empty());
}

}  // namespace
}  // namespace tern::edge::http
