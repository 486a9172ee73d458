#include "coordinator/etcd/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>

#include "common/log.h"
#include "common/thread_name.h"

namespace tern::coordinator::etcd {

std::string prefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  // A member that is back must be used again soon: short reconnect backoff.
  // gRPC takes "min reconnect backoff" as the least time a connection
  // attempt is given: room for the handshake to a distant member.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  for (const auto& e : options_.endpoints) {
    Member m;
    m.endpoint = e;
    m.channel = grpc::CreateCustomChannel(e, grpc::InsecureChannelCredentials(), args);
    m.kv = pb::KV::NewStub(m.channel);
    m.lease = pb::Lease::NewStub(m.channel);
    m.watch = pb::Watch::NewStub(m.channel);
    m.maintenance = pb::Maintenance::NewStub(m.channel);
    members_.push_back(std::move(m));
  }
}

EtcdClient::~EtcdClient() = default;

namespace {

bool retryable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

Status fromGrpc(const grpc::Status& s, const std::string& what) {
  std::string msg = "etcd " + what + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return Status::ok();
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Status::invalidArgument(msg);
    case grpc::StatusCode::NOT_FOUND:
      return Status::notFound(msg);
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status::timeout(msg);
    default:
      return Status::unavailable(msg);
  }
}

}  // namespace

template <class Fn>
Status EtcdClient::call(const char* what, Fn&& fn, bool* maybe_applied) {
  if (members_.empty()) return Status::unavailable("etcd: no endpoints configured");
  grpc::Status last;
  std::string tried;
  using Clock = std::chrono::steady_clock;
  const auto give_up = Clock::now() + std::chrono::milliseconds(options_.retry_ms);
  size_t at = current();
  for (size_t attempt = 0;; ++attempt) {
    if (attempt > 0 && attempt % members_.size() == 0) {
      // Once around the members without an answer (a leader election, a
      // member restarting): keep trying until the retry time is over.
      if (Clock::now() + std::chrono::milliseconds(50) >= give_up) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Member& m = members_[at];
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::max(std::chrono::milliseconds(100),
                              std::min(std::chrono::milliseconds(options_.timeout_ms), left)));
    grpc::Status s = fn(m, ctx);
    if (s.ok() || !retryable(s)) {
      current_ = at;
      return fromGrpc(s, what);
    }
    // DEADLINE_EXCEEDED after the request went out, or UNAVAILABLE from a
    // member that had it (not a refused connection): it may be committed.
    if (maybe_applied && (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                          s.error_message().find("connect") == std::string::npos))
      *maybe_applied = true;
    last = s;
    if (attempt < members_.size()) tried += (tried.empty() ? "" : ", ") + m.endpoint;
    at = (at + 1) % members_.size();
  }
  return Status::unavailable(std::string("etcd ") + what + ": no member answered (" + tried +
                             "): " + last.error_message());
}

Result<pb::RangeResponse> EtcdClient::range(const pb::RangeRequest& request) {
  pb::RangeResponse out;
  TERN_RETURN_IF_ERROR(call("range", [&](Member& m, grpc::ClientContext& ctx) {
    out.Clear();
    return m.kv->Range(&ctx, request, &out);
  }));
  return out;
}

Result<pb::TxnResponse> EtcdClient::txn(const pb::TxnRequest& request, bool* maybe_applied) {
  pb::TxnResponse out;
  TERN_RETURN_IF_ERROR(call(
      "txn",
      [&](Member& m, grpc::ClientContext& ctx) {
        out.Clear();
        return m.kv->Txn(&ctx, request, &out);
      },
      maybe_applied));
  return out;
}

Result<pb::PutResponse> EtcdClient::put(const pb::PutRequest& request) {
  pb::PutResponse out;
  TERN_RETURN_IF_ERROR(call("put", [&](Member& m, grpc::ClientContext& ctx) {
    out.Clear();
    return m.kv->Put(&ctx, request, &out);
  }));
  return out;
}

Result<pb::DeleteRangeResponse> EtcdClient::deleteRange(const pb::DeleteRangeRequest& request) {
  pb::DeleteRangeResponse out;
  TERN_RETURN_IF_ERROR(call("delete", [&](Member& m, grpc::ClientContext& ctx) {
    out.Clear();
    return m.kv->DeleteRange(&ctx, request, &out);
  }));
  return out;
}

Status EtcdClient::compact(int64_t revision) {
  pb::CompactionRequest req;
  req.set_revision(revision);
  pb::CompactionResponse out;
  return call("compact",
              [&](Member& m, grpc::ClientContext& ctx) { return m.kv->Compact(&ctx, req, &out); });
}

Result<int64_t> EtcdClient::leaseGrant(int64_t ttl_s) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl_s);
  pb::LeaseGrantResponse out;
  TERN_RETURN_IF_ERROR(call("lease grant", [&](Member& m, grpc::ClientContext& ctx) {
    out.Clear();
    return m.lease->LeaseGrant(&ctx, req, &out);
  }));
  if (!out.error().empty()) return Status::unavailable("etcd lease grant: " + out.error());
  return out.id();
}

