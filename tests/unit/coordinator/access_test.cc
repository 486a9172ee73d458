// Credentials and scopes (coordinator/api/access.h): the tokens file, what
// each scope allows, and the refusals, each naming what was refused.

#include "coordinator/api/access.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace tern::coordinator {
namespace {

using storage::PurgeMode;
using storage::PurgeSelector;
using storage::SelectorKind;

constexpr char kTokens[] = R"(
tokens:
  - name: www-deploy
    token: www-deploy-secret-0123
    scopes: [purge]
    hosts: [www.example.com, "*.static.example.com"]
    tag_prefix: "www:"
  - name: no-tags
    token: no-tags-secret-01234567
    scopes: [purge]
    hosts: [a.example.com]
  - name: dashboard
    sha256: %DIGEST%
    scopes: [read]
  - name: edges
    token: edge-secret-0123456789
    scopes: [edge]
    edge_ids: ["edge-*", "canary"]
  - name: replicas
    token: replica-secret-01234567
    scopes: [replica]
)";

std::string tokensYaml() {
  std::string text = kTokens;
  text.replace(text.find("%DIGEST%"), 8, sha256Hex("dashboard-secret-0123"));
  return text;
}

Principal who(const AccessPolicy& p, const std::string& token) {
  auto r = p.authenticate("Bearer " + token);
  EXPECT_TRUE(r.ok()) << token << ": " << r.status().toString();
  return r.ok() ? *r : Principal{};
}

PurgeSelector sel(SelectorKind kind, std::string value) { return {kind, std::move(value)}; }

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = AccessPolicy::build({"full-access-token-0123"}, tokensYaml());
    ASSERT_TRUE(p.ok()) << p.status().toString();
    policy_ = *p;
  }
  std::shared_ptr<const AccessPolicy> policy_;
};

