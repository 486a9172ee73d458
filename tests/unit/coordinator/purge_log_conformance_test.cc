// The PurgeLog conformance suite, run against both implementations:
// RocksPurgeLog (real RocksDB in a temp folder) and EtcdPurgeLog (a real
// etcd member started by the test): sequence numbers, durability across
// reopen, group commit, idempotency, retention. Then what only the etcd log
// does: several replicas on one log, a member lost, quorum lost and back,
// a watch whose revision was compacted.

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "coordinator/etcd/etcd_client.h"
#include "coordinator/etcd/etcd_purge_log.h"
#include "coordinator/log/rocks_purge_log.h"
#include "tests/support/etcd_cluster.h"
#include "tests/support/temp_dir.h"

namespace tern::coordinator {
namespace {

using etcd::EtcdClient;
using etcd::EtcdLogOptions;
using etcd::EtcdOptions;
using etcd::EtcdPurgeLog;

LogEntry tagEntry(const std::string& tag, const std::string& key = {}) {
  LogEntry e;
  e.mode = storage::PurgeMode::kHard;
  e.selectors.push_back({storage::SelectorKind::kTag, tag});
  e.idempotency_key = key;
  return e;
}

Result<LogEntry> tryAppend(PurgeLog& log, LogEntry e) {
  std::promise<Result<LogEntry>> p;
  log.append(std::move(e), [&](Result<LogEntry> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

LogEntry appendSync(PurgeLog& log, LogEntry e) {
  auto r = tryAppend(log, std::move(e));
  EXPECT_TRUE(r.ok()) << r.status().toString();
  return r.ok() ? *r : LogEntry();
}

// `threads` threads, thread t appending `each` purges to logs[t % size];
// returns every sequence number they were given, sorted.
// Each append has a tag of its own; every answer must be the entry that
// was appended (`tags`, if given, maps each seq to its tag).
std::vector<uint64_t> appendConcurrently(const std::vector<PurgeLog*>& logs, int threads, int each,
                                         std::map<uint64_t, std::string>* tags = nullptr) {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::vector<uint64_t> seqs;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      PurgeLog& log = *logs[static_cast<size_t>(t) % logs.size()];
      for (int i = 0; i < each; ++i) {
        const std::string tag = "t" + std::to_string(t) + "-" + std::to_string(i);
        const LogEntry e = appendSync(log, tagEntry(tag));
        EXPECT_TRUE(e.selectors.size() == 1 && e.selectors[0].value == tag)
            << "answered with another entry: seq " << e.seq << ", "
            << (e.selectors.empty() ? "no selector" : e.selectors[0].value);
        std::lock_guard lock(mu);
        seqs.push_back(e.seq);
        if (tags) (*tags)[e.seq] = tag;
      }
    });
  }
  for (auto& w : workers) w.join();
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

// Opens logs of one implementation; a second open() sees what the first
// wrote (a restart, or another replica on the same log).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<std::unique_ptr<PurgeLog>> open(PurgeLogOptions o) = 0;
};

class RocksBackend : public Backend {
 public:
  Result<std::unique_ptr<PurgeLog>> open(PurgeLogOptions o) override {
    o.path = dir_.sub("log");
    return RocksPurgeLog::open(o);
  }

 private:
  testing::TempDir dir_;
};

// One etcd member for the whole suite; each test logs under its own prefix.
// (Statics: stopped, and their folder removed, when the test process exits.)
testing::EtcdCluster* sharedEtcd() {
  static testing::TempDir dir;
  static testing::EtcdCluster cluster(dir.sub("etcd"), 1);
  return &cluster;
}

class EtcdBackend : public Backend {
 public:
  EtcdBackend() {
    static std::atomic<int> n{0};
    prefix_ = "/conformance-" + std::to_string(getpid()) + "-" + std::to_string(++n) + "/";
  }
  Result<std::unique_ptr<PurgeLog>> open(PurgeLogOptions o) override {
    if (!sharedEtcd()->ok()) return Status::unavailable("etcd did not start");
    clients_.push_back(std::make_unique<EtcdClient>(EtcdOptions{sharedEtcd()->endpoints()}));
    EtcdLogOptions eo;
    eo.log = o;
    eo.prefix = prefix_;
    auto log = EtcdPurgeLog::open(clients_.back().get(), eo);
    if (!log.ok()) return log.status();
    return std::unique_ptr<PurgeLog>(std::move(*log));
  }

