#include "edge/http/surrogate_keys.h"

#include <unordered_set>

namespace tern::edge::http {
namespace {

bool validKey(std::string_view k) {
  if (k.empty() || k.size() > 1024) return false;
  for (unsigned char c : k) {
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

void addSpaceSeparated(std::string_view v, std::vector<std::string_view>& out) {
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    size_t j = i;
    while (j < v.size() && v[j] != ' ' && v[j] != '\t') ++j;
    if (j > i) out.push_back(v.substr(i, j - i));
    i = j;
  }
}

// RFC 9875: an sf-list of sf-strings; parameters are ignored.
void addStringList(std::string_view v, std::vector<std::string>& out) {
  for (auto item : splitList(v)) {
    if (item.size() < 2 || item.front() != '"') continue;
    std::string s;
    bool closed = false;
    for (size_t i = 1; i < item.size(); ++i) {
      if (item[i] == '\\' && i + 1 < item.size()) {
        s.push_back(item[++i]);
      } else if (item[i] == '"') {
        closed = true;
        break;
      } else {
        s.push_back(item[i]);
      }
    }
    if (closed) out.push_back(std::move(s));
  }
}

}  // namespace

bool isSurrogateKeyField(std::string_view name) {
  return iequals(name, "surrogate-key") || iequals(name, "xkey") || iequals(name, "cache-tag") ||
         iequals(name, "edge-cache-tag") || iequals(name, "cdn-tag");
}

std::vector<std::string> surrogateKeys(const Fields& h) {
  std::vector<std::string_view> raw;
  std::vector<std::string> groups;
  for (const auto& f : h) {
    if (iequals(f.name, "surrogate-key") || iequals(f.name, "xkey")) {
      addSpaceSeparated(f.value, raw);
    } else if (iequals(f.name, "cache-tag") || iequals(f.name, "edge-cache-tag") ||
               iequals(f.name, "cdn-tag")) {
      for (auto item : splitList(f.value)) raw.push_back(item);
    } else if (iequals(f.name, "cache-groups")) {
      addStringList(f.value, groups);
    }
  }
  std::vector<std::string> out;
  std::unordered_set<std::string_view> seen;
  auto add = [&](std::string_view k) {
    if (out.size() >= kMaxSurrogateKeys || !validKey(k) || !seen.insert(k).second) return;
    out.emplace_back(k);
  };
  for (auto k : raw) add(k);
  for (const auto& g : groups) add(g);
  return out;
}

std::vector<std::string> groupInvalidations(const Fields& h) {
  std::vector<std::string> out;
  for (const auto& f : h) {
    if (iequals(f.name, "cache-group-invalidation")) addStringList(f.value, out);
  }
  return out;
}

}  // namespace tern::edge::http