TEST(AccessSha256, MatchesTheKnownDigest) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(AccessTest, TokensAreKnownByTheirDigestAndNamed) {
  EXPECT_FALSE(policy_->open());
  EXPECT_EQ(policy_->size(), 6u);
  EXPECT_EQ(who(*policy_, "www-deploy-secret-0123").name, "www-deploy");
  EXPECT_EQ(who(*policy_, "dashboard-secret-0123").name, "dashboard");  // given as a digest
  Principal full = who(*policy_, "full-access-token-0123");
  EXPECT_EQ(full.name, "token:" + sha256Hex("full-access-token-0123").substr(0, 8));
  EXPECT_EQ(full.scopes, static_cast<uint32_t>(kScopeAll));
  EXPECT_EQ(policy_->firstFullToken(), "full-access-token-0123");
  // The scheme is case-insensitive; surrounding spaces do not count.
  EXPECT_TRUE(policy_->authenticate("bearer   www-deploy-secret-0123 ").ok());
  for (const char* bad : {"", "Bearer", "Bearer ", "Basic www-deploy-secret-0123",
                          "Bearer www-deploy-secret-012", "Bearer dashboard"}) {
    auto r = policy_->authenticate(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << bad;
  }
}

TEST_F(AccessTest, AHostScopedTokenPurgesOnlyItsHosts) {
  Principal w = who(*policy_, "www-deploy-secret-0123");
  EXPECT_TRUE(w.mayRead());
  EXPECT_FALSE(w.has(kScopeEdge));
  for (const auto& ok : std::vector<PurgeSelector>{
           sel(SelectorKind::kUrl, "www.example.com/a?b"),
           sel(SelectorKind::kUrl, "www.example.com:8443/a"),
           sel(SelectorKind::kPrefix, "www.example.com/static/"),
           sel(SelectorKind::kHost, "www.example.com"),
           sel(SelectorKind::kHost, "img.static.example.com"),
           sel(SelectorKind::kUrl, "a.b.static.example.com/x"),
           sel(SelectorKind::kTag, "www:product-1"),
       }) {
    EXPECT_TRUE(checkPurge(w, PurgeMode::kHard, {ok}).isOk()) << ok.value;
  }
  struct Refused {
    PurgeSelector selector;
    std::string named;
  };
  for (const auto& r : std::vector<Refused>{
           {sel(SelectorKind::kUrl, "api.example.com/a"), "api.example.com"},
           {sel(SelectorKind::kUrl, "www.example.com.evil.net/a"), "www.example.com.evil.net"},
           {sel(SelectorKind::kPrefix, "example.com/"), "example.com"},
           {sel(SelectorKind::kHost, "static.example.com"), "static.example.com"},
           {sel(SelectorKind::kAll, ""), "not everything"},
           {sel(SelectorKind::kTag, "api:product-1"), "api:product-1"},
       }) {
    // Alone, and after an allowed selector: one refused selector refuses the call.
    for (const auto& selectors : std::vector<std::vector<PurgeSelector>>{
             {r.selector}, {sel(SelectorKind::kHost, "www.example.com"), r.selector}}) {
      Status s = checkPurge(w, PurgeMode::kSoft, selectors);
      ASSERT_EQ(s.code(), StatusCode::kPermissionDenied) << r.selector.value;
      EXPECT_NE(s.message().find(r.named), std::string::npos) << s.message();
      EXPECT_NE(s.message().find("www-deploy"), std::string::npos) << s.message();
    }
  }
  // Without a tag prefix, a host-scoped token purges no tag at all.
  Status s = checkPurge(who(*policy_, "no-tags-secret-01234567"), PurgeMode::kHard,
                        {sel(SelectorKind::kTag, "anything")});
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
}

TEST_F(AccessTest, ReadEdgeAndReplicaCredentialsCannotPurge) {
  const std::vector<PurgeSelector> url = {sel(SelectorKind::kUrl, "www.example.com/a")};
  Principal reader = who(*policy_, "dashboard-secret-0123");
  EXPECT_TRUE(reader.mayRead());
  EXPECT_EQ(checkPurge(reader, PurgeMode::kSoft, url).code(), StatusCode::kPermissionDenied);

  Principal edge = who(*policy_, "edge-secret-0123456789");
  EXPECT_FALSE(edge.mayRead());
  EXPECT_EQ(checkPurge(edge, PurgeMode::kHard, url).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(checkPurge(edge, PurgeMode::kSoft, url).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(checkPurge(edge, PurgeMode::kHard, {sel(SelectorKind::kTag, "t")}).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(checkPurge(edge, PurgeMode::kSoft, {sel(SelectorKind::kAll, "")}).code(),
            StatusCode::kPermissionDenied);
  // What an origin's Cache-Group-Invalidation asks of an edge.
  EXPECT_TRUE(checkPurge(edge, PurgeMode::kSoft, {sel(SelectorKind::kTag, "t")}).isOk());

  Principal replica = who(*policy_, "replica-secret-01234567");
  EXPECT_TRUE(replica.has(kScopeReplica));
  EXPECT_FALSE(replica.mayRead());
  EXPECT_EQ(checkPurge(replica, PurgeMode::kSoft, url).code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(replica.mayJoinAs("edge-1"));
}

TEST_F(AccessTest, AnEdgeCredentialJoinsOnlyAsTheIdsItNames) {
  Principal edge = who(*policy_, "edge-secret-0123456789");
  EXPECT_TRUE(edge.mayJoinAs("edge-1"));
  EXPECT_TRUE(edge.mayJoinAs("edge-eu-7"));
  EXPECT_TRUE(edge.mayJoinAs("canary"));
  EXPECT_FALSE(edge.mayJoinAs("canary-2"));
  EXPECT_FALSE(edge.mayJoinAs("edg"));
  EXPECT_FALSE(edge.mayJoinAs("other"));
  EXPECT_FALSE(who(*policy_, "www-deploy-secret-0123").mayJoinAs("edge-1"));
  EXPECT_TRUE(who(*policy_, "full-access-token-0123").mayJoinAs("anything"));
}

// Selectors as users write them, normalized as the coordinator does before
// checking (case, schemes, default ports, a prefix without a path, IPv6).
TEST_F(AccessTest, ScopesHoldForSelectorsAsUsersWriteThem) {
  Principal w = who(*policy_, "www-deploy-secret-0123");
  auto check = [&](SelectorKind kind, const std::string& value) {
    auto sel = storage::normalizeSelector(kind, value);
    EXPECT_TRUE(sel.ok()) << value << ": " << sel.status().toString();
    return sel.ok() ? checkPurge(w, PurgeMode::kHard, {*sel}) : sel.status();
  };
  EXPECT_TRUE(check(SelectorKind::kUrl, "HTTPS://WWW.Example.COM:443/A").isOk());
  EXPECT_TRUE(check(SelectorKind::kUrl, "http://www.example.com").isOk());
  EXPECT_TRUE(check(SelectorKind::kPrefix, "www.example.com").isOk());
  EXPECT_TRUE(check(SelectorKind::kHost, "WWW.EXAMPLE.COM").isOk());
  EXPECT_TRUE(check(SelectorKind::kPrefix, "https://img.static.example.com/").isOk());
  for (const char* url :
       {"https://www.example.com.evil.net/", "https://evil.net/www.example.com/", "https://[::1]/a",
        "https://static.example.com/a", "https://www.example.co/a", "https://xwww.example.com/a"}) {
    EXPECT_EQ(check(SelectorKind::kUrl, url).code(), StatusCode::kPermissionDenied) << url;
    EXPECT_EQ(check(SelectorKind::kPrefix, url).code(), StatusCode::kPermissionDenied) << url;
  }
  EXPECT_EQ(check(SelectorKind::kPrefix, "www.example.com.evil.net").code(),
            StatusCode::kPermissionDenied);
}

TEST(AccessOpen, WithoutCredentialsEveryoneMayDoEverything) {
  auto p = AccessPolicy::build({}, "");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p)->open());
  auto anyone = (*p)->authenticate("");
  ASSERT_TRUE(anyone.ok());
  EXPECT_EQ(anyone->name, "anonymous");
  EXPECT_TRUE(checkPurge(*anyone, PurgeMode::kHard, {{SelectorKind::kAll, ""}}).isOk());
}

TEST(AccessFile, BadEntriesAreRefusedNamingTheEntry) {
  struct Case {
    const char* yaml;
    const char* named;
  };
  for (const auto& c : std::vector<Case>{
           {"tokens: [", "tokens file"},
           {"tokens: {a: 1}", "list under 'tokens'"},
           {"tokens:\n  - scopes: [purge]\n    token: abcdefghijklmnopq", "'name' is required"},
           {"tokens:\n  - name: a\n    scopes: [purge]", "'sha256'"},
           {"tokens:\n  - name: a\n    sha256: abc\n    scopes: [purge]", "64 hex digits"},
           {"tokens:\n  - name: a\n    token: short\n    scopes: [purge]", "16 characters"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [write]",
            "unknown scope 'write'"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: []",
            "'scopes' is required"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [read]\n"
            "    hosts: [a.com]",
            "'hosts' restricts the purge scope"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [purge]\n"
            "    hosts: [\"*\"]",
            "host '*'"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [purge]\n"
            "    hosts: [\"a.*.com\"]",
            "host 'a.*.com'"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [purge]\n"
            "    tag_prefix: x",
            "'tag_prefix'"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [purge]\n"
            "    edge_ids: [e]",
            "'edge_ids' restricts the edge scope"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [read]\n"
            "    colour: red",
            "unknown key 'colour'"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [read]\n"
            "  - name: a\n    token: bbcdefghijklmnopq\n    scopes: [read]",
            "entry 2 (a): a second token with this name"},
           {"tokens:\n  - name: a\n    token: abcdefghijklmnopq\n    scopes: [read]\n"
            "  - name: b\n    token: abcdefghijklmnopq\n    scopes: [purge]",
            "entry 2 (b): the same token"},
       }) {
    auto p = AccessPolicy::build({}, c.yaml);
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.named), std::string::npos)
        << c.yaml << "\n-> " << p.status().message();
  }
}

TEST(AccessFile, LoadsEveryConfiguredSourceAndReportsAFileThatCannotBeRead) {
  testing::TempDir dir;
  const std::string lines = dir.sub("tokens.txt"), yaml = dir.sub("tokens.yaml");
  std::ofstream(lines) << "# full access\nline-token-0123456789\n\n";
  std::ofstream(yaml)
      << "tokens:\n  - name: r\n    token: reader-token-0123456\n    scopes: [read]\n";
  auto p = loadAccessPolicy({{"flag-token-0123456789"}, lines, yaml});
  ASSERT_TRUE(p.ok()) << p.status().toString();
  EXPECT_EQ((*p)->size(), 3u);
  EXPECT_EQ((*p)->firstFullToken(), "flag-token-0123456789");
  EXPECT_TRUE((*p)->authenticate("Bearer line-token-0123456789")->has(kScopePurge));
  EXPECT_EQ((*p)->authenticate("Bearer reader-token-0123456")->name, "r");

  auto missing = loadAccessPolicy({{}, "", dir.sub("missing.yaml")});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.yaml"), std::string::npos);

  // Files that name no credential never open the APIs (an empty file, or
  // one caught half-written while it is replaced).
  const std::string empty = dir.sub("empty.yaml"), no_tokens = dir.sub("none.txt");
  std::ofstream(empty) << "";
  std::ofstream(no_tokens) << "# nothing yet\n";
  for (const AccessSources& sources :
       std::vector<AccessSources>{{{}, "", empty}, {{}, no_tokens, ""}, {{}, no_tokens, empty}}) {
    auto p2 = loadAccessPolicy(sources);
    ASSERT_FALSE(p2.ok());
    EXPECT_TRUE(p2.status().message().find("refusing to leave the APIs open") !=
                    std::string::npos ||
                p2.status().message().find("the tokens file is empty") != std::string::npos)
        << p2.status().toString();
  }
  // An empty file is refused even next to a full-access token.
  EXPECT_FALSE(loadAccessPolicy({{"flag-token-0123456789"}, "", empty}).ok());
  std::ofstream(empty) << "tokens: []\n";
  EXPECT_FALSE(loadAccessPolicy({{}, "", empty}).ok()) << "no credential at all: not open";
  EXPECT_TRUE(loadAccessPolicy({{"flag-token-0123456789"}, "", empty}).ok());
  // Configured nowhere: open, as documented.
  EXPECT_TRUE((*loadAccessPolicy({}))->open());

  // Access swaps the policy whole: a caller holds either the old or the new.
  Access access(*p);
  auto only_reader = loadAccessPolicy({{}, "", yaml});
  ASSERT_TRUE(only_reader.ok());
  access.replace(*only_reader);
  EXPECT_FALSE(access.authenticate("Bearer flag-token-0123456789").ok());
  EXPECT_TRUE(access.authenticate("Bearer reader-token-0123456").ok());
}

}  // namespace
}  // namespace tern::coordinator