 private:
  std::string prefix_;
  // Clients outlive the logs made from them (the test drops logs first).
  std::vector<std::unique_ptr<EtcdClient>> clients_;
};

using Factory = std::function<std::unique_ptr<Backend>()>;

class PurgeLogConformance : public ::testing::TestWithParam<std::pair<std::string, Factory>> {
 protected:
  void SetUp() override {
    if (GetParam().first == "etcd" && !testing::etcdAvailable())
      GTEST_SKIP() << "etcd is not installed (apt-get install etcd-server)";
    backend_ = GetParam().second();
  }
  void TearDown() override { logs_.clear(); }
  PurgeLog& open(PurgeLogOptions o = {}) {
    auto log = backend_->open(o);
    EXPECT_TRUE(log.ok()) << log.status().toString();
    if (!log.ok()) throw std::runtime_error("cannot open the log");
    logs_.push_back(std::move(*log));
    return *logs_.back();
  }
  void closeAll() { logs_.clear(); }

  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<PurgeLog>> logs_;
};

TEST_P(PurgeLogConformance, AssignsSequencesAndSurvivesReopen) {
  {
    PurgeLog& log = open();
    EXPECT_EQ(log.headSeq(), 0u);
    EXPECT_EQ(log.firstSeq(), 1u);
    EXPECT_EQ(appendSync(log, tagEntry("a")).seq, 1u);
    EXPECT_EQ(appendSync(log, tagEntry("b")).seq, 2u);
    EdgeRecord edge;
    edge.edge_id = "edge-1";
    edge.applied_seq = 2;
    ASSERT_TRUE(log.saveEdge(edge).isOk());
    closeAll();
  }
  PurgeLog& log = open();
  EXPECT_EQ(log.headSeq(), 2u);
  EXPECT_EQ(log.firstSeq(), 1u);
  std::vector<LogEntry> entries;
  ASSERT_TRUE(log.read(1, 10, &entries).isOk());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].selectors[0].value, "b");
  EXPECT_GT(entries[0].accepted_at_ms, 0);
  auto one = log.get(2);
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->selectors[0].value, "b");
  auto none = log.get(3);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(appendSync(log, tagEntry("c")).seq, 3u);
  auto edges = log.loadEdges();
  ASSERT_TRUE(edges.ok());
  ASSERT_EQ(edges->size(), 1u);
  EXPECT_EQ((*edges)[0].applied_seq, 2u);
  ASSERT_TRUE(log.removeEdge("edge-1").isOk());
  EXPECT_TRUE(log.loadEdges()->empty());
}

// Every field the engine gives an entry, and every field of an edge, comes
// back as it was, from memory and after a reopen (read from the store).
TEST_P(PurgeLogConformance, EveryFieldComesBackAsItWasLogged) {
  using storage::SelectorKind;
  LogEntry e;
  e.mode = storage::PurgeMode::kSoft;
  e.selectors = {{SelectorKind::kUrl, "example.com/a?b=1"},
                 {SelectorKind::kPrefix, "example.com/static/"},
                 {SelectorKind::kHost, "example.com:8080"},
                 {SelectorKind::kTag, "product-42"},
                 {SelectorKind::kAll, ""}};
  e.idempotency_key = std::string("ops") + '\x1f' + "k-1";
  e.requested_by = "ops";
  e.requested_from = "10.0.0.7:51234 via edge-2";
  e.accepted_at_ms = 1764000000123;  // kept when set
  EdgeRecord edge{"edge-9", "10.0.0.9:8080", 1, 1764000000456};
  LogEntry logged;
  {
    PurgeLog& log = open();
    logged = appendSync(log, e);
    EXPECT_EQ(logged.seq, 1u);
    LogEntry expected = e;
    expected.seq = 1;
    expected.commit_id = logged.commit_id;  // the etcd log's own
    EXPECT_EQ(logged, expected);
    auto again = log.get(1);
    ASSERT_TRUE(again.ok() && again->has_value());
    EXPECT_EQ(**again, logged);
    ASSERT_TRUE(log.saveEdge(edge).isOk());
    closeAll();
  }
  PurgeLog& log = open();
  std::vector<LogEntry> entries;
  ASSERT_TRUE(log.read(1, 10, &entries).isOk());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0], logged);
  auto edges = log.loadEdges();
  ASSERT_TRUE(edges.ok());
  ASSERT_EQ(edges->size(), 1u);
  EXPECT_EQ((*edges)[0], edge);
}

