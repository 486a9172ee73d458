#include "coordinator/core/edge_wire.h"

#include "proto/purge_convert.h"
#include "tern/v1/edge_link.pb.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

namespace tern::coordinator {

namespace v1 = tern::v1;
using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

namespace {

constexpr int kBatchField = v1::CoordinatorMessage::kPurgesFieldNumber;
constexpr int kPurgesField = v1::PurgeBatch::kPurgesFieldNumber;
constexpr int kCatchingUpField = v1::PurgeBatch::kCatchingUpFieldNumber;

void appendVarint(std::string* out, uint64_t v) {
  char buf[10];
  const auto* end = CodedOutputStream::WriteVarint64ToArray(v, reinterpret_cast<uint8_t*>(buf));
  out->append(buf, static_cast<size_t>(reinterpret_cast<const char*>(end) - buf));
}

uint32_t tag(int field, WireFormatLite::WireType type) {
  return WireFormatLite::MakeTag(field, type);
}

}  // namespace

std::string encodeBatchedPurge(const LogEntry& entry) {
  v1::Purge p;
  p.set_seq(entry.seq);
  p.set_mode(proto::toProto(entry.mode));
  p.mutable_selectors()->Reserve(
      static_cast<int>(entry.selectors.size() + entry.unknown_selectors.size()));
  for (const auto& s : entry.selectors) *p.add_selectors() = proto::toProto(s);
  for (const auto& raw : entry.unknown_selectors)
    p.add_selectors()->ParseFromString(raw);  // as logged
  const std::string body = p.SerializeAsString();
  std::string out;
  out.reserve(body.size() + 6);
  appendVarint(&out, tag(kPurgesField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  appendVarint(&out, body.size());
  out += body;
  return out;
}

WireMessage encodePurgeBatch(const std::vector<std::string_view>& purges, bool catching_up) {
  size_t len = catching_up ? 2 : 0;  // tag and a one-byte true
  for (auto p : purges) len += p.size();
  auto out = std::make_shared<std::string>();
  out->reserve(len + 12);
  appendVarint(out.get(), tag(kBatchField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  appendVarint(out.get(), len);
  for (auto p : purges) out->append(p);
  if (catching_up) {
    appendVarint(out.get(), tag(kCatchingUpField, WireFormatLite::WIRETYPE_VARINT));
    out->push_back(1);
  }
  return out;
}

namespace {
WireMessage encoded(const v1::CoordinatorMessage& message) {
  return std::make_shared<const std::string>(message.SerializeAsString());
}
}  // namespace

WireMessage encodeWelcome(uint64_t head_seq, uint64_t first_retained_seq) {
  v1::CoordinatorMessage m;
  m.mutable_welcome()->set_head_seq(head_seq);
  m.mutable_welcome()->set_first_retained_seq(first_retained_seq);
  m.mutable_welcome()->set_protocol_version(1);
  return encoded(m);
}

WireMessage encodeLease(uint64_t heartbeat_id, uint32_t lease_ms) {
  v1::CoordinatorMessage m;
  m.mutable_lease()->set_heartbeat_id(heartbeat_id);
  m.mutable_lease()->set_lease_ms(lease_ms);
  return encoded(m);
}

WireMessage encodeResetSoftAll(uint64_t seq) {
  v1::CoordinatorMessage m;
  m.mutable_reset_soft_all()->set_seq(seq);
  return encoded(m);
}

}  // namespace tern::coordinator
