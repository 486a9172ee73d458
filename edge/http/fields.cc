#include "edge/http/fields.h"

#include <algorithm>
#include <cctype>

namespace tern::edge::http {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string toLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string_view> findField(const Fields& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (iequals(f.name, name)) return std::string_view(f.value);
  }
  return std::nullopt;
}

std::string combinedField(const Fields& fields, std::string_view name) {
  std::string out;
  for (const auto& f : fields) {
    if (!iequals(f.name, name)) continue;
    if (!out.empty()) out.append(", ");
    out.append(f.value);
  }
  return out;
}

bool hasField(const Fields& fields, std::string_view name) {
  return findField(fields, name).has_value();
}

size_t countField(const Fields& fields, std::string_view name) {
  return static_cast<size_t>(std::count_if(fields.begin(), fields.end(),
                                           [&](const Field& f) { return iequals(f.name, name); }));
}

void removeField(Fields& fields, std::string_view name) {
  std::erase_if(fields, [&](const Field& f) { return iequals(f.name, name); });
}

void setField(Fields& fields, std::string_view name, std::string_view value) {
  removeField(fields, name);
  fields.push_back({std::string(name), std::string(value)});
}

std::vector<std::string_view> splitList(std::string_view value) {
  std::vector<std::string_view> out;
  size_t start = 0;
  bool quoted = false;
  for (size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size()) {
      char c = value[i];
      if (quoted && c == '\\') {
        ++i;
        continue;
      }
      if (c == '"') quoted = !quoted;
      if (c != ',' || quoted) continue;
    }
    auto item = trim(value.substr(start, i - start));
    if (!item.empty()) out.push_back(item);
    start = i + 1;
  }
  return out;
}

bool isHopByHop(std::string_view name) {
  static constexpr std::string_view kHop[] = {
      "connection", "keep-alive",         "proxy-connection",    "te",     "transfer-encoding",
      "upgrade",    "proxy-authenticate", "proxy-authorization", "trailer"};
  for (auto h : kHop) {
    if (iequals(h, name)) return true;
  }
  return false;
}

void stripHopByHop(Fields& fields) {
  std::vector<std::string> named;
  for (const auto& f : fields) {
    if (iequals(f.name, "connection")) {
      for (auto item : splitList(f.value)) named.push_back(toLower(item));
    }
  }
  std::erase_if(fields, [&](const Field& f) {
    if (isHopByHop(f.name)) return true;
    std::string lower = toLower(f.name);
    return std::find(named.begin(), named.end(), lower) != named.end();
  });
}

}  // namespace tern::edge::http
