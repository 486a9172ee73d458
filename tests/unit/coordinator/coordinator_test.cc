// The purge engine on a real RocksDB log in a temp folder, with a clock the
// test drives: leases, fencing, wait=all, catch-up, resets, validation and
// rate limiting. (The log itself: purge_log_conformance_test.cc.)

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "common/clock.h"
#include "coordinator/api/json.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/log/rocks_purge_log.h"
#include "tests/support/temp_dir.h"

namespace tern::coordinator {
namespace {

namespace v1 = tern::v1;

// ---------------------------------------------------------------------------

class FakeStream : public EdgeStream {
 public:
  void wake() override { wakes++; }
  void close(const std::string& reason) override { closed = reason; }
  std::atomic<int> wakes{0};
  std::string closed;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open(CoordinatorOptions co = {}) {
    engine_.reset();
    log_.reset();
    PurgeLogOptions o;
    o.path = dir_.sub("log");
    o.retain_count = retain_count_;
    auto log = RocksPurgeLog::open(o);
    ASSERT_TRUE(log.ok());
    log_ = std::move(*log);
    co.lease_ms = 1000;
    registry_ = std::make_unique<metrics::Registry>();
    engine_ = std::make_unique<Coordinator>(log_.get(), co, registry_.get(),
                                            [this] { return now_.load(); });
    ASSERT_TRUE(engine_->start(false).isOk());
  }

