#include "storage/purge_filter.h"

#include <algorithm>

namespace tern::storage {
namespace {

PurgeVerdict worse(PurgeVerdict a, PurgeVerdict b) { return std::max(a, b); }

}  // namespace

PurgeFilter::Map& PurgeFilter::mapFor(SelectorKind kind) {
  switch (kind) {
    case SelectorKind::kHost:
      return hosts_;
    case SelectorKind::kUrl:
      return urls_;
    case SelectorKind::kPrefix:
      return prefixes_;
    case SelectorKind::kTag:
      return tags_;
    case SelectorKind::kAll:
      break;
  }
  return hosts_;  // unreachable for kAll; callers handle it
}

const PurgeFilter::Map& PurgeFilter::mapFor(SelectorKind kind) const {
  return const_cast<PurgeFilter*>(this)->mapFor(kind);
}

std::vector<PurgeMarker> PurgeFilter::add(const PurgeSpec& spec) {
  std::vector<PurgeMarker> changed;
  changed.reserve(spec.selectors.size());
  for (const auto& sel : spec.selectors) {
    PurgeMark* mark;
    if (sel.kind == SelectorKind::kAll) {
      mark = &all_;
    } else {
      auto [it, inserted] = mapFor(sel.kind).try_emplace(sel.value);
      if (inserted && sel.kind == SelectorKind::kPrefix) ++prefix_lengths_[sel.value.size()];
      mark = &it->second;
    }
    uint64_t& slot = spec.mode == PurgeMode::kHard ? mark->hard_seq : mark->soft_seq;
    slot = std::max(slot, spec.seq);
    changed.push_back({sel.kind, sel.value, *mark});
  }
  return changed;
}

void PurgeFilter::restore(const PurgeMarker& marker) {
  if (marker.kind == SelectorKind::kAll) {
    all_ = marker.mark;
    return;
  }
  auto [it, inserted] = mapFor(marker.kind).insert_or_assign(marker.value, marker.mark);
  if (inserted && marker.kind == SelectorKind::kPrefix) ++prefix_lengths_[marker.value.size()];
}

PurgeVerdict PurgeFilter::check(std::string_view host, std::string_view url_id,
                                const std::vector<std::string>& tags, uint64_t store_seq) const {
  PurgeVerdict v = judge(all_, store_seq);
  auto probe = [&](const Map& map, std::string_view key) {
    if (map.empty() || v == PurgeVerdict::kGone) return;
    auto it = map.find(key);
    if (it != map.end()) v = worse(v, judge(it->second, store_seq));
  };
  probe(hosts_, host);
  probe(urls_, url_id);
  for (const auto& [len, count] : prefix_lengths_) {
    if (len > url_id.size()) break;
    probe(prefixes_, url_id.substr(0, len));
  }
  if (!tags_.empty()) {
    for (const auto& tag : tags) probe(tags_, tag);
  }
  return v;
}

PurgeMark PurgeFilter::get(SelectorKind kind, std::string_view value) const {
  if (kind == SelectorKind::kAll) return all_;
  const Map& map = mapFor(kind);
  auto it = map.find(value);
  return it == map.end() ? PurgeMark{} : it->second;
}

std::vector<PurgeMarker> PurgeFilter::markers() const {
  std::vector<PurgeMarker> out;
  if (all_.hard_seq != 0 || all_.soft_seq != 0) out.push_back({SelectorKind::kAll, {}, all_});
  for (SelectorKind kind :
       {SelectorKind::kHost, SelectorKind::kUrl, SelectorKind::kPrefix, SelectorKind::kTag}) {
    for (const auto& [value, mark] : mapFor(kind)) out.push_back({kind, value, mark});
  }
  return out;
}

bool PurgeFilter::retire(const PurgeMarker& marker) {
  if (marker.kind == SelectorKind::kAll) {
    if (!(all_ == marker.mark)) return false;
    all_ = {};
  } else {
    Map& map = mapFor(marker.kind);
    auto it = map.find(marker.value);
    if (it == map.end() || !(it->second == marker.mark)) return false;
    map.erase(it);
    if (marker.kind == SelectorKind::kPrefix) {
      auto len = prefix_lengths_.find(marker.value.size());
      if (len != prefix_lengths_.end() && --len->second == 0) prefix_lengths_.erase(len);
    }
  }
  floor_ = std::max({floor_, marker.mark.hard_seq, marker.mark.soft_seq});
  return true;
}

size_t PurgeFilter::size() const {
  size_t n = hosts_.size() + urls_.size() + prefixes_.size() + tags_.size();
  if (all_.hard_seq != 0 || all_.soft_seq != 0) ++n;
  return n;
}

}  // namespace tern::storage
