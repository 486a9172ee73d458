#include "edge/cache/purge_request.h"

#include <gtest/gtest.h>

namespace tern::edge::cache {
namespace {

storage::CacheKey url() {
  auto k = storage::CacheKey::fromUrl("http://example.com/a/b?c=1");
  EXPECT_TRUE(k.ok());
  return *k;
}

TEST(PurgeRequest, NeedsTheCallersBearerTokenOfVisibleAscii) {
  for (const http::Fields& h : std::vector<http::Fields>{
           {},
           {{"Authorization", "Basic eDp5"}},
           {{"Authorization", "Bearer "}},
           {{"Authorization", "Bearer to ken"}},
           {{"Authorization", "Bearer tok\xc3\xa9n"}},
       }) {
    auto r = purgeRequest(h, url(), "10.0.0.1", "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  }
  auto ok = purgeRequest({{"Authorization", " Bearer caller "}}, url(), "10.0.0.1", "");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->authorization, "Bearer caller");
  EXPECT_EQ(ok->client_ip, "10.0.0.1");
  // An extra gate at the edge: the token must also be this one.
  EXPECT_FALSE(purgeRequest({{"Authorization", "Bearer caller"}}, url(), "", "gate").ok());
  EXPECT_TRUE(purgeRequest({{"Authorization", "Bearer gate"}}, url(), "", "gate").ok());
}

TEST(PurgeRequest, TheUrlItsPrefixOrTheSurrogateKeys) {
  const http::Fields auth = {{"Authorization", "Bearer t"}};
  auto plain = purgeRequest(auth, url(), "", "");
  ASSERT_TRUE(plain.ok());
  ASSERT_EQ(plain->selectors.size(), 1u);
  EXPECT_EQ(plain->selectors[0].kind, storage::SelectorKind::kUrl);
  EXPECT_EQ(plain->selectors[0].value, url().urlId());
  EXPECT_EQ(plain->mode, storage::PurgeMode::kHard);
  EXPECT_FALSE(plain->wait_all);

  http::Fields prefix = auth;
  prefix.push_back({"Tern-Purge-Prefix", "1"});
  EXPECT_EQ(purgeRequest(prefix, url(), "", "")->selectors[0].kind, storage::SelectorKind::kPrefix);

  http::Fields tags = auth;
  tags.push_back({"Surrogate-Key", " a  b\tc "});
  tags.push_back({"Tern-Purge-Mode", "soft"});
  tags.push_back({"Tern-Purge-Wait", "all"});
  auto t = purgeRequest(tags, url(), "", "");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->selectors.size(), 3u);
  EXPECT_EQ(t->selectors[1].kind, storage::SelectorKind::kTag);
  EXPECT_EQ(t->selectors[1].value, "b");
  EXPECT_EQ(t->mode, storage::PurgeMode::kSoft);
  EXPECT_TRUE(t->wait_all);

  http::Fields fastly = auth;
  fastly.push_back({"Fastly-Soft-Purge", "1"});
  EXPECT_EQ(purgeRequest(fastly, url(), "", "")->mode, storage::PurgeMode::kSoft);
}

}  // namespace
}  // namespace tern::edge::cache
