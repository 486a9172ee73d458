#pragma once
// The edge link's CoordinatorMessage, encoded once and shared by every stream
// it is written to (the transport hands the bytes to gRPC as they are).
//
// A PurgeBatch is the concatenation of its purges' encodings (field 1 of
// PurgeBatch, each with its tag and length), so each purge is encoded once,
// when it is logged, and a batch for any position is built by copying bytes:
// nothing is serialized per stream. The result parses as tern.v1.CoordinatorMessage.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/log/log_records.h"

namespace tern::coordinator {

// An encoded tern.v1.CoordinatorMessage, immutable once built.
using WireMessage = std::shared_ptr<const std::string>;

// `entry` as one element of PurgeBatch.purges: tag, length, tern.v1.Purge.
std::string encodeBatchedPurge(const LogEntry& entry);

// A CoordinatorMessage holding a PurgeBatch of the given encoded purges.
WireMessage encodePurgeBatch(const std::vector<std::string_view>& purges, bool catching_up);

// The other messages: the welcome (protocol 1), a lease (heartbeat_id 0:
// the first, unasked), and the order to soft-purge everything up to `seq`.
WireMessage encodeWelcome(uint64_t head_seq, uint64_t first_retained_seq);
WireMessage encodeLease(uint64_t heartbeat_id, uint32_t lease_ms);
WireMessage encodeResetSoftAll(uint64_t seq);

}  // namespace tern::coordinator
