#pragma once
// The edge link's CoordinatorMessage, encoded once and shared by every stream
// it is written to (the transport hands the bytes to gRPC as they are).
//
// A PurgeBatch is the concatenation of its purges' encodings (field 1 of
// PurgeBatch, each with its tag and length), so each purge is encoded once,
// when it is logged, and a batch for any position is built by copying bytes:
// nothing is serialized per stream. The result parses as tern.v1.CoordinatorMessage.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/log/purge_log.h"
#include "tern/v1/edge_link.pb.h"

namespace tern::coordinator {

// An encoded tern.v1.CoordinatorMessage, immutable once built.
using WireMessage = std::shared_ptr<const std::string>;

// `entry` as one element of PurgeBatch.purges: tag, length, tern.v1.Purge.
std::string encodeBatchedPurge(const LogEntry& entry);

// A CoordinatorMessage holding a PurgeBatch of the given encoded purges.
WireMessage encodePurgeBatch(const std::vector<std::string_view>& purges, bool catching_up);

// Any other message (welcome, lease, reset).
WireMessage encodeMessage(const tern::v1::CoordinatorMessage& message);

}  // namespace tern::coordinator
