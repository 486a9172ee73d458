#include "edge/http/freshness.h"

#include <gtest/gtest.h>

#include "edge/http/date.h"

namespace tern::edge::http {
namespace {

constexpr int64_t kNow = 1700000000000;  // ms
std::string date(int64_t ms) { return formatHttpDate(ms); }

TEST(HttpDateTest, ParsesAllThreeFormatsAndRoundTrips) {
  auto a = parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT");
  auto b = parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT");
  auto c = parseHttpDate("Sun Nov  6 08:49:37 1994");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(*a, 784111777000);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(*a, *c);
  EXPECT_EQ(formatHttpDate(*a), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_FALSE(parseHttpDate("yesterday").has_value());
  EXPECT_FALSE(parseHttpDate("Sun, 36 Nov 1994 08:49:37 GMT").has_value());
  EXPECT_FALSE(parseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT").has_value());
  EXPECT_EQ(parseHttpDate("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
  EXPECT_EQ(parseHttpDate("Tue, 29 Feb 2028 23:59:59 GMT"), 1835481599000);
  for (int64_t t : {0LL, 951782400000LL, 1700000000000LL, 4102444800000LL}) {
    EXPECT_EQ(parseHttpDate(formatHttpDate(t)), t);
  }
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT trailing").has_value());
}

// RFC 9110 5.6.7 exactly: nothing lenient may turn a malformed value into
// a date (an Expires that is not a date means "already expired").
TEST(HttpDateTest, RejectsEverythingButTheThreeForms) {
  for (const char* bad : {"Sun,  06 Nov 1994 08:49:37 GMT",    // two spaces
                          "Sun, 06 Nov 1994 8:49:37 GMT",      // one-digit hour
                          "Sun, 6 Nov 1994 08:49:37 GMT",      // one-digit day
                          "sun, 06 nov 1994 08:49:37 gmt",     // case
                          "Sun, 06 Nov 1994 08:49:37 UTC",     // not GMT
                          "Sun, 06 Nov 1994 08:49:37",         // no zone
                          " Sun, 06 Nov 1994 08:49:37 GMT",    // leading space
                          "Foo, 06 Nov 1994 08:49:37 GMT",     // day name
                          "Sun, 31 Nov 1994 08:49:37 GMT",     // no 31 November
                          "Sun, 29 Feb 1900 08:49:37 GMT",     // 1900 is no leap year
                          "Sun, 06 Nov 1994 24:00:00 GMT",     // hour 24
                          "Sunday, 06-Nov-1994 08:49:37 GMT",  // RFC 850 with four digits
                          "Sun, 06-Nov-94 08:49:37 GMT",       // RFC 850 with a short day name
                          "Sun Nov 6 08:49:37 1994",           // asctime without the padding space
                          "Sun Nov  6 08:49:37 1994 ",         // trailing space
                          "0", "-1", "", "2024-01-01T00:00:00Z"}) {
    EXPECT_FALSE(parseHttpDate(bad).has_value()) << bad;
  }
  EXPECT_EQ(parseHttpDate("Sun Nov 16 08:49:37 1994"),
            parseHttpDate("Wed, 16 Nov 1994 08:49:37 GMT"));
  EXPECT_EQ(parseHttpDate("Thursday, 01-Jan-70 00:00:00 GMT"), 0);
  EXPECT_EQ(parseHttpDate("Saturday, 01-Jan-00 00:00:00 GMT"), 946684800000);
}

// An Expires that is not a valid date means the response is already stale.
TEST(FreshnessTest, InvalidExpiresIsAlreadyExpired) {
  Fields r = {{"Date", date(kNow)}, {"Expires", "Sun,  06 Nov 2094 08:49:37 GMT"}};
  EXPECT_LE(freshnessLifetimeMs(200, r, kNow, {}), 0);
}

// RFC 9111 section 3.
TEST(StoreTest, WhatASharedCacheMayStore) {
  EXPECT_TRUE(decideStore("GET", {}, 200, {{"Cache-Control", "max-age=60"}}).store);
  EXPECT_FALSE(decideStore("POST", {}, 200, {{"Cache-Control", "max-age=60"}}).store);
  EXPECT_FALSE(decideStore("GET", {}, 200, {{"Cache-Control", "no-store"}}).store);
  EXPECT_FALSE(decideStore("GET", {{"Cache-Control", "no-store"}}, 200, {}).store);
  EXPECT_FALSE(decideStore("GET", {}, 200, {{"Cache-Control", "private"}}).store);
  EXPECT_TRUE(
      decideStore("GET", {}, 200, {{"Cache-Control", "private=\"x-user\", max-age=5"}}).store);
  EXPECT_FALSE(decideStore("GET", {}, 206, {{"Cache-Control", "max-age=60"}}).store);
  EXPECT_FALSE(decideStore("GET", {}, 200, {{"Vary", "*"}, {"Cache-Control", "max-age=60"}}).store);
  // Heuristically cacheable status without explicit freshness.
  EXPECT_TRUE(decideStore("GET", {}, 404, {}).store);
  EXPECT_FALSE(decideStore("GET", {}, 302, {}).store);
  EXPECT_TRUE(decideStore("GET", {}, 302, {{"Cache-Control", "max-age=10"}}).store);
  EXPECT_TRUE(decideStore("GET", {}, 302, {{"Expires", date(kNow)}}).store);
}

// RFC 9111 3.5: Authorization.
TEST(StoreTest, AuthorizationNeedsExplicitPermission) {
  Fields auth = {{"Authorization", "Bearer x"}};
  EXPECT_FALSE(decideStore("GET", auth, 200, {{"Cache-Control", "max-age=60"}}).store);
  EXPECT_TRUE(decideStore("GET", auth, 200, {{"Cache-Control", "public, max-age=60"}}).store);
  EXPECT_TRUE(decideStore("GET", auth, 200, {{"Cache-Control", "s-maxage=60"}}).store);
  EXPECT_TRUE(
      decideStore("GET", auth, 200, {{"Cache-Control", "must-revalidate, max-age=60"}}).store);
}

TEST(StoreTest, SetCookieOnlyWithSharedCachePermission) {
  EXPECT_FALSE(
      decideStore("GET", {}, 200, {{"Set-Cookie", "a=b"}, {"Cache-Control", "max-age=60"}}).store);
  EXPECT_TRUE(
      decideStore("GET", {}, 200, {{"Set-Cookie", "a=b"}, {"Cache-Control", "s-maxage=60"}}).store);
}

// RFC 9111 4.2.1: s-maxage > max-age > Expires > heuristic.
TEST(FreshnessTest, LifetimePrecedence) {
  EXPECT_EQ(freshnessLifetimeMs(200, {{"Cache-Control", "max-age=10, s-maxage=20"}}, kNow), 20000);
  EXPECT_EQ(freshnessLifetimeMs(
                200, {{"Cache-Control", "max-age=10"}, {"Expires", date(kNow + 99000)}}, kNow),
            10000);
  EXPECT_EQ(freshnessLifetimeMs(200, {{"Date", date(kNow)}, {"Expires", date(kNow + 30000)}}, kNow),
            30000);
  EXPECT_EQ(freshnessLifetimeMs(200, {{"Expires", "0"}}, kNow), 0);  // invalid Expires: expired
  EXPECT_EQ(freshnessLifetimeMs(200, {{"Cache-Control", "max-age=x"}}, kNow), 0);
}

// RFC 9111 4.2.2: heuristic is a fraction of the time since Last-Modified.
TEST(FreshnessTest, HeuristicFromLastModified) {
  Fields h = {{"Date", date(kNow)}, {"Last-Modified", date(kNow - 100000 * 1000LL)}};
  EXPECT_EQ(freshnessLifetimeMs(200, h, kNow), 10000 * 1000LL);
  Fields old = {{"Date", date(kNow)}, {"Last-Modified", date(kNow - 365LL * 86400 * 1000)}};
  EXPECT_EQ(freshnessLifetimeMs(200, old, kNow), 86400 * 1000LL);  // capped at a day
  EXPECT_EQ(freshnessLifetimeMs(302, h, kNow), 0);                 // not heuristically cacheable
}

// RFC 9111 4.2.3.
TEST(FreshnessTest, AgeCalculation) {
  // Origin said Age: 10; the response took 2 s; it has been stored 5 s.
  Fields h = {{"Date", date(kNow - 2000)}, {"Age", "10"}};
  EXPECT_EQ(currentAgeMs(h, kNow - 2000, kNow, kNow + 5000), 10000 + 2000 + 5000);
  // Clock skew: Date in the future counts as 0 apparent age.
  Fields skew = {{"Date", date(kNow + 60000)}};
  EXPECT_EQ(currentAgeMs(skew, kNow, kNow, kNow + 1000), 1000);
  EXPECT_EQ(currentAgeMs({{"Age", "garbage"}}, kNow, kNow, kNow), 0);
}

// What a cache keeps of a response's fields when it stores it, so that a
// hit parses none of them (CDN-Cache-Control, when present, rules).
TEST(FreshnessTest, ParsedOnceWhenStored) {
  Fields h = {{"Date", date(kNow - 2000)},
              {"Age", "10"},
              {"Cache-Control", "max-age=60, stale-if-error=300, immutable"}};
  ResponseFreshness f = responseFreshness(200, h, kNow - 2000, kNow);
  EXPECT_EQ(f.lifetime_ms, 60000);
  EXPECT_EQ(f.initial_age_ms, 12000);
  EXPECT_TRUE(f.immutable);
  EXPECT_FALSE(f.no_cache || f.must_revalidate || f.proxy_revalidate || f.s_maxage);
  EXPECT_EQ(f.stale_if_error, 300);
  EXPECT_FALSE(f.stale_while_revalidate);
  // The age a hit sees is that plus the time since the response arrived.
  EXPECT_EQ(decideReuse({}, f, kNow, kNow + 5000, false).age_ms,
            currentAgeMs(h, kNow - 2000, kNow, kNow + 5000));
  Fields cdn = {{"Cache-Control", "max-age=5"},
                {"CDN-Cache-Control", "s-maxage=120, stale-while-revalidate=30"}};
  f = responseFreshness(200, cdn, kNow, kNow);
  EXPECT_EQ(f.lifetime_ms, 120000);
  EXPECT_TRUE(f.s_maxage);
  EXPECT_EQ(f.stale_while_revalidate, 30);
  EXPECT_TRUE(responseFreshness(200, {{"Cache-Control", "no-cache"}}, kNow, kNow).no_cache);
}

ReuseDecision reuse(const Fields& req, const Fields& resp, int64_t stored_for_ms,
                    bool force = false) {
  return decideReuse(req, 200, resp, kNow, kNow, kNow + stored_for_ms, force);
}

TEST(ReuseTest, FreshAndStale) {
  Fields r = {{"Date", date(kNow)}, {"Cache-Control", "max-age=60"}};
  auto fresh = reuse({}, r, 10000);
  EXPECT_EQ(fresh.reuse, Reuse::kFresh);
  EXPECT_EQ(fresh.ttl_ms, 50000);
  EXPECT_EQ(reuse({}, r, 61000).reuse, Reuse::kRevalidate);
  EXPECT_EQ(reuse({}, r, 10000, /*force=*/true).reuse, Reuse::kRevalidate);
}

// RFC 9111 5.2.1: request directives.
TEST(ReuseTest, RequestDirectives) {
  Fields r = {{"Date", date(kNow)}, {"Cache-Control", "max-age=60"}};
  EXPECT_EQ(reuse({{"Cache-Control", "no-cache"}}, r, 1000).reuse, Reuse::kRevalidate);
  EXPECT_EQ(reuse({{"Cache-Control", "max-age=5"}}, r, 10000).reuse, Reuse::kRevalidate);
  EXPECT_EQ(reuse({{"Cache-Control", "min-fresh=55"}}, r, 10000).reuse, Reuse::kRevalidate);
  EXPECT_EQ(reuse({{"Cache-Control", "max-stale=30"}}, r, 80000).reuse, Reuse::kStaleAllowed);
  EXPECT_EQ(reuse({{"Cache-Control", "max-stale=10"}}, r, 80000).reuse, Reuse::kRevalidate);
  EXPECT_EQ(reuse({{"Cache-Control", "max-stale"}}, r, 8000000).reuse, Reuse::kStaleAllowed);
}

// RFC 8246: a reload (max-age=0) does not revalidate a fresh immutable
// response; a forced reload (no-cache) does, and a stale one is revalidated.
TEST(ReuseTest, ImmutableIsNotRevalidatedOnReload) {
  Fields r = {{"Date", date(kNow)}, {"Cache-Control", "max-age=60, immutable"}};
  EXPECT_EQ(reuse({{"Cache-Control", "max-age=0"}}, r, 10000).reuse, Reuse::kFresh);
  EXPECT_EQ(reuse({{"Cache-Control", "no-cache"}}, r, 10000).reuse, Reuse::kRevalidate);
  EXPECT_EQ(reuse({{"Cache-Control", "max-age=0"}}, r, 61000).reuse, Reuse::kRevalidate);
  Fields plain = {{"Date", date(kNow)}, {"Cache-Control", "max-age=60"}};
  EXPECT_EQ(reuse({{"Cache-Control", "max-age=0"}}, plain, 10000).reuse, Reuse::kRevalidate);
}

// must-revalidate, proxy-revalidate and s-maxage forbid serving stale.
TEST(ReuseTest, NoStaleDirectives) {
  for (const char* cc :
       {"max-age=1, must-revalidate", "max-age=1, proxy-revalidate", "s-maxage=1"}) {
    Fields r = {{"Date", date(kNow)}, {"Cache-Control", cc}};
    EXPECT_EQ(reuse({{"Cache-Control", "max-stale"}}, r, 5000).reuse, Reuse::kRevalidate) << cc;
  }
  Fields nc = {{"Cache-Control", "no-cache, max-age=100"}};
  EXPECT_EQ(reuse({}, nc, 0).reuse, Reuse::kRevalidate);
}

// RFC 5861.
TEST(ReuseTest, StaleWhileRevalidateAndStaleIfError) {
  Fields r = {{"Date", date(kNow)},
              {"Cache-Control", "max-age=10, stale-while-revalidate=20, stale-if-error=300"}};
  EXPECT_EQ(reuse({}, r, 5000).reuse, Reuse::kFresh);
  EXPECT_EQ(reuse({}, r, 25000).reuse, Reuse::kStaleWhileRevalidate);
  EXPECT_EQ(reuse({}, r, 31000).reuse, Reuse::kRevalidate);
  EXPECT_EQ(reuse({}, r, 31000).stale_if_error_ms, 300000);
  // A soft-purged entry is never served stale-while-revalidate.
  EXPECT_EQ(reuse({}, r, 25000, true).reuse, Reuse::kRevalidate);
  Fields mr = {{"Cache-Control", "max-age=10, must-revalidate, stale-if-error=300"}};
  EXPECT_EQ(reuse({}, mr, 31000).stale_if_error_ms, 0);
}

// RFC 9111 4.2.4: stale on an origin error only where nothing forbids it,
// within the policy's limits.
TEST(ReuseTest, StaleOnErrorFollowsDirectivesAndPolicy) {
  auto with = [](const Fields& req, const Fields& resp, CachePolicy p) {
    return decideReuse(req, 200, resp, kNow, kNow, kNow + 31000, false, p).stale_if_error_ms;
  };
  CachePolicy p;
  p.stale_on_error_ms = 60000;
  p.stale_if_error_max_ms = 600000;
  const Fields plain = {{"Date", date(kNow)}, {"Cache-Control", "max-age=10"}};
  EXPECT_EQ(with({}, plain, {}), 0) << "off by default";
  EXPECT_EQ(with({}, plain, p), 60000) << "the policy's allowance without stale-if-error";
  // An explicit stale-if-error replaces the allowance (0 included), capped.
  EXPECT_EQ(with({}, {{"Cache-Control", "max-age=10, stale-if-error=0"}}, p), 0);
  EXPECT_EQ(with({}, {{"Cache-Control", "max-age=10, stale-if-error=30"}}, p), 30000);
  EXPECT_EQ(with({}, {{"Cache-Control", "max-age=10, stale-if-error=99999"}}, p), 600000);
  EXPECT_EQ(with({{"Cache-Control", "stale-if-error=120"}}, plain, p), 120000) << "request";
  // Forbidden: no-cache, must-revalidate, proxy-revalidate, s-maxage.
  for (const char* cc :
       {"no-cache, stale-if-error=300", "max-age=10, must-revalidate",
        "max-age=10, proxy-revalidate, stale-if-error=300", "s-maxage=10, stale-if-error=300"}) {
    EXPECT_EQ(with({}, {{"Cache-Control", cc}}, p), 0) << cc;
    EXPECT_EQ(with({{"Cache-Control", "stale-if-error=300"}}, {{"Cache-Control", cc}}, p), 0)
        << "a request cannot lift it: " << cc;
  }
}

}  // namespace
}  // namespace tern::edge::http
