#include "edge/http/cache_control.h"

#include <gtest/gtest.h>

namespace tern::edge::http {
namespace {

TEST(CacheControlTest, ParsesDirectivesCaseInsensitivelyWithQuotedArgs) {
  auto cc = parseCacheControl(
      "Public, MAX-AGE=60, s-maxage=\"120\", no-cache=\"Set-Cookie, X-Foo\", "
      "private=\"X-User\", must-revalidate, proxy-revalidate, immutable, no-transform, "
      "stale-while-revalidate=30, stale-if-error=600, unknown-ext=1");
  EXPECT_TRUE(cc.is_public);
  EXPECT_EQ(cc.max_age, 60);
  EXPECT_EQ(cc.s_maxage, 120);
  EXPECT_FALSE(cc.no_cache);  // qualified no-cache only covers the fields
  EXPECT_EQ(cc.no_cache_fields, (std::vector<std::string>{"set-cookie", "x-foo"}));
  EXPECT_FALSE(cc.is_private);
  EXPECT_EQ(cc.private_fields, (std::vector<std::string>{"x-user"}));
  EXPECT_TRUE(cc.must_revalidate && cc.proxy_revalidate && cc.immutable && cc.no_transform);
  EXPECT_EQ(cc.stale_while_revalidate, 30);
  EXPECT_EQ(cc.stale_if_error, 600);
  EXPECT_FALSE(cc.invalid);
}

TEST(CacheControlTest, RequestDirectives) {
  auto cc = parseCacheControl("max-stale, min-fresh=5, only-if-cached, no-store");
  EXPECT_TRUE(cc.max_stale);
  EXPECT_FALSE(cc.max_stale_limit.has_value());
  EXPECT_EQ(cc.min_fresh, 5);
  EXPECT_TRUE(cc.only_if_cached && cc.no_store);
  EXPECT_EQ(parseCacheControl("max-stale=10").max_stale_limit, 10);
}

// RFC 9111 1.2.2: delta-seconds beyond 2^31 are taken as 2^31.
TEST(CacheControlTest, HugeDeltaSecondsSaturate) {
  EXPECT_EQ(parseCacheControl("max-age=99999999999999999999").max_age, kMaxDeltaSeconds);
}

// RFC 9111 4.2.1: invalid or conflicting freshness information: stale.
TEST(CacheControlTest, InvalidOrConflictingMaxAgeIsFlagged) {
  EXPECT_TRUE(parseCacheControl("max-age=abc").invalid);
  EXPECT_TRUE(parseCacheControl("max-age").invalid);
  EXPECT_TRUE(parseCacheControl("max-age=1, max-age=2").invalid);
  EXPECT_FALSE(parseCacheControl("max-age=1, max-age=1").invalid);
}

// RFC 9213 2.1: CDN-Cache-Control, when valid, replaces Cache-Control.
TEST(CacheControlTest, CdnCacheControlTakesPrecedence) {
  Fields h = {{"Cache-Control", "no-store"}, {"CDN-Cache-Control", "max-age=300"}};
  auto cc = effectiveResponseCacheControl(h);
  EXPECT_FALSE(cc.no_store);
  EXPECT_EQ(cc.max_age, 300);
  // Not a Structured Fields Dictionary: ignored as a whole, Cache-Control
  // applies.
  for (const char* bad : {"Max-Age=300", "max-age=300,", "max-age=300 no-store", "max-age=1.2345",
                          "max-age=\"300", "max-age=?2", ", max-age=300"}) {
    Fields h2 = {{"Cache-Control", "max-age=5"}, {"CDN-Cache-Control", bad}};
    EXPECT_EQ(effectiveResponseCacheControl(h2).max_age, 5) << bad;
  }
  // A valid Dictionary applies; a directive of the wrong type is ignored.
  Fields typed = {{"Cache-Control", "max-age=5"}, {"CDN-Cache-Control", "max-age=\"300\", public"}};
  auto t = effectiveResponseCacheControl(typed);
  EXPECT_FALSE(t.max_age.has_value());
  EXPECT_TRUE(t.is_public);
  auto full = parseTargetedCacheControl(
      "max-age=60, s-maxage=30, stale-while-revalidate=10, no-store=?0, must-revalidate, "
      "private=\"Set-Cookie, X-A\", no-cache=(authorization \"X-B\")");
  EXPECT_FALSE(full.invalid);
  EXPECT_EQ(full.max_age, 60);
  EXPECT_EQ(full.s_maxage, 30);
  EXPECT_EQ(full.stale_while_revalidate, 10);
  EXPECT_FALSE(full.no_store) << "?0 is false";
  EXPECT_TRUE(full.must_revalidate);
  EXPECT_EQ(full.private_fields, (std::vector<std::string>{"set-cookie", "x-a"}));
  EXPECT_EQ(full.no_cache_fields, (std::vector<std::string>{"authorization", "x-b"}));
  EXPECT_FALSE(full.no_cache);
}

// RFC 9111 5.4: Pragma: no-cache only when there is no Cache-Control.
TEST(CacheControlTest, PragmaNoCache) {
  EXPECT_TRUE(requestCacheControl({{"Pragma", "no-cache"}}).no_cache);
  EXPECT_FALSE(
      requestCacheControl({{"Pragma", "no-cache"}, {"Cache-Control", "max-age=5"}}).no_cache);
}

TEST(FieldsTest, ListsAndHopByHop) {
  EXPECT_EQ(splitList(" a, \"b,c\" ,, d "), (std::vector<std::string_view>{"a", "\"b,c\"", "d"}));
  Fields f = {{"Connection", "X-Secret, keep-alive"},
              {"X-Secret", "1"},
              {"Keep-Alive", "t=5"},
              {"Transfer-Encoding", "chunked"},
              {"Content-Type", "text/html"}};
  stripHopByHop(f);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].name, "Content-Type");
  Fields two = {{"Vary", "a"}, {"vary", "b"}};
  EXPECT_EQ(combinedField(two, "VARY"), "a, b");
}

}  // namespace
}  // namespace tern::edge::http
