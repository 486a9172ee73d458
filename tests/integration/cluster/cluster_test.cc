// The cluster end to end: a real tern-coordinator and three real tern-edge
// processes on loopback, a real origin, real RocksDB, real gRPC. Covers every
// selector x mode, catch-up after an edge is killed, a coordinator SIGKILLed
// right after acknowledging a purge, a stopped (SIGSTOP) edge being fenced,
// a fetch that started before a purge, PURGE at the edge, tokens, bad input
// and ternctl.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "tern/v1/purge.grpc.pb.h"
#include "tests/support/coordinator_process.h"
#include "tests/support/edge_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_origin.h"
#include "tests/support/wait.h"

namespace tern::testing {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kToken = "cluster-test-token";

int64_t msSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    coordinator_ = std::make_unique<CoordinatorProcess>(
        dir_.sub("coordinator"),
        std::vector<std::string>{"--lease", "1s", "--auth.token", kToken, "--log.level", "debug"});
    ASSERT_TRUE(coordinator_->ok()) << coordinator_->log();
    for (int i = 0; i < 3; ++i) edges_.push_back(startEdge("e" + std::to_string(i + 1)));
    for (auto& e : edges_) ASSERT_TRUE(e->ok()) << e->log();
    waitAllReady();
  }

  std::unique_ptr<EdgeProcess> startEdge(const std::string& id, const std::string& token = kToken) {
    return std::make_unique<EdgeProcess>(
        dir_.sub(id), origin_.url(),
        std::vector<std::string>{"--coordinator.address", coordinator_->grpcAddress(),
                                 "--coordinator.edge_id", id, "--coordinator.token", token,
                                 "--purge.enabled", "true", "--log.access", "false"});
  }

  bool ready(EdgeProcess& e) { return httpGet(e.adminPort(), "/readyz").status == 200; }

  void waitAllReady() {
    for (auto& e : edges_) {
      for (int i = 0; i < 500 && !ready(*e); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ASSERT_TRUE(ready(*e)) << e->log();
    }
  }

  HttpResponse api(const std::string& method, const std::string& target,
                   const std::string& body = {}, bool auth = true) {
    HeaderList h = {{"Content-Type", "application/json"}};
    if (auth) h.push_back({"Authorization", std::string("Bearer ") + kToken});
    return httpRequest(coordinator_->httpPort(), method, target, h, body, 30000);
  }

  json::object purge(const std::string& body_json) {
    auto r = api("POST", "/v1/purge", body_json);
    EXPECT_TRUE(r.status == 200 || r.status == 202) << r.status << " " << r.body;
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object()) return {};
    return v.as_object();
  }

  static OriginResponse object(const std::string& body, const std::string& tag) {
    OriginResponse r;
    r.body = body;
    r.headers = {{"Cache-Control", "max-age=300"},
                 {"ETag", "\"" + body + "\""},
                 {"Surrogate-Key", tag},
                 {"Content-Type", "text/plain"}};
    return r;
  }

  // GETs until the edge answers from cache (stores complete just after the
  // response).
  void prime(EdgeProcess& e, const std::string& path, const std::string& host = "test.example") {
    for (int i = 0; i < 100; ++i) {
      auto r = httpGet(e.port(), path, {{"Host", host}});
      if (r.header("cache-status").find("; hit") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "never a hit: " << path;
  }

  static bool isHit(const HttpResponse& r) {
    return r.header("cache-status").find("; hit") != std::string::npos;
  }

  TempDir dir_;
  TestOrigin origin_;
  std::unique_ptr<CoordinatorProcess> coordinator_;
  std::vector<std::unique_ptr<EdgeProcess>> edges_;
};

TEST_F(ClusterTest, EverySelectorAndModeEndToEnd) {
  struct Case {
    std::string kind;
    bool soft;
  };
  std::vector<Case> cases;
  for (std::string kind : {"url", "prefix", "host", "tag", "all"})
    for (bool soft : {false, true}) cases.push_back({kind, soft});
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.kind + (c.soft ? " soft" : " hard"));
    const std::string host = "case" + std::to_string(n++) + ".example";
    const std::string tag = "tag-" + host;
    const std::string p1 = "/" + host + "/in/1", p2 = "/" + host + "/out/2";
    origin_.set(p1, object("one-" + host, tag));
    origin_.set(p2, object("two-" + host, "other"));
    for (auto& e : edges_) {
      prime(*e, p1, host);
      prime(*e, p2, host);
    }
    const int before1 = origin_.count(p1), before2 = origin_.count(p2);
    std::string sel;
    if (c.kind == "url") sel = R"({"url":")" + host + p1 + R"("})";
    if (c.kind == "prefix") sel = R"({"prefix":")" + host + "/" + host + R"(/in/"})";
    if (c.kind == "host") sel = R"({"host":")" + host + R"("})";
    if (c.kind == "tag") sel = R"({"tag":")" + tag + R"("})";
    if (c.kind == "all") sel = R"({"all":true})";
    auto result = purge(R"({"selectors":[)" + sel + R"(],"wait":"all","mode":")" +
                        (c.soft ? "soft" : "hard") + R"("})");
    ASSERT_EQ(result["state"], "complete") << json::serialize(result);
    ASSERT_EQ(result["edges"].as_array().size(), 3u);
    for (const auto& e : result["edges"].as_array())
      EXPECT_EQ(e.as_object().at("state"), "applied") << json::serialize(result);
    const bool p2_matched = c.kind == "host" || c.kind == "all";
    for (auto& e : edges_) {
      auto r1 = httpGet(e->port(), p1, {{"Host", host}});
      EXPECT_EQ(r1.status, 200);
      EXPECT_EQ(r1.body, "one-" + host);
      EXPECT_FALSE(isHit(r1)) << "served from cache after a completed purge: "
                              << r1.header("cache-status");
      auto r2 = httpGet(e->port(), p2, {{"Host", host}});
      EXPECT_EQ(isHit(r2), !p2_matched) << r2.header("cache-status");
    }
    EXPECT_EQ(origin_.count(p1), before1 + 3);
    EXPECT_EQ(origin_.count(p2), before2 + (p2_matched ? 3 : 0));
    // Soft: the origin was asked conditionally (it answered 304); hard: not.
    auto reqs = origin_.requests();
    int conditional = 0;
    for (const auto& r : reqs)
      if (r.target == p1 && r.headers.count("if-none-match")) ++conditional;
    EXPECT_EQ(conditional, c.soft ? 3 : 0);
  }
}

