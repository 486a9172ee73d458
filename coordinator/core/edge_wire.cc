#include "coordinator/core/edge_wire.h"

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
constexpr int kSeqField = v1::Purge::kSeqFieldNumber;
constexpr int kModeField = v1::Purge::kModeFieldNumber;
constexpr int kSelectorsField = v1::Purge::kSelectorsFieldNumber;

void appendVarint(std::string* out, uint64_t v) {
  char buf[10];
  const auto* end = CodedOutputStream::WriteVarint64ToArray(v, reinterpret_cast<uint8_t*>(buf));
  out->append(buf, static_cast<size_t>(reinterpret_cast<const char*>(end) - buf));
}

uint32_t tag(int field, WireFormatLite::WireType type) {
  return WireFormatLite::MakeTag(field, type);
}

size_t varintSize(uint64_t v) { return CodedOutputStream::VarintSize64(v); }

// The field of tern.v1.Selector's oneof that carries `kind`.
int selectorField(storage::SelectorKind kind) {
  switch (kind) {
    case storage::SelectorKind::kUrl:
      return v1::Selector::kUrlFieldNumber;
    case storage::SelectorKind::kPrefix:
      return v1::Selector::kPrefixFieldNumber;
    case storage::SelectorKind::kHost:
      return v1::Selector::kHostFieldNumber;
    case storage::SelectorKind::kTag:
      return v1::Selector::kTagFieldNumber;
    case storage::SelectorKind::kAll:
      break;
  }
  return v1::Selector::kAllFieldNumber;
}

// The encoded size of a tern.v1.Selector (a oneof: the set field is written
// even when empty; "all" is a bool true).
size_t selectorSize(const storage::PurgeSelector& s) {
  const int field = selectorField(s.kind);
  if (s.kind == storage::SelectorKind::kAll)
    return varintSize(tag(field, WireFormatLite::WIRETYPE_VARINT)) + 1;
  return varintSize(tag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) +
         varintSize(s.value.size()) + s.value.size();
}

uint64_t modeValue(storage::PurgeMode mode) {
  return mode == storage::PurgeMode::kSoft ? v1::PURGE_MODE_SOFT : v1::PURGE_MODE_HARD;
}

}  // namespace

// Written field by field as protobuf writes a tern.v1.Purge (fields in
// order, zero scalars left out), without building the message.
std::string encodeBatchedPurge(const LogEntry& entry) {
  const uint64_t mode = modeValue(entry.mode);
  size_t body = 0;
  if (entry.seq != 0)
    body += varintSize(tag(kSeqField, WireFormatLite::WIRETYPE_VARINT)) + varintSize(entry.seq);
  body += varintSize(tag(kModeField, WireFormatLite::WIRETYPE_VARINT)) + varintSize(mode);
  const uint32_t selector_tag = tag(kSelectorsField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  for (const auto& s : entry.selectors) {
    const size_t n = selectorSize(s);
    body += varintSize(selector_tag) + varintSize(n) + n;
  }
  for (const auto& raw : entry.unknown_selectors)
    body += varintSize(selector_tag) + varintSize(raw.size()) + raw.size();
  std::string out;
  out.reserve(body + 12);
  appendVarint(&out, tag(kPurgesField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  appendVarint(&out, body);
  if (entry.seq != 0) {
    appendVarint(&out, tag(kSeqField, WireFormatLite::WIRETYPE_VARINT));
    appendVarint(&out, entry.seq);
  }
  appendVarint(&out, tag(kModeField, WireFormatLite::WIRETYPE_VARINT));
  appendVarint(&out, mode);
  for (const auto& s : entry.selectors) {
    appendVarint(&out, selector_tag);
    appendVarint(&out, selectorSize(s));
    const int field = selectorField(s.kind);
    if (s.kind == storage::SelectorKind::kAll) {
      appendVarint(&out, tag(field, WireFormatLite::WIRETYPE_VARINT));
      out.push_back(1);
    } else {
      appendVarint(&out, tag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
      appendVarint(&out, s.value.size());
      out += s.value;
    }
  }
  for (const auto& raw : entry.unknown_selectors) {  // as logged
    appendVarint(&out, selector_tag);
    appendVarint(&out, raw.size());
    out += raw;
  }
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
