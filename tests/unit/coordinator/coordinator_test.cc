// The purge engine on a real RocksDB log in a temp folder, with a clock the
// test drives: leases, fencing, wait=all, catch-up, resets, validation and
// rate limiting; and replicas (ReplicationTest: summaries, registration,
// nested leases, parked calls). (The log itself:
// purge_log_conformance_test.cc.)

#include <gtest/gtest.h>

#include <future>
#include <thread>
#include <tuple>

#include "common/clock.h"
#include "coordinator/api/json.h"
#include "coordinator/api/proto_views.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/log/rocks_purge_log.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/coordinator/engine_access.h"

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
    beforeStart();
    ASSERT_TRUE(engine_->start(false).isOk());
  }
  // Between constructing the engine and start() (ReplicationTest).
  virtual void beforeStart() {}

  // The request read as the APIs read it (coordinator/api/proto_views.h).
  static PurgeCall callOf(const v1::PurgeRequest& req) {
    auto call = purgeCallOf(req);
    EXPECT_TRUE(call.ok()) << call.status().toString();
    return call.ok() ? *call : PurgeCall{};
  }
  Result<PurgeStatus> purge(const v1::PurgeRequest& req) {
    auto call = purgeCallOf(req);
    if (!call.ok()) return call.status();
    std::promise<Result<PurgeStatus>> p;
    engine_->purge(*call, [&](Result<PurgeStatus> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  std::future<Result<PurgeStatus>> purgeAsync(const v1::PurgeRequest& req) {
    auto p = std::make_shared<std::promise<Result<PurgeStatus>>>();
    auto f = p->get_future();
    const uint64_t head = engine_->listEdges().head_seq;
    engine_->purge(callOf(req), [p](Result<PurgeStatus> r) { p->set_value(std::move(r)); });
    // Returns once the purge is logged and tracked (acks can count).
    for (int i = 0; i < 400 && engine_->listEdges().head_seq == head; ++i)
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
    EdgeHello h;
    h.edge_id = id;
    h.applied_seq = applied;
    h.protocol_version = 1;
    h.incarnation = 7;
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
    while (engine_access::nextMessage(*engine_, sid, &m)) {
      out.push_back(m);
      m.Clear();
    }
    return out;
  }
  void ack(uint64_t sid, uint64_t seq) { engine_->acked(sid, {seq, 0}); }
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
  EXPECT_EQ(r->seq, 1u);
  EXPECT_EQ(r->state, PurgeState::kComplete) << "no edges registered: nothing to wait for";
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
  EXPECT_EQ(r->state, PurgeState::kComplete);
  ASSERT_EQ(r->edges.size(), 2u);
  for (const auto& e : r->edges) EXPECT_EQ(e.state, EdgePurgeState::kApplied);
  EXPECT_GE(r->complete_latency_us, 1500u);
  auto got = engine_->getPurge(1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, PurgeState::kComplete);
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
  EXPECT_EQ(r->state, PurgeState::kComplete);
  std::map<std::string, EdgePurgeState> states;
  for (const auto& e : r->edges) states[e.edge_id] = e.state;
  EXPECT_EQ(states["a"], EdgePurgeState::kFenced);
  EXPECT_EQ(states["b"], EdgePurgeState::kApplied);
  EXPECT_EQ(stream->closed, "lease expired");
  v1::CoordinatorMessage none;
  EXPECT_FALSE(engine_access::nextMessage(*engine_, a, &none)) << "the fenced stream is gone";
  // b heartbeated? no: b is fenced too now, but it had applied.
  auto edges = engine_->listEdges();
  ASSERT_EQ(edges.edges.size(), 2u);
  EXPECT_EQ(edges.edges[0].state, EdgeState::kFenced);
}

// Streams at the same position get one batch message, built once; a stream
// elsewhere in the log gets its own.
TEST_F(EngineTest, StreamsAtTheSamePositionShareOneBatch) {
  uint64_t a = connect("a", 0), b = connect("b", 0);
  drainNow(a);
  drainNow(b);  // the welcomes
  // The encoded message, and what it parses as.
  struct Got {
    WireMessage wire;
    v1::CoordinatorMessage m;
  };
  auto next = [&](uint64_t sid) {
    Got g;
    for (int i = 0; i < 400 && !engine_->nextMessage(sid, &g.wire); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (g.wire) {
      EXPECT_TRUE(g.m.ParseFromString(*g.wire));
    }
    return g;
  };
  ASSERT_TRUE(purge(tagPurge("one")).ok());
  auto ma = next(a), mb = next(b);
  ASSERT_TRUE(ma.wire && mb.wire);
  EXPECT_EQ(ma.wire.get(), mb.wire.get()) << "one message for both streams";
  ASSERT_EQ(ma.m.purges().purges_size(), 1);
  EXPECT_EQ(ma.m.purges().purges(0).seq(), 1u);
  ASSERT_EQ(ma.m.purges().purges(0).selectors_size(), 1);
  EXPECT_EQ(ma.m.purges().purges(0).selectors(0).tag(), "one");
  EXPECT_FALSE(ma.m.purges().catching_up());

  ASSERT_TRUE(purge(tagPurge("two")).ok());
  uint64_t c = connect("c", 0);
  auto welcome = next(c), grant = next(c);  // the control messages go first
  ASSERT_TRUE(welcome.wire && welcome.m.has_welcome());
  ASSERT_TRUE(grant.wire && grant.m.has_lease());
  auto mc = next(c);  // replays 1..2
  ASSERT_TRUE(mc.wire);
  ASSERT_EQ(mc.m.purges().purges_size(), 2);
  EXPECT_EQ(mc.m.purges().purges(1).selectors(0).tag(), "two");
  auto ma2 = next(a);
  ASSERT_TRUE(ma2.wire);
  EXPECT_NE(ma2.wire.get(), mc.wire.get());
  ASSERT_EQ(ma2.m.purges().purges_size(), 1);
  EXPECT_EQ(ma2.m.purges().purges(0).seq(), 2u);
  auto mb2 = next(b);
  EXPECT_EQ(mb2.wire.get(), ma2.wire.get());
}

TEST_F(EngineTest, HeartbeatsRenewTheLease) {
  uint64_t a = connect("a", 0);
  auto f = purgeAsync(tagPurge("x", true));
  EdgeHeartbeat hb;
  hb.id = 1;
  for (int i = 0; i < 5; ++i) {
    advanceMs(400);
    engine_->heartbeat(a, hb);
  }
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout)
      << "renewed for 2s: the purge must wait for a";
  auto msgs = drain(a);
  int grants = 0;
  for (const auto& m : msgs) grants += m.has_lease() && m.lease().heartbeat_id() == 1;
  EXPECT_EQ(grants, 5);
  ack(a, 1);
  EXPECT_EQ(f.get()->state, PurgeState::kComplete);
}

TEST_F(EngineTest, WaitTimeoutNamesPendingEdges) {
  uint64_t a = connect("a", 0);
  v1::PurgeRequest req = tagPurge("x", true);
  req.set_timeout_ms(100);
  auto f = purgeAsync(req);
  EdgeHeartbeat hb;
  hb.id = 1;
  advanceMs(50);
  engine_->heartbeat(a, hb);
  advanceMs(60);
  auto r = f.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, PurgeState::kTimeout);
  ASSERT_EQ(r->edges.size(), 1u);
  EXPECT_EQ(r->edges[0].edge_id, "a");
  EXPECT_EQ(r->edges[0].state, EdgePurgeState::kPending);
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
  EXPECT_EQ(engine_->listEdges().edges[0].state, EdgeState::kCatchingUp);
  ack(a, 3);
  EXPECT_EQ(engine_->listEdges().edges[0].state, EdgeState::kConnected);
  EXPECT_EQ(engine_->listEdges().edges[0].lag, 0u);
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
  EXPECT_EQ(next->seq, 12u) << "new purges are numbered past what the edge applied";
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
  EXPECT_EQ(r->state, PurgeState::kComplete);
  EXPECT_EQ(r->edges[0].state, EdgePurgeState::kFenced);
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
  EXPECT_EQ(ok->selectors.size(), 1000u);
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
  EXPECT_EQ(r->state, PurgeState::kComplete);
  ack(a, 22);
  auto r2 = second.get();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->state, PurgeState::kComplete);
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
  engine_->purge(callOf(tagPurge("c")), [&](Result<PurgeStatus> r) {
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
  engine_->watch(0, [&](const PurgeStatus& r) {
    std::lock_guard lock(mu);
    seen.push_back(r.seq);
  });
  ASSERT_TRUE(purge(tagPurge("a")).ok());
  ASSERT_TRUE(purge(tagPurge("b")).ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2}));
}