Status EtcdClient::leaseRevoke(int64_t id) {
  pb::LeaseRevokeRequest req;
  req.set_id(id);
  pb::LeaseRevokeResponse out;
  return call("lease revoke", [&](Member& m, grpc::ClientContext& ctx) {
    return m.lease->LeaseRevoke(&ctx, req, &out);
  });
}

Result<int64_t> EtcdClient::leaseKeepAlive(int64_t id) {
  pb::LeaseKeepAliveResponse out;
  TERN_RETURN_IF_ERROR(call("lease keep-alive", [&](Member& m, grpc::ClientContext& ctx) {
    auto stream = m.lease->LeaseKeepAlive(&ctx);
    pb::LeaseKeepAliveRequest req;
    req.set_id(id);
    if (!stream->Write(req) || !stream->Read(&out)) return stream->Finish();
    stream->WritesDone();
    ctx.TryCancel();
    (void)stream->Finish();
    return grpc::Status::OK;
  }));
  if (out.ttl() <= 0) return Status::notFound("etcd lease " + std::to_string(id) + " expired");
  return out.ttl();
}

std::vector<Result<pb::StatusResponse>> EtcdClient::memberStatus() {
  std::vector<Result<pb::StatusResponse>> out;
  for (auto& m : members_) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.timeout_ms));
    pb::StatusResponse r;
    grpc::Status s = m.maintenance->Status(&ctx, pb::StatusRequest(), &r);
    if (s.ok()) {
      out.emplace_back(std::move(r));
    } else {
      out.emplace_back(fromGrpc(s, "status of " + m.endpoint));
    }
  }
  return out;
}

// ---- watch ----

std::unique_ptr<EtcdClient::Watcher> EtcdClient::watch(
    const std::string& key, const std::string& range_end, int64_t start_revision,
    std::function<void(const pb::WatchResponse&)> on_events,
    std::function<void(int64_t)> on_compacted) {
  std::unique_ptr<Watcher> w(new Watcher());
  w->client_ = this;
  w->key_ = key;
  w->range_end_ = range_end;
  w->on_events_ = std::move(on_events);
  w->on_compacted_ = std::move(on_compacted);
  w->revision_ = start_revision > 0 ? start_revision - 1 : 0;
  w->thread_ = std::thread([p = w.get()] {
    setThreadName("etcd-watch");
    p->run();
  });
  return w;
}

EtcdClient::Watcher::~Watcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (context_) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void EtcdClient::Watcher::run() {
  size_t at = client_->current();
  int failures = 0;
  while (true) {
    auto ctx = std::make_shared<grpc::ClientContext>();
    // A member cut off from the others ends the watch (no leader) instead of
    // going silent: it resumes on another member.
    ctx->AddMetadata("hasleader", "true");
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      context_ = ctx;
    }
    Member& m = client_->members_[at % client_->members_.size()];
    auto stream = m.watch->Watch(ctx.get());
    pb::WatchRequest req;
    auto* create = req.mutable_create_request();
    create->set_key(key_);
    create->set_range_end(range_end_);
    // Resume after what was delivered; from "now" on a first start at 0.
    const int64_t rev = revision_.load();
    if (rev > 0) create->set_start_revision(rev + 1);
    create->set_progress_notify(true);
    bool ok = stream->Write(req);
    pb::WatchResponse resp;
    bool compacted = false;
    while (ok && stream->Read(&resp)) {
      failures = 0;
      if (resp.compact_revision() > 0) {
        compacted = true;
        break;
      }
      if (resp.canceled()) break;
      if (resp.created() && resp.events_size() == 0) {
        if (revision_.load() == 0) revision_ = resp.header().revision();
        continue;
      }
      if (resp.events_size() > 0) {
        on_events_(resp);
        revision_ = resp.events(resp.events_size() - 1).kv().mod_revision();
      } else if (resp.header().revision() > revision_.load()) {
        revision_ = resp.header().revision();  // progress notification
      }
    }
    ctx->TryCancel();
    grpc::Status st = stream->Finish();
    {
      std::lock_guard lock(mu_);
      context_.reset();
      if (stopping_) return;
    }
    if (compacted) {
      TERN_LOG(kWarn, "etcd watch start revision was compacted",
               {{"revision", std::to_string(revision_.load() + 1)},
                {"compact_revision", std::to_string(resp.compact_revision())}});
      on_compacted_(resp.compact_revision());
      return;
    }
    // The member failed or closed the stream: resume on the next one.
    ++at;
    if (++failures >= static_cast<int>(client_->members_.size())) {
      failures = 0;  // every member failed: pause before the next round
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    TERN_LOG(kDebug, "etcd watch resuming", {{"error", st.error_message()}});
  }
}

}  // namespace tern::coordinator::etcd
