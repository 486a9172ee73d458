#include "coordinator/server/replica_link.h"

#include <grpcpp/alarm.h>
#include <chrono>
#include <set>

#include "common/log.h"
#include "common/thread_name.h"
#include "coordinator/api/proto_views.h"
#include "coordinator/server/grpc_service.h"

namespace tern::coordinator {

namespace iv1 = tern::internal::v1;

namespace {

// One peer's stream: every edge's applied position now, then the ones that
// moved since the last write (one write at a time, at most one per
// interval: changes meanwhile are coalesced into the next; a change after a
// quiet interval goes out at once).
// The engine's listener holds a shared handle, so a change announced while
// the call ends never touches a deleted reactor.
class ProgressReactor final : public grpc::ServerWriteReactor<iv1::ReplicaSummary> {
 public:
  struct Handle {
    std::mutex mu;
    ProgressReactor* reactor = nullptr;
  };

  ProgressReactor(Coordinator* coordinator, uint32_t interval_us)
      : coordinator_(coordinator),
        interval_(std::chrono::microseconds(interval_us)),
        handle_(std::make_shared<Handle>()) {
    handle_->reactor = this;
    listener_ = coordinator_->addProgressListener([h = handle_] {
      std::lock_guard lock(h->mu);
      if (h->reactor) h->reactor->changed();
    });
    changed();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (finish_after_write_) {
      finish_after_write_ = false;
      Finish(grpc::Status::OK);
      return;
    }
    if (!ok) return finishLocked();
    if (dirty_) scheduleLocked();
  }
  void OnCancel() override {
    std::lock_guard lock(mu_);
    finishLocked();
  }
  void OnDone() override {
    coordinator_->removeProgressListener(listener_);
    {
      std::lock_guard lock(handle_->mu);
      handle_->reactor = nullptr;
    }
    {
      // The alarm's callback may still run (cancelled): it finds no reactor.
      std::lock_guard lock(mu_);
      if (alarm_set_) alarm_.Cancel();
    }
    delete this;
  }

 private:
  void changed() {
    std::lock_guard lock(mu_);
    dirty_ = true;
    if (!writing_) scheduleLocked();
  }
  // Writes now if the interval since the last write is over, else once it is.
  void scheduleLocked() {
    if (finished_ || alarm_set_) return;
    const auto due = last_write_ + interval_;
    if (std::chrono::steady_clock::now() >= due) return writeLocked();
    alarm_set_ = true;
    alarm_.Set(std::chrono::system_clock::now() + (due - std::chrono::steady_clock::now()),
               [h = handle_](bool) {
                 std::lock_guard lock(h->mu);
                 if (h->reactor) h->reactor->alarmFired();
               });
  }
  void alarmFired() {
    std::lock_guard lock(mu_);
    alarm_set_ = false;
    if (dirty_ && !writing_) writeLocked();
  }
  void writeLocked() {
    if (finished_) return;
    dirty_ = false;
    writing_ = true;
    last_write_ = std::chrono::steady_clock::now();
    // What moved since the last write (everything on the first).
    message_ = toProto(coordinator_->progressSince(sent_gen_, &sent_gen_));
    if (message_.edges_size() == 0 && sent_any_) {
      writing_ = false;
      return;
    }
    sent_any_ = true;
    StartWrite(&message_);
  }
  void finishLocked() {
    if (finished_) return;
    finished_ = true;
    if (!writing_)
      Finish(grpc::Status::OK);
    else
      finish_after_write_ = true;
  }