TEST_P(PurgeLogConformance, ConcurrentAppendsShareCommits) {
  PurgeLog& log = open();
  constexpr int kThreads = 8, kEach = 40;
  const auto seqs = appendConcurrently({&log}, kThreads, kEach);
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);  // dense, unique
  auto st = log.stats();
  EXPECT_EQ(st.appended, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_EQ(st.head_seq, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_LT(st.syncs, st.appended) << "appends waiting together share one commit";
}

TEST_P(PurgeLogConformance, IdempotencyKeyReturnsTheLoggedPurge) {
  PurgeLog& log = open();
  EXPECT_EQ(appendSync(log, tagEntry("a", "key-1")).seq, 1u);
  EXPECT_EQ(appendSync(log, tagEntry("b")).seq, 2u);
  LogEntry again = appendSync(log, tagEntry("other", "key-1"));
  EXPECT_EQ(again.seq, 1u);
  EXPECT_EQ(again.selectors[0].value, "a");
  EXPECT_EQ(log.headSeq(), 2u);
  // The same key twice in one group: one purge.
  std::promise<uint64_t> p1, p2;
  log.append(tagEntry("x", "key-2"), [&](Result<LogEntry> r) { p1.set_value(r->seq); });
  log.append(tagEntry("y", "key-2"), [&](Result<LogEntry> r) { p2.set_value(r->seq); });
  EXPECT_EQ(p1.get_future().get(), p2.get_future().get());
  EXPECT_EQ(log.headSeq(), 3u);
}

TEST_P(PurgeLogConformance, RaiseHeadMovesTheNextSequence) {
  PurgeLog& log = open();
  appendSync(log, tagEntry("a"));
  std::promise<Result<LogEntry>> p;
  log.raiseHead(41, [&](Result<LogEntry> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seq, 41u);
  EXPECT_EQ(appendSync(log, tagEntry("b")).seq, 42u);
  std::promise<Result<LogEntry>> q;  // lower than the head: nothing changes
  log.raiseHead(5, [&](Result<LogEntry> x) { q.set_value(std::move(x)); });
  EXPECT_EQ(q.get_future().get()->seq, 42u);
}

TEST_P(PurgeLogConformance, RetentionByCountAndAge) {
  PurgeLogOptions o;
  o.retain_count = 3;
  o.memory_entries = 2;  // reads below the memory tail go to the store
  PurgeLog& log = open(o);
  for (int i = 0; i < 10; ++i)
    appendSync(log, tagEntry("t" + std::to_string(i), "k" + std::to_string(i)));
  EXPECT_EQ(log.headSeq(), 10u);
  ASSERT_TRUE(log.trimForTesting(wallNowMs()).isOk());
  EXPECT_EQ(log.firstSeq(), 8u);
  std::vector<LogEntry> entries;
  ASSERT_TRUE(log.read(1, 100, &entries).isOk());
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].seq, 8u);
  // A dropped purge's idempotency key is gone with it: it is logged anew.
  EXPECT_EQ(appendSync(log, tagEntry("t0", "k0")).seq, 11u);
  // Age (7 days by default): eight days later everything but the head goes.
  ASSERT_TRUE(log.trimForTesting(wallNowMs() + 8 * 86'400'000LL).isOk());
  EXPECT_EQ(log.firstSeq(), 11u);
  EXPECT_EQ(log.headSeq(), 11u);
}

INSTANTIATE_TEST_SUITE_P(Logs, PurgeLogConformance,
                         ::testing::Values(std::make_pair(std::string("rocksdb"), Factory([] {
                                                            return std::unique_ptr<Backend>(
                                                                new RocksBackend());
                                                          })),
                                           std::make_pair(std::string("etcd"), Factory([] {
                                                            return std::unique_ptr<Backend>(
                                                                new EtcdBackend());
                                                          }))),
                         [](const auto& p) { return p.param.first; });

