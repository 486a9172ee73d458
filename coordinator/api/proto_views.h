#pragma once
// The engine's answers (coordinator/core/views.h) as tern.v1 messages: the
// gRPC service sends them, and the HTTP API renders them as JSON (json.h),
// the same shapes as ternctl's.

#include <vector>

#include "common/result.h"
#include "coordinator/core/views.h"
#include "tern/internal/coordinator_log.pb.h"
#include "tern/v1/purge.pb.h"

namespace tern::coordinator {

// A purge request of either API, its selectors validated and normalized;
// errors are InvalidArgument and say what is wrong. Unknown mode or wait
// values are checkModeAndWait's, asked after the caller's rights (as the
// engine asked before).
Result<PurgeCall> purgeCallOf(const tern::v1::PurgeRequest& request);
Status checkModeAndWait(const tern::v1::PurgeRequest& request);

tern::v1::PurgeResult toProto(const PurgeStatus& status);
std::vector<tern::v1::PurgeResult> toProto(const std::vector<PurgeStatus>& statuses);
tern::v1::ListEdgesResponse toProto(const EdgeList& list);
tern::v1::PurgeState toProto(PurgeState state);
// A replica's summary, as kept in etcd and streamed between replicas.
tern::internal::v1::ReplicaSummary toProto(const ReplicaSummary& summary);
ReplicaSummary fromProto(const tern::internal::v1::ReplicaSummary& summary);
tern::v1::EdgePurgeState toProto(EdgePurgeState state);
tern::v1::EdgeState toProto(EdgeState state);

}  // namespace tern::coordinator