  Coordinator* coordinator_;
  const std::chrono::steady_clock::duration interval_;
  std::shared_ptr<Handle> handle_;
  uint64_t listener_ = 0;
  std::mutex mu_;
  grpc::Alarm alarm_;       // GUARDED_BY(mu_): the next write when it is early
  bool alarm_set_ = false;  // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point last_write_;  // GUARDED_BY(mu_)
  iv1::ReplicaSummary message_;                       // GUARDED_BY(mu_); alive while written
  uint64_t sent_gen_ = 0;  // GUARDED_BY(mu_): progress up to here is sent
  bool sent_any_ = false;  // GUARDED_BY(mu_)
  bool writing_ = false;
  bool dirty_ = false;
  bool finished_ = false;
  bool finish_after_write_ = false;
};

}  // namespace

grpc::ServerWriteReactor<iv1::ReplicaSummary>* ReplicaLinkImpl::WatchProgress(
    grpc::CallbackServerContext* ctx, const iv1::ProgressRequest* request) {
  if (auto who = callerWith(ctx, *access_, kScopeReplica); !who.ok()) {
    class Denied final : public grpc::ServerWriteReactor<iv1::ReplicaSummary> {
     public:
      explicit Denied(const grpc::Status& s) { Finish(s); }
      void OnDone() override { delete this; }
    };
    TERN_LOG(kWarn, "replica progress stream refused",
             {{"peer", ctx->peer()}, {"error", who.status().toString()}});
    return new Denied(toGrpc(who.status()));
  }
  TERN_LOG(kDebug, "replica progress stream opened", {{"peer", request->replica_id()}});
  return new ProgressReactor(coordinator_, interval_us_);
}

// ---- PeerLinks ----

struct PeerLinks::Link {
  std::string replica_id;
  std::string address;
  std::thread thread;
  std::mutex mu;
  grpc::ClientContext* ctx = nullptr;  // GUARDED_BY(mu): the open call
  bool stop = false;                   // GUARDED_BY(mu)
  std::condition_variable cv;
};

PeerLinks::PeerLinks(Coordinator* coordinator, PeerLinkOptions options)
    : coordinator_(coordinator), options_(std::move(options)) {
  manager_ = std::thread([this] {
    setThreadName("replica-link");
    manage();
  });
}

PeerLinks::~PeerLinks() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  manager_.join();
  for (auto& [address, link] : links_) stopLink(link.get());
}

void PeerLinks::stopLink(Link* link) {
  {
    std::lock_guard lock(link->mu);
    link->stop = true;
    if (link->ctx) link->ctx->TryCancel();
  }
  link->cv.notify_all();
  link->thread.join();
}

namespace {

// "0.0.0.0:8471" (a wildcard listen address) reaches this host, not the peer.
bool dialable(const std::string& address) {
  const std::string host = address.substr(0, address.rfind(':'));
  return !host.empty() && host != "0.0.0.0" && host != "[::]" && host != "::";
}

}  // namespace

void PeerLinks::manage() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    std::set<std::string> wanted;
    std::map<std::string, std::string> ids;
    for (const auto& [id, address] : coordinator_->peerAddresses()) {
      if (!dialable(address)) continue;
      wanted.insert(address);
      ids[address] = id;
    }
    lock.lock();
    for (auto it = links_.begin(); it != links_.end();) {
      if (wanted.count(it->first)) {
        ++it;
        continue;
      }
      stopLink(it->second.get());
      it = links_.erase(it);
    }
    for (const auto& address : wanted) {
      if (links_.count(address)) continue;
      auto link = std::make_unique<Link>();
      link->replica_id = ids[address];
      link->address = address;
      Link* raw = link.get();
      link->thread = std::thread([this, raw] {
        setThreadName("replica-peer");
        run(raw);
      });
      links_[address] = std::move(link);
    }
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms), [&] { return stopping_; });
  }
}

void PeerLinks::run(Link* link) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);  // gRPC's min connect timeout
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(link->address, options_.credentials, args);
  auto stub = iv1::ReplicaLink::NewStub(channel);
  iv1::ProgressRequest request;
  request.set_replica_id(options_.replica_id);
  for (;;) {
    grpc::ClientContext ctx;
    if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
    {
      std::lock_guard lock(link->mu);
      if (link->stop) return;
      link->ctx = &ctx;
    }
    auto reader = stub->WatchProgress(&ctx, request);
    iv1::ReplicaSummary summary;
    while (reader->Read(&summary)) {
      ++received_;
      coordinator_->replicaProgress(fromProto(summary));
    }
    grpc::Status st = reader->Finish();
    std::unique_lock lock(link->mu);
    link->ctx = nullptr;
    if (link->stop) return;
    TERN_LOG(
        kDebug, "replica progress stream ended",
        {{"peer", link->replica_id}, {"address", link->address}, {"error", st.error_message()}});
    link->cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return link->stop; });
  }
}

}  // namespace tern::coordinator
