// tern-edge and its origins, end to end with a real origin process
// (tests/support/origin_server.py): a request is never sent twice unless it
// may be, pooled connections are checked and aged out, bodies of any size
// stream with bounded memory and backpressure, and PURGE never runs open.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "tests/support/edge_process.h"
#include "tests/support/http_client.h"
#include "tests/support/origin_process.h"
#include "tests/support/temp_dir.h"

namespace tern::testing {
namespace {

using namespace std::chrono_literals;

// Resident memory of a process, in bytes.
uint64_t rssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Reads a GET response from the edge as a stream, checking that byte i of
// the body is i % 256 (the origin's /big pattern), without keeping it.
struct StreamResult {
  int status = 0;
  std::string head;
  uint64_t body_bytes = 0;
  bool pattern_ok = true;
};

StreamResult streamGet(int port, const std::string& target,
                       const std::function<void(uint64_t)>& after_read = {}) {
  StreamResult r;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return r;
  }
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
  (void)::send(fd, req.data(), req.size(), 0);
  std::vector<char> buf(256 * 1024);
  bool in_body = false;
  while (true) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    size_t from = 0;
    if (!in_body) {
      r.head.append(buf.data(), static_cast<size_t>(n));
      auto end = r.head.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      in_body = true;
      const size_t body_in_head = r.head.size() - (end + 4);
      from = static_cast<size_t>(n) - body_in_head;
      r.head.resize(end + 4);
      r.status = std::atoi(r.head.c_str() + 9);
    }
    for (size_t i = from; i < static_cast<size_t>(n); ++i) {
      if (static_cast<unsigned char>(buf[i]) != (r.body_bytes & 0xff)) r.pattern_ok = false;
      ++r.body_bytes;
    }
    if (after_read) after_read(r.body_bytes);
  }
  ::close(fd);
  return r;
}

class OriginLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_ = std::make_unique<OriginProcess>(dir_.sub("origin") + ".log");
    ASSERT_TRUE(origin_->ok());
  }
  void startEdge(std::vector<std::string> flags = {}) {
    edge_ = std::make_unique<EdgeProcess>(dir_.sub("cache"), origin_->url(), std::move(flags));
    ASSERT_TRUE(edge_->ok()) << edge_->log();
  }
  HttpResponse request(const std::string& method, const std::string& target) {
    return httpRequest(edge_->port(), method, target, {}, method == "GET" ? "" : "payload");
  }

  TempDir dir_;
  std::unique_ptr<OriginProcess> origin_;
  std::unique_ptr<EdgeProcess> edge_;
};

// The origin drops a reused connection as the request arrives: nothing of a
// response comes back, and the origin may or may not have acted on it.
TEST_F(OriginLinkTest, NonIdempotentRequestIsNeverSentTwice) {
  startEdge({"--server.loops", "1"});
  // Warm one pooled connection, then POST on it: dropped, answered 502.
  ASSERT_EQ(request("GET", "/drop-warm").status, 200);
  auto post = request("POST", "/drop-post");
  EXPECT_EQ(post.status, 502) << post.body;
  EXPECT_EQ(origin_->count("POST /drop-post"), 1) << "a POST went to the origin twice";

  // PATCH is not idempotent either.
  ASSERT_EQ(request("GET", "/drop-warm").status, 200);
  EXPECT_EQ(request("PATCH", "/drop-patch").status, 502);
  EXPECT_EQ(origin_->count("PATCH /drop-patch"), 1);

  // An idempotent request is retried once on a new connection: the client
  // sees the answer of the second attempt.
  ASSERT_EQ(request("GET", "/drop-warm").status, 200);
  auto put = request("PUT", "/drop-put");
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(origin_->count("PUT /drop-put"), 2);
  EXPECT_TRUE(edge_->process().running());
}

