// The request journey as a state machine, driven without sockets: a memory
// store, an origin that answers when the test says so, executors that run
// tasks at once. Each test checks the phases a request went through (every
// one of them allowed by the table) and what it was answered.

#include "edge/cache/request_flow.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "common/clock.h"
#include "storage/memory/memory_store.h"

namespace tern::edge::cache {
namespace {

using P = Phase;

class FakeOrigin final : public origin::OriginClient {
 public:
  struct Pending {
    origin::OriginRequest request;
    Callbacks callbacks;
  };
  void fetch(origin::OriginRequest request, Callbacks callbacks) override {
    ++fetches;
    pending.push_back({std::move(request), std::move(callbacks)});
  }
  // Answers the oldest fetch in flight with a whole response.
  void answer(int status, http::Fields headers, std::string body = {}) {
    ASSERT_FALSE(pending.empty());
    Pending p = std::move(pending.front());
    pending.pop_front();
    origin::OriginHead head;
    head.status = status;
    head.headers = std::move(headers);
    head.request_time_ms = head.response_time_ms = wallNowMs();
    p.callbacks.on_head(head);
    if (!body.empty()) p.callbacks.on_data(std::move(body), [] {});
    p.callbacks.on_done(Status::ok());
  }
  // Fails the oldest fetch in flight before any response.
  void fail(Status st) {
    ASSERT_FALSE(pending.empty());
    Pending p = std::move(pending.front());
    pending.pop_front();
    p.callbacks.on_head(st);
    p.callbacks.on_done(st.withSource(ErrorSource::kOrigin));
  }
  std::deque<Pending> pending;
  int fetches = 0;
};

struct Answer {
  std::vector<Phase> path;  // the phases the request went through
  int status = 0;
  http::Fields headers;
  std::string body;
  bool answered = false;
  std::string header(std::string_view name) const {
    auto v = http::findField(headers, name);
    return v ? std::string(*v) : std::string();
  }
};

class Recorder final : public Responder {
 public:
  explicit Recorder(Answer* out) : out_(out) {}
  void respond(int status, http::Fields headers, std::unique_ptr<BodySource> body,
               std::optional<uint64_t>) override {
    out_->status = status;
    out_->headers = std::move(headers);
    out_->answered = true;
    source_ = std::move(body);
    pull();
  }

 private:
  // Executors run at once here, so a body that is there is read at once; a
  // body still coming from the origin is read as it arrives.
  void pull() {
    if (!source_) return;
    source_->next([this](Result<std::string_view> chunk) {
      if (!chunk.ok() || chunk->empty()) return;
      out_->body.append(chunk->data(), chunk->size());
      pull();
    });
  }
  Answer* out_;
  std::unique_ptr<BodySource> source_;
};

class RequestFlowTest : public ::testing::Test {
 protected:
  RequestFlowTest() {
    storage::MemoryStoreOptions o;
    o.background = false;
    store_ =
        std::make_unique<TieredStore>(std::make_unique<storage::MemoryStore>(o), nullptr, 1 << 20);
    metrics_ = std::make_unique<FlowMetrics>(registry_);
  }
  // Journeys still at the origin end, as an origin that goes away ends them.
  void TearDown() override {
    while (!origin_.pending.empty()) origin_.fail(Status::unavailable("the test is over"));
  }
  FlowContext context() {
    FlowConfig config = config_;
    config.on_phase = [this](const Request& req, Phase p) {
      auto& path = answerOf_[&req]->path;
      if (!path.empty()) {
        EXPECT_TRUE(allowedTransition(path.back(), p))
            << phaseName(path.back()) << " -> " << phaseName(p) << " for " << req.target;
      }
      path.push_back(p);
    };
    Executor now = [](Task t) { t(); };
    return FlowContext{store_.get(), &collapser_, &origin_,       now,
                       now,          config,      metrics_.get(), &background_};
  }
  // Starts a request; its answer lands in the returned object (kept alive by
  // the test's list).
  Answer* request(const std::string& method, const std::string& target, http::Fields headers = {},
                  std::string body = {}) {
    auto req = std::make_shared<Request>();
    req->method = method;
    req->target = target;
    req->headers = std::move(headers);
    req->headers.push_back({"Host", "example.com"});
    req->body = std::move(body);
    req->client_ip = "10.0.0.1";
    req->received_ms = wallNowMs();
    answers_.push_back(std::make_unique<Answer>());
    Answer* a = answers_.back().get();
    answerOf_[req.get()] = a;
    last_[target + " " + method] = a;
    contexts_.push_back(std::make_unique<FlowContext>(context()));
    handleRequest(*contexts_.back(), req, std::make_shared<Recorder>(a));
    return a;
  }
  // The path of the last request for `target`.
  std::vector<Phase> path(const std::string& target, const std::string& method = "GET") {
    return last_[target + " " + method]->path;
  }