// ---------------------------------------------------------------------------
// Replicas (enableReplication): this engine is replica "a" of a group. What
// the etcd watch delivers in production is driven by the test, in order:
// other replicas' summaries through replicaSummary() and the log's head
// through learnHead() (until then a purge call of this replica is parked).

class ReplicationTest : public EngineTest {
 protected:
  // The engine goes before this fixture's members that its callbacks use.
  void TearDown() override { engine_.reset(); }
  void beforeStart() override {
    Replication r;
    r.replica_id = "a";
    r.address = "a:8471";
    r.lease_limit_us = [this] { return lease_limit_us_.load(); };
    r.summary_changed = [this] { ++summary_changes_; };
    r.announced_head = [this] { return log_->headSeq(); };
    engine_->enableReplication(std::move(r));
  }

  // A purge call whose entry is durable in the log, not yet delivered by
  // the watch (the engine has not tracked it).
  std::future<Result<PurgeStatus>> purgeLogged(const v1::PurgeRequest& req) {
    auto p = std::make_shared<std::promise<Result<PurgeStatus>>>();
    auto f = p->get_future();
    const uint64_t head = log_->headSeq();
    engine_->purge(callOf(req), [p](Result<PurgeStatus> r) { p->set_value(std::move(r)); });
    for (int i = 0; i < 400 && log_->headSeq() == head; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_GT(log_->headSeq(), head) << "the purge was not logged";
    return f;
  }
  // The watch delivers the log up to its head.
  void learn() { engine_->learnHead(log_->headSeq()); }
  std::future<Result<PurgeStatus>> purgeTracked(const v1::PurgeRequest& req) {
    auto f = purgeLogged(req);
    learn();
    return f;
  }
  // A wait=none purge, answered (ACCEPTED) from the log's committer thread:
  // the calls logged before it have been answered or parked by then.
  uint64_t barrier() {
    auto r = purge(tagPurge("barrier"));
    EXPECT_TRUE(r.ok()) << r.status().toString();
    if (!r.ok()) return 0;
    EXPECT_EQ(r->state, PurgeState::kAccepted);
    return r->seq;
  }
  // Attached and welcomed: this replica's summary naming it is published.
  uint64_t connectWelcomed(const std::string& id, uint64_t applied,
                           std::shared_ptr<FakeStream>* out = nullptr) {
    const uint64_t sid = connect(id, applied, out);
    uint64_t gen = 0;
    engine_->summary(&gen);
    engine_->summaryPublished(gen);
    return sid;
  }
  static bool ready(std::future<Result<PurgeStatus>>& f, int ms = 50) {
    return f.wait_for(std::chrono::milliseconds(ms)) == std::future_status::ready;
  }
  static HeldEdge held(const std::string& id, bool connected, uint64_t applied,
                       int64_t opened_ms = 0) {
    HeldEdge h;
    h.edge_id = id;
    h.address = id + ":80";
    h.connected = connected;
    h.applied_seq = applied;
    h.incarnation = 3;
    h.stream_opened_ms = opened_ms;
    return h;
  }
  static ReplicaSummary peer(const std::string& replica_id, std::vector<HeldEdge> edges) {
    ReplicaSummary s;
    s.replica_id = replica_id;
    s.address = replica_id + ":8471";
    s.edges = std::move(edges);
    return s;
  }
  void summaryOf(const std::string& key, const ReplicaSummary& s, int64_t revision) {
    engine_->replicaSummary(key, &s, revision);
  }
  static std::map<std::string, EdgePurgeState> states(const PurgeStatus& r) {
    std::map<std::string, EdgePurgeState> out;
    for (const auto& e : r.edges) out[e.edge_id] = e.state;
    return out;
  }
  std::map<std::string, EdgeStatus> edgesById() {
    std::map<std::string, EdgeStatus> out;
    const auto list = engine_->listEdges();
    for (const auto& e : list.edges) out[e.edge_id] = e;
    return out;
  }

  std::atomic<int64_t> lease_limit_us_{now_.load() + 3'600'000'000};  // an hour of session
  std::atomic<int> summary_changes_{0};
};

// A wait=all purge waits for an edge that only another replica holds, and
// completes when that replica's summary says the edge applied it; an older
// revision of the summary is ignored.
TEST_F(ReplicationTest, WaitAllWaitsForAnEdgeHeldOnlyByAnotherReplica) {
  summaryOf("b/1", peer("b", {held("x", true, 0)}), 10);
  auto f = purgeTracked(tagPurge("t", true));
  EXPECT_FALSE(ready(f)) << "x (on replica b) has not applied it";
  auto got = engine_->getPurge(1);
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_EQ(got->state, PurgeState::kAccepted);
  EXPECT_EQ(states(*got), (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kPending}}));
  // This replica never leased x: its own lease checks do not fence it.
  advanceMs(1500);  // past lease_ms (1 s)
  EXPECT_FALSE(ready(f)) << "b's lease for x is what counts";
  EXPECT_EQ(engine_->getPurge(1)->edges[0].state, EdgePurgeState::kPending);
  // An older revision of b's summary (delivered late) is ignored.
  summaryOf("b/1", peer("b", {held("x", true, 1)}), 9);
  EXPECT_FALSE(ready(f)) << "revision 9 is older than 10: ignored";
  EXPECT_EQ(engine_->getPurge(1)->edges[0].state, EdgePurgeState::kPending);
  EXPECT_EQ(edgesById()["x"].applied_seq, 0u);