  Result<v1::PurgeResult> purge(v1::PurgeRequest req) {
    std::promise<Result<v1::PurgeResult>> p;
    engine_->purge(req, [&](Result<v1::PurgeResult> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  std::future<Result<v1::PurgeResult>> purgeAsync(v1::PurgeRequest req) {
    auto p = std::make_shared<std::promise<Result<v1::PurgeResult>>>();
    auto f = p->get_future();
    const uint64_t head = engine_->listEdges().head_seq();
    engine_->purge(req, [p](Result<v1::PurgeResult> r) { p->set_value(std::move(r)); });
    // Returns once the purge is logged and tracked (acks can count).
    for (int i = 0; i < 400 && engine_->listEdges().head_seq() == head; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return f;
  }
  static v1::PurgeRequest tagPurge(const std::string& tag, bool wait = false) {
    v1::PurgeRequest r;
    r.add_selectors()->set_tag(tag);
    if (wait) r.set_wait(v1::WAIT_MODE_ALL);
    return r;
  }
  uint64_t connect(const std::string& id, uint64_t applied,
                   std::shared_ptr<FakeStream>* out = nullptr) {
    v1::Hello h;
    h.set_edge_id(id);
    h.set_applied_seq(applied);
    h.set_protocol_version(1);
    h.set_incarnation(7);
    auto s = std::make_shared<FakeStream>();
    if (out) *out = s;
    auto sid = engine_->attach(h, s);
    EXPECT_TRUE(sid.ok()) << sid.status().toString();
    return sid.ok() ? *sid : 0;
  }
  // Waits (bounded) for at least `n` messages: purges reach streams once the
  // log's committer thread has synced them.
  std::vector<v1::CoordinatorMessage> drain(uint64_t sid, size_t n = 0) {
    std::vector<v1::CoordinatorMessage> out;
    for (int i = 0; i < 400 && out.size() < n; ++i) {
      auto more = drainNow(sid);
      out.insert(out.end(), more.begin(), more.end());
      if (out.size() < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (n == 0) out = drainNow(sid);
    return out;
  }
  std::vector<v1::CoordinatorMessage> drainNow(uint64_t sid) {
    std::vector<v1::CoordinatorMessage> out;
    v1::CoordinatorMessage m;
    while (engine_->nextMessage(sid, &m)) {
      out.push_back(m);
      m.Clear();
    }
    return out;
  }
  void ack(uint64_t sid, uint64_t seq) {
    v1::EdgeMessage m;
    m.mutable_ack()->set_applied_seq(seq);
    engine_->onMessage(sid, m);
  }
  void advanceMs(int64_t ms) {
    now_ += ms * 1000;
    engine_->tick();
  }

  testing::TempDir dir_;
  uint64_t retain_count_ = 1000;
  std::atomic<int64_t> now_{1'000'000'000};
  std::unique_ptr<PurgeLog> log_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<Coordinator> engine_;
};

TEST_F(EngineTest, WaitNoneAnswersOnceDurable) {
  auto r = purge(tagPurge("a"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seq(), 1u);
  EXPECT_EQ(r->state(), v1::PURGE_STATE_COMPLETE) << "no edges registered: nothing to wait for";
  EXPECT_EQ(log_->headSeq(), 1u);
}

TEST_F(EngineTest, WaitAllCompletesWhenEveryEdgeAcked) {
  uint64_t a = connect("a", 0), b = connect("b", 0);
  drain(a);
  drain(b);
  auto f = purgeAsync(tagPurge("x", true));
  // Both streams are offered the purge.
  auto ma = drain(a, 1);
  ASSERT_EQ(ma.size(), 1u);
  ASSERT_TRUE(ma[0].has_purges());
  EXPECT_EQ(ma[0].purges().purges(0).seq(), 1u);
  EXPECT_EQ(ma[0].purges().purges(0).selectors(0).tag(), "x");
  ack(a, 1);
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  drain(b, 1);
  now_ += 1500;  // 1.5 ms
  ack(b, 1);
  auto r = f.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::PURGE_STATE_COMPLETE);
  ASSERT_EQ(r->edges_size(), 2);
  for (const auto& e : r->edges()) EXPECT_EQ(e.state(), v1::EDGE_PURGE_STATE_APPLIED);
  EXPECT_GE(r->complete_latency_us(), 1500u);
  auto got = engine_->getPurge(1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state(), v1::PURGE_STATE_COMPLETE);
}

TEST_F(EngineTest, SilentEdgeIsFencedWhenItsLeaseExpires) {
  std::shared_ptr<FakeStream> stream;
  uint64_t a = connect("a", 0, &stream);
  uint64_t b = connect("b", 0);
  auto f = purgeAsync(tagPurge("x", true));
  drain(b, 3);  // welcome, lease, the purge
  ack(b, 1);
  advanceMs(500);
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout)
      << "a's lease (1s) is still valid: it may be serving";
  advanceMs(600);
  auto r = f.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::PURGE_STATE_COMPLETE);
  std::map<std::string, v1::EdgePurgeState> states;
  for (const auto& e : r->edges()) states[e.edge_id()] = e.state();
  EXPECT_EQ(states["a"], v1::EDGE_PURGE_STATE_FENCED);
  EXPECT_EQ(states["b"], v1::EDGE_PURGE_STATE_APPLIED);
  EXPECT_EQ(stream->closed, "lease expired");
  v1::CoordinatorMessage none;
  EXPECT_FALSE(engine_->nextMessage(a, &none)) << "the fenced stream is gone";
  // b heartbeated? no: b is fenced too now, but it had applied.
  auto edges = engine_->listEdges();
  ASSERT_EQ(edges.edges_size(), 2);
  EXPECT_EQ(edges.edges(0).state(), v1::EDGE_STATE_FENCED);
}

// Streams at the same position get one batch message, built once; a stream
// elsewhere in the log gets its own.
TEST_F(EngineTest, StreamsAtTheSamePositionShareOneBatch) {
  uint64_t a = connect("a", 0), b = connect("b", 0);
  drainNow(a);
  drainNow(b);  // the welcomes
  auto next = [&](uint64_t sid) {
    std::shared_ptr<const v1::CoordinatorMessage> m;
    for (int i = 0; i < 400 && !engine_->nextMessage(sid, &m); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return m;
  };
  ASSERT_TRUE(purge(tagPurge("one")).ok());
  auto ma = next(a), mb = next(b);
  ASSERT_TRUE(ma && mb);
  EXPECT_EQ(ma.get(), mb.get()) << "one message for both streams";
  ASSERT_EQ(ma->purges().purges_size(), 1);
  EXPECT_EQ(ma->purges().purges(0).seq(), 1u);

  ASSERT_TRUE(purge(tagPurge("two")).ok());
  uint64_t c = connect("c", 0);
  auto welcome = next(c), grant = next(c);  // the control messages go first
  ASSERT_TRUE(welcome && welcome->has_welcome());
  ASSERT_TRUE(grant && grant->has_lease());
  auto mc = next(c);  // replays 1..2
  ASSERT_TRUE(mc);
  ASSERT_EQ(mc->purges().purges_size(), 2);
  auto ma2 = next(a);
  ASSERT_TRUE(ma2);
  EXPECT_NE(ma2.get(), mc.get());
  ASSERT_EQ(ma2->purges().purges_size(), 1);
  EXPECT_EQ(ma2->purges().purges(0).seq(), 2u);
  auto mb2 = next(b);
  EXPECT_EQ(mb2.get(), ma2.get());
}

TEST_F(EngineTest, HeartbeatsRenewTheLease) {
  uint64_t a = connect("a", 0);
  auto f = purgeAsync(tagPurge("x", true));
  v1::EdgeMessage hb;
  hb.mutable_heartbeat()->set_id(1);
  for (int i = 0; i < 5; ++i) {
    advanceMs(400);
    engine_->onMessage(a, hb);
  }
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout)
      << "renewed for 2s: the purge must wait for a";
  auto msgs = drain(a);
  int grants = 0;
  for (const auto& m : msgs) grants += m.has_lease() && m.lease().heartbeat_id() == 1;
  EXPECT_EQ(grants, 5);
  ack(a, 1);
  EXPECT_EQ(f.get()->state(), v1::PURGE_STATE_COMPLETE);
}

TEST_F(EngineTest, WaitTimeoutNamesPendingEdges) {
  uint64_t a = connect("a", 0);
  v1::PurgeRequest req = tagPurge("x", true);
  req.set_timeout_ms(100);
  auto f = purgeAsync(req);
  v1::EdgeMessage hb;
  hb.mutable_heartbeat()->set_id(1);
  advanceMs(50);
  engine_->onMessage(a, hb);
  advanceMs(60);
  auto r = f.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::PURGE_STATE_TIMEOUT);
  ASSERT_EQ(r->edges_size(), 1);
  EXPECT_EQ(r->edges(0).edge_id(), "a");
  EXPECT_EQ(r->edges(0).state(), v1::EDGE_PURGE_STATE_PENDING);
}

TEST_F(EngineTest, ReconnectingEdgeIsReplayedWhatItMissed) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(purge(tagPurge("t" + std::to_string(i))).ok());
  uint64_t a = connect("a", 1);
  auto msgs = drain(a);
  ASSERT_EQ(msgs.size(), 3u);
  ASSERT_TRUE(msgs[0].has_welcome());
  EXPECT_EQ(msgs[0].welcome().head_seq(), 3u);
  ASSERT_TRUE(msgs[1].has_lease());
  ASSERT_TRUE(msgs[2].has_purges());
  ASSERT_EQ(msgs[2].purges().purges_size(), 2);
  EXPECT_EQ(msgs[2].purges().purges(0).seq(), 2u);
  EXPECT_EQ(msgs[2].purges().purges(1).seq(), 3u);
  EXPECT_EQ(engine_->listEdges().edges(0).state(), v1::EDGE_STATE_CATCHING_UP);
  ack(a, 3);
  EXPECT_EQ(engine_->listEdges().edges(0).state(), v1::EDGE_STATE_CONNECTED);
  EXPECT_EQ(engine_->listEdges().edges(0).lag(), 0u);
}

TEST_F(EngineTest, EdgeBehindTheLogIsToldToSoftPurgeEverything) {
  retain_count_ = 2;
  open();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(purge(tagPurge("t" + std::to_string(i))).ok());
  uint64_t a = connect("a", 1);
  auto msgs = drain(a);
  ASSERT_EQ(msgs.size(), 3u);
  ASSERT_TRUE(msgs[2].has_reset_soft_all());
  EXPECT_EQ(msgs[2].reset_soft_all().seq(), 5u);
  // An edge only one behind the first retained purge is replayed normally.
  uint64_t b = connect("b", 3);
  auto mb = drain(b);
  ASSERT_EQ(mb.size(), 3u);
  ASSERT_TRUE(mb[2].has_purges());
  EXPECT_EQ(mb[2].purges().purges(0).seq(), 4u);
}

TEST_F(EngineTest, EdgeAheadOfAReplacedLogMovesTheHeadAndIsReset) {
  ASSERT_TRUE(purge(tagPurge("a")).ok());  // a fresh log: head 1
  uint64_t a = connect("a", 10);           // applied 10 from a log that is gone
  auto msgs = drain(a, 3);
  ASSERT_EQ(msgs.size(), 3u);
  ASSERT_TRUE(msgs[2].has_reset_soft_all()) << msgs[2].DebugString();
  EXPECT_EQ(msgs[2].reset_soft_all().seq(), 11u);
  EXPECT_GE(log_->headSeq(), 11u);
  auto next = purge(tagPurge("b"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq(), 12u) << "new purges are numbered past what the edge applied";
  auto more = drain(a, 1);
  ASSERT_EQ(more.size(), 1u);
  ASSERT_TRUE(more[0].has_purges()) << more[0].DebugString();
  EXPECT_EQ(more[0].purges().purges(0).seq(), 12u);
}

TEST_F(EngineTest, RestartedCoordinatorWaitsOneLeaseForKnownEdges) {
  uint64_t a = connect("a", 0);
  ack(a, 0);
  open();  // restart: "a" is known from the log, not connected
  auto f = purgeAsync(tagPurge("x", true));
  advanceMs(500);
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout)
      << "a may hold a lease granted before the restart";
  advanceMs(600);
  auto r = f.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::PURGE_STATE_COMPLETE);
  EXPECT_EQ(r->edges(0).state(), v1::EDGE_PURGE_STATE_FENCED);
}

TEST_F(EngineTest, InvalidPurgesAreRejectedWithReasons) {
  v1::PurgeRequest empty;
  auto r = purge(empty);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  v1::PurgeRequest bad;
  bad.add_selectors()->set_tag("ok");
  bad.add_selectors()->set_tag("has space");
  r = purge(bad);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("selectors[1]"), std::string::npos) << r.status().message();
  v1::PurgeRequest none;
  none.add_selectors();
  EXPECT_EQ(purge(none).status().code(), StatusCode::kInvalidArgument);
  v1::PurgeRequest many;
  for (int i = 0; i < 1001; ++i) many.add_selectors()->set_tag("t" + std::to_string(i));
  EXPECT_EQ(purge(many).status().code(), StatusCode::kInvalidArgument);
  many.mutable_selectors()->RemoveLast();
  auto ok = purge(many);
  ASSERT_TRUE(ok.ok()) << "1,000 selectors are allowed";
  EXPECT_EQ(ok->selectors_size(), 1000);
  EXPECT_EQ(log_->headSeq(), 1u) << "rejected purges are not logged";
}

// A wait=all call is answered when its purge completes or its own timeout
// passes, never early because newer purges filled the tracking table; and
// the calls held at once are capped.
TEST_F(EngineTest, WaitingCallsAreBoundedAndNeverAnsweredEarly) {
  CoordinatorOptions co;
  co.tracked_purges = 4;
  co.max_waiting_calls = 2;
  co.rate_per_sec = 0;
  open(co);
  uint64_t a = connect("a", 0);
  drain(a);
  auto waiting = purgeAsync(tagPurge("w", true));
  auto second = purgeAsync(tagPurge("w2", true));
  drain(a, 1);
  // A third waiting call is refused, clearly.
  auto third = purge(tagPurge("w3", true));
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted) << third.status().toString();
  // Many newer purges (wait=none) pass through the table of 4.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(purge(tagPurge("n" + std::to_string(i))).ok());
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
      << "answered before its purge completed";
  ack(a, 1);
  auto r = waiting.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::PURGE_STATE_COMPLETE);
  ack(a, 22);
  auto r2 = second.get();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->state(), v1::PURGE_STATE_COMPLETE);
  // Answered calls free their places.
  auto f = purgeAsync(tagPurge("w4", true));
  drain(a, 1);
  ack(a, 23);
  EXPECT_TRUE(f.get().ok());
}

