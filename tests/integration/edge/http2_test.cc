// HTTP/2 at the edge, end to end: a real tern-edge, a real origin, real
// clients (curl, nghttp from nghttp2-client) and, for the attacks, a client
// that writes frames itself (tests/support/raw_h2.h).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/coordinator_process.h"
#include "tests/support/edge_process.h"
#include "tests/support/http_client.h"
#include "tests/support/raw_h2.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_origin.h"
#include "tests/support/wait.h"

namespace tern::testing {
namespace {

struct Run {
  int rc = -1;
  std::string out;
};

// Runs a shell command (a client on loopback) and keeps its standard output.
Run run(const std::string& cmd) {
  Run r;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!p) return r;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

double metricOf(const std::string& page, const std::string& series) {
  size_t at = page.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::atof(page.c_str() + at + series.size() + 2);
}

// A response as curl -i gives it: the status line, the fields, the body.
struct CurlResponse {
  std::string version;  // "2" or "1.1"
  int status = 0;
  std::vector<std::pair<std::string, std::string>> fields;  // names in lower case
  std::string body;
  std::string header(const std::string& name) const {
    for (const auto& [n, v] : fields) {
      if (n == name) return v;
    }
    return "";
  }
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

CurlResponse parseCurl(const std::string& text) {
  CurlResponse r;
  // Interim responses (103) come first: the final one is the last head.
  size_t at = 0;
  for (;;) {
    size_t end = text.find("\r\n\r\n", at);
    if (end == std::string::npos || text.compare(at, 5, "HTTP/") != 0) break;
    std::istringstream head(text.substr(at, end - at));
    std::string line;
    std::getline(head, line);  // "HTTP/2 200" or "HTTP/1.1 200 OK"
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) break;
    r.version = line.substr(5, sp - 5);
    r.status = std::atoi(line.c_str() + sp + 1);
    r.fields.clear();
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      size_t v = colon + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      r.fields.emplace_back(lower(line.substr(0, colon)), line.substr(v));
    }
    at = end + 4;
    if (r.status >= 200) break;
  }
  r.body = text.substr(at);
  return r;
}

class Http2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_.sub("cert.pem");
    key_ = dir_.sub("key.pem");
    ASSERT_EQ(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                           "-addext subjectAltName=DNS:localhost -keyout " +
                           key_ + " -out " + cert_ + " 2>/dev/null")
                              .c_str()),
              0);
  }
  void startEdge(std::vector<std::string> flags = {}) {
    edge_.reset();
    std::vector<std::string> all = {"--server.h2c", "true", "--tls.listen", "127.0.0.1:0",
                                    "--tls.cert",   cert_,  "--tls.key",    key_};
    all.insert(all.end(), flags.begin(), flags.end());
    // Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
    // default) before it is reused: keep it small so that RSS measures what
    // the edge holds.
    std::string asan = getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "";
    setenv("ASAN_OPTIONS", (asan + ":quarantine_size_mb=8").c_str(), 1);
    edge_ = std::make_unique<EdgeProcess>(dir_.sub("cache"), origin_.url(), all);
    setenv("ASAN_OPTIONS", asan.c_str(), 1);
    ASSERT_TRUE(edge_->ok()) << edge_->log();
  }
  std::string h2c(const std::string& target) {
    return "http://127.0.0.1:" + std::to_string(edge_->port()) + target;
  }
  CurlResponse curl(const std::string& args) {
    return parseCurl(run("curl -s -i --max-time 20 " + args).out);
  }
  static OriginResponse resp(std::string body, std::vector<std::pair<std::string, std::string>> h) {
    OriginResponse r;
    r.body = std::move(body);
    r.headers = std::move(h);
    return r;
  }
  // GETs over HTTP/2 until the edge answers from cache.
  CurlResponse primeH2(const std::string& target) {
    CurlResponse r;
    for (int i = 0; i < 100; ++i) {
      r = curl("--http2-prior-knowledge '" + h2c(target) + "'");
      if (r.header("cache-status").find("; hit") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return r;
  }
  std::string metrics() { return httpGet(edge_->adminPort(), "/metrics").body; }
  bool healthy() { return httpGet(edge_->adminPort(), "/healthz").status == 200; }

  TempDir dir_;
  TestOrigin origin_;
  std::string cert_, key_;
  std::unique_ptr<EdgeProcess> edge_;
};

TEST_F(Http2Test, AlpnAndPriorKnowledgeEnterTheSameJourneyAsHttp1) {
  startEdge({"--log.access", "true", "--log.access_file", dir_.sub("access.log")});
  origin_.set("/a", resp("hello", {{"Cache-Control", "max-age=60"}, {"ETag", "\"v1\""}}));
  // Cleartext HTTP/2 with prior knowledge: a miss, stored.
  auto miss = curl("--http2-prior-knowledge " + h2c("/a"));
  EXPECT_EQ(miss.version, "2");
  EXPECT_EQ(miss.status, 200);
  EXPECT_EQ(miss.body, "hello");
  EXPECT_NE(miss.header("cache-status").find("fwd=uri-miss"), std::string::npos) << miss.status;
  // The origin saw the protocol the request came in with.
  auto reqs = origin_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers["via"], "2 tern");
  EXPECT_EQ(reqs[0].headers["host"], "127.0.0.1:" + std::to_string(edge_->port()));
  // One cache for both protocols: HTTP/2 and HTTP/1.1 hit what HTTP/2 stored.
  auto hit = primeH2("/a");
  EXPECT_NE(hit.header("cache-status").find("tern; hit"), std::string::npos) << hit.status;
  EXPECT_EQ(hit.body, "hello");
  EXPECT_FALSE(hit.header("age").empty());
  auto h1 = httpGet(edge_->port(), "/a", {{"Host", "127.0.0.1:" + std::to_string(edge_->port())}});
  EXPECT_NE(h1.header("cache-status").find("hit"), std::string::npos);
  EXPECT_EQ(origin_.count("/a"), 1);
  // No connection-specific field goes out over HTTP/2 (curl would refuse it).
  EXPECT_EQ(hit.header("connection"), "");

  // TLS: ALPN picks h2 when offered, HTTP/1.1 otherwise.
  const std::string https = "https://localhost:" + std::to_string(edge_->tlsPort()) + "/a";
  auto tls2 = curl("--http2 --cacert " + cert_ + " " + https);
  EXPECT_EQ(tls2.version, "2");
  EXPECT_EQ(tls2.body, "hello");
  auto tls1 = curl("--http1.1 --cacert " + cert_ + " " + https);
  EXPECT_EQ(tls1.version, "1.1");
  EXPECT_EQ(tls1.body, "hello");
  // HTTP/1.1 without prior knowledge still works on the h2c listener.
  EXPECT_EQ(curl("--http1.1 " + h2c("/a")).version, "1.1");

  auto m = metrics();
  EXPECT_GE(metricOf(m, "tern_edge_requests_total{protocol=\"h2\"}"), 3) << m;
  EXPECT_GE(metricOf(m, "tern_edge_requests_total{protocol=\"h1\"}"), 3);
  EXPECT_GE(metricOf(m, "tern_edge_connections_total{protocol=\"h2\"}"), 3);

  // The access log names the protocol of each response.
  EXPECT_TRUE(eventually([&] {
    std::ifstream in(dir_.sub("access.log"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("\"protocol\":\"HTTP/2.0\"") != std::string::npos &&
           text.find("\"protocol\":\"HTTP/1.1\"") != std::string::npos;
  }));

  // Turned off: TLS answers HTTP/1.1 only, the plain port HTTP/1.1 only.
  startEdge({"--server.http2", "false", "--server.h2c", "false"});
  const std::string https2 = "https://localhost:" + std::to_string(edge_->tlsPort()) + "/a";
  EXPECT_EQ(curl("--http2 --cacert " + cert_ + " " + https2).version, "1.1");
  EXPECT_NE(curl("--http2-prior-knowledge " + h2c("/a")).version, "2");
  EXPECT_TRUE(healthy());
}

TEST_F(Http2Test, StreamsOfOneConnectionCollapseAndConditionalsHeadRangeAndPostWork) {
  startEdge();
  auto slow = resp("0123456789", {{"Cache-Control", "max-age=60"}, {"ETag", "\"r1\""}});
  slow.delay_ms = 300;
  origin_.set("/slow", slow);
  // 20 streams for the same object on one connection: one origin fetch.
  auto many = run("nghttp -n -s -m 20 " + h2c("/slow"));
  EXPECT_EQ(many.rc, 0) << many.out;
  EXPECT_EQ(origin_.count("/slow"), 1);
  EXPECT_NE(many.out.find("200"), std::string::npos) << many.out;

  auto not_modified = curl("--http2-prior-knowledge -H 'If-None-Match: \"r1\"' " + h2c("/slow"));
  EXPECT_EQ(not_modified.status, 304) << not_modified.status;
  EXPECT_EQ(not_modified.body, "");
  auto head = curl("--http2-prior-knowledge -I " + h2c("/slow"));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), "10");
  EXPECT_EQ(head.body, "");
  auto range = curl("--http2-prior-knowledge -r 2-5 " + h2c("/slow"));
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(range.body, "2345");
  EXPECT_EQ(range.header("content-range"), "bytes 2-5/10");
  EXPECT_EQ(origin_.count("/slow"), 1);

  // A request body over DATA frames reaches the origin whole.
  origin_.set("/form", resp("posted", {}));
  std::string body(100000, 'x');
  { std::ofstream(dir_.sub("body.bin")) << body; }
  auto post =
      curl("--http2-prior-knowledge --data-binary @" + dir_.sub("body.bin") + " " + h2c("/form"));
  EXPECT_EQ(post.status, 200);
  EXPECT_EQ(post.body, "posted");
  bool seen = false;
  for (const auto& r : origin_.requests()) {
    if (r.method == "POST" && r.target == "/form") {
      seen = true;
      EXPECT_EQ(r.body.size(), body.size());
    }
  }
  EXPECT_TRUE(seen);
  // A body over server.body_limit gets 413 on its stream; the connection lives.
  startEdge({"--server.body_limit", "1KiB"});
  auto big =
      curl("--http2-prior-knowledge --data-binary @" + dir_.sub("body.bin") + " " + h2c("/form"));
  EXPECT_EQ(big.status, 413) << big.status;
  EXPECT_TRUE(healthy());
}

