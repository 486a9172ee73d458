// Coordinator replicas end to end: three real etcd members, three real
// tern-coordinator replicas sharing the purge log in etcd, three real
// tern-edge processes each connected to a different replica first, a real
// origin. Purges through any replica reach every edge, sequence numbers are
// shared, a SIGKILLed replica's edges move to another one and catch up, and
// without an etcd quorum the purge API answers 503.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "tests/support/coordinator_process.h"
#include "tests/support/edge_process.h"
#include "tests/support/etcd_cluster.h"
#include "tests/support/http_client.h"
#include "tests/support/tcp_relay.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_origin.h"

namespace tern::testing {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kToken = "replica-test-token";
constexpr int kReplicas = 3;

int64_t msSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// A metric without labels from the edge's /metrics, -1 if absent.
int64_t edgeMetric(EdgeProcess& e, const std::string& name) {
  const std::string body = httpGet(e.adminPort(), "/metrics").body;
  auto at = body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
}

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!etcdAvailable()) GTEST_SKIP() << "etcd is not installed (apt-get install etcd-server)";
    etcd_ = std::make_unique<EtcdCluster>(dir_.sub("etcd"), 3);
    ASSERT_TRUE(etcd_->ok()) << etcd_->log(0);
    // Replica 0 reaches etcd through relays the test can cut.
    std::string relayed;
    for (const auto& ep : etcd_->endpoints()) {
      relays_.push_back(std::make_unique<TcpRelay>(ep));
      relayed += (relayed.empty() ? "" : ",") + relays_.back()->address();
    }
    for (int i = 0; i < kReplicas; ++i) {
      replicas_.push_back(std::make_unique<CoordinatorProcess>(
          dir_.sub("replica" + std::to_string(i)),
          std::vector<std::string>{"--etcd.endpoints", i == 0 ? relayed : etcd_->endpointList(),
                                   "--replica.id", "r" + std::to_string(i), "--lease", "1s",
                                   "--etcd.session_ttl", "2s", "--auth.token", kToken,
                                   "--etcd.timeout", "500ms", "--log.level", "debug"}));
      ASSERT_TRUE(replicas_.back()->ok()) << replicas_.back()->log();
    }
    for (int i = 0; i < kReplicas; ++i) edges_.push_back(startEdge(i));
    for (auto& e : edges_) ASSERT_TRUE(e->ok()) << e->log();
    waitAllReady();
  }

  // Edge i lists replica i first, then the others.
  std::unique_ptr<EdgeProcess> startEdge(int i) {
    std::string addresses;
    for (int k = 0; k < kReplicas; ++k) {
      if (!addresses.empty()) addresses += ",";
      addresses += replicas_[(i + k) % kReplicas]->grpcAddress();
    }
    return std::make_unique<EdgeProcess>(
        dir_.sub("e" + std::to_string(i)), origin_.url(),
        std::vector<std::string>{"--coordinator.address", addresses, "--coordinator.edge_id",
                                 "e" + std::to_string(i), "--coordinator.token", kToken,
                                 "--log.access", "false"});
  }

  static bool ready(EdgeProcess& e) { return httpGet(e.adminPort(), "/readyz").status == 200; }

  // The replica (index) holding `edge_id`'s stream as replica `via` lists
  // it, -1 if none within 2 s.
  int holderOf(const std::string& edge_id, int via) {
    for (int i = 0; i < 200; ++i) {
      boost::system::error_code ec;
      auto v = json::parse(api(via, "GET", "/v1/edges").body, ec);
      if (!ec && v.is_object())
        for (const auto& e : v.at("edges").as_array())
          if (e.at("edge_id") == json::value(edge_id) && e.at("state") == "connected") {
            const std::string id(e.at("replica_id").as_string());
            if (id.size() == 2 && id[0] == 'r') return id[1] - '0';
          }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  // Milliseconds from `since` until the edge opened a stream after
  // `connects` streams and was welcomed on it (10 s at most).
  static int64_t msUntilReconnected(EdgeProcess& e, int64_t connects, Clock::time_point since) {
    while (!(edgeMetric(e, "tern_edge_coordinator_connects_total") > connects &&
             edgeMetric(e, "tern_edge_coordinator_connected") == 1) &&
           msSince(since) < 10000)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return msSince(since);
  }

  void waitAllReady() {
    for (auto& e : edges_) {
      for (int i = 0; i < 1000 && !ready(*e); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ASSERT_TRUE(ready(*e)) << e->log();
    }
  }

  HttpResponse api(int replica, const std::string& method, const std::string& target,
                   const std::string& body = {}) {
    return httpRequest(
        replicas_[replica]->httpPort(), method, target,
        {{"Content-Type", "application/json"}, {"Authorization", std::string("Bearer ") + kToken}},
        body, 30000);
  }

  json::object purge(int replica, const std::string& body_json) {
    auto r = api(replica, "POST", "/v1/purge", body_json);
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

  static bool isHit(const HttpResponse& r) {
    return r.header("cache-status").find("; hit") != std::string::npos;
  }

  void prime(EdgeProcess& e, const std::string& path) {
    for (int i = 0; i < 200; ++i) {
      if (isHit(httpGet(e.port(), path))) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "never a hit: " << path << "\n" << e.log();
  }

  static uint64_t appliedSeq(EdgeProcess& e) {
    const std::string body = httpGet(e.adminPort(), "/metrics").body;
    const std::string name = "\ntern_edge_applied_purge_seq ";
    auto at = body.find(name);
    return at == std::string::npos ? 0 : std::stoull(body.substr(at + name.size()));
  }

  // Waits until the edge has applied purge `seq` (being fenced is not
  // enough), then checks that `path` is no longer a hit.
  static bool logged(json::object& r) {
    return r.contains("id") && (r["state"] == "accepted" || r["state"] == "complete");
  }

  bool purgedAt(EdgeProcess& e, uint64_t seq, const std::string& path, int timeout_ms = 10000) {
    const auto start = Clock::now();
    while (appliedSeq(e) < seq) {
      if (msSince(start) > timeout_ms) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return !isHit(httpGet(e.port(), path));
  }

  TempDir dir_;
  TestOrigin origin_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::vector<std::unique_ptr<TcpRelay>> relays_;
  std::vector<std::unique_ptr<CoordinatorProcess>> replicas_;
  std::vector<std::unique_ptr<EdgeProcess>> edges_;
};

TEST_F(ReplicaTest, PurgesThroughAnyReplicaReachEveryEdgeInOneSequence) {
  std::set<uint64_t> seqs;
  for (int via = 0; via < kReplicas; ++via) {
    const std::string path = "/r" + std::to_string(via);
    const std::string tag = "t" + std::to_string(via);
    origin_.set(path, object("v1-" + tag, tag));
    for (auto& e : edges_) prime(*e, path);
    origin_.set(path, object("v2-" + tag, tag));
    auto r = purge(via, R"({"tags":[")" + tag + R"("]})");
    ASSERT_TRUE(logged(r)) << json::serialize(r);
    const uint64_t seq = r["id"].to_number<uint64_t>();
    seqs.insert(seq);
    for (size_t k = 0; k < edges_.size(); ++k) {
      EXPECT_TRUE(purgedAt(*edges_[k], seq, path)) << "edge " << k << " via replica " << via;
      EXPECT_EQ(httpGet(edges_[k]->port(), path).body, "v2-" + tag);
    }
  }
  // One log: three distinct, consecutive sequence numbers.
  ASSERT_EQ(seqs.size(), 3u);
  EXPECT_EQ(*seqs.rbegin() - *seqs.begin(), 2u);
  // Every replica answers for every purge.
  for (int via = 0; via < kReplicas; ++via)
    for (uint64_t seq : seqs)
      EXPECT_EQ(api(via, "GET", "/v1/purges/" + std::to_string(seq)).status, 200);
  // And heard the others' edges acknowledge straight from them (ReplicaLink).
  for (int via = 0; via < kReplicas; ++via) {
    const std::string m = api(via, "GET", "/metrics").body;
    const std::string name = "\ntern_coordinator_replica_progress_received ";
    auto at = m.find(name);
    ASSERT_NE(at, std::string::npos) << m;
    EXPECT_GT(std::stod(m.substr(at + name.size())), 0) << "replica " << via;
  }
}

TEST_F(ReplicaTest, KilledReplicasEdgeMovesToAnotherAndCatchesUp) {
  origin_.set("/k", object("k1", "k"));
  for (auto& e : edges_) prime(*e, "/k");
  replicas_[0]->process().kill();
  const auto killed = Clock::now();
  // Purges keep being accepted by the others while edge 0 moves.
  auto r = purge(1, R"({"tags":["k"]})");
  ASSERT_TRUE(logged(r)) << json::serialize(r);
  const uint64_t seq = r["id"].to_number<uint64_t>();
  for (size_t k = 0; k < edges_.size(); ++k)
    EXPECT_TRUE(purgedAt(*edges_[k], seq, "/k")) << "edge " << k << "\n" << edges_[k]->log();
  std::printf("edge of the killed replica purged %lld ms after the kill\n",
              static_cast<long long>(msSince(killed)));
  // Edge 0 is connected again (to replica 1 or 2) and ready.
  for (int i = 0; i < 500 && !ready(*edges_[0]); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(ready(*edges_[0])) << edges_[0]->log();
}

// Kill after kill, the edge moves at once to a replica that is up: it does
// not first wait on the one that died, and a stream that was welcomed does
// not count as a refusal (no growing back-off).
TEST_F(ReplicaTest, EveryKillOfItsReplicaMovesTheEdgeWithinASecond) {
  const auto metric = edgeMetric;
  EdgeProcess& edge = *edges_[0];
  for (int round = 0; round < 5; ++round) {
    // The replica holding e0, as the cluster sees it.
    // The replica holding e0, as the cluster sees it (asked of one that is up).
    const int holder = holderOf("e0", round % kReplicas);
    ASSERT_GE(holder, 0) << "round " << round;
    const int64_t connects = metric(edge, "tern_edge_coordinator_connects_total");
    replicas_[holder]->process().kill();
    const int64_t took = msUntilReconnected(edge, connects, Clock::now());
    std::printf("round %d: replica r%d killed, e0 connected to another %lld ms later\n", round,
                holder, static_cast<long long>(took));
    EXPECT_LT(took, 1000) << "round " << round << "\n" << edge.log();
    EXPECT_EQ(metric(edge, "tern_edge_fenced"), 0) << "round " << round;
    replicas_[holder]->restart(/*kill=*/true, 0);
    ASSERT_TRUE(replicas_[holder]->ok()) << replicas_[holder]->log();
  }
}

// One target with several addresses (what a headless Service's DNS name
// gives; here the gRPC form "ipv4:a,b,c"): one channel, round robin over
// the replicas, and a dead one is passed over.
TEST_F(ReplicaTest, OneNameWithSeveralAddressesFailsOverToo) {
  std::string target = "ipv4:";
  for (int i = 0; i < kReplicas; ++i) target += (i ? "," : "") + replicas_[i]->grpcAddress();
  EdgeProcess edge(dir_.sub("e-one-name"), origin_.url(),
                   {"--coordinator.address", target, "--coordinator.edge_id", "one-name",
                    "--coordinator.token", kToken, "--log.access", "false"});
  ASSERT_TRUE(edge.ok()) << edge.log();
  for (int i = 0; i < 1000 && !ready(edge); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(ready(edge)) << edge.log();
  const int holder = holderOf("one-name", 0);
  ASSERT_GE(holder, 0);
  const int64_t connects = edgeMetric(edge, "tern_edge_coordinator_connects_total");
  replicas_[holder]->process().kill();
  const int64_t took = msUntilReconnected(edge, connects, Clock::now());
  std::printf("one-name edge connected to another replica %lld ms after the kill\n",
              static_cast<long long>(took));
  EXPECT_LT(took, 2000) << edge.log();
  const int via = (holder + 1) % kReplicas;
  origin_.set("/n", object("n1", "n"));
  prime(edge, "/n");
  auto r = purge(via, R"({"tags":["n"]})");
  ASSERT_TRUE(logged(r)) << json::serialize(r);
  EXPECT_TRUE(purgedAt(edge, r["id"].to_number<uint64_t>(), "/n")) << edge.log();
}

// A replica SIGKILLed and started again at once under the same id (its old
// session's summary still in etcd): it takes edges again, and wait=all
// through another replica waits for and completes with them.
TEST_F(ReplicaTest, AReplicaRestartedUnderTheSameIdTakesEdgesAgain) {
  replicas_[0]->restart(/*kill=*/true, 0);
  ASSERT_TRUE(replicas_[0]->ok()) << replicas_[0]->log();
  EdgeProcess edge(dir_.sub("e-same-id"), origin_.url(),
                   {"--coordinator.address", replicas_[0]->grpcAddress(), "--coordinator.edge_id",
                    "only-r0", "--coordinator.token", kToken, "--log.access", "false"});
  ASSERT_TRUE(edge.ok()) << edge.log();
  for (int i = 0; i < 1000 && !ready(edge); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(ready(edge)) << edge.log();
  origin_.set("/s", object("s1", "s"));
  prime(edge, "/s");
  origin_.set("/s", object("s2", "s"));
  auto r = purge(2, R"({"tags":["s"],"wait":"all"})");
  ASSERT_TRUE(r.contains("state")) << json::serialize(r);
  EXPECT_EQ(r["state"], "complete") << json::serialize(r);
  bool applied = false;
  for (const auto& e : r["edges"].as_array())
    if (e.at("edge_id") == "only-r0") applied = e.at("state") == "applied";
  EXPECT_TRUE(applied) << json::serialize(r);
  EXPECT_EQ(httpGet(edge.port(), "/s").body, "s2");
  auto edges = json::parse(api(2, "GET", "/v1/edges").body).as_object();
  for (const auto& e : edges["edges"].as_array())
    if (e.at("edge_id") == "only-r0") {
      EXPECT_EQ(e.at("replica_id"), "r0");
    }
}

// SIGTERM (a rolling update): the replica refuses new streams and purges
// and closes its edges' streams first, so they move at once instead of when
// the gRPC server gives up on them.
TEST_F(ReplicaTest, AStoppingReplicaHandsItsEdgesOverAtOnce) {
  EdgeProcess& edge = *edges_[0];  // on r0, listed first
  const int64_t connects = edgeMetric(edge, "tern_edge_coordinator_connects_total");
  replicas_[0]->process().signal(SIGTERM);
  const int64_t took = msUntilReconnected(edge, connects, Clock::now());
  std::printf("e0 connected to another replica %lld ms after SIGTERM\n",
              static_cast<long long>(took));
  EXPECT_LT(took, 1000) << edge.log();
  EXPECT_EQ(edgeMetric(edge, "tern_edge_fenced"), 0);
  EXPECT_GE(replicas_[0]->process().wait(10000), 0) << "replica did not exit";
  // The edge was told why its stream ended.
  EXPECT_NE(edge.log().find("coordinator stopping"), std::string::npos) << edge.log();
  // And it is served purges by its new replica.
  origin_.set("/g", object("g1", "g"));
  prime(edge, "/g");
  origin_.set("/g", object("g2", "g"));
  auto r = purge(2, R"({"tags":["g"]})");
  ASSERT_TRUE(logged(r)) << json::serialize(r);
  EXPECT_TRUE(purgedAt(edge, r["id"].to_number<uint64_t>(), "/g")) << edge.log();
}

// wait=all through one replica waits for the edges held by the others.
TEST_F(ReplicaTest, WaitAllCompletesOnceEveryEdgeOnEveryReplicaApplied) {
  origin_.set("/w", object("w1", "w"));
  for (auto& e : edges_) prime(*e, "/w");
  auto r = purge(0, R"({"tags":["w"],"wait":"all","timeout_ms":10000})");
  ASSERT_EQ(r["state"], "complete") << json::serialize(r);
  const uint64_t seq = r["id"].to_number<uint64_t>();
  std::set<std::string> applied;
  for (const auto& e : r["edges"].as_array())
    if (e.at("state") == "applied") applied.insert(std::string(e.at("edge_id").as_string()));
  EXPECT_EQ(applied, (std::set<std::string>{"e0", "e1", "e2"})) << json::serialize(r);
  // ... and when it answers, each edge has really applied it.
  for (auto& e : edges_) EXPECT_GE(appliedSeq(*e), seq);
  // Every replica lists every edge, and which replica holds it.
  for (int via = 0; via < kReplicas; ++via) {
    auto list = api(via, "GET", "/v1/edges");
    ASSERT_EQ(list.status, 200) << list.body;
    const json::value v = json::parse(list.body);
    std::map<std::string, std::string> held;
    for (const auto& e : v.at("edges").as_array())
      held[std::string(e.at("edge_id").as_string())] = std::string(e.at("replica_id").as_string());
    EXPECT_EQ(held, (std::map<std::string, std::string>{{"e0", "r0"}, {"e1", "r1"}, {"e2", "r2"}}))
        << "via " << via << ": " << list.body;
    EXPECT_EQ(v.at("replicas").as_array().size(), 3u) << list.body;
  }
  // The status page and ternctl say the same.
  auto page = httpGet(replicas_[1]->httpPort(), "/");
  for (auto id : {"r0", "r1", "r2"})
    EXPECT_NE(page.body.find(std::string("data-replica=\"") + id + "\""), std::string::npos)
        << page.body;
  const std::string out = dir_.sub("ctl.out");
  Process ctl({buildBinary("coordinator/ternctl"), "--coordinator", replicas_[2]->grpcAddress(),
               "--token", kToken, "edges"},
              out);
  const int st = ctl.wait(60000);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << readText(out);
  const std::string table = readText(out);
  EXPECT_NE(table.find("REPLICA"), std::string::npos) << table;
  for (auto row : {"e0", "e1", "e2"}) EXPECT_NE(table.find(row), std::string::npos) << table;
  EXPECT_NE(table.find("(answering)"), std::string::npos) << table;
}

// A stopped edge held by another replica: the purge completes once its lease
// is over (fenced), not before.
TEST_F(ReplicaTest, WaitAllThroughOneReplicaFencesAStoppedEdgeOfAnother) {
  origin_.set("/f", object("f1", "f"));
  for (auto& e : edges_) prime(*e, "/f");
  edges_[2]->process().signal(SIGSTOP);
  const auto t0 = Clock::now();
  auto r = purge(0, R"({"tags":["f"],"wait":"all","timeout_ms":10000})");
  const int64_t took = msSince(t0);
  edges_[2]->process().signal(SIGCONT);
  ASSERT_EQ(r["state"], "complete") << json::serialize(r);
  std::map<std::string, std::string> states;
  for (const auto& e : r["edges"].as_array())
    states[std::string(e.at("edge_id").as_string())] = std::string(e.at("state").as_string());
  EXPECT_EQ(states["e0"], "applied");
  EXPECT_EQ(states["e1"], "applied");
  EXPECT_EQ(states["e2"], "fenced") << json::serialize(r);
  std::printf("wait=all with a stopped edge on another replica: %lld ms (lease 1 s)\n",
              static_cast<long long>(took));
  EXPECT_GE(took, 500) << "completed before the stopped edge's lease could end";
  EXPECT_LT(took, 5000);
}

// A replica cut off from etcd (the others are not) stops extending its
// edges' leases: they are fenced within its session TTL and move to another
// replica; a wait=all purge through another replica meanwhile completes no
// earlier than that, and never while the cut-off replica's edge may still
// serve what it purges.
TEST_F(ReplicaTest, ReplicaCutOffFromEtcdFencesItsEdgesWithinTheSessionAndTheyMove) {
  origin_.set("/p", object("p1", "p"));
  for (auto& e : edges_) prime(*e, "/p");
  for (auto& r : relays_) r->cut();
  const auto cut = Clock::now();
  auto r = purge(1, R"({"tags":["p"],"wait":"all","timeout_ms":15000})");
  const int64_t took = msSince(cut);
  ASSERT_EQ(r["state"], "complete") << json::serialize(r);
  const uint64_t seq = r["id"].to_number<uint64_t>();
  std::map<std::string, std::string> states;
  for (const auto& e : r["edges"].as_array())
    states[std::string(e.at("edge_id").as_string())] = std::string(e.at("state").as_string());
  EXPECT_TRUE(states["e0"] == "applied" || states["e0"] == "fenced") << json::serialize(r);
  // Complete: edge 0 no longer serves the purged object from its cache.
  EXPECT_FALSE(isHit(httpGet(edges_[0]->port(), "/p")));
  std::printf("wait=all with edge 0's replica cut off from etcd: %lld ms (session TTL 2 s)\n",
              static_cast<long long>(took));
  EXPECT_LT(took, 2000 + 1000 + 1500) << "session TTL + lease + margin";
  // Edge 0 is on another replica, caught up and serving again.
  const auto moved = Clock::now();
  for (int i = 0; i < 1000 && !(ready(*edges_[0]) && appliedSeq(*edges_[0]) >= seq); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(ready(*edges_[0])) << edges_[0]->log();
  EXPECT_GE(appliedSeq(*edges_[0]), seq);
  std::printf("edge 0 ready on another replica %lld ms after the purge completed\n",
              static_cast<long long>(msSince(moved)));
  auto list = api(1, "GET", "/v1/edges");
  ASSERT_EQ(list.status, 200);
  std::string holder;
  const json::value listed = json::parse(list.body);
  for (const auto& e : listed.at("edges").as_array())
    if (e.at("edge_id") == "e0") holder = std::string(e.at("replica_id").as_string());
  EXPECT_TRUE(holder == "r1" || holder == "r2") << list.body;
  // etcd back: replica 0 takes a new session and sees every edge again.
  for (auto& relay : relays_) relay->restore();
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto l = api(0, "GET", "/v1/edges");
    back = l.status == 200 && l.body.find(R"("replica_id":"r1")") != std::string::npos &&
           l.body.find(R"("replica_id":"r0","address")") != std::string::npos;
  }
  EXPECT_TRUE(back) << replicas_[0]->log().substr(0, 4000);
  auto again = purge(0, R"({"tags":["p"],"wait":"all","timeout_ms":10000})");
  EXPECT_EQ(again["state"], "complete") << json::serialize(again);
}

TEST_F(ReplicaTest, OneEtcdMemberDownPurgesContinue) {
  // etcd's health as replica 1 probes it: every member, one leader.
  const std::string killed = etcd_->endpoints()[0];
  auto members = [&] {
    boost::system::error_code ec;
    auto v = json::parse(api(1, "GET", "/v1/edges").body, ec);
    std::map<std::string, json::object> out;
    if (!ec && v.is_object() && v.as_object().contains("etcd_members"))
      for (const auto& m : v.at("etcd_members").as_array())
        out[std::string(m.at("endpoint").as_string())] = m.as_object();
    return out;
  };
  auto before = members();
  ASSERT_EQ(before.size(), 3u);
  int leaders = 0;
  for (auto& [endpoint, m] : before) {
    EXPECT_TRUE(m["reachable"].as_bool()) << endpoint;
    leaders += m["leader"].as_bool() ? 1 : 0;
    EXPECT_FALSE(m["version"].as_string().empty());
  }
  EXPECT_EQ(leaders, 1);
  etcd_->kill(0);
  origin_.set("/m", object("m1", "m"));
  for (auto& e : edges_) prime(*e, "/m");
  uint64_t last = 0;
  for (int via = 0; via < kReplicas; ++via) {
    auto r = purge(via, R"({"tags":["m"]})");
    EXPECT_TRUE(logged(r)) << "via " << via << ": " << json::serialize(r);
    if (r.contains("id")) last = std::max(last, r["id"].to_number<uint64_t>());
  }
  ASSERT_GT(last, 0u);
  for (auto& e : edges_) EXPECT_TRUE(purgedAt(*e, last, "/m"));
  // The next probe (every 2 s) shows the member down, on the status page too.
  bool down = false;
  for (int i = 0; i < 100 && !down; ++i) {
    auto now = members();
    down = now.count(killed) && !now[killed]["reachable"].as_bool();
    if (!down) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(down) << api(1, "GET", "/v1/edges").body;
  const std::string page = api(1, "GET", "/").body;
  EXPECT_NE(page.find("id=\"etcd\""), std::string::npos) << page;
  EXPECT_NE(page.find("unreachable"), std::string::npos) << page;
  EXPECT_NE(api(1, "GET", "/metrics").body.find("tern_coordinator_etcd_members_reachable 2"),
            std::string::npos);
}

// Every metric the Grafana dashboard and the alerting rules query is one that
// a real replica (with etcd) or a real edge exports.
TEST_F(ReplicaTest, TheDashboardAndTheAlertsNameOnlyMetricsThatExist) {
  // A purge through every edge, so that the per-edge series exist.
  auto r = api(0, "POST", "/v1/purge", R"({"tags":["dashboard"],"wait":"all"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string exported =
      api(0, "GET", "/metrics").body + httpGet(edges_[0]->adminPort(), "/metrics").body;
  std::set<std::string> names;
  for (const char* file :
       {"/helm/tern/files/grafana-dashboard.json", "/helm/tern/files/prometheus-rules.yaml"}) {
    const std::string text = readText(std::string(TERN_SOURCE_DIR) + file);
    ASSERT_FALSE(text.empty()) << file;
    for (size_t at = text.find("tern_"); at != std::string::npos; at = text.find("tern_", at + 1)) {
      if (at > 0 && (std::isalnum(static_cast<unsigned char>(text[at - 1])) || text[at - 1] == '_'))
        continue;  // inside another word
      size_t end = at;
      while (end < text.size() &&
             (std::islower(static_cast<unsigned char>(text[end])) ||
              std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '_'))
        ++end;
      std::string name = text.substr(at, end - at);
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        if (name.ends_with(suffix) && exported.find("# TYPE " + name + " ") == std::string::npos)
          name.resize(name.size() - std::strlen(suffix));  // a histogram's series
      names.insert(name);
    }
  }
  EXPECT_GE(names.size(), 15u) << "the dashboard and the rules query Tern's metrics";
  for (const auto& name : names)
    EXPECT_NE(exported.find("# TYPE " + name + " "), std::string::npos)
        << name << " is queried but not exported";
}

TEST_F(ReplicaTest, WithoutAnEtcdQuorumThePurgeApiAnswers503) {
  etcd_->kill(0);
  etcd_->kill(1);
  auto r = api(2, "POST", "/v1/purge", R"({"tags":["q"]})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("rror"), std::string::npos) << r.body;
  // Quorum back: purges are accepted again.
  etcd_->start(0);
  etcd_->start(1);
  int status = 0;
  for (int i = 0; i < 100 && status != 202 && status != 200; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = api(2, "POST", "/v1/purge", R"({"tags":["q"]})").status;
  }
  EXPECT_TRUE(status == 202 || status == 200) << status;
}

// A replica whose etcd is slow welcomes a stream only once its summary is
// in etcd, later than the lease the welcome grants, counted from the hello.
// The edge asks for a fresh grant at once instead of lapsing and
// reconnecting over and over: it is leased, unfenced, and stays connected.
TEST(ReplicaSlowEtcdTest, AWelcomeDelayedPastTheLeaseStillLeasesTheEdge) {
  if (!etcdAvailable()) GTEST_SKIP() << "etcd is not installed (apt-get install etcd-server)";
  TempDir dir;
  TestOrigin origin;
  EtcdCluster etcd(dir.sub("etcd"), 1);
  ASSERT_TRUE(etcd.ok()) << etcd.log(0);
  TcpRelay slow(etcd.endpoints()[0]);
  slow.setDelay(150);  // each way: a summary put takes 300 ms, the lease 200 ms
  CoordinatorProcess replica(
      dir.sub("replica"),
      {"--etcd.endpoints", slow.address(), "--replica.id", "r0", "--lease", "200ms",
       "--etcd.session_ttl", "3s", "--etcd.timeout", "2s", "--auth.token", kToken});
  ASSERT_TRUE(replica.ok()) << replica.log();
  EdgeProcess edge(dir.sub("e0"), origin.url(),
                   {"--coordinator.address", replica.grpcAddress(), "--coordinator.edge_id", "e0",
                    "--coordinator.token", kToken, "--log.access", "false"});
  ASSERT_TRUE(edge.ok()) << edge.log();
  auto metric = [&](const std::string& name) { return edgeMetric(edge, name); };
  const auto start = Clock::now();
  while (metric("tern_edge_fenced") != 0 && msSince(start) < 15000)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(metric("tern_edge_fenced"), 0) << edge.log() << replica.log();
  std::printf("edge leased %lld ms after it started\n", static_cast<long long>(msSince(start)));
  // Stays leased on the same stream (heartbeats every 50 ms renew it).
  const int64_t connects = metric("tern_edge_coordinator_connects_total");
  int fenced_samples = 0;
  for (int i = 0; i < 100; ++i) {
    fenced_samples += metric("tern_edge_fenced") != 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(metric("tern_edge_coordinator_connects_total"), connects) << edge.log();
  EXPECT_EQ(fenced_samples, 0) << edge.log();
}

}  // namespace
}  // namespace tern::testing
