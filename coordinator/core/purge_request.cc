#include "coordinator/core/purge_request.h"

#include <string>

namespace tern::coordinator {

Result<CheckedPurge> checkPurgeRequest(const PurgeCall& call, const PurgeLimits& limits) {
  if (call.selectors.empty() || call.selectors.size() > limits.max_selectors)
    return Status::invalidArgument("selectors: 1 to " + std::to_string(limits.max_selectors) +
                                   " are needed");
  for (size_t i = 0; i < call.selectors.size(); ++i) {
    const auto& sel = call.selectors[i];
    if (auto ok = storage::checkNormalizedSelector(sel.kind, sel.value); !ok.ok())
      return Status::invalidArgument("selectors[" + std::to_string(i) +
                                     "]: " + std::string(ok.status().message()));
  }
  if (call.timeout_ms > limits.max_wait_timeout_ms)
    return Status::invalidArgument("timeout_ms above the maximum of " +
                                   std::to_string(limits.max_wait_timeout_ms));
  if (call.idempotency_key.size() > limits.max_idempotency_key)
    return Status::invalidArgument("idempotency_key longer than " +
                                   std::to_string(limits.max_idempotency_key) + " bytes");
  CheckedPurge out;
  out.entry.mode = call.mode;
  out.entry.selectors = call.selectors;
  out.entry.idempotency_key = call.idempotency_key;
  out.wait = call.wait;
  out.timeout_ms = call.timeout_ms ? call.timeout_ms : limits.default_wait_timeout_ms;
  return out;
}

}  // namespace tern::coordinator
