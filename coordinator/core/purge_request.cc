#include "coordinator/core/purge_request.h"

#include <string>

#include "proto/purge_convert.h"

namespace tern::coordinator {

namespace v1 = tern::v1;

Result<CheckedPurge> checkPurgeRequest(const v1::PurgeRequest& request, const PurgeLimits& limits) {
  auto selectors = proto::selectorsFromProto(request.selectors());
  if (!selectors.ok()) return selectors.status();
  if (request.timeout_ms() > limits.max_wait_timeout_ms)
    return Status::invalidArgument("timeout_ms above the maximum of " +
                                   std::to_string(limits.max_wait_timeout_ms));
  if (request.idempotency_key().size() > limits.max_idempotency_key)
    return Status::invalidArgument("idempotency_key longer than " +
                                   std::to_string(limits.max_idempotency_key) + " bytes");
  if (!v1::PurgeMode_IsValid(request.mode()) || !v1::WaitMode_IsValid(request.wait()))
    return Status::invalidArgument("unknown mode or wait");
  CheckedPurge out;
  out.entry.set_mode(proto::toProto(proto::fromProto(request.mode())));
  for (const auto& sel : *selectors) *out.entry.add_selectors() = proto::toProto(sel);
  out.entry.set_idempotency_key(request.idempotency_key());
  out.wait = request.wait();
  out.timeout_ms = request.timeout_ms() ? request.timeout_ms() : limits.default_wait_timeout_ms;
  return out;
}

}  // namespace tern::coordinator
