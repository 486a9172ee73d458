// tern-edge end to end: a real tern-edge process, a real origin on loopback,
// real RocksDB on disk. One test (or more) per behaviour of the edge issue.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "edge/http/date.h"
#include "tests/support/coordinator_process.h"
#include "tests/support/edge_process.h"
#include "tests/support/etcd_cluster.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_origin.h"
#include "tests/support/wait.h"

namespace tern::testing {
namespace {

// The value of one series on a /metrics page (-1: not there).
double metricOf(const std::string& page, const std::string& series);

class EdgeTest : public ::testing::Test {
 protected:
  void SetUp() override { startEdge(); }
  void startEdge(std::vector<std::string> flags = {}) {
    edge_.reset();
    edge_ = std::make_unique<EdgeProcess>(dir_.sub("cache"), origin_.url(), std::move(flags));
    ASSERT_TRUE(edge_->ok()) << edge_->log();
  }
  // An edge with a TLS listener too, on a self-signed certificate made here.
  void startEdgeWithTls() {
    const std::string cert = dir_.sub("cert.pem"), key = dir_.sub("key.pem");
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout " + key +
        " -out " + cert + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    startEdge({"--tls.listen", "127.0.0.1:0", "--tls.cert", cert, "--tls.key", key});
  }
  HttpResponse get(const std::string& target, const HeaderList& h = {}) {
    return httpGet(edge_->port(), target, h);
  }
  static OriginResponse resp(std::string body, HeaderList headers) {
    OriginResponse r;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return r;
  }