TEST_F(ClusterTest, KilledEdgeCatchesUpWhenRestarted) {
  origin_.set("/k", object("k1", "k"));
  for (auto& e : edges_) prime(*e, "/k");
  edges_[2]->process().kill();
  const auto t0 = Clock::now();
  auto r = purge(R"({"tags":["k"],"wait":"all"})");
  EXPECT_EQ(r["state"], "complete") << json::serialize(r);
  EXPECT_LT(msSince(t0), 4000) << "completes once the dead edge's lease (1s) is over";
  for (int i = 0; i < 3; ++i) purge(R"({"tags":["filler"]})");
  const uint64_t head = 4;
  edges_[2]->restart(false);
  ASSERT_TRUE(edges_[2]->ok()) << edges_[2]->log();
  waitAllReady();
  const int before = origin_.count("/k");
  auto got = httpGet(edges_[2]->port(), "/k");
  EXPECT_EQ(got.body, "k1");
  EXPECT_FALSE(isHit(got)) << got.header("cache-status");
  EXPECT_EQ(origin_.count("/k"), before + 1);
  // The coordinator sees it caught up.
  auto edges = json::parse(api("GET", "/v1/edges").body).as_object();
  for (const auto& e : edges["edges"].as_array()) {
    if (e.as_object().at("edge_id") == "e3") {
      EXPECT_EQ(e.as_object().at("applied_seq").to_number<uint64_t>(), head);
      EXPECT_EQ(e.as_object().at("lag").to_number<uint64_t>(), 0u);
    }
  }
}

TEST_F(ClusterTest, CoordinatorKilledRightAfterAckingStillDelivers) {
  origin_.set("/c", object("c1", "c"));
  for (auto& e : edges_) prime(*e, "/c");
  // Edges cannot receive anything while the purge is acknowledged and the
  // coordinator dies.
  for (auto& e : edges_) e->process().signal(SIGSTOP);
  auto r = purge(R"({"tags":["c"]})");
  ASSERT_EQ(r["state"], "accepted") << json::serialize(r);
  const uint64_t seq = r["id"].to_number<uint64_t>();
  coordinator_->process().kill();
  coordinator_->restart(false);
  ASSERT_TRUE(coordinator_->ok()) << coordinator_->log();
  for (auto& e : edges_) e->process().signal(SIGCONT);
  // Every edge reconnects, is replayed the purge, and applies it.
  bool applied = false;
  for (int i = 0; i < 500 && !applied; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto s = api("GET", "/v1/purges/" + std::to_string(seq));
    if (s.status != 200) continue;
    const json::value v = json::parse(s.body);
    applied = v.at("state") == "complete";
    for (const auto& e : v.at("edges").as_array()) applied = applied && e.at("state") == "applied";
  }
  EXPECT_TRUE(applied) << coordinator_->log();
  for (auto& e : edges_) {
    auto got = httpGet(e->port(), "/c");
    EXPECT_FALSE(isHit(got)) << got.header("cache-status");
  }
}

