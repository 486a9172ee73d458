// H2Connection without sockets: frames in (built by tests/support/raw_h2.h),
// frames out, requests handed to a recording dispatcher.

#include "edge/server/h2_connection.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include "tests/support/raw_h2.h"

namespace tern::edge::server {
namespace {

namespace h2 = tern::testing::h2;

struct OutFrame {
  uint8_t type = 0, flags = 0;
  uint32_t stream = 0;
  std::string payload;
};

std::vector<OutFrame> framesOf(std::string_view bytes) {
  std::vector<OutFrame> out;
  while (bytes.size() >= 9) {
    const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
    size_t len = (size_t{b[0]} << 16) | (size_t{b[1]} << 8) | b[2];
    if (bytes.size() < 9 + len) break;
    OutFrame f;
    f.type = b[3];
    f.flags = b[4];
    f.stream = ((uint32_t{b[5]} << 24) | (uint32_t{b[6]} << 16) | (uint32_t{b[7]} << 8) | b[8]) &
               0x7fffffff;
    f.payload = std::string(bytes.substr(9, len));
    out.push_back(std::move(f));
    bytes.remove_prefix(9 + len);
  }
  return out;
}

// The fields of response header blocks, decoded in order (HPACK keeps state).
class Inflater {
 public:
  Inflater() { nghttp2_hd_inflate_new(&hd_); }
  ~Inflater() { nghttp2_hd_inflate_del(hd_); }
  std::vector<std::pair<std::string, std::string>> decode(std::string block) {
    std::vector<std::pair<std::string, std::string>> out;
    auto* in = reinterpret_cast<uint8_t*>(block.data());
    size_t left = block.size();
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      ssize_t used = nghttp2_hd_inflate_hd2(hd_, &nv, &flags, in, left, 1);
      if (used < 0) break;
      in += used;
      left -= static_cast<size_t>(used);
      if (flags & NGHTTP2_HD_INFLATE_EMIT)
        out.emplace_back(std::string(reinterpret_cast<char*>(nv.name), nv.namelen),
                         std::string(reinterpret_cast<char*>(nv.value), nv.valuelen));
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(hd_);
        break;
      }
    }
    return out;
  }

 private:
  nghttp2_hd_inflater* hd_ = nullptr;
};

std::string fieldOf(const std::vector<std::pair<std::string, std::string>>& fields,
                    const std::string& name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return v;
  }
  return "<none>";
}

// A body whose chunks are handed out when the test says so.
class HeldSource : public cache::BodySource {
 public:
  void next(std::function<void(Result<std::string_view>)> done) override {
    pending = std::move(done);
  }
  std::function<void(Result<std::string_view>)> pending;
};

const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

class H2ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { make(H2Settings{}); }
  void make(H2Settings settings) {
    H2Connection::Hooks hooks;
    hooks.dispatch = [this](std::shared_ptr<cache::Request> req,
                            std::shared_ptr<cache::Responder> responder) {
      requests_.push_back(req);
      responders_.push_back(responder);
    };
    hooks.output_ready = [this] { ++ready_; };
    hooks.rejected = [this](int status, const std::string&) { rejected_.push_back(status); };
    hooks.connection_error = [this](const std::string& why) { errors_.push_back(why); };
    auto c = H2Connection::create(settings, std::move(hooks), "10.0.0.1", "https");
    ASSERT_TRUE(c.ok());
    conn_ = *c;
    ASSERT_TRUE(conn_->receive(kPreface + h2::settings({})).isOk());
  }
  std::vector<OutFrame> drain() {
    std::string out;
    conn_->pendingOutput(out, 1 << 20);
    return framesOf(out);
  }
  std::shared_ptr<H2Connection> conn_;
  std::vector<std::shared_ptr<cache::Request>> requests_;
  std::vector<std::shared_ptr<cache::Responder>> responders_;
  std::vector<int> rejected_;
  std::vector<std::string> errors_;
  int ready_ = 0;
};

std::string headersFrame(uint32_t id, const std::string& block, bool end_stream = true) {
  return h2::frame(h2::kHeaders, h2::kEndHeaders | (end_stream ? h2::kEndStream : 0), id, block);
}