  TempDir dir_;
  TestOrigin origin_;
  std::unique_ptr<EdgeProcess> edge_;
};

TEST_F(EdgeTest, MissThenHitWithCacheStatusAndAge) {
  origin_.set("/a",
              resp("hello", {{"Cache-Control", "max-age=60"}, {"Content-Type", "text/plain"}}));
  auto r1 = get("/a");
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(r1.body, "hello");
  EXPECT_NE(r1.header("cache-status").find("fwd=uri-miss"), std::string::npos)
      << r1.header("cache-status");
  EXPECT_NE(r1.header("cache-status").find("stored"), std::string::npos);
  // The store completes right after the response: allow it a moment.
  HttpResponse r2;
  for (int i = 0; i < 50; ++i) {
    r2 = get("/a");
    if (r2.header("cache-status").find("hit") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(r2.body, "hello");
  EXPECT_NE(r2.header("cache-status").find("tern; hit; ttl="), std::string::npos)
      << r2.header("cache-status");
  EXPECT_FALSE(r2.header("age").empty());
  EXPECT_NE(r2.header("via").find("tern"), std::string::npos);
  EXPECT_EQ(origin_.count("/a"), 1);
  // Forwarding headers reached the origin.
  auto reqs = origin_.requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs[0].headers["x-forwarded-for"], "127.0.0.1");
  EXPECT_EQ(reqs[0].headers["x-forwarded-proto"], "http");
  EXPECT_NE(reqs[0].headers["via"].find("tern"), std::string::npos);
}

TEST_F(EdgeTest, NoStorePrivateAndSetCookieAreNotCached) {
  origin_.set("/ns", resp("x", {{"Cache-Control", "no-store"}}));
  origin_.set("/priv", resp("x", {{"Cache-Control", "private, max-age=60"}}));
  origin_.set("/cookie", resp("x", {{"Cache-Control", "max-age=60"}, {"Set-Cookie", "a=b"}}));
  for (const char* p : {"/ns", "/priv", "/cookie"}) {
    // The response says whether it is being stored; nothing is stored later.
    auto first = get(p);
    EXPECT_EQ(first.header("cache-status").find("stored"), std::string::npos)
        << p << ": " << first.header("cache-status");
    auto r = get(p);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("cache-status").find("hit"), std::string::npos) << p;
    EXPECT_EQ(origin_.count(p), 2) << p;
  }
  // Set-Cookie still reaches the client that caused it.
  EXPECT_EQ(get("/cookie").header("set-cookie"), "a=b");
}

TEST_F(EdgeTest, RevalidatesWithEtagAndMerges304) {
  origin_.set(
      "/r", resp("body-v1", {{"Cache-Control", "max-age=1"}, {"ETag", "\"v1\""}, {"X-Gen", "1"}}));
  get("/r");
  waitForHit([&] { return get("/r"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  origin_.set(
      "/r", resp("body-v1", {{"Cache-Control", "max-age=60"}, {"ETag", "\"v1\""}, {"X-Gen", "2"}}));
  origin_.reset();
  auto r = get("/r");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "body-v1");
  EXPECT_NE(r.header("cache-status").find("fwd=stale; fwd-status=304"), std::string::npos)
      << r.header("cache-status");
  EXPECT_EQ(r.header("x-gen"), "2");  // headers of the 304 merged
  auto reqs = origin_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers["if-none-match"], "\"v1\"");
  // The refreshed entry is fresh for 60 s now.
  auto again = waitForHit([&] { return get("/r"); });
  EXPECT_NE(again.header("cache-status").find("hit"), std::string::npos);
  EXPECT_EQ(again.header("x-gen"), "2");
}

TEST_F(EdgeTest, ClientConditionalsAnsweredFromCache) {
  origin_.set("/c", resp("content", {{"Cache-Control", "max-age=60"},
                                     {"ETag", "\"abc\""},
                                     {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}}));
  get("/c");
  waitForHit([&] { return get("/c"); });
  auto r = get("/c", {{"If-None-Match", "W/\"abc\""}});
  EXPECT_EQ(r.status, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.header("etag"), "\"abc\"");
  EXPECT_EQ(get("/c", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}).status, 304);
  EXPECT_EQ(get("/c", {{"If-None-Match", "\"zzz\""}}).status, 200);
  EXPECT_EQ(origin_.count("/c"), 1);
}

TEST_F(EdgeTest, HeadAndRangeFromCache) {
  std::string body = "0123456789abcdefghij";
  origin_.set("/rng", resp(body, {{"Cache-Control", "max-age=60"}, {"ETag", "\"r\""}}));
  get("/rng");
  waitForHit([&] { return get("/rng"); });
  auto head = httpRequest(edge_->port(), "HEAD", "/rng");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), "20");
  auto part = get("/rng", {{"Range", "bytes=5-9"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "56789");
  EXPECT_EQ(part.header("content-range"), "bytes 5-9/20");
  auto suffix = get("/rng", {{"Range", "bytes=-3"}});
  EXPECT_EQ(suffix.body, "hij");
  auto bad = get("/rng", {{"Range", "bytes=50-"}});
  EXPECT_EQ(bad.status, 416);
  EXPECT_EQ(bad.header("content-range"), "bytes */20");
  EXPECT_EQ(origin_.count("/rng"), 1);
}

TEST_F(EdgeTest, VaryKeepsVariantsApart) {
  origin_.set("/v",
              resp("variant", {{"Cache-Control", "max-age=60"}, {"Vary", "Accept-Language"}}));
  get("/v", {{"Accept-Language", "en"}});
  waitForHit([&] { return get("/v", {{"Accept-Language", "en"}}); });
  int after_en = origin_.count("/v");
  EXPECT_EQ(after_en, 1) << edge_->log();  // the stored variant is found, never fetched twice
  auto fr = get("/v", {{"Accept-Language", "fr"}});
  EXPECT_EQ(fr.header("cache-status").find("hit"), std::string::npos);
  EXPECT_NE(fr.header("cache-status").find("fwd=vary-miss"), std::string::npos)
      << fr.header("cache-status");
  EXPECT_EQ(origin_.count("/v"), after_en + 1);
  waitForHit([&] { return get("/v", {{"Accept-Language", "fr"}}); });
  int settled = origin_.count("/v");
  for (const char* lang : {"en", "fr", "en"}) {
    EXPECT_NE(get("/v", {{"Accept-Language", lang}}).header("cache-status").find("hit"),
              std::string::npos)
        << lang;
  }
  EXPECT_EQ(origin_.count("/v"), settled);
  // Accept-Encoding spellings of the same set of codings share a variant.
  origin_.set("/ae", resp("enc", {{"Cache-Control", "max-age=60"}, {"Vary", "Accept-Encoding"}}));
  get("/ae", {{"Accept-Encoding", "gzip, deflate, br"}});
  waitForHit([&] { return get("/ae", {{"Accept-Encoding", "gzip, deflate, br"}}); });
  int ae = origin_.count("/ae");
  EXPECT_NE(get("/ae", {{"Accept-Encoding", "br;q=1.0, deflate,gzip"}})
                .header("cache-status")
                .find("hit"),
            std::string::npos);
  EXPECT_EQ(origin_.count("/ae"), ae);
}

TEST_F(EdgeTest, CollapsedWaitersShareOnlyTheirOwnVariant) {
  OriginResponse slow = resp("v", {{"Cache-Control", "max-age=60"}, {"Vary", "Accept-Language"}});
  slow.delay_ms = 400;
  origin_.set("/cv", slow);
  HttpResponse en1, en2, fr;
  std::thread a([&] { en1 = get("/cv", {{"Accept-Language", "en"}}); });
  // The first request is at the origin before the others are sent.
  EXPECT_TRUE(eventually([&] { return origin_.count("/cv") == 1; }));
  std::thread b([&] { en2 = get("/cv", {{"Accept-Language", "en"}}); });
  std::thread c([&] { fr = get("/cv", {{"Accept-Language", "fr"}}); });
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(en1.status, 200);
  EXPECT_EQ(en2.status, 200);
  EXPECT_EQ(fr.status, 200);
  EXPECT_NE(en2.header("cache-status").find("collapsed"), std::string::npos)
      << en2.header("cache-status");
  EXPECT_EQ(fr.header("cache-status").find("collapsed"), std::string::npos)
      << fr.header("cache-status");
  EXPECT_EQ(origin_.count("/cv"), 2);  // en once (shared by two clients), fr on its own
}

TEST_F(EdgeTest, SurrogateKeyHeadersAreStripped) {
  origin_.set(
      "/sk",
      resp("k", {{"Cache-Control", "max-age=60"}, {"Surrogate-Key", "a b"}, {"Cache-Tag", "c"}}));
  auto r = get("/sk");
  EXPECT_TRUE(r.header("surrogate-key").empty());
  EXPECT_TRUE(r.header("cache-tag").empty());
  auto hit = waitForHit([&] { return get("/sk"); });
  EXPECT_TRUE(hit.header("surrogate-key").empty());
}

TEST_F(EdgeTest, UnsafeMethodInvalidates) {
  origin_.set("/inv", resp("v1", {{"Cache-Control", "max-age=60"}}));
  get("/inv");
  waitForHit([&] { return get("/inv"); });
  OriginResponse created;
  created.status = 201;
  created.body = "ok";
  origin_.set("/inv", created);
  auto post = httpRequest(edge_->port(), "POST", "/inv", {}, "data");
  EXPECT_EQ(post.status, 201);
  origin_.set("/inv", resp("v2", {{"Cache-Control", "max-age=60"}}));
  HttpResponse r;
  for (int i = 0; i < 50; ++i) {
    r = get("/inv");
    if (r.body == "v2") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(r.body, "v2");
  // Unknown extension methods are forwarded too.
  OriginResponse ok;
  ok.body = "purged?";
  origin_.set("/ext", ok);
  EXPECT_EQ(httpRequest(edge_->port(), "BREW", "/ext").status, 200);
}

TEST_F(EdgeTest, CollapsesFiveHundredConcurrentMisses) {
  OriginResponse slow = resp(std::string(10000, 'c'), {{"Cache-Control", "max-age=60"}});
  slow.delay_ms = 500;
  origin_.set("/hot", slow);
  auto responses = concurrentGets(edge_->port(), "/hot", 500);
  int ok = 0, collapsed = 0;
  for (const auto& r : responses) {
    if (r.status == 200 && r.body.size() == 10000) ++ok;
    if (r.header("cache-status").find("collapsed") != std::string::npos) ++collapsed;
  }
  EXPECT_EQ(ok, 500);
  EXPECT_EQ(origin_.count("/hot"), 1);
  EXPECT_GT(collapsed, 0);
}

TEST_F(EdgeTest, UncacheableResponseReleasesWaitersToGoAlone) {
  OriginResponse slow = resp("private", {{"Cache-Control", "private"}});
  slow.delay_ms = 300;
  origin_.set("/p", slow);
  auto responses = concurrentGets(edge_->port(), "/p", 5);
  for (const auto& r : responses) EXPECT_EQ(r.status, 200);
  EXPECT_EQ(origin_.count("/p"), 5);
}

TEST_F(EdgeTest, DeadAndSlowOrigins) {
  // Slow: read timeout.
  startEdge({"--origin_read_timeout", "300ms"});
  OriginResponse slow = resp("late", {});
  slow.delay_ms = 1500;
  origin_.set("/slow", slow);
  EXPECT_EQ(get("/slow").status, 504);
  // Dead: nothing listens there.
  auto dead = std::make_unique<EdgeProcess>(dir_.sub("cache2"), "http://127.0.0.1:1");
  ASSERT_TRUE(dead->ok());
  auto r = httpGet(dead->port(), "/x");
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.header("cache-status").find("detail="), std::string::npos);
}

TEST_F(EdgeTest, StaleIfErrorServesStoredResponse) {
  origin_.set("/sie", resp("good", {{"Cache-Control", "max-age=1, stale-if-error=60"}}));
  get("/sie");
  waitForHit([&] { return get("/sie"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  OriginResponse broken;
  broken.status = 503;
  broken.body = "down";
  origin_.set("/sie", broken);
  auto r = get("/sie");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "good");
  EXPECT_NE(r.header("cache-status").find("stale-if-error"), std::string::npos)
      << r.header("cache-status");
}

TEST_F(EdgeTest, StaleWhileRevalidateRefreshesInBackground) {
  origin_.set("/swr", resp("old", {{"Cache-Control", "max-age=1, stale-while-revalidate=30"},
                                   {"ETag", "\"1\""}}));
  get("/swr");
  waitForHit([&] { return get("/swr"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  origin_.set("/swr", resp("new", {{"Cache-Control", "max-age=60"}, {"ETag", "\"2\""}}));
  auto r = get("/swr");
  EXPECT_EQ(r.body, "old");  // served stale at once
  EXPECT_NE(r.header("cache-status").find("stale-while-revalidate"), std::string::npos);
  HttpResponse later;
  for (int i = 0; i < 100; ++i) {
    later = get("/swr");
    if (later.body == "new") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(later.body, "new");
}

TEST_F(EdgeTest, BadInputGetsClearErrorsAndTheEdgeStaysUp) {
  // Conflicting framing (request smuggling).
  std::string smuggle =
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n";
  EXPECT_NE(rawExchange(edge_->port(), smuggle).find("HTTP/1.1 400"), std::string::npos);
  std::string two_lengths =
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde";
  EXPECT_NE(rawExchange(edge_->port(), two_lengths).find("HTTP/1.1 400"), std::string::npos);
  std::string bad_chunk =
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
  EXPECT_NE(rawExchange(edge_->port(), bad_chunk).find("HTTP/1.1 400"), std::string::npos);
  // Chunk extensions: a short one is accepted (and ignored), a long one
  // refused, and a chunk header without an end cannot fill memory.
  auto chunked = [](const std::string& ext) {
    return "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: "
           "close\r\n\r\n3" +
           ext + "\r\nabc\r\n0\r\n\r\n";
  };
  std::string short_ext = rawExchange(edge_->port(), chunked(";a=b;c=\"d\""));
  EXPECT_EQ(short_ext.find("HTTP/1.1 400"), std::string::npos) << short_ext;
  std::string long_ext = rawExchange(edge_->port(), chunked(";x=" + std::string(5000, 'y')));
  EXPECT_NE(long_ext.find("HTTP/1.1 400"), std::string::npos) << long_ext.substr(0, 200);
  EXPECT_NE(long_ext.find("chunk extension too long"), std::string::npos)
      << long_ext.substr(0, 300);
  std::string endless = rawExchange(
      edge_->port(), "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=" +
                         std::string(512 * 1024, 'y'));
  EXPECT_NE(endless.find("HTTP/1.1 400"), std::string::npos) << endless.substr(0, 200);
  std::string te_gzip = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n";
  EXPECT_NE(rawExchange(edge_->port(), te_gzip).find("HTTP/1.1 400"), std::string::npos);
  // obs-fold (RFC 9112 5.2 allows rejecting it or replacing it with SP):
  // replaced with spaces, so the origin gets one line.
  std::string obs_fold =
      "GET /fold HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\nConnection: close\r\n\r\n";
  std::string folded = rawExchange(edge_->port(), obs_fold);
  EXPECT_EQ(folded.rfind("HTTP/1.1 404", 0), 0u) << folded;  // the origin's answer
  int seen = 0;
  for (const auto& r : origin_.requests()) {
    if (r.target != "/fold") continue;
    ++seen;
    const std::string& v = r.headers.at("x-a");
    EXPECT_EQ(v.find_first_of("\r\n"), std::string::npos) << v;
    EXPECT_EQ(v.front(), 'b');
    EXPECT_EQ(v.back(), 'c');
    EXPECT_EQ(v.find_first_not_of(' ', 1), v.size() - 1) << "only spaces in between: " << v;
  }
  EXPECT_EQ(seen, 1);
  std::string no_host = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_NE(rawExchange(edge_->port(), no_host).find("HTTP/1.1 400"), std::string::npos);
  std::string huge =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(64 * 1024, 'x') + "\r\n\r\n";
  EXPECT_NE(rawExchange(edge_->port(), huge).find("HTTP/1.1 431"), std::string::npos);
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 150; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  EXPECT_NE(rawExchange(edge_->port(), many).find("HTTP/1.1 431"), std::string::npos);
  std::string garbage = "\x16\x03\x01 not http at all\r\n\r\n";
  EXPECT_NE(rawExchange(edge_->port(), garbage).find("HTTP/1.1 400"), std::string::npos);
  // Still serving.
  origin_.set("/alive", resp("yes", {}));
  EXPECT_EQ(get("/alive").body, "yes");
  auto metrics = httpGet(edge_->adminPort(), "/metrics");
  EXPECT_NE(metrics.body.find("tern_edge_bad_requests_total"), std::string::npos);
}

TEST_F(EdgeTest, SlowClientIsTimedOut) {
  startEdge({"--server.header_timeout", "300ms"});
  auto start = std::chrono::steady_clock::now();
  std::string out = rawExchange(edge_->port(), "GET / HTTP/1.1\r\nHost: a\r\n", 5000);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(out.empty()) << out;  // closed: the request never completed
  EXPECT_LT(took, std::chrono::seconds(3));
  bool logged = false;  // the line follows the close by a moment
  for (int i = 0; i < 200 && !logged; ++i) {
    logged = edge_->log().find("client timed out") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(logged);
  origin_.set("/after", resp("up", {}));
  EXPECT_EQ(get("/after").body, "up");
}

// A memory-tier body of at least cache.sendfile_min_size (256 KiB) is kept in
// a sealed memfd and sent with sendfile(2) over plain HTTP/1.1: whole, in
// ranges, back to back on one connection; over TLS it is read as bytes.
TEST_F(EdgeTest, LargeMemoryBodiesAreSentFromSealedFiles) {
  ASSERT_NO_FATAL_FAILURE(startEdgeWithTls());
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + i / 4096) % 251);
  origin_.set("/big", resp(big, {{"Cache-Control", "max-age=60"}}));
  origin_.set("/small", resp("small", {{"Cache-Control", "max-age=60"}}));
  EXPECT_EQ(get("/big").body, big);
  auto hit = waitForHit([&] { return get("/big"); });
  EXPECT_EQ(hit.body, big);
  EXPECT_EQ(hit.header("content-length"), std::to_string(big.size()));
  const int fetched = origin_.count("/big");  // (requests before the store finished: misses)
  // The body is a file of the edge's now.
  bool memfd = false;
  const std::string fds = "/proc/" + std::to_string(edge_->process().pid()) + "/fd";
  for (const auto& e : std::filesystem::directory_iterator(fds)) {
    std::error_code ec;
    memfd |= std::filesystem::read_symlink(e.path(), ec).string().find("memfd:tern-body") !=
             std::string::npos;
  }
  EXPECT_TRUE(memfd);
  // ... and it went out with sendfile.
  EXPECT_GE(
      metricOf(httpGet(edge_->adminPort(), "/metrics").body, "tern_edge_sendfile_bytes_total"),
      static_cast<double>(big.size()));

  auto part = get("/big", {{"Range", "bytes=1000000-1999999"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, big.substr(1000000, 1000000));
  EXPECT_EQ(part.header("content-range"), "bytes 1000000-1999999/" + std::to_string(big.size()));
  EXPECT_EQ(get("/big", {{"Range", "bytes=-10"}}).body, big.substr(big.size() - 10));
  EXPECT_EQ(get("/big", {{"Range", "bytes=3145700-"}}).body, big.substr(3145700));

  get("/small");
  waitForHit([&] { return get("/small"); });
  // Back to back on one connection: each response whole, in order.
  std::string out = rawExchange(edge_->port(),
                                "GET /big HTTP/1.1\r\nHost: test.example\r\n\r\n"
                                "GET /small HTTP/1.1\r\nHost: test.example\r\n\r\n"
                                "GET /big HTTP/1.1\r\nHost: test.example\r\n"
                                "Connection: close\r\n\r\n",
                                10000);
  size_t at = 0;
  std::string small = "small";
  for (const std::string* want : {&big, &small, &big}) {
    size_t head_end = out.find("\r\n\r\n", at);
    ASSERT_NE(head_end, std::string::npos) << "response missing at " << at;
    const std::string& expected = *want;
    EXPECT_EQ(out.substr(head_end + 4, expected.size()), expected);
    at = head_end + 4 + expected.size();
  }
  EXPECT_EQ(at, out.size());

  EXPECT_EQ(origin_.count("/big"), fetched) << "all of these were hits";

  // Over TLS (an object of its own: the scheme is part of the key).
  EXPECT_EQ(waitForHit([&] { return httpsGet(edge_->tlsPort(), "/big"); }).body, big);
}

// A client that stops reading a body sent from a file is cut off after the
// body timeout, while sendfile waits for the socket; the edge serves on.
TEST_F(EdgeTest, AClientThatStopsReadingAFileBodyIsCutOff) {
  startEdge({"--server.body_timeout", "300ms"});
  // Larger than a socket's send buffer can grow (tcp_wmem's maximum, 4 MiB
  // by default) plus the window, and small enough for the memory tier.
  uint64_t wmem_min = 0, wmem_default = 0, wmem_max = 0;
  std::ifstream("/proc/sys/net/ipv4/tcp_wmem") >> wmem_min >> wmem_default >> wmem_max;
  if (wmem_max > 6 * 1024 * 1024) GTEST_SKIP() << "tcp_wmem allows " << wmem_max << " bytes";
  std::string huge(7 * 1024 * 1024, 'h');
  origin_.set("/huge", resp(huge, {{"Cache-Control", "max-age=60"}}));
  EXPECT_EQ(get("/huge").body.size(), huge.size());
  waitForHit([&] { return get("/huge"); });

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(edge_->port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string req = "GET /huge HTTP/1.1\r\nHost: test.example\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // reading nothing
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t got = 0;
  std::vector<char> buf(1 << 16);
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  EXPECT_LT(got, huge.size()) << "the connection was closed before the body was out";
  EXPECT_EQ(get("/huge").body.size(), huge.size());
}

// A request head lives in an arena of its connection (1 KiB, then the
// heap), emptied between requests: heads small and large, one after the
// other on one connection, each arrive whole at the origin.
TEST_F(EdgeTest, RequestHeadsOfAnySizeOnOneConnection) {
  origin_.set("/h1", resp("1", {}));
  origin_.set("/h2", resp("2", {}));
  origin_.set("/h3", resp("3", {}));
  std::string big(2000, 'b'), bigger(3000, 'c');  // (the test origin takes 8 KiB)
  for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  std::string out = rawExchange(
      edge_->port(), "GET /h1 HTTP/1.1\r\nHost: a\r\nX-Big: " + big + "\r\nX-More: " + bigger +
                         "\r\n\r\n"
                         "GET /h2 HTTP/1.1\r\nHost: a\r\nX-Small: s\r\n\r\n"
                         "GET /h3 HTTP/1.1\r\nHost: a\r\nX-Big: " +
                         big + "\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("\r\n\r\n1"), std::string::npos) << out.substr(0, 300);
  EXPECT_NE(out.find("\r\n\r\n2"), std::string::npos);
  EXPECT_NE(out.find("\r\n\r\n3"), std::string::npos);
  std::map<std::string, std::map<std::string, std::string>> seen;
  for (auto& r : origin_.requests()) seen[r.target] = r.headers;
  EXPECT_EQ(seen["/h1"]["x-big"], big);
  EXPECT_EQ(seen["/h1"]["x-more"], bigger);
  EXPECT_EQ(seen["/h2"]["x-small"], "s");
  EXPECT_EQ(seen["/h2"].count("x-big"), 0u);
  EXPECT_EQ(seen["/h3"]["x-big"], big);
}

// A hit's head is written from the stored fields themselves: each field once,
// Age and Content-Length written afresh, an upstream's Via joined with ours,
// surrogate keys never sent.
TEST_F(EdgeTest, AHitsHeadIsTheStoredFieldsWithAgeViaAndCacheStatus) {
  origin_.set("/up", resp("body", {{"Cache-Control", "max-age=60"},
                                   {"Age", "5"},
                                   {"Via", "1.1 upstream"},
                                   {"Surrogate-Key", "k1 k2"},
                                   {"X-Custom", "a value longer than fifteen bytes"}}));
  get("/up");
  waitForHit([&] { return get("/up"); });
  std::string out = rawExchange(
      edge_->port(), "GET /up HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n");
  auto count = [&](std::string_view line) {
    int n = 0;
    for (size_t at = out.find(line); at != std::string::npos; at = out.find(line, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("\r\nAge: "), 1) << out;
  EXPECT_EQ(count("\r\nContent-Length: 4\r\n"), 1) << out;
  EXPECT_EQ(count("\r\nVia: 1.1 upstream, 1.1 tern\r\n"), 1) << out;
  EXPECT_EQ(count("\r\nX-Custom: a value longer than fifteen bytes\r\n"), 1) << out;
  EXPECT_EQ(count("Surrogate-Key"), 0) << out;
  EXPECT_EQ(count("\r\nCache-Status: tern; hit"), 1) << out;
  EXPECT_NE(out.find("\r\n\r\nbody"), std::string::npos) << out;
}

TEST_F(EdgeTest, PipelinedRequestsAnsweredInOrder) {
  origin_.set("/one", resp("1", {{"Cache-Control", "max-age=60"}}));
  origin_.set("/two", resp("22", {{"Cache-Control", "max-age=60"}}));
  std::string out =
      rawExchange(edge_->port(),
                  "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n"
                  "GET /one HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  auto a = out.find("\r\n\r\n1");
  auto b = out.find("\r\n\r\n22");
  auto c = out.rfind("\r\n\r\n1");
  ASSERT_NE(a, std::string::npos) << out;
  ASSERT_NE(b, std::string::npos) << out;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST_F(EdgeTest, RestartAfterKillServesHitsFromDisk) {
  // Odd ones are large enough for a body file; even ones stay in RocksDB.
  auto bodyOf = [](int i) {
    std::string body = "warm-body-" + std::to_string(i);
    if (i % 2 == 1) body.append(20000, static_cast<char>('a' + i));
    return body;
  };
  for (int i = 0; i < 20; ++i) {
    origin_.set("/warm" + std::to_string(i), resp(bodyOf(i), {{"Cache-Control", "max-age=600"}}));
    get("/warm" + std::to_string(i));
  }
  for (int i = 0; i < 20; ++i) waitForHit([&] { return get("/warm" + std::to_string(i)); });
  edge_->restart(/*kill=*/true);
  ASSERT_TRUE(edge_->ok()) << edge_->log();
  origin_.reset();
  int hits = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = get("/warm" + std::to_string(i));
    EXPECT_EQ(r.body, bodyOf(i));
    if (r.header("cache-status").find("hit") != std::string::npos) ++hits;
  }
  EXPECT_EQ(hits, 20);
  EXPECT_EQ(origin_.requests().size(), 0u);
  // Per tier: the memory tier (empty after the restart) answered none of the
  // lookups, the disk tier all of them; a key stored nowhere misses both.
  get("/never-stored");
  auto metrics = httpGet(edge_->adminPort(), "/metrics").body;
  EXPECT_NE(metrics.find("tern_edge_cache_tier_misses_total{tier=\"memory\"} 21\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_edge_cache_tier_misses_total{tier=\"disk\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_edge_cache_hits_total{tier=\"disk\"} 20\n"), std::string::npos)
      << metrics;
  // The store's files were just written (the page cache holds them): the
  // disk tier was read on the event loop, without a hand-off to the pool.
  EXPECT_EQ(metrics.find("tern_edge_disk_lookups_total{path=\"inline\"} 0\n"), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("tern_edge_disk_body_files 0\n"), std::string::npos) << metrics;
}

// A disk-tier body goes out with sendfile(2) once it is checked: written by
// this process, or read whole and found good since the edge started. A body
// damaged while the edge was down is never sent: its first read finds the
// damage, and the origin is asked again.
TEST_F(EdgeTest, DiskBodiesAreSentFromTheirFilesOnceChecked) {
  const std::vector<std::string> flags = {"--cache.memory_max_object_size", "1KiB"};
  startEdge(flags);  // (a disk-only cache for these bodies)
  auto bodyOf = [](char first) {
    std::string body(50000, '\0');
    for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(first + (i * 7) % 19);
    return body;
  };
  const std::string body = bodyOf('a'), other = bodyOf('A');
  origin_.set("/disk", resp(body, {{"Cache-Control", "max-age=600"}}));
  origin_.set("/damaged", resp(other, {{"Cache-Control", "max-age=600"}}));
  get("/disk");
  get("/damaged");
  waitForHit([&] { return get("/disk"); });
  waitForHit([&] { return get("/damaged"); });
  // (Counted once sendfile returns, which can be after the client has the
  // bytes: a count below what is expected is read again for a while.)
  auto sent = [&](double expected = 0) {
    double v = 0;
    for (int i = 0; i < 100; ++i) {
      v = metricOf(httpGet(edge_->adminPort(), "/metrics").body, "tern_edge_sendfile_bytes_total");
      if (v >= expected) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return v;
  };
  // Where no bytes are expected: the count once it has stopped moving.
  auto settled = [&] {
    double v = sent();
    for (int i = 0; i < 30; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const double again = sent();
      if (again == v) break;
      v = again;
    }
    return v;
  };
  const double before = settled();
  auto hit = get("/disk");
  EXPECT_EQ(hit.body, body);
  EXPECT_NE(hit.header("cache-status").find("hit"), std::string::npos);
  EXPECT_EQ(sent(before + body.size()) - before, static_cast<double>(body.size()))
      << "written here: sent from file";
  auto part = get("/disk", {{"Range", "bytes=100-199"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, body.substr(100, 100));
  EXPECT_EQ(sent(before + body.size() + 100) - before, static_cast<double>(body.size() + 100));

  edge_.reset();
  // Damage the stored copy of /damaged (found by its bytes) while the edge is down.
  bool damaged = false;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.sub("cache"))) {
    if (!e.is_regular_file() || e.path().parent_path().filename() != "bodies") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = bytes.find(other.substr(0, 256));
    if (at == std::string::npos) continue;
    std::fstream out(e.path(), std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(static_cast<std::streamoff>(at + 1000));
    out.put('#');
    damaged = true;
  }
  ASSERT_TRUE(damaged) << "the body of /damaged is in no body file";
  startEdge(flags);
  EXPECT_EQ(get("/disk").body, body);
  EXPECT_EQ(settled(), 0.0) << "not checked since the start: read and checked";
  hit = get("/disk");
  EXPECT_EQ(hit.body, body);
  EXPECT_NE(hit.header("cache-status").find("hit"), std::string::npos);
  EXPECT_EQ(sent(body.size()), static_cast<double>(body.size())) << "checked: sent from file";
  const long fetched = origin_.count("/damaged");
  auto again = get("/damaged");
  EXPECT_EQ(again.body, other);
  EXPECT_EQ(origin_.count("/damaged"), fetched + 1) << "the damaged copy was not served";
  EXPECT_EQ(settled(), static_cast<double>(body.size()));
}

TEST_F(EdgeTest, TlsAndPlainListenersSideBySide) {
  ASSERT_NO_FATAL_FAILURE(startEdgeWithTls());
  const std::string key = dir_.sub("key.pem");
  ASSERT_GT(edge_->tlsPort(), 0) << edge_->log();
  origin_.set("/tls", resp("secure", {{"Cache-Control", "max-age=60"}}));
  auto r = httpsGet(edge_->tlsPort(), "/tls");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "secure");
  EXPECT_EQ(get("/tls").body, "secure");
  auto reqs = origin_.requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs[0].headers["x-forwarded-proto"], "https");
  // A plain HTTP request on the TLS port fails the handshake; the edge stays up.
  rawExchange(edge_->tlsPort(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
  EXPECT_EQ(httpsGet(edge_->tlsPort(), "/tls").body, "secure");
  // A missing certificate is a clear start-up error.
  EdgeProcess broken(
      dir_.sub("cache-broken"), origin_.url(),
      {"--tls.listen", "127.0.0.1:0", "--tls.cert", dir_.sub("missing.pem"), "--tls.key", key});
  EXPECT_FALSE(broken.ok());
  broken.process().wait(5000);
  EXPECT_NE(broken.log().find("tls.cert"), std::string::npos) << broken.log();
}

TEST_F(EdgeTest, HttpsOriginWithVerificationAndSni) {
  std::string cert = dir_.sub("origin-cert.pem"), key = dir_.sub("origin-key.pem");
  ASSERT_EQ(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                         "-addext subjectAltName=IP:127.0.0.1 -keyout " +
                         key + " -out " + cert + " 2>/dev/null")
                            .c_str()),
            0);
  // A real TLS origin: openssl s_server answering with its status page.
  int port = pickFreePort();
  Process server({"/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                  "-cert", cert, "-key", key, "-www", "-quiet"},
                 dir_.sub("s_server.log"));
  ASSERT_TRUE(eventually([&] { return !server.running() || canConnect(port); }));
  ASSERT_TRUE(server.running());
  std::string url = "https://127.0.0.1:" + std::to_string(port);
  EdgeProcess trusted(dir_.sub("cache-tls1"), url, {"--origin_ca_file", cert});
  ASSERT_TRUE(trusted.ok()) << trusted.log();
  auto r = httpGet(trusted.port(), "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("s_server"), std::string::npos) << r.body;
  // Without the CA the certificate is refused: 502, never the content.
  EdgeProcess untrusted(dir_.sub("cache-tls2"), url);
  ASSERT_TRUE(untrusted.ok());
  auto bad = httpGet(untrusted.port(), "/");
  EXPECT_EQ(bad.status, 502);
  EXPECT_EQ(bad.body.find("s_server"), std::string::npos);
}

TEST_F(EdgeTest, EarlyHintsAndContinuePassThrough) {
  OriginResponse hinted = resp("page", {{"Cache-Control", "no-store"}});
  hinted.early_hints = {{"Link", "</style.css>; rel=preload; as=style"}};
  origin_.set("/hinted", hinted);
  std::string out =
      rawExchange(edge_->port(), "GET /hinted HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  auto early = out.find("HTTP/1.1 103 Early Hints\r\n");
  auto final_response = out.find("HTTP/1.1 200 OK\r\n");
  ASSERT_NE(early, std::string::npos) << out;
  ASSERT_NE(final_response, std::string::npos) << out;
  EXPECT_LT(early, final_response);
  EXPECT_NE(out.find("Link: </style.css>; rel=preload; as=style"), std::string::npos);

  OriginResponse created;
  created.status = 201;
  created.body = "created";
  origin_.set("/upload", created);
  std::string cont =
      expectContinueExchange(edge_->port(),
                             "POST /upload HTTP/1.1\r\nHost: a\r\nExpect: "
                             "100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
                             "hello");
  EXPECT_NE(cont.find("HTTP/1.1 100 Continue"), std::string::npos) << cont;
  EXPECT_NE(cont.find("HTTP/1.1 201"), std::string::npos) << cont;
  bool seen = false;
  for (const auto& rq : origin_.requests()) {
    if (rq.target == "/upload") {
      seen = true;
      EXPECT_EQ(rq.body, "hello");
    }
  }
  EXPECT_TRUE(seen);
}

TEST_F(EdgeTest, AdminEndpoints) {
  origin_.set("/m", resp("m", {{"Cache-Control", "max-age=60"}}));
  get("/m");
  waitForHit([&] { return get("/m"); });
  auto metrics = httpGet(edge_->adminPort(), "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("tern_edge_cache_hits_total{tier=\"memory\"}"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("tern_edge_origin_latency_seconds_bucket"), std::string::npos);
  EXPECT_NE(metrics.body.find("tern_edge_store_objects{tier=\"disk\"} 1"), std::string::npos);
  // Per tier: the body bytes hits came from, promotions, refused writes.
  EXPECT_NE(metrics.body.find("tern_edge_cache_hit_body_bytes_total{tier=\"memory\"} "),
            std::string::npos);
  EXPECT_NE(metrics.body.find("tern_edge_cache_hit_body_bytes_total{tier=\"disk\"} "),
            std::string::npos);
  EXPECT_NE(metrics.body.find("tern_edge_store_promotions{result=\"declined\"} 0"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("tern_edge_store_write_failures{tier=\"disk\"} 0"),
            std::string::npos);
  // The one disk object's body is one byte: it stays in RocksDB, and no
  // body file is made.
  EXPECT_NE(metrics.body.find("tern_edge_disk_body_files 0\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("tern_edge_disk_body_file_bytes 0\n"), std::string::npos);
  EXPECT_EQ(httpGet(edge_->adminPort(), "/healthz").status, 200);
  EXPECT_EQ(httpGet(edge_->adminPort(), "/readyz").status, 200);
  EXPECT_EQ(httpGet(edge_->adminPort(), "/nope").status, 404);
}

TEST_F(EdgeTest, GracefulShutdownOnSigterm) {
  OriginResponse slow = resp("finished", {});
  slow.delay_ms = 400;
  origin_.set("/slowdone", slow);
  HttpResponse r;
  std::thread client([&] { r = get("/slowdone"); });
  // SIGTERM while the request is at the origin.
  EXPECT_TRUE(eventually([&] { return origin_.count("/slowdone") == 1; }));
  edge_->process().signal(SIGTERM);
  client.join();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "finished");
  int status = edge_->process().wait(5000);
  ASSERT_GE(status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// A keep-alive connection waiting for its next request does not hold up a
// graceful stop (10 s of grace, 60 s keep-alive): it is closed at once.
TEST_F(EdgeTest, GracefulShutdownClosesIdleKeepAliveConnectionsAtOnce) {
  origin_.set("/k", resp("keep", {{"Cache-Control", "max-age=60"}}));
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(edge_->port()));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string req = "GET /k HTTP/1.1\r\nHost: test.example\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  while (got.find("keep") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << got;
    got.append(buf, static_cast<size_t>(n));
  }
  ASSERT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
  // The connection is now idle, kept alive.
  const int64_t t0 = steadyNowUs();
  edge_->process().signal(SIGTERM);
  const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  EXPECT_EQ(n, 0) << "closed without a byte";
  const int status = edge_->process().wait(5000);
  const int64_t took_ms = (steadyNowUs() - t0) / 1000;
  ::close(fd);
  ASSERT_GE(status, 0) << "still running after 5 s";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_LT(took_ms, 3000) << "waited for the idle connection";
}

}  // namespace
}  // namespace tern::testing

namespace tern::testing {
namespace {

// RFC 9875: a response to an unsafe request names groups to invalidate; a
// standalone edge marks that group's responses stale (revalidated next).
TEST_F(EdgeTest, CacheGroupInvalidationMarksTheGroupStale) {
  origin_.set("/g/a", resp("a", {{"Cache-Control", "max-age=60"},
                                 {"ETag", "\"a\""},
                                 {"Cache-Groups", "\"g1\", \"shared\""}}));
  origin_.set(
      "/g/b",
      resp("b", {{"Cache-Control", "max-age=60"}, {"ETag", "\"b\""}, {"Cache-Groups", "\"g2\""}}));
  waitForHit([&] { return get("/g/a"); });
  waitForHit([&] { return get("/g/b"); });
  origin_.set("/g/update", resp("done", {{"Cache-Group-Invalidation", "\"g1\""}}));
  auto post = httpRequest(edge_->port(), "POST", "/g/update", {}, "x=1");
  EXPECT_EQ(post.status, 200);
  HttpResponse a;
  for (int i = 0; i < 50; ++i) {
    a = get("/g/a");
    if (a.header("cache-status").find("hit") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(a.header("cache-status").find("fwd=stale; fwd-status=304"), std::string::npos)
      << a.header("cache-status");
  EXPECT_EQ(a.body, "a");
  EXPECT_NE(get("/g/b").header("cache-status").find("hit"), std::string::npos)
      << "another group is untouched";
}

}  // namespace
}  // namespace tern::testing

namespace tern::testing {
namespace {

// A keep-alive connection of the test's own, to show it survives a reload.
class KeepAlive {
 public:
  explicit KeepAlive(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~KeepAlive() {
    if (fd_ >= 0) ::close(fd_);
  }
  // The whole response to GET `path` (Content-Length framed), or "";
  // `fields`: more request field lines, each ending in CRLF.
  std::string get(const std::string& path, const std::string& fields = "") {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: test.example\r\n" + fields + "\r\n";
    if (fd_ < 0 || ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) < 0) return "";
    std::string in;
    char buf[4096];
    for (;;) {
      const size_t head = in.find("\r\n\r\n");
      if (head != std::string::npos) {
        const size_t cl = in.find("Content-Length: ");
        const size_t want = head + 4 + (cl < head ? std::stoul(in.substr(cl + 16)) : 0);
        if (in.size() >= want) return in.substr(0, want);
      }
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return "";
      in.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

// One connection's requests are written over the last one's (its request
// and field lists keep their room): nothing of a request or a response may
// carry over into the next. Each request waits for its response, so each
// is written over the one before.
TEST_F(EdgeTest, NothingOfOneRequestOrResponseCarriesOverToTheNextOnAConnection) {
  origin_.set("/r", resp("0123456789", {{"Cache-Control", "max-age=60"}}));
  origin_.set("/m", resp("m", {}));
  get("/r");
  waitForHit([&] { return get("/r"); });
  KeepAlive conn(edge_->port());
  const std::string long_value(40, 'x');
  // A hit of a range: Age, Content-Range, Via, Cache-Status added.
  std::string a = conn.get("/r", "X-Long: " + long_value + "\r\nRange: bytes=2-4\r\n");
  EXPECT_NE(a.find("HTTP/1.1 206"), std::string::npos) << a;
  EXPECT_NE(a.find("\r\nContent-Range: bytes 2-4/10\r\n"), std::string::npos) << a;
  // A whole hit next: no Range carried over, no Content-Range left over.
  std::string b = conn.get("/r");
  EXPECT_NE(b.find("HTTP/1.1 200"), std::string::npos) << b;
  EXPECT_EQ(b.find("Content-Range"), std::string::npos) << b;
  auto count = [](const std::string& out, std::string_view line) {
    int n = 0;
    for (size_t at = out.find(line); at != std::string::npos; at = out.find(line, at + 1)) ++n;
    return n;
  };
  for (const char* f : {"\r\nAge: ", "\r\nVia: ", "\r\nCache-Status: ", "\r\nContent-Length: "})
    EXPECT_EQ(count(b, f), 1) << f << " in " << b;
  EXPECT_NE(b.find("\r\n\r\n0123456789"), std::string::npos) << b;
  EXPECT_NE(b.find("Cache-Status: tern; hit"), std::string::npos) << b;
  // A conditional hit, then a plain one: no validator carried over.
  std::string c = conn.get("/r", "If-None-Match: *\r\n");
  EXPECT_NE(c.find("HTTP/1.1 304"), std::string::npos) << c;
  std::string d = conn.get("/r");
  EXPECT_NE(d.find("HTTP/1.1 200"), std::string::npos) << d;
  // A miss with fewer, shorter fields: the origin sees only what was sent.
  std::string e = conn.get("/m", "X-Short: s\r\n");
  EXPECT_NE(e.find("HTTP/1.1 200"), std::string::npos) << e;
  std::map<std::string, std::string> seen;
  for (auto& r : origin_.requests())
    if (r.target == "/m") seen = r.headers;
  EXPECT_EQ(seen["x-short"], "s");
  EXPECT_EQ(seen.count("x-long"), 0u);
  EXPECT_EQ(seen.count("range"), 0u);
  EXPECT_EQ(seen.count("if-none-match"), 0u);
}

// SIGHUP re-reads the configuration: origins and limits change for what
// comes next; open connections and the cache stay; what needs a restart is
// named and kept; a configuration that does not load changes nothing.
TEST(EdgeReloadTest, SighupAppliesNewOriginsAndLimitsAndKeepsConnectionsAndTheCache) {
  TempDir dir;
  TestOrigin a, b;
  OriginResponse ra, rb;
  ra.body = "from-a";
  ra.headers = {{"Cache-Control", "max-age=300"}};
  rb.body = "from-b";
  rb.headers = {{"Cache-Control", "max-age=300"}};
  a.set("/x", ra);
  a.set("/y", ra);
  b.set("/y", rb);
  const std::string config = dir.sub("edge.yaml");
  std::ofstream(config) << "origin: [\"" << a.url() << "\"]\nserver: {header_limit: 32KiB}\n";
  EdgeProcess edge(dir.sub("cache"), "", {"--config", config});
  ASSERT_TRUE(edge.ok()) << edge.log();
  ASSERT_EQ(httpGet(edge.port(), "/x").body, "from-a");
  waitForHit([&] { return httpGet(edge.port(), "/x"); });
  KeepAlive conn(edge.port());
  ASSERT_NE(conn.get("/x").find("from-a"), std::string::npos);

  std::ofstream(config) << "origin: [\"" << b.url() << "\"]\nserver: {header_limit: 4KiB}\n"
                        << "cache: {memory_budget: 1MiB}\n";
  edge.process().signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return edge.log().find("configuration reloaded") != std::string::npos;
  })) << edge.log();
  EXPECT_NE(edge.log().find("need a restart were not applied"), std::string::npos) << edge.log();
  EXPECT_NE(edge.log().find("keys=cache.memory_budget"), std::string::npos) << edge.log();
  // New origin for what is fetched now; the cache (from a) is kept.
  EXPECT_EQ(httpGet(edge.port(), "/y").body, "from-b");
  EXPECT_EQ(b.count("/y"), 1);
  EXPECT_EQ(a.count("/y"), 0);
  auto x = httpGet(edge.port(), "/x");
  EXPECT_EQ(x.body, "from-a");
  EXPECT_NE(x.header("cache-status").find("hit"), std::string::npos) << x.header("cache-status");
  // The new header limit.
  auto big = httpGet(edge.port(), "/x", {{"X-Big", std::string(6000, 'v')}});
  EXPECT_EQ(big.status, 431);
  // The connection opened before the reload still carries requests.
  EXPECT_NE(conn.get("/x").find("from-a"), std::string::npos);

  // A configuration that does not load changes nothing.
  std::ofstream(config) << "origin: [\"ftp://nowhere\"]\n";
  edge.process().signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return edge.log().find("configuration not reloaded") != std::string::npos;
  })) << edge.log();
  b.set("/z", rb);
  EXPECT_EQ(httpGet(edge.port(), "/z").body, "from-b");
  EXPECT_EQ(httpGet(edge.port(), "/x", {{"X-Big", std::string(6000, 'v')}}).status, 431);
}

}  // namespace
}  // namespace tern::testing

namespace tern::testing {
namespace {

// Metric value (first series matching `series`, labels included), -1 if absent.
double metricOf(const std::string& page, const std::string& series) {
  size_t at = page.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::atof(page.c_str() + at + series.size() + 2);
}

// The complete lines of a JSON-lines file (a last line still being written
// is left out); a line that is not a JSON object fails the test.
std::vector<boost::json::object> jsonLines(const std::string& path) {
  std::vector<boost::json::object> out;
  const std::string text = readText(path);
  for (size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
    boost::system::error_code ec;
    auto v = boost::json::parse(std::string_view(text).substr(at, nl - at), ec);
    EXPECT_TRUE(!ec && v.is_object()) << text.substr(at, nl - at);
    if (!ec && v.is_object()) out.push_back(v.as_object());
  }
  return out;
}

// The access log: a JSON line per response with what operators look for,
// written by its own thread into its own file, sampled, and reopened on
// SIGHUP so that log rotation works.
TEST(AccessLogTest, OneJsonLinePerResponseSampledAndReopenedOnSighup) {
  TempDir dir;
  TestOrigin origin;
  OriginResponse r;
  r.body = "hello";
  r.headers = {{"Cache-Control", "max-age=300"}};
  origin.set("/a?x=1", r);
  const std::string file = dir.sub("access.log");
  EdgeProcess edge(dir.sub("cache"), origin.url(),
                   {"--log.access", "true", "--log.access_file", file});
  ASSERT_TRUE(edge.ok()) << edge.log();
  EXPECT_EQ(httpGet(edge.port(), "/a?x=1", {{"Host", "www.example"}}).status, 200);
  waitForHit([&] { return httpGet(edge.port(), "/a?x=1", {{"Host", "www.example"}}); });
  EXPECT_EQ(httpGet(edge.port(), "/missing", {{"Host", "www.example"}}).status, 404);
  std::vector<boost::json::object> lines;
  ASSERT_TRUE(eventually([&] {
    lines = jsonLines(file);
    return !lines.empty() && lines.back()["target"] == "/missing";
  })) << readText(file);
  ASSERT_GE(lines.size(), 3u);
  // Lines come in the order responses finished writing, which across the
  // edge's event loops need not be the order of the requests: a client
  // may have its response, and send the next request to another loop,
  // before the first loop has seen its write complete.
  auto lineOf = [&](std::string_view cache) -> boost::json::object* {
    for (auto& l : lines) {
      if (l["target"] == "/a?x=1" &&
          std::string(l["cache"].as_string()).find(cache) != std::string::npos)
        return &l;
    }
    return nullptr;
  };
  boost::json::object* first = lineOf("fwd=uri-miss");
  ASSERT_NE(first, nullptr) << readText(file);
  auto& miss = *first;
  EXPECT_EQ(miss["method"], "GET");
  EXPECT_EQ(miss["host"], "www.example");
  EXPECT_EQ(miss["status"], 200);
  EXPECT_EQ(miss["bytes"], 5);
  EXPECT_EQ(miss["client"], "127.0.0.1");
  EXPECT_EQ(miss["protocol"], "HTTP/1.1");
  EXPECT_TRUE(miss["ts"].as_string().ends_with("Z"));
  EXPECT_GE(miss["duration_us"].as_int64(), 0);
  EXPECT_NE(lineOf("hit"), nullptr) << readText(file);
  EXPECT_EQ(lines.back()["status"], 404);
  // Nothing else goes to that file; the process log has no access lines.
  EXPECT_EQ(edge.log().find("\"target\""), std::string::npos);
  EXPECT_EQ(edge.log().find("msg=access"), std::string::npos);
  // Bytes that are not UTF-8 in a target or Host stay valid JSON (U+FFFD),
  // and a rejected request logs nothing of the previous one.
  // (Such a Host makes no cache key: 400.)
  EXPECT_EQ(httpGet(edge.port(), "/caf\xe9", {{"Host", "h\xff.example"}}).status, 400);
  ASSERT_TRUE(eventually([&] {
    lines = jsonLines(file);
    return !lines.empty() && lines.back()["status"] == 400 &&
           lines.back()["target"] == "/caf\xef\xbf\xbd";
  })) << readText(file);
  EXPECT_EQ(lines.back()["host"], "h\xef\xbf\xbd.example");

  // Rotation: the file is moved away; SIGHUP opens a new one under the name.
  std::filesystem::rename(file, file + ".1");
  edge.process().signal(SIGHUP);
  ASSERT_TRUE(
      eventually([&] { return edge.log().find("configuration reloaded") != std::string::npos; }));
  EXPECT_EQ(httpGet(edge.port(), "/after-rotation").status, 404);
  ASSERT_TRUE(eventually([&] {
    return readText(file).find("/after-rotation") != std::string::npos;
  })) << readText(file);
  EXPECT_EQ(readText(file + ".1").find("/after-rotation"), std::string::npos);

  // A sample of nothing writes nothing, while requests are counted.
  EdgeProcess quiet(dir.sub("cache2"), origin.url(),
                    {"--log.access", "true", "--log.access_file", dir.sub("quiet.log"),
                     "--log.access_sample", "0"});
  ASSERT_TRUE(quiet.ok()) << quiet.log();
  for (int i = 0; i < 20; ++i) httpGet(quiet.port(), "/q" + std::to_string(i));
  ASSERT_TRUE(eventually([&] {
    return metricOf(httpGet(quiet.adminPort(), "/metrics").body,
                    "tern_edge_requests_total{protocol=\"h1\"}") >= 20;
  }));
  EXPECT_EQ(metricOf(httpGet(quiet.adminPort(), "/metrics").body,
                     "tern_edge_access_log_lines_total{result=\"written\"}"),
            0);
  EXPECT_EQ(readText(dir.sub("quiet.log")), "");
  // An access log file that cannot be opened is a clear start-up error.
  EdgeProcess broken(dir.sub("cache3"), origin.url(),
                     {"--log.access", "true", "--log.access_file", dir.sub("no/such/dir/a.log")});
  EXPECT_FALSE(broken.ok());
}

}  // namespace
}  // namespace tern::testing

namespace tern::testing {
namespace {

// Milliseconds of one Server-Timing metric ("origin;dur=51.234"), -1 if absent.
double serverTiming(const std::string& header, const std::string& name) {
  size_t at = header.find(name + ";dur=");
  return at == std::string::npos ? -1 : std::atof(header.c_str() + at + name.size() + 5);
}

// Where a request's time went: per-phase histograms always, a Server-Timing
// header for requests with the debug token (or always, when configured).
TEST(ServerTimingTest, PhasesAreTimedAndShownToTheDebugTokenOnly) {
  TempDir dir;
  TestOrigin origin;
  OriginResponse slow;
  slow.body = "slow";
  slow.delay_ms = 60;
  slow.headers = {{"Cache-Control", "max-age=300"}};
  origin.set("/slow", slow);
  EdgeProcess edge(dir.sub("cache"), origin.url(), {"--server.debug_token", "let-me-see"});
  ASSERT_TRUE(edge.ok()) << edge.log();
  const HeaderList debug = {{"Tern-Debug", "let-me-see"}};

  auto miss = httpGet(edge.port(), "/slow", debug);
  ASSERT_EQ(miss.status, 200);
  const std::string timing = miss.header("server-timing");
  EXPECT_GE(serverTiming(timing, "origin"), 55) << timing;
  EXPECT_GE(serverTiming(timing, "lookup"), 0) << timing;
  EXPECT_GE(serverTiming(timing, "total"), serverTiming(timing, "origin")) << timing;
  // The debug token is this edge's business: never sent to the origin.
  for (const auto& r : origin.requests())
    for (const auto& [name, value] : r.headers) EXPECT_NE(name, "tern-debug") << value;
  // A pass (POST) times its origin too.
  OriginResponse posted;
  posted.body = "ok";
  posted.delay_ms = 30;
  origin.set("/form", posted);
  auto pass = httpRequest(edge.port(), "POST", "/form", debug, "x");
  EXPECT_GE(serverTiming(pass.header("server-timing"), "origin"), 25)
      << pass.header("server-timing");
  auto hit = waitForHit([&] { return httpGet(edge.port(), "/slow", debug); });
  const std::string hit_timing = hit.header("server-timing");
  EXPECT_GE(serverTiming(hit_timing, "lookup"), 0) << hit_timing;
  EXPECT_EQ(serverTiming(hit_timing, "origin"), -1) << "a hit asks no origin: " << hit_timing;
  EXPECT_LT(serverTiming(hit_timing, "total"), 50) << hit_timing;
  // Without the token, or with another, nothing is shown.
  EXPECT_EQ(httpGet(edge.port(), "/slow").header("server-timing"), "");
  EXPECT_EQ(httpGet(edge.port(), "/slow", {{"Tern-Debug", "guess"}}).header("server-timing"), "");
  // The histograms count every request, shown or not.
  const std::string metrics = httpGet(edge.adminPort(), "/metrics").body;
  // (A request that came before the object was stored waited for the origin
  // too: at least the first did.)
  EXPECT_GE(metricOf(metrics, "tern_edge_phase_seconds_count{phase=\"origin\"}"), 1) << metrics;
  EXPECT_NE(metrics.find("tern_edge_phase_seconds_count{phase=\"total\"}"), std::string::npos);

  // Server-Timing on every response; the histograms switched off (they
  // count nothing, the header is still timed).
  EdgeProcess always(dir.sub("cache2"), origin.url(),
                     {"--server.server_timing", "true", "--server.phase_metrics", "false"});
  ASSERT_TRUE(always.ok()) << always.log();
  EXPECT_NE(httpGet(always.port(), "/slow").header("server-timing").find("total;dur="),
            std::string::npos);
  EXPECT_LE(metricOf(httpGet(always.adminPort(), "/metrics").body,
                     "tern_edge_phase_seconds_count{phase=\"total\"}"),
            0);  // (0, or not shown)
}

}  // namespace
}  // namespace tern::testing
