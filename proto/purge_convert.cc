#include "proto/purge_convert.h"

namespace tern::proto {

namespace {

using Check = Result<storage::PurgeSelector> (*)(storage::SelectorKind, std::string_view);

Result<storage::PurgeSelector> selectorFrom(const tern::v1::Selector& s, Check check) {
  using storage::SelectorKind;
  switch (s.kind_case()) {
    case tern::v1::Selector::kUrl:
      return check(SelectorKind::kUrl, s.url());
    case tern::v1::Selector::kPrefix:
      return check(SelectorKind::kPrefix, s.prefix());
    case tern::v1::Selector::kHost:
      return check(SelectorKind::kHost, s.host());
    case tern::v1::Selector::kTag:
      return check(SelectorKind::kTag, s.tag());
    case tern::v1::Selector::kAll:
      if (!s.all()) return Status::invalidArgument("'all' must be true");
      return check(SelectorKind::kAll, "");
    case tern::v1::Selector::KIND_NOT_SET:
      break;
  }
  return Status::invalidArgument("selector has no kind (url, prefix, host, tag or all)");
}

Result<std::vector<storage::PurgeSelector>> selectorsFrom(
    const google::protobuf::RepeatedPtrField<tern::v1::Selector>& selectors, Check check) {
  if (selectors.empty()) return Status::invalidArgument("a purge needs at least one selector");
  if (static_cast<size_t>(selectors.size()) > kMaxSelectorsPerPurge)
    return Status::invalidArgument("at most " + std::to_string(kMaxSelectorsPerPurge) +
                                   " selectors per purge");
  std::vector<storage::PurgeSelector> out;
  out.reserve(static_cast<size_t>(selectors.size()));
  for (int i = 0; i < selectors.size(); ++i) {
    auto sel = selectorFrom(selectors[i], check);
    if (!sel.ok())
      return Status::invalidArgument("selectors[" + std::to_string(i) +
                                     "]: " + sel.status().message());
    out.push_back(std::move(*sel));
  }
  return out;
}

}  // namespace

Result<storage::PurgeSelector> fromProto(const tern::v1::Selector& s) {
  return selectorFrom(s, &storage::normalizeSelector);
}

Result<storage::PurgeSelector> loggedFromProto(const tern::v1::Selector& s) {
  return selectorFrom(s, &storage::checkNormalizedSelector);
}

Result<storage::PurgeSelector> echoFromProto(const tern::v1::Selector& s) {
  return selectorFrom(s, [](storage::SelectorKind kind, std::string_view value) {
    return Result<storage::PurgeSelector>(storage::PurgeSelector{kind, std::string(value)});
  });
}

tern::v1::Selector toProto(const storage::PurgeSelector& sel) {
  tern::v1::Selector s;
  switch (sel.kind) {
    case storage::SelectorKind::kUrl:
      s.set_url(sel.value);
      break;
    case storage::SelectorKind::kPrefix:
      s.set_prefix(sel.value);
      break;
    case storage::SelectorKind::kHost:
      s.set_host(sel.value);
      break;
    case storage::SelectorKind::kTag:
      s.set_tag(sel.value);
      break;
    case storage::SelectorKind::kAll:
      s.set_all(true);
      break;
  }
  return s;
}

storage::PurgeMode fromProto(tern::v1::PurgeMode mode) {
  return mode == tern::v1::PURGE_MODE_SOFT ? storage::PurgeMode::kSoft : storage::PurgeMode::kHard;
}

tern::v1::PurgeMode toProto(storage::PurgeMode mode) {
  return mode == storage::PurgeMode::kSoft ? tern::v1::PURGE_MODE_SOFT : tern::v1::PURGE_MODE_HARD;
}

Result<std::vector<storage::PurgeSelector>> selectorsFromProto(
    const google::protobuf::RepeatedPtrField<tern::v1::Selector>& selectors) {
  return selectorsFrom(selectors, &storage::normalizeSelector);
}

Result<storage::PurgeSpec> specFromProto(const tern::v1::Purge& purge) {
  if (purge.seq() == 0) return Status::invalidArgument("purge without a sequence number");
  storage::PurgeSpec spec;
  spec.seq = purge.seq();
  spec.mode = fromProto(purge.mode());
  TERN_ASSIGN_OR_RETURN(spec.selectors,
                        selectorsFrom(purge.selectors(), &storage::checkNormalizedSelector));
  return spec;
}

}  // namespace tern::proto
