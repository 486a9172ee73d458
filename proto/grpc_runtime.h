#pragma once
// Process-wide gRPC settings shared by the coordinator, the edge's agent and
// the tools that speak the edge link.

#include <grpcpp/grpcpp.h>

namespace tern {

// Called first in main() of every process that speaks gRPC. Debian's Abseil
// is built without NDEBUG, so absl::Mutex (which gRPC uses for every lock)
// runs its debug deadlock detector, and each lock also takes a process-wide
// graph lock. Switched off here.
void tuneGrpcRuntime();

// HTTP/2 flow control on the edge link. gRPC's default probes the
// bandwidth-delay product with a PING on every burst of data it receives and
// resizes its windows from the answers; on a link of many small messages
// (one purge batch out, one ack back, per edge) that is a PING, its answer
// and a WINDOW_UPDATE per message: three extra sends for each one useful.
// The link runs fixed windows instead, large enough that a catch-up batch
// over a distant link is not held back (4 MiB in flight per stream, as
// grpc-java's and grpc-go's fixed windows).
inline constexpr int kEdgeLinkWindowBytes = 4 << 20;
void setEdgeLinkFlowControl(grpc::ChannelArguments* args);  // the edge (client) side
void setEdgeLinkFlowControl(grpc::ServerBuilder* builder);  // the coordinator (server) side

}  // namespace tern