  summaryOf("b/1", peer("b", {held("x", true, 1)}), 11);
  ASSERT_TRUE(ready(f, 2000));
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->seq, 1u);
  EXPECT_EQ(r->state, PurgeState::kComplete);
  EXPECT_EQ(states(*r), (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kApplied}}));
  EXPECT_EQ(edgesById()["x"].applied_seq, 1u);
  EXPECT_EQ(edgesById()["x"].lag, 0u);
}

// Progress straight from replica b (ReplicaLink) completes the purge before
// b's summary in etcd says so; it carries applied positions only: an edge
// known from no summary is not added, and it does not keep a fenced edge
// live.
TEST_F(ReplicationTest, ProgressFromAnotherReplicaCompletesWithoutItsSummary) {
  summaryOf("b/1", peer("b", {held("x", true, 0)}), 10);
  auto f = purgeTracked(tagPurge("t", true));
  EXPECT_FALSE(ready(f));
  // Its own id: ignored.
  engine_->replicaProgress(peer("a", {held("x", true, 1)}));
  EXPECT_FALSE(ready(f));
  engine_->replicaProgress(peer("b", {held("x", true, 1), held("stranger", true, 1)}));
  ASSERT_TRUE(ready(f, 2000)) << "b's edge applied it, as b said directly";
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->state, PurgeState::kComplete);
  EXPECT_EQ(states(*r), (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kApplied}}));
  auto edges = edgesById();
  EXPECT_EQ(edges.count("stranger"), 0u) << "edges are registered through etcd only";
  EXPECT_EQ(edges["x"].applied_seq, 1u);
  // Progress says nothing of leases: b gone, x is fenced for the next purge.
  engine_->replicaSummary("b/1", nullptr, 11);
  engine_->replicaProgress(peer("b", {held("x", true, 1)}));
  auto later = purgeTracked(tagPurge("u", true));
  ASSERT_TRUE(ready(later, 2000));
  auto l = later.get();
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(states(*l), (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kFenced}}));
}