  metrics::Registry registry_;
  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<FlowMetrics> metrics_;
  Collapser collapser_, background_;
  FakeOrigin origin_;
  FlowConfig config_;
  std::map<const Request*, Answer*> answerOf_;
  std::map<std::string, Answer*> last_;
  std::vector<std::unique_ptr<Answer>> answers_;
  std::vector<std::unique_ptr<FlowContext>> contexts_;
};

const http::Fields kFresh = {{"Cache-Control", "max-age=60"}, {"ETag", "\"v1\""}};

TEST_F(RequestFlowTest, AMissIsFetchedStoredAndDeliveredThenAHitIsServedFromTheStore) {
  Answer* miss = request("GET", "/a");
  EXPECT_FALSE(miss->answered);  // at the origin
  EXPECT_EQ(path("/a"), (std::vector<Phase>{P::kReceive, P::kLookup, P::kMiss, P::kFetch}));
  origin_.answer(200, kFresh, "hello");
  EXPECT_EQ(miss->status, 200);
  EXPECT_EQ(miss->body, "hello");
  EXPECT_NE(miss->header("cache-status").find("stored"), std::string::npos);
  EXPECT_EQ(path("/a"), (std::vector<Phase>{P::kReceive, P::kLookup, P::kMiss, P::kFetch, P::kStore,
                                            P::kDeliver}));
  Answer* hit = request("GET", "/a");
  EXPECT_EQ(hit->status, 200);
  EXPECT_EQ(hit->body, "hello");
  EXPECT_NE(hit->header("cache-status").find("hit"), std::string::npos);
  EXPECT_EQ(path("/a"), (std::vector<Phase>{P::kReceive, P::kLookup, P::kHit, P::kDeliver}));
  EXPECT_EQ(origin_.fetches, 1);
}

TEST_F(RequestFlowTest, AStaleEntryIsRevalidatedAndA304RefreshesIt) {
  request("GET", "/r");
  origin_.answer(200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"v1\""}}, "body");
  Answer* again = request("GET", "/r");
  EXPECT_EQ(path("/r"), (std::vector<Phase>{P::kReceive, P::kLookup, P::kRevalidate, P::kFetch}));
  ASSERT_EQ(origin_.pending.size(), 1u);
  EXPECT_EQ(http::findField(origin_.pending.front().request.headers, "if-none-match"), "\"v1\"");
  origin_.answer(304, {{"Cache-Control", "max-age=60"}, {"ETag", "\"v1\""}});
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(again->body, "body");
  EXPECT_EQ(path("/r").back(), P::kDeliver);
  // Refreshed: a hit now.
  request("GET", "/r");
  EXPECT_EQ(path("/r"), (std::vector<Phase>{P::kReceive, P::kLookup, P::kHit, P::kDeliver}));
}