// ---------------------------------------------------------------------------
// etcd only: replicas, member failures, quorum, compaction.

class EtcdLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::etcdAvailable()) GTEST_SKIP() << "etcd is not installed";
    cluster_ = std::make_unique<testing::EtcdCluster>(dir_.sub("etcd"), 3);
    ASSERT_TRUE(cluster_->ok()) << cluster_->log(0);
  }
  void TearDown() override {
    logs_.clear();
    clients_.clear();
  }
  EtcdPurgeLog& replica(uint32_t timeout_ms = 1000) {
    EtcdOptions eo{cluster_->endpoints(), timeout_ms};
    clients_.push_back(std::make_unique<EtcdClient>(eo));
    EtcdLogOptions lo;
    lo.prefix = "/t/";
    auto log = EtcdPurgeLog::open(clients_.back().get(), lo);
    EXPECT_TRUE(log.ok()) << log.status().toString();
    logs_.push_back(std::move(*log));
    return *logs_.back();
  }
  static bool eventually(const std::function<bool()>& f, int timeout_ms = 5000) {
    const int64_t until = steadyNowUs() + timeout_ms * 1000LL;
    while (steadyNowUs() < until) {
      if (f()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return f();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::EtcdCluster> cluster_;
  std::vector<std::unique_ptr<EtcdClient>> clients_;
  std::vector<std::unique_ptr<EtcdPurgeLog>> logs_;
};

TEST_F(EtcdLogTest, ReplicasShareOneGapFreeSequence) {
  EtcdPurgeLog& a = replica();
  EtcdPurgeLog& b = replica();
  std::atomic<uint64_t> b_saw{0};
  b.setOnHead([&](uint64_t head) { b_saw = head; });
  constexpr int kThreads = 4, kEach = 30;
  std::map<uint64_t, std::string> tags;
  const auto seqs = appendConcurrently({&a, &b}, 2 * kThreads, kEach, &tags);
  const uint64_t n = 2 * kThreads * kEach;
  ASSERT_EQ(seqs.size(), n);
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1) << "gap or duplicate";
  // Each replica learns the other's appends through its watch.
  EXPECT_TRUE(eventually([&] { return a.headSeq() == n && b.headSeq() == n; }));
  EXPECT_TRUE(eventually([&] { return b_saw.load() == n; }));
  std::vector<LogEntry> all;
  ASSERT_TRUE(a.read(1, 1000, &all).isOk());
  ASSERT_EQ(all.size(), n);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, i + 1);
    // Logged under the seq its caller was told (retries after a lost race
    // take later appends along).
    ASSERT_EQ(all[i].selectors.size(), 1u);
    EXPECT_EQ(all[i].selectors[0].value, tags[all[i].seq]);
  }
}

TEST_F(EtcdLogTest, IdempotencyKeyWorksAcrossReplicas) {
  EtcdPurgeLog& a = replica();
  EtcdPurgeLog& b = replica();
  EXPECT_EQ(appendSync(a, tagEntry("first", "same-key")).seq, 1u);
  LogEntry again = appendSync(b, tagEntry("second", "same-key"));
  EXPECT_EQ(again.seq, 1u);
  EXPECT_EQ(again.selectors[0].value, "first");
  EXPECT_EQ(appendSync(b, tagEntry("next")).seq, 2u);
}

TEST_F(EtcdLogTest, AppendsContinueWhenAMemberIsKilled) {
  EtcdPurgeLog& log = replica();
  EXPECT_EQ(appendSync(log, tagEntry("a")).seq, 1u);
  cluster_->kill(0);  // the member the client talks to first
  for (int i = 0; i < 10; ++i) EXPECT_EQ(appendSync(log, tagEntry("b")).seq, 2u + i);
  cluster_->start(0);
}