TEST_F(EngineTest, RateLimitAnswersWithRetryAfter) {
  CoordinatorOptions co;
  co.rate_per_sec = 1;
  co.rate_burst = 2;
  open(co);
  EXPECT_TRUE(purge(tagPurge("a")).ok());
  EXPECT_TRUE(purge(tagPurge("b")).ok());
  // The answer may ask for Retry-After from inside the callback (the APIs do).
  std::promise<int64_t> retry;
  engine_->purge(tagPurge("c"), [&](Result<v1::PurgeResult> r) {
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
    retry.set_value(engine_->retryAfterMs());
  });
  EXPECT_GT(retry.get_future().get(), 0);
  EXPECT_LE(engine_->retryAfterMs(), 1000);
  now_ += 1'000'000;
  EXPECT_TRUE(purge(tagPurge("c")).ok());
  EXPECT_EQ(log_->headSeq(), 3u);
}

TEST_F(EngineTest, WatchersSeeCompletions) {
  std::vector<uint64_t> seen;
  std::mutex mu;
  engine_->watch(0, [&](const v1::PurgeResult& r) {
    std::lock_guard lock(mu);
    seen.push_back(r.seq());
  });
  ASSERT_TRUE(purge(tagPurge("a")).ok());
  ASSERT_TRUE(purge(tagPurge("b")).ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2}));
}

