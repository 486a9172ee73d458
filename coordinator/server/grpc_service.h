#pragma once
// The coordinator's gRPC services (tern.v1.PurgeService and tern.v1.EdgeLink)
// on the callback API: no thread waits for a purge to complete or for an
// edge to send; streams write one message at a time, pulled from the engine.

#include <memory>
#include <string>
#include <vector>

#include "coordinator/api/access.h"
#include "coordinator/core/coordinator.h"
#include "tern/v1/edge_link.grpc.pb.h"
#include "tern/v1/purge.grpc.pb.h"

namespace tern::coordinator {

class PurgeServiceImpl final : public tern::v1::PurgeService::CallbackService {
 public:
  PurgeServiceImpl(Coordinator* coordinator, const Access* access)
      : coordinator_(coordinator), access_(access) {}

  grpc::ServerUnaryReactor* Purge(grpc::CallbackServerContext* ctx,
                                  const tern::v1::PurgeRequest* request,
                                  tern::v1::PurgeResult* response) override;
  grpc::ServerUnaryReactor* GetPurge(grpc::CallbackServerContext* ctx,
                                     const tern::v1::GetPurgeRequest* request,
                                     tern::v1::PurgeResult* response) override;
  grpc::ServerUnaryReactor* ListPurges(grpc::CallbackServerContext* ctx,
                                       const tern::v1::ListPurgesRequest* request,
                                       tern::v1::ListPurgesResponse* response) override;
  grpc::ServerWriteReactor<tern::v1::PurgeResult>* WatchPurges(
      grpc::CallbackServerContext* ctx, const tern::v1::WatchPurgesRequest* request) override;
  grpc::ServerUnaryReactor* ListEdges(grpc::CallbackServerContext* ctx,
                                      const tern::v1::ListEdgesRequest* request,
                                      tern::v1::ListEdgesResponse* response) override;

 private:
  Coordinator* coordinator_;
  const Access* access_;
};

// The edge link takes its messages as bytes: what it writes is encoded by
// the engine once for every stream (edge_wire.h), and each EdgeMessage is
// parsed here.
//
// Who may join: with `require_client_cert` (mTLS, grpc_tls.client_ca), an
// edge whose verified client certificate names its edge id (common name or
// a subject alternative name); otherwise a bearer token with the edge scope
// whose edge_ids allow the id in its Hello.
class EdgeLinkImpl final
    : public tern::v1::EdgeLink::WithRawCallbackMethod_Connect<tern::v1::EdgeLink::Service> {
 public:
  EdgeLinkImpl(Coordinator* coordinator, const Access* access, bool require_client_cert = false)
      : coordinator_(coordinator), access_(access), require_client_cert_(require_client_cert) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  Coordinator* coordinator_;
  const Access* access_;
  bool require_client_cert_;
};

// The names of the caller's verified client certificate (mTLS): its subject
// alternative names, or its common name when it has none. Empty without one.
std::vector<std::string> certificateNames(grpc::CallbackServerContext* ctx);
// Maps our status codes to gRPC's.
grpc::Status toGrpc(const Status& status);
// The caller of a call, from its "authorization" metadata: Unauthenticated
// without a known credential, PermissionDenied without `scope` (for kScopeRead,
// a purge credential will do).
Result<Principal> callerWith(grpc::CallbackServerContext* ctx, const Access& access, Scope scope);

}  // namespace tern::coordinator
