// The purge API's JSON body, from bytes to the log entry: parsePurgeJson
// (Boost.JSON, compiled here with the fuzzer's instrumentation), then
// purgeCallOf and checkPurgeRequest, as the HTTP API and the engine run them. Never a crash; an
// accepted purge has selectors, an edge reads the batch the coordinator sends as exactly those
// selectors (encodeBatchedPurge, then proto::specFromProto), and the log entry survives the
// log's encoding round trip.
#include <boost/json/src.hpp>

#include "coordinator/api/json.h"
#include "coordinator/api/proto_views.h"
#include "coordinator/core/edge_wire.h"
#include "coordinator/core/purge_request.h"
#include "coordinator/log/log_codec.h"
#include "proto/purge_convert.h"

using namespace tern;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto request = coordinator::parsePurgeJson(body);
  if (!request.ok()) {
    if (request.status().message().empty()) __builtin_trap();  // users get a reason
    return 0;
  }
  auto call = coordinator::purgeCallOf(*request);
  if (!call.ok()) {
    if (call.status().message().empty()) __builtin_trap();
    return 0;
  }
  if (!coordinator::checkModeAndWait(*request).isOk()) return 0;
  // Whatever the API read, the engine accepts as it is (or says why not).
  auto checked = coordinator::checkPurgeRequest(*call, coordinator::PurgeLimits{});
  if (!checked.ok()) {
    if (checked.status().message().empty()) __builtin_trap();
    return 0;
  }
  coordinator::LogEntry entry = checked->entry;
  if (entry.selectors.empty()) __builtin_trap();
  entry.seq = 1;
  // What an edge applies is exactly what the coordinator decided.
  const std::string purge = coordinator::encodeBatchedPurge(entry);
  tern::v1::CoordinatorMessage batch;
  if (!batch.ParseFromString(*coordinator::encodePurgeBatch({purge}, false)) ||
      batch.purges().purges_size() != 1)
    __builtin_trap();
  auto spec = proto::specFromProto(batch.purges().purges(0));
  if (!spec.ok() || spec->seq != 1 || spec->mode != entry.mode ||
      spec->selectors != entry.selectors)
    __builtin_trap();
  // The log keeps it as it was.
  auto back = coordinator::decodeLogEntry(coordinator::encodeLogEntry(entry));
  if (!back.ok() || back->selectors != entry.selectors || back->mode != entry.mode ||
      back->idempotency_key != entry.idempotency_key)
    __builtin_trap();
  return 0;
}
