// The purge engine's parts on their own: checking a purge call, the edge
// link's encoding, the rate limit's token bucket, the logs' append queue, and the engine's locking
// (a stream that reads the log does not hold the engine: the read may be an etcd round trip).

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "coordinator/core/coordinator.h"
#include "coordinator/core/edge_wire.h"
#include "coordinator/core/purge_request.h"
#include "coordinator/core/rate_limiter.h"
#include "coordinator/log/append_queue.h"
#include "coordinator/log/log_codec.h"
#include "coordinator/log/rocks_purge_log.h"
#include "proto/purge_convert.h"
#include "tern/internal/coordinator_log.pb.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/coordinator/engine_access.h"

namespace tern::coordinator {
namespace {

namespace v1 = tern::v1;

// A batch built from purges encoded one by one is byte for byte what
// protobuf writes for the same CoordinatorMessage, so every edge parses it.
TEST(EdgeWire, ABatchOfEncodedPurgesIsTheMessageProtobufWrites) {
  using storage::SelectorKind;
  std::vector<LogEntry> entries(4);
  for (size_t i = 0; i < 3; ++i) {
    entries[i].seq = 1000 + i * 300;            // multi-byte varints
    entries[i].accepted_at_ms = 1764000000000;  // not sent to edges
    entries[i].idempotency_key = "not sent either";
    entries[i].mode = i == 1 ? storage::PurgeMode::kSoft : storage::PurgeMode::kHard;
    for (size_t k = 0; k < 40 * i + 1; ++k)  // the last one is over 127 bytes
      entries[i].selectors.push_back({SelectorKind::kTag, "tag-" + std::to_string(k)});
  }
  entries[2].selectors.push_back({SelectorKind::kPrefix, "example.com/a/"});
  // Every kind, a value over 127 bytes, and an empty one (a oneof field is
  // written even when empty); seq 0 is left out, as protobuf does.
  entries[3].selectors = {{SelectorKind::kUrl, "example.com/" + std::string(200, 'u')},
                          {SelectorKind::kHost, "example.com:8080"},
                          {SelectorKind::kAll, ""},
                          {SelectorKind::kTag, ""}};
  for (bool catching_up : {false, true}) {
    v1::CoordinatorMessage expected;
    expected.mutable_purges()->set_catching_up(catching_up);
    std::vector<std::string> encoded;
    for (const auto& e : entries) {
      auto* p = expected.mutable_purges()->add_purges();
      p->set_seq(e.seq);
      p->set_mode(proto::toProto(e.mode));
      for (const auto& s : e.selectors) *p->add_selectors() = proto::toProto(s);
      encoded.push_back(encodeBatchedPurge(e));
    }
    std::vector<std::string_view> views(encoded.begin(), encoded.end());
    WireMessage wire = encodePurgeBatch(views, catching_up);
    EXPECT_EQ(*wire, expected.SerializeAsString()) << "catching_up " << catching_up;
    v1::CoordinatorMessage parsed;
    ASSERT_TRUE(parsed.ParseFromString(*wire));
    EXPECT_EQ(parsed.purges().purges_size(), 4);
    EXPECT_EQ(parsed.purges().purges(2).selectors_size(), 82);
    EXPECT_EQ(parsed.purges().purges(1).mode(), v1::PURGE_MODE_SOFT);
    EXPECT_TRUE(parsed.purges().purges(3).selectors(2).all());
  }
  // An empty batch still parses as a batch.
  v1::CoordinatorMessage empty;
  ASSERT_TRUE(empty.ParseFromString(*encodePurgeBatch({}, false)));
  EXPECT_TRUE(empty.has_purges());
  EXPECT_EQ(empty.purges().purges_size(), 0);
}

// Bytes that do not parse are a corrupt record. A selector this release
// cannot represent (a kind from a newer release, or none) stays in the log
// and goes to the edges as it was logged, as before plain records: a
// rolling upgrade never stops the log at it, nor turns it into another purge.
TEST(LogCodec, SelectorsFromANewerReleaseArePassedOnAsLogged) {
  EXPECT_EQ(decodeLogEntry("\xff\xff\xff").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(decodeEdgeRecord("\xff\xff\xff").status().code(), StatusCode::kCorruption);
  tern::internal::v1::LogEntry m;
  m.set_seq(7);
  m.set_mode(v1::PURGE_MODE_UNSPECIFIED);  // read as hard, as the edges do
  m.add_selectors()->set_tag("fine");
  m.add_selectors();                  // no kind
  m.add_selectors()->set_all(false);  // "all" must be true
  v1::Selector* future = m.add_selectors();
  future->GetReflection()->MutableUnknownFields(future)->AddLengthDelimited(99, "a new kind");
  auto e = decodeLogEntry(m.SerializeAsString());
  ASSERT_TRUE(e.ok()) << e.status().toString();
  EXPECT_EQ(e->seq, 7u);
  EXPECT_EQ(e->mode, storage::PurgeMode::kHard);
  EXPECT_EQ(e->selectors,
            (std::vector<storage::PurgeSelector>{{storage::SelectorKind::kTag, "fine"}}));
  ASSERT_EQ(e->unknown_selectors.size(), 3u);
  // Kept in the log as they were.
  tern::internal::v1::LogEntry again;
  ASSERT_TRUE(again.ParseFromString(encodeLogEntry(*e)));
  ASSERT_EQ(again.selectors_size(), 4);
  for (int i = 1; i < 4; ++i)
    EXPECT_EQ(again.selectors(i).SerializeAsString(), m.selectors(i).SerializeAsString()) << i;
  // Sent to the edges as they were, after the ones this release knows.
  const std::string purge = encodeBatchedPurge(*e);
  v1::CoordinatorMessage batch;
  ASSERT_TRUE(batch.ParseFromString(*encodePurgeBatch({purge}, false)));
  ASSERT_EQ(batch.purges().purges(0).selectors_size(), 4);
  EXPECT_EQ(batch.purges().purges(0).selectors(0).tag(), "fine");
  EXPECT_EQ(batch.purges().purges(0).selectors(3).SerializeAsString(), future->SerializeAsString());
}

// A commit is sized before it is written (etcd refuses a transaction past
// its request limit): the bound is never below the bytes written.
TEST(LogCodec, TheSizeBoundCoversTheEncoding) {
  using storage::SelectorKind;
  LogEntry e;
  EXPECT_GE(encodedSizeBound(e), encodeLogEntry(e).size());
  e.unknown_selectors = {std::string(20000, 'x')};
  EXPECT_GE(encodedSizeBound(e), encodeLogEntry(e).size());
  e.seq = ~0ULL;
  e.accepted_at_ms = -1;  // the longest varint
  e.mode = storage::PurgeMode::kSoft;
  e.idempotency_key = std::string(300, 'k');
  e.commit_id = "replica-with-a-long-name-" + std::string(100, 'r') + ":18446744073709551615";
  e.requested_by = std::string(200, 'b');
  e.requested_from = std::string(20000, 'f');
  for (size_t i = 0; i < 1000; ++i)
    e.selectors.push_back({SelectorKind::kUrl, std::string(i, 'u')});
  e.selectors.push_back({SelectorKind::kAll, ""});
  e.unknown_selectors = {std::string(), std::string(300, 'x')};
  EXPECT_GE(encodedSizeBound(e), encodeLogEntry(e).size());
}

PurgeCall tagCall(const std::string& tag) {
  PurgeCall c;
  c.selectors.push_back({storage::SelectorKind::kTag, tag});
  return c;
}

TEST(CheckPurgeRequest, BuildsTheLogEntryAndTheWait) {
  PurgeCall r = tagCall("product-42");
  r.selectors.push_back({storage::SelectorKind::kPrefix, "example.com/img/"});
  r.mode = storage::PurgeMode::kSoft;
  r.wait = WaitMode::kAll;
  r.idempotency_key = "k1";
  auto c = checkPurgeRequest(r, {});
  ASSERT_TRUE(c.ok()) << c.status().toString();
  EXPECT_EQ(c->entry.selectors, r.selectors);
  EXPECT_EQ(c->entry.mode, storage::PurgeMode::kSoft);
  EXPECT_EQ(c->entry.idempotency_key, "k1");
  EXPECT_EQ(c->wait, WaitMode::kAll);
  EXPECT_EQ(c->timeout_ms, 10000u);  // the default
  r.timeout_ms = 250;
  EXPECT_EQ(checkPurgeRequest(r, {})->timeout_ms, 250u);
}

// The engine checks a call again, whoever read it: an API that forgot to
// normalize or bound it gets a clear error, never a bad log entry.
TEST(CheckPurgeRequest, RefusesBadCallsClearly) {
  auto code = [](const PurgeCall& r) { return checkPurgeRequest(r, {}).status().code(); };
  EXPECT_EQ(code(PurgeCall{}), StatusCode::kInvalidArgument);  // no selector
  const PurgeCall r = tagCall("t");
  PurgeCall long_wait = r;
  long_wait.timeout_ms = 120001;
  auto s = checkPurgeRequest(long_wait, {});
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().toString().find("120000"), std::string::npos) << s.status().toString();
  PurgeCall key = r;
  key.idempotency_key = std::string(257, 'k');
  EXPECT_EQ(code(key), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(tagCall("")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(tagCall("has space")), StatusCode::kInvalidArgument);
  PurgeCall many;
  for (int i = 0; i < 1001; ++i) many.selectors.push_back({storage::SelectorKind::kTag, "t"});
  EXPECT_EQ(code(many), StatusCode::kInvalidArgument);
  many.selectors.pop_back();
  EXPECT_TRUE(checkPurgeRequest(many, {}).ok()) << "1,000 selectors are allowed";
}

TEST(TokenBucket, BurstThenRate) {
  TokenBucket b(10, 3, 0);  // 10/s, burst 3
  EXPECT_TRUE(b.tryTake(0));
  EXPECT_TRUE(b.tryTake(0));
  EXPECT_TRUE(b.tryTake(0));
  EXPECT_FALSE(b.tryTake(0));
  EXPECT_EQ(b.retryAfterMs(0), 100);
  EXPECT_EQ(b.retryAfterMs(50'000), 50);  // half a token there
  EXPECT_FALSE(b.tryTake(50'000));
  EXPECT_TRUE(b.tryTake(100'000));
  EXPECT_FALSE(b.tryTake(100'000));
  // Never more than the burst, however long it was idle.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.tryTake(3'600'000'000LL));
  EXPECT_FALSE(b.tryTake(3'600'000'000LL));
  // A clock that steps back does not mint tokens.
  EXPECT_FALSE(b.tryTake(1'000'000));
}

TEST(TokenBucket, ZeroRateAdmitsEverything) {
  TokenBucket b(0, 0, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b.tryTake(0));
  EXPECT_EQ(b.retryAfterMs(0), 0);
}

// A log whose read() can be held (as an etcd read past the entries kept in
// memory would take a round trip).
AppendQueue::Pending pendingTag(const std::string& tag) {
  AppendQueue::Pending p;
  p.entry.selectors.push_back({storage::SelectorKind::kTag, tag});
  p.done = [](Result<LogEntry>) {};
  return p;
}

TEST(AppendQueue, TakeMoreAddsWhatFitsWithoutWaiting) {
  AppendQueue q;
  for (int i = 0; i < 3; ++i) q.push(pendingTag("a" + std::to_string(i)));
  const auto upTo = [](size_t max) {
    return [max](size_t n, const AppendQueue::Pending&) { return n < max; };
  };
  std::vector<AppendQueue::Pending> group;
  ASSERT_TRUE(q.take(&group, std::chrono::milliseconds(0), upTo(2)));
  ASSERT_EQ(group.size(), 2u);
  // Latecomers while a commit was out: taken along up to the limit, in order.
  for (int i = 3; i < 6; ++i) q.push(pendingTag("a" + std::to_string(i)));
  q.takeMore(&group, upTo(5));
  ASSERT_EQ(group.size(), 5u);
  for (size_t i = 0; i < group.size(); ++i)
    EXPECT_EQ(group[i].entry.selectors[0].value, "a" + std::to_string(i));
  // Nothing fits: nothing moves; an empty queue: returns at once.
  q.takeMore(&group, upTo(5));
  EXPECT_EQ(group.size(), 5u);
  std::vector<AppendQueue::Pending> rest;
  ASSERT_TRUE(q.take(&rest, std::chrono::milliseconds(0), upTo(10)));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].entry.selectors[0].value, "a5");
  q.takeMore(&rest, upTo(10));
  EXPECT_EQ(rest.size(), 1u);
}

// A RocksPurgeLog in a folder of its own (null if it could not be opened).
struct RocksLogForTest {
  tern::testing::TempDir dir;
  std::unique_ptr<PurgeLog> log = [this] {
    PurgeLogOptions o;
    o.path = dir.sub("log");
    auto opened = RocksPurgeLog::open(o);
    return opened.ok() ? std::move(*opened) : nullptr;
  }();
};

class GatedLog : public PurgeLog {
 public:
  explicit GatedLog(PurgeLog* inner) : inner_(inner) {}
  void hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  // Runs before each append reaches the log (as the time a commit takes).
  std::function<void()> before_append;
  // Appends fail with IoError instead of reaching the log.
  std::atomic<bool> fail_appends{false};

  bool waitReading(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return reading_; });
  }

  void append(LogEntry entry, AppendDone done) override {
    if (before_append) before_append();
    if (fail_appends) return done(Status::ioError("disk gone"));
    inner_->append(std::move(entry), std::move(done));
  }
  void raiseHead(uint64_t seq, AppendDone done) override {
    inner_->raiseHead(seq, std::move(done));
  }
  uint64_t headSeq() const override { return inner_->headSeq(); }
  uint64_t firstSeq() const override { return inner_->firstSeq(); }
  PurgeLogStats stats() const override { return inner_->stats(); }
  Status read(uint64_t from, size_t max, std::vector<LogEntry>* out) const override {
    {
      std::unique_lock lock(mu_);
      reading_ = true;
      cv_.notify_all();
      // Bounded: a test that fails does not hang.
      cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !held_; });
      reading_ = false;
    }
    return inner_->read(from, max, out);
  }
  Result<std::optional<LogEntry>> get(uint64_t seq) const override { return inner_->get(seq); }
  Status saveEdge(const EdgeRecord& edge) override { return inner_->saveEdge(edge); }
  Status removeEdge(const std::string& id) override { return inner_->removeEdge(id); }
  Result<std::vector<EdgeRecord>> loadEdges() const override { return inner_->loadEdges(); }
  Status trimForTesting(int64_t now_ms) override { return inner_->trimForTesting(now_ms); }

 private:
  PurgeLog* inner_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool held_ = false;
  mutable bool reading_ = false;
};

class NullStream : public EdgeStream {
 public:
  void wake() override {}
  void close(const std::string&) override {}
};

double metricValue(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

// The commit's share of a purge (call in to durable in the log) is
// measured apart from its way to the edges, and only for purges logged.
TEST(EngineMetricsTest, CommitLatencyIsTheTimeUntilDurable) {
  RocksLogForTest rocks;
  ASSERT_TRUE(rocks.log != nullptr);
  GatedLog log(rocks.log.get());
  std::atomic<int64_t> now_us{1'000'000};
  log.before_append = [&] { now_us += 5000; };  // each commit takes 5 ms
  metrics::Registry registry;
  Coordinator engine(&log, CoordinatorOptions{}, &registry, [&] { return now_us.load(); });
  ASSERT_TRUE(engine.start(false).isOk());
  auto purgeSync = [&](const std::string& tag) {
    std::promise<bool> p;
    engine.purge(tagCall(tag), [&](Result<PurgeStatus> r) { p.set_value(r.ok()); });
    return p.get_future().get();
  };
  ASSERT_TRUE(purgeSync("a"));
  ASSERT_TRUE(purgeSync("b"));
  log.fail_appends = true;
  EXPECT_FALSE(purgeSync("c"));
  const std::string text = registry.render();
  EXPECT_EQ(metricValue(text, "tern_coordinator_log_commit_seconds_count"), 2) << text;
  EXPECT_NEAR(metricValue(text, "tern_coordinator_log_commit_seconds_sum"), 0.010, 1e-9) << text;
  engine.stop();
}

TEST(EngineLocking, AStreamReadingTheLogDoesNotHoldTheEngine) {
  RocksLogForTest rocks;
  ASSERT_TRUE(rocks.log != nullptr);
  GatedLog log(rocks.log.get());
  metrics::Registry registry;
  // One purge tracked: the stream's batch starts before it, so it comes
  // from the log (tracked purges are sent from memory).
  CoordinatorOptions options;
  options.tracked_purges = 1;
  Coordinator engine(&log, options, &registry);
  ASSERT_TRUE(engine.start(false).isOk());
  auto hello = [](const std::string& id) {
    EdgeHello h;
    h.edge_id = id;
    h.protocol_version = 1;
    return h;
  };
  auto a = engine.attach(hello("a"), std::make_shared<NullStream>());
  ASSERT_TRUE(a.ok());
  v1::CoordinatorMessage m;
  ASSERT_TRUE(engine_access::nextMessage(engine, *a, &m));  // Welcome
  ASSERT_TRUE(engine_access::nextMessage(engine, *a, &m));  // the first lease
  for (int i = 0; i < 2; ++i) {
    std::promise<void> logged;
    engine.purge(tagCall("t" + std::to_string(i)), [&](Result<PurgeStatus> res) {
      EXPECT_TRUE(res.ok());
      logged.set_value();
    });
    logged.get_future().get();
  }

  log.hold();
  auto reader = std::async(std::launch::async, [&] {
    v1::CoordinatorMessage batch;
    const bool got = engine_access::nextMessage(engine, *a, &batch);
    return got && batch.has_purges() ? batch.purges().purges_size() : -1;
  });
  ASSERT_TRUE(log.waitReading(std::chrono::seconds(5)));
  // While the read is held: the APIs, a new edge and a heartbeat go on.
  auto others = std::async(std::launch::async, [&] {
    auto edges = engine.listEdges();
    auto b = engine.attach(hello("b"), std::make_shared<NullStream>());
    if (!b.ok()) return false;
    EdgeHeartbeat hb;
    hb.id = 1;
    engine.heartbeat(*b, hb);
    return edges.edges.size() == 1;
  });
  const bool went_on = others.wait_for(std::chrono::seconds(3)) == std::future_status::ready;
  log.release();
  EXPECT_TRUE(went_on) << "the engine was held while a stream read the log";
  EXPECT_TRUE(others.get());
  EXPECT_EQ(reader.get(), 2);  // both purges, once the read was let through
  engine.stop();
}

// A stream slow to take its wake-up (a transport thread busy elsewhere)
// does not hold up the log: purges are still logged and acknowledged.
TEST(EngineLocking, AStreamSlowToWakeDoesNotHoldUpThePurgeLog) {
  class BlockingStream : public EdgeStream {
   public:
    void wake() override {
      std::unique_lock lock(mu_);
      if (!armed_) return;
      woken_ = true;
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(10), [&] { return released_; });
    }
    void close(const std::string&) override {}
    bool waitWoken() {
      std::unique_lock lock(mu_);
      return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return woken_; });
    }
    void release() {
      std::lock_guard lock(mu_);
      released_ = true;
      cv_.notify_all();
    }
    void arm() {
      std::lock_guard lock(mu_);
      armed_ = true;
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool armed_ = false, woken_ = false, released_ = false;
  };
  RocksLogForTest rocks;
  ASSERT_TRUE(rocks.log != nullptr);
  metrics::Registry registry;
  Coordinator engine(rocks.log.get(), {}, &registry);
  ASSERT_TRUE(engine.start(false).isOk());
  EdgeHello h;
  h.edge_id = "slow";
  h.protocol_version = 1;
  auto stream = std::make_shared<BlockingStream>();
  ASSERT_TRUE(engine.attach(h, stream).ok());
  stream->arm();  // (its welcome woke it already)
  auto purge = [&](const std::string& tag) {
    auto done = std::make_shared<std::promise<bool>>();
    engine.purge(tagCall(tag), [done](Result<PurgeStatus> res) { done->set_value(res.ok()); });
    return done->get_future();
  };
  auto first = purge("one");
  ASSERT_TRUE(stream->waitWoken()) << "the stream is woken for the new purge";
  // While that wake-up is held, more purges are logged and acknowledged.
  auto second = purge("two");
  auto third = purge("three");
  const bool went_on = second.wait_for(std::chrono::seconds(3)) == std::future_status::ready &&
                       third.wait_for(std::chrono::seconds(3)) == std::future_status::ready;
  stream->release();
  EXPECT_TRUE(went_on) << "the log waited for a stream's wake-up";
  EXPECT_TRUE(first.get());
  EXPECT_TRUE(second.get());
  EXPECT_TRUE(third.get());
  engine.stop();
}

}  // namespace
}  // namespace tern::coordinator