TEST_F(OriginLinkTest, PooledConnectionClosedByTheOriginIsNotUsed) {
  startEdge({"--server.loops", "1"});
  // The origin closes this connection 200 ms after answering.
  ASSERT_EQ(request("GET", "/close-soon").status, 200);
  const long before = origin_->connections();
  std::this_thread::sleep_for(600ms);  // the origin's keep-alive timeout passes
  // Sent on the closed connection, this POST could only fail (it is never
  // retried): the edge must see the close and open a new connection.
  auto post = request("POST", "/after-close");
  EXPECT_EQ(post.status, 200) << post.body;
  EXPECT_EQ(origin_->count("POST /after-close"), 1);
  EXPECT_GT(origin_->connections(), before);
}

TEST_F(OriginLinkTest, IdleOriginConnectionsAreClosedAfterTheIdleTimeout) {
  startEdge({"--server.loops", "1", "--origin_idle_timeout", "300ms"});
  ASSERT_EQ(request("GET", "/a").status, 200);
  const long c1 = origin_->connections();  // counts the admin connection too
  ASSERT_EQ(request("GET", "/b").status, 200);
  const long c2 = origin_->connections();
  EXPECT_EQ(c2 - c1, 1) << "a request within the idle timeout reuses the connection (+1 admin)";
  std::this_thread::sleep_for(700ms);
  ASSERT_EQ(request("GET", "/c").status, 200);
  const long c3 = origin_->connections();
  EXPECT_EQ(c3 - c2, 2) << "after the idle timeout the edge opens a new connection (+1 admin)";
}

// A body far larger than the store takes streams through with the edge's
// memory bounded, and is not stored.
TEST_F(OriginLinkTest, MultiGigabyteResponseStreamsWithBoundedMemory) {
  // Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
  // default) before it is reused: keep it small so RSS measures what the
  // edge holds.
  std::string asan = getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "";
  setenv("ASAN_OPTIONS", (asan + ":quarantine_size_mb=8").c_str(), 1);
  startEdge({"--cache.max_object_size", "16MiB"});
  setenv("ASAN_OPTIONS", asan.c_str(), 1);
  // TERN_TEST_BODY_GIB=4 for a longer run; 1 GiB keeps the default run short.
  const char* gib = getenv("TERN_TEST_BODY_GIB");
  const uint64_t size = (gib ? std::stoull(gib) : 1ULL) << 30;
  const uint64_t rss_before = rssBytes(edge_->process().pid());
  std::atomic<uint64_t> rss_max{0};
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      rss_max = std::max<uint64_t>(rss_max, rssBytes(edge_->process().pid()));
      std::this_thread::sleep_for(20ms);
    }
  });
  auto r = streamGet(edge_->port(), "/big?size=" + std::to_string(size));
  done = true;
  sampler.join();
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(r.body_bytes, size);
  EXPECT_TRUE(r.pattern_ok);
  EXPECT_NE(r.head.find("fwd=uri-miss"), std::string::npos) << r.head;
  EXPECT_EQ(r.head.find("stored"), std::string::npos) << "larger than max_object_size: " << r.head;
  const uint64_t growth = rss_max > rss_before ? rss_max - rss_before : 0;
  std::printf("edge RSS %.1f MiB before, %.1f MiB at most while streaming %.1f GiB\n",
              static_cast<double>(rss_before) / (1 << 20), static_cast<double>(rss_max) / (1 << 20),
              static_cast<double>(size) / (1 << 30));
  EXPECT_LT(growth, 192ULL << 20) << "the edge held the body in memory";
  EXPECT_TRUE(edge_->process().running());
  // Not stored: the next request goes to the origin again.
  auto again = httpGet(edge_->port(), "/big?size=1000");
  EXPECT_EQ(again.status, 200);
}

