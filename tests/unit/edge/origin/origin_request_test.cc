#include "edge/origin/origin_request.h"

#include <gtest/gtest.h>

namespace tern::edge::origin {
namespace {

std::string field(const OriginRequest& r, std::string_view name) {
  auto v = http::findField(r.headers, name);
  return v ? std::string(*v) : "<none>";
}

TEST(OriginRequest, ForwardsAsAProxyDoes) {
  const http::Fields in = {{"Host", " example.com "},
                           {"Connection", "keep-alive, x-hop"},
                           {"X-Hop", "1"},
                           {"Keep-Alive", "timeout=5"},
                           {"Accept", "*/*"},
                           {"X-Forwarded-For", "192.0.2.1"},
                           {"Via", "1.1 cdn"},
                           {"Tern-Debug", "secret"},
                           {"If-None-Match", "\"c\""}};
  const std::string body = "payload";
  ClientRequest c{"POST", "/a?b", &in, &body, "10.0.0.7", "https", false};
  OriginRequest o = forwardToOrigin(c, {});
  EXPECT_EQ(o.method, "POST");
  EXPECT_EQ(o.target, "/a?b");
  EXPECT_EQ(o.authority, "example.com");
  EXPECT_EQ(o.body, "payload");
  EXPECT_EQ(field(o, "host"), "<none>");  // the client sets it from the authority
  EXPECT_EQ(field(o, "connection"), "<none>");
  EXPECT_EQ(field(o, "x-hop"), "<none>");  // named by Connection: hop-by-hop
  EXPECT_EQ(field(o, "keep-alive"), "<none>");
  EXPECT_EQ(field(o, "tern-debug"), "<none>");
  EXPECT_EQ(field(o, "accept"), "*/*");
  EXPECT_EQ(field(o, "if-none-match"), "\"c\"");  // the client's own, on a pass
  EXPECT_EQ(field(o, "x-forwarded-for"), "192.0.2.1, 10.0.0.7");
  EXPECT_EQ(field(o, "x-forwarded-proto"), "https");
  EXPECT_EQ(field(o, "via"), "1.1 cdn, 1.1 tern");
}

TEST(OriginRequest, AFillIsAPlainGetWithTheStoredValidatorsAndViaNamesHttp2) {
  const http::Fields in = {{"Range", "bytes=0-1"},
                           {"If-None-Match", "\"client\""},
                           {"If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT"}};
  const std::string body = "ignored";
  ClientRequest c{"HEAD", "http://example.com/x", &in, &body, "10.0.0.7", "http", true};
  ForwardAs as;
  as.keep_method = false;
  as.origin_form = "/x";
  as.default_authority = "example.com";
  as.validators = {{"If-None-Match", "\"stored\""}};
  OriginRequest o = forwardToOrigin(c, as);
  EXPECT_EQ(o.method, "GET");
  EXPECT_EQ(o.target, "/x");
  EXPECT_EQ(o.authority, "example.com");
  EXPECT_EQ(o.body, "");
  EXPECT_EQ(field(o, "range"), "<none>");
  EXPECT_EQ(field(o, "if-modified-since"), "<none>");
  EXPECT_EQ(http::combinedField(o.headers, "if-none-match"), "\"stored\"");
  EXPECT_EQ(field(o, "via"), "2 tern");
}

}  // namespace
}  // namespace tern::edge::origin