TEST_F(H2ConnectionTest, AStreamBecomesARequestAndItsResponseFrames) {
  drain();
  std::string block = h2::getBlock("/a?b") + h2::literal("cookie", "x=1") +
                      h2::literal("cookie", "y=2") + h2::literal("accept", "*/*");
  ASSERT_TRUE(conn_->receive(headersFrame(1, block)).isOk());
  ASSERT_EQ(requests_.size(), 1u);
  const auto& req = *requests_[0];
  EXPECT_EQ(req.protocol, cache::Protocol::kHttp2);
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/a?b");
  EXPECT_EQ(req.scheme, "https");
  EXPECT_EQ(req.client_ip, "10.0.0.1");
  EXPECT_EQ(http::findField(req.headers, "host"), "test");
  EXPECT_EQ(http::findField(req.headers, "cookie"), "x=1; y=2");
  EXPECT_EQ(conn_->awaitingAnswer(), 1u);

  responders_[0]->respond(200, {{"Content-Type", "text/plain"}, {"Connection", "close"}},
                          cache::stringSource("hello"), 5);
  EXPECT_EQ(conn_->awaitingAnswer(), 0u);
  auto frames = drain();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, h2::kHeaders);
  Inflater inflater;
  auto fields = inflater.decode(frames[0].payload);
  EXPECT_EQ(fieldOf(fields, ":status"), "200");
  EXPECT_EQ(fieldOf(fields, "content-type"), "text/plain");  // lower case, as HTTP/2 wants
  EXPECT_EQ(fieldOf(fields, "content-length"), "5");
  EXPECT_EQ(fieldOf(fields, "connection"), "<none>");  // connection-specific: never sent
  EXPECT_EQ(frames[1].type, h2::kData);
  EXPECT_EQ(frames[1].payload, "hello");
  EXPECT_TRUE(frames[1].flags & h2::kEndStream);
}

TEST_F(H2ConnectionTest, ABodyThatIsNotReadyIsDeferredAndResumed) {
  drain();
  ASSERT_TRUE(conn_->receive(headersFrame(1, h2::getBlock("/a"))).isOk());
  auto source = std::make_unique<HeldSource>();
  HeldSource* held = source.get();
  responders_[0]->respond(200, {}, std::move(source), std::nullopt);
  auto frames = drain();
  ASSERT_EQ(frames.size(), 1u);  // the head; the body is not there yet
  EXPECT_EQ(conn_->sendingStreams(), 1u);
  ASSERT_TRUE(held->pending);
  const int before = ready_;
  std::string chunk = "part";
  std::exchange(held->pending, nullptr)(std::string_view(chunk));
  EXPECT_GT(ready_, before) << "the session is told to write";
  frames = drain();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, "part");
  EXPECT_FALSE(frames[0].flags & h2::kEndStream);
  ASSERT_TRUE(held->pending);
  std::exchange(held->pending, nullptr)(std::string_view());
  frames = drain();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].flags & h2::kEndStream);
  EXPECT_EQ(conn_->sendingStreams(), 0u);
}

TEST_F(H2ConnectionTest, AnAnswerForAStreamTheClientResetIsDropped) {
  ASSERT_TRUE(conn_->receive(headersFrame(1, h2::getBlock("/a"))).isOk());
  ASSERT_TRUE(conn_->receive(h2::frame(h2::kRstStream, 0, 1, std::string("\0\0\0\x08", 4))).isOk());
  drain();
  responders_[0]->respond(200, {}, cache::stringSource("late"), 4);
  EXPECT_TRUE(drain().empty());
  EXPECT_EQ(conn_->awaitingAnswer(), 0u);
  // A journey that ends without answering resets its stream (HTTP/1.1
  // closes the connection) instead of leaving it open for ever.
  ASSERT_TRUE(conn_->receive(headersFrame(3, h2::getBlock("/b"))).isOk());
  EXPECT_EQ(conn_->awaitingAnswer(), 1u);
  responders_.clear();
  auto frames = drain();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, h2::kRstStream);
  EXPECT_EQ(frames[0].stream, 3u);
  EXPECT_EQ(conn_->awaitingAnswer(), 0u);
}

