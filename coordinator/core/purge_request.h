#pragma once
// Checking a purge call: a PurgeCall from either API becomes the log entry
// to append and how the caller waits, or a clear InvalidArgument.
// Plain function: no lock, no I/O.

#include <cstdint>
#include <string>

#include "common/result.h"
#include "coordinator/core/views.h"
#include "coordinator/log/log_records.h"

namespace tern::coordinator {

struct PurgeLimits {
  uint32_t default_wait_timeout_ms = 10000;
  uint32_t max_wait_timeout_ms = 120000;
  size_t max_idempotency_key = 256;
  size_t max_selectors = 1000;
};

// Who asked for a purge, kept with it in the log (the audit trail).
struct Requester {
  std::string name;     // the credential's name (coordinator/api/access.h)
  std::string address;  // where the call came from
};

struct CheckedPurge {
  LogEntry entry;  // mode, selectors, idempotency key
  WaitMode wait = WaitMode::kNone;
  uint32_t timeout_ms = 0;  // how long a wait=all call is held
};

Result<CheckedPurge> checkPurgeRequest(const PurgeCall& call, const PurgeLimits& limits);

}  // namespace tern::coordinator