// A replica's summary losing an edge (its lease there ran out) or
// disappearing (its etcd session ended) fences the edges no one else holds.
// A replica holding no edge still publishes how far it has read the log
// (the status page and `ternctl edges` show it), at most once a second.
TEST_F(ReplicationTest, AReplicaWithoutEdgesStillPublishesItsHead) {
  uint64_t gen = 0;
  // What the publisher does when told of a change: build the summary.
  auto publish = [&] {
    const ReplicaSummary s = engine_->summary(&gen);
    engine_->summaryPublished(gen);
    return s.head_seq;
  };
  EXPECT_EQ(publish(), 0u);
  ASSERT_TRUE(purgeTracked(tagPurge("t")).get().ok());
  const int changes = summary_changes_;
  advanceMs(100);
  EXPECT_EQ(summary_changes_, changes + 1) << "nothing published for long: at once";
  EXPECT_EQ(publish(), 1u);
  ASSERT_TRUE(purgeTracked(tagPurge("u")).get().ok());
  advanceMs(100);
  EXPECT_EQ(summary_changes_, changes + 1) << "not more than once a second";
  advanceMs(1000);
  EXPECT_EQ(summary_changes_, changes + 2) << "the head moved: published again";
  EXPECT_EQ(publish(), 2u);
  advanceMs(1500);
  EXPECT_EQ(summary_changes_, changes + 2) << "nothing moved since";
}

TEST_F(ReplicationTest, EdgesOfAGoneReplicaAreFenced) {
  summaryOf("b/1", peer("b", {held("x", true, 0), held("y", true, 0)}), 10);
  auto f = purgeTracked(tagPurge("t", true));
  EXPECT_FALSE(ready(f));
  // b no longer holds x.
  summaryOf("b/1", peer("b", {held("y", true, 0)}), 11);
  EXPECT_FALSE(ready(f)) << "y is still held by b";
  EXPECT_EQ(states(*engine_->getPurge(1)),
            (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kFenced},
                                                   {"y", EdgePurgeState::kPending}}));
  // b is gone.
  engine_->replicaSummary("b/1", nullptr, 12);
  ASSERT_TRUE(ready(f, 2000));
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->state, PurgeState::kComplete);
  EXPECT_EQ(states(*r), (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kFenced},
                                                               {"y", EdgePurgeState::kFenced}}));
  auto edges = edgesById();
  EXPECT_EQ(edges["x"].state, EdgeState::kFenced);
  EXPECT_EQ(edges["y"].state, EdgeState::kFenced);
  EXPECT_EQ(edges["y"].replica_id, "");
  auto list = engine_->listEdges();
  ASSERT_EQ(list.replicas.size(), 1u) << "a gone replica is not listed";
  EXPECT_TRUE(list.replicas[0].self);
  // A purge logged now does not wait for them.
  auto later = purgeTracked(tagPurge("u", true));
  ASSERT_TRUE(ready(later, 2000));
  EXPECT_EQ(later.get()->state, PurgeState::kComplete);
}

// Replica b still says x is connected there with nothing applied (its view
// is stale: x's stream there died and x moved); replica c saw x apply the
// purge. An edge has applied what any replica saw it acknowledge.
TEST_F(ReplicationTest, EdgeHasAppliedWhatAnyReplicaSawItAcknowledge) {
  // b's stream is the newer one, and it is still the one listed.
  summaryOf("b/1", peer("b", {held("x", true, 0, /*opened_ms=*/2000)}), 10);
  auto f = purgeTracked(tagPurge("t", true));
  EXPECT_FALSE(ready(f));
  summaryOf("c/1", peer("c", {held("x", true, 1, /*opened_ms=*/1000)}), 11);
  ASSERT_TRUE(ready(f, 2000)) << "c saw x apply 1: b's stale view must not hold it back";
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->state, PurgeState::kComplete);
  EXPECT_EQ(states(*r), (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kApplied}}));
  auto x = edgesById()["x"];
  EXPECT_EQ(x.applied_seq, 1u);
  EXPECT_EQ(x.replica_id, "b") << "the newest stream's replica";
}

// The same, with c's summary arriving before the watch delivers the purge:
// it is applied as soon as it is tracked.
TEST_F(ReplicationTest, SummaryAheadOfTheWatchCountsWhenThePurgeIsTracked) {
  summaryOf("b/1", peer("b", {held("x", true, 0, 2000)}), 10);
  auto f = purgeLogged(tagPurge("t", true));
  summaryOf("c/1", peer("c", {held("x", true, 1, 1000)}), 11);
  EXPECT_FALSE(ready(f)) << "not tracked yet";
  learn();
  ASSERT_TRUE(ready(f, 2000));
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->state, PurgeState::kComplete);
  EXPECT_EQ(states(*r), (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kApplied}}));
}

