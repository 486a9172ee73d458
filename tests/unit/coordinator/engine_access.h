#pragma once
// The next message the engine has for a stream, decoded as the edge reads
// it (the engine hands out encoded bytes: coordinator/core/edge_wire.h).

#include <cstdint>

#include "coordinator/core/coordinator.h"
#include "tern/v1/edge_link.pb.h"

namespace tern::coordinator::engine_access {

// False when there is none; a message that does not parse fails the test.
inline bool nextMessage(Coordinator& engine, uint64_t session, tern::v1::CoordinatorMessage* out) {
  WireMessage m;
  if (!engine.nextMessage(session, &m)) return false;
  tern::v1::CoordinatorMessage parsed;
  EXPECT_TRUE(parsed.ParseFromString(*m)) << "the engine's message does not parse";
  if (out) *out = std::move(parsed);
  return true;
}

}  // namespace tern::coordinator::engine_access
