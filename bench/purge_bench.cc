// Purge propagation benchmark: a real tern-coordinator and either real
// tern-edge processes or simulated edge streams (real gRPC, in this process,
// that apply nothing and ack at once), on loopback.
//
//   purge_bench --edges 3                 real edges (serving hit traffic if
//                                         --hit-load is set: wrk on each edge,
//                                         --hit-rate R requests/s each, default
//                                         2000; 0: as fast as wrk can)
//   purge_bench --simulated 1000          1,000 edge streams
//   purge_bench --replicas 3 --etcd       3 coordinator replicas sharing the
//                                         log in 3 real etcd members; edges and
//                                         streams spread over the replicas,
//                                         purges sent to each in turn
//   purge_bench --compare --replicas 3    the single process, then replicas,
//                                         in one run, side by side
//   options: --purges N (latency samples, default 1000)
//            --failover-kills K (replicas, real edges: SIGKILL the replica
//            holding an edge K times; time until every edge is connected to
//            another replica and caught up)
//            --streams-per-connection S (simulated, default 1)
//            --throughput-seconds S (default 5) --keys-per-purge K (default 100)
//            --clients C (concurrent purge callers, default 64: each waits
//            for its purge to be committed, so with few of them the offered
//            load, not the coordinator, sets the rate)
//            --no-pin (let the scheduler place everything)
//
// Latency: sequential purges with wait=all, measured by the caller from the
// call to the answer "complete" (API in -> last edge applied), reported as
// P50/P99/P99.9/max. Throughput: C callers issue purges of K tag selectors
// with wait=none for S seconds; purges/s and keys/s, then the time until every
// edge has applied the last one. Processes are started from the build tree.

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proto/grpc_runtime.h"
#include "tern/v1/edge_link.grpc.pb.h"
#include "tern/v1/purge.grpc.pb.h"
#include "tests/support/coordinator_process.h"
#include "tests/support/edge_process.h"
#include "tests/support/etcd_cluster.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_origin.h"

namespace v1 = tern::v1;
using namespace tern::testing;
using Clock = std::chrono::steady_clock;

