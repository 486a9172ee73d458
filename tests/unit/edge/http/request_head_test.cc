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

}  // namespace
}  // namespace tern::edge::http