TEST_F(EtcdLogTest, QuorumLostFailsClearlyAndQuorumBackResumes) {
  EtcdPurgeLog& log = replica(/*timeout_ms=*/500);
  EXPECT_EQ(appendSync(log, tagEntry("a")).seq, 1u);
  cluster_->kill(1);
  cluster_->kill(2);
  const int64_t t0 = steadyNowUs();
  auto r = tryAppend(log, tagEntry("no-quorum", "k-nq"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().toString();
  EXPECT_LT(steadyNowUs() - t0, 10'000'000) << "an append without quorum fails, and soon";
  cluster_->start(1);
  cluster_->start(2);
  // Back: the retried purge is logged once (it may have landed before),
  // and the sequence goes on without a gap.
  Result<LogEntry> again = Status::unavailable("");
  EXPECT_TRUE(eventually(
      [&] {
        again = tryAppend(log, tagEntry("no-quorum", "k-nq"));
        return again.ok();
      },
      20000));
  ASSERT_TRUE(again.ok()) << again.status().toString();
  EXPECT_EQ(again->seq, 2u);
  EXPECT_EQ(appendSync(log, tagEntry("c")).seq, 3u);
}

// The lease calls (for replica sessions) and member status, against real
// members.
TEST_F(EtcdLogTest, LeasesAndMemberStatus) {
  EtcdClient client(EtcdOptions{cluster_->endpoints()});
  auto id = client.leaseGrant(5);
  ASSERT_TRUE(id.ok()) << id.status().toString();
  auto ttl = client.leaseKeepAlive(*id);
  ASSERT_TRUE(ttl.ok()) << ttl.status().toString();
  EXPECT_GT(*ttl, 0);
  EXPECT_LE(*ttl, 5);
  etcd::pb::PutRequest put;
  put.set_key("/lease/k");
  put.set_value("v");
  put.set_lease(*id);
  ASSERT_TRUE(client.put(put).ok());
  ASSERT_TRUE(client.leaseRevoke(*id).isOk());
  etcd::pb::RangeRequest get;
  get.set_key("/lease/k");
  auto r = client.range(get);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs_size(), 0) << "a key on a revoked lease is gone";
  EXPECT_EQ(client.leaseKeepAlive(*id).status().code(), StatusCode::kNotFound);
  auto all = client.memberStatus();
  ASSERT_EQ(all.size(), 3u);
  for (const auto& st : all) EXPECT_TRUE(st.ok()) << st.status().toString();
  cluster_->kill(2);
  auto two = client.memberStatus();
  EXPECT_TRUE(two[0].ok() && two[1].ok());
  EXPECT_FALSE(two[2].ok());
  cluster_->start(2);
}

TEST_F(EtcdLogTest, WatchFromACompactedRevisionSaysSo) {
  EtcdClient client(EtcdOptions{cluster_->endpoints()});
  int64_t rev = 0;
  for (int i = 0; i < 5; ++i) {
    etcd::pb::PutRequest put;
    put.set_key("/w/k");
    put.set_value(std::to_string(i));
    auto r = client.put(put);
    ASSERT_TRUE(r.ok()) << r.status().toString();
    rev = r->header().revision();
  }
  ASSERT_TRUE(client.compact(rev).isOk());
  std::promise<int64_t> compacted;
  std::atomic<int> events{0};
  auto w = client.watch(
      "/w/", etcd::prefixEnd("/w/"), rev - 3, [&](const auto&) { ++events; },
      [&](int64_t c) { compacted.set_value(c); });
  auto f = compacted.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get(), rev);
  EXPECT_EQ(events.load(), 0);
  // From the compaction revision on, the watch works and resumes in order.
  std::mutex mu;
  std::vector<std::string> values;
  auto w2 = client.watch(
      "/w/", etcd::prefixEnd("/w/"), rev + 1,
      [&](const etcd::pb::WatchResponse& r) {
        std::lock_guard lock(mu);
        for (const auto& e : r.events()) values.push_back(e.kv().value());
      },
      [](int64_t) {});
  for (int i = 5; i < 8; ++i) {
    etcd::pb::PutRequest put;
    put.set_key("/w/k");
    put.set_value(std::to_string(i));
    ASSERT_TRUE(client.put(put).ok());
  }
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return values.size() == 3;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(values, (std::vector<std::string>{"5", "6", "7"}));
}

}  // namespace
}  // namespace tern::coordinator