namespace {

// What a simulated edge needs from a CoordinatorMessage: the sequence to
// acknowledge (the last purge of a batch, or a reset's), 0 for anything
// else. It walks the encoding and skips the selectors: it applies nothing,
// and 1,000 of them share one core, whereas each real edge parses and
// applies on a CPU of its own.
uint64_t seqToAck(const grpc::ByteBuffer& buffer) {
  using google::protobuf::internal::WireFormatLite;
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return 0;
  std::string joined;
  const uint8_t* data;
  size_t size;
  if (slices.size() == 1) {
    data = slices[0].begin();
    size = slices[0].size();
  } else {
    for (const auto& sl : slices)
      joined.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    data = reinterpret_cast<const uint8_t*>(joined.data());
    size = joined.size();
  }
  google::protobuf::io::CodedInputStream in(data, static_cast<int>(size));
  constexpr uint32_t kSeq = WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT);
  // The seq (field 1) of the message at the stream's position.
  auto seqOfNested = [&in](uint64_t* seq) {
    uint32_t len;
    if (!in.ReadVarint32(&len)) return false;
    auto limit = in.PushLimit(static_cast<int>(len));
    while (uint32_t t = in.ReadTag()) {
      if (t == kSeq ? !in.ReadVarint64(seq) : !WireFormatLite::SkipField(&in, t)) return false;
    }
    in.PopLimit(limit);
    return true;
  };
  constexpr uint32_t kBatch = WireFormatLite::MakeTag(v1::CoordinatorMessage::kPurgesFieldNumber,
                                                      WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  constexpr uint32_t kReset = WireFormatLite::MakeTag(
      v1::CoordinatorMessage::kResetSoftAllFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  constexpr uint32_t kPurge = WireFormatLite::MakeTag(v1::PurgeBatch::kPurgesFieldNumber,
                                                      WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  uint64_t last = 0;
  while (uint32_t t = in.ReadTag()) {
    if (t == kReset) {
      if (!seqOfNested(&last)) return 0;
    } else if (t == kBatch) {
      uint32_t len;
      if (!in.ReadVarint32(&len)) return 0;
      auto limit = in.PushLimit(static_cast<int>(len));
      while (uint32_t p = in.ReadTag()) {
        uint64_t seq = 0;
        if (p == kPurge ? !seqOfNested(&seq) : !WireFormatLite::SkipField(&in, p)) return 0;
        last = std::max(last, seq);
      }
      in.PopLimit(limit);
    } else if (!WireFormatLite::SkipField(&in, t)) {
      return 0;
    }
  }
  return last;
}

using EdgeLinkStub = grpc::TemplatedGenericStub<v1::EdgeMessage, grpc::ByteBuffer>;

// A simulated edge: hello, ack every batch at once, heartbeat every 250 ms.
class SimEdge final : public grpc::ClientBidiReactor<v1::EdgeMessage, grpc::ByteBuffer> {
 public:
  SimEdge(EdgeLinkStub* stub, std::string id) : id_(std::move(id)) {
    stub->PrepareBidiStreamingCall(&ctx_, "/tern.v1.EdgeLink/Connect", grpc::StubOptions(), this);
    out_.mutable_hello()->set_edge_id(id_);
    out_.mutable_hello()->set_protocol_version(1);
    out_.mutable_hello()->set_incarnation(1);
    writing_ = true;
    StartWrite(&out_);
    StartRead(&in_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    reads_++;
    if (uint64_t seq = seqToAck(in_); seq > 0) queueAck(seq);
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writes_done_++;
    writing_ = false;
    if (ok) flushLocked();
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(mu_);
    done_ = true;
    end_ = std::to_string(status.error_code()) + " " + status.error_message();
  }
  void heartbeat() {
    std::lock_guard lock(mu_);
    pending_hb_ = true;
    flushLocked();
  }
  void cancel() { ctx_.TryCancel(); }
  bool done() {
    std::lock_guard lock(mu_);
    return done_;
  }

 private:
  void queueAck(uint64_t seq) {
    std::lock_guard lock(mu_);
    ack_seq_ = std::max(ack_seq_, seq);
    flushLocked();
  }
  void flushLocked() {
    if (writing_) return;
    out_.Clear();
    // A due heartbeat goes first (it carries the applied sequence, so it
    // acks too): behind a steady stream of acks it would starve, and the
    // lease would lapse.
    if (pending_hb_) {
      out_.mutable_heartbeat()->set_id(++hb_id_);
      out_.mutable_heartbeat()->set_applied_seq(ack_seq_);
      acked_ = ack_seq_;
      pending_hb_ = false;
    } else if (ack_seq_ > acked_) {
      out_.mutable_ack()->set_applied_seq(ack_seq_);
      acked_ = ack_seq_;
    } else {
      return;
    }
    writing_ = true;
    writes_++;
    StartWrite(&out_);
  }

 public:
  std::string state() {
    std::lock_guard lock(mu_);
    return id_ + " reads " + std::to_string(reads_.load()) + " writes " + std::to_string(writes_) +
           "/" + std::to_string(writes_done_) + " writing " + std::to_string(writing_) + " acked " +
           std::to_string(acked_) + " ack_seq " + std::to_string(ack_seq_) + " done " +
           std::to_string(done_) + " " + end_;
  }

 private:
  std::atomic<uint64_t> reads_{0};
  uint64_t writes_ = 0, writes_done_ = 0;
  std::string end_;
  std::string id_;
  grpc::ClientContext ctx_;
  v1::EdgeMessage out_;
  grpc::ByteBuffer in_;
  std::mutex mu_;
  bool writing_ = false;
  bool pending_hb_ = false;
  bool done_ = false;
  uint64_t ack_seq_ = 0, acked_ = 0, hb_id_ = 0;
};

double pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct Options {
  int real_edges = 0, simulated = 0, purges = 1000, seconds = 5, keys = 100, clients = 64;
  bool hit_load = false, no_pin = false;
  int hit_rate = 2000;  // requests/s per edge with --hit-load (0: as fast as wrk can)
  int replicas = 0;     // 0: one process, RocksDB log
  bool compare = false;
  int failover_kills = 0;
  int streams_per_connection = 1;
};

struct Summary {
  std::string mode;
  double p50 = 0, p99 = 0, keys_delivered = 0, failover_p99 = -1;
};

int runMode(const Options& o, int replicas, Summary* summary);

}  // namespace

int main(int argc, char** argv) {
  tern::tuneGrpcRuntime();
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--edges")
      o.real_edges = next();
    else if (a == "--simulated")
      o.simulated = next();
    else if (a == "--purges")
      o.purges = next();
    else if (a == "--throughput-seconds")
      o.seconds = next();
    else if (a == "--keys-per-purge")
      o.keys = next();
    else if (a == "--clients")
      o.clients = next();
    else if (a == "--hit-load")
      o.hit_load = true;
    else if (a == "--hit-rate")
      o.hit_rate = next();
    else if (a == "--no-pin")
      o.no_pin = true;
    else if (a == "--replicas")
      o.replicas = next();
    else if (a == "--etcd")
      o.replicas = std::max(o.replicas, 3);
    else if (a == "--compare")
      o.compare = true;
    else if (a == "--failover-kills")
      o.failover_kills = next();
    else if (a == "--streams-per-connection")
      o.streams_per_connection = std::max(1, next());
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  if ((o.replicas > 0 || o.compare) && !etcdAvailable()) {
    std::fprintf(stderr, "replicas need etcd: apt-get install etcd-server\n");
    return 2;
  }
  if (o.compare && o.replicas == 0) o.replicas = 3;
  std::vector<Summary> summaries;
  int rc = 0;
  if (o.compare) {
    summaries.emplace_back();
    rc |= runMode(o, 0, &summaries.back());
  }
  summaries.emplace_back();
  rc |= runMode(o, o.replicas, &summaries.back());
  if (summaries.size() == 2) {
    const Summary& a = summaries[0];
    const Summary& b = summaries[1];
    std::printf("\nside by side          %-22s %-22s ratio\n", a.mode.c_str(), b.mode.c_str());
    std::printf("latency p50 (ms)     %-22.2f %-22.2f %.2f\n", a.p50, b.p50,
                a.p50 > 0 ? b.p50 / a.p50 : 0);
    std::printf("latency p99 (ms)     %-22.2f %-22.2f %.2f\n", a.p99, b.p99,
                a.p99 > 0 ? b.p99 / a.p99 : 0);
    std::printf("keys/s to every edge %-22.0f %-22.0f %.2f\n", a.keys_delivered, b.keys_delivered,
                a.keys_delivered > 0 ? b.keys_delivered / a.keys_delivered : 0);
  }
  return rc;
}

namespace {

int runMode(const Options& o, int replicas, Summary* summary) {
  const int real_edges = o.real_edges, simulated = o.simulated, purges = o.purges,
            seconds = o.seconds, keys = o.keys, clients = o.clients, hit_rate = o.hit_rate;
  const bool hit_load = o.hit_load, no_pin = o.no_pin;
  // Pinning: the coordinator (and the edges) inherit CPU 0 from this process
  // at fork; then this process (the simulated edges and the purge callers)
  // moves to CPU 1.
  auto pin = [](int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
  };
  const bool two_cpus = !no_pin && std::thread::hardware_concurrency() >= 2;
  if (two_cpus) pin(0);
  TempDir dir;
  std::unique_ptr<EtcdCluster> etcd;
  if (replicas > 0) {
    etcd = std::make_unique<EtcdCluster>(dir.sub("etcd"), 3);
    if (!etcd->ok()) {
      std::fprintf(stderr, "etcd did not start:\n%s\n", etcd->log(0).c_str());
      return 1;
    }
  }
  std::vector<std::unique_ptr<CoordinatorProcess>> coordinators;
  for (int r = 0; r < std::max(1, replicas); ++r) {
    std::vector<std::string> flags = {
        "--rate.purges_per_sec", "0", "--log.level", "warn", "--lease", "3s"};
    if (replicas > 0)
      flags.insert(flags.end(), {"--etcd.endpoints", etcd->endpointList(), "--replica.id",
                                 "r" + std::to_string(r)});
    coordinators.push_back(
        std::make_unique<CoordinatorProcess>(dir.sub("coordinator" + std::to_string(r)), flags));
    if (!coordinators.back()->ok()) {
      std::fprintf(stderr, "coordinator did not start:\n%s\n", coordinators.back()->log().c_str());
      return 1;
    }
  }
  const size_t n_coord = coordinators.size();
  std::vector<std::unique_ptr<v1::PurgeService::Stub>> purge_stubs;
  for (auto& c : coordinators)
    purge_stubs.push_back(v1::PurgeService::NewStub(
        grpc::CreateChannel(c->grpcAddress(), grpc::InsecureChannelCredentials())));
  // Lists and the drain check go to the last replica (the failover test
  // never kills it).
  v1::PurgeService::Stub* purge_stub = purge_stubs.back().get();
  // Edge i lists replica i % n first.
  auto addresses = [&](int i) {
    std::string out;
    for (size_t k = 0; k < n_coord; ++k)
      out += (out.empty() ? "" : ",") + coordinators[(i + k) % n_coord]->grpcAddress();
    return out;
  };

  // Edges.
  TestOrigin origin;
  tern::testing::OriginResponse obj;
  obj.body = std::string(1024, 'x');
  obj.headers = {{"Cache-Control", "max-age=3600"}, {"Surrogate-Key", "hot"}};
  origin.set("/hot", obj);
  std::vector<std::unique_ptr<EdgeProcess>> edges;
  std::vector<std::unique_ptr<Process>> loads;
  for (int i = 0; i < real_edges; ++i) {
    edges.push_back(std::make_unique<EdgeProcess>(
        dir.sub("edge" + std::to_string(i)), origin.url(),
        std::vector<std::string>{"--coordinator.address", addresses(i), "--coordinator.edge_id",
                                 "edge-" + std::to_string(i), "--log.access", "false",
                                 "--server.loops", "1"}));
    if (!edges.back()->ok()) {
      std::fprintf(stderr, "edge did not start\n");
      return 1;
    }
  }
  if (two_cpus) pin(1);
  std::vector<std::shared_ptr<grpc::Channel>> sim_channels;
  std::vector<std::unique_ptr<EdgeLinkStub>> sim_stubs;
  std::vector<std::unique_ptr<SimEdge>> sims;
  for (int i = 0; i < simulated; ++i) {
    // Its own connection (by default), like a separate edge; stream i on
    // replica i % n.
    if (i % o.streams_per_connection == 0) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);    // distinct channels, not shared subchannels
      tern::setEdgeLinkFlowControl(&args);  // as the edge's agent
      sim_channels.push_back(grpc::CreateCustomChannel(
          coordinators[static_cast<size_t>(i / o.streams_per_connection) % n_coord]->grpcAddress(),
          grpc::InsecureChannelCredentials(), args));
      sim_stubs.push_back(std::make_unique<EdgeLinkStub>(sim_channels.back()));
    }
    sims.push_back(std::make_unique<SimEdge>(sim_stubs.back().get(), "sim-" + std::to_string(i)));
  }
  std::atomic<bool> stop_hb{false};
  std::thread hb([&] {
    while (!stop_hb) {
      for (auto& s : sims) s->heartbeat();
      // As the edge's agent does with a 3 s lease: a heartbeat every lease/4.
      std::this_thread::sleep_for(std::chrono::milliseconds(750));
    }
  });
  // Wait until every edge is registered and connected.
  const size_t expected = static_cast<size_t>(real_edges + simulated);
  for (int i = 0; i < 1000; ++i) {
    grpc::ClientContext ctx;
    v1::ListEdgesResponse resp;
    purge_stub->ListEdges(&ctx, v1::ListEdgesRequest(), &resp);
    size_t connected = 0;
    for (const auto& e : resp.edges()) connected += e.state() == v1::EDGE_STATE_CONNECTED;
    if (connected == expected) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (hit_load) {
    for (auto& e : edges) {
      // Warm, then wrk on each edge for the whole run (bounded by a long duration; killed at the
      // end).
      for (int k = 0; k < 3; ++k) httpGet(e->port(), "/hot");
      // 16 connections; with a rate, each waits between requests (wrk's Lua delay()).
      std::vector<std::string> cmd = {"/usr/bin/wrk", "-t1", "-c16", "-d600s"};
      if (hit_rate > 0) {
        const std::string script = dir.sub("rate.lua");
        std::FILE* f = std::fopen(script.c_str(), "w");
        std::fprintf(f, "function delay() return %d end\n", std::max(1, 16 * 1000 / hit_rate));
        std::fclose(f);
        cmd.insert(cmd.end(), {"-s", script});
      }
      cmd.push_back("http://127.0.0.1:" + std::to_string(e->port()) + "/hot");
      loads.push_back(
          std::make_unique<Process>(cmd, dir.sub("wrk" + std::to_string(loads.size()) + ".log")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }

  summary->mode = replicas > 0 ? std::to_string(replicas) + " replicas + 3 etcd" : "one process";
  std::printf(
      "purge_bench [%s]: %d real edges%s, %d simulated streams (%d per connection), "
      "coordinator lease 3s, %s\n",
      summary->mode.c_str(), real_edges, hit_load ? " (serving hits)" : "", simulated,
      o.streams_per_connection,
      two_cpus ? "coordinator(s)+etcd+edges pinned to CPU 0, callers+simulated edges+wrk "
                 "to CPU 1"
               : "not pinned");
  // --- latency ---
  std::vector<double> client_ms, server_ms;
  int incomplete = 0;
  for (int i = 0; i < purges; ++i) {
    v1::PurgeRequest req;
    req.add_selectors()->set_tag("lat-" + std::to_string(i));
    req.set_wait(v1::WAIT_MODE_ALL);
    req.set_timeout_ms(10000);
    grpc::ClientContext ctx;
    v1::PurgeResult res;
    auto t0 = Clock::now();
    auto st = purge_stubs[static_cast<size_t>(i) % n_coord]->Purge(&ctx, req, &res);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!st.ok() || res.state() != v1::PURGE_STATE_COMPLETE) {
      ++incomplete;
      continue;
    }
    for (const auto& e : res.edges())
      if (e.state() != v1::EDGE_PURGE_STATE_APPLIED) ++incomplete;
    client_ms.push_back(ms);
    server_ms.push_back(static_cast<double>(res.complete_latency_us()) / 1000);
  }
  std::printf(
      "latency (wait=all, %zu purges, ms)   p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  "
      "[coordinator-measured p50 %.2f p99 %.2f]  not-applied %d\n",
      client_ms.size(), pct(client_ms, 0.5), pct(client_ms, 0.99), pct(client_ms, 0.999),
      client_ms.empty() ? 0 : *std::max_element(client_ms.begin(), client_ms.end()),
      pct(server_ms, 0.5), pct(server_ms, 0.99), incomplete);
  summary->p50 = pct(client_ms, 0.5);
  summary->p99 = pct(client_ms, 0.99);

  // --- throughput ---
  std::atomic<uint64_t> done{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> callers;
  auto t0 = Clock::now();
  for (int c = 0; c < clients; ++c) {
    callers.emplace_back([&, c] {
      uint64_t n = 0;
      while (!stop) {
        v1::PurgeRequest req;
        for (int k = 0; k < keys; ++k)
          req.add_selectors()->set_tag("t" + std::to_string(c) + "-" + std::to_string(n) + "-" +
                                       std::to_string(k));
        grpc::ClientContext ctx;
        v1::PurgeResult res;
        if (purge_stubs[static_cast<size_t>(c) % n_coord]->Purge(&ctx, req, &res).ok())
          done++;
        else
          failed++;
        ++n;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : callers) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  // Until every edge applied the last one.
  auto drain0 = Clock::now();
  uint64_t head = 0;
  bool drained = false;
  while (!drained && Clock::now() - drain0 < std::chrono::seconds(120)) {
    grpc::ClientContext ctx;
    v1::ListEdgesResponse resp;
    purge_stub->ListEdges(&ctx, v1::ListEdgesRequest(), &resp);
    head = resp.head_seq();
    drained = true;
    for (const auto& e : resp.edges()) drained = drained && e.lag() == 0;
    if (!drained) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  double drain_ms = std::chrono::duration<double, std::milli>(Clock::now() - drain0).count();
  // Accepted: what the callers got acknowledged (durable in the log).
  // Delivered: the same purges over the time until every edge applied them.
  const double delivered_secs = secs + drain_ms / 1000.0;
  std::printf(
      "throughput (%d callers, %d keys/purge, %.1fs)  accepted %.0f purges/s  %.0f keys/s  "
      "failed %llu;  delivered to every edge %.0f purges/s  %.0f keys/s  "
      "(all edges applied %s %.0f ms after the last call, head %llu)\n",
      clients, keys, secs, static_cast<double>(done) / secs,
      static_cast<double>(done) * keys / secs, static_cast<unsigned long long>(failed.load()),
      drained ? static_cast<double>(done) / delivered_secs : 0.0,
      drained ? static_cast<double>(done) * keys / delivered_secs : 0.0,
      drained ? "within" : "NOT within", drain_ms, static_cast<unsigned long long>(head));
  summary->keys_delivered = drained ? static_cast<double>(done) * keys / delivered_secs : 0.0;
  if (!drained) {
    grpc::ClientContext ctx;
    v1::ListEdgesResponse resp;
    purge_stub->ListEdges(&ctx, v1::ListEdgesRequest(), &resp);
    int shown = 0;
    for (const auto& e : resp.edges()) {
      if (e.lag() == 0 || shown++ >= 5) continue;
      std::printf("behind: %s applied %llu lag %llu\n", e.edge_id().c_str(),
                  static_cast<unsigned long long>(e.applied_seq()),
                  static_cast<unsigned long long>(e.lag()));
      for (auto& sim : sims) {
        std::string st = sim->state();
        if (st.starts_with(e.edge_id() + " ")) std::printf("  %s\n", st.c_str());
      }
    }
  }
  if (hit_load) {
    for (auto& l : loads) l->signal(SIGINT);
    for (auto& l : loads) l->wait(5000);
    for (size_t i = 0; i < loads.size(); ++i) {
      std::string text = readText(dir.sub("wrk" + std::to_string(i) + ".log"));
      auto at = text.find("Requests/sec:");
      if (at != std::string::npos)
        std::printf("edge-%zu hit traffic during the run: %s", i,
                    text.substr(at, text.find('\n', at) - at + 1).c_str());
    }
  }
  // --- failover ---
  int failover_failed = 0;
  if (replicas > 1 && o.failover_kills > 0 && real_edges > 0) {
    std::vector<double> took_ms;
    for (int k = 0; k < o.failover_kills; ++k) {
      // A replica holding an edge; another one answers the lists.
      grpc::ClientContext lctx;
      v1::ListEdgesResponse list;
      purge_stub->ListEdges(&lctx, v1::ListEdgesRequest(), &list);
      int victim = -1;
      for (const auto& e : list.edges())
        for (size_t r = 0; r < n_coord; ++r)
          if (e.replica_id() == "r" + std::to_string(r)) victim = static_cast<int>(r);
      if (victim < 0) {
        ++failover_failed;
        continue;
      }
      const std::string killed = "r" + std::to_string(victim);
      purge_stub = purge_stubs[(static_cast<size_t>(victim) + 1) % n_coord].get();
      coordinators[static_cast<size_t>(victim)]->process().kill();
      const auto killed_at = Clock::now();
      bool moved = false;
      while (!moved && Clock::now() - killed_at < std::chrono::seconds(10)) {
        grpc::ClientContext ctx;
        v1::ListEdgesResponse resp;
        purge_stub->ListEdges(&ctx, v1::ListEdgesRequest(), &resp);
        size_t ok = 0;
        for (const auto& e : resp.edges())
          ok += e.edge_id().starts_with("edge-") && e.state() == v1::EDGE_STATE_CONNECTED &&
                !e.replica_id().empty() && e.replica_id() != killed && e.lag() == 0;
        moved = ok == static_cast<size_t>(real_edges);
        if (!moved) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      if (moved)
        took_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count());
      else
        ++failover_failed;
      coordinators[static_cast<size_t>(victim)]->restart(/*kill=*/true, 0);
    }
    std::printf(
        "failover (%d SIGKILLs of a replica holding edges, ms until every edge is "
        "connected to another replica and caught up)  p50 %.0f  p99 %.0f  max %.0f  "
        "failed %d\n",
        o.failover_kills, pct(took_ms, 0.5), pct(took_ms, 0.99),
        took_ms.empty() ? 0 : *std::max_element(took_ms.begin(), took_ms.end()), failover_failed);
    summary->failover_p99 = pct(took_ms, 0.99);
  }
  stop_hb = true;
  hb.join();
  for (auto& s : sims) s->cancel();
  for (int i = 0; i < 200; ++i) {
    bool all = true;
    for (auto& s : sims) all = all && s->done();
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return incomplete == 0 && drained && failover_failed == 0 ? 0 : 1;
}

}  // namespace
