#include "storage/cache_key.h"

#include <gtest/gtest.h>

#include <random>

namespace tern::storage {
namespace {

CacheKey req(std::string_view scheme, std::string_view host, std::string_view target) {
  auto k = CacheKey::fromRequest(scheme, host, target);
  EXPECT_TRUE(k.ok()) << host << target << ": " << k.status().toString();
  return k.ok() ? *k : CacheKey{};
}

TEST(CacheKeyTest, LowercasesSchemeAndHostAndDropsDefaultPort) {
  CacheKey k = req("http", "Example.COM:80", "/A/b");
  EXPECT_EQ(k.scheme, "http");
  EXPECT_EQ(k.host, "example.com");
  EXPECT_EQ(k.path, "/A/b");  // path is case-sensitive
  EXPECT_EQ(req("https", "example.com:443", "/").host, "example.com");
  EXPECT_EQ(req("https", "example.com:8443", "/").host, "example.com:8443");
  EXPECT_EQ(req("http", "example.com:443", "/").host, "example.com:443");
}

TEST(CacheKeyTest, NormalizesPercentEncodingAndDotSegments) {
  EXPECT_EQ(req("http", "h", "/%7Euser/a%2fb").path, "/~user/a%2Fb");
  EXPECT_EQ(req("http", "h", "/a/./b/../c").path, "/a/c");
  EXPECT_EQ(req("http", "h", "").path, "/");
  EXPECT_EQ(req("http", "h", "/a/%2e%2E/b/").path, "/b/");
  EXPECT_EQ(req("http", "h", "/a/..").path, "/");
  EXPECT_EQ(req("http", "h", "/../../x").path, "/x");
  EXPECT_EQ(req("http", "h", "/a//b").path, "/a//b");  // empty segments are meaningful
}

TEST(CacheKeyTest, KeepsQueryAndTellsEmptyQueryApart) {
  CacheKey a = req("http", "h", "/p?b=2&a=1");
  EXPECT_TRUE(a.has_query);
  EXPECT_EQ(a.query, "b=2&a=1");
  CacheKey b = req("http", "h", "/p?");
  EXPECT_TRUE(b.has_query);
  EXPECT_EQ(b.urlId(), "h/p?");
  CacheKey c = req("http", "h", "/p");
  EXPECT_FALSE(c.has_query);
  EXPECT_EQ(c.urlId(), "h/p");
  EXPECT_NE(b, c);
}

TEST(CacheKeyTest, AbsoluteFormWinsOverHost) {
  CacheKey k = req("http", "ignored.example", "http://Other.Example/x");
  EXPECT_EQ(k.host, "other.example");
  EXPECT_EQ(k.toString(), "http://other.example/x");
}

TEST(CacheKeyTest, RejectsBadInput) {
  EXPECT_FALSE(CacheKey::fromRequest("http", "", "/").ok());
  EXPECT_FALSE(CacheKey::fromRequest("http", "a b", "/").ok());
  EXPECT_FALSE(CacheKey::fromRequest("http", "h/x", "/").ok());
  EXPECT_FALSE(CacheKey::fromRequest("http", "h", "/a b").ok());
  EXPECT_FALSE(CacheKey::fromRequest("http", "h", "/#frag").ok());
  EXPECT_FALSE(CacheKey::fromUrl("ftp://h/x").ok());
  EXPECT_FALSE(CacheKey::fromUrl("http://user@h/x").ok());
}

TEST(CacheKeyTest, FromUrlWithoutScheme) {
  auto k = CacheKey::fromUrl("Example.com/a?b");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->urlId(), "example.com/a?b");
  auto https = CacheKey::fromUrl("https://example.com/a?b");
  ASSERT_TRUE(https.ok());
  EXPECT_EQ(https->urlId(), k->urlId());  // the purge unit ignores the scheme
}

// "://" inside a path is not a scheme: the urlId of such a URL is a fixed
// point (a purge selector is normalized again by every edge that applies it;
// found by tests/fuzz/purge_json).
TEST(CacheKeyTest, SchemeOnlyAtTheStart) {
  auto k = CacheKey::fromUrl("http://example.com/a://b");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->urlId(), "example.com/a://b");
  auto again = CacheKey::fromUrl(k->urlId());
  ASSERT_TRUE(again.ok()) << again.status().toString();
  EXPECT_EQ(again->urlId(), k->urlId());
  auto req = CacheKey::fromRequest("http", "example.com", "/a://b");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->urlId(), k->urlId()) << "the purge matches what the edge stored";
  // An empty port is no port, so that the key cannot start to look like
  // a scheme ("ex:" + "//h/x").
  auto empty_port = CacheKey::fromUrl("http://ex://h/x");
  ASSERT_TRUE(empty_port.ok());
  EXPECT_EQ(empty_port->urlId(), "ex//h/x");
  auto reparsed = CacheKey::fromUrl(empty_port->urlId());
  ASSERT_TRUE(reparsed.ok()) << reparsed.status().toString();
  EXPECT_EQ(reparsed->urlId(), empty_port->urlId());
  auto host_colon = CacheKey::fromRequest("http", "Example.com:", "/a");
  ASSERT_TRUE(host_colon.ok());
  EXPECT_EQ(host_colon->urlId(), "example.com/a");
}

// Requests already in normal form skip the URL parser; every request must
// get the key the full parse gives (fromUrl always parses).
TEST(CacheKeyTest, PlainRequestsGetTheKeyOfTheFullParse) {
  std::mt19937 rng(20261123);
  const std::string target_chars = "abcXYZ019-._~!$&'()*+,;=:@/?%#. []\"<>";
  const std::vector<std::string> hosts = {"example.com",
                                          "example.com:80",
                                          "example.com:443",
                                          "example.com:8080",
                                          "Example.com",
                                          "a-b.c",
                                          "h:",
                                          "h:99999",
                                          "10.0.0.1:80",
                                          "[::1]:8080",
                                          "x_y"};
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  int plain = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string target = "/";
    size_t len = pick(12);
    for (size_t j = 0; j < len; ++j) target.push_back(target_chars[pick(target_chars.size())]);
    if (pick(4) == 0) target += "/../x";
    const std::string& host = hosts[pick(hosts.size())];
    for (std::string scheme : {"http", "https"}) {
      auto fast = CacheKey::fromRequest(scheme, host, target);
      auto full = CacheKey::fromUrl(scheme + "://" + host + target);
      if (target.find('#') != std::string::npos) {
        EXPECT_FALSE(fast.ok()) << target;  // fromUrl drops fragments, requests refuse them
        continue;
      }
      ASSERT_EQ(fast.ok(), full.ok()) << scheme << "://" << host << target;
      if (!fast.ok()) continue;
      ++plain;
      EXPECT_EQ(fast->toString(), full->toString()) << host << target;
      EXPECT_EQ(fast->path, full->path);
      EXPECT_EQ(fast->has_query, full->has_query);
      EXPECT_EQ(fast->query, full->query);
    }
  }
  EXPECT_GT(plain, 10000);  // the comparison ran on many accepted keys
}

}  // namespace
}  // namespace tern::storage