// ---------------------------------------------------------------------------

TEST(PurgeJsonTest, ParsesBothShapes) {
  auto r = parsePurgeJson(R"({"selectors":[{"tag":"a"},{"url":"example.com/x"},{"all":true}],
                              "mode":"soft","wait":"all","timeout_ms":250,"idempotency_key":"k"})");
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->selectors_size(), 3);
  EXPECT_EQ(r->mode(), v1::PURGE_MODE_SOFT);
  EXPECT_EQ(r->wait(), v1::WAIT_MODE_ALL);
  EXPECT_EQ(r->timeout_ms(), 250u);
  EXPECT_EQ(r->idempotency_key(), "k");
  auto cf = parsePurgeJson(R"({"tags":["a","b"],"files":["https://example.com/a"],
                               "hosts":["example.com"],"prefixes":["example.com/s/"]})");
  ASSERT_TRUE(cf.ok());
  EXPECT_EQ(cf->selectors_size(), 5);
  EXPECT_TRUE(parsePurgeJson(R"({"purge_everything":true})")->selectors(0).all());
}

TEST(PurgeJsonTest, RejectsBadInputClearly) {
  auto msg = [](std::string_view body) { return parsePurgeJson(body).status().message(); };
  EXPECT_NE(msg("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(msg("[]").find("JSON object"), std::string::npos);
  EXPECT_NE(msg(R"({"tagz":["a"]})").find("unknown field \"tagz\""), std::string::npos);
  EXPECT_NE(msg(R"({"tags":"a"})").find("tags: expected an array"), std::string::npos);
  EXPECT_NE(msg(R"({"selectors":[{"regex":"x"}]})").find("unknown selector"), std::string::npos);
  EXPECT_NE(msg(R"({"tags":["a"],"mode":"medium"})").find("mode"), std::string::npos);
  EXPECT_NE(msg(R"({"mode":"soft"})").find("nothing to purge"), std::string::npos);
}

}  // namespace
}  // namespace tern::coordinator
