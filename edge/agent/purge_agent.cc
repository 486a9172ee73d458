#include "edge/agent/purge_agent.h"

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <random>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "proto/grpc_runtime.h"
#include "proto/purge_convert.h"
#include "tern/v1/edge_link.grpc.pb.h"
#include "tern/v1/purge.grpc.pb.h"

namespace tern::edge::agent {

namespace v1 = tern::v1;

struct PurgeAgent::Impl {
  AgentOptions options;
  cache::TieredStore* store;
  cache::LeaseGate* gate;
  uint64_t incarnation = 0;
  int64_t last_stream_ms = 0;  // Hello.stream_opened_ms of the last stream
  std::string address;         // this edge's HTTP address, for status pages
  struct Replica {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::EdgeLink::Stub> link;
    std::unique_ptr<v1::PurgeService::Stub> purge;
  };
  std::vector<Replica> replicas;
  std::atomic<size_t> active{0};  // the replica of the current (or last) stream

  metrics::Counter* purges_applied;
  metrics::Counter* batches_applied;
  metrics::Counter* resets;
  metrics::Counter* connects;
  metrics::Histogram* apply_seconds;
  metrics::Gauge* connected;

  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;                   // GUARDED_BY(mu)
  grpc::ClientContext* current = nullptr;  // GUARDED_BY(mu)
  std::atomic<bool> caught_up{false};      // this stream has caught up
  std::atomic<bool> ready_once{false};     // caught up at least once since start
  std::atomic<uint64_t> head_seen{0};

  void run();
  // One stream; true if the coordinator welcomed it.
  bool connectOnce(Replica& r);
  bool sleepFor(uint32_t ms) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping; });
  }
};

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

PurgeAgent::PurgeAgent(AgentOptions options, cache::TieredStore* store, cache::LeaseGate* gate,
                       metrics::Registry* registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->store = store;
  impl_->gate = gate;
  std::random_device rd;
  impl_->incarnation =
      (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(wallNowMs());
  impl_->purges_applied =
      &registry->counter("tern_edge_purges_applied_total", "Purges applied from the coordinator");
  impl_->batches_applied = &registry->counter("tern_edge_purge_batches_applied_total",
                                              "Purge batches applied (one sync each)");
  impl_->resets = &registry->counter("tern_edge_purge_resets_total",
                                     "Soft purges of everything because the log moved on");
  impl_->connects = &registry->counter("tern_edge_coordinator_connects_total",
                                       "Streams opened to the coordinator");
  impl_->apply_seconds = &registry->histogram("tern_edge_purge_apply_seconds",
                                              "Time to apply and persist one purge batch");
  impl_->connected =
      &registry->gauge("tern_edge_coordinator_connected", "1 while the coordinator stream is up");
  registry->callbackGauge("tern_edge_fenced", "1 while the lease has lapsed (revalidating)",
                          [gate] { return gate->fenced(steadyNowUs()) ? 1.0 : 0.0; });
}

PurgeAgent::~PurgeAgent() { stop(); }

Status PurgeAgent::start(const std::string& address) {
  auto& o = impl_->options;
  impl_->address = address;
  if (o.edge_id.empty()) return Status::invalidArgument("coordinator.edge_id must be set");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.tls) {
    grpc::SslCredentialsOptions so;
    if (!o.ca_file.empty()) {
      so.pem_root_certs = readFile(o.ca_file);
      if (so.pem_root_certs.empty())
        return Status::invalidArgument("cannot read coordinator.ca_file " + o.ca_file);
    }
    if (!o.cert_file.empty() || !o.key_file.empty()) {
      so.pem_cert_chain = readFile(o.cert_file);
      so.pem_private_key = readFile(o.key_file);
      if (so.pem_cert_chain.empty() || so.pem_private_key.empty())
        return Status::invalidArgument("cannot read coordinator.cert / coordinator.key");
    }
    creds = grpc::SslCredentials(so);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(o.reconnect_min_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(o.reconnect_max_ms));
  args.SetMaxReceiveMessageSize(64 << 20);
  setEdgeLinkFlowControl(&args);
  // The channel's own reconnection backoff (above) is kept short: while it
  // waits, a new call fails at once with the last error ("Connection
  // refused"), so a long backoff would keep the edge fenced after the
  // coordinator is back. gRPC takes "min reconnect backoff" as the least
  // time a connection attempt is given: it must cover the handshake's round
  // trips, or a distant coordinator is never reached.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(o.connect_timeout_ms));
  // One name with several addresses (a Kubernetes headless Service of
  // coordinator replicas): each new stream goes to the next replica, so a
  // replica that refuses streams (no etcd session) is passed over.
  args.SetLoadBalancingPolicyName("round_robin");
  if (o.coordinators.empty()) return Status::invalidArgument("no coordinator address");
  for (const auto& a : o.coordinators) {
    Impl::Replica r;
    r.address = a;
    r.channel = grpc::CreateCustomChannel(a, creds, args);
    r.link = v1::EdgeLink::NewStub(r.channel);
    r.purge = v1::PurgeService::NewStub(r.channel);
    impl_->replicas.push_back(std::move(r));
  }
  impl_->thread = std::thread([this] {
    setThreadName("purge-agent");
    impl_->run();
  });
  return Status::ok();
}

void PurgeAgent::stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping && !impl_->thread.joinable()) return;
    impl_->stopping = true;
    if (impl_->current) impl_->current->TryCancel();
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool PurgeAgent::ready(std::string* why) const {
  if (impl_->ready_once.load()) return true;
  if (why) *why = "catching up with the coordinator's purge log";
  return false;
}

