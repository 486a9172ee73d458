// The purge API's JSON body, from bytes to the log entry: parsePurgeJson
// (Boost.JSON, compiled here with the fuzzer's instrumentation), then
// purgeCallOf and checkPurgeRequest, as the HTTP API and the engine run them. Never a crash; an
// accepted purge has selectors, an edge reads its log entry back as exactly those selectors
// (proto::specFromProto), and the entry survives a protobuf round trip.
#include <boost/json/src.hpp>

#include "coordinator/api/json.h"
#include "coordinator/api/proto_views.h"
#include "coordinator/core/purge_request.h"
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
  const auto& entry = checked->entry;
  if (entry.selectors_size() == 0) __builtin_trap();
  // What an edge applies is exactly what the coordinator decided.
  tern::v1::Purge logged;
  logged.set_seq(1);
  logged.set_mode(entry.mode());
  *logged.mutable_selectors() = entry.selectors();
  auto spec = proto::specFromProto(logged);
  if (!spec.ok() || spec->selectors.size() != static_cast<size_t>(entry.selectors_size()))
    __builtin_trap();
  for (int i = 0; i < entry.selectors_size(); ++i) {
    if (proto::toProto(spec->selectors[static_cast<size_t>(i)]).SerializeAsString() !=
        entry.selectors(i).SerializeAsString())
      __builtin_trap();
  }
  std::string wire;
  if (!entry.SerializeToString(&wire)) __builtin_trap();
  internal::v1::LogEntry back;
  if (!back.ParseFromString(wire) || back.SerializeAsString() != wire) __builtin_trap();
  return 0;
}