// A slow client reads a large body: the edge reads the origin only as fast
// as the client takes it (plus bounded buffers), instead of buffering it.
TEST_F(OriginLinkTest, SlowClientHoldsTheOriginBack) {
  startEdge({"--cache.max_object_size", "4MiB", "--server.body_timeout", "30s"});
  const uint64_t size = 256ULL << 20;
  uint64_t max_ahead = 0;
  int samples = 0;
  auto r = streamGet(edge_->port(), "/big?size=" + std::to_string(size), [&](uint64_t got) {
    // Stop early: 48 MiB at about 24 MiB/s.
    if (got > (48ULL << 20)) return;
    std::this_thread::sleep_for(5ms);
    if (++samples % 20 == 0) {
      const long sent = origin_->bodyBytesSent();
      if (sent > 0 && static_cast<uint64_t>(sent) > got)
        max_ahead = std::max<uint64_t>(max_ahead, static_cast<uint64_t>(sent) - got);
    }
  });
  EXPECT_EQ(r.body_bytes, size);
  EXPECT_TRUE(r.pattern_ok);
  EXPECT_GT(samples, 100);
  std::printf("origin ahead of the slow client by at most %.1f MiB\n",
              static_cast<double>(max_ahead) / (1 << 20));
  // The shareable prefix (8 MiB), the window (1 MiB) and the kernel's socket
  // buffers on both sides (a few MiB each on loopback).
  EXPECT_LT(max_ahead, 40ULL << 20) << "the edge buffered the origin's body for a slow client";
}

TEST_F(OriginLinkTest, ResponsesWithinMaxObjectSizeAreStoredWhileStreaming) {
  startEdge({"--cache.max_object_size", "64MiB", "--cache.memory_max_object_size", "1MiB"});
  const std::string target = "/big?size=" + std::to_string(24ULL << 20);
  auto first = streamGet(edge_->port(), target);
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body_bytes, 24ULL << 20);
  EXPECT_NE(first.head.find("stored"), std::string::npos) << first.head;
  // The store commits once the body is complete (on the blocking pool):
  // wait for the hit, with a deadline.
  StreamResult second;
  int misses = 1;
  for (int i = 0; i < 100; ++i) {
    second = streamGet(edge_->port(), target);
    if (second.head.find("; hit") != std::string::npos) break;
    ++misses;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(second.head.find("; hit"), std::string::npos) << second.head;
  EXPECT_EQ(second.body_bytes, 24ULL << 20);
  EXPECT_TRUE(second.pattern_ok);
  EXPECT_EQ(origin_->count("GET /big"), misses) << "a hit is served from the disk tier";
}

// RFC 9111 4.2.3: a response that was already 30 s old at the origin is 30
// s old in the cache, not new.
TEST_F(OriginLinkTest, AgeFromUpstreamCountsTowardsFreshness) {
  startEdge();
  auto first = httpGet(edge_->port(), "/aged?cc=max-age%3D60&age=30");
  ASSERT_EQ(first.status, 200);
  auto hit = waitForHit([&] { return httpGet(edge_->port(), "/aged?cc=max-age%3D60&age=30"); });
  EXPECT_NE(hit.header("cache-status").find("hit"), std::string::npos)
      << hit.header("cache-status");
  EXPECT_GE(std::stoi(hit.header("age")), 30) << "the upstream Age was dropped";
  auto ttl = hit.header("cache-status").find("ttl=");
  ASSERT_NE(ttl, std::string::npos);
  EXPECT_LE(std::stoi(hit.header("cache-status").substr(ttl + 4)), 30);
  // Older than its lifetime on arrival: stored, but stale at once.
  ASSERT_EQ(httpGet(edge_->port(), "/old?cc=max-age%3D60&age=100").status, 200);
  auto again = httpGet(edge_->port(), "/old?cc=max-age%3D60&age=100");
  EXPECT_EQ(again.header("cache-status").find("; hit"), std::string::npos)
      << again.header("cache-status");
  EXPECT_EQ(origin_->count("GET /old"), 2);
}

// Requests that arrive while a fetch is in flight share its response only
// when they could reuse it from the cache: one already stale on arrival
// (Age past max-age) is fetched by each of them.
TEST_F(OriginLinkTest, WaitersDoNotShareAResponseStaleOnArrival) {
  startEdge();
  auto concurrently = [&](const std::string& path) {
    std::vector<std::thread> clients;
    std::vector<int> statuses(3, 0);
    for (int i = 0; i < 3; ++i)
      clients.emplace_back([&, i] { statuses[i] = httpGet(edge_->port(), path).status; });
    for (auto& t : clients) t.join();
    for (int s : statuses) EXPECT_EQ(s, 200) << path;
  };
  concurrently("/shared?cc=max-age%3D60&delay=400");
  EXPECT_EQ(origin_->count("GET /shared"), 1) << "fresh: the waiters share the leader's fetch";
  concurrently("/late?cc=max-age%3D60&age=100&delay=400");
  EXPECT_EQ(origin_->count("GET /late"), 3) << "stale on arrival: each request fetches";
}

