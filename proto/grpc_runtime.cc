#include "proto/grpc_runtime.h"

#include <absl/synchronization/mutex.h>

namespace tern {

void tuneGrpcRuntime() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::EnableMutexInvariantDebugging(false);
}

void setEdgeLinkFlowControl(grpc::ChannelArguments* args) {
  args->SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args->SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kEdgeLinkWindowBytes);
}

void setEdgeLinkFlowControl(grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kEdgeLinkWindowBytes);
}

}  // namespace tern