TEST_F(H2ConnectionTest, BodiesHeldAreReleasedHoweverTheStreamEnds) {
  H2Settings small;
  small.body_limit_bytes = 1000;  // 2000 held at most per connection
  make(small);
  std::string post = h2::literal(":method", "POST") + h2::literal(":scheme", "http") +
                     h2::literal(":path", "/p") + h2::literal(":authority", "test");
  uint32_t id = 1;
  // Complete bodies reset in the same read, twenty times: 18 KB in all.
  for (int i = 0; i < 20; ++i, id += 2) {
    ASSERT_TRUE(conn_
                    ->receive(headersFrame(id, post, false) +
                              h2::frame(h2::kData, h2::kEndStream, id, std::string(900, 'x')) +
                              h2::frame(h2::kRstStream, 0, id, std::string("\0\0\0\x08", 4)))
                    .isOk());
  }
  // Bodies whose journeys answered.
  for (int i = 0; i < 5; ++i, id += 2) {
    ASSERT_TRUE(conn_
                    ->receive(headersFrame(id, post, false) +
                              h2::frame(h2::kData, h2::kEndStream, id, std::string(900, 'y')))
                    .isOk());
    ASSERT_FALSE(responders_.empty());
    responders_.back()->respond(204, {}, nullptr, std::nullopt);
  }
  drain();
  EXPECT_TRUE(rejected_.empty());
  // Two bodies in flight at once are within the connection's bound; a third is not.
  for (int i = 0; i < 3; ++i, id += 2) {
    ASSERT_TRUE(conn_
                    ->receive(headersFrame(id, post, false) +
                              h2::frame(h2::kData, h2::kEndStream, id, std::string(900, 'z')))
                    .isOk());
  }
  EXPECT_EQ(rejected_, std::vector<int>{413});
  // A declared length over the limit is refused before the body is sent.
  ASSERT_TRUE(
      conn_->receive(headersFrame(id, post + h2::literal("content-length", "5000"), false)).isOk());
  EXPECT_EQ(rejected_.size(), 2u);
}

TEST_F(H2ConnectionTest, OneBatchIsBoundedHoweverWideTheWindows) {
  // The client opens its windows to 2 GiB and asks for 4 MiB on 4 streams.
  ASSERT_TRUE(conn_
                  ->receive(h2::settings({{0x4, 0x7fffffff}}) +
                            h2::frame(h2::kWindowUpdate, 0, 0, std::string("\x7f\xfe\xff\xff", 4)))
                  .isOk());
  drain();
  std::string big(4 << 20, 'b');
  for (uint32_t id = 1; id <= 7; id += 2) {
    ASSERT_TRUE(conn_->receive(headersFrame(id, h2::getBlock("/big"))).isOk());
    responders_.back()->respond(200, {}, cache::stringSource(big), big.size());
  }
  std::string out;
  conn_->pendingOutput(out, 64 * 1024);
  EXPECT_LT(out.size(), 64 * 1024 + 17 * 1024) << "one batch, not every window's worth";
  // The rest comes batch by batch.
  size_t total = out.size(), batches = 1;
  for (;;) {
    out.clear();
    conn_->pendingOutput(out, 64 * 1024);
    if (out.empty()) break;
    EXPECT_LT(out.size(), 64 * 1024 + 17 * 1024);
    total += out.size();
    ++batches;
  }
  EXPECT_GT(total, 4 * big.size());
  EXPECT_GT(batches, 200u);
}

TEST_F(H2ConnectionTest, AnHpackBombIsAnswered431BeforeItIsDecodedWhole) {
  drain();
  std::string block = h2::getBlock("/a") + h2::literal("x-bomb", std::string(4000, 'b'), true);
  for (int i = 0; i < 10000; ++i) block += h2::indexed(62);  // 40 MB decoded, 10 kB sent
  ASSERT_TRUE(conn_->receive(headersFrame(1, block)).isOk());
  EXPECT_TRUE(requests_.empty());
  EXPECT_EQ(rejected_, std::vector<int>{431});
  auto frames = drain();
  ASSERT_FALSE(frames.empty());
  Inflater inflater;
  EXPECT_EQ(fieldOf(inflater.decode(frames[0].payload), ":status"), "431");
}