TEST_F(Http2Test, LargeBodiesFollowFlowControlWithBoundedMemory) {
  startEdge({"--server.body_timeout", "2s"});
  std::string big(24 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 % 251);
  origin_.set("/big", resp(big, {{"Cache-Control", "max-age=60"}}));
  // A miss streams through, a hit follows; both whole.
  std::string out = dir_.sub("big.out");
  auto miss = run("curl -s --http2-prior-knowledge -o " + out +
                  " -w '%{http_code} %{size_download}' " + h2c("/big"));
  EXPECT_EQ(miss.out, "200 " + std::to_string(big.size()));
  std::ifstream in(out, std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == big) << "body differs";
  EXPECT_TRUE(eventually([&] {
    return curl("--http2-prior-knowledge -o /dev/null " + h2c("/big"))
                   .header("cache-status")
                   .find("hit") != std::string::npos ||
           run("curl -s -o /dev/null -D - --http2-prior-knowledge " + h2c("/big"))
                   .out.find("; hit") != std::string::npos;
  }));
  // Small windows (64 KiB - 1 for the stream and the connection): the
  // client's WINDOW_UPDATEs pace the body.
  auto paced = run("nghttp -w 16 -W 16 " + h2c("/big") + " | wc -c");
  EXPECT_EQ(std::atol(paced.out.c_str()), static_cast<long>(big.size()));

  // Zero windows: 16 streams of the 24 MiB object, never read. Each holds at
  // most a chunk at the edge, and the body timeout cuts the stalled
  // connection off.
  const std::string h2_requests = "tern_edge_requests_total{protocol=\"h2\"}";
  const long before = residentKiB(edge_->process().pid());
  const double taken = metricOf(metrics(), h2_requests);
  RawH2 stalled(edge_->port(), {{0x4, 0}});  // SETTINGS_INITIAL_WINDOW_SIZE = 0
  ASSERT_TRUE(stalled.handshake());
  std::string requests;
  for (uint32_t id = 1; id <= 31; id += 2)
    requests += h2::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, id, h2::getBlock("/big"));
  ASSERT_TRUE(stalled.send(requests));
  ASSERT_TRUE(eventually([&] { return metricOf(metrics(), h2_requests) >= taken + 16; }));
  const long during = residentKiB(edge_->process().pid());
  EXPECT_LT(during - before, 64 * 1024) << "KiB before " << before << ", during " << during;
  EXPECT_TRUE(stalled.waitClosed(10000)) << "a connection stalled by its windows is cut off";

  // Windows opened wide (2 GiB) by a client that then reads nothing: the
  // edge writes one batch at a time as the socket takes it, not what the
  // windows would allow.
  const long before_wide = residentKiB(edge_->process().pid());
  const double taken_wide = metricOf(metrics(), h2_requests);
  RawH2 wide(edge_->port(), {{0x4, 0x7fffffff}});
  ASSERT_TRUE(wide.handshake());
  ASSERT_TRUE(
      wide.send(h2::frame(h2::kWindowUpdate, 0, 0, std::string("\x7f\xfe\xff\xff", 4)) + requests));
  ASSERT_TRUE(eventually([&] { return metricOf(metrics(), h2_requests) >= taken_wide + 16; }));
  // Still not reading: once the socket stops taking data for the body
  // timeout (2 s), the edge closes and a write fails. Until then the edge's
  // RSS is sampled: it stays bounded all along.
  bool gone = false;
  long during_wide = 0;
  for (int i = 0; i < 100 && !gone; ++i) {
    during_wide = std::max(during_wide, residentKiB(edge_->process().pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gone = !wide.send(h2::frame(h2::kPing, 0, 0, std::string(8, 'p')), 100);
  }
  EXPECT_TRUE(gone) << "a client that never reads is cut off";
  EXPECT_LT(during_wide - before_wide, 64 * 1024)
      << "KiB before " << before_wide << ", at most " << during_wide;
  EXPECT_TRUE(healthy());
}

TEST_F(Http2Test, AConnectionWhoseStreamsAllEndedGoesIdle) {
  // A request whose stream the client resets while the origin is slow, then
  // silence: the connection is idle, and closed after the idle timeout.
  startEdge({"--server.idle_timeout", "1s"});
  auto slow = resp("slow", {{"Cache-Control", "no-store"}});
  slow.delay_ms = 1500;
  origin_.set("/slowreset", slow);
  RawH2 c(edge_->port());
  ASSERT_TRUE(c.handshake());
  ASSERT_TRUE(c.send(
      h2::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, 1, h2::getBlock("/slowreset"))));
  ASSERT_TRUE(eventually([&] { return origin_.count("/slowreset") == 1; }));
  ASSERT_TRUE(c.send(h2::frame(h2::kRstStream, 0, 1, std::string("\0\0\0\x08", 4))));
  EXPECT_TRUE(c.waitClosed(8000)) << "closed once idle";
  EXPECT_TRUE(healthy());
}