// What reuse needs of a response's fields is worked out once, when it is
// stored, and a hit decides from that: fields that say otherwise are not
// parsed again. A record written before this was kept is still decided from
// its fields.
TEST_F(RequestFlowTest, AHitDecidesFromWhatWasKeptWhenStoredNotFromTheFields) {
  request("GET", "/kept");
  origin_.answer(
      200,
      {{"Cache-Control", "max-age=60, stale-while-revalidate=30, must-revalidate"}, {"Age", "5"}},
      "x");
  auto key = storage::CacheKey::fromRequest("http", "example.com", "/kept");
  ASSERT_TRUE(key.ok());
  auto stored = store_->lookupMemory({*key, ""});
  ASSERT_TRUE(stored.ok());
  const storage::EntryMeta& m = *stored->meta;
  EXPECT_EQ(m.freshness_lifetime_ms, 60000);
  EXPECT_TRUE(m.freshness.known);
  EXPECT_GE(m.freshness.initial_age_ms, 5000);
  EXPECT_LT(m.freshness.initial_age_ms, 6000);
  EXPECT_TRUE(m.freshness.must_revalidate);
  EXPECT_FALSE(m.freshness.no_cache);
  EXPECT_EQ(m.freshness.stale_while_revalidate_s, 30);
  EXPECT_EQ(m.freshness.stale_if_error_s, -1);

  auto put = [&](const std::string& path, http::Fields fields, int64_t lifetime_ms, bool known) {
    auto k = storage::CacheKey::fromRequest("http", "example.com", path);
    ASSERT_TRUE(k.ok());
    storage::EntryMeta e;
    e.headers = std::move(fields);
    e.request_time_ms = e.response_time_ms = wallNowMs();
    e.freshness_lifetime_ms = lifetime_ms;
    e.freshness.known = known;
    ASSERT_TRUE(store_->store({*k, ""}, e, {std::make_shared<const std::string>("y")}).isOk());
  };
  // Fields that would make it stale; what was kept says fresh: a hit.
  put("/fields-say-stale", {{"Cache-Control", "max-age=0"}}, 3600 * 1000, true);
  // What was kept says stale; fields that say fresh are not read: revalidated.
  put("/kept-says-stale", {{"Cache-Control", "max-age=3600"}}, 0, true);
  // A record from before: decided from its fields, whatever lifetime it
  // carries (the binary that wrote it did not update it on a 304).
  put("/old-fresh", {{"Cache-Control", "max-age=3600"}}, 0, false);
  put("/old-stale", {{"Cache-Control", "max-age=0"}}, 3600 * 1000, false);
  const int fetches = origin_.fetches;
  request("GET", "/fields-say-stale");
  EXPECT_EQ(path("/fields-say-stale"),
            (std::vector<Phase>{P::kReceive, P::kLookup, P::kHit, P::kDeliver}));
  request("GET", "/kept-says-stale");
  EXPECT_EQ(path("/kept-says-stale"),
            (std::vector<Phase>{P::kReceive, P::kLookup, P::kRevalidate, P::kFetch}));
  request("GET", "/old-fresh");
  EXPECT_EQ(path("/old-fresh"),
            (std::vector<Phase>{P::kReceive, P::kLookup, P::kHit, P::kDeliver}));
  request("GET", "/old-stale");
  EXPECT_EQ(path("/old-stale"),
            (std::vector<Phase>{P::kReceive, P::kLookup, P::kRevalidate, P::kFetch}));
  EXPECT_EQ(origin_.fetches, fetches + 2);
}

TEST_F(RequestFlowTest, OriginErrorsAre502Or504UnlessAStoredResponseMayStandIn) {
  Answer* down = request("GET", "/down");
  origin_.fail(Status::unavailable("origin connect refused"));
  EXPECT_EQ(down->status, 502);
  EXPECT_EQ(path("/down"), (std::vector<Phase>{P::kReceive, P::kLookup, P::kMiss, P::kFetch,
                                               P::kError, P::kDeliver}));
  Answer* slow = request("GET", "/slow");
  origin_.fail(Status::timeout("origin timeout"));
  EXPECT_EQ(slow->status, 504);
  // stale-if-error: the stored response stands in for a failed revalidation.
  request("GET", "/s");
  origin_.answer(200, {{"Cache-Control", "max-age=0, stale-if-error=60"}, {"ETag", "\"s\""}},
                 "stored");
  Answer* stale = request("GET", "/s");
  origin_.fail(Status::unavailable("origin connect refused"));
  EXPECT_EQ(stale->status, 200);
  EXPECT_EQ(stale->body, "stored");
  EXPECT_EQ(path("/s"),
            (std::vector<Phase>{P::kReceive, P::kLookup, P::kRevalidate, P::kFetch, P::kDeliver}));
}