// The edge's lease here ran out after it moved to replica b: b's summary
// keeps it live, and b's view of what it applied counts.
TEST_F(ReplicationTest, LocalLeaseExpiryDoesNotFenceAnEdgeAnotherReplicaHolds) {
  std::shared_ptr<FakeStream> st;
  uint64_t s = connectWelcomed("x", 0, &st);
  drainNow(s);
  auto f = purgeTracked(tagPurge("t", true));
  engine_->detach(s);
  summaryOf("b/1", peer("b", {held("x", true, 0)}), 10);
  advanceMs(1100);  // the lease granted here (1 s) has expired
  EXPECT_FALSE(ready(f)) << "x is held by b";
  EXPECT_EQ(engine_->getPurge(1)->edges[0].state, EdgePurgeState::kPending);
  EXPECT_EQ(edgesById()["x"].state, EdgeState::kConnected);
  EXPECT_EQ(edgesById()["x"].replica_id, "b");
  summaryOf("b/1", peer("b", {held("x", true, 1)}), 11);
  ASSERT_TRUE(ready(f, 2000));
  auto r = f.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, PurgeState::kComplete);
  EXPECT_EQ(r->edges[0].state, EdgePurgeState::kApplied);
}

// Registration: a new stream gets no Welcome and no lease (heartbeats are
// not answered) until the summary naming it is published.
TEST_F(ReplicationTest, NewStreamIsWelcomedOnlyOnceItsSummaryIsPublished) {
  const int changes = summary_changes_;
  std::shared_ptr<FakeStream> st;
  uint64_t s = connect("e1", 0, &st);
  EXPECT_GT(summary_changes_, changes) << "the summary must be republished";
  EXPECT_TRUE(drainNow(s).empty()) << "no Welcome, no lease before the summary is published";
  EdgeHeartbeat hb;
  hb.id = 5;
  engine_->heartbeat(s, hb);
  EXPECT_TRUE(drainNow(s).empty()) << "no LeaseGrant before the welcome";

  uint64_t gen = 0;
  auto sum = engine_->summary(&gen);
  EXPECT_EQ(sum.replica_id, "a");
  EXPECT_EQ(sum.address, "a:8471");
  ASSERT_EQ(sum.edges.size(), 1u);
  EXPECT_EQ(sum.edges[0].edge_id, "e1");
  EXPECT_TRUE(sum.edges[0].connected);
  EXPECT_EQ(sum.edges[0].applied_seq, 0u);
  EXPECT_EQ(sum.edges[0].incarnation, 7u);
  ASSERT_GE(gen, 1u);
  // An older summary (taken before the stream) does not name it.
  engine_->summaryPublished(gen - 1);
  EXPECT_TRUE(drainNow(s).empty()) << "published a summary older than the stream";

  const int wakes = st->wakes;
  engine_->summaryPublished(gen);
  EXPECT_GT(st->wakes, wakes);
  auto msgs = drainNow(s);
  ASSERT_EQ(msgs.size(), 2u) << "Welcome and the first lease (no grant for the early heartbeat)";
  ASSERT_TRUE(msgs[0].has_welcome()) << msgs[0].DebugString();
  EXPECT_EQ(msgs[0].welcome().head_seq(), 0u);
  EXPECT_EQ(msgs[0].welcome().protocol_version(), 1u);
  ASSERT_TRUE(msgs[1].has_lease()) << msgs[1].DebugString();
  EXPECT_EQ(msgs[1].lease().heartbeat_id(), 0u);
  EXPECT_EQ(msgs[1].lease().lease_ms(), 1000u);
  // Now heartbeats are answered.
  hb.id = 6;
  engine_->heartbeat(s, hb);
  msgs = drainNow(s);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_TRUE(msgs[0].has_lease());
  EXPECT_EQ(msgs[0].lease().heartbeat_id(), 6u);
  auto e1 = edgesById()["e1"];
  EXPECT_EQ(e1.state, EdgeState::kConnected);
  EXPECT_EQ(e1.replica_id, "a");
}

// Publishing first tracks everything the watch announced up to it: a purge
// logged before the summary is in the Welcome and replayed.
TEST_F(ReplicationTest, PublishTracksTheAnnouncedLogBeforeTheWelcome) {
  uint64_t s = connect("e1", 0);
  auto r = purge(tagPurge("before"));
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->state, PurgeState::kAccepted) << "wait=none: answered once durable";
  EXPECT_EQ(r->seq, 1u);
  EXPECT_EQ(engine_->listEdges().head_seq, 0u) << "not delivered by the watch yet";
  uint64_t gen = 0;
  engine_->summary(&gen);
  engine_->summaryPublished(gen);
  EXPECT_EQ(engine_->listEdges().head_seq, 1u);
  auto msgs = drainNow(s);
  ASSERT_EQ(msgs.size(), 3u);
  ASSERT_TRUE(msgs[0].has_welcome());
  EXPECT_EQ(msgs[0].welcome().head_seq(), 1u);
  ASSERT_TRUE(msgs[2].has_purges()) << msgs[2].DebugString();
  ASSERT_EQ(msgs[2].purges().purges_size(), 1);
  EXPECT_EQ(msgs[2].purges().purges(0).seq(), 1u);
  EXPECT_EQ(msgs[2].purges().purges(0).selectors(0).tag(), "before");
  EXPECT_EQ(edgesById()["e1"].state, EdgeState::kCatchingUp);
  ack(s, 1);
  EXPECT_EQ(edgesById()["e1"].state, EdgeState::kConnected);
}