void PurgeAgent::Impl::run() {
  // Purges are latency-critical and rare next to hits: when allowed
  // (CAP_SYS_NICE), run this thread ahead of the event loops.
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), -10) != 0)
    TERN_LOG(kDebug, "purge agent runs at normal priority (no CAP_SYS_NICE)");
  // The wait for a connection is each channel's own: it retries with a
  // short backoff (reconnect_min_ms .. reconnect_max_ms) and
  // WaitForConnected returns as soon as it is up, so an edge is back within
  // about reconnect_max_ms of a coordinator listening again.
  //
  // After a stream that was welcomed ends (its replica died, was cut off or
  // let the lease lapse), the next replica is tried at once: the one that
  // just failed would cost a connect_wait_ms. Only a whole round of
  // replicas that refused or did not answer backs off (a wrong token, no
  // replica with an etcd session), doubling up to 2 s.
  size_t next = 0;
  size_t failed_in_round = 0;
  bool refused_in_round = false;  // some replica answered but ended the stream
  uint32_t backoff_ms = 100;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (stopping) return;
    }
    const size_t index = next;
    next = (next + 1) % replicas.size();
    Replica& r = replicas[index];
    const bool up = r.channel->WaitForConnected(std::chrono::system_clock::now() +
                                                std::chrono::milliseconds(options.connect_wait_ms));
    if (up) {
      active = index;
      const int64_t started = steadyNowUs();
      if (connectOnce(r)) {
        failed_in_round = 0;
        refused_in_round = false;
        backoff_ms = 100;
        // Not a busy loop against a replica that welcomes and then drops.
        if (steadyNowUs() - started < 1'000'000 && !sleepFor(20)) return;
        continue;
      }
      refused_in_round = true;
    }
    if (++failed_in_round < replicas.size()) continue;  // try the others first
    failed_in_round = 0;
    if (!sleepFor(refused_in_round ? backoff_ms : 10)) return;
    if (refused_in_round) backoff_ms = std::min<uint32_t>(backoff_ms * 2, 2000);
    refused_in_round = false;
  }
}