// TLS (edge/server/tls_stream.h) under both protocols: bodies much larger
// than a record and than a write batch, keep-alive, TLS 1.2 and 1.3, and
// clients that go away mid-response.
TEST_F(Http2Test, TlsCarriesLargeBodiesForBothProtocols) {
  startEdge();
  std::string big(5 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 13 % 253);
  origin_.set("/tlsbig", resp(big, {{"Cache-Control", "max-age=60"}}));
  origin_.set("/small", resp("small", {{"Cache-Control", "max-age=60"}}));
  const std::string base = "https://localhost:" + std::to_string(edge_->tlsPort());
  for (const std::string proto : {"--http1.1", "--http2"}) {
    for (const std::string tls : {"--tlsv1.2 --tls-max 1.2", "--tlsv1.3"}) {
      for (int round = 0; round < 2; ++round) {  // a miss, then a hit
        std::string out = dir_.sub("tls.out");
        auto r = run("curl -s " + proto + " " + tls + " --cacert " + cert_ + " -o " + out +
                     " -w '%{http_code} %{size_download} %{http_version}' " + base + "/tlsbig");
        EXPECT_EQ(r.out, "200 " + std::to_string(big.size()) + (proto == "--http2" ? " 2" : " 1.1"))
            << proto << " " << tls;
        std::ifstream in(out, std::ios::binary);
        std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_TRUE(got == big) << proto << " " << tls << ": body differs";
      }
    }
    // Several requests on one kept-alive connection.
    auto many = run("curl -s " + proto + " --cacert " + cert_ + " " + base + "/small " + base +
                    "/small " + base + "/small -w ' %{num_connects}'");
    EXPECT_EQ(many.out, "small 1small 0small 0") << proto;  // connections opened per request
  }
  // Clients that leave mid-body do not disturb the others.
  for (int i = 0; i < 5; ++i)
    run("curl -s --max-filesize 1 --http1.1 --cacert " + cert_ + " -o /dev/null " + base +
        "/tlsbig; curl -s -m 0.05 --http2 --cacert " + cert_ + " -o /dev/null " + base + "/tlsbig");
  EXPECT_EQ(curl("--http2 --cacert " + cert_ + " " + base + "/small").body, "small");
  EXPECT_TRUE(healthy());
}