TEST_F(RequestFlowTest, ConcurrentMissesShareOneFetch) {
  Answer* first = request("GET", "/c");
  Answer* second = request("GET", "/c");
  EXPECT_EQ(origin_.fetches, 1);
  origin_.answer(200, kFresh, "shared");
  EXPECT_EQ(first->body, "shared");
  EXPECT_EQ(second->body, "shared");
  EXPECT_NE(second->header("cache-status").find("collapsed"), std::string::npos)
      << second->header("cache-status");
  EXPECT_EQ(second->path,
            (std::vector<Phase>{P::kReceive, P::kLookup, P::kMiss, P::kFetch, P::kDeliver}));
}

TEST_F(RequestFlowTest, UnsafeMethodsPassToTheOriginAndInvalidate) {
  request("GET", "/p");
  origin_.answer(200, kFresh, "old");
  Answer* post = request("POST", "/p", {{"Content-Type", "text/plain"}}, "payload");
  ASSERT_EQ(origin_.pending.size(), 1u);
  EXPECT_EQ(origin_.pending.front().request.method, "POST");
  EXPECT_EQ(origin_.pending.front().request.body, "payload");
  origin_.answer(200, {{"Cache-Control", "no-store"}}, "done");
  EXPECT_EQ(post->status, 200);
  EXPECT_EQ(path("/p", "POST"), (std::vector<Phase>{P::kReceive, P::kPass, P::kDeliver}));
  // The POST invalidated the stored GET.
  request("GET", "/p");
  EXPECT_EQ(path("/p")[2], P::kMiss);
}

TEST_F(RequestFlowTest, PurgeIsForwardedWithTheCallersCredentialOrRefused) {
  PurgeForward forwarded;
  config_.purge_forwarder = [&](PurgeForward f,
                                std::function<void(int status, std::string json)> done) {
    forwarded = std::move(f);
    done(200, R"({"seq":7})");
  };
  Answer* refused = request("PURGE", "/x");
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(path("/x", "PURGE"), (std::vector<Phase>{P::kReceive, P::kPurge, P::kDeliver}));
  Answer* ok = request("PURGE", "/x", {{"Authorization", "Bearer caller-token"}});
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(forwarded.authorization, "Bearer caller-token");
  ASSERT_EQ(forwarded.selectors.size(), 1u);
  EXPECT_EQ(path("/x", "PURGE"), (std::vector<Phase>{P::kReceive, P::kPurge, P::kDeliver}));
  EXPECT_EQ(origin_.fetches, 0);
}

TEST_F(RequestFlowTest, OnlyIfCachedAndBadTargetsAreAnsweredWithoutTheOrigin) {
  Answer* only = request("GET", "/o", {{"Cache-Control", "only-if-cached"}});
  EXPECT_EQ(only->status, 504);
  EXPECT_EQ(path("/o"),
            (std::vector<Phase>{P::kReceive, P::kLookup, P::kMiss, P::kError, P::kDeliver}));
  Answer* bad = request("GET", "/%zz");
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(path("/%zz"), (std::vector<Phase>{P::kReceive, P::kError, P::kDeliver}));
  EXPECT_EQ(origin_.fetches, 0);
}

