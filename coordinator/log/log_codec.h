#pragma once
// The bytes of the log's records, shared by both PurgeLogs: a LogEntry or
// an EdgeRecord as its tern.internal.v1 message
// (proto/tern/internal/coordinator_log.proto), and back.
//
// Decoding fails (Corruption) only for bytes that do not parse. A logged
// selector this release cannot represent is kept as it was
// (LogEntry::unknown_selectors).
//
// Thread-safety: plain functions.

#include <string>
#include <string_view>

#include "common/result.h"
#include "coordinator/log/log_records.h"

namespace tern::coordinator {

void encodeLogEntry(const LogEntry& entry, std::string* out);
std::string encodeLogEntry(const LogEntry& entry);
Result<LogEntry> decodeLogEntry(std::string_view bytes);
// At least encodeLogEntry(entry).size(), without encoding (for sizing a
// commit).
size_t encodedSizeBound(const LogEntry& entry);

std::string encodeEdgeRecord(const EdgeRecord& edge);
Result<EdgeRecord> decodeEdgeRecord(std::string_view bytes);

}  // namespace tern::coordinator