// Nested leases: no lease outlasts this replica's etcd session; once it is
// over the streams are closed and new ones refused.
TEST_F(ReplicationTest, LeasesNeverOutlastTheReplicasSession) {
  lease_limit_us_ = now_ + 400'000;  // 400 ms of session left; lease_ms is 1000
  std::shared_ptr<FakeStream> st;
  uint64_t s = connectWelcomed("e1", 0, &st);
  auto msgs = drainNow(s);
  ASSERT_EQ(msgs.size(), 2u);
  ASSERT_TRUE(msgs[1].has_lease());
  EXPECT_GT(msgs[1].lease().lease_ms(), 0u);
  EXPECT_LE(msgs[1].lease().lease_ms(), 400u);
  advanceMs(200);
  EXPECT_EQ(st->closed, "") << "200 ms of session left";
  EdgeHeartbeat hb;
  hb.id = 1;
  engine_->heartbeat(s, hb);
  msgs = drainNow(s);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_TRUE(msgs[0].has_lease());
  EXPECT_GT(msgs[0].lease().lease_ms(), 0u);
  EXPECT_LE(msgs[0].lease().lease_ms(), 200u) << "a renewal is nested too";
  advanceMs(250);  // 50 ms past the session
  EXPECT_EQ(st->closed, "replica lost its etcd session");
  v1::CoordinatorMessage none;
  EXPECT_FALSE(engine_access::nextMessage(*engine_, s, &none)) << "the stream is gone";
  EdgeHello h;
  h.edge_id = "e2";
  h.protocol_version = 1;
  auto refused = engine_->attach(h, std::make_shared<FakeStream>());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().toString();
  EXPECT_EQ(edgesById()["e1"].state, EdgeState::kFenced);
  EXPECT_EQ(edgesById().count("e2"), 0u);
  EXPECT_EQ(engine_->summary(nullptr).edges.size(), 0u) << "no lease of e1 runs on";
}

// A wait=all call whose entry the watch has not delivered is parked: it
// becomes a waiter of the purge once learnHead tracks it.
TEST_F(ReplicationTest, ParkedWaitAllIsAnsweredOnlyAfterTheWatchDeliversIt) {
  uint64_t s = connectWelcomed("e1", 0);
  drainNow(s);
  auto f = purgeLogged(tagPurge("t", true));
  EXPECT_EQ(barrier(), 2u);  // f's call is parked by now
  EXPECT_FALSE(ready(f));
  EXPECT_EQ(engine_->listEdges().head_seq, 0u);
  v1::CoordinatorMessage none;
  EXPECT_FALSE(engine_access::nextMessage(*engine_, s, &none))
      << "untracked purges are not streamed";
  engine_->learnHead(1);
  EXPECT_FALSE(ready(f)) << "tracked now: waits for e1";
  auto got = engine_->getPurge(1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, PurgeState::kAccepted);
  EXPECT_EQ(got->edges[0].state, EdgePurgeState::kPending);
  auto msgs = drainNow(s);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_EQ(msgs[0].purges().purges_size(), 1) << "only what learnHead tracked";
  ack(s, 1);
  ASSERT_TRUE(ready(f, 2000));
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->seq, 1u);
  EXPECT_EQ(r->state, PurgeState::kComplete);
  EXPECT_EQ(states(*r), (std::map<std::string, EdgePurgeState>{{"e1", EdgePurgeState::kApplied}}));
}

// With no edge to wait for, the parked call is answered at learnHead.
TEST_F(ReplicationTest, ParkedWaitAllWithNoEdgesCompletesAtLearnHead) {
  auto f = purgeLogged(tagPurge("t", true));
  barrier();
  EXPECT_FALSE(ready(f)) << "answered before the watch delivered it";
  learn();
  ASSERT_TRUE(ready(f, 2000));
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->seq, 1u);
  EXPECT_EQ(r->state, PurgeState::kComplete);
}

// A parked wait=all call whose deadline passes before the watch delivers
// its entry is answered TIMEOUT by tick(), and frees its waiting place.
TEST_F(ReplicationTest, ParkedWaitAllTimesOutWhenTheWatchIsLate) {
  CoordinatorOptions co;
  co.max_waiting_calls = 1;
  open(co);
  v1::PurgeRequest req = tagPurge("t", true);
  req.set_timeout_ms(100);
  auto f = purgeLogged(req);
  barrier();
  advanceMs(50);
  EXPECT_FALSE(ready(f)) << "50 ms of 100";
  advanceMs(60);
  ASSERT_TRUE(ready(f, 2000)) << "the deadline passed: tick() must answer it";
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->seq, 1u);
  EXPECT_EQ(r->state, PurgeState::kTimeout);
  // Its place among the waiting calls (1) is free again.
  auto f2 = purgeLogged(tagPurge("v", true));
  if (ready(f2)) {
    auto early = f2.get();
    FAIL() << "refused or answered early: "
           << (early.ok() ? "seq " + std::to_string(early->seq) : early.status().toString());
  }
  learn();
  ASSERT_TRUE(ready(f2, 2000));
  auto r2 = f2.get();
  ASSERT_TRUE(r2.ok()) << r2.status().toString();
  EXPECT_EQ(r2->seq, 3u);
  EXPECT_EQ(r2->state, PurgeState::kComplete);
  auto got = engine_->getPurge(1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, PurgeState::kComplete) << "the purge itself is tracked afterwards";
}

