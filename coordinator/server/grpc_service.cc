#include "coordinator/server/grpc_service.h"

#include <algorithm>
#include <deque>
#include <mutex>
#include <optional>

#include "common/log.h"
#include "coordinator/api/proto_views.h"
#include "proto/purge_convert.h"

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
    case StatusCode::kPermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED, s.message()};
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

namespace {

std::string_view metadata(grpc::CallbackServerContext* ctx, std::string_view key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

std::string_view scopeName(Scope s) {
  switch (s) {
    case kScopePurge:
      return "purge";
    case kScopeRead:
      return "read";
    case kScopeEdge:
      return "edge";
    case kScopeReplica:
      return "replica";
    default:
      return "all";
  }
}

}  // namespace

std::vector<std::string> certificateNames(grpc::CallbackServerContext* ctx) {
  std::vector<std::string> names;
  auto auth = ctx->auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return names;
  // The subject alternative names when there are any, else the common name
  // (RFC 6125 6.4.4).
  for (const char* property : {"x509_subject_alternative_name", "x509_common_name"}) {
    for (const auto& v : auth->FindPropertyValues(property)) names.emplace_back(v.data(), v.size());
    if (!names.empty()) break;
  }
  return names;
}

Result<Principal> callerWith(grpc::CallbackServerContext* ctx, const Access& access, Scope scope) {
  TERN_ASSIGN_OR_RETURN(Principal who, access.authenticate(metadata(ctx, "authorization")));
  const bool ok = scope == kScopeRead ? who.mayRead() : who.has(scope);
  if (!ok)
    return Status::permissionDenied("credential '" + who.name + "' lacks the " +
                                    std::string(scopeName(scope)) + " scope");
  return who;
}

grpc::ServerUnaryReactor* PurgeServiceImpl::Purge(grpc::CallbackServerContext* ctx,
                                                  const v1::PurgeRequest* request,
                                                  v1::PurgeResult* response) {
  auto* reactor = ctx->DefaultReactor();
  // Any credential gets as far as checkPurge: an edge's may soft-purge tags.
  auto who = access_->authenticate(metadata(ctx, "authorization"));
  if (!who.ok() && metadata(ctx, "authorization").empty()) {
    // An edge known by its client certificate (mTLS), asking on its own
    // behalf (Cache-Group-Invalidation): the edge scope, nothing more.
    if (auto names = certificateNames(ctx); !names.empty())
      who = Principal{"cert:" + names.front(), kScopeEdge, {}, {}, {}};
  }
  Status allowed = who.ok() ? Status::ok() : who.status();
  Result<PurgeCall> call = Status::invalidArgument("not read");
  if (allowed.isOk()) {
    call = purgeCallOf(*request);
    if (!call.ok()) {
      reactor->Finish(toGrpc(call.status()));
      return reactor;
    }
    allowed = checkPurge(*who, call->mode, call->selectors);
    if (allowed.isOk()) {
      if (Status s = checkModeAndWait(*request); !s.isOk()) {
        reactor->Finish(toGrpc(s));
        return reactor;
      }
    }
  }
  if (!allowed.isOk()) {
    TERN_LOG(
        kWarn, "audit: purge refused",
        {{"by", who.ok() ? who->name : "-"}, {"from", ctx->peer()}, {"reason", allowed.message()}});
    reactor->Finish(toGrpc(allowed));
    return reactor;
  }
  Requester requester{who->name, ctx->peer()};
  // A PURGE through an edge: the edge names the client it forwards.
  // (What the caller says, not verified: recorded as its claim.)
  if (auto client = metadata(ctx, "tern-forwarded-for"); !client.empty())
    requester.address += " for " + std::string(client.substr(0, 128));
  coordinator_->purge(*call, requester, [this, ctx, reactor, response](Result<PurgeStatus> r) {
    if (r.ok()) {
      *response = toProto(*r);
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
  if (auto who = callerWith(ctx, *access_, kScopeRead); !who.ok()) {
    reactor->Finish(toGrpc(who.status()));
    return reactor;
  }
  auto r = coordinator_->getPurge(request->seq());
  if (r.ok()) *response = toProto(*r);
  reactor->Finish(r.ok() ? grpc::Status::OK : toGrpc(r.status()));
  return reactor;
}

grpc::ServerUnaryReactor* PurgeServiceImpl::ListPurges(grpc::CallbackServerContext* ctx,
                                                       const v1::ListPurgesRequest* request,
                                                       v1::ListPurgesResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (auto who = callerWith(ctx, *access_, kScopeRead); !who.ok()) {
    reactor->Finish(toGrpc(who.status()));
    return reactor;
  }
  if (request->limit() > 1000) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "limit: at most 1000"});
    return reactor;
  }
  for (const auto& r : coordinator_->recentPurges(request->limit() ? request->limit() : 50))
    *response->add_purges() = toProto(r);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* PurgeServiceImpl::ListEdges(grpc::CallbackServerContext* ctx,
                                                      const v1::ListEdgesRequest*,
                                                      v1::ListEdgesResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (auto who = callerWith(ctx, *access_, kScopeRead); !who.ok()) {
    reactor->Finish(toGrpc(who.status()));
    return reactor;
  }
  *response = toProto(coordinator_->listEdges());
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
    id_ = coordinator_->watch(from_seq, [h = handle_](const PurgeStatus& r) {
      std::lock_guard lock(h->mu);
      if (h->reactor) h->reactor->push(toProto(r));
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
  void push(v1::PurgeResult r) {
    std::lock_guard lock(mu_);
    if (finished_) return;
    if (queue_.size() >= 10000)
      return finishLocked({grpc::StatusCode::RESOURCE_EXHAUSTED, "watcher too slow"});
    queue_.push_back(std::move(r));
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
  if (auto who = callerWith(ctx, *access_, kScopeRead); !who.ok()) {
    class Denied final : public grpc::ServerWriteReactor<v1::PurgeResult> {
     public:
      explicit Denied(const grpc::Status& s) { Finish(s); }
      void OnDone() override { delete this; }
    };
    return new Denied(toGrpc(who.status()));
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
  // `who` may join as the edge ids it allows; with `cert_ids`, as one of
  // those exactly (the names of its verified client certificate).
  EdgeReactor(Coordinator* coordinator, std::string peer, Principal who,
              std::optional<std::vector<std::string>> cert_ids)
      : coordinator_(coordinator),
        peer_(std::move(peer)),
        who_(std::move(who)),
        cert_ids_(std::move(cert_ids)) {
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
      const std::string& edge_id = in_.hello().edge_id();
      const bool may_join =
          cert_ids_ ? std::find(cert_ids_->begin(), cert_ids_->end(), edge_id) != cert_ids_->end()
                    : who_.mayJoinAs(edge_id);
      if (!may_join) {
        const std::string why =
            "credential '" + who_.name + "' may not join as edge '" + edge_id.substr(0, 128) + "'";
        TERN_LOG(kWarn, "edge stream refused", {{"peer", peer_}, {"error", why}});
        std::lock_guard lock(mu_);
        return finishLocked({grpc::StatusCode::PERMISSION_DENIED, why});
      }
      const v1::Hello& h = in_.hello();
      auto sid = coordinator_->attach({h.edge_id(), h.incarnation(), h.applied_seq(), h.address(),
                                       h.protocol_version(), h.stream_opened_ms()},
                                      handle_);
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
    } else if (in_.has_heartbeat()) {
      coordinator_->heartbeat(session_, {in_.heartbeat().id(), in_.heartbeat().applied_seq()});
    } else if (in_.has_ack()) {
      coordinator_->acked(session_, {in_.ack().applied_seq(), in_.ack().apply_time_us()});
    } else {
      coordinator_->unexpected(session_);
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
  Principal who_;
  std::optional<std::vector<std::string>> cert_ids_;
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
  class Denied final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit Denied(const grpc::Status& s) { Finish(s); }
    void OnDone() override { delete this; }
  };
  if (require_client_cert_) {
    // mTLS: the certificate (verified against grpc_tls.client_ca by the
    // handshake) is the edge's identity; a token does not stand in for it.
    std::vector<std::string> ids = certificateNames(ctx);
    if (ids.empty()) {
      TERN_LOG(kWarn, "edge stream refused: no client certificate", {{"peer", ctx->peer()}});
      return new Denied({grpc::StatusCode::UNAUTHENTICATED,
                         "the edge link needs a client certificate naming the edge id"});
    }
    Principal who{"cert:" + ids.front(), kScopeEdge, {}, {}, {}};
    return new EdgeReactor(coordinator_, ctx->peer(), std::move(who), std::move(ids));
  }
  auto who = callerWith(ctx, *access_, kScopeEdge);
  if (!who.ok()) {
    TERN_LOG(kWarn, "edge stream refused",
             {{"peer", ctx->peer()}, {"error", who.status().toString()}});
    return new Denied(toGrpc(who.status()));
  }
  return new EdgeReactor(coordinator_, ctx->peer(), std::move(*who), std::nullopt);
}

}  // namespace tern::coordinator