// Every interim response is forwarded, in order, each written whole before
// the next (several 103s once raced each other on one stream).
TEST_F(OriginLinkTest, InterimResponsesAreForwardedInOrder) {
  startEdge();
  for (int round = 0; round < 20; ++round) {
    const std::string out = rawExchange(
        edge_->port(), "GET /hints?n=4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    size_t at = out.find("HTTP/1.1 102 ");
    ASSERT_EQ(at, 0u) << out;
    for (int i = 0; i < 4; ++i) {
      size_t next = out.find("HTTP/1.1 103 ", at + 1);
      ASSERT_NE(next, std::string::npos) << out;
      const std::string link = "Link: </s" + std::to_string(i) + ".css>; rel=preload\r\n\r\n";
      EXPECT_EQ(out.find(link, next), out.find("\r\n", next) + 2) << out;
      at = next;
    }
    size_t final_at = out.find("HTTP/1.1 200 ", at);
    ASSERT_NE(final_at, std::string::npos) << out;
    EXPECT_EQ(out.find("HTTP/1.1 103 ", final_at), std::string::npos);
    EXPECT_NE(out.find("final", final_at), std::string::npos);
  }
}

// A Range request that misses is answered 206 (or 416) as on a hit, while
// the whole object is fetched and stored.
TEST_F(OriginLinkTest, RangeOnAMissIsAnsweredPartially) {
  startEdge();
  auto part = httpRequest(edge_->port(), "GET", "/big?size=100000", {{"Range", "bytes=10-19"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.header("content-range"), "bytes 10-19/100000");
  ASSERT_EQ(part.body.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(static_cast<unsigned char>(part.body[i]), 10 + i);
  EXPECT_NE(part.header("cache-status").find("fwd=uri-miss"), std::string::npos);
  auto beyond = httpRequest(edge_->port(), "GET", "/big?size=5000", {{"Range", "bytes=9000-"}});
  EXPECT_EQ(beyond.status, 416);
  EXPECT_EQ(beyond.header("content-range"), "bytes */5000");
  // The whole object was stored: the next range is a hit.
  HttpResponse hit;
  for (int i = 0; i < 100; ++i) {
    hit = httpRequest(edge_->port(), "GET", "/big?size=100000", {{"Range", "bytes=99990-"}});
    if (hit.header("cache-status").find("; hit") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(hit.status, 206);
  EXPECT_NE(hit.header("cache-status").find("; hit"), std::string::npos);
  EXPECT_EQ(hit.header("content-range"), "bytes 99990-99999/100000");
  EXPECT_EQ(hit.body.size(), 10u);
}

// A client that accepts only br never gets the gzip body stored for one
// that accepts both (they used to select the same variant).
TEST_F(OriginLinkTest, NeverAContentCodingTheRequestDidNotAccept) {
  startEdge();
  auto both = httpRequest(edge_->port(), "GET", "/enc", {{"Accept-Encoding", "gzip, br"}});
  EXPECT_EQ(both.header("content-encoding"), "gzip");
  // The response is answered while it is being stored: wait (bounded) for
  // the store to have it.
  HttpResponse both_again;
  for (int i = 0; i < 100; ++i) {
    both_again = httpRequest(edge_->port(), "GET", "/enc", {{"Accept-Encoding", "br, gzip"}});
    if (both_again.header("cache-status").find("; hit") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(both_again.header("cache-status").find("; hit"), std::string::npos)
      << "the same set of codings, spelled otherwise, shares the variant";
  const int fetched = origin_->count("GET /enc");  // 1, or more if a retry above missed
  auto br = httpRequest(edge_->port(), "GET", "/enc", {{"Accept-Encoding", "br"}});
  EXPECT_EQ(br.header("content-encoding"), "br") << br.header("cache-status");
  auto none = httpRequest(edge_->port(), "GET", "/enc");
  EXPECT_EQ(none.header("content-encoding"), "");
  EXPECT_EQ(none.body, "body in identity");
  EXPECT_EQ(origin_->count("GET /enc"), fetched + 2);
}

// RFC 9213: a valid CDN-Cache-Control replaces Cache-Control; one that is
// not a Structured Fields Dictionary is ignored as a whole.
TEST_F(OriginLinkTest, CdnCacheControlWhenValidAndOnlyThen) {
  startEdge();
  // Stored objects become hits once committed (on the blocking pool).
  auto hitSoon = [&](const std::string& target) {
    for (int i = 0; i < 100; ++i) {
      if (httpGet(edge_->port(), target).header("cache-status").find("; hit") != std::string::npos)
        return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  EXPECT_TRUE(hitSoon("/cdn1?cc=no-store&cdn=max-age%3D60"));
  EXPECT_TRUE(hitSoon("/cdn2?cc=max-age%3D60&cdn=Max-Age%3D0"))
      << "an invalid CDN-Cache-Control must not override Cache-Control";
  auto first = httpGet(edge_->port(), "/cdn3?cc=max-age%3D60&cdn=no-store");
  EXPECT_EQ(first.header("cache-status").find("stored"), std::string::npos)
      << first.header("cache-status");
  EXPECT_EQ(origin_->count("GET /cdn1"), 1);
  EXPECT_EQ(origin_->count("GET /cdn2"), 1);
}

// RFC 9111 4.2.4 and RFC 5861: when the origin fails, a stored stale
// response is served where nothing forbids it, within the configured limits;
// otherwise the error goes to the client.
class StaleOnErrorTest : public OriginLinkTest {
 protected:
  // Stores `target` (stale on arrival: its Age is past its max-age) and
  // waits until the edge has it (a stale entry is revalidated: fwd=stale).
  void storeStale(const std::string& target) {
    ASSERT_EQ(httpGet(edge_->port(), target).status, 200);
    for (int i = 0; i < 100; ++i) {
      if (httpGet(edge_->port(), target).header("cache-status").find("fwd=stale") !=
          std::string::npos)
        return;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "never stored: " << target;
  }
  static bool servedStale(const HttpResponse& r) {
    return r.status == 200 && r.header("cache-status").find("stale-if-error") != std::string::npos;
  }
};

TEST_F(StaleOnErrorTest, ServedWithinTheAllowanceWhereNothingForbidsIt) {
  startEdge({"--cache.stale_on_error", "60s"});
  // 40 s stale; 140 s stale; no-cache; must-revalidate; s-maxage.
  const std::string plain = "/p?cc=max-age%3D60&age=100";
  const std::string old = "/o?cc=max-age%3D60&age=200";
  const std::string nc = "/nc?cc=no-cache%2C%20max-age%3D60";
  const std::string mr = "/mr?cc=max-age%3D60%2C%20must-revalidate&age=100";
  const std::string sm = "/sm?cc=s-maxage%3D60&age=100";
  for (const auto& t : {plain, old, nc, mr, sm}) storeStale(t);

  for (const char* mode : {"503", "500", "502", "504", "reset"}) {
    ASSERT_TRUE(origin_->fail(mode));
    auto r = httpGet(edge_->port(), plain);
    EXPECT_TRUE(servedStale(r)) << mode << ": " << r.status << " " << r.header("cache-status");
    EXPECT_EQ(r.body, "ok GET /p");
    // Past the allowance, or forbidden by the response: the error goes out.
    for (const auto& t : {old, nc, mr, sm}) {
      auto e = httpGet(edge_->port(), t);
      EXPECT_FALSE(servedStale(e)) << mode << " " << t << ": " << e.header("cache-status");
      EXPECT_EQ(e.status, std::string(mode) == "reset" ? 502 : std::stoi(mode)) << mode << " " << t;
    }
  }
  // 501 is not an origin error (RFC 5861 4): it is the answer.
  ASSERT_TRUE(origin_->fail("501"));
  EXPECT_EQ(httpGet(edge_->port(), plain).status, 501);
  // The origin gone altogether.
  origin_->process().kill();
  auto r = httpGet(edge_->port(), plain);
  EXPECT_TRUE(servedStale(r)) << r.status << " " << r.header("cache-status");
  EXPECT_EQ(httpGet(edge_->port(), "/never-stored").status, 502);
}

TEST_F(StaleOnErrorTest, OffByDefaultAndStaleIfErrorIsCapped) {
  startEdge({"--cache.stale_if_error_max", "60s"});
  const std::string plain = "/p?cc=max-age%3D60&age=100";
  const std::string sie = "/s?cc=max-age%3D60%2C%20stale-if-error%3D300&age=100";   // 40 s stale
  const std::string far = "/f?cc=max-age%3D60%2C%20stale-if-error%3D3000&age=200";  // 140 s
  for (const auto& t : {plain, sie, far}) storeStale(t);
  ASSERT_TRUE(origin_->fail("503"));
  EXPECT_EQ(httpGet(edge_->port(), plain).status, 503) << "no allowance unless configured";
  EXPECT_TRUE(servedStale(httpGet(edge_->port(), sie)));
  EXPECT_EQ(httpGet(edge_->port(), far).status, 503) << "stale-if-error past the cap";
  // The request may ask for it too (RFC 5861 4).
  auto asked = httpRequest(edge_->port(), "GET", plain, {{"Cache-Control", "stale-if-error=120"}});
  EXPECT_TRUE(servedStale(asked)) << asked.status << " " << asked.header("cache-status");
  // 501 is not an origin error, even under stale-if-error.
  ASSERT_TRUE(origin_->fail("501"));
  EXPECT_EQ(httpGet(edge_->port(), sie).status, 501);
  // The origin back: revalidated again.
  ASSERT_TRUE(origin_->fail("off"));
  auto back = httpGet(edge_->port(), sie);
  EXPECT_EQ(back.status, 200);
  EXPECT_FALSE(servedStale(back)) << back.header("cache-status");
}

// PURGE at an edge goes to the coordinator with the caller's own token (the
// coordinator checks it: tests/integration/cluster/security_test.cc); one
// without a token is refused here and forwarded nowhere, so an edge never
// lends its own credential to a caller.
TEST_F(OriginLinkTest, PurgeWithoutTheCallersTokenIsRefusedAtTheEdge) {
  // The coordinator is unreachable: what gets forwarded fails with a 5xx,
  // what is refused here gets a 401.
  EdgeProcess open_edge(dir_.sub("c2"), origin_->url(),
                        {"--coordinator.address", "127.0.0.1:1", "--purge.enabled", "true"});
  ASSERT_TRUE(open_edge.ok()) << open_edge.log();
  auto none = httpRequest(open_edge.port(), "PURGE", "/a", {});
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_NE(none.header("www-authenticate").find("Bearer"), std::string::npos);
  EXPECT_EQ(httpRequest(open_edge.port(), "PURGE", "/a", {{"Authorization", "Basic eDp5"}}).status,
            401);
  auto forwarded =
      httpRequest(open_edge.port(), "PURGE", "/a", {{"Authorization", "Bearer some-token"}});
  EXPECT_GE(forwarded.status, 500) << forwarded.body;

  // purge.token (optional) must also match, before anything is forwarded.
  EdgeProcess gated(dir_.sub("c3"), origin_->url(),
                    {"--coordinator.address", "127.0.0.1:1", "--purge.enabled", "true",
                     "--purge.token", "local-gate"});
  ASSERT_TRUE(gated.ok()) << gated.log();
  EXPECT_EQ(
      httpRequest(gated.port(), "PURGE", "/a", {{"Authorization", "Bearer some-token"}}).status,
      401);
  EXPECT_GE(
      httpRequest(gated.port(), "PURGE", "/a", {{"Authorization", "Bearer local-gate"}}).status,
      500);
  EXPECT_EQ(origin_->count("PURGE /a"), 0) << "a PURGE never goes to the origin";
}

}  // namespace
}  // namespace tern::testing