// docs/purge.md: "On timeout the answer is `timeout` and names the
// `pending_edges`". A parked call that times out is answered with only seq
// and state: no edges (x is pending), no selectors, mode HARD for a soft
// purge, accepted_at_ms 0. (Disabled: fails; see the report.)
TEST_F(ReplicationTest, ParkedTimeoutNamesThePendingEdges) {
  summaryOf("b/1", peer("b", {held("x", true, 0)}), 10);
  v1::PurgeRequest req = tagPurge("t", true);
  req.set_mode(v1::PURGE_MODE_SOFT);
  req.set_timeout_ms(100);
  auto f = purgeLogged(req);
  barrier();
  advanceMs(150);
  ASSERT_TRUE(ready(f, 2000));
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r->state, PurgeState::kTimeout);
  EXPECT_EQ(r->mode, storage::PurgeMode::kSoft);
  EXPECT_EQ(r->selectors,
            (std::vector<storage::PurgeSelector>{{storage::SelectorKind::kTag, "t"}}));
  EXPECT_GT(r->accepted_at_ms, 0);
  EXPECT_EQ(states(*r), (std::map<std::string, EdgePurgeState>{{"x", EdgePurgeState::kPending}}));
}

// ListEdges shows every edge with the replica holding its stream (the
// replica id inside the summary, not the summary's key), and the replicas.
TEST_F(ReplicationTest, ListEdgesShowsEdgesAndReplicasOfTheGroup) {
  connectWelcomed("y", 0);
  auto b = peer("b", {held("x", true, 0), held("z", false, 0)});
  b.head_seq = 0;
  summaryOf("b/1", b, 10);
  auto list = engine_->listEdges();
  std::map<std::string, EdgeStatus> edges;
  for (const auto& e : list.edges) edges[e.edge_id] = e;
  ASSERT_EQ(edges.size(), 3u);
  EXPECT_EQ(edges["x"].replica_id, "b");
  EXPECT_EQ(edges["x"].state, EdgeState::kConnected);
  EXPECT_EQ(edges["x"].address, "x:80");
  EXPECT_EQ(edges["x"].incarnation, 3u);
  EXPECT_EQ(edges["y"].replica_id, "a");
  EXPECT_EQ(edges["y"].state, EdgeState::kConnected);
  EXPECT_EQ(edges["z"].replica_id, "") << "only its lease runs on, on b: no stream";
  EXPECT_EQ(edges["z"].state, EdgeState::kConnected) << "live: b's lease for it runs";
  ASSERT_EQ(list.replicas.size(), 2u);
  EXPECT_EQ(list.replicas[0].replica_id, "a");
  EXPECT_EQ(list.replicas[0].address, "a:8471");
  EXPECT_TRUE(list.replicas[0].self);
  EXPECT_EQ(list.replicas[0].edges_connected, 1u);
  EXPECT_EQ(list.replicas[1].replica_id, "b");
  EXPECT_EQ(list.replicas[1].address, "b:8471");
  EXPECT_FALSE(list.replicas[1].self);
  EXPECT_EQ(list.replicas[1].edges_connected, 1u) << "x; z has no stream on b";
}

// ---------------------------------------------------------------------------

// The conversions at the rims (coordinator/api/proto_views.h).
TEST(ProtoViews, AReplicaSummaryRoundTrips) {
  ReplicaSummary s;
  s.replica_id = "a";
  s.address = "a:8471";
  s.head_seq = 42;
  s.edges.push_back({"e1", "e1:80", 40, 7, true, false, 1000, 900});
  s.edges.push_back({"e2", "e2:80", 41, 8, false, true, 2000, 1900});
  const auto wire = toProto(s).SerializeAsString();
  tern::internal::v1::ReplicaSummary parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  const ReplicaSummary back = fromProto(parsed);
  EXPECT_EQ(back.replica_id, "a");
  EXPECT_EQ(back.address, "a:8471");
  EXPECT_EQ(back.head_seq, 42u);
  ASSERT_EQ(back.edges.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const HeldEdge &a = s.edges[i], &b = back.edges[i];
    EXPECT_EQ(std::tie(a.edge_id, a.address, a.applied_seq, a.incarnation, a.connected,
                       a.catching_up, a.last_seen_ms, a.stream_opened_ms),
              std::tie(b.edge_id, b.address, b.applied_seq, b.incarnation, b.connected,
                       b.catching_up, b.last_seen_ms, b.stream_opened_ms));
  }
}