// After a coordinator outage long enough for every reconnection backoff to
// grow, edges are back within a few hundred milliseconds of the coordinator
// listening again (each edge is fenced until then: every hit costs the
// origin a request).
TEST_F(ClusterTest, EdgesReconnectPromptlyWhenTheCoordinatorIsBack) {
  auto connected = [](EdgeProcess& e) {
    auto m = httpGet(e.adminPort(), "/metrics");
    return m.body.find("\ntern_edge_coordinator_connected 1") != std::string::npos;
  };
  for (auto& e : edges_) ASSERT_TRUE(connected(*e));
  coordinator_->restart(/*kill=*/true, /*down_ms=*/4000);
  ASSERT_TRUE(coordinator_->ok()) << coordinator_->log();
  const auto back = Clock::now();  // it prints its ports once listening
  std::vector<int64_t> took(edges_.size(), -1);
  for (int i = 0; i < 1000; ++i) {
    bool all = true;
    for (size_t k = 0; k < edges_.size(); ++k) {
      if (took[k] < 0 && connected(*edges_[k])) took[k] = msSince(back);
      all = all && took[k] >= 0;
    }
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (size_t k = 0; k < edges_.size(); ++k) {
    std::printf("edge %zu connected %lld ms after the coordinator was back\n", k + 1,
                static_cast<long long>(took[k]));
    EXPECT_GE(took[k], 0) << edges_[k]->log();
    EXPECT_LT(took[k], 1000) << "reconnect backoff kept the edge fenced";
  }
  waitAllReady();
}

TEST_F(ClusterTest, StoppedEdgeIsFencedAndThePurgeCompletesWithinTheLease) {
  origin_.set("/s", object("s1", "s"));
  for (auto& e : edges_) prime(*e, "/s");
  edges_[1]->process().signal(SIGSTOP);
  const auto t0 = Clock::now();
  auto r = purge(R"({"tags":["s"],"wait":"all","timeout_ms":10000})");
  const auto took = msSince(t0);
  EXPECT_EQ(r["state"], "complete") << json::serialize(r);
  EXPECT_LT(took, 2500) << "lease is 1s";
  for (const auto& e : r["edges"].as_array()) {
    const auto& o = e.as_object();
    EXPECT_EQ(o.at("state"), o.at("edge_id") == "e2" ? "fenced" : "applied") << json::serialize(r);
  }
  edges_[1]->process().signal(SIGCONT);
  // Fenced: its first answer for /s is not from cache, whatever it has caught up.
  const int before = origin_.count("/s");
  auto got = httpGet(edges_[1]->port(), "/s");
  EXPECT_EQ(got.body, "s1");
  EXPECT_FALSE(isHit(got)) << got.header("cache-status");
  EXPECT_EQ(origin_.count("/s"), before + 1);
}

TEST_F(ClusterTest, ResponseFetchedBeforeAPurgeIsNotServedAfterIt) {
  OriginResponse slow = object("old", "slow");
  slow.delay_ms = 700;
  origin_.set("/slow", slow);
  auto fetch = std::async(std::launch::async, [&] { return httpGet(edges_[0]->port(), "/slow"); });
  // The purge goes out while the response is on its way.
  ASSERT_TRUE(eventually([&] { return origin_.count("/slow") == 1; }));
  origin_.set("/slow", object("new", "slow"));
  auto r = purge(R"({"tags":["slow"],"wait":"all"})");
  EXPECT_EQ(r["state"], "complete");
  // A request after the purge does not join the fetch that began before it.
  auto joiner = httpGet(edges_[0]->port(), "/slow");
  EXPECT_EQ(joiner.body, "new") << joiner.header("cache-status");
  auto first = fetch.get();
  EXPECT_EQ(first.body, "old");  // it was already on its way
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto after = httpGet(edges_[0]->port(), "/slow");
  EXPECT_EQ(after.body, "new") << after.header("cache-status");
  EXPECT_FALSE(isHit(after));
}

TEST_F(ClusterTest, FencedEdgeNeverSharesAnOriginFetch) {
  // Fenced, a purge may complete without this edge: a fetch that is already
  // in flight may carry what it removed, so every request fetches alone.
  OriginResponse slow = object("f", "f");
  slow.delay_ms = 400;
  origin_.set("/fenced", slow);
  coordinator_->process().signal(SIGSTOP);
  ASSERT_TRUE(
      eventually([&] { return edges_[0]->log().find("lease lapsed") != std::string::npos; }, 10000))
      << edges_[0]->log();
  auto a = std::async(std::launch::async, [&] { return httpGet(edges_[0]->port(), "/fenced"); });
  ASSERT_TRUE(eventually([&] { return origin_.count("/fenced") == 1; }));
  auto b = std::async(std::launch::async, [&] { return httpGet(edges_[0]->port(), "/fenced"); });
  EXPECT_EQ(a.get().body, "f");
  auto rb = b.get();
  EXPECT_EQ(rb.body, "f");
  EXPECT_EQ(rb.header("cache-status").find("collapsed"), std::string::npos)
      << rb.header("cache-status");
  EXPECT_EQ(origin_.count("/fenced"), 2);
  coordinator_->process().signal(SIGCONT);
  // Connected again: concurrent misses share one fetch.
  for (int i = 0; i < 300; ++i) {
    if (httpGet(edges_[0]->adminPort(), "/metrics").body.find("\ntern_edge_fenced 0") !=
        std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  OriginResponse slower = slow;
  slower.delay_ms = 1500;  // the second request surely arrives while the first is in flight
  origin_.set("/unfenced", slower);
  const int before = origin_.count("/unfenced");
  auto c = std::async(std::launch::async, [&] { return httpGet(edges_[0]->port(), "/unfenced"); });
  ASSERT_TRUE(eventually([&] { return origin_.count("/unfenced") == before + 1; }));
  auto d = httpGet(edges_[0]->port(), "/unfenced");
  EXPECT_EQ(c.get().body, "f");
  EXPECT_NE(d.header("cache-status").find("collapsed"), std::string::npos)
      << d.header("cache-status");
  EXPECT_EQ(origin_.count("/unfenced"), 1);
}

TEST_F(ClusterTest, PurgeMethodAtAnEdgeIsGlobal) {
  origin_.set("/pm", object("pm", "pm-tag"));
  origin_.set("/pt", object("pt", "pt-tag"));
  for (auto& e : edges_) {
    prime(*e, "/pm");
    prime(*e, "/pt");
  }
  auto denied = httpRequest(edges_[0]->port(), "PURGE", "/pm");
  EXPECT_EQ(denied.status, 401);
  auto wrong = httpRequest(edges_[0]->port(), "PURGE", "/pm", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(origin_.count("/pm"), 3) << "PURGE is never forwarded to the origin";
  // The caller's own token, checked by the coordinator (scoped tokens:
  // security_test.cc).
  const HeaderList auth = {{"Authorization", std::string("Bearer ") + kToken},
                           {"Tern-Purge-Wait", "all"}};
  auto ok = httpRequest(edges_[0]->port(), "PURGE", "/pm", auth);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"complete\""), std::string::npos) << ok.body;
  for (auto& e : edges_) EXPECT_FALSE(isHit(httpGet(e->port(), "/pm")));
  // By surrogate key, soft.
  HeaderList by_tag = auth;
  by_tag.push_back({"Surrogate-Key", "pt-tag"});
  by_tag.push_back({"Tern-Purge-Mode", "soft"});
  auto tagged = httpRequest(edges_[1]->port(), "PURGE", "/", by_tag);
  EXPECT_EQ(tagged.status, 200) << tagged.body;
  for (auto& e : edges_) EXPECT_FALSE(isHit(httpGet(e->port(), "/pt")));
}

TEST_F(ClusterTest, CacheGroupInvalidationIsGlobal) {
  OriginResponse g = object("g", "unused");
  g.headers.push_back({"Cache-Groups", "\"news\""});
  origin_.set("/news/1", g);
  for (auto& e : edges_) prime(*e, "/news/1");
  OriginResponse done;
  done.body = "saved";
  done.headers = {{"Cache-Group-Invalidation", "\"news\""}};
  origin_.set("/news/edit", done);
  EXPECT_EQ(httpRequest(edges_[0]->port(), "POST", "/news/edit", {}, "x").status, 200);
  // Every edge, not only the one that saw the POST, revalidates.
  for (auto& e : edges_) {
    HttpResponse r;
    for (int i = 0; i < 100; ++i) {
      r = httpGet(e->port(), "/news/1");
      if (!isHit(r)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_NE(r.header("cache-status").find("fwd=stale"), std::string::npos)
        << r.header("cache-status");
  }
}

TEST_F(ClusterTest, GrpcApiPurgesAndWatchesCompletions) {
  auto channel =
      grpc::CreateChannel(coordinator_->grpcAddress(), grpc::InsecureChannelCredentials());
  auto stub = tern::v1::PurgeService::NewStub(channel);
  grpc::ClientContext watch_ctx;
  watch_ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
  // From the first purge on: whenever the watch is registered, it sees ours.
  tern::v1::WatchPurgesRequest wreq;
  wreq.set_from_seq(1);
  auto watch = stub->WatchPurges(&watch_ctx, wreq);

  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
  tern::v1::PurgeRequest req;
  req.add_selectors()->set_prefix("test.example/grpc/");
  req.set_mode(tern::v1::PURGE_MODE_SOFT);
  req.set_wait(tern::v1::WAIT_MODE_ALL);
  tern::v1::PurgeResult res;
  ASSERT_TRUE(stub->Purge(&ctx, req, &res).ok());
  EXPECT_EQ(res.state(), tern::v1::PURGE_STATE_COMPLETE);
  EXPECT_EQ(res.edges_size(), 3);
  EXPECT_EQ(res.selectors(0).prefix(), "test.example/grpc/");

  tern::v1::PurgeResult seen;
  do {
    ASSERT_TRUE(watch->Read(&seen)) << "the watcher gets the completed purge";
  } while (seen.seq() < res.seq());
  EXPECT_EQ(seen.seq(), res.seq());
  EXPECT_EQ(seen.state(), tern::v1::PURGE_STATE_COMPLETE);
  watch_ctx.TryCancel();
  (void)watch->Finish();

  grpc::ClientContext bad;
  bad.AddMetadata("authorization", "Bearer wrong");
  tern::v1::ListEdgesResponse edges;
  EXPECT_EQ(stub->ListEdges(&bad, tern::v1::ListEdgesRequest(), &edges).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext rate;
  rate.AddMetadata("authorization", std::string("Bearer ") + kToken);
  tern::v1::PurgeRequest empty;
  EXPECT_EQ(stub->Purge(&rate, empty, &res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ClusterTest, TokensAreRequired) {
  EXPECT_EQ(api("POST", "/v1/purge", R"({"tags":["x"]})", false).status, 401);
  EXPECT_EQ(api("GET", "/v1/edges", "", false).status, 401);
  auto intruder = startEdge("intruder", "wrong-token");
  ASSERT_TRUE(intruder->ok());
  // Refused (UNAUTHENTICATED is gRPC code 16).
  ASSERT_TRUE(eventually([&] {
    const std::string log = intruder->log();
    return log.find("code=16") != std::string::npos ||
           log.find("nauthenticated") != std::string::npos;
  })) << intruder->log();
  EXPECT_EQ(httpGet(intruder->adminPort(), "/readyz").status, 503)
      << "an edge the coordinator refuses never reports ready";
  auto edges = json::parse(api("GET", "/v1/edges").body).as_object();
  EXPECT_EQ(edges["edges"].as_array().size(), 3u);
}

TEST_F(ClusterTest, BadPurgeRequestsGetClearErrors) {
  auto bad_json = api("POST", "/v1/purge", "{not json");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_NE(bad_json.body.find("not valid JSON"), std::string::npos) << bad_json.body;
  auto bad_sel = api("POST", "/v1/purge", R"({"selectors":[{"regex":".*"}]})");
  EXPECT_EQ(bad_sel.status, 400);
  EXPECT_NE(bad_sel.body.find("unknown selector"), std::string::npos);
  auto bad_tag = api("POST", "/v1/purge", R"({"tags":["has space"]})");
  EXPECT_EQ(bad_tag.status, 400);
  EXPECT_NE(bad_tag.body.find("selectors[0]"), std::string::npos) << bad_tag.body;
  EXPECT_EQ(api("GET", "/v1/purges/999").status, 404);
  EXPECT_EQ(api("GET", "/v1/purges/abc").status, 400);
  EXPECT_EQ(api("GET", "/v1/purge").status, 405);
  EXPECT_EQ(api("GET", "/v1/nothing").status, 404);
  // 1,000 selectors in one call are fine.
  std::string many = R"({"tags":[)";
  for (int i = 0; i < 1000; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\"";
  many += "]}";
  auto big = api("POST", "/v1/purge", many);
  EXPECT_EQ(big.status, 202) << big.body.substr(0, 200);  // accepted (wait=none)
  // Nothing was lost: the coordinator still answers.
  EXPECT_EQ(httpGet(coordinator_->httpPort(), "/healthz").status, 200);
}

// The edge link parses what an edge sends itself: bytes that are not an
// EdgeMessage end that stream with InvalidArgument, and nothing else.
TEST_F(ClusterTest, EdgeLinkRefusesAMessageThatDoesNotParse) {
  class RawStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    RawStream(grpc::GenericStub* stub, const std::string& bytes) {
      ctx_.AddMetadata("authorization", std::string("Bearer ") + kToken);
      ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      grpc::Slice slice(bytes);
      out_ = grpc::ByteBuffer(&slice, 1);
      stub->PrepareBidiStreamingCall(&ctx_, "/tern.v1.EdgeLink/Connect", grpc::StubOptions(), this);
      StartWrite(&out_);
      StartRead(&in_);
      StartCall();
    }
    void OnReadDone(bool ok) override {
      if (ok) StartRead(&in_);
    }
    void OnDone(const grpc::Status& s) override { done_.set_value(s); }
    grpc::Status wait() { return done_.get_future().get(); }

   private:
    grpc::ClientContext ctx_;
    grpc::ByteBuffer out_, in_;
    std::promise<grpc::Status> done_;
  };
  auto channel =
      grpc::CreateChannel(coordinator_->grpcAddress(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  // Field 1 (hello), length-delimited, with a length far past the end.
  RawStream bad(&stub, std::string("\x0a\xff\xff\xff\x0f", 5));
  grpc::Status st = bad.wait();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("does not parse"), std::string::npos) << st.error_message();
  // The coordinator and the edges' streams go on.
  EXPECT_EQ(httpGet(coordinator_->httpPort(), "/healthz").status, 200);
  auto r = purge(R"({"tags":["after-bad-stream"],"wait":"all","timeout_ms":5000})");
  EXPECT_EQ(r["state"], "complete") << json::serialize(r);
}

TEST(ClusterRateLimitTest, AnswersTooManyRequestsWithRetryAfter) {
  TempDir dir;
  CoordinatorProcess c(dir.sub("c"), {"--rate.purges_per_sec", "1", "--rate.burst", "2"});
  ASSERT_TRUE(c.ok()) << c.log();
  auto post = [&] {
    return httpRequest(c.httpPort(), "POST", "/v1/purge", {{"Content-Type", "application/json"}},
                       R"({"tags":["x"]})");
  };
  EXPECT_EQ(post().status, 200);
  EXPECT_EQ(post().status, 200);
  auto limited = post();
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.header("retry-after"), "1");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(post().status, 200);
}

// Connections over http.max_connections are closed as they arrive; the
// coordinator stays up and serves again once connections are released.
TEST(ClusterConnectionCapTest, ExtraConnectionsAreClosedAndTheServerStaysUp) {
  TempDir dir;
  CoordinatorProcess c(dir.sub("c"), {"--http.max_connections", "3"});
  ASSERT_TRUE(c.ok()) << c.log();
  auto openConn = [&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(c.httpPort()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  };
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) held.push_back(openConn());
  // Held connections are counted once accepted: the next one is closed.
  bool refused = false;
  for (int i = 0; i < 50 && !refused; ++i) {
    int fd = openConn();
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[256];
    refused = ::recv(fd, buf, sizeof buf, 0) <= 0;
    ::close(fd);
  }
  EXPECT_TRUE(refused) << "a fourth connection was served";
  EXPECT_NE(c.log().find("max_connections reached"), std::string::npos);
  for (int fd : held) ::close(fd);
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = httpGet(c.httpPort(), "/healthz").status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
  EXPECT_TRUE(c.process().running());
}

TEST_F(ClusterTest, StatusPageShowsEdgesLagAndPurgesInHeadlessChromium) {
  auto r = purge(R"({"tags":["page"],"wait":"all"})");
  ASSERT_EQ(r["state"], "complete");
  edges_[2]->process().signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));  // lease 1s: e3 fenced
  purge(R"({"tags":["while-e3-stopped"]})");
  const std::string dom_path = dir_.sub("dom.html");
  {
    std::string browser;
    for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
      if (std::filesystem::exists(candidate)) browser = candidate;
    ASSERT_FALSE(browser.empty()) << "chromium is missing: tools/deps installs it";
    Process chromium(
        {browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--user-data-dir=" + dir_.sub("chromium"), "--virtual-time-budget=1000", "--dump-dom",
         "http://127.0.0.1:" + std::to_string(coordinator_->httpPort()) + "/"},
        dom_path);
    ASSERT_GE(chromium.wait(60000), 0) << "chromium did not finish";
  }
  edges_[2]->process().signal(SIGCONT);
  const std::string dom = readText(dom_path);
  // Computed by the page's script, so only a browser shows it.
  EXPECT_NE(dom.find("2 of 3 edges connected, max lag 1"), std::string::npos) << dom;
  EXPECT_NE(dom.find("<tr data-edge=\"e3\"><td>e3</td>"), std::string::npos);
  EXPECT_NE(dom.find("class=\"fenced\">fenced</td>"), std::string::npos) << dom;
  EXPECT_NE(dom.find("<tr data-seq=\"1\">"), std::string::npos);
  EXPECT_NE(dom.find("tag page"), std::string::npos);
  EXPECT_NE(dom.find("tag while-e3-stopped"), std::string::npos);
  EXPECT_NE(dom.find(" ms</td>"), std::string::npos) << "latency of completed purges";
  // The pictures: propagation latency over time (a point per completed
  // purge) and a lag bar per edge, the stopped one red with lag 1.
  EXPECT_NE(dom.find("<svg id=\"latency-chart\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("<polyline class=\"latency\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("<circle class=\"point\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("<svg id=\"lag-chart\""), std::string::npos) << dom;
  size_t bars = 0;
  for (size_t at = dom.find("class=\"lag-bar"); at != std::string::npos;
       at = dom.find("class=\"lag-bar", at + 1))
    ++bars;
  EXPECT_EQ(bars, 3u) << dom;
  EXPECT_NE(dom.find("class=\"lag-bar fenced\" data-edge=\"e3\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("<title>e3: lag 1, fenced</title>"), std::string::npos) << dom;
}

// The status page drawn by a browser: the charts take room on the screenshot
// (a page without them is shorter than the window), and the page needs
// nothing from outside (no script or style loaded from elsewhere).
TEST_F(ClusterTest, StatusPageScreenshotShowsTheCharts) {
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(purge(R"({"tags":["shot"],"wait":"all"})")["state"], "complete");
  std::string browser;
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (std::filesystem::exists(candidate)) browser = candidate;
  ASSERT_FALSE(browser.empty()) << "chromium is missing: tools/deps installs it";
  const std::string png = dir_.sub("status.png");
  Process chromium(
      {browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
       "--user-data-dir=" + dir_.sub("chromium2"), "--window-size=800,1000", "--screenshot=" + png,
       "http://127.0.0.1:" + std::to_string(coordinator_->httpPort()) + "/"},
      dir_.sub("chromium2.log"));
  ASSERT_GE(chromium.wait(60000), 0) << "chromium did not finish";
  const std::string image = readText(png);
  ASSERT_GT(image.size(), 24u) << readText(dir_.sub("chromium2.log"));
  EXPECT_EQ(image.substr(1, 3), "PNG");
  // The PNG's width and height (IHDR, big-endian), as asked.
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(image[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(image[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(image[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(image[at + 3]));
  };
  EXPECT_EQ(be32(16), 800u);
  EXPECT_EQ(be32(20), 1000u);
  // The latency chart's blue (#0969da; nothing else on the page has it) is
  // on the screen: the line and its points were drawn.
  const std::string counts = dir_.sub("colors.txt");
  ASSERT_EQ(std::system(("python3 " + std::string(TERN_SOURCE_DIR) +
                         "/tests/support/png_colors.py " + png + " 0969da > " + counts)
                            .c_str()),
            0);
  const std::string text = readText(counts);
  ASSERT_EQ(text.rfind("0969da ", 0), 0u) << text;
  EXPECT_GT(std::stoi(text.substr(7)), 200) << text;
  const std::string page = httpGet(coordinator_->httpPort(), "/").body;
  EXPECT_EQ(page.find("src=\"http"), std::string::npos);
  EXPECT_EQ(page.find("href=\"http"), std::string::npos);
  size_t points = 0;
  for (size_t at = page.find("<circle class=\"point\""); at != std::string::npos;
       at = page.find("<circle class=\"point\"", at + 1))
    ++points;
  EXPECT_EQ(points, 5u) << "one point per completed purge";
}

TEST_F(ClusterTest, TernctlPurgesAndListsWithReliableExitCodes) {
  const std::string out = dir_.sub("ctl.out");
  const std::vector<std::string> base = {"--coordinator", coordinator_->grpcAddress(), "--token",
                                         kToken};
  auto with = [&](std::vector<std::string> extra) {
    auto a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  EXPECT_EQ(
      runCtl(out, with({"--json", "purge", "--tag", "x", "--url", "test.example/y", "--wait"})), 0);
  auto j = json::parse(readText(out)).as_object();
  EXPECT_EQ(j["state"], "complete");
  EXPECT_EQ(j["selectors"].as_array().size(), 2u);
  EXPECT_EQ(runCtl(out, with({"edges"})), 0);
  std::string edges = readText(out);
  for (auto id : {"e1", "e2", "e3"}) EXPECT_NE(edges.find(id), std::string::npos) << edges;
  EXPECT_EQ(runCtl(out, with({"purges"})), 0);
  EXPECT_NE(readText(out).find("url test.example/y (+1)"), std::string::npos) << readText(out);
  EXPECT_EQ(runCtl(out, with({"purges", "1"})), 0);
  EXPECT_EQ(runCtl(out, with({"purges", "99"})), 8);
  EXPECT_EQ(runCtl(out, with({"purge"})), 2) << "no selector";
  EXPECT_EQ(runCtl(out, with({"purge", "--tag", "bad tag"})), 6);
  EXPECT_EQ(
      runCtl(out, {"--coordinator", coordinator_->grpcAddress(), "--token", "wrong", "edges"}), 4);
  EXPECT_EQ(runCtl(out, {"--coordinator", "127.0.0.1:1", "--deadline", "2s", "edges"}), 5);
  // Timeout with a stopped edge and a short wait: exit 3.
  edges_[0]->process().signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return processState(edges_[0]->process().pid()) == 'T'; }));
  EXPECT_EQ(runCtl(out, with({"purge", "--tag", "z", "--wait", "--timeout", "100ms"})), 3);
  edges_[0]->process().signal(SIGCONT);
}

// ternctl follows purges as they complete and edges as they change, and
// completes its own command line in bash.
TEST_F(ClusterTest, TernctlWatchesPurgesAndEdgesAndCompletesInBash) {
  const std::string ctl = buildBinary("coordinator/ternctl");
  const std::string watch_out = dir_.sub("watch.out"), edges_out = dir_.sub("edges.out");
  Process watch({ctl, "--coordinator", coordinator_->grpcAddress(), "--token", kToken, "--json",
                 "watch", "--from", "1"},
                watch_out);
  Process edges({ctl, "--coordinator", coordinator_->grpcAddress(), "--token", kToken, "edges",
                 "--watch", "--interval", "200ms"},
                edges_out);
  auto first = purge(R"({"tags":["watched-1"],"wait":"all"})");
  auto second = purge(R"({"tags":["watched-2"],"wait":"all"})");
  ASSERT_EQ(first["state"], "complete");
  ASSERT_EQ(second["state"], "complete");
  // Both completions arrive, in order, one JSON object per line.
  ASSERT_TRUE(eventually([&] {
    return readText(watch_out).find("watched-2") != std::string::npos;
  })) << readText(watch_out);
  std::vector<json::object> seen;
  std::istringstream lines(readText(watch_out));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) seen.push_back(json::parse(line).as_object());
  ASSERT_EQ(seen.size(), 2u) << readText(watch_out);
  EXPECT_EQ(seen[0]["id"], first["id"]);
  EXPECT_EQ(seen[1]["id"], second["id"]);
  EXPECT_EQ(seen[1]["state"], "complete");
  EXPECT_TRUE(watch.running()) << "a watch runs until interrupted";
  // Snapshots keep coming, each with every edge.
  ASSERT_TRUE(eventually([&] {
    const std::string out = readText(edges_out);
    size_t n = 0;
    for (size_t at = out.find("log head"); at != std::string::npos;
         at = out.find("log head", at + 1))
      ++n;
    return n >= 3;
  })) << readText(edges_out);
  for (auto id : {"e1", "e2", "e3"})
    EXPECT_NE(readText(edges_out).find(id), std::string::npos) << readText(edges_out);
  watch.signal(SIGINT);
  edges.signal(SIGINT);
  EXPECT_GE(watch.wait(5000), 0);
  EXPECT_GE(edges.wait(5000), 0);
  // A wrong token ends an edges watch at once (exit 4), it does not poll on.
  EXPECT_EQ(runCtl(edges_out, {"--coordinator", coordinator_->grpcAddress(), "--token", "wrong",
                               "edges", "--watch"}),
            4);

  const std::string script = dir_.sub("complete.sh");
  std::ofstream(script)
      << "source <(" << ctl << " completion bash)\n"
      << "COMP_WORDS=(ternctl ed); COMP_CWORD=1; _ternctl; echo \"${COMPREPLY[*]}\"\n"
      << "COMP_WORDS=(ternctl purge --so); COMP_CWORD=2; _ternctl; "
         "echo \"${COMPREPLY[*]}\"\n";
  const std::string out = dir_.sub("complete.out");
  ASSERT_EQ(std::system(("bash " + script + " > " + out + " 2>&1").c_str()), 0) << readText(out);
  EXPECT_EQ(readText(out), "edges\n--soft\n");
}

}  // namespace
}  // namespace tern::testing