bool PurgeAgent::Impl::connectOnce(Replica& r) {
  auto& link = r.link;
  grpc::ClientContext ctx;
  if (!options.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options.token);
  {
    std::lock_guard lock(mu);
    if (stopping) return false;
    current = &ctx;
  }
  caught_up = false;
  auto stream = link->Connect(&ctx);

  std::mutex write_mu;
  std::mutex lease_mu;
  std::map<uint64_t, int64_t> sent;  // heartbeat id -> steady us it was sent
  int64_t lease_until = 0;
  uint32_t lease_ms = 0;
  uint64_t catch_up_to = UINT64_MAX;
  std::atomic<bool> ended{false};
  bool heartbeat_now = false;  // GUARDED_BY(lease_mu): ask for a grant at once
  std::condition_variable hb_cv;

  auto write = [&](const v1::EdgeMessage& m) {
    std::lock_guard lock(write_mu);
    return stream->Write(m);
  };
  auto openGate = [&] {  // REQUIRES: lease_mu
    if (caught_up && lease_until > 0) gate->openUntil(lease_until);
  };
  auto markCaughtUp = [&](uint64_t applied) {
    std::lock_guard lock(lease_mu);
    if (caught_up || applied < catch_up_to) return;
    caught_up = true;
    ready_once = true;
    openGate();
    TERN_LOG(kInfo, "caught up with the coordinator", {{"applied_seq", std::to_string(applied)}});
  };

  v1::EdgeMessage hello;
  hello.mutable_hello()->set_edge_id(options.edge_id);
  hello.mutable_hello()->set_incarnation(incarnation);
  hello.mutable_hello()->set_applied_seq(store->appliedSeq());
  hello.mutable_hello()->set_address(address);
  hello.mutable_hello()->set_protocol_version(1);
  // Increasing per stream, even if the clock does not move.
  last_stream_ms = std::max(last_stream_ms + 1, wallNowMs());
  hello.mutable_hello()->set_stream_opened_ms(last_stream_ms);
  {
    std::lock_guard lock(lease_mu);
    sent[0] = steadyNowUs();
  }
  if (!write(hello)) {
    auto st = stream->Finish();
    TERN_LOG(kWarn, "coordinator unreachable",
             {{"coordinator", r.address}, {"error", st.error_message()}});
    std::lock_guard lock(mu);
    current = nullptr;
    return false;
  }
  connects->inc();
  bool welcomed = false;

  // Heartbeats and the lease watchdog.
  const int64_t connect_started = steadyNowUs();
  std::thread heartbeats([&] {
    setThreadName("agent-heartbeat");
    uint64_t id = 0;
    for (;;) {
      uint32_t interval;
      {
        std::unique_lock lock(lease_mu);
        interval = lease_ms ? std::max<uint32_t>(lease_ms / 4, 20) : 100;
        hb_cv.wait_for(lock, std::chrono::milliseconds(interval),
                       [&] { return ended.load() || heartbeat_now; });
        if (ended) return;
        heartbeat_now = false;
        const int64_t now = steadyNowUs();
        if (lease_until == 0 && now - connect_started > 5'000'000) {
          TERN_LOG(kWarn, "no answer from the coordinator; reconnecting",
                   {{"coordinator", r.address}});
          ctx.TryCancel();
          return;
        }
        if (lease_until > 0 && now >= lease_until) {
          TERN_LOG(kWarn, "lease lapsed: fenced until the coordinator is back and caught up",
                   {{"coordinator", r.address}});
          ctx.TryCancel();
          return;
        }
        if (lease_ms == 0) continue;
        sent[++id] = now;
        while (sent.size() > 64) sent.erase(sent.begin());
      }
      v1::EdgeMessage hb;
      hb.mutable_heartbeat()->set_id(id);
      hb.mutable_heartbeat()->set_applied_seq(store->appliedSeq());
      if (!write(hb)) return;
    }
  });

  v1::CoordinatorMessage msg;
  while (stream->Read(&msg)) {
    switch (msg.msg_case()) {
      case v1::CoordinatorMessage::kWelcome: {
        welcomed = true;
        connected->set(1);
        head_seen = msg.welcome().head_seq();
        {
          std::lock_guard lock(lease_mu);
          catch_up_to = msg.welcome().head_seq();
        }
        TERN_LOG(kInfo, "connected to the coordinator",
                 {{"coordinator", r.address},
                  {"head_seq", std::to_string(msg.welcome().head_seq())},
                  {"applied_seq", std::to_string(store->appliedSeq())}});
        markCaughtUp(store->appliedSeq());
        break;
      }
      case v1::CoordinatorMessage::kLease: {
        std::lock_guard lock(lease_mu);
        auto it = sent.find(msg.lease().heartbeat_id());
        if (it == sent.end()) break;
        lease_ms = msg.lease().lease_ms();
        const int64_t until = it->second + static_cast<int64_t>(lease_ms) * 1000;
        if (msg.lease().heartbeat_id() == 0) {
          // The welcome's grant is timed from the hello: if the welcome
          // waited (a replica publishing its summary to a slow etcd), it
          // may be short or over on arrival. The coordinator's lease runs
          // from the welcome; a heartbeat now gets a grant timed from now
          // instead of lapsing and reconnecting over and over.
          heartbeat_now = true;
          hb_cv.notify_all();
        }
        if (until <= steadyNowUs()) break;  // over already: wait for that grant
        lease_until = std::max(lease_until, until);
        openGate();
        break;
      }
      case v1::CoordinatorMessage::kPurges:
      case v1::CoordinatorMessage::kResetSoftAll: {
        std::vector<storage::PurgeSpec> specs;
        bool bad = false;
        if (msg.has_reset_soft_all()) {
          storage::PurgeSpec all;
          all.seq = msg.reset_soft_all().seq();
          all.mode = storage::PurgeMode::kSoft;
          all.selectors.push_back({storage::SelectorKind::kAll, {}});
          specs.push_back(std::move(all));
          resets->inc();
          TERN_LOG(kWarn,
                   "the purge log no longer reaches back to this edge: soft-purging everything",
                   {{"seq", std::to_string(all.seq)}});
        } else {
          for (const auto& p : msg.purges().purges()) {
            auto spec = proto::specFromProto(p);
            if (!spec.ok()) {
              TERN_LOG(kError, "invalid purge from the coordinator",
                       {{"seq", std::to_string(p.seq())}, {"error", spec.status().toString()}});
              bad = true;
              break;
            }
            specs.push_back(std::move(*spec));
          }
        }
        const int64_t t0 = steadyNowUs();
        Status s =
            bad || specs.empty() ? Status::invalidArgument("bad batch") : store->applyPurges(specs);
        const int64_t took = steadyNowUs() - t0;
        if (!s.isOk()) {
          // Without acking, the lease stops being renewed usefully; cancel so
          // that this edge is fenced and retries from its applied_seq.
          TERN_LOG(kError, "cannot apply purges; reconnecting", {{"error", s.toString()}});
          ctx.TryCancel();
          break;
        }
        apply_seconds->observe(static_cast<double>(took) / 1e6);
        batches_applied->inc();
        purges_applied->inc(specs.size());
        v1::EdgeMessage ack;
        ack.mutable_ack()->set_applied_seq(store->appliedSeq());
        ack.mutable_ack()->set_apply_time_us(static_cast<uint64_t>(took));
        write(ack);
        markCaughtUp(store->appliedSeq());
        break;
      }
      default:
        break;
    }
  }
  ended = true;
  hb_cv.notify_all();
  heartbeats.join();
  connected->set(0);
  caught_up = false;
  grpc::Status st = stream->Finish();
  {
    std::lock_guard lock(mu);
    current = nullptr;
    if (stopping) return welcomed;
  }
  TERN_LOG(kWarn, "coordinator stream ended",
           {{"coordinator", r.address},
            {"code", std::to_string(static_cast<int>(st.error_code()))},
            {"error", st.error_message()}});
  return welcomed;
}

