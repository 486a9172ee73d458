#include "coordinator/server/grpc_service.h"

#include <deque>
#include <mutex>

#include "common/log.h"

namespace tern::coordinator {

namespace v1 = tern::v1;

grpc::Status toGrpc(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return grpc::Status::OK;
    case StatusCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, s.message()};
    case StatusCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, s.message()};
    case StatusCode::kResourceExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, s.message()};
    case StatusCode::kUnauthenticated:
      return {grpc::StatusCode::UNAUTHENTICATED, s.message()};
    case StatusCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, s.message()};
    case StatusCode::kTimeout:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, s.message()};
    case StatusCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, s.message()};
    default:
      return {grpc::StatusCode::INTERNAL, s.message()};
  }
}

bool authorized(grpc::CallbackServerContext* ctx, const TokenSet* tokens) {
  if (tokens->open()) return true;
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return false;
  return tokens->allows(std::string_view(it->second.data(), it->second.size()));
}

namespace {

const grpc::Status kUnauthenticated(grpc::StatusCode::UNAUTHENTICATED,
                                    "missing or wrong bearer token");

}  // namespace

grpc::ServerUnaryReactor* PurgeServiceImpl::Purge(grpc::CallbackServerContext* ctx,
                                                  const v1::PurgeRequest* request,
                                                  v1::PurgeResult* response) {
  auto* reactor = ctx->DefaultReactor();
  if (!authorized(ctx, tokens_)) {
    reactor->Finish(kUnauthenticated);
    return reactor;
  }
  coordinator_->purge(*request, [this, ctx, reactor, response](Result<v1::PurgeResult> r) {
    if (r.ok()) {
      *response = std::move(*r);
      reactor->Finish(grpc::Status::OK);
      return;
    }
    if (r.status().code() == StatusCode::kResourceExhausted) {
      ctx->AddTrailingMetadata("retry-after-ms", std::to_string(coordinator_->retryAfterMs()));
    }
    reactor->Finish(toGrpc(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* PurgeServiceImpl::GetPurge(grpc::CallbackServerContext* ctx,
                                                     const v1::GetPurgeRequest* request,
                                                     v1::PurgeResult* response) {
  auto* reactor = ctx->DefaultReactor();
  if (!authorized(ctx, tokens_)) {
    reactor->Finish(kUnauthenticated);
    return reactor;
  }
  auto r = coordinator_->getPurge(request->seq());
  if (r.ok()) *response = std::move(*r);
  reactor->Finish(r.ok() ? grpc::Status::OK : toGrpc(r.status()));
  return reactor;
}

grpc::ServerUnaryReactor* PurgeServiceImpl::ListPurges(grpc::CallbackServerContext* ctx,
                                                       const v1::ListPurgesRequest* request,
                                                       v1::ListPurgesResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (!authorized(ctx, tokens_)) {
    reactor->Finish(kUnauthenticated);
    return reactor;
  }
  if (request->limit() > 1000) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "limit: at most 1000"});
    return reactor;
  }
  for (auto& r : coordinator_->recentPurges(request->limit() ? request->limit() : 50))
    *response->add_purges() = std::move(r);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* PurgeServiceImpl::ListEdges(grpc::CallbackServerContext* ctx,
                                                      const v1::ListEdgesRequest*,
                                                      v1::ListEdgesResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (!authorized(ctx, tokens_)) {
    reactor->Finish(kUnauthenticated);
    return reactor;
  }
  *response = coordinator_->listEdges();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {

// Streams completed purges to one watcher, one write at a time. The engine's
// callback holds a shared handle, so a result delivered while the call ends
// never touches a deleted reactor.
class WatchReactor final : public grpc::ServerWriteReactor<v1::PurgeResult> {
 public:
  struct Handle {
    std::mutex mu;
    WatchReactor* reactor = nullptr;
  };

  WatchReactor(Coordinator* coordinator, uint64_t from_seq)
      : coordinator_(coordinator), handle_(std::make_shared<Handle>()) {
    handle_->reactor = this;
    id_ = coordinator_->watch(from_seq, [h = handle_](const v1::PurgeResult& r) {
      std::lock_guard lock(h->mu);
      if (h->reactor) h->reactor->push(r);
    });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (finish_after_write_) {
      finish_after_write_ = false;
      Finish(pending_finish_);
      return;
    }
    if (!ok) return finishLocked(grpc::Status::CANCELLED);
    queue_.pop_front();
    writeLocked();
  }
  void OnCancel() override {
    std::lock_guard lock(mu_);
    finishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    coordinator_->unwatch(id_);
    {
      std::lock_guard lock(handle_->mu);
      handle_->reactor = nullptr;
    }
    delete this;
  }

 private:
  void push(const v1::PurgeResult& r) {
    std::lock_guard lock(mu_);
    if (finished_) return;
    if (queue_.size() >= 10000)
      return finishLocked({grpc::StatusCode::RESOURCE_EXHAUSTED, "watcher too slow"});
    queue_.push_back(r);
    writeLocked();
  }
  void writeLocked() {
    if (writing_ || finished_ || queue_.empty()) return;
    writing_ = true;
    StartWrite(&queue_.front());
  }
  void finishLocked(const grpc::Status& s) {
    if (finished_) return;
    finished_ = true;
    if (!writing_)
      Finish(s);
    else
      pending_finish_ = s, finish_after_write_ = true;
  }

  Coordinator* coordinator_;
  std::shared_ptr<Handle> handle_;
  uint64_t id_ = 0;
  std::mutex mu_;
  std::deque<v1::PurgeResult> queue_;
  bool writing_ = false;
  bool finished_ = false;
  bool finish_after_write_ = false;
  grpc::Status pending_finish_;
};

}  // namespace

grpc::ServerWriteReactor<v1::PurgeResult>* PurgeServiceImpl::WatchPurges(
    grpc::CallbackServerContext* ctx, const v1::WatchPurgesRequest* request) {
  if (!authorized(ctx, tokens_)) {
    class Denied final : public grpc::ServerWriteReactor<v1::PurgeResult> {
     public:
      Denied() { Finish(kUnauthenticated); }
      void OnDone() override { delete this; }
    };
    return new Denied();
  }
  return new WatchReactor(coordinator_, request->from_seq());
}

namespace {

class EdgeReactor;

// What the engine holds: a handle that outlives the reactor.
class StreamHandle final : public EdgeStream {
 public:
  explicit StreamHandle(EdgeReactor* r) : reactor_(r) {}
  void wake() override;
  void close(const std::string& reason) override;
  void release() {
    std::lock_guard lock(mu_);
    reactor_ = nullptr;
  }

 private:
  std::mutex mu_;
  EdgeReactor* reactor_;
};

// A write's bytes, shared with the engine (and every other stream writing
// the same batch) until gRPC is done with them.
grpc::ByteBuffer wireBuffer(const WireMessage& m) {
  auto* keep = new WireMessage(m);
  grpc::Slice slice(
      const_cast<char*>(m->data()), m->size(), [](void* p) { delete static_cast<WireMessage*>(p); },
      keep);
  return grpc::ByteBuffer(&slice, 1);
}

class EdgeReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  EdgeReactor(Coordinator* coordinator, std::string peer)
      : coordinator_(coordinator), peer_(std::move(peer)) {
    handle_ = std::make_shared<StreamHandle>(this);
    StartRead(&in_buf_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The edge closed its side or the stream broke.
      detach();
      std::lock_guard lock(mu_);
      finishLocked(grpc::Status::OK);
      return;
    }
    if (grpc::Status st = grpc::SerializationTraits<v1::EdgeMessage>::Deserialize(&in_buf_, &in_);
        !st.ok()) {
      TERN_LOG(kWarn, "edge stream: message does not parse",
               {{"peer", peer_}, {"error", st.error_message()}});
      detach();
      std::lock_guard lock(mu_);
      return finishLocked({grpc::StatusCode::INVALID_ARGUMENT, "message does not parse"});
    }
    if (session_ == 0) {
      if (in_.msg_case() != v1::EdgeMessage::kHello) {
        std::lock_guard lock(mu_);
        return finishLocked({grpc::StatusCode::INVALID_ARGUMENT, "first message must be hello"});
      }
      auto sid = coordinator_->attach(in_.hello(), handle_);
      if (!sid.ok()) {
        TERN_LOG(kWarn, "edge stream refused",
                 {{"peer", peer_}, {"error", sid.status().toString()}});
        std::lock_guard lock(mu_);
        return finishLocked(toGrpc(sid.status()));
      }
      {
        std::lock_guard lock(mu_);
        session_ = *sid;
      }
      pump();
    } else {
      coordinator_->onMessage(session_, in_);
    }
    StartRead(&in_buf_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) {
        finishLocked(grpc::Status::CANCELLED);
        return;
      }
      if (finish_pending_) {
        finished_ = false;
        finishLocked(finish_status_);
        return;
      }
    }
    pump();
  }

  void OnCancel() override { detach(); }

  void OnDone() override {
    detach();
    handle_->release();
    delete this;
  }

  // Writes the next message when none is in flight.
  void pump() {
    std::lock_guard lock(mu_);
    if (writing_ || finished_ || session_ == 0) return;
    WireMessage m;
    if (!coordinator_->nextMessage(session_, &m)) return;
    writing_ = true;
    out_ = wireBuffer(m);
    StartWrite(&out_);
  }

  void close(const std::string& reason) {
    std::lock_guard lock(mu_);
    finishLocked({grpc::StatusCode::UNAVAILABLE, reason});
  }

 private:
  void detach() {
    uint64_t sid;
    {
      std::lock_guard lock(mu_);
      sid = session_;
      detached_ = true;
    }
    if (sid != 0) coordinator_->detach(sid);
  }
  void finishLocked(const grpc::Status& s) {
    if (finished_) return;
    finished_ = true;
    if (writing_) {
      // Finish once the write in flight completes.
      finish_pending_ = true;
      finish_status_ = s;
      return;
    }
    finish_pending_ = false;
    Finish(s);
  }

  Coordinator* coordinator_;
  std::string peer_;
  std::shared_ptr<StreamHandle> handle_;
  grpc::ByteBuffer in_buf_;
  v1::EdgeMessage in_;
  grpc::ByteBuffer out_;  // alive until OnWriteDone
  std::mutex mu_;
  uint64_t session_ = 0;
  bool writing_ = false;
  bool finished_ = false;
  bool finish_pending_ = false;
  bool detached_ = false;
  grpc::Status finish_status_;
};

void StreamHandle::wake() {
  std::lock_guard lock(mu_);
  if (reactor_) reactor_->pump();
}

void StreamHandle::close(const std::string& reason) {
  std::lock_guard lock(mu_);
  if (reactor_) reactor_->close(reason);
}

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* EdgeLinkImpl::Connect(
    grpc::CallbackServerContext* ctx) {
  if (!authorized(ctx, tokens_)) {
    class Denied final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
     public:
      Denied() { Finish(kUnauthenticated); }
      void OnDone() override { delete this; }
    };
    TERN_LOG(kWarn, "edge stream refused: bad token", {{"peer", ctx->peer()}});
    return new Denied();
  }
  return new EdgeReactor(coordinator_, ctx->peer());
}

}  // namespace tern::coordinator
