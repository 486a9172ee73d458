#include "coordinator/log/log_codec.h"

#include "proto/purge_convert.h"
#include "tern/internal/coordinator_log.pb.h"

namespace tern::coordinator {

namespace pb = tern::internal::v1;

void encodeLogEntry(const LogEntry& entry, std::string* out) {
  pb::LogEntry m;
  m.set_seq(entry.seq);
  m.set_accepted_at_ms(entry.accepted_at_ms);
  m.set_mode(proto::toProto(entry.mode));
  m.mutable_selectors()->Reserve(static_cast<int>(entry.selectors.size()));
  for (const auto& s : entry.selectors) *m.add_selectors() = proto::toProto(s);
  for (const auto& raw : entry.unknown_selectors) m.add_selectors()->ParseFromString(raw);
  m.set_idempotency_key(entry.idempotency_key);
  m.set_commit_id(entry.commit_id);
  m.set_requested_by(entry.requested_by);
  m.set_requested_from(entry.requested_from);
  m.SerializeToString(out);
}

std::string encodeLogEntry(const LogEntry& entry) {
  std::string out;
  encodeLogEntry(entry, &out);
  return out;
}

size_t encodedSizeBound(const LogEntry& entry) {
  constexpr size_t kField = 1 + 10;  // a tag and the longest varint (a value or a length)
  size_t n = 3 * kField + entry.idempotency_key.size() + entry.commit_id.size() +
             entry.requested_by.size() + entry.requested_from.size() + 4 * kField;
  for (const auto& s : entry.selectors) n += 2 * kField + s.value.size();
  for (const auto& raw : entry.unknown_selectors) n += kField + raw.size();
  return n;
}

Result<LogEntry> decodeLogEntry(std::string_view bytes) {
  pb::LogEntry m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Status::corruption("purge log entry does not parse");
  LogEntry e;
  e.seq = m.seq();
  e.accepted_at_ms = m.accepted_at_ms();
  e.mode = proto::fromProto(m.mode());
  e.selectors.reserve(static_cast<size_t>(m.selectors_size()));
  for (int i = 0; i < m.selectors_size(); ++i) {
    if (auto s = proto::echoFromProto(m.selectors(i)); s.ok()) {
      e.selectors.push_back(std::move(*s));
    } else {
      e.unknown_selectors.push_back(m.selectors(i).SerializeAsString());
    }
  }
  e.idempotency_key = std::move(*m.mutable_idempotency_key());
  e.commit_id = std::move(*m.mutable_commit_id());
  e.requested_by = std::move(*m.mutable_requested_by());
  e.requested_from = std::move(*m.mutable_requested_from());
  return e;
}

std::string encodeEdgeRecord(const EdgeRecord& edge) {
  pb::EdgeRecord m;
  m.set_edge_id(edge.edge_id);
  m.set_address(edge.address);
  m.set_applied_seq(edge.applied_seq);
  m.set_last_seen_ms(edge.last_seen_ms);
  return m.SerializeAsString();
}

Result<EdgeRecord> decodeEdgeRecord(std::string_view bytes) {
  pb::EdgeRecord m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Status::corruption("edge record does not parse");
  EdgeRecord e;
  e.edge_id = std::move(*m.mutable_edge_id());
  e.address = std::move(*m.mutable_address());
  e.applied_seq = m.applied_seq();
  e.last_seen_ms = m.last_seen_ms();
  return e;
}

}  // namespace tern::coordinator