TEST_F(Http2Test, GracefulStopSendsGoawayAndFinishesStreamsInFlight) {
  startEdge();
  auto slow = resp("finished", {});
  slow.delay_ms = 800;
  origin_.set("/slowdone", slow);
  std::string log = dir_.sub("nghttp.log");
  Process client({"/bin/sh", "-c", "exec nghttp -v " + h2c("/slowdone")}, log);
  ASSERT_TRUE(eventually([&] { return origin_.count("/slowdone") == 1; }));
  edge_->process().signal(SIGTERM);
  EXPECT_GE(client.wait(10000), 0);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("recv GOAWAY"), std::string::npos) << text;
  EXPECT_NE(text.find(":status: 200"), std::string::npos) << text;
  EXPECT_NE(text.find("finished"), std::string::npos) << text;
  int status = edge_->process().wait(5000);
  ASSERT_GE(status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(Http2Test, PurgeOverHttp2TakesTheSamePath) {
  // The coordinator is unreachable: a PURGE without the caller's token is
  // refused here (401), one with a token is forwarded and fails (5xx).
  startEdge({"--coordinator.address", "127.0.0.1:1", "--purge.enabled", "true"});
  auto none = curl("--http2-prior-knowledge -X PURGE " + h2c("/a"));
  EXPECT_EQ(none.status, 401) << none.status;
  auto forwarded =
      curl("--http2-prior-knowledge -X PURGE -H 'Authorization: Bearer t' " + h2c("/a"));
  EXPECT_GE(forwarded.status, 500) << forwarded.status;
  EXPECT_EQ(origin_.count("/a"), 0);
}

// ---- attacks: each against a running edge, which must stay up with
// bounded memory and keep serving others ----

class Http2AttackTest : public Http2Test {
 protected:
  void SetUp() override {
    Http2Test::SetUp();
    startEdge({"--server.h2_max_concurrent_streams", "16"});
    origin_.set("/hot", resp("hot", {{"Cache-Control", "max-age=600"}}));
    primeH2("/hot");
    baseline_ = residentKiB(edge_->process().pid());
  }
  void TearDown() override {
    // Still up, still serving, memory back within bounds.
    EXPECT_TRUE(healthy()) << edge_->log();
    EXPECT_EQ(curl("--http2-prior-knowledge " + h2c("/hot")).body, "hot");
    EXPECT_LT(residentKiB(edge_->process().pid()) - baseline_, 64 * 1024);
  }
  long baseline_ = 0;
};

TEST_F(Http2AttackTest, RapidResetIsCutOff) {
  // CVE-2023-44487: open a stream and cancel it at once, over and over.
  RawH2 c(edge_->port());
  ASSERT_TRUE(c.handshake());
  std::string burst;
  uint32_t id = 1;
  bool sent = true;
  for (int round = 0; round < 20 && sent; ++round) {
    burst.clear();
    for (int i = 0; i < 500; ++i, id += 2) {
      burst += h2::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, id, h2::getBlock("/hot"));
      burst += h2::frame(h2::kRstStream, 0, id, std::string("\0\0\0\x08", 4));
    }
    sent = c.send(burst, 2000);
  }
  // Hits answer at once: nghttp2's RST_STREAM rate limit ends it.
  EXPECT_TRUE(c.waitClosed(10000));
  ASSERT_TRUE(c.goawayCode().has_value());
  EXPECT_NE(*c.goawayCode(), h2::kNoError);
  EXPECT_GE(metricOf(metrics(), "tern_edge_h2_connection_errors_total"), 1);

  // Requests that go to the origin keep working after their stream is
  // reset: past twice the stream limit of those, ENHANCE_YOUR_CALM. The
  // resets follow once the edge has taken the requests (its request counter
  // says so), so that their journeys have begun.
  auto slow = resp("slow", {{"Cache-Control", "no-store"}});
  slow.delay_ms = 3000;
  origin_.set("/wait", slow);
  const std::string h2_requests = "tern_edge_requests_total{protocol=\"h2\"}";
  const double base = metricOf(metrics(), h2_requests);
  RawH2 d(edge_->port());
  ASSERT_TRUE(d.handshake());
  uint32_t sid = 1;
  int opened = 0;
  for (int round = 0; round < 6; ++round) {
    std::string opens, resets;
    for (int i = 0; i < 16; ++i, sid += 2, ++opened) {
      opens +=
          h2::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, sid, h2::getBlock("/wait"));
      resets += h2::frame(h2::kRstStream, 0, sid, std::string("\0\0\0\x08", 4));
    }
    if (!d.send(opens, 2000)) break;
    const int expect = std::min(opened, 2 * 16);
    if (!eventually([&] { return metricOf(metrics(), h2_requests) - base >= expect; })) break;
    if (!d.send(resets, 2000)) break;
  }
  EXPECT_TRUE(d.waitClosed(10000)) << edge_->log();
  ASSERT_TRUE(d.goawayCode().has_value());
  EXPECT_EQ(*d.goawayCode(), h2::kEnhanceYourCalm);
  EXPECT_EQ(metricOf(metrics(), h2_requests) - base, 2 * 16) << "none taken past the limit";
}

