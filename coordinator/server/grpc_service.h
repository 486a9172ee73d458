#pragma once
// The coordinator's gRPC services (tern.v1.PurgeService and tern.v1.EdgeLink)
// on the callback API: no thread waits for a purge to complete or for an
// edge to send; streams write one message at a time, pulled from the engine.

#include <memory>
#include <string>
#include <vector>

#include "coordinator/api/auth.h"
#include "coordinator/core/coordinator.h"
#include "tern/v1/edge_link.grpc.pb.h"
#include "tern/v1/purge.grpc.pb.h"

namespace tern::coordinator {

class PurgeServiceImpl final : public tern::v1::PurgeService::CallbackService {
 public:
  PurgeServiceImpl(Coordinator* coordinator, const TokenSet* tokens)
      : coordinator_(coordinator), tokens_(tokens) {}

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
  const TokenSet* tokens_;
};

// The edge link takes its messages as bytes: what it writes is encoded by
// the engine once for every stream (edge_wire.h), and each EdgeMessage is
// parsed here.
class EdgeLinkImpl final
    : public tern::v1::EdgeLink::WithRawCallbackMethod_Connect<tern::v1::EdgeLink::Service> {
 public:
  EdgeLinkImpl(Coordinator* coordinator, const TokenSet* tokens)
      : coordinator_(coordinator), tokens_(tokens) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  Coordinator* coordinator_;
  const TokenSet* tokens_;
};

// Maps our status codes to gRPC's.
grpc::Status toGrpc(const Status& status);
// The call carries a bearer token of `tokens` (or the APIs are open).
bool authorized(grpc::CallbackServerContext* ctx, const TokenSet* tokens);

}  // namespace tern::coordinator