TEST_F(H2ConnectionTest, RequestBodiesAreBoundedAndHostMustMatchAuthority) {
  H2Settings small;
  small.body_limit_bytes = 1000;
  make(small);
  drain();
  std::string post = h2::literal(":method", "POST") + h2::literal(":scheme", "http") +
                     h2::literal(":path", "/p") + h2::literal(":authority", "test");
  ASSERT_TRUE(conn_->receive(headersFrame(1, post, false)).isOk());
  ASSERT_TRUE(conn_->receive(h2::frame(h2::kData, 0, 1, std::string(600, 'x'))).isOk());
  ASSERT_TRUE(
      conn_->receive(h2::frame(h2::kData, h2::kEndStream, 1, std::string(600, 'x'))).isOk());
  EXPECT_TRUE(requests_.empty());
  EXPECT_EQ(rejected_, std::vector<int>{413});
  // A body within the limit arrives whole.
  ASSERT_TRUE(conn_->receive(headersFrame(3, post, false)).isOk());
  ASSERT_TRUE(
      conn_->receive(h2::frame(h2::kData, h2::kEndStream, 3, std::string(700, 'y'))).isOk());
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0]->body, std::string(700, 'y'));
  // RFC 9113 8.3.1: a Host naming another authority is refused.
  ASSERT_TRUE(
      conn_->receive(headersFrame(5, h2::getBlock("/h") + h2::literal("host", "other"))).isOk());
  EXPECT_EQ(requests_.size(), 1u);
  EXPECT_EQ(rejected_.back(), 400);
}

TEST_F(H2ConnectionTest, ShutdownSendsGoawayAndLetsStreamsInFlightFinish) {
  drain();
  ASSERT_TRUE(conn_->receive(headersFrame(1, h2::getBlock("/a"))).isOk());
  conn_->shutdown();
  auto frames = drain();
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().type, h2::kGoaway);
  EXPECT_TRUE(conn_->wantRead() || conn_->wantWrite());
  responders_[0]->respond(200, {}, cache::stringSource("done"), 4);
  frames = drain();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].payload, "done");
  EXPECT_FALSE(conn_->wantRead() || conn_->wantWrite()) << "finished: the session closes";
}

TEST_F(H2ConnectionTest, RequestTrailersAreReadAndLeftOut) {
  std::string post = h2::literal(":method", "POST") + h2::literal(":scheme", "http") +
                     h2::literal(":path", "/p") + h2::literal(":authority", "test");
  ASSERT_TRUE(conn_->receive(headersFrame(1, post, false)).isOk());
  ASSERT_TRUE(conn_->receive(h2::frame(h2::kData, 0, 1, "body")).isOk());
  ASSERT_TRUE(conn_->receive(headersFrame(1, h2::literal("x-checksum", "abc"))).isOk());
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0]->body, "body");
  EXPECT_FALSE(http::findField(requests_[0]->headers, "x-checksum").has_value());
}

TEST_F(H2ConnectionTest, MalformedRequestsAreResetAndNeverDispatched) {
  drain();
  // RFC 9113 8.2.2 and 8.3.1: a connection-specific field, a missing :path,
  // an upper-case name, a pseudo-header after a regular field.
  const std::vector<std::string> blocks = {
      h2::getBlock("/a") + h2::literal("connection", "keep-alive"),
      h2::literal(":method", "GET") + h2::literal(":scheme", "http") +
          h2::literal(":authority", "test"),
      h2::getBlock("/a") + h2::literal("X-Upper", "1"),
      h2::literal(":method", "GET") + h2::literal("accept", "*/*") + h2::literal(":path", "/a") +
          h2::literal(":scheme", "http") + h2::literal(":authority", "test"),
  };
  uint32_t id = 1;
  for (const auto& block : blocks) {
    ASSERT_TRUE(conn_->receive(headersFrame(id, block)).isOk());
    auto frames = drain();
    ASSERT_FALSE(frames.empty()) << id;
    EXPECT_EQ(frames[0].type, h2::kRstStream) << id;
    EXPECT_EQ(frames[0].stream, id);
    id += 2;
  }
  EXPECT_TRUE(requests_.empty());
  // The connection carries on.
  ASSERT_TRUE(conn_->receive(headersFrame(id, h2::getBlock("/ok"))).isOk());
  EXPECT_EQ(requests_.size(), 1u);
}

TEST_F(H2ConnectionTest, ContinuationFloodIsAConnectionError) {
  std::string flood = h2::frame(h2::kHeaders, 0, 1, h2::getBlock("/a"));
  for (int i = 0; i < 20; ++i)
    flood += h2::frame(h2::kContinuation, 0, 1, h2::literal("x-crumb", std::string(100, 'c')));
  EXPECT_FALSE(conn_->receive(flood).isOk());
  EXPECT_EQ(errors_.size(), 1u);
  EXPECT_TRUE(requests_.empty());
}

}  // namespace
}  // namespace tern::edge::server