TEST_F(Http2AttackTest, ContinuationFloodIsCutOff) {
  // A header block that never ends (CVE-2024-27316 and kin).
  RawH2 c(edge_->port());
  ASSERT_TRUE(c.handshake());
  std::string flood = h2::frame(h2::kHeaders, 0, 1, h2::getBlock("/hot"));
  std::string crumb = h2::literal("x-crumb", std::string(1000, 'c'));
  for (int i = 0; i < 2000; ++i) flood += h2::frame(h2::kContinuation, 0, 1, crumb);
  c.send(flood, 3000);
  EXPECT_TRUE(c.waitClosed(10000));
}

TEST_F(Http2AttackTest, HpackBombIsAnswered431WithoutDecodingItAll) {
  // One 4000-byte entry in the dynamic table, then referenced 10,000 times
  // (one byte each): 40 MB of header list from 10 kB on the wire.
  RawH2 c(edge_->port());
  ASSERT_TRUE(c.handshake());
  std::string block = h2::getBlock("/hot") + h2::literal("x-bomb", std::string(4000, 'b'), true);
  for (int i = 0; i < 10000; ++i) block += h2::indexed(62);
  ASSERT_TRUE(c.send(h2::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, 1, block)));
  std::string status;
  for (int i = 0; i < 20 && status.empty(); ++i) {
    auto f = c.read(5000);
    if (!f) break;
    for (const auto& [n, v] : f->headers) {
      if (n == ":status") status = v;
    }
  }
  EXPECT_EQ(status, "431");
  EXPECT_GE(metricOf(metrics(), "tern_edge_bad_requests_total"), 1);
}