TEST_F(RequestFlowTest, AFencedEdgeRevalidatesWhatIsFresh) {
  LeaseGate lease(0);  // lapsed
  config_.lease = &lease;
  lease.openUntil(steadyNowUs() + 60'000'000);
  request("GET", "/f");
  origin_.answer(200, kFresh, "v1");
  lease.openUntil(0);  // the lease lapses
  Answer* fenced = request("GET", "/f");
  EXPECT_EQ(path("/f"), (std::vector<Phase>{P::kReceive, P::kLookup, P::kRevalidate, P::kFetch}));
  origin_.answer(304, kFresh);
  EXPECT_EQ(fenced->body, "v1");
}

TEST(RequestFlowTable, TransitionsFollowTheTable) {
  EXPECT_TRUE(allowedTransition(P::kReceive, P::kLookup));
  EXPECT_TRUE(allowedTransition(P::kLookup, P::kLookup));  // a Vary record, a purge race
  EXPECT_TRUE(allowedTransition(P::kFetch, P::kStore));
  EXPECT_TRUE(allowedTransition(P::kHit, P::kError));
  EXPECT_FALSE(allowedTransition(P::kReceive, P::kHit));
  EXPECT_FALSE(allowedTransition(P::kHit, P::kFetch));
  EXPECT_FALSE(allowedTransition(P::kDeliver, P::kError));
  EXPECT_FALSE(allowedTransition(P::kDeliver, P::kLookup));
  EXPECT_EQ(phaseName(P::kRevalidate), "revalidate");
}

// A connection's transactions are built where the last one was, once that
// one is gone; one still alive never shares its block.
TEST(TransactionSlotTest, TheBlockIsLentOneAtATimeAndKept) {
  TransactionSlot slot;
  void* a = slot.take(256);
  slot.give(a);
  EXPECT_EQ(slot.take(200), a);  // reused: free and large enough
  void* b = slot.take(256);      // the block is lent: other memory
  EXPECT_NE(b, a);
  slot.give(b);  // freed (ASan would see a leak or a double free)
  slot.give(a);
  void* c = slot.take(1024);  // larger than the block: other memory
  EXPECT_NE(c, a);
  slot.give(c);
  EXPECT_EQ(slot.take(256), a);
  slot.give(a);
}

// A transaction built in a slot runs as any other, and the slot's block is
// free again once it is gone (the next one is built there).
TEST_F(RequestFlowTest, TransactionsBuiltInASlotReuseItsBlock) {
  struct Owner {
    Request request;
    TransactionSlot slot;
  };
  auto owner = std::make_shared<Owner>();
  auto run = [&](const std::string& target) {
    std::shared_ptr<Request> req(owner, &owner->request);
    req->method = "GET";
    req->target = target;
    req->headers = {{"Host", "example.com"}};
    req->received_ms = wallNowMs();
    answers_.push_back(std::make_unique<Answer>());
    Answer* a = answers_.back().get();
    answerOf_[req.get()] = a;
    contexts_.push_back(std::make_unique<FlowContext>(context()));
    handleRequest(*contexts_.back(), std::move(req), std::make_shared<Recorder>(a), &owner->slot);
    return a;
  };
  // The slot's block, large enough for any transaction.
  void* block = owner->slot.take(64 * 1024);
  owner->slot.give(block);
  Answer* miss = run("/s");  // at the origin: its transaction holds the block
  void* other = owner->slot.take(1);
  EXPECT_NE(other, block);
  owner->slot.give(other);
  origin_.answer(200, kFresh, "slot");
  EXPECT_EQ(miss->body, "slot");
  EXPECT_EQ(owner.use_count(), 1);  // the transaction and its block are gone
  EXPECT_EQ(owner->slot.take(1), block);
  owner->slot.give(block);
  Answer* hit = run("/s");
  EXPECT_EQ(hit->body, "slot");
  EXPECT_NE(hit->header("cache-status").find("hit"), std::string::npos);
  EXPECT_EQ(owner.use_count(), 1);
  EXPECT_EQ(owner->slot.take(1), block);
  owner->slot.give(block);
}

}  // namespace
}  // namespace tern::edge::cache
