#include "edge/http/request_head.h"

#include <gtest/gtest.h>

namespace tern::edge::http {
namespace {

RequestHead headOf(std::vector<std::pair<std::string_view, std::string_view>> fields,
                   unsigned version = 11, bool chunked = false) {
  RequestHead h;
  h.version = version;
  h.chunked = chunked;
  h.fields = std::move(fields);
  return h;
}

int statusOf(const RequestHead& head, size_t max_fields = 100) {
  Fields out;
  auto bad = checkRequestHead(head, max_fields, &out);
  return bad ? bad->status : 0;
}

TEST(RequestHead, AcceptsAPlainRequestAndKeepsItsFields) {
  Fields out;
  auto bad = checkRequestHead(headOf({{"Host", "a"}, {"Accept", "*/*"}}), 100, &out);
  ASSERT_FALSE(bad.has_value()) << bad->reason;
  EXPECT_EQ(out, (Fields{{"Host", "a"}, {"Accept", "*/*"}}));
}

// RFC 9112 6.3: framing that two parsers could read differently.
TEST(RequestHead, RefusesAmbiguousFraming) {
  EXPECT_EQ(statusOf(headOf({{"Host", "a"}, {"Transfer-Encoding", "chunked"}}, 11, true)), 0);
  EXPECT_EQ(statusOf(headOf({{"Host", "a"}, {"Transfer-Encoding", "gzip"}})), 400);
  EXPECT_EQ(
      statusOf(headOf({{"Host", "a"}, {"transfer-encoding", "chunked"}, {"Content-Length", "3"}},
                      11, true)),
      400);
}

TEST(RequestHead, VersionFieldCountLineBreaksAndHost) {
  EXPECT_EQ(statusOf(headOf({{"Host", "a"}}, 20)), 505);
  EXPECT_EQ(statusOf(headOf({{"Host", "a"}, {"A", "1"}, {"B", "2"}}), 2), 431);
  EXPECT_EQ(statusOf(headOf({{"Host", "a"}, {"X", "a\r\nInjected: 1"}})), 400);
  EXPECT_EQ(statusOf(headOf({{"Host", "a"}, {"X", "a\nb"}})), 400);
  EXPECT_EQ(statusOf(headOf({})), 400) << "HTTP/1.1 without Host";
  EXPECT_EQ(statusOf(headOf({{"Host", "a"}, {"HOST", "b"}})), 400) << "two Hosts";
  // HTTP/1.0 without Host: an empty one (the origin's default host).
  Fields out;
  ASSERT_FALSE(checkRequestHead(headOf({{"Accept", "*/*"}}, 10), 100, &out).has_value());
  EXPECT_EQ(out.back(), (Field{"Host", ""}));
}

Http2RequestHead h2Of(std::string_view authority, bool has_authority,
                      std::vector<std::pair<std::string_view, std::string_view>> fields) {
  Http2RequestHead h;
  h.authority = authority;
  h.has_authority = has_authority;
  h.fields = std::move(fields);
  return h;
}

TEST(Http2RequestHead, AuthorityBecomesHostAndCookieCrumbsAreJoined) {
  Fields out;
  auto bad = checkHttp2RequestHead(
      h2Of("example.com", true, {{"accept", "*/*"}, {"cookie", "a=1"}, {"cookie", "b=2"}}), 100,
      &out);
  ASSERT_FALSE(bad.has_value()) << bad->reason;
  EXPECT_EQ(out, (Fields{{"accept", "*/*"}, {"host", "example.com"}, {"cookie", "a=1; b=2"}}));
}

TEST(Http2RequestHead, HostMustAgreeWithAuthority) {
  Fields out;
  // The same authority in both (case aside) is accepted; another is refused.
  EXPECT_FALSE(checkHttp2RequestHead(h2Of("a.test", true, {{"host", "A.test"}}), 100, &out));
  auto bad = checkHttp2RequestHead(h2Of("a.test", true, {{"host", "b.test"}}), 100, &out);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->reason.find(":authority"), std::string::npos);
  // Without :authority the Host field stands for it (RFC 9113 8.3.1).
  ASSERT_FALSE(checkHttp2RequestHead(h2Of("", false, {{"host", "c.test"}}), 100, &out));
  EXPECT_EQ(findField(out, "host"), "c.test");
}

TEST(Http2RequestHead, RefusesMissingAuthorityTwoHostsLineBreaksAndTooManyFields) {
  Fields out;
  EXPECT_EQ(checkHttp2RequestHead(h2Of("", false, {{"accept", "*/*"}}), 100, &out)->status, 400);
  EXPECT_EQ(checkHttp2RequestHead(h2Of("", true, {}), 100, &out)->status, 400);
  EXPECT_EQ(
      checkHttp2RequestHead(h2Of("a", true, {{"host", "a"}, {"host", "a"}}), 100, &out)->status,
      400);
  EXPECT_EQ(checkHttp2RequestHead(h2Of("a", true, {{"x", "1\r\nevil: 1"}}), 100, &out)->status,
            400);
  EXPECT_EQ(checkHttp2RequestHead(h2Of("a", true, {{"x", "1"}, {"y", "2"}}), 1, &out)->status, 431);
}

// A connection's next request is written over the field list of the last:
// what it had beyond the new fields is gone, the room of the strings kept.
TEST(RequestHead, WritesOverTheLastRequestsFieldsKeepingTheirRoom) {
  Fields out;
  const std::string long_value(64, 'v');
  ASSERT_FALSE(checkRequestHead(
      headOf({{"Host", "a.test"}, {"X-Long", long_value}, {"Accept", "*/*"}}), 100, &out));
  ASSERT_EQ(out.size(), 3u);
  const char* room = out[1].value.data();
  ASSERT_FALSE(checkRequestHead(headOf({{"Host", "b.test"}, {"X-Short", "s"}}), 100, &out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "Host");
  EXPECT_EQ(out[0].value, "b.test");
  EXPECT_EQ(out[1].name, "X-Short");
  EXPECT_EQ(out[1].value, "s");
  EXPECT_EQ(out[1].value.data(), room);  // written where the long value was
  EXPECT_FALSE(findField(out, "accept"));
  // And growing again past what it held.
  ASSERT_FALSE(checkRequestHead(
      headOf({{"Host", "c.test"}, {"A", "1"}, {"B", "2"}, {"C", "3"}, {"D", "4"}}), 100, &out));
  EXPECT_EQ(out.size(), 5u);
  EXPECT_EQ(findField(out, "d"), "4");
}

}  // namespace
}  // namespace tern::edge::http