TEST_F(Http2AttackTest, SettingsAndPingFloodsFromAClientThatDoesNotReadAreCutOff) {
  RawH2 c(edge_->port());
  ASSERT_TRUE(c.handshake());
  std::string pings, settings;
  for (int i = 0; i < 10000; ++i) {
    pings += h2::frame(h2::kPing, 0, 0, std::string(8, static_cast<char>(i)));
    settings += h2::settings({{0x3, 100}});
  }
  // The edge's acknowledgements pile up behind a client that never reads.
  bool sending = true;
  for (int i = 0; i < 1000 && sending; ++i) sending = c.send(i % 2 ? pings : settings, 1000);
  EXPECT_FALSE(sending) << "the edge must stop taking frames from a flooding peer";
  EXPECT_TRUE(c.waitClosed(10000));
}

TEST_F(Http2AttackTest, StreamsOverTheLimitAreRefused) {
  auto slow = resp("slow", {{"Cache-Control", "no-store"}});
  slow.delay_ms = 500;
  origin_.set("/wait", slow);
  std::string burst;
  for (uint32_t id = 1; id <= 79; id += 2)  // 40 streams, 16 allowed
    burst += h2::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, id, h2::getBlock("/wait"));
  {
    // Before the client has acknowledged the limit, streams over it are
    // refused one by one (REFUSED_STREAM: safe to retry), the others answered.
    RawH2 c(edge_->port());
    ASSERT_TRUE(c.send(burst));
    int refused = 0, answered = 0;
    while (refused + answered < 40) {
      auto f = c.read(5000);
      if (!f) break;
      if (f->type == h2::kRstStream && f->payload.size() == 4 &&
          static_cast<uint8_t>(f->payload[3]) == h2::kRefusedStream)
        ++refused;
      if (f->type == h2::kHeaders) ++answered;
    }
    EXPECT_EQ(answered, 16);
    EXPECT_EQ(refused, 24);
  }
  // Past the acknowledged limit the client breaks the protocol: GOAWAY.
  RawH2 c(edge_->port());
  ASSERT_TRUE(c.handshake());
  ASSERT_TRUE(c.send(burst));
  EXPECT_TRUE(c.waitClosed(10000));
  ASSERT_TRUE(c.goawayCode().has_value());
  EXPECT_EQ(*c.goawayCode(), 1u);  // PROTOCOL_ERROR
}

}  // namespace
}  // namespace tern::testing