void PurgeAgent::forwardPurge(cache::PurgeForward f, std::function<void(int, std::string)> done) {
  struct Call {
    grpc::ClientContext ctx;
    v1::PurgeRequest request;
    v1::PurgeResult result;
  };
  auto call = std::make_shared<Call>();
  for (const auto& sel : f.selectors) {
    auto* s = call->request.add_selectors();
    switch (sel.kind) {
      case storage::SelectorKind::kUrl:
        s->set_url(sel.value);
        break;
      case storage::SelectorKind::kPrefix:
        s->set_prefix(sel.value);
        break;
      case storage::SelectorKind::kHost:
        s->set_host(sel.value);
        break;
      case storage::SelectorKind::kTag:
        s->set_tag(sel.value);
        break;
      case storage::SelectorKind::kAll:
        s->set_all(true);
        break;
    }
  }
  call->request.set_mode(proto::toProto(f.mode));
  call->request.set_wait(f.wait_all ? v1::WAIT_MODE_ALL : v1::WAIT_MODE_NONE);
  // A client's PURGE goes with the client's credential, never this edge's.
  if (!f.authorization.empty()) {
    call->ctx.AddMetadata("authorization", f.authorization);
    if (!f.client_ip.empty()) call->ctx.AddMetadata("tern-forwarded-for", f.client_ip);
  } else if (!impl_->options.token.empty()) {
    call->ctx.AddMetadata("authorization", "Bearer " + impl_->options.token);
  }
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(f.wait_all ? 130 : 10));
  impl_->replicas[impl_->active.load()].purge->async()->Purge(
      &call->ctx, &call->request, &call->result, [call, done = std::move(done)](grpc::Status s) {
        namespace json = boost::json;
        if (!s.ok()) {
          int status = 502;
          switch (s.error_code()) {
            case grpc::StatusCode::INVALID_ARGUMENT:
              status = 400;
              break;
            case grpc::StatusCode::UNAUTHENTICATED:
              status = 401;
              break;
            case grpc::StatusCode::PERMISSION_DENIED:
              status = 403;
              break;
            case grpc::StatusCode::RESOURCE_EXHAUSTED:
              status = 429;
              break;
            case grpc::StatusCode::UNAVAILABLE:
              status = 503;
              break;
            case grpc::StatusCode::DEADLINE_EXCEEDED:
              status = 504;
              break;
            default:
              break;
          }
          const char* code = status == 400   ? "invalid_argument"
                             : status == 401 ? "unauthenticated"
                             : status == 403 ? "permission_denied"
                                             : "coordinator_error";
          json::object err{{"code", code}, {"message", s.error_message()}};
          return done(status, json::serialize(json::object{{"error", err}}) + "\n");
        }
        const auto& r = call->result;
        const char* state = r.state() == v1::PURGE_STATE_COMPLETE  ? "complete"
                            : r.state() == v1::PURGE_STATE_TIMEOUT ? "timeout"
                                                                   : "accepted";
        json::object out{{"id", r.seq()}, {"state", state}};
        done(r.state() == v1::PURGE_STATE_COMPLETE ? 200 : 202, json::serialize(out) + "\n");
      });
}

}  // namespace tern::edge::agent