// What the APIs send is what the engine answered, field by field.
TEST(ProtoViews, APurgeStatusAndTheEdgeListBecomeTheirMessages) {
  PurgeStatus st;
  st.seq = 9;
  st.state = PurgeState::kTimeout;
  st.edges = {{"e1", EdgePurgeState::kApplied, 120}, {"e2", EdgePurgeState::kPending, 0}};
  st.accepted_at_ms = 1700000000000;
  st.complete_latency_us = 0;
  st.selectors = {{storage::SelectorKind::kTag, "t"}, {storage::SelectorKind::kAll, ""}};
  st.mode = storage::PurgeMode::kSoft;
  st.requested_by = "ops";
  st.requested_from = "10.0.0.1 for 10.0.0.2";
  const v1::PurgeResult r = toProto(st);
  EXPECT_EQ(r.seq(), 9u);
  EXPECT_EQ(r.state(), v1::PURGE_STATE_TIMEOUT);
  ASSERT_EQ(r.edges_size(), 2);
  EXPECT_EQ(r.edges(0).edge_id(), "e1");
  EXPECT_EQ(r.edges(0).state(), v1::EDGE_PURGE_STATE_APPLIED);
  EXPECT_EQ(r.edges(0).apply_latency_us(), 120u);
  EXPECT_EQ(r.edges(1).state(), v1::EDGE_PURGE_STATE_PENDING);
  EXPECT_EQ(r.accepted_at_ms(), 1700000000000);
  ASSERT_EQ(r.selectors_size(), 2);
  EXPECT_EQ(r.selectors(0).tag(), "t");
  EXPECT_TRUE(r.selectors(1).all());
  EXPECT_EQ(r.mode(), v1::PURGE_MODE_SOFT);
  EXPECT_EQ(r.requested_by(), "ops");
  EXPECT_EQ(r.requested_from(), "10.0.0.1 for 10.0.0.2");

  EdgeList list;
  list.head_seq = 12;
  list.edges.push_back({"e1", "e1:80", EdgeState::kCatchingUp, 10, 2, 1234, 7, "b"});
  list.replicas.push_back({"a", "a:8471", 1, 12, true});
  list.etcd_members.push_back({"127.0.0.1:2379", true, true, "3.4.23", 5, 99, 4096, "", 555});
  list.etcd_members.push_back({"127.0.0.1:22379", false, false, "", 0, 0, 0, "refused", 556});
  const v1::ListEdgesResponse m = toProto(list);
  EXPECT_EQ(m.head_seq(), 12u);
  ASSERT_EQ(m.edges_size(), 1);
  const auto& e = m.edges(0);
  EXPECT_EQ(std::tie(e.edge_id(), e.address(), e.replica_id()), std::tie("e1", "e1:80", "b"));
  EXPECT_EQ(e.state(), v1::EDGE_STATE_CATCHING_UP);
  EXPECT_EQ(e.applied_seq(), 10u);
  EXPECT_EQ(e.lag(), 2u);
  EXPECT_EQ(e.last_seen_ms(), 1234);
  EXPECT_EQ(e.incarnation(), 7u);
  ASSERT_EQ(m.replicas_size(), 1);
  EXPECT_EQ(m.replicas(0).replica_id(), "a");
  EXPECT_EQ(m.replicas(0).address(), "a:8471");
  EXPECT_EQ(m.replicas(0).edges_connected(), 1u);
  EXPECT_EQ(m.replicas(0).head_seq(), 12u);
  EXPECT_TRUE(m.replicas(0).self());
  ASSERT_EQ(m.etcd_members_size(), 2);
  const auto& up = m.etcd_members(0);
  EXPECT_EQ(up.endpoint(), "127.0.0.1:2379");
  EXPECT_TRUE(up.reachable());
  EXPECT_TRUE(up.leader());
  EXPECT_EQ(up.version(), "3.4.23");
  EXPECT_EQ(up.raft_term(), 5u);
  EXPECT_EQ(up.raft_index(), 99u);
  EXPECT_EQ(up.db_size_bytes(), 4096);
  EXPECT_EQ(up.probed_at_ms(), 555);
  EXPECT_FALSE(m.etcd_members(1).reachable());
  EXPECT_EQ(m.etcd_members(1).error(), "refused");
}

TEST(ProtoViews, APurgeRequestIsReadAsTheApisReadIt) {
  v1::PurgeRequest r;
  r.add_selectors()->set_url("https://Example.COM/a");
  r.set_mode(v1::PURGE_MODE_SOFT);
  r.set_wait(v1::WAIT_MODE_ALL);
  r.set_timeout_ms(250);
  r.set_idempotency_key("k");
  auto call = purgeCallOf(r);
  ASSERT_TRUE(call.ok()) << call.status().toString();
  ASSERT_EQ(call->selectors.size(), 1u);
  EXPECT_EQ(call->selectors[0].kind, storage::SelectorKind::kUrl);
  EXPECT_EQ(call->selectors[0].value, "example.com/a") << "normalized";
  EXPECT_EQ(call->mode, storage::PurgeMode::kSoft);
  EXPECT_EQ(call->wait, WaitMode::kAll);
  EXPECT_EQ(call->timeout_ms, 250u);
  EXPECT_EQ(call->idempotency_key, "k");
  EXPECT_TRUE(checkModeAndWait(r).isOk());
  v1::PurgeRequest bad = r;
  bad.set_mode(static_cast<v1::PurgeMode>(99));
  EXPECT_EQ(checkModeAndWait(bad).code(), StatusCode::kInvalidArgument);
  bad = r;
  bad.set_wait(static_cast<v1::WaitMode>(99));
  EXPECT_EQ(checkModeAndWait(bad).code(), StatusCode::kInvalidArgument);
  bad = r;
  bad.add_selectors()->set_tag("has space");
  EXPECT_EQ(purgeCallOf(bad).status().code(), StatusCode::kInvalidArgument);
}

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
